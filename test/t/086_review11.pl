# 086_review11.pl -- issue 11's fixes attacked by a reviewer (review11).
#
#  1. The cancel hold after a chunked or prepared load (run.c) must not make
#     the rest of a statement uncancellable: a non-superuser's
#     `SELECT rows_loaded, pg_sleep(600) FROM csvpipe.load(...)` (or a
#     lock wait after the load) still ends at statement_timeout, at
#     lock_timeout and at pg_cancel_backend from a pg_signal_backend role.
#     Seen before the fix: the statement slept its 600 s; every cancel
#     was dropped.  The statement that is only the load
#     (`SELECT * FROM csvpipe.load(...)`, `SELECT csvpipe.load(...)`,
#     `SELECT 'R', job_id FROM ...`) keeps the hold (082 checks the race).
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run ();
use Time::HiRes ();

my $dir = PostgreSQL::Test::Utils::tempdir;
chmod 0755, $dir;

my $node = PostgreSQL::Test::Cluster->new('review11');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'csvpipe'
max_prepared_transactions = 10
max_worker_processes = 16
csvpipe.allowed_dirs = '$dir'
});
$node->start;

sub sql { return $node->safe_psql('postgres', $_[0]); }

sub write_file
{
	my ($name, $text) = @_;
	open(my $fh, '>', "$dir/$name") or die;
	print $fh $text;
	close $fh;
	chmod 0644, "$dir/$name";
	return "$dir/$name";
}

sql(q{
CREATE EXTENSION csvpipe;
CREATE ROLE mallory LOGIN;
GRANT pg_read_server_files TO mallory;
CREATE ROLE admin LOGIN;
GRANT pg_signal_backend TO admin;
CREATE TABLE j (id int, name text);
GRANT INSERT, SELECT, TRUNCATE ON j TO mallory;
CREATE SEQUENCE load_returned;
GRANT USAGE ON SEQUENCE load_returned TO mallory;
});
# the statement takes a number from load_returned once the load has returned
# its row (no rollback undoes that): whether a timeout came after the load
my $returned_sql = 'SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM load_returned';

my $small = write_file('small.csv', "id,name\n" . join('', map { "$_,n$_\n" } 1 .. 2000));

sub load_call
{
	my ($mode) = @_;
	return "csvpipe.load('$small', 'j', workers => 2, mode => '$mode', header => true)";
}

# ---------------------------------------------------------------------------
# 1. the rest of a load's statement can be cancelled
# ---------------------------------------------------------------------------
for my $mode ('chunked', 'prepared')
{
	# statement_timeout, set by the role itself or by an admin
	sql('TRUNCATE j');
	my $returned0 = sql($returned_sql);
	my $t0 = Time::HiRes::time();
	my ($ret, $out, $err) = $node->psql('postgres', qq{
SET statement_timeout = '1s';
SELECT rows_loaded, nextval('load_returned'), pg_sleep(20) FROM } . load_call($mode) . ';',
		extra_params => [ '-U', 'mallory' ]);
	my $took = Time::HiRes::time() - $t0;
	like($err, qr/canceling statement due to statement timeout/,
		"$mode: statement_timeout ends the pg_sleep after the load");
	ok($took < 15, "$mode: ... at once (took ${took}s)");
	# the load committed on its own, and says so -- if it returned before
	# the timeout (a load slower than 1 s is cancelled itself)
  SKIP:
	{
		skip "$mode: the load itself took longer than the timeout", 1 if sql($returned_sql) eq $returned0;
		is(sql(q{SELECT count(*) || '|' || (SELECT state FROM csvpipe.jobs ORDER BY job_id DESC LIMIT 1) FROM j}),
			'2000|done', "$mode: ... the load stays committed and done (doc/reference.md)");
	}

	# the same in the target list of a plain SELECT
	($ret, $out, $err) = $node->psql('postgres', qq{
SET statement_timeout = '1s';
SELECT } . load_call($mode) . ', pg_sleep(20);',
		extra_params => [ '-U', 'mallory' ]);
	like($err, qr/canceling statement due to statement timeout/,
		"$mode: statement_timeout ends a pg_sleep beside the load in the target list");

	# lock_timeout in a lock wait after the load: another session holds
	# the advisory lock for 8 s (so the unfixed code waited 8 s, then
	# succeeded)
	my ($lin, $lout, $lerr) = ('', '', '');
	my $holder = IPC::Run::start(
		[ $node->installed_command('psql'), '-XAtq', '-d', $node->connstr('postgres'),
		  '-c', 'SELECT pg_advisory_lock(4242), pg_sleep(8)' ],
		'<', \$lin, '>', \$lout, '2>', \$lerr);
	$node->poll_query_until('postgres',
		"SELECT count(*) = 1 FROM pg_locks WHERE locktype = 'advisory' AND objid = 4242 AND granted")
	  or die "the lock holder did not start";
	$t0 = Time::HiRes::time();
	($ret, $out, $err) = $node->psql('postgres', qq{
SET lock_timeout = '1s';
SELECT rows_loaded, pg_advisory_xact_lock(4242) FROM } . load_call($mode) . ';',
		extra_params => [ '-U', 'mallory' ]);
	$took = Time::HiRes::time() - $t0;
	like($err, qr/canceling statement due to lock timeout/,
		"$mode: lock_timeout ends a lock wait after the load");
	ok($took < 5, "$mode: ... at once (took ${took}s)");
	$holder->finish;

	# a PL/pgSQL cursor over the load, left open while the block sleeps
	$t0 = Time::HiRes::time();
	($ret, $out, $err) = $node->psql('postgres', qq{
SET statement_timeout = '1s';
DO \$\$ DECLARE c refcursor; r record;
BEGIN
  OPEN c FOR SELECT * FROM } . load_call($mode) . qq{;
  FETCH c INTO r;
  PERFORM pg_sleep(20);
END \$\$;},
		extra_params => [ '-U', 'mallory' ]);
	$took = Time::HiRes::time() - $t0;
	like($err, qr/canceling statement due to statement timeout/,
		"$mode: statement_timeout ends a DO block sleeping with a cursor over the load open (took ${took}s)");

	# pg_cancel_backend from a pg_signal_backend role
	my $app = "cancel_$mode";
	my ($in, $o2, $e2) = ('', '', '');
	my $h = IPC::Run::start(
		[ $node->installed_command('psql'), '-XAtq', '-U', 'mallory', '-d', $node->connstr('postgres'),
		  '-c', "SET application_name = '$app'",
		  '-c', 'SELECT rows_loaded, pg_sleep(30) FROM ' . load_call($mode) ],
		'<', \$in, '>', \$o2, '2>', \$e2);
	$t0 = Time::HiRes::time();
	my $sent = $node->safe_psql('postgres', qq{
DO \$\$
DECLARE p int; n int := 0;
BEGIN
  LOOP
    SELECT pid INTO p FROM pg_stat_activity
     WHERE application_name = '$app' AND wait_event = 'PgSleep';
    EXIT WHEN p IS NOT NULL OR n > 20000;
    n := n + 1;
    PERFORM pg_sleep(0.001);
    PERFORM pg_stat_clear_snapshot();
  END LOOP;
  SET LOCAL ROLE admin;
  RAISE NOTICE 'cancel sent: %', pg_cancel_backend(p);
END \$\$;});
	$h->finish;
	$took = Time::HiRes::time() - $t0;
	like($e2, qr/canceling statement due to user request/,
		"$mode: pg_cancel_backend by a pg_signal_backend role ends the statement after the load");
	ok($took < 20, "$mode: ... at once (took ${took}s)");
}

$node->stop;
done_testing();
