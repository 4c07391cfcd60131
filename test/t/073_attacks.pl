# 073_attacks.pl -- attacks on csvpipe by non-superusers that the first
# security tests (070-072) did not cover, each written as the attack
# (it must fail) beside the legitimate use (it must still work):
#   - submit's "already loaded" skip: another role queues the victim's file
#     first (with skip_rows past its end) so the victim's own submit would
#     be a silent no-op, and learns from its submit that someone loaded a
#     file into a table;
#   - the cache view: another role's read options (null_string), columns,
#     row and byte counts are not shown to a role that may not read the file;
#   - the database owner's ALTER DATABASE ... SET session_authorization,
#     role, default_transaction_read_only, exit_on_error: csvpipe's superuser
#     processes (launcher, coordinators) are not changed by them, so another
#     role's atomic load (direct and queued) commits every row it reports;
#   - a queued job records the file it read, not one moved into place since.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run;
use POSIX ();

my $dir = PostgreSQL::Test::Utils::tempdir;

my $node = PostgreSQL::Test::Cluster->new('attacks');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'csvpipe'
max_prepared_transactions = 10
max_worker_processes = 20
csvpipe.database = 'csvdb'
csvpipe.max_jobs = 2
});
$node->start;

my $su = $node->safe_psql('postgres', 'SELECT current_user');

# The test's own superuser sessions: immune to the owner's database settings
# below (startup options rank above ALTER DATABASE ... SET).
$ENV{PGOPTIONS} = "-c session_authorization=$su -c role=none "
  . '-c default_transaction_read_only=off -c exit_on_error=off';

sub sql { return $node->safe_psql($_[1] // 'csvdb', $_[0]); }

# (stdout, stderr) of sql run as a role
sub as
{
	my ($role, $query, $db) = @_;
	my ($ret, $out, $err) = $node->psql($db // 'csvdb', "SET ROLE $role; $query");
	return ($out, $err);
}

# (stdout, stderr) of sql in a session that role logs in with
sub login
{
	my ($role, $query) = @_;
	local $ENV{PGOPTIONS} = '';
	my ($ret, $out, $err) = $node->psql('csvdb', $query, extra_params => [ '-U', $role ]);
	return ($out, $err);
}

sub write_rows
{
	my ($name, $n) = @_;
	open my $fh, '>', "$dir/$name" or die;
	print $fh "id,v\n";
	print $fh "$_,v$_\n" for 1 .. $n;
	close $fh;
	return "$dir/$name";
}

sub poll
{
	my ($query) = @_;
	for (1 .. 300)
	{
		return 1 if sql($query) eq 't';
		select(undef, undef, undef, 0.1);
	}
	return 0;
}

$node->safe_psql('postgres', q{
CREATE ROLE nobody LOGIN;
CREATE ROLE loader LOGIN IN ROLE pg_read_server_files;
CREATE ROLE loader2 LOGIN IN ROLE pg_read_server_files;
CREATE ROLE dbowner LOGIN;
CREATE DATABASE csvdb OWNER dbowner;
});
sql('CREATE EXTENSION csvpipe');
$node->poll_query_until('csvdb', "SELECT count(*) = 1 FROM pg_stat_activity "
	  . "WHERE backend_type = 'csvpipe launcher' AND datname = 'csvdb'")
  or die 'no launcher';

# ---- (a) submit's "already loaded" skip is per role ----
sql('CREATE TABLE t_skip (id int, v text); GRANT INSERT, SELECT ON t_skip TO loader, loader2');
my $fv = write_rows('victim.csv', 2000);
my ($out, $err) = as('loader2', "SELECT csvpipe.submit('$fv', 't_skip', skip_rows => 1000000000)");
like($out, qr/^\d+$/, 'the attacker queues the victim\'s file first') or diag $err;
my $ajob = $out;
($out, $err) = as('loader', "SELECT csvpipe.submit('$fv', 't_skip')");
like($out, qr/^\d+$/, "another role's job on the same file does not make the victim's submit a no-op")
  or diag $err;
my $vjob = $out || 0;
is(sql("SELECT csvpipe.wait($ajob, '60s')"), 'done', "the attacker's job ran (and loaded nothing)");
is(sql("SELECT csvpipe.wait($vjob, '60s')"), 'done', "the victim's job ran") if $vjob;
is(sql('SELECT count(*) FROM t_skip'), '2000', "the victim's rows are loaded");
($out, $err) = as('loader', "SELECT count(*) FROM csvpipe.submit('$fv', 't_skip')");
is($out, '0', 'a role\'s own loaded file is still skipped when submitted again') or diag $err;
my $fl = write_rows('loaded.csv', 100);
($out, $err) = as('loader', "SELECT rows_loaded FROM csvpipe.load('$fl', 't_skip')");
is($out, '100', 'the victim loads another file') or diag $err;
($out, $err) = as('loader2', "SELECT count(*) FROM csvpipe.submit('$fl', 't_skip', skip_rows => 1000000000)");
is($out, '1', 'submit tells another role nothing about who loaded a file') or diag $err;

# ---- (b) the cache view: another role's read is not shown ----
my $fc = write_rows('cached.csv', 50);
utime(time - 60, time - 60, $fc);	# old enough to be cached
($out, $err) = as('loader', "SELECT count(*) FROM csvpipe.read('$fc', null_string => 'S3CRET-NULL') "
	  . "AS x(id int, secretcol text)");
is($out, '50', 'a cached read') or diag $err;
is(sql("SELECT count(*) FROM csvpipe.cache WHERE options LIKE '%S3CRET-NULL%'"), '1',
	'the read is cached');
($out, $err) = as('nobody', "SELECT count(*), count(path), count(options), count(columns), "
	  . "count(rows), count(bytes) FROM csvpipe.cache");
is($out, '1|0|0|0|0|0',
	"a role that may not read the file sees the entry, not its path, options, columns, rows or bytes")
  or diag $err;
($out, $err) = as('nobody', "SELECT count(*) FROM csvpipe.cache_1_0() WHERE options LIKE '%S3CRET%' "
	  . "OR columns IS NOT NULL");
is($out, '0', '... nor through the function under the view') or diag $err;
($out, $err) = as('loader2', "SELECT count(*) FROM csvpipe.cache WHERE options LIKE '%S3CRET-NULL%' "
	  . "AND columns = 'integer, text' AND rows = 50 AND bytes > 0 AND path LIKE '%/cached.csv'");
is($out, '1', 'a role that may read the file sees it all') or diag $err;

# ---- a queued job records the identity of the file it read ----
# A file moved into place (as files should be) while a runner loads the
# previous version: the job must record the version it read, or the next
# submit takes the new file for loaded and skips it.
sql(q{CREATE TABLE t_mv (id int, v text);
GRANT INSERT ON t_mv TO loader;});
my $fmv = write_rows('moved.csv', 100);
my $fnew = write_rows('moved.new', 7);
sql(qq{CREATE FUNCTION mv_on_last() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER AS \$\$
BEGIN
  IF NEW.id = 100 THEN
    COPY (SELECT 1) TO PROGRAM 'mv $fnew $fmv';
  END IF;
  RETURN NEW;
END \$\$;
CREATE TRIGGER mv_on_last BEFORE INSERT ON t_mv FOR EACH ROW EXECUTE FUNCTION mv_on_last();});
($out, $err) = as('loader', "SELECT csvpipe.submit('$fmv', 't_mv')");
like($out, qr/^\d+$/, 'a file is queued') or diag $err;
is(sql("SELECT csvpipe.wait(" . ($out || 0) . ", '60s')"), 'done', 'its job is done');
ok(!-e $fnew, 'the new version was moved into place during the load');
($out, $err) = as('loader', "SELECT count(*) FROM csvpipe.submit('$fmv', 't_mv')");
is($out, '1', 'the new version of the file is not taken for loaded') or diag $err;
poll("SELECT count(*) = 0 FROM csvpipe.jobs WHERE state IN ('queued', 'running')");
is(sql('SELECT count(*) FROM t_mv'), '107', 'both versions are loaded, once each');

# ---- (c) the database owner's settings do not reach csvpipe's superuser processes ----
$node->safe_psql('csvdb', q{
SET ROLE dbowner;
ALTER DATABASE csvdb SET session_authorization = 'dbowner';
ALTER DATABASE csvdb SET role = 'dbowner';
ALTER DATABASE csvdb SET default_transaction_read_only = on;
ALTER DATABASE csvdb SET exit_on_error = on;
});
# the victim's own sessions work as the administrator set them up
sql('ALTER ROLE loader IN DATABASE csvdb SET default_transaction_read_only = off');
sql('ALTER ROLE loader IN DATABASE csvdb SET exit_on_error = off');
{
	local $ENV{PGOPTIONS} = '';
	is($node->safe_psql('csvdb', 'SELECT current_user'), 'dbowner',
		"the owner's settings reach a superuser's new session");
}
my $lpid = sql("SELECT pid FROM pg_stat_activity WHERE backend_type = 'csvpipe launcher'");
sql("SELECT pg_terminate_backend($lpid)");
ok(poll("SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 'csvpipe launcher' "
		  . "AND pid <> $lpid AND state = 'idle'"),
	'the launcher runs again in the database with the owner\'s settings');

sql('CREATE TABLE t_set (id int, v text); GRANT INSERT ON t_set TO loader');
my $f1 = write_rows('set1.csv', 3000);
my $f2 = write_rows('set2.csv', 3000);
($out, $err) = login('loader', "SELECT rows_loaded FROM csvpipe.load('$f1', 't_set', "
	  . "workers => 2, chunk_size => 8000)");
is($out, '3000', 'an atomic parallel load by another role reports its rows') or diag $err;
is(sql('SELECT count(*) FROM t_set'), '3000', '... and committed every one of them');
($out, $err) = login('loader', "SELECT csvpipe.submit('$f2', 't_set', workers => 2, chunk_size => 8000)");
like($out, qr/^\d+$/, 'a queued job is submitted') or diag $err;
is(sql("SELECT csvpipe.wait(" . ($out || 0) . ", '60s')"), 'done', 'the queued job is done');
is(sql('SELECT count(*) FROM t_set'), '6000', '... with every row committed');
is(sql("SELECT count(*) FROM pg_prepared_xacts WHERE gid LIKE 'csvpipe%'"), '0',
	'no prepared part is left behind');
($out, $err) = login('dbowner', "SELECT pg_cancel_backend(pid) FROM pg_stat_activity "
	  . "WHERE backend_type = 'csvpipe launcher'");
like($err, qr/must be a superuser to cancel superuser query/,
	'the owner cannot cancel the launcher');

sql('ALTER DATABASE csvdb RESET ALL');

# ---- (d) one resume of a job at a time ----
# An atomic (mode => 'prepared') load into a slow table is cancelled, then
# two sessions resume it at once: one loads it, the other is refused at
# once (55P03) and leaves the job alone -- in particular the gid nonce the
# winner's run recorded, without which its parts could not be verified.
# (The default mode is 'transaction', which prepares nothing and records no
# nonce: the mode is asked for.)  The stale-snapshot case below uses a
# transaction-mode job, so resume is covered in both modes.
sql(q{CREATE TABLE t_conc (id int PRIMARY KEY, v text);
CREATE FUNCTION slow_row() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN PERFORM pg_sleep(0.0005); RETURN NEW; END $$;
CREATE TRIGGER slow_row BEFORE INSERT ON t_conc FOR EACH ROW EXECUTE FUNCTION slow_row();
GRANT INSERT ON t_conc TO loader;});
my $fconc = write_rows('conc.csv', 5000);
my ($o1, $e1, $o2, $e2) = ('', '', '', '');
local $ENV{PGOPTIONS} = '';

# a cancelled load of conc.csv into t_conc in this mode, by loader: its job id
sub cancelled_job
{
	my ($mode) = @_;
	my ($lo, $le) = ('', '');
	my $h = IPC::Run::start([ 'psql', '-XAtq', '-d', $node->connstr('csvdb') . ' user=loader',
			'-c', "SELECT rows_loaded FROM csvpipe.load('$fconc', 't_conc', workers => 2, chunk_size => 8000, mode => '$mode')" ],
		'>', \$lo, '2>', \$le);
	poll("SELECT count(*) = 1 FROM csvpipe.job WHERE state = 'running' AND target = 't_conc'::regclass")
	  or die "the load did not start: $le";
	my $job = sql("SELECT job_id FROM csvpipe.job WHERE state = 'running' AND target = 't_conc'::regclass");
	my ($out, $err) = login('loader', "SELECT csvpipe.cancel($job)");
	is($out, 't', "the $mode load is cancelled") or diag $err;
	$h->finish;
	is(sql("SELECT csvpipe.wait($job, '60s')"), 'cancelled', '... and recorded so');
	is(sql('SELECT count(*) FROM t_conc'), '0', '... with nothing loaded');
	return $job;
}
my $cjob = cancelled_job('prepared');
($o1, $e1) = ('', '');
my @rh = map {
	IPC::Run::start([ 'psql', '-XAtq', '-v', 'VERBOSITY=verbose', '-d', $node->connstr('csvdb') . ' user=loader',
			'-c', "SELECT rows_loaded FROM csvpipe.resume($cjob)" ],
		'>', ($_ ? \$o2 : \$o1), '2>', ($_ ? \$e2 : \$e1))
} (0, 1);
$_->finish for @rh;
# the refused one last ("5" sorts before "|")
my @res = sort ("$o1|$e1", "$o2|$e2");
like($res[1], qr/^\|ERROR:  55P03: csvpipe job $cjob is being resumed by another session\n/,
	'two resumes at once: one is refused with 55P03') or diag $res[1];
is($res[0], "5000\n|", '... the other loads the file');
is(sql("SELECT state || ' ' || rows_loaded || ' ' || (gid_nonce IS NOT NULL) FROM csvpipe.job WHERE job_id = $cjob"),
	'done 5000 true', '... and the job stays as the winner recorded it');
is(sql(q{SELECT count(*) || ' ' || count(DISTINCT id) FROM t_conc}), '5000 5000', '... every row once');

# a resume in a REPEATABLE READ transaction would decide on a stale job row
sql('TRUNCATE t_conc');
$cjob = cancelled_job('transaction');
sql('DROP TRIGGER slow_row ON t_conc');
my $rr = $node->background_psql('csvdb', on_error_stop => 0);
$rr->query_safe('SET ROLE loader; BEGIN ISOLATION LEVEL REPEATABLE READ; SELECT 1');
($out, $err) = as('loader', "SELECT rows_loaded FROM csvpipe.resume($cjob)");
is($out, '5000', 'a job resumed by one session') or diag $err;
my $rrout = $rr->query("SELECT rows_loaded FROM csvpipe.resume($cjob)");
like($rr->{stderr} // '', qr/csvpipe.resume cannot run in a REPEATABLE READ or SERIALIZABLE transaction/,
	'... is not resumed again from a stale snapshot') or diag $rrout;
$rr->query('ROLLBACK');
$rr->quit;
is(sql(q{SELECT count(*) || ' ' || count(DISTINCT id) FROM t_conc}), '5000 5000', '... every row once');
# ---- (e) a worker opens the file as the leader does ----
# The only worker of a load is lost after the file's path was replaced by a
# FIFO that a process waits to write into.  The replacement worker must not
# open the FIFO (which would release the writer, or block, or act as a
# device would): it is refused as the leader would refuse it.
sql(q{CREATE TABLE t_fifo (id int, v text);
CREATE TRIGGER slow_row BEFORE INSERT ON t_fifo FOR EACH ROW EXECUTE FUNCTION slow_row();
GRANT INSERT ON t_fifo TO loader;});
my $ffifo = write_rows('fifo.csv', 20000);
my ($fo, $fe) = ('', '');
my $fh = IPC::Run::start([ 'psql', '-XAtq', '-v', 'VERBOSITY=verbose', '-d', $node->connstr('csvdb') . ' user=loader',
		'-c', "SELECT rows_loaded FROM csvpipe.load('$ffifo', 't_fifo', workers => 1, atomic => false, chunk_size => 100000)" ],
	'>', \$fo, '2>', \$fe);
poll("SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 'csvpipe worker'")
  or die "the load did not start: $fe";
rename($ffifo, "$ffifo.moved") or die;
system('mkfifo', $ffifo) == 0 or die 'mkfifo';
chmod 0644, $ffifo;
my $writer = fork();
if ($writer == 0)
{
	# released only when someone opens the FIFO for reading
	open(my $w, '>', $ffifo) or POSIX::_exit(1);
	my $m;
	open($m, '>', "$dir/fifo_opened") and close $m;
	POSIX::_exit(0);
}
sql("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE backend_type = 'csvpipe worker'");
$fh->finish;
like($fe, qr/"\Q$ffifo\E" is not a regular file/,
	'the replacement worker refuses the FIFO as the leader would') or diag $fe;
like($fe, qr/csvpipe worker|worker 1/, '... and the error says which worker') or diag $fe;
sleep 1;
ok(!-e "$dir/fifo_opened", '... without opening it (the writer is still waiting)');
kill 'KILL', $writer;
waitpid($writer, 0);

# ---- (f) submit's priority: above 0 only for roles that may act on others' work ----
sql('CREATE ROLE signaller LOGIN IN ROLE pg_read_server_files, pg_signal_backend');
sql('CREATE TABLE t_prio (id int, v text); GRANT INSERT ON t_prio TO loader, signaller');
my $fprio = write_rows('prio.csv', 10);
($out, $err) = login('loader', "\\set VERBOSITY verbose\nSELECT csvpipe.submit('$fprio', 't_prio', priority => 1000000)");
like($err, qr/ERROR:  42501: permission denied to submit with priority 1000000\nDETAIL:  Only superusers and roles with privileges of the "pg_signal_backend" role may submit jobs with a priority above 0/,
	'a pg_read_server_files role cannot jump the queue');
is(sql("SELECT count(*) FROM csvpipe.job WHERE target = 't_prio'::regclass"), '0', '... nothing is queued');
($out, $err) = login('loader', "SELECT csvpipe.submit('$fprio', 't_prio', priority => -5)");
like($out, qr/^\d+$/, '... it may lower its own jobs\' priority') or diag $err;
is(sql("SELECT csvpipe.wait(" . ($out || 0) . ", '60s')"), 'done', '... which run');
sql('TRUNCATE t_prio');
($out, $err) = login('signaller', "SELECT csvpipe.submit('$fprio', 't_prio', priority => 10, force => true)");
like($out, qr/^\d+$/, 'a pg_signal_backend role submits with a priority above 0') or diag $err;
is(sql("SELECT csvpipe.wait(" . ($out || 0) . ", '60s')"), 'done', '... which runs');

$node->stop;
done_testing();
