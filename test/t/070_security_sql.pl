# 070_security_sql.pl -- what csvpipe runs on its own behalf, and its
# privileged processes, written as the attacks of issue 10 (each must fail)
# beside the legitimate use (which must still work):
#   - settings in postgresql.conf are honoured (csvpipe.database = 'csvdb');
#   - search_path hijack: a database owner's evil.current_database() and
#     evil.= operators with ALTER DATABASE ... SET search_path, then loads by
#     another role (atomic, chunked with rejected rows, queued) and a launcher
#     restart: no evil function ever runs as a superuser;
#   - schema squatting: CREATE EXTENSION into a user's csvpipe schema fails;
#   - squatted prepared-transaction names: the load is unaffected; the job
#     id sequence is not usable by other roles;
#   - cancel: not of another database's load with the same job id, not of a
#     superuser's backend by a non-superuser; one's own load still cancels;
#   - resume by the non-superuser owner works, and a superuser resuming
#     another role's job inserts as that role;
#   - queue_size is a superuser setting;
#   - a killed leader's prepared parts are settled within seconds.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time);

my $dir = PostgreSQL::Test::Utils::tempdir;

my $node = PostgreSQL::Test::Cluster->new('secsql');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'csvpipe'
max_prepared_transactions = 10
max_worker_processes = 20
csvpipe.database = 'csvdb'
csvpipe.max_jobs = 2
});
$node->start;

# the test's own superuser sessions must not fall for the hijack below
sub sql { return $node->safe_psql($_[1] // 'csvdb', "SET search_path = public, pg_catalog; $_[0]"); }

sub poll
{
	my ($query) = @_;
	for (1 .. 600)
	{
		return 1 if sql($query) eq 't';
		select(undef, undef, undef, 0.1);
	}
	return 0;
}

# (stdout, stderr) of sql run as a role
sub as
{
	my ($role, $query, $db) = @_;
	my ($ret, $out, $err) = $node->psql($db // 'csvdb', "SET ROLE $role; $query");
	return ($out, $err);
}

sub write_rows
{
	my ($name, $n, $bad) = @_;
	open my $fh, '>', "$dir/$name" or die;
	print $fh "id,v\n";
	for my $i (1 .. $n)
	{
		print $fh (defined $bad && $i == $bad ? "x$i,v$i\n" : "$i,v$i\n");
	}
	close $fh;
	return "$dir/$name";
}

sub launcher_pid
{
	return sql("SELECT coalesce(max(pid), 0) FROM csvpipe.workers WHERE kind = 'launcher'");
}

$node->safe_psql('postgres', q{
CREATE ROLE nobody LOGIN;
CREATE ROLE loader LOGIN IN ROLE pg_read_server_files;
CREATE ROLE dbowner LOGIN;
CREATE DATABASE csvdb OWNER dbowner;
CREATE DATABASE other;
});
sql('CREATE EXTENSION csvpipe');
$node->safe_psql('other', 'CREATE EXTENSION csvpipe');

# ---- settings in postgresql.conf ----
is(sql('SHOW csvpipe.database'), 'csvdb', 'csvpipe.database from postgresql.conf is honoured');
$node->poll_query_until('csvdb', "SELECT count(*) = 1 FROM pg_stat_activity "
	  . "WHERE backend_type = 'csvpipe launcher' AND datname = 'csvdb'")
  or die 'no launcher';
pass('the launcher serves csvpipe.database = csvdb');
unlike(slurp_file($node->logfile), qr/invalid configuration parameter name "csvpipe\./,
	'no csvpipe setting of postgresql.conf was dropped at start');

# ---- queue_size: memory of every worker, a superuser setting ----
my ($out, $err) = as('nobody', "SET csvpipe.queue_size = '1GB'");
like($err, qr/permission denied to set parameter "csvpipe.queue_size"/,
	'a non-superuser cannot set csvpipe.queue_size');

# ---- search_path hijack by the database owner ----
$node->safe_psql('csvdb', q{
SET ROLE dbowner;
CREATE SCHEMA evil;
GRANT USAGE ON SCHEMA evil TO PUBLIC;
CREATE FUNCTION evil.pwn() RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
  IF (SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = current_user) THEN
    EXECUTE 'ALTER ROLE dbowner SUPERUSER';
    EXECUTE 'CREATE TABLE IF NOT EXISTS public.pwned (who text)';
  END IF;
  RETURN true;
END $$;
CREATE FUNCTION evil.current_database() RETURNS name LANGUAGE plpgsql AS $$
BEGIN PERFORM evil.pwn(); RETURN pg_catalog.current_database(); END $$;
CREATE FUNCTION evil.now() RETURNS timestamptz LANGUAGE plpgsql AS $$
BEGIN PERFORM evil.pwn(); RETURN pg_catalog.now(); END $$;
CREATE FUNCTION evil.eq8(bigint, bigint) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN PERFORM evil.pwn(); RETURN $1 OPERATOR(pg_catalog.=) $2; END $$;
CREATE FUNCTION evil.eqt(text, text) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN PERFORM evil.pwn(); RETURN $1 OPERATOR(pg_catalog.=) $2; END $$;
CREATE OPERATOR evil.= (LEFTARG = bigint, RIGHTARG = bigint, FUNCTION = evil.eq8);
CREATE OPERATOR evil.= (LEFTARG = text, RIGHTARG = text, FUNCTION = evil.eqt);
ALTER DATABASE csvdb SET search_path = evil, public, pg_catalog;
});
is($node->safe_psql('csvdb', 'SHOW search_path'), 'evil, public, pg_catalog', 'the owner set the database search_path');

sql('CREATE TABLE t_hij (id int, v text); GRANT INSERT ON t_hij TO loader');
my $f1 = write_rows('hij.csv', 3000);
my $f2 = write_rows('hij_bad.csv', 3000, 1500);
my $f1q = write_rows('hij_queued.csv', 3000);
($out, $err) = as('loader', "SELECT rows_loaded FROM csvpipe.load('$f1', 't_hij', workers => 2, mode => 'prepared', chunk_size => 8000)");
is($out, '3000', 'an atomic load by another role works') or diag $err;
($out, $err) = as('loader', "SELECT rows_loaded || ' ' || rows_rejected FROM csvpipe.load('$f2', 't_hij', "
	  . "workers => 2, chunk_size => 8000, atomic => false, on_error => 'skip')");
is($out, '2999 1', 'a chunked load with a rejected row works') or diag $err;
($out, $err) = as('loader', "SELECT csvpipe.submit('$f1q', 't_hij', atomic => true, workers => 2, chunk_size => 8000)");
like($out, qr/^\d+$/, 'a queued job is submitted') or BAIL_OUT("submit: $err");
is(sql("SELECT csvpipe.wait($out, '60s')"), 'done', 'the queued job is done');
my $lpid = launcher_pid();
sql("SELECT pg_terminate_backend($lpid)");
poll("SELECT count(*) = 1 FROM csvpipe.workers WHERE kind = 'launcher' AND pid <> $lpid")
  or die 'the launcher did not come back';
sleep 3;	# a few launcher polls with the hijacked search_path
is(sql('SELECT count(*) FROM t_hij'), '8999', 'every row loaded once');
is(sql("SELECT rolsuper FROM pg_roles WHERE rolname = 'dbowner'"), 'f',
	'search_path hijack: the database owner did not become superuser');
is(sql("SELECT to_regclass('public.pwned') IS NULL"), 't',
	'search_path hijack: no evil function ran as a superuser');
sql('ALTER DATABASE csvdb RESET search_path');

# ---- schema squatting ----
$node->safe_psql('postgres', 'CREATE DATABASE squat');
$node->safe_psql('squat', 'CREATE SCHEMA csvpipe AUTHORIZATION nobody');
my ($ret, $o2, $e2) = $node->psql('squat', 'CREATE EXTENSION csvpipe');
like($e2, qr/schema "csvpipe" is owned by role nobody, not by the superuser installing the extension/,
	'CREATE EXTENSION refuses a csvpipe schema owned by another role');
$node->safe_psql('squat', 'DROP SCHEMA csvpipe; CREATE EXTENSION csvpipe');
is($node->safe_psql('squat', "SELECT nspowner::regrole FROM pg_namespace WHERE nspname = 'csvpipe'"),
	$node->safe_psql('squat', 'SELECT current_user'), 'without the squatter it installs, in its own schema');
# a schema handed over later is refused by the C code too
$node->safe_psql('squat', 'ALTER SCHEMA csvpipe OWNER TO nobody');
($ret, $o2, $e2) = $node->psql('squat', 'SELECT csvpipe.cancel(1)');
like($e2, qr/the schema of extension csvpipe is owned by a role that is not a superuser/,
	'bookkeeping refuses an extension schema owned by a non-superuser');
# and the schema is found by pg_extension, not by its name
$node->safe_psql('squat', "ALTER SCHEMA csvpipe OWNER TO CURRENT_USER; ALTER SCHEMA csvpipe RENAME TO cp2; "
	  . "CREATE SCHEMA csvpipe AUTHORIZATION nobody; CREATE TABLE t_sq (id int, v text)");
$node->safe_psql('squat', 'SET ROLE nobody; CREATE TABLE csvpipe.job (job_id bigint)');
is($node->safe_psql('squat', "SELECT rows_loaded FROM cp2.load('$f1', 't_sq', workers => 2, chunk_size => 8000)"),
	'3000', 'renamed schema: the load records its job in the extension\'s schema');
is($node->safe_psql('squat', 'SELECT count(*) FROM cp2.job'), '1', '... in cp2.job');
is($node->safe_psql('squat', 'SELECT count(*) FROM csvpipe.job'), '0', '... not in the impostor csvpipe.job');

# ---- squatted prepared-transaction names ----
($out, $err) = as('nobody', "SELECT nextval('csvpipe.job_id_seq')");
like($err, qr/permission denied for sequence job_id_seq/, 'other roles cannot use the job id sequence');
my $next = sql("SELECT CASE WHEN is_called THEN last_value + 1 ELSE last_value END FROM csvpipe.job_id_seq");
my $dboid = sql("SELECT oid FROM pg_database WHERE datname = 'csvdb'");
for my $gid ("csvpipe_${next}_0", "csvpipe_${next}_1", "csvpipe_${dboid}_${next}_0_0000000000000000")
{
	$node->safe_psql('csvdb', "SET ROLE nobody; BEGIN; SELECT 1; PREPARE TRANSACTION '$gid'")
	  if $gid !~ /0000000000000000$/;
	$node->safe_psql('other', "SET ROLE nobody; BEGIN; SELECT 1; PREPARE TRANSACTION '$gid'")
	  if $gid =~ /0000000000000000$/;
}
sql('CREATE TABLE t_gid (id int, v text); GRANT INSERT ON t_gid TO loader');
($out, $err) = as('loader', "SELECT job_id || ' ' || rows_loaded FROM csvpipe.load('$f1', 't_gid', workers => 2, mode => 'prepared', chunk_size => 8000)");
is($out, "$next 3000", 'squatted names: the atomic load takes the next job id and loads every row') or diag $err;
is(sql('SELECT count(*) FROM t_gid'), '3000', 'squatted names: every row committed, once');
$node->psql('csvdb', "ROLLBACK PREPARED 'csvpipe_${next}_0'");
$node->psql('csvdb', "ROLLBACK PREPARED 'csvpipe_${next}_1'");
$node->psql('other', "ROLLBACK PREPARED 'csvpipe_${dboid}_${next}_0_0000000000000000'");

# ---- cancel ----
sql('CREATE TABLE t_can (id int, v text); GRANT INSERT ON t_can TO loader');
$node->safe_psql('other', 'CREATE TABLE t_can (id int, v text)');
# a load in database "other", blocked by a lock
my $locker = $node->background_psql('other', on_error_stop => 1);
$locker->query_safe('BEGIN; LOCK TABLE t_can IN SHARE MODE');
my $bg = $node->background_psql('other', on_error_stop => 0);
$bg->query_until(qr/started/, qq{\\echo started
SELECT rows_loaded FROM csvpipe.load('$f1', 't_can', workers => 1, mode => 'chunked');
});
$node->poll_query_until('other', "SELECT count(*) = 1 FROM csvpipe.job WHERE state = 'running'") or die;
my $ojob = $node->safe_psql('other', "SELECT job_id FROM csvpipe.job WHERE state = 'running'");
# a job with the same id in csvdb, owned by nobody
sql("SELECT setval('csvpipe.job_id_seq', greatest($ojob, (SELECT max(job_id) FROM csvpipe.job)))");
sql("INSERT INTO csvpipe.job (job_id, path, target, state, submitted_by) "
	  . "VALUES ($ojob, '/x', 't_can'::regclass, 'running', 'nobody'::regrole)")
  if sql("SELECT count(*) FROM csvpipe.job WHERE job_id = $ojob") eq '0';
sql("UPDATE csvpipe.job SET submitted_by = 'nobody'::regrole, state = 'running' WHERE job_id = $ojob");
as('nobody', "SELECT csvpipe.cancel($ojob)");
sleep 1;
$locker->query_safe('COMMIT');
$bg->query_until(qr/done/, "\\echo done\n");
$bg->quit;
is($node->safe_psql('other', 'SELECT count(*) FROM t_can'), '3000',
	'cancel in another database with the same job id: that load was not cancelled');
$node->safe_psql('other', 'TRUNCATE t_can');

# a superuser's backend running a load as loader: loader may not cancel it
$locker = $node->background_psql('csvdb', on_error_stop => 1);
$locker->query_safe('BEGIN; LOCK TABLE t_can IN SHARE MODE');
$bg = $node->background_psql('csvdb', on_error_stop => 0);
$bg->query_until(qr/started/, qq{\\echo started
SET ROLE loader;
SELECT rows_loaded FROM csvpipe.load('$f1', 't_can', workers => 1, mode => 'chunked');
});
$node->poll_query_until('csvdb', "SELECT count(*) = 1 FROM csvpipe.job WHERE state = 'running' AND target = 't_can'::regclass") or die;
my $sjob = sql("SELECT job_id FROM csvpipe.job WHERE state = 'running' AND target = 't_can'::regclass");
($out, $err) = as('loader', "SELECT csvpipe.cancel($sjob)");
like($err, qr/permission denied to cancel csvpipe job $sjob/, 'a non-superuser cannot cancel a superuser\'s backend');
$locker->query_safe('COMMIT');
$bg->query_until(qr/done/, "\\echo done\n");
$bg->quit;
is(sql('SELECT count(*) FROM t_can'), '3000', '... and that load went on');

# loader's own load: cancel works
$locker = $node->background_psql('csvdb', on_error_stop => 1);
$locker->query_safe('BEGIN; LOCK TABLE t_can IN SHARE MODE');
my ($bgout, $bgerr) = ('', '');
my $h = IPC::Run::start([ 'psql', '-XAtq', '-d', $node->connstr('csvdb') . ' user=loader', '-c',
		"SELECT rows_loaded FROM csvpipe.load('$f1', 't_can', workers => 1, mode => 'chunked')" ],
	'>', \$bgout, '2>', \$bgerr);
$node->poll_query_until('csvdb', "SELECT count(*) = 1 FROM csvpipe.job WHERE state = 'running' AND target = 't_can'::regclass") or die;
my $ljob = sql("SELECT job_id FROM csvpipe.job WHERE state = 'running' AND target = 't_can'::regclass");
($out, $err) = as('loader', "SELECT csvpipe.cancel($ljob)");
is($out, 't', 'a role cancels its own load');
$h->finish;
$locker->query_safe('ROLLBACK');
$locker->quit;
like($bgerr, qr/canceling statement due to user request/, '... which stops with the cancel error');

# ---- resume ----
sql("CREATE TABLE t_res (id int CHECK (id < 1500), v text, who text DEFAULT current_user); "
	  . "GRANT INSERT ON t_res TO loader");
my $f3 = write_rows('res.csv', 3000);
($out, $err) = as('loader', "SELECT csvpipe.load('$f3', 't_res', columns => '{id,v}', workers => 1, "
	  . "atomic => false, chunk_size => 4000)");
like($err, qr/violates check constraint/, 'a chunked load that fails half way');
my $rjob = sql("SELECT max(job_id) FROM csvpipe.job WHERE target = 't_res'::regclass");
my $before = sql('SELECT count(*) FROM t_res');
ok($before > 0 && $before < 1500, "it committed some chunks ($before rows)");
sql('ALTER TABLE t_res DROP CONSTRAINT t_res_id_check');
($out, $err) = as('loader', "SELECT rows_loaded FROM csvpipe.resume($rjob)");
is($err, '', 'resume by the non-superuser owner of the job works');
is(sql("SELECT count(*) || ' ' || count(DISTINCT id) || ' ' || string_agg(DISTINCT who, ',') FROM t_res"),
	'3000 3000 loader', '... every row exactly once, inserted as loader');

sql('TRUNCATE t_res; ALTER TABLE t_res ADD CHECK (id < 1500)');
($out, $err) = as('loader', "SELECT csvpipe.load('$f3', 't_res', columns => '{id,v}', workers => 1, "
	  . "atomic => false, chunk_size => 4000)");
$rjob = sql("SELECT max(job_id) FROM csvpipe.job WHERE target = 't_res'::regclass");
sql('ALTER TABLE t_res DROP CONSTRAINT t_res_id_check');
sql("SELECT csvpipe.resume($rjob)");
is(sql("SELECT count(*) || ' ' || string_agg(DISTINCT who, ',') FROM t_res"), '3000 loader',
	'a superuser resuming loader\'s job: the rows are inserted as loader');
($out, $err) = as('nobody', "SELECT csvpipe.resume($rjob)");
like($err, qr/permission denied to resume csvpipe job $rjob/, 'another role cannot resume the job');

# ---- a killed leader's prepared parts: settled within seconds ----
sql('CREATE TABLE t_kill (id int PRIMARY KEY, v text); GRANT INSERT ON t_kill TO loader');
my $f4 = write_rows('kill.csv', 20000);
# all parts prepared, the coordinator held up on the job row, then the
# leader and the coordinator are killed: nobody is left to finish the parts
my $holder = $node->background_psql('csvdb', on_error_stop => 1);
$holder->query_safe('BEGIN; LOCK TABLE t_kill IN SHARE MODE');
$bg = $node->background_psql('csvdb', on_error_stop => 0);
$bg->query_until(qr/started/, qq{\\echo started
SET ROLE loader;
SELECT csvpipe.load('$f4', 't_kill', workers => 2, mode => 'prepared', chunk_size => 10000);
});
poll("SELECT count(*) = 1 FROM csvpipe.job WHERE state = 'running' AND target = 't_kill'::regclass")
  or die 'the load did not start';
my $kjob = sql("SELECT job_id FROM csvpipe.job WHERE state = 'running' AND target = 't_kill'::regclass");
my $rowlock = $node->background_psql('csvdb', on_error_stop => 1);
$rowlock->query_safe("BEGIN; SELECT 1 FROM csvpipe.job WHERE job_id = $kjob FOR UPDATE");
$holder->query_safe('COMMIT');
poll("SELECT count(*) = 2 FROM pg_prepared_xacts WHERE gid LIKE 'csvpipe%'")
  or die 'the parts were not prepared';
poll("SELECT count(*) = 1 FROM csvpipe.workers WHERE kind = 'coordinator' AND job_id = $kjob")
  or die 'no coordinator';
sql("SELECT pg_terminate_backend(pid) FROM csvpipe.workers WHERE job_id = $kjob AND kind = 'coordinator'");
sql("SELECT pg_terminate_backend(pid) FROM csvpipe.progress WHERE job_id = $kjob");
eval { $bg->quit; };
poll("SELECT count(*) = 0 FROM csvpipe.progress WHERE job_id = $kjob") or die;
$rowlock->query_safe('ROLLBACK');
$rowlock->quit;
$holder->quit;
my $t0 = time();
my $settled = poll("SELECT count(*) = 0 FROM pg_prepared_xacts WHERE gid LIKE 'csvpipe%'");
my $secs = time() - $t0;
ok($settled && $secs < 15, sprintf('a killed leader\'s prepared parts were settled after %.1f s', $secs));
is(sql("SELECT state || ' ' || decision FROM csvpipe.job WHERE job_id = $kjob"), 'failed rollback',
	'... the job is failed and rolled back');
is(sql('SELECT count(*) FROM t_kill'), '0', '... no row of it committed');
$node->safe_psql('csvdb', "SET lock_timeout = '5s'; ALTER TABLE t_kill ADD COLUMN extra int");
pass('... and no lock is left on the target');

unlike(slurp_file($node->logfile), qr/(TRAP|PANIC)/, 'no assertion failure in the server log');
$node->stop;
done_testing();
