# 040_jobs.pl -- the job queue: submit -> the launcher runs it -> wait says
# done and the table equals COPY's (single-chunk files in the runner, larger
# ones through the parallel engine, options and a NOLOGIN role honoured);
# idempotent resubmission of a glob over 100 files; priorities order the
# queue; max_jobs holds with 6 jobs at once; wait's timeout; cancel of a
# queued and of a running job and resume; the views show a running job's
# counters moving; privileges at submit and again at run time; errors.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use CsvpipeJobs ();
use Time::HiRes qw(usleep);

my $gen = $ENV{CSVPIPE_GEN_CSV} // 'test/gen/gen_csv';
my $dir = PostgreSQL::Test::Utils::tempdir;

my $node = PostgreSQL::Test::Cluster->new('jobs');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'csvpipe'
max_prepared_transactions = 10
max_worker_processes = 24
csvpipe.max_jobs = 2
timezone = 'UTC'
});
$node->start;

sub sql { return $node->safe_psql('postgres', $_[0]); }

sub set_max_jobs { CsvpipeJobs::set_max_jobs($node, $_[0]); }

sub all_finished
{
	$node->poll_query_until('postgres',
		"SELECT count(*) = 0 FROM csvpipe.job WHERE state IN ('queued', 'running')")
	  or die "jobs did not finish: " . sql("SELECT string_agg(job_id || ':' || state, ' ') FROM csvpipe.job WHERE state IN ('queued', 'running')");
}

sub table_md5
{
	my ($table) = @_;
	return sql("SELECT count(*) || ' ' || coalesce(md5(string_agg(t::text, E'\\n' ORDER BY t::text)), '') FROM $table t");
}

sql('CREATE EXTENSION csvpipe');
my $narrow = 'id bigint, ts timestamptz, name text, amount numeric(12,2), flag boolean';

# ---- submit -> launcher -> wait: done, rows equal COPY's ----
system("$gen narrow 60000 21 > $dir/a.csv") == 0 or die;
sql("CREATE TABLE copy_a ($narrow); COPY copy_a FROM '$dir/a.csv' (FORMAT csv, HEADER)");
sql("CREATE TABLE t_a ($narrow)");
my $job = sql("SELECT * FROM csvpipe.submit('$dir/a.csv', 't_a')");
like($job, qr/^\d+$/, 'submit returns a job id');
is(sql("SELECT csvpipe.wait($job, '60s')"), 'done', 'wait returns done');
is(table_md5('t_a'), table_md5('copy_a'), 'the job loaded what COPY loads');
is( sql("SELECT state || ' ' || rows_loaded || ' ' || (started_at >= submitted_at) || ' ' || "
		  . "(finished_at >= started_at) || ' ' || submitted_by || ' ' || priority || ' ' || retries "
		  . "FROM csvpipe.jobs WHERE job_id = $job"),
	'done 60000 true true ' . sql('SELECT current_user') . ' 0 0',
	'csvpipe.jobs: state, rows, times, role, priority');
is(sql("SELECT path = '$dir/a.csv' FROM csvpipe.jobs WHERE job_id = $job"), 't', 'the job records the canonical path');

# the same file again: skipped; through a non-canonical path too
is(sql("SELECT count(*) FROM csvpipe.submit('$dir/a.csv', 't_a')"), '0', 'resubmitting a loaded file queues nothing');
is(sql("SELECT count(*) FROM csvpipe.submit('$dir/./a.csv', 't_a')"), '0', '... also through another path to it');
sql("CREATE TABLE t_a2 ($narrow)");
is(sql("SELECT count(*) FROM csvpipe.submit('$dir/a.csv', 't_a2')"), '1', 'another target is another job');
all_finished();

# a multi-chunk file through the parallel engine, chunked and atomic
for my $atomic ('true', 'false')
{
	sql("CREATE TABLE t_par_$atomic ($narrow)");
	my $j = sql("SELECT * FROM csvpipe.submit('$dir/a.csv', 't_par_$atomic', workers => 2, chunk_size => 200000, atomic => $atomic)");
	is(sql("SELECT csvpipe.wait($j, '60s')"), 'done', "parallel job (atomic $atomic) done");
	is(table_md5("t_par_$atomic"), table_md5('copy_a'), "parallel job (atomic $atomic): rows equal COPY's");
	is(sql("SELECT workers FROM csvpipe.jobs WHERE job_id = $j"), '2', "parallel job (atomic $atomic) used 2 workers");
}

# options travel with the job: delimiter, header off, a column list, and the
# submitter's DateStyle
open(my $fh, '>', "$dir/semi.csv") or die;
print $fh "1;03/04/2024;x\n2;12/01/2024;\n3;01/02/2024;z\n";
close $fh;
sql("CREATE TABLE t_opt (id int, d date, name text DEFAULT 'dflt', extra text DEFAULT 'e')");
sql("CREATE TABLE copy_opt (id int, d date, name text DEFAULT 'dflt', extra text DEFAULT 'e')");
sql("SET datestyle = 'ISO, DMY'; COPY copy_opt (id, d, name) FROM '$dir/semi.csv' (FORMAT csv, DELIMITER ';')");
$job = sql("SET datestyle = 'ISO, DMY'; SELECT * FROM csvpipe.submit('$dir/semi.csv', 't_opt', columns => '{id,d,name}', delimiter => ';', header => false)");
is(sql("SELECT csvpipe.wait($job, '60s')"), 'done', 'job with options done');
is(table_md5('t_opt'), table_md5('copy_opt'), "options and the submitter's DateStyle honoured");
is( sql("SELECT (options->>'delimiter') || (options->>'header') || (options->'columns')::text || (options->'settings'->>'DateStyle') FROM csvpipe.jobs WHERE job_id = $job"),
	';false["id", "d", "name"]ISO, DMY', 'the options are stored in csvpipe.jobs');

# ---- roles: a NOLOGIN role through SET ROLE, a LOGIN role ----
sql(q{
CREATE ROLE loader NOLOGIN;
GRANT pg_read_server_files TO loader;
CREATE ROLE alice LOGIN;
GRANT pg_read_server_files TO alice;
CREATE ROLE nofiles LOGIN;
});
sql("CREATE TABLE t_role ($narrow); GRANT INSERT ON t_role TO loader, alice, nofiles");
sql("CREATE TABLE t_noins ($narrow); GRANT SELECT ON t_noins TO alice");
sql(q{
CREATE TABLE audit_user (who text, sess text);
CREATE FUNCTION note_user() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN INSERT INTO audit_user VALUES (current_user, session_user); RETURN NULL; END $$;
CREATE TRIGGER note_user AFTER INSERT ON t_role FOR EACH STATEMENT EXECUTE FUNCTION note_user();
GRANT INSERT ON audit_user TO loader, alice;
});
$job = sql("SET ROLE loader; SELECT * FROM csvpipe.submit('$dir/a.csv', 't_role')");
is(sql("SELECT csvpipe.wait($job, '60s')"), 'done', 'a NOLOGIN role (SET ROLE) can submit, and its job runs');
is(sql("SELECT submitted_by FROM csvpipe.jobs WHERE job_id = $job"), 'loader', 'the job is the submitting role\'s');
is(sql("SELECT string_agg(DISTINCT who, ',') FROM audit_user"), 'loader', 'the inserts ran as the submitting role');
sql("TRUNCATE t_role, audit_user");
system("cp $dir/a.csv $dir/a2.csv") == 0 or die;
$job = $node->safe_psql('postgres', "SELECT * FROM csvpipe.submit('$dir/a2.csv', 't_role')",
	extra_params => [ '-U', 'alice' ]);
is(sql("SELECT csvpipe.wait($job, '60s')"), 'done', 'a LOGIN role can submit');
is(sql("SELECT string_agg(DISTINCT who || ' ' || sess, ',') FROM audit_user"), 'alice alice', 'its runner connected as that role');

# privileges at submit
my ($ret, $out, $err) = $node->psql('postgres', "SELECT csvpipe.submit('$dir/a.csv', 't_role')",
	extra_params => [ '-U', 'nofiles' ]);
like($err, qr/permission denied to submit.*pg_read_server_files/s, 'no pg_read_server_files: cannot submit');
($ret, $out, $err) = $node->psql('postgres', "SELECT csvpipe.submit('$dir/*.csv', 't_role')",
	extra_params => [ '-U', 'nofiles' ]);
like($err, qr/permission denied to submit/, '... not even a glob (it would reveal file names)');
($ret, $out, $err) = $node->psql('postgres', "SELECT csvpipe.submit('$dir/a.csv', 't_noins')",
	extra_params => [ '-U', 'alice' ]);
like($err, qr/permission denied for table t_noins/, 'no INSERT on the target: cannot submit');
sql("GRANT INSERT (id, name) ON t_noins TO alice");
($ret, $out, $err) = $node->psql('postgres', "SELECT csvpipe.submit('$dir/a.csv', 't_noins')",
	extra_params => [ '-U', 'alice' ]);
like($err, qr/permission denied for table t_noins/, 'INSERT on some columns only: cannot submit the whole row');

# privileges again when the job runs: revoked while it was queued
set_max_jobs(0);
$job = $node->safe_psql('postgres', "SELECT * FROM csvpipe.submit('$dir/semi.csv', 't_role', header => false, delimiter => ';', columns => '{id}')",
	extra_params => [ '-U', 'alice' ]);
sql("REVOKE INSERT ON t_role FROM alice");
($ret, $out, $err) = $node->psql('postgres', "SELECT csvpipe.cancel($job)", extra_params => [ '-U', 'nofiles' ]);
like($err, qr/permission denied to cancel csvpipe job $job/, "another role cannot cancel someone's job");
set_max_jobs(2);
is(sql("SELECT csvpipe.wait($job, '60s')"), 'failed', 'INSERT revoked before the job ran: it fails');
like(sql("SELECT error FROM csvpipe.jobs WHERE job_id = $job"), qr/permission denied for table t_role/,
	'... with the error of the role it runs as');
sql("GRANT INSERT ON t_role TO alice");

# ---- a glob over 100 small files; a second submit loads none ----
mkdir "$dir/many" or die;
for my $i (1 .. 100)
{
	system(sprintf("$gen narrow 50 %d > $dir/many/f%03d.csv", 100 + $i, $i)) == 0 or die;
}
mkdir "$dir/many/subdir.csv" or die;    # a directory the glob matches: skipped
sql("CREATE TABLE t_many ($narrow); CREATE TABLE copy_many ($narrow)");
for my $i (1 .. 100)
{
	sql(sprintf("COPY copy_many FROM '$dir/many/f%03d.csv' (FORMAT csv, HEADER)", $i));
}
my $ids = sql("SELECT string_agg(j::text, ',') FROM csvpipe.submit('$dir/many/*.csv', 't_many') j");
my @ids = split /,/, $ids;
is(scalar(@ids), 100, 'a glob over 100 files queues 100 jobs');
is( sql("SELECT bool_and(path ~ '/f[0-9]{3}\\.csv\$') AND array_agg(path ORDER BY job_id) = array_agg(path ORDER BY path) FROM csvpipe.job WHERE job_id IN ($ids)"),
	't', 'one job per regular file, in sorted order');
all_finished();
is(sql("SELECT count(*) FROM csvpipe.job WHERE job_id IN ($ids) AND state = 'done'"), '100', 'all 100 done');
is(table_md5('t_many'), table_md5('copy_many'), 'the 100 files loaded exactly what COPY loads');
is(sql("SELECT count(*) FROM csvpipe.submit('$dir/many/*.csv', 't_many')"), '0', 'a second submit of the glob loads none');
system("$gen narrow 50 999 > $dir/many/f101.csv") == 0 or die;
is(sql("SELECT count(*) FROM csvpipe.submit('$dir/many/*.csv', 't_many')"), '1', 'a new file in the directory: only it is queued');
utime(undef, undef, "$dir/many/f001.csv");    # touched: another version of the file
sleep 1;
system("$gen narrow 50 101 > $dir/many/f001.csv") == 0 or die;
is(sql("SELECT count(*) FROM csvpipe.submit('$dir/many/f00[1-2].csv', 't_many')"), '1', 'a rewritten file (new mtime) is queued again');
all_finished();
is(sql("SELECT count(*) FROM csvpipe.submit('$dir/none-*.csv', 't_many')"), '0', 'a glob matching nothing queues nothing');

# ---- priorities order the queue (max_jobs = 1) ----
set_max_jobs(0);
sql("CREATE TABLE t_prio ($narrow)");
my %prio_job;
for my $p (1, 5, 3, 5, 0)
{
	my $f = "$dir/many/f00" . (scalar(keys %prio_job) + 2) . ".csv";
	$prio_job{ sql("SELECT * FROM csvpipe.submit('$f', 't_prio', priority => $p)") } = $p;
}
set_max_jobs(1);
all_finished();
my $order = sql("SELECT string_agg(priority::text, ',' ORDER BY started_at) FROM csvpipe.jobs WHERE target = 't_prio'::regclass");
is($order, '5,5,3,1,0', 'highest priority first');
is( sql("SELECT string_agg(job_id::text, ',' ORDER BY started_at) = string_agg(job_id::text, ',' ORDER BY priority DESC, job_id) FROM csvpipe.jobs WHERE target = 't_prio'::regclass"),
	't', '... and oldest first among equal priorities');
is( sql("SELECT bool_and(j.finished_at <= k.started_at) FROM csvpipe.jobs j JOIN csvpipe.jobs k ON k.target = j.target AND k.started_at > j.started_at WHERE j.target = 't_prio'::regclass"),
	't', 'max_jobs = 1: one job at a time');

# ---- max_jobs = 2 holds with 6 jobs submitted at once ----
set_max_jobs(2);
sql("CREATE TABLE t_six ($narrow)");
sql("CREATE TABLE runner_samples (n int)");
for my $i (1 .. 6)
{
	system("$gen narrow 400000 " . (300 + $i) . " > $dir/six$i.csv") == 0 or die;
}
my $bg = $node->background_psql('postgres', on_error_stop => 0);
$bg->query_until(qr/sampling/, q{\echo sampling
DO $$
BEGIN
  FOR i IN 1..3000 LOOP
    INSERT INTO runner_samples
      SELECT count(*) FROM csvpipe.workers WHERE kind = 'runner';
    COMMIT;
    EXIT WHEN i > 50 AND NOT EXISTS (SELECT 1 FROM csvpipe.job WHERE state IN ('queued', 'running'));
    PERFORM pg_sleep(0.01);
  END LOOP;
END $$;
});
sql("SELECT count(*) FROM csvpipe.submit('$dir/six*.csv', 't_six', workers => 1, chunk_size => 1000000)");
all_finished();
$bg->quit;
is(sql("SELECT count(*) FROM csvpipe.jobs WHERE target = 't_six'::regclass AND state = 'done'"), '6', 'six jobs done');
is(sql("SELECT max(n) FROM runner_samples"), '2', 'never more than max_jobs runners at once (and two at some point)');
is( sql("SELECT max((SELECT count(*) FROM csvpipe.jobs k WHERE k.target = j.target AND k.started_at <= j.started_at AND k.finished_at > j.started_at)) FROM csvpipe.jobs j WHERE j.target = 't_six'::regclass"),
	'2', 'by the recorded times too: at most 2 running at once');
is(sql("SELECT count(*) FROM t_six"), '2400000', 'six jobs: every row once');

# ---- wait's timeout; cancel a queued job; resume it ----
set_max_jobs(0);
$job = sql("SELECT * FROM csvpipe.submit('$dir/many/f010.csv', 't_prio')");
my $t0 = [ Time::HiRes::gettimeofday() ];
is(sql("SELECT csvpipe.wait($job, '300 ms')"), 'queued', 'wait with a timeout returns the current state');
cmp_ok(Time::HiRes::tv_interval($t0), '>=', 0.3, '... after the timeout');
is(sql("SELECT csvpipe.cancel($job)"), 't', 'cancel a queued job');
is(sql("SELECT csvpipe.wait($job)"), 'cancelled', 'it is cancelled');
is(sql("SELECT csvpipe.cancel($job)"), 'f', 'cancelling it again: false');
is(sql("SELECT job_id || ' ' || (rows_loaded IS NULL) FROM csvpipe.resume($job)"), "$job true",
	'resume of a queued job returns at once, with its id');
is(sql("SELECT state FROM csvpipe.jobs WHERE job_id = $job"), 'queued', 'resume queued it again');
($ret, $out, $err) = $node->psql('postgres', "BEGIN; SELECT csvpipe.cancel($job); SELECT csvpipe.resume($job); SELECT csvpipe.wait($job); COMMIT;");
like($err, qr/was queued in this transaction/, 'wait in the transaction that queued the job: clear error');
set_max_jobs(2);
is(sql("SELECT csvpipe.wait($job, '60s')"), 'done', 'the resumed job runs');

# ---- a running job: the views move; cancel it; resume it ----
system("$gen narrow 1500000 7 > $dir/big.csv") == 0 or die;
sql("CREATE TABLE copy_big ($narrow); COPY copy_big FROM '$dir/big.csv' (FORMAT csv, HEADER)");
sql(qq{CREATE TABLE t_slow ($narrow);
CREATE FUNCTION slow_row() RETURNS trigger LANGUAGE plpgsql AS \$\$
BEGIN IF NEW.id % 50000 = 0 THEN PERFORM pg_sleep(0.05); END IF; RETURN NEW; END \$\$;
CREATE TRIGGER slow_row BEFORE INSERT ON t_slow FOR EACH ROW EXECUTE FUNCTION slow_row();});
$job = sql("SELECT * FROM csvpipe.submit('$dir/big.csv', 't_slow', workers => 2, chunk_size => 1000000)");
$node->poll_query_until('postgres', "SELECT rows_done > 0 FROM csvpipe.progress WHERE job_id = $job")
  or die "the job did not start";
my $s1 = sql("SELECT rows_done || ' ' || bytes_done || ' ' || bytes_total || ' ' || workers || ' ' || kind || ' ' || (last_heartbeat >= started_at) FROM csvpipe.progress WHERE job_id = $job");
usleep(600_000);
my $s2 = sql("SELECT rows_done || ' ' || bytes_done || ' ' || bytes_total || ' ' || workers || ' ' || phase FROM csvpipe.progress WHERE job_id = $job");
my @s1 = split / /, $s1;
my @s2 = split / /, $s2;
cmp_ok($s2[0], '>', $s1[0], "csvpipe.progress: rows_done moves ($s1[0] -> $s2[0])");
cmp_ok($s2[1], '>=', $s1[1], 'bytes_done does not go back');
is($s1[2], -s "$dir/big.csv", 'bytes_total is the file size');
is($s1[3], '2', 'workers');
is($s1[4], 'runner', 'a queued job is led by its runner');
is($s1[5], 'true', 'heartbeat set');
like(sql("SELECT phase FROM csvpipe.progress WHERE job_id = $job"), qr/^(loading|waiting for workers)$/, 'phase');
is( sql("SELECT rows_per_sec > 0 AND eta IS NOT NULL FROM csvpipe.progress WHERE job_id = $job"),
	't', 'rows_per_sec and eta are computed');
is( sql("SELECT string_agg(kind, ',' ORDER BY kind) FROM csvpipe.workers WHERE job_id = $job"),
	'runner,worker,worker', 'csvpipe.workers: the runner and its two workers');
is( sql("SELECT count(*) FROM csvpipe.workers WHERE job_id = $job AND kind = 'worker' AND leader_pid = (SELECT pid FROM csvpipe.workers WHERE job_id = $job AND kind = 'runner')"),
	'2', 'the workers name their leader');
is(sql("SELECT count(*) FROM csvpipe.workers WHERE kind = 'launcher'"), '1', 'csvpipe.workers shows the launcher');
cmp_ok(sql("SELECT rows_loaded FROM csvpipe.jobs WHERE job_id = $job"), '>', 0, 'csvpipe.jobs shows live rows while it runs');
is(sql("SELECT csvpipe.cancel($job)"), 't', 'cancel a running job');
is(sql("SELECT csvpipe.wait($job, '60s')"), 'cancelled', 'the running job ends cancelled');
is(sql("SELECT count(*) FROM t_slow"), '0', 'atomic: nothing of it stays');
$node->poll_query_until('postgres',
	"SELECT count(*) = 0 FROM csvpipe.workers WHERE job_id = $job")
  or die "csvpipe processes of the cancelled job are left";
pass('no runner or worker of the cancelled job is left');
is(sql("SELECT count(*) FROM pg_prepared_xacts"), '0', 'no prepared transaction left');
like(sql("SELECT error FROM csvpipe.jobs WHERE job_id = $job"), qr/canceling statement due to user request/, 'the error says why');
sql("DROP TRIGGER slow_row ON t_slow");
sql("SELECT csvpipe.resume($job)");
is(sql("SELECT csvpipe.wait($job, '120s')"), 'done', 'resumed after cancel: done');
is(table_md5('t_slow'), table_md5('copy_big'), '... with exactly the rows of COPY');
is(sql("SELECT retries FROM csvpipe.jobs WHERE job_id = $job"), '1', 'retries counts the resume');

# ---- progress NOTICEs from csvpipe.load ----
sql("CREATE TABLE t_notice ($narrow)");
($ret, $out, $err) = $node->psql('postgres',
	"SELECT rows_loaded FROM csvpipe.load('$dir/big.csv', 't_notice', workers => 1, chunk_size => 500000, progress => true)");
is($out, '1500000', 'load with progress => true');
# the load may take less than a second here: then no NOTICE is due
if ($err =~ /csvpipe.load: \d+ rows/)
{
	like($err, qr/NOTICE:  csvpipe\.load: \d+ rows, [\d.]+ of [\d.]+ MB \(\d+%\), \d+ rows\/s/, 'progress NOTICE format');
}
else
{
	pass('load finished within a second: no NOTICE due');
}
sql("TRUNCATE t_notice");
($ret, $out, $err) = $node->psql('postgres',
	"SET csvpipe.progress_notices = on; SELECT rows_loaded FROM csvpipe.load('$dir/big.csv', 't_notice', workers => 1, chunk_size => 500000, progress => false)");
unlike($err, qr/NOTICE:  csvpipe\.load/, 'progress => false overrides csvpipe.progress_notices');
is(sql("SELECT count(*) FROM csvpipe.progress"), '0', 'finished loads leave csvpipe.progress');

# ---- errors ----
($ret, $out, $err) = $node->psql('postgres', "SELECT csvpipe.submit('$dir/missing.csv', 't_a')");
like($err, qr/could not open file ".*missing.csv" for reading: No such file/, 'submit: a missing file is an error');
($ret, $out, $err) = $node->psql('postgres', "SELECT csvpipe.submit('$dir', 't_a')");
like($err, qr/is a directory/, 'submit: a directory is an error');
($ret, $out, $err) = $node->psql('postgres', "SELECT csvpipe.submit('$dir/a.csv', 't_a', delimiter => ';;')");
like($err, qr/must be a single one-byte character/, 'submit: options are checked at once');
($ret, $out, $err) = $node->psql('postgres', "SELECT csvpipe.resume(" . $ids[0] . ")");
like($err, qr/is done; only failed, cancelled or rolled back jobs can be resumed/, 'resume: a done job cannot');
is(sql("SELECT origin FROM csvpipe.jobs WHERE job_id = " . $ids[0]), 'submit', 'csvpipe.jobs: origin');
($ret, $out, $err) = $node->psql('postgres', "SELECT csvpipe.wait(987654321)");
like($err, qr/csvpipe job 987654321 does not exist/, 'wait: unknown job');
($ret, $out, $err) = $node->psql('postgres', "BEGIN ISOLATION LEVEL REPEATABLE READ; SELECT csvpipe.wait($job)");
like($err, qr/cannot run in a REPEATABLE READ/, 'wait: not in REPEATABLE READ');
sql("CREATE DATABASE other");
$node->safe_psql('other', 'CREATE EXTENSION csvpipe');
($ret, $out, $err) = $node->psql('other', "CREATE TABLE x (a int); SELECT csvpipe.submit('$dir/a.csv', 'x')");
like($err, qr/must be called in database "postgres".*csvpipe.database/s, 'submit in another database: clear error');

my $log = slurp_file($node->logfile);
unlike($log, qr/(TRAP|terminated by signal|PANIC)/, 'no crash in the server log');
$node->stop;
done_testing();
