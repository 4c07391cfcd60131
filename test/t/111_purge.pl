# 111_purge.pl -- operating the job history for months (1.1):
#  - csvpipe.purge(older_than) removes exactly the finished jobs older than
#    the cutoff, with their chunk ledger rows and rejected rows, of the roles
#    whose privileges the caller has (a non-superuser cannot purge another
#    role's jobs; a member of the role can; a superuser purges all);
#  - submit still skips a file whose done job was purged (csvpipe.loaded_file),
#    force => true reloads it on purpose, keep_loaded_files => false forgets;
#  - a file whose jobs keep failing backs off: submit skips it until
#    csvpipe.submit_backoff * 2^(failures-1), capped by
#    csvpipe.submit_backoff_max (settings in postgresql.conf), and
#    csvpipe.jobs says so (failures, backoff_until); force queues it anyway;
#  - purge's errors.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use CsvpipeJobs ();

my $gen = $ENV{CSVPIPE_GEN_CSV} // 'test/gen/gen_csv';
my $dir = PostgreSQL::Test::Utils::tempdir;

my $node = PostgreSQL::Test::Cluster->new('purge');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'csvpipe'
max_prepared_transactions = 10
max_worker_processes = 24
csvpipe.max_jobs = 2
csvpipe.submit_backoff = '3s'
csvpipe.submit_backoff_max = '10s'
timezone = 'UTC'
});
$node->start;

sub sql { return $node->safe_psql('postgres', $_[0]); }

# a statement as a role; dies on error.  as_role_err: (stdout, stderr)
sub as_role_err
{
	my ($role, $q) = @_;
	my ($out, $err);
	my $ret = $node->psql('postgres', "SET ROLE $role; $q", stdout => \$out, stderr => \$err);
	die "as $role: $q: $err" if $ret != 0;
	return ($out, $err);
}
sub as_role { my ($out) = as_role_err(@_); return $out; }

sub set_max_jobs { CsvpipeJobs::set_max_jobs($node, $_[0]); }

sub wait_all
{
	$node->poll_query_until('postgres',
		"SELECT count(*) = 0 FROM csvpipe.job WHERE state IN ('queued', 'running')")
	  or die 'jobs did not finish';
}

sql('CREATE EXTENSION csvpipe');
my $narrow = 'id bigint, ts timestamptz, name text, amount numeric(12,2), flag boolean';
sql(qq{
CREATE ROLE alice LOGIN; CREATE ROLE bob LOGIN; CREATE ROLE carol LOGIN;
GRANT pg_read_server_files TO alice, bob;
GRANT alice TO carol;
CREATE TABLE t ($narrow); CREATE TABLE t2 ($narrow);
GRANT SELECT, INSERT ON t, t2 TO alice, bob;
});

system("$gen narrow 3000 1 > $dir/a.csv") == 0 or die;
system("$gen narrow 3000 2 > $dir/b.csv") == 0 or die;
system("$gen narrow 20000 3 > $dir/big.csv") == 0 or die;
# two bad rows (rejected with on_error => 'skip'), and a file that always fails
PostgreSQL::Test::Utils::append_to_file("$dir/c.csv",
	"id,ts,name,amount,flag\n1,2024-01-01,x,1.5,t\nzz,2024-01-01,y,2,f\n3,2024-01-01,z,3,nope\n4,2024-01-01,w,4,t\n");
PostgreSQL::Test::Utils::append_to_file("$dir/bad.csv",
	"id,ts,name,amount,flag\n1,2024-01-01,x,1.5,t\nnot_a_number,2024-01-01,y,2,f\n");

# ---- history: alice's and bob's jobs, with chunks and rejected rows ----
my @alice_old;
push @alice_old, as_role('alice', "SELECT * FROM csvpipe.submit('$dir/a.csv', 't')");
push @alice_old, as_role('alice', "SELECT * FROM csvpipe.submit('$dir/c.csv', 't', on_error => 'skip')");
wait_all();
push @alice_old, as_role('alice',
	"SELECT job_id FROM csvpipe.load('$dir/big.csv', 't', workers => 2, atomic => false, chunk_size => 65536)");
my @bob_old;
push @bob_old, as_role('bob', "SELECT * FROM csvpipe.submit('$dir/b.csv', 't2')");
push @bob_old, as_role('bob', "SELECT * FROM csvpipe.submit('$dir/c.csv', 't2', on_error => 'skip')");
wait_all();
my $alice_recent = as_role('alice', "SELECT * FROM csvpipe.submit('$dir/b.csv', 't')");
wait_all();
my $all_old = join(',', @alice_old, @bob_old);
is(sql("SELECT string_agg(state, ',' ORDER BY job_id) FROM csvpipe.job WHERE job_id IN ($all_old, $alice_recent)"),
	'done,done,done,done,done,done', 'six jobs done');
my $chunks_alice = sql("SELECT count(*) FROM csvpipe.chunks WHERE job_id = $alice_old[2]");
cmp_ok($chunks_alice, '>', 1, "the chunked load left $chunks_alice ledger rows");
is(sql("SELECT count(*) FROM csvpipe.rejected WHERE job_id IN ($alice_old[1], $bob_old[1])"),
	'4', 'two rejected rows for each c.csv job');

# the old ones finished ten days ago
sql("UPDATE csvpipe.job SET finished_at = now() - interval '10 days' WHERE job_id IN ($all_old)");

sub jobs_left
{
	return sql("SELECT string_agg(job_id::text, ',' ORDER BY job_id) FROM csvpipe.job");
}

# ---- bob purges: only his own old jobs go ----
my $chunks_bob = sql("SELECT count(*) FROM csvpipe.chunks WHERE job_id IN (" . join(',', @bob_old) . ")");
my $chunks_alice_all = sql("SELECT count(*) FROM csvpipe.chunks WHERE job_id IN (" . join(',', @alice_old) . ")");
my $res = as_role('bob',
	"SELECT jobs || ' ' || chunks || ' ' || rejected_rows || ' ' || loaded_files_kept || ' ' || loaded_files_forgotten "
	  . "FROM csvpipe.purge('7 days')");
is($res, "2 $chunks_bob 2 2 0", "bob's purge: his 2 old jobs, their 2 rejected rows, 2 loaded files kept");
is(jobs_left(), join(',', sort { $a <=> $b } (@alice_old, $alice_recent)),
	"alice's jobs are all still there: bob cannot purge another role's jobs");
is(sql("SELECT count(*) FROM csvpipe.chunks WHERE job_id = $alice_old[2]"), $chunks_alice,
	"alice's ledger rows are still there");
is(sql("SELECT count(*) FROM csvpipe.rejected WHERE job_id = $alice_old[1]"), '2',
	"alice's rejected rows are still there");
is(sql("SELECT count(*) FROM csvpipe.rejected WHERE job_id = $bob_old[1]"), '0',
	"bob's rejected rows are gone");

# carol has alice's privileges: she purges alice's old jobs, not the recent one
$res = as_role('carol',
	"SELECT jobs || ' ' || chunks || ' ' || rejected_rows || ' ' || loaded_files_kept "
	  . "FROM csvpipe.purge('7 days')");
is($res, "3 $chunks_alice_all 2 3", "a member of alice purges her 3 old jobs, with their chunks and rejected rows");
is(jobs_left(), $alice_recent, 'only the recent job is left');
is(sql('SELECT count(*) FROM csvpipe.chunks'), '0', 'no ledger rows are left');
is(sql('SELECT count(*) FROM csvpipe.rejected'), '0', 'no rejected rows are left');
is(sql("SELECT string_agg(pg_get_userbyid(submitted_by) || ':' || target::regclass || ':' || "
		  . "regexp_replace(path, '.*/', ''), ' ' ORDER BY submitted_by::regrole::text, target::regclass::text, path) "
		  . "FROM csvpipe.loaded_file"),
	'alice:t:a.csv alice:t:big.csv alice:t:c.csv bob:t2:b.csv bob:t2:c.csv',
	'csvpipe.loaded_file keeps what the purged done jobs loaded');
{
	my ($r, $o, $e) = $node->psql('postgres', 'SET ROLE carol; SELECT count(*) FROM csvpipe.loaded_file');
	like($e, qr/permission denied for table loaded_file/, 'users cannot read csvpipe.loaded_file');
}

# ---- submit still skips the purged loads; force reloads ----
my $t_count = sql('SELECT count(*) FROM t');
is(as_role('alice', "SELECT count(*) FROM csvpipe.submit('$dir/a.csv', 't')"), '0',
	'submit skips a file whose done job was purged');
is(as_role('alice', "SELECT count(*) FROM csvpipe.submit('$dir/*.csv', 't', on_error => 'skip')"), '1',
	'a glob over the directory queues only the file never loaded (bad.csv)');
wait_all();
is(as_role('bob', "SELECT count(*) FROM csvpipe.submit('$dir/a.csv', 't2')"), '1',
	"alice's loaded-file record does not make bob's submit skip");
wait_all();
$t_count = sql('SELECT count(*) FROM t');
set_max_jobs(0);    # the queue paused: the job stays queued
my $forced = as_role('alice', "SELECT * FROM csvpipe.submit('$dir/a.csv', 't', force => true)");
like($forced, qr/^\d+$/, 'force => true queues the loaded file again');
is(as_role('alice', "SELECT count(*) FROM csvpipe.submit('$dir/a.csv', 't', force => true)"), '0',
	'... but never twice while it is queued or running');
set_max_jobs(2);
is(sql("SELECT csvpipe.wait($forced, '60s')"), 'done', 'the forced reload runs');
is(sql('SELECT count(*) FROM t'), $t_count + 3000, 'and loads the file again');

# keep_loaded_files => false: the old records are forgotten, and the purged
# done job is not recorded: submit loads again
sql("UPDATE csvpipe.job SET finished_at = now() - interval '10 days' WHERE job_id = $forced");
$res = sql("SELECT jobs || ' ' || loaded_files_kept || ' ' || loaded_files_forgotten "
	  . "FROM csvpipe.purge('7 days', keep_loaded_files => false)");
is($res, '1 0 5', 'keep_loaded_files => false: the job goes unrecorded, the 5 older records are forgotten');
is(sql('SELECT count(*) FROM csvpipe.loaded_file'), '0', 'none is left');
is(as_role('alice', "SELECT count(*) FROM csvpipe.submit('$dir/a.csv', 't')"), '1',
	'submit queues a file whose record was forgotten');
wait_all();

# a dropped target's records go at the next purge (its oid could come back)
sql("CREATE TABLE t3 ($narrow); GRANT INSERT ON t3 TO alice");
my $j3 = as_role('alice', "SELECT * FROM csvpipe.submit('$dir/a.csv', 't3')");
wait_all();
sql("UPDATE csvpipe.job SET finished_at = now() - interval '10 days' WHERE job_id = $j3");
is(sql("SELECT loaded_files_kept FROM csvpipe.purge('7 days')"), '1', 'purge records t3\'s load');
sql('DROP TABLE t3');
is(sql("SELECT loaded_files_forgotten FROM csvpipe.purge('7 days')"), '1',
	'the next purge forgets the records of a dropped target');

# ---- backoff: a file that keeps failing ----
sub submit_bad
{
	my ($extra) = @_;
	$extra //= '';
	my ($out, $err) = as_role_err('alice', "SELECT * FROM csvpipe.submit('$dir/bad.csv', 't2'$extra)");
	return ($out, $err);
}
sql('GRANT INSERT ON t2 TO alice');
my ($f1) = submit_bad();
is(sql("SELECT csvpipe.wait($f1, '60s')"), 'failed', 'bad.csv fails');
is( sql("SELECT failures || ' ' || (backoff_until - finished_at) FROM csvpipe.jobs WHERE job_id = $f1"),
	'1 00:00:03', 'csvpipe.jobs: 1 failure, backoff_until = finished_at + csvpipe.submit_backoff');
my ($out, $err) = submit_bad();
if (sql("SELECT now() < backoff_until FROM csvpipe.jobs WHERE job_id = $f1") eq 't')
{
	is($out, '', 'submitted again during the backoff: skipped');
	like($err, qr/NOTICE:  csvpipe.submit skipped 1 file\(s\) whose jobs failed recently/,
		'... with a NOTICE that says why');
}
else
{
	fail('the machine is too slow to submit within the 3 s backoff') for 1 .. 2;
}
is(as_role('bob', "SELECT coalesce(failures::text, 'hidden') || ' ' || coalesce(backoff_until::text, 'hidden') "
		  . "FROM csvpipe.jobs WHERE job_id = $f1"),
	'hidden hidden', "another role does not see alice's failures");

$node->poll_query_until('postgres', "SELECT now() > backoff_until FROM csvpipe.jobs WHERE job_id = $f1")
  or die;
my ($f2) = submit_bad();
like($f2, qr/^\d+$/, 'after backoff_until, submit queues the file again');
is(sql("SELECT csvpipe.wait($f2, '60s')"), 'failed', 'and it fails again');
is( sql("SELECT failures || ' ' || (backoff_until - finished_at) FROM csvpipe.jobs WHERE job_id = $f2"),
	'2 00:00:06', 'csvpipe.jobs: 2 failures, the backoff doubled');
($out) = submit_bad();
is($out, '', 'skipped during the doubled backoff');
my ($f3) = submit_bad(', force => true');
like($f3, qr/^\d+$/, 'force => true queues it anyway');
is(sql("SELECT csvpipe.wait($f3, '60s')"), 'failed', 'it fails a third time');
is( sql("SELECT failures || ' ' || (backoff_until - finished_at) FROM csvpipe.jobs WHERE job_id = $f3"),
	'3 00:00:10', 'csvpipe.jobs: 3 failures, the backoff capped at csvpipe.submit_backoff_max');
is(sql("SELECT csvpipe.submit_backoff(n)::text FROM generate_series(0, 4) n"),
	"00:00:00\n00:00:03\n00:00:06\n00:00:10\n00:00:10", 'csvpipe.submit_backoff(0..4)');
is(sql("SELECT count(*) FROM csvpipe.jobs WHERE failures IS NOT NULL AND state <> 'failed'"), '0',
	'failures is shown for failed jobs only');

# a new version of the file is another file: no backoff
PostgreSQL::Test::Utils::append_to_file("$dir/bad.csv", "5,2024-01-01,v,5,t\n");
my ($f4) = submit_bad();
like($f4, qr/^\d+$/, 'a changed file is queued at once');
wait_all();

# purging the failed jobs resets the count
sql("UPDATE csvpipe.job SET finished_at = now() - interval '10 days' WHERE state = 'failed'");
cmp_ok(sql("SELECT jobs FROM csvpipe.purge('7 days')"), '>=', 3, 'purge removes the failed jobs');
is(sql("SELECT count(*) FROM csvpipe.jobs WHERE state = 'failed'"), '0', 'no failed job is left');

# ---- errors ----
my ($ret, $o, $e) = $node->psql('postgres', 'SELECT * FROM csvpipe.purge(NULL)',
	extra_params => [ '-v', 'VERBOSITY=verbose' ]);
like($e, qr/ERROR:  22004: csvpipe.purge: older_than must not be NULL/, 'NULL older_than: 22004');
($ret, $o, $e) = $node->psql('postgres', "SELECT * FROM csvpipe.purge('-1 day')",
	extra_params => [ '-v', 'VERBOSITY=verbose' ]);
like($e, qr/ERROR:  22023: csvpipe.purge: older_than must not be negative/, 'negative older_than: 22023');

$node->stop;

# ---- a job with prepared transactions named after it is kept ----
# (no preload on this node: no launcher settles the fake part meanwhile,
# and purge works without it)
my $stock = PostgreSQL::Test::Cluster->new('stock');
$stock->init;
$stock->append_conf('postgresql.conf', "max_prepared_transactions = 2\n");
$stock->start;
$stock->safe_psql('postgres', 'CREATE EXTENSION csvpipe');
my $dboid = $stock->safe_psql('postgres', "SELECT oid FROM pg_database WHERE datname = 'postgres'");
$stock->safe_psql('postgres', qq{
INSERT INTO csvpipe.job (job_id, path, target, state, submitted_by, finished_at, decision)
VALUES (41, '/x.csv', 'pg_class'::regclass, 'done', 10, now() - interval '10 days', 'commit'),
       (42, '/y.csv', 'pg_class'::regclass, 'done', 10, now() - interval '10 days', 'commit');
CREATE TABLE part (i int);
BEGIN; INSERT INTO part VALUES (1); PREPARE TRANSACTION 'csvpipe_${dboid}_41_0_0123456789abcdef';
});
is($stock->safe_psql('postgres', "SELECT jobs FROM csvpipe.purge('7 days')"), '1',
	'purge keeps a job that still has a prepared part (the launcher settles it by its decision)');
is($stock->safe_psql('postgres', 'SELECT string_agg(job_id::text, \',\') FROM csvpipe.job'), '41',
	'... job 41 is kept, job 42 is gone');
$stock->safe_psql('postgres', "ROLLBACK PREPARED 'csvpipe_${dboid}_41_0_0123456789abcdef'");
is($stock->safe_psql('postgres', "SELECT jobs FROM csvpipe.purge('7 days')"), '1',
	'once settled, it is purged');
$stock->stop;
done_testing();
