# 010_reader.pl -- the streaming reader on generated files, without
# shared_preload_libraries: the rows csvpipe.read returns equal, in order, the
# rows COPY FROM loads (narrow and wide profiles, CRLF variant); cancel and
# statement_timeout stop a read at once and leave the session sound.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $gen = $ENV{CSVPIPE_GEN_CSV} // 'test/gen/gen_csv';
my $dir = PostgreSQL::Test::Utils::tempdir;

sub gen
{
	my ($profile, $rows, $file) = @_;
	system("$gen $profile $rows 42 > $file") == 0
	  or die "gen_csv $profile $rows failed";
}

my $node = PostgreSQL::Test::Cluster->new('reader');
$node->init;
$node->append_conf('postgresql.conf', "timezone = 'UTC'\nmax_parallel_workers_per_gather = 0");
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION csvpipe');
is($node->safe_psql('postgres', 'SHOW shared_preload_libraries'),
	'', 'csvpipe is not preloaded');

my $narrow_cols = 'id bigint, ts timestamptz, name text, amount numeric(12,2), flag boolean';
my $wide_cols = join(', ',
	'id bigint',
	(map { "c$_ int4" } 1 .. 10),
	(map { "t$_ text" } 1 .. 9),
	(map { "f$_ float8" } 1 .. 10));

# md5 and count of a query's rows in the order they come
sub rows_md5
{
	my ($query) = @_;
	return $node->safe_psql('postgres',
		"SELECT count(*) || ' ' || md5(string_agg(x::text, E'\\n')) FROM ($query) x");
}

sub compare_with_copy
{
	my ($name, $file, $cols, $opts, $copy_opts) = @_;
	$node->safe_psql('postgres',
		"DROP TABLE IF EXISTS copy_$name; CREATE TABLE copy_$name ($cols);"
		  . "COPY copy_$name FROM '$file' WITH (FORMAT csv, HEADER true$copy_opts)");
	# heap order is not file order (free space reuse); ids ascend in the file
	my $copy = rows_md5("SELECT * FROM copy_$name ORDER BY id");
	my $read = rows_md5("SELECT * FROM csvpipe.read('$file'$opts) AS t($cols)");
	is($read, $copy, "$name: csvpipe.read returns COPY's rows in file order ($copy)");
	return $copy;
}

gen('narrow', 200000, "$dir/narrow.csv");
gen('wide', 30000, "$dir/wide.csv");
compare_with_copy('narrow', "$dir/narrow.csv", $narrow_cols, '', '');
compare_with_copy('wide', "$dir/wide.csv", $wide_cols, '', '');

# the same narrow file with CRLF line ends (quoted fields hold no newline)
system("sed 's/\$/\\r/' $dir/narrow.csv > $dir/narrow_crlf.csv") == 0 or die;
compare_with_copy('narrow_crlf', "$dir/narrow_crlf.csv", $narrow_cols, '', '');

# a semicolon-separated, LATIN1 copy of the file (iconv keeps ASCII as is)
system("sed 's/,/;/g' $dir/narrow.csv | sed 's/Jr/J\xe9r/' > $dir/narrow_semi.csv") == 0 or die;
compare_with_copy('narrow_semi', "$dir/narrow_semi.csv", $narrow_cols,
	", delimiter => ';', encoding => 'LATIN1'", ", DELIMITER ';', ENCODING 'LATIN1'");

# read_text sees every record, with line numbers counting the header
is( $node->safe_psql('postgres',
		"SELECT count(*), min(line_no), max(line_no), sum(cardinality(fields)) "
		  . "FROM csvpipe.read_text('$dir/narrow.csv')"),
	'200000|2|200001|1000000',
	'read_text: every record, line numbers from 2');

# statement_timeout stops a long read inside the reader's loop
gen('narrow', 4000000, "$dir/big.csv");
my ($ret, $stdout, $stderr) = $node->psql('postgres',
	"SET statement_timeout = '300ms'; "
	  . "SELECT count(*) FROM csvpipe.read('$dir/big.csv') AS t($narrow_cols)");
like($stderr, qr/canceling statement due to statement timeout/,
	'statement_timeout cancels a read');

# pg_cancel_backend from another session
my $bg = $node->background_psql('postgres', on_error_stop => 0);
$bg->query_until(qr/started/, qq{\\echo started
SELECT count(*) FROM csvpipe.read('$dir/big.csv') AS t($narrow_cols);
});
$node->poll_query_until('postgres',
	"SELECT count(*) = 1 FROM pg_stat_activity "
	  . "WHERE query LIKE '%csvpipe.read(%' AND state = 'active' AND pid <> pg_backend_pid()")
  or die "the read did not start";
my $t0 = time;
$node->safe_psql('postgres',
	"SELECT pg_cancel_backend(pid) FROM pg_stat_activity "
	  . "WHERE query LIKE '%csvpipe.read(%' AND pid <> pg_backend_pid()");
my $alive = $bg->query('SELECT 42');
is($alive, '42', 'the cancelled session answers the next query');
like($bg->{stderr}, qr/canceling statement due to user request/, 'the read was cancelled');
ok(time - $t0 <= 2, 'cancel took effect promptly');
# the session's next read works, and the file was closed (no leak warning)
is($bg->query("SELECT count(*) FROM csvpipe.read('$dir/wide.csv') AS t($wide_cols)"),
	'30000', 'a read after the cancel works');
unlike($bg->{stderr}, qr/leak/i, 'no resource leak reported');
$bg->quit;

# nothing in the server log says a file or memory leaked, or a crash
my $log = slurp_file($node->logfile);
unlike($log, qr/(leaked|TRAP|terminated by signal)/, 'server log is clean');

$node->stop;
done_testing();
