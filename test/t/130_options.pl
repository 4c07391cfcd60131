# 130_options.pl -- the options table (src/csv/options.c) and what is derived
# from it.
#  1. A bad value of every enumerated option (header, on_error, mode,
#     encoding) fails with SQLSTATE 22023, a message naming the option and
#     the value, and a hint listing the valid values -- on every function
#     that takes it (read through the streaming scan and through the
#     FunctionScan, read_text, load, submit, load_serial), named or
#     positional.  header => true, false and 'match' keep working, named and
#     positional.
#  2. The options recorded with a submitted job come back the same in its
#     runner: a job with a non-default delimiter, quote, null_string,
#     encoding, skip_rows, header => 'match', a column list, on_error =>
#     'skip' and chunked mode on 2 workers loads what csvpipe.load loads
#     (rows, rejected lines), and records the same options.
#  3. Every option of the table is in the Options section of
#     doc/reference.md, where the options are documented.
#  4. on_error and max_errors reach the workers (the options table's form
#     for them, options.c): on 2 workers and several chunks, a read with
#     on_error => 'skip' returns the good rows and one with 'stop' fails at
#     the first bad one; a load in each mode rejects exactly the bad rows,
#     fails with max_errors one below their count and loads with it equal.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $dir = PostgreSQL::Test::Utils::tempdir;
chmod 0755, $dir;

my $node = PostgreSQL::Test::Cluster->new('options');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'csvpipe'
max_worker_processes = 16
max_prepared_transactions = 4
csvpipe.database = 'postgres'
timezone = 'UTC'
});
$node->start;

sub sql { return $node->safe_psql('postgres', $_[0]); }

sql(q{
CREATE EXTENSION csvpipe;
CREATE FUNCTION try(q text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE st text; m text; h text;
BEGIN
  EXECUTE q;
  RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
  GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, m = MESSAGE_TEXT, h = PG_EXCEPTION_HINT;
  RETURN st || ' ' || m || coalesce(' HINT: ' || nullif(h, ''), '');
END $$;
CREATE TABLE t (a text, b text);
});

open(my $fh, '>', "$dir/ab.csv") or die;
print $fh "a,b\n1,x\n2,y\n";
close $fh;
my $f = "$dir/ab.csv";

# ---- 1. exact errors, every enumerated option, every function ----
my %bad = (
	header => [ "'yes'", q{22023 invalid value for option "header": "yes" HINT: Valid values are true, false and 'match'.} ],
	on_error => [ "'maybe'", q{22023 invalid value for option "on_error": "maybe" HINT: Valid values are 'stop' and 'skip'.} ],
	mode => [ "'fast'", q{22023 invalid value for option "mode": "fast" HINT: Valid values are 'transaction', 'prepared' and 'chunked'.} ],
	encoding => [ "'klingon'", q{22023 invalid value for option "encoding": "klingon" HINT: Valid values are PostgreSQL's encoding names, such as UTF8, LATIN1 or WIN1252 (see "Character Set Support" in its documentation).} ],
);
my %calls = (
	'read (scan)' => [ "SELECT * FROM csvpipe.read('$f', %s) AS r(a text, b text)", [qw(header on_error encoding)] ],
	'read (FunctionScan)' => [ "SELECT * FROM ROWS FROM (csvpipe.read('$f', %s) AS (a text, b text)) WITH ORDINALITY AS r", [qw(header on_error encoding)] ],
	'read_text' => [ "SELECT * FROM csvpipe.read_text('$f', %s)", [qw(header on_error encoding)] ],
	'read_text (select list)' => [ "SELECT csvpipe.read_text('$f', %s)", [qw(header on_error encoding)] ],
	'load' => [ "SELECT * FROM csvpipe.load('$f', 't', %s)", [qw(header on_error mode encoding)] ],
	'submit' => [ "SELECT * FROM csvpipe.submit('$f', 't', %s)", [qw(header on_error mode encoding)] ],
	'load_serial' => [ "SELECT csvpipe.load_serial('$f', 't', %s)", [qw(header encoding)] ],
);
for my $fn (sort keys %calls)
{
	my ($tmpl, $opts) = @{ $calls{$fn} };
	for my $opt (@$opts)
	{
		my ($value, $expect) = @{ $bad{$opt} };
		my $q = sprintf($tmpl, "$opt => $value");
		$q =~ s/'/''/g;
		is(sql("SELECT try('$q')"), $expect, "$fn: $opt => $value");
	}
}

# positional: read's header is its 5th argument, load's its 8th
my $q = "SELECT * FROM csvpipe.read(''$f'', '','', ''\"'', NULL, ''yes'') AS r(a text, b text)";
is(sql("SELECT try('$q')"), $bad{header}[1], 'read: header positional');
$q = "SELECT * FROM csvpipe.load(''$f'', ''t'', NULL, NULL, '','', ''\"'', NULL, ''yes'')";
is(sql("SELECT try('$q')"), $bad{header}[1], 'load: header positional');
$q = "SELECT * FROM csvpipe.load(''$f'', ''t'', mode => ''chunked'', atomic => true)";
is(sql("SELECT try('$q')"),
	q{22023 csvpipe: atomic => true contradicts mode => 'chunked' HINT: atomic is the 1.0 spelling of mode: use mode alone.},
	'load: atomic contradicting mode');
$q = "SELECT * FROM csvpipe.load(''$f'', ''t'', max_errors => 3)";
is(sql("SELECT try('$q')"), q{22023 csvpipe max_errors needs on_error => 'skip'}, 'load: max_errors without skip');

# the valid values keep working, named and positional
is(sql("SELECT string_agg(a || b, ' ') FROM csvpipe.read('$f', header => true) AS r(a text, b text)"), '1x 2y', 'header => true');
is(sql("SELECT string_agg(a || b, ' ') FROM csvpipe.read('$f', header => false) AS r(a text, b text)"), 'ab 1x 2y', 'header => false');
is(sql("SELECT string_agg(a || b, ' ') FROM csvpipe.read('$f', header => 'match') AS r(a text, b text)"), '1x 2y', "header => 'match'");
is(sql("SELECT string_agg(a || b, ' ') FROM csvpipe.read('$f', header => 'MATCH') AS r(a text, b text)"), '1x 2y', "header => 'MATCH'");
is(sql("SELECT string_agg(a || b, ' ') FROM csvpipe.read('$f', ',', '\"', NULL, false) AS r(a text, b text)"), 'ab 1x 2y', 'header false, positional');
is(sql("SELECT string_agg(a || b, ' ') FROM csvpipe.read('$f', header => NULL) AS r(a text, b text)"), 'ab 1x 2y', 'header => NULL is false');
is(sql("SELECT string_agg(fields::text, ' ') FROM csvpipe.read_text('$f', header => 'true')"), '{1,x} {2,y}', "read_text header => 'true'");
is(sql("SELECT csvpipe.load_serial('$f', 't', header => 'match')"), '2', "load_serial header => 'match'");
is(sql("SELECT rows_loaded FROM csvpipe.load('$f', 't', NULL, NULL, ',', '\"', NULL, false)"), '3', 'load: header false, positional');
is(sql("SELECT count(*) FROM csvpipe.read('$f', header => 'match'::csvpipe.header_mode) AS r(a text, b text)"), '2',
	"'match'::csvpipe.header_mode");

# ---- 2. a submitted job's options come back the same in its runner ----
# LATIN1, '|' delimited, quote "'", NA for NULL, a preamble line, header
# names checked, bad amounts skipped; more than one chunk.
open($fh, '>:raw', "$dir/opts.csv") or die;
print $fh "exported by someone\n";
print $fh "id|name|amount\n";
my @bad_lines;
for my $i (1 .. 400)
{
	my $name = $i % 7 == 0 ? 'NA' : $i % 5 == 0 ? "'caf\xe9 | $i'" : $i % 3 == 0 ? "'it''s $i'" : "n$i";
	my $amount = $i % 41 == 0 ? 'oops' : sprintf('%d.%02d', $i, $i % 100);
	push @bad_lines, $i + 2 if $amount eq 'oops';
	print $fh "$i|$name|$amount\n";
}
close $fh;
sql("CREATE TABLE via_load (id int, name text, amount numeric(10,2), extra text DEFAULT 'd')");
sql("CREATE TABLE via_job (LIKE via_load INCLUDING DEFAULTS)");
my $opts = "columns => '{id,name,amount}', delimiter => '|', quote => '''', null_string => 'NA', "
  . "encoding => 'LATIN1', skip_rows => 1, header => 'match', on_error => 'skip', "
  . "mode => 'chunked', workers => 2, chunk_size => 1024, max_errors => 50";
my $load = sql("SELECT job_id || ' ' || rows_loaded || ' ' || rows_rejected FROM csvpipe.load('$dir/opts.csv', 'via_load', $opts)");
my ($load_job) = split / /, $load;
is((split / /, $load, 2)[1], (400 - @bad_lines) . ' ' . scalar(@bad_lines), 'load: rows loaded and rejected');
my $job = sql("SELECT * FROM csvpipe.submit('$dir/opts.csv', 'via_job', $opts)");
is(sql("SELECT csvpipe.wait($job, '120s')"), 'done', 'the submitted job is done');

sub table_md5
{
	return sql("SELECT count(*) || ' ' || md5(string_agg(t::text, E'\\n' ORDER BY id)) FROM $_[0] t");
}
is(table_md5('via_job'), table_md5('via_load'), 'the runner loads what load() loads');
is(sql("SELECT count(*) FROM via_job WHERE name = 'café | 5'"), '1', '... LATIN1 converted, quoted delimiter kept');
is(sql("SELECT count(*) FROM via_job WHERE name IS NULL"), int(400 / 7) - scalar(grep { ($_ - 2) % 7 == 0 } @bad_lines), '... NA is NULL');
is(sql("SELECT string_agg(line_no::text, ',' ORDER BY line_no) FROM csvpipe.rejected WHERE job_id = $job"),
	join(',', @bad_lines), '... the same lines rejected');
is(sql("SELECT string_agg(line_no::text, ',' ORDER BY line_no) FROM csvpipe.rejected WHERE job_id = $load_job"),
	join(',', @bad_lines), '... as load() rejected');
is(sql("SELECT (a.options - 'settings') = (b.options - 'settings') FROM csvpipe.job a, csvpipe.job b "
	  . "WHERE a.job_id = $load_job AND b.job_id = $job"), 't', 'load and submit record the same options');
is(sql("SELECT concat((options->>'delimiter'), (options->>'quote'), (options->>'null_string'), (options->>'encoding'), "
	  . "(options->>'skip_rows'), (options->>'header'), (options->>'on_error'), (options->>'mode'), "
	  . "(options->>'max_errors'), (options->'columns')::text) FROM csvpipe.job WHERE job_id = $job"),
	q{|'NALATIN11matchskipchunked50["id", "name", "amount"]}, 'the recorded options');

# ---- 3. every option of the table is in doc/reference.md ----
open(my $src, '<', 'src/csv/options.c') or die "options.c: $!";
my @names = map { /^\s*\[CSV_OPT_\w+\]\s*=\s*\{"(\w+)"/ ? ($1) : () } <$src>;
close $src;
ok(@names >= 20, 'options.c: the table is read (' . scalar(@names) . ' entries)');
open(my $ref, '<', 'doc/reference.md') or die "doc/reference.md: $!";
my $text = do { local $/; <$ref> };
close $ref;
my ($section) = $text =~ /\n### Options\n(.*?)\n#{1,3} /s;
ok(defined $section, 'doc/reference.md has an Options section');
for my $name (@names)
{
	like($section // '', qr/^\| `?$name`? \|/m, "doc/reference.md Options lists $name");
}

# ---- 4. on_error and max_errors reach the workers ----
open($fh, '>', "$dir/errs.csv") or die;
print $fh "id,amount\n";
my ($good, $nbad, $sum) = (0, 0, 0);
for my $i (1 .. 300)
{
	if ($i % 30 == 0) { print $fh "$i,bad$i\n"; $nbad++; }
	else { print $fh "$i,$i.5\n"; $good++; $sum += $i; }
}
close $fh;
my $ef = "$dir/errs.csv";
is(sql("SELECT count(amount) || ' ' || sum(id) FROM csvpipe.read('$ef', workers => 2, chunk_size => 512, "
	  . "on_error => 'skip') AS r(id int, amount numeric)"),
	"$good $sum", "read on 2 workers, on_error => 'skip': the good rows");
like(sql("SELECT try('SELECT count(*) FROM csvpipe.read(''$ef'', workers => 2, chunk_size => 512, "
	  . "on_error => ''stop'') AS r(id int, amount numeric)')"),
	qr/^22P02 invalid input syntax for type numeric: "bad\d+"/, "read on 2 workers, on_error => 'stop': fails on a bad row");
for my $mode (qw(transaction chunked prepared))
{
	sql("CREATE TABLE errs_$mode (id int, amount numeric)");
	my $call = "csvpipe.load('$ef', 'errs_$mode', mode => '$mode', workers => 2, chunk_size => 512, on_error => 'skip'";
	my $q = "SELECT * FROM $call, max_errors => " . ($nbad - 1) . ")";
	$q =~ s/'/''/g;
	is(sql("SELECT try('$q')"), "22P04 too many bad rows: more than max_errors (" . ($nbad - 1) . ")",
		"load, $mode mode on 2 workers: max_errors below the bad rows fails");
	sql("TRUNCATE errs_$mode");
	is(sql("SELECT rows_loaded || ' ' || rows_rejected || ' ' || workers FROM $call, max_errors => $nbad)"),
		"$good $nbad 2", "load, $mode mode on 2 workers: max_errors equal to the bad rows loads");
	is(sql("SELECT count(*) FROM errs_$mode"), $good, "... $mode: the good rows are in");
}

$node->stop;
done_testing();
