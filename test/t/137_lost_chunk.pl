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
# held no chunk (no replacement was started: the load hung).  And a lost
# worker's rejected rows no longer count towards max_errors (the chunk's next
# attempt counts them again).  Also: only a superuser sets that fault.
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
max_prepared_transactions = 10
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

# The fault is for loads that survive a lost worker: a read and a
# transaction-mode load (which a lost worker fails by design) ignore it,
# and a DBA sees it in pg_settings if it was left on.
is(sql("SELECT count(*) FROM pg_settings WHERE name = 'csvpipe.debug_fault' AND context = 'superuser'"),
	'1', 'pg_settings shows csvpipe.debug_fault');
for my $fault ('lose_worker_after_label', 'lose_idle_worker')
{
	($ret, $out, $err) = $node->psql('postgres', qq{
SET csvpipe.debug_fault = '$fault';
SELECT count(*) || ' ' || md5(string_agg(t::text, ',' ORDER BY id))
  FROM csvpipe.read('$dir/rows.csv', workers => 2, chunk_size => 65536) AS t($narrow);
});
	is("$out", $expect, "$fault: a read with workers ignores it") or diag($err);
	my $t = "txn_$fault";
	sql("CREATE TABLE $t ($narrow)");
	($ret, $out, $err) = $node->psql('postgres', qq{
SET csvpipe.debug_fault = '$fault';
SELECT rows_loaded FROM csvpipe.load('$dir/rows.csv', '$t', workers => 2, mode => 'transaction',
	chunk_size => 65536);
});
	is(sql(sprintf($digest, $t)), $expect, "$fault: a transaction-mode load ignores it") or diag($err);
}

# ---- a lost worker's rejected rows no longer count towards max_errors ----
# Ten bad rows (a CHECK) come before the row whose trigger terminates the
# worker, once; the chunk goes to another worker, which rejects the same
# ten.  With max_errors => 10 the load must succeed with ten rejected rows:
# before, the lost attempt's ten still counted and the retry hit 'too many'.
open(my $fh, '>', "$dir/ten_bad.csv") or die;
print $fh "id,amount\n";
for my $i (1 .. 400)
{
	my $amount = ($i >= 10 && $i < 20) ? -1 : $i;
	print $fh "$i,$amount\n";
}
close($fh);
sql(q{
CREATE SEQUENCE kill_once;
CREATE FUNCTION kill_at_300() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	IF NEW.id = 300 AND nextval('kill_once') = 1 THEN
		PERFORM pg_terminate_backend(pg_backend_pid());
	END IF;
	RETURN NEW;
END $$;
});
for my $atomic ('false', 'true')
{
	my $t = "ten_bad_$atomic";
	sql("CREATE TABLE $t (id int, amount int CHECK (amount >= 0));
		CREATE TRIGGER kill BEFORE INSERT ON $t FOR EACH ROW EXECUTE FUNCTION kill_at_300();
		SELECT setval('kill_once', 1, false)");
	($ret, $out, $err) = $node->psql('postgres', qq{
SET statement_timeout = '120s';
SELECT rows_loaded || ' ' || rows_rejected FROM csvpipe.load('$dir/ten_bad.csv', '$t', workers => 1,
	atomic => $atomic, on_error => 'skip', max_errors => 10);
});
	like($err, qr/NOTICE:  csvpipe worker 0 was lost; 1 chunk\(s\) will be loaded again/,
		"atomic $atomic: the trigger ended the worker after it rejected ten rows");
	is($out, '390 10', "atomic $atomic: max_errors => 10 holds: the load succeeded with ten rows rejected")
	  or diag($err);
	is(sql("SELECT count(*) || ' ' || min(line_no) || ' ' || max(line_no) FROM csvpipe.rejected r
			JOIN csvpipe.jobs j USING (job_id) WHERE j.target = '$t'::regclass"),
		'10 11 20', "atomic $atomic: csvpipe.rejected holds each bad line once");
	is(sql("SELECT count(*) || ' ' || sum(id) FROM $t"), '390 ' . (400 * 401 / 2 - 145),
		"atomic $atomic: every good row is in the table once");
}

$node->stop;
done_testing();
