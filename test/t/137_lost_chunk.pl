# 137_lost_chunk.pl -- a worker lost just after the leader sent it a chunk
# it converted itself loses no row.
#
# In a chunked load the leader converts chunks while the workers insert
# (src/parallel/preparse.c), and sends a converted chunk as its label
# followed by its rows.  A worker found lost between the two used to take
# the chunk with it: the chunk was not yet marked as the worker's, so it was
# neither done nor sent again, and the load ended "successfully" without its
# rows (seen once in 050's terminate-20-times run: 996,347 of 1,000,000).
# No timing hits that moment reliably, so csvpipe.debug_fault makes the
# leader stop the worker exactly there; the load must end equal to COPY,
# with the job counting every row.  Same for the only worker lost while it
# held no chunk (no replacement was started: the load hung).  Also: only a superuser sets that fault.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $gen = $ENV{CSVPIPE_GEN_CSV} // 'test/gen/gen_csv';
my $dir = PostgreSQL::Test::Utils::tempdir;

my $node = PostgreSQL::Test::Cluster->new('lostchunk');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'csvpipe'
max_worker_processes = 20
timezone = 'UTC'
});
$node->start;
sub sql { return $node->safe_psql('postgres', $_[0]); }
sql('CREATE EXTENSION csvpipe');
sql('CREATE ROLE plain LOGIN');

# only a superuser may make faults happen
my ($ret, $out, $err) = $node->psql('postgres',
	"SET ROLE plain; SET csvpipe.debug_fault = 'lose_worker_after_label'");
like($err, qr/permission denied to set parameter "csvpipe.debug_fault"/,
	'a plain role cannot set csvpipe.debug_fault');
($ret, $out, $err) = $node->psql('postgres', "SET csvpipe.debug_fault = 'crash'");
like($err, qr/invalid value for parameter "csvpipe.debug_fault": "crash"/,
	'an unknown fault is refused');

my $narrow = 'id bigint, ts timestamptz, name text, amount numeric(12,2), flag boolean';
system("$gen narrow 300000 7 > $dir/rows.csv") == 0 or die;
sql("CREATE TABLE rows_copy ($narrow); COPY rows_copy FROM '$dir/rows.csv' (FORMAT csv, HEADER)");
my $digest = "SELECT count(*) || ' ' || md5(string_agg(t::text, ',' ORDER BY id)) FROM %s t";
my $expect = sql(sprintf($digest, 'rows_copy'));
like($expect, qr/^300000 /, 'COPY loaded the file');

# lose_worker_after_label: the moment above.  lose_idle_worker: the only
# worker is lost while it holds no chunk; the rest of the file still needs
# one (before: no replacement was started and the load waited forever).
for my $case (['lose_worker_after_label', 1], ['lose_worker_after_label', 2],
	['lose_idle_worker', 1], ['lose_idle_worker', 2])
{
	my ($fault, $workers) = @$case;
	my $t = "${fault}_$workers";
	sql("CREATE TABLE $t ($narrow)");
	($ret, $out, $err) = $node->psql('postgres', qq{
SET statement_timeout = '120s';
SET csvpipe.debug_fault = '$fault';
SELECT rows_loaded FROM csvpipe.load('$dir/rows.csv', '$t', workers => $workers,
	atomic => false, chunk_size => 65536);
});
	is($ret, 0, "$fault, $workers worker(s): the load succeeded") or diag($err);
	like($err, qr/NOTICE:  csvpipe worker \d+ was lost; \d+ chunk\(s\) will be loaded again/,
		"$fault, $workers worker(s): the fault stopped a worker during the load");
	is($out, '300000', "$fault, $workers worker(s): the load counts every row");
	is(sql(sprintf($digest, $t)), $expect,
		"$fault, $workers worker(s): the table equals COPY's, nothing lost, nothing doubled");
	is(sql("SELECT state || ' ' || rows_loaded FROM csvpipe.jobs WHERE target = '$t'::regclass"),
		'done 300000', "$fault, $workers worker(s): the job is done with every row");
}

$node->stop;
done_testing();
