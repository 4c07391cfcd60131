# 041_jobs_recovery.pl -- the job queue across failures: the launcher killed
# with SIGTERM (pg_terminate_backend) comes back and finishes the queue, each
# file loaded once; a runner killed in an atomic job: the job is queued again
# and loads every row exactly once; a runner killed in a chunked job that
# committed chunks: the job is queued again and loads only the chunks missing
# from the ledger; a cancelled chunked job resumed likewise, and refused on a
# changed file; a server crash in the middle of a job: it runs again after
# the restart; wait on a csvpipe.load job whose session is gone; without
# preloading, the queue functions say preloading is needed.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $gen = $ENV{CSVPIPE_GEN_CSV} // 'test/gen/gen_csv';
my $dir = PostgreSQL::Test::Utils::tempdir;

my $node = PostgreSQL::Test::Cluster->new('recovery');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'csvpipe'
max_prepared_transactions = 10
max_worker_processes = 16
csvpipe.max_jobs = 1
timezone = 'UTC'
});
$node->start;

sub sql { return $node->safe_psql('postgres', $_[0]); }

sub table_md5
{
	my ($table) = @_;
	return sql("SELECT count(*) || ' ' || coalesce(md5(string_agg(t::text, E'\\n' ORDER BY t::text)), '') FROM $table t");
}

sub launcher_pid
{
	return sql("SELECT coalesce(max(pid), 0) FROM csvpipe.workers WHERE kind = 'launcher'");
}

sub runner_pid
{
	my ($job) = @_;
	return sql("SELECT pid FROM csvpipe.workers WHERE kind = 'runner' AND job_id = $job");
}

sql('CREATE EXTENSION csvpipe');
my $narrow = 'id bigint, ts timestamptz, name text, amount numeric(12,2), flag boolean';

# ---- the launcher, killed, comes back ----
$node->poll_query_until('postgres', "SELECT count(*) = 1 FROM csvpipe.workers WHERE kind = 'launcher'")
  or die "no launcher";
my $pid1 = launcher_pid();
is(sql("SELECT pg_terminate_backend($pid1)"), 't', 'launcher terminated');
$node->poll_query_until('postgres',
	"SELECT count(*) = 1 FROM csvpipe.workers WHERE kind = 'launcher' AND pid <> $pid1")
  or die "the launcher did not come back";
pass('the launcher came back after SIGTERM');

# killed while it has a queue to serve: it finishes the queue, each file once
for my $i (1 .. 4)
{
	system("$gen narrow 200000 " . (40 + $i) . " > $dir/q$i.csv") == 0 or die;
}
sql("CREATE TABLE t_q ($narrow); CREATE TABLE copy_q ($narrow)");
sql("COPY copy_q FROM '$dir/q$_.csv' (FORMAT csv, HEADER)") for 1 .. 4;
sql("SELECT count(*) FROM csvpipe.submit('$dir/q*.csv', 't_q', workers => 2, chunk_size => 1000000)");
$node->poll_query_until('postgres', "SELECT count(*) > 0 FROM csvpipe.job WHERE state = 'running'")
  or die "the queue did not start";
my $pid2 = launcher_pid();
sql("SELECT pg_terminate_backend($pid2)");
$node->poll_query_until('postgres',
	"SELECT count(*) = 4 FROM csvpipe.job WHERE target = 't_q'::regclass AND state = 'done'")
  or die "the queue was not finished: " . sql("SELECT string_agg(job_id || ':' || state, ' ') FROM csvpipe.job");
pass('after the launcher was killed, the queue was finished');
isnt(launcher_pid(), $pid2, 'by a new launcher');
is(table_md5('t_q'), table_md5('copy_q'), 'every file loaded exactly once');

# ---- a runner killed in an atomic job: queued again, loaded once ----
system("$gen narrow 1000000 5 > $dir/big.csv") == 0 or die;
sql("CREATE TABLE copy_big ($narrow); COPY copy_big FROM '$dir/big.csv' (FORMAT csv, HEADER)");
sql(qq{
CREATE FUNCTION slow_row() RETURNS trigger LANGUAGE plpgsql AS \$\$
BEGIN IF NEW.id % 20000 = 0 THEN PERFORM pg_sleep(0.05); END IF; RETURN NEW; END \$\$;
CREATE TABLE t_atomic ($narrow);
CREATE TRIGGER slow_row BEFORE INSERT ON t_atomic FOR EACH ROW EXECUTE FUNCTION slow_row();
CREATE TABLE t_chunked ($narrow);
CREATE TRIGGER slow_row BEFORE INSERT ON t_chunked FOR EACH ROW EXECUTE FUNCTION slow_row();
});
my $job = sql("SELECT * FROM csvpipe.submit('$dir/big.csv', 't_atomic', workers => 2, chunk_size => 500000)");
$node->poll_query_until('postgres', "SELECT rows_done > 0 FROM csvpipe.progress WHERE job_id = $job")
  or die "the job did not start";
my $runner = runner_pid($job);
sql("SELECT pg_terminate_backend($runner)");
$node->poll_query_until('postgres', "SELECT retries = 1 FROM csvpipe.job WHERE job_id = $job")
  or die "the job was not queued again";
pass('a runner killed in an atomic job: the job is queued again');
is(sql("SELECT csvpipe.wait($job, '120s')"), 'done', '... and runs to the end');
is(table_md5('t_atomic'), table_md5('copy_big'), '... loading every row exactly once');
isnt(runner_pid($job), $runner, 'by another runner');
like(slurp_file($node->logfile), qr/job $job was interrupted \(its runner is gone\); queued again/,
	'the server log says so');

# ---- a runner killed in a chunked job that committed chunks: resumed ----
$job = sql("SELECT * FROM csvpipe.submit('$dir/big.csv', 't_chunked', workers => 2, chunk_size => 500000, atomic => false)");
$node->poll_query_until('postgres', "SELECT count(*) >= 2 FROM csvpipe.chunks WHERE job_id = $job")
  or die "no chunk committed";
$runner = runner_pid($job);
sql("SELECT pg_terminate_backend($runner)");
$node->poll_query_until('postgres', "SELECT retries >= 1 FROM csvpipe.job WHERE job_id = $job")
  or die "the chunked job was not queued again";
is(sql("SELECT csvpipe.wait($job, '120s')"), 'done', 'a runner killed in a chunked job: queued again, done');
is(table_md5('t_chunked'), table_md5('copy_big'), '... every row exactly once (the ledger chunks were skipped)');
is( sql("SELECT rows_loaded = (SELECT count(*) FROM copy_big) AND rows_loaded = (SELECT sum(rows) FROM csvpipe.chunks WHERE job_id = $job) FROM csvpipe.jobs WHERE job_id = $job"),
	't', '... and the job counts every row of the ledger');
like(slurp_file($node->logfile), qr/job $job was interrupted \(its runner is gone\); queued again.*\n.*DETAIL:  The \d+ chunks it committed will be skipped/,
	'the server log says the committed chunks are skipped');

# ---- a cancelled chunked job, resumed: only the missing chunks ----
sql("TRUNCATE t_chunked");
system("cp $dir/big.csv $dir/big3.csv") == 0 or die;
$job = sql("SELECT * FROM csvpipe.submit('$dir/big3.csv', 't_chunked', workers => 2, chunk_size => 500000, atomic => false)");
$node->poll_query_until('postgres', "SELECT count(*) >= 2 FROM csvpipe.chunks WHERE job_id = $job")
  or die "no chunk committed";
sql("SELECT csvpipe.cancel($job)");
is(sql("SELECT csvpipe.wait($job, '60s')"), 'cancelled', 'chunked job cancelled after some chunks');
my $kept = sql("SELECT count(*) FROM t_chunked");
cmp_ok($kept, '>', 0, 'its committed chunks stay');
sql("DROP TRIGGER slow_row ON t_chunked");
my ($ret, $out, $err);
system("touch -r $dir/big3.csv $dir/big3.ref && touch -d '+1 min' $dir/big3.csv") == 0 or die;
($ret, $out, $err) = $node->psql('postgres', "SELECT csvpipe.resume($job)");
like($err, qr/changed since csvpipe job $job started/, 'resume refuses a changed file (its chunks would not match)');
system("touch -r $dir/big3.ref $dir/big3.csv") == 0 or die;    # the same mtime again, to the ns
is(sql("SELECT job_id || ' ' || (rows_loaded IS NULL) FROM csvpipe.resume($job)"), "$job true",
	'resume of the unchanged file: queued again');
is(sql("SELECT csvpipe.wait($job, '120s')"), 'done', 'resumed: done');
is(table_md5('t_chunked'), table_md5('copy_big'), 'resumed: every row exactly once');

# a chunked job cancelled before its first chunk can be resumed
sql("ALTER SYSTEM SET csvpipe.max_jobs = 0; SELECT pg_reload_conf()");
sleep 1;
sql("TRUNCATE t_chunked");
$job = sql("SELECT * FROM csvpipe.submit('$dir/q1.csv', 't_chunked', atomic => false)");
sql("SELECT csvpipe.cancel($job)");
sql("SELECT csvpipe.resume($job)");
sql("ALTER SYSTEM SET csvpipe.max_jobs = 1; SELECT pg_reload_conf()");
is(sql("SELECT csvpipe.wait($job, '60s')"), 'done', 'a chunked job with no committed chunk resumes');

# ---- a server crash during a job: it runs again after the restart ----
sql("TRUNCATE t_atomic");
system("cp $dir/big.csv $dir/big2.csv") == 0 or die;    # big.csv is loaded already
$job = sql("SELECT * FROM csvpipe.submit('$dir/big2.csv', 't_atomic', workers => 2, chunk_size => 500000, priority => 1)");
my $queued = sql("SELECT * FROM csvpipe.submit('$dir/q2.csv', 't_atomic')");
$node->poll_query_until('postgres', "SELECT rows_done > 0 FROM csvpipe.progress WHERE job_id = $job")
  or die "the job did not start";
$node->stop('immediate');
$node->start;
is(sql("SELECT csvpipe.wait($job, '120s')"), 'done', 'after a crash, the interrupted job runs again');
is(sql("SELECT csvpipe.wait($queued, '60s')"), 'done', '... and the queued one after it');
is( sql("SELECT count(*) FROM t_atomic"),
	sql("SELECT (SELECT count(*) FROM copy_big) + 200000"), 'every row exactly once');
is(sql("SELECT count(*) FROM pg_prepared_xacts"), '0', 'no prepared transaction left');

# ---- wait on a csvpipe.load job whose session was terminated ----
sql("CREATE TABLE t_direct ($narrow)");
my $bg = $node->background_psql('postgres', on_error_stop => 0);
$bg->query_until(qr/started/, qq{\\echo started
SELECT csvpipe.load('$dir/big.csv', 't_atomic', workers => 2, chunk_size => 500000);
});
$node->poll_query_until('postgres', "SELECT count(*) = 1 FROM csvpipe.progress WHERE kind = 'leader' AND rows_done > 0")
  or die "the load did not start";
my ($direct, $leader) = split /\|/, sql("SELECT job_id || '|' || pid FROM csvpipe.progress WHERE kind = 'leader'");
sql("SELECT pg_terminate_backend($leader)");
eval { $bg->quit; };
($ret, $out, $err) = $node->psql('postgres', "SELECT csvpipe.wait($direct, '30s')");
like($err, qr/csvpipe job $direct was interrupted: the session that ran csvpipe.load is gone/,
	'wait on a csvpipe.load job whose session is gone: an error, not a hang');
is(sql("SELECT leader_gone FROM csvpipe.jobs WHERE job_id = $direct"), 't', 'csvpipe.jobs shows leader_gone');
sql("SELECT csvpipe.resolve_prepared()");

my $log = slurp_file($node->logfile);
unlike($log, qr/(TRAP|PANIC)/, 'no assertion failure in the server log');
$node->stop;

# ---- without preloading ----
my $plain = PostgreSQL::Test::Cluster->new('plain');
$plain->init;
$plain->start;
$plain->safe_psql('postgres', "CREATE EXTENSION csvpipe; CREATE TABLE t ($narrow)");
# (csvpipe.resume of a csvpipe.load job works without preloading: it runs in the session)
for my $call ("csvpipe.submit('$dir/q1.csv', 't')", 'csvpipe.cancel(1)', 'csvpipe.wait(1)')
{
	($ret, $out, $err) = $plain->psql('postgres', "SELECT $call");
	like($err, qr/needs csvpipe in shared_preload_libraries/, "without preload: $call says so");
}
is($plain->safe_psql('postgres', "SELECT count(*) FROM csvpipe.progress"), '0', 'without preload: csvpipe.progress is empty');
is($plain->safe_psql('postgres', "SELECT count(*) FROM csvpipe.workers"), '0', 'without preload: csvpipe.workers is empty');
is($plain->safe_psql('postgres', "SELECT rows_loaded FROM csvpipe.load('$dir/q1.csv', 't', workers => 0, progress => true)"),
	'200000', 'without preload: load (with progress => true) works');
$plain->stop;
done_testing();
