# 132_match.pl -- columns by name (match => 'name', extra_columns):
#  - a reordered header (one name in another case) loads the rows COPY
#    loads with the explicit column list, in transaction, chunked and
#    prepared mode on 2 workers, in this session (load_serial), and through
#    a submitted job's runner; target columns missing from the file get
#    their defaults;
#  - file columns the target lacks: an exact error listing them, or left
#    out with extra_columns => 'ignore' (rows equal an INSERT ... SELECT of
#    the same columns from the file COPYed whole);
#  - exact errors: NOT NULL without default missing from the file (before
#    anything is loaded), no header, columns with match, extra_columns
#    without match, a header naming no column, a column named twice, a
#    name matching two columns case-insensitively;
#  - the field-count error of a positional load hints columns => and
#    match => 'name'.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $dir = PostgreSQL::Test::Utils::tempdir;
chmod 0755, $dir;

my $node = PostgreSQL::Test::Cluster->new('match');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'csvpipe'
max_worker_processes = 16
max_prepared_transactions = 8
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
});

# reordered, one name in upper case; and the same with two extra columns
open(my $f1, '>', "$dir/reordered.csv") or die;
open(my $f2, '>', "$dir/extra.csv") or die;
print $f1 "amount,ID,name\n";
print $f2 "amount,note,id,name,junk\n";
for my $i (1 .. 3000)
{
	my $name = $i % 9 == 0 ? '' : $i % 4 == 0 ? "\"n, $i\"" : "n$i";
	my $amount = sprintf('%d.%02d', $i * 3, $i % 100);
	print $f1 "$amount,$i,$name\n";
	print $f2 "$amount,note $i,$i,$name,\"j\n$i\"\n";
}
close $f1;
close $f2;

my $cols = "id int PRIMARY KEY, name text, amount numeric(10,2), loaded text DEFAULT 'dflt', flag boolean DEFAULT true";
sql("CREATE TABLE ref ($cols)");
sql("COPY ref (amount, id, name) FROM '$dir/reordered.csv' (FORMAT csv, HEADER)");
sql("CREATE TABLE stage (amount text, note text, id text, name text, junk text)");
sql("COPY stage FROM '$dir/extra.csv' (FORMAT csv, HEADER)");
sql("CREATE TABLE ref_extra ($cols)");
sql("INSERT INTO ref_extra (id, name, amount) SELECT id::int, name, amount::numeric FROM stage");

sub table_md5
{
	return sql("SELECT count(*) || ' ' || md5(string_agg(t::text, E'\\n' ORDER BY id)) FROM $_[0] t");
}
my $ref = table_md5('ref');
my $ref_extra = table_md5('ref_extra');
like($ref, qr/^3000 /, 'the reference has every row');
is($ref, $ref_extra, 'both files hold the same rows');

my $n = 0;
for my $mode ('transaction', 'chunked', 'prepared')
{
	for my $file ('reordered', 'extra')
	{
		my $t = "t" . ++$n;
		my $extra = $file eq 'extra' ? ", extra_columns => 'ignore'" : '';
		sql("CREATE TABLE $t ($cols)");
		is( sql("SELECT rows_loaded || ' ' || workers FROM csvpipe.load('$dir/$file.csv', '$t', match => 'name'$extra, "
			  . "mode => '$mode', workers => 2, chunk_size => 8192)"),
			'3000 2', "$mode, $file: 3000 rows, 2 workers");
		is(table_md5($t), $ref, "$mode, $file: rows equal COPY's with a column list, defaults filled");
	}
}

# this session: load_serial, and load with workers => 0
sql("CREATE TABLE s1 ($cols); CREATE TABLE s2 ($cols)");
is(sql("SELECT csvpipe.load_serial('$dir/extra.csv', 's1', match => 'name', extra_columns => 'ignore')"), '3000', 'load_serial: 3000 rows');
is(table_md5('s1'), $ref, 'load_serial: rows equal COPY\'s');
sql("SELECT csvpipe.load('$dir/reordered.csv', 's2', match => 'name', workers => 0)");
is(table_md5('s2'), $ref, 'load in this session: rows equal COPY\'s');

# a submitted job: its runner maps the header
sql("CREATE TABLE j1 ($cols)");
my $job = sql("SELECT * FROM csvpipe.submit('$dir/extra.csv', 'j1', match => 'name', extra_columns => 'ignore', workers => 2, chunk_size => 8192)");
is(sql("SELECT csvpipe.wait($job, '120s')"), 'done', 'submitted job done');
is(table_md5('j1'), $ref, 'submitted job: rows equal COPY\'s');
is(sql("SELECT (options->>'match') || ' ' || (options->>'extra_columns') FROM csvpipe.jobs WHERE job_id = $job"),
	'name ignore', 'the job records match and extra_columns');

# ---- errors ----
sql("CREATE TABLE e1 ($cols)");
sub try_load
{
	my ($q) = @_;
	$q =~ s/'/''/g;
	return sql("SELECT try('$q')");
}
is(try_load("SELECT * FROM csvpipe.load('$dir/extra.csv', 'e1', match => 'name')"),
	q{42703 the file has columns that table "e1" does not have: "note", "junk" HINT: Leave them out with extra_columns => 'ignore', or add them to the table.},
	'extra file columns: listed');
is(try_load("SELECT * FROM csvpipe.submit('$dir/extra.csv', 'e1', match => 'name', header => false)"),
	q{22023 csvpipe match => 'name' needs a header HINT: The names in the file's header pick the columns: load with header => true.},
	'match needs a header');
is(try_load("SELECT csvpipe.load_serial('$dir/extra.csv', 'e1', columns => '{id}', match => 'name')"),
	q{22023 csvpipe columns and match => 'name' cannot be combined HINT: With match => 'name' the file's header names the columns it fills.},
	'columns and match');
is(try_load("SELECT * FROM csvpipe.load('$dir/extra.csv', 'e1', extra_columns => 'ignore')"),
	q{22023 csvpipe extra_columns => 'ignore' needs match => 'name'}, 'extra_columns needs match');
is(try_load("SELECT * FROM csvpipe.load('$dir/extra.csv', 'e1', match => 'names')"),
	q{22023 invalid value for option "match": "names" HINT: Valid values are 'position' and 'name'.}, 'bad match value');
is(try_load("SELECT * FROM csvpipe.load('$dir/extra.csv', 'e1', match => 'name', extra_columns => 'drop')"),
	q{22023 invalid value for option "extra_columns": "drop" HINT: Valid values are 'error' and 'ignore'.}, 'bad extra_columns value');

sql("CREATE TABLE e2 ($cols, must int NOT NULL)");
is(try_load("SELECT * FROM csvpipe.load('$dir/reordered.csv', 'e2', match => 'name', workers => 2)"),
	q{23502 column "must" of table "e2" is not in the file, and is NOT NULL without a default HINT: Add the column to the file, or give it a default.},
	'NOT NULL without default missing: error');
is(sql("SELECT count(*) FROM e2"), '0', '... nothing loaded');
is(sql("SELECT count(*) FROM csvpipe.job WHERE target = 'e2'::regclass"), '0', '... not even a job started');

open(my $fh, '>', "$dir/nohdr.csv") or die;
print $fh "1,a,2.5\n2,b,3.5\n";
close $fh;
is(try_load("SELECT * FROM csvpipe.load('$dir/nohdr.csv', 'e1', match => 'name', extra_columns => 'ignore')"),
	q{42703 no field of the file's header names a column of table "e1" HINT: Is the first record a header?  match => 'name' needs one.},
	'a header naming no column');
open($fh, '>', "$dir/twice.csv") or die;
print $fh "id,ID,name\n1,1,a\n";
close $fh;
is(try_load("SELECT * FROM csvpipe.load('$dir/twice.csv', 'e1', match => 'name')"),
	q{42701 column "id" of table "e1" is named twice in the file's header, fields 1 and 2}, 'a column named twice');
sql(q{CREATE TABLE e3 ("Id" int, "ID" int, name text)});
open($fh, '>', "$dir/ambig.csv") or die;
print $fh "id,name\n1,a\n";
close $fh;
is(try_load("SELECT * FROM csvpipe.load('$dir/ambig.csv', 'e3', match => 'name')"),
	q{42702 header field 1 "id" matches both "Id" and "ID" of table "e3" HINT: Rename one of them in the header or in the table: names that differ only in case match exactly only.},
	'a name matching two columns case-insensitively');

# ---- the positional field-count error hints what to do ----
sql("CREATE TABLE p1 (id int, name text, amount numeric, loaded text DEFAULT 'x')");
open($fh, '>', "$dir/three.csv") or die;
print $fh "id,name,amount\n1,a,2.5\n";
close $fh;
for my $w (0, 2)
{
	is(try_load("SELECT * FROM csvpipe.load('$dir/three.csv', 'p1', workers => $w)"),
		q{22P04 wrong number of fields: expected 4, found 3 HINT: If every record of the file has 3 fields: name the columns they fill with columns => ARRAY[...] (the others get their defaults), or, when the file's header names them, load with match => 'name'.},
		"workers => $w: fewer fields than columns: the hint names columns and match");
}
is(try_load("SELECT csvpipe.load_serial('$dir/extra.csv', 'p1')"),
	q{22P04 wrong number of fields: expected 4, found 5 HINT: If every record of the file has 5 fields: with a header naming them, match => 'name' maps them to columns by name, and extra_columns => 'ignore' leaves out those the target lacks.},
	'more fields than columns: the hint names match and extra_columns');
is(sql("SELECT rows_loaded FROM csvpipe.load('$dir/three.csv', 'p1', match => 'name')"), '1', '... and match => name loads it');
is(sql("SELECT loaded FROM p1"), 'x', '... with the default');

$node->stop;
done_testing();
