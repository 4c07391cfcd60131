# 112_ops_attacks.pl -- attacks on operating csvpipe for months (1.1):
# purge, loaded-file records, submit(force), the failure backoff, and
# pg_dump/pg_restore of a database with the extension.
#  (a) the new functions: no SECURITY DEFINER, csvpipe.loaded_file not
#      readable by other roles, another role's (or another target's)
#      failures never hold a file back;
#  (b) submit in a REPEATABLE READ / SERIALIZABLE transaction is refused:
#      its snapshot may predate another session's submit of the same file
#      (or that job's 'done'), and it would queue the file a second time;
#  (c) purge forgets the loaded-file records of a role that was dropped
#      (a new role could get its oid, and a dump writes it as a bare number);
#  (d) pg_dump + pg_restore into another cluster: csvpipe.loaded_file names
#      its target and role (regclass, regrole), so submit on the restored
#      database still skips the files loaded before, for the same table and
#      role, whatever oids the new cluster gave them;
#  (e) a queued job whose runner's COMMIT fails is failed, not done; a
#      csvpipe.load in transaction mode whose transaction or savepoint
#      rolled back is not a loaded file (submit, purge, csvpipe.jobs), nor
#      a parallel queued job whose runner's COMMIT fails after the
#      coordinator recorded it done (the runner records it failed).
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $gen = $ENV{CSVPIPE_GEN_CSV} // 'test/gen/gen_csv';
my $dir = PostgreSQL::Test::Utils::tempdir;
my $conf = qq{
shared_preload_libraries = 'csvpipe'
max_worker_processes = 24
csvpipe.max_jobs = 2
csvpipe.submit_backoff = '1h'
timezone = 'UTC'
};

my $node = PostgreSQL::Test::Cluster->new('ops');
$node->init;
$node->append_conf('postgresql.conf', $conf);
$node->start;

sub sql { return $node->safe_psql('postgres', $_[0]); }

sub as_role_err
{
	my ($role, $q) = @_;
	my ($out, $err);
	$node->psql('postgres', "SET ROLE $role; $q", stdout => \$out, stderr => \$err);
	return ($out, $err);
}

sub as_role
{
	my ($out, $err) = as_role_err(@_);
	die "as $_[0]: $_[1]: $err" if $err =~ /ERROR/;
	return $out;
}

sub wait_all
{
	my ($n) = @_;
	$n //= $node;
	$n->poll_query_until('postgres',
		"SELECT count(*) = 0 FROM csvpipe.job WHERE state IN ('queued', 'running')")
	  or die 'jobs did not finish';
}

my $narrow = 'id bigint, ts timestamptz, name text, amount numeric(12,2), flag boolean';
sql(qq{
CREATE EXTENSION csvpipe;
CREATE ROLE alice LOGIN; CREATE ROLE bob LOGIN; CREATE ROLE dave LOGIN;
GRANT pg_read_server_files TO alice, bob, dave;
CREATE TABLE t ($narrow); CREATE TABLE t2 ($narrow);
GRANT SELECT, INSERT ON t, t2 TO alice, bob, dave;
});
system("$gen narrow 2000 1 > $dir/a.csv") == 0 or die;
system("$gen narrow 2000 2 > $dir/b.csv") == 0 or die;
PostgreSQL::Test::Utils::append_to_file("$dir/bad.csv",
	"id,ts,name,amount,flag\n1,2024-01-01,x,1.5,t\nnot_a_number,2024-01-01,y,2,f\n");

# alice and bob each load a.csv into t
my $aa = as_role('alice', "SELECT * FROM csvpipe.submit('$dir/a.csv', 't')");
my $ba = as_role('bob', "SELECT * FROM csvpipe.submit('$dir/a.csv', 't')");
wait_all();
is(sql("SELECT string_agg(state, ',' ORDER BY job_id) FROM csvpipe.job WHERE job_id IN ($aa, $ba)"),
	'done,done', 'alice and bob loaded a.csv into t');

# ---- (a) privileges of the 1.1 objects ----
is(sql(q{SELECT count(*) FROM pg_proc p JOIN pg_extension e ON p.pronamespace = e.extnamespace
          WHERE e.extname = 'csvpipe' AND p.prosecdef}), '0', 'no csvpipe function is SECURITY DEFINER');
my ($out, $err) = as_role_err('bob', 'SELECT count(*) FROM csvpipe.loaded_file');
like($err, qr/permission denied for table loaded_file/, 'bob cannot read csvpipe.loaded_file');

# bob's failures of bad.csv into t, and alice's into t2, hold nothing back
# for alice's bad.csv into t
my $bf = as_role('bob', "SELECT * FROM csvpipe.submit('$dir/bad.csv', 't')");
my $af2 = as_role('alice', "SELECT * FROM csvpipe.submit('$dir/bad.csv', 't2')");
wait_all();
is(sql("SELECT string_agg(state, ',' ORDER BY job_id) FROM csvpipe.job WHERE job_id IN ($bf, $af2)"),
	'failed,failed', "bob's bad.csv into t and alice's into t2 failed");
($out, $err) = as_role_err('alice', "SELECT count(*) FROM csvpipe.submit('$dir/bad.csv', 't')");
is($out, '1', "alice's bad.csv into t is queued: neither bob's failure nor her t2 failure counts")
  or diag $err;
unlike($err, qr/skipped/, '... without a backoff NOTICE');
wait_all();

# ---- (b) submit from a stale snapshot ----
my $rr = $node->background_psql('postgres', on_error_stop => 0);
$rr->query_safe('SET ROLE alice; BEGIN ISOLATION LEVEL REPEATABLE READ; SELECT 1');
my $first = as_role('alice', "SELECT * FROM csvpipe.submit('$dir/b.csv', 't')");
wait_all();
is(sql("SELECT state FROM csvpipe.job WHERE job_id = $first"), 'done', 'b.csv loaded by one session');
my $rrout = $rr->query("SELECT count(*) FROM csvpipe.submit('$dir/b.csv', 't')");
like($rr->{stderr} // '',
	qr/csvpipe.submit cannot run in a REPEATABLE READ or SERIALIZABLE transaction/,
	'a REPEATABLE READ submit from a snapshot older than that load is refused') or diag $rrout;
$rr->query('COMMIT');
$rr->quit;
$rr = $node->background_psql('postgres', on_error_stop => 0);
$rr->query_safe('SET ROLE alice; BEGIN ISOLATION LEVEL SERIALIZABLE; SELECT 1');
$rrout = $rr->query("SELECT count(*) FROM csvpipe.submit('$dir/b.csv', 't')");
like($rr->{stderr} // '', qr/csvpipe.submit cannot run in a REPEATABLE READ or SERIALIZABLE transaction/,
	'... and a SERIALIZABLE one') or diag $rrout;
$rr->query('COMMIT');
$rr->quit;
wait_all();
is(sql("SELECT count(*) FROM csvpipe.job WHERE path = '$dir/b.csv' AND target = 't'::regclass"),
	'1', 'b.csv was queued once');
is(sql('SELECT count(*) FROM t'), '6000', 't holds a.csv twice (alice, bob) and b.csv once');

# ---- (c) purge forgets a dropped role's records ----
my $dj = as_role('dave', "SELECT * FROM csvpipe.submit('$dir/a.csv', 't2')");
wait_all();
is(sql("SELECT loaded_files_kept FROM csvpipe.purge('0')"), '4',
	"a superuser's purge keeps the 4 done loads' files (alice a and b, bob a into t; dave a into t2)")
  or diag sql('SELECT * FROM csvpipe.loaded_file');
sql('REVOKE ALL ON t, t2 FROM dave; REVOKE pg_read_server_files FROM dave; DROP ROLE dave');
is(sql("SELECT loaded_files_forgotten FROM csvpipe.purge('100 years')"), '1',
	"the next purge forgets the record of dave, who no longer exists");
is(sql("SELECT count(*) FROM csvpipe.loaded_file"), '3', 'the 3 others stay');

# ---- (e) a transaction-mode load that did not commit is not a loaded file ----
# csvpipe.load in the caller's transaction, rolled back; and a queued job
# whose runner's COMMIT fails (a deferred constraint trigger): the rows are
# gone, so submit must queue the file (and purge must not record it).
system("$gen narrow 500 7 > $dir/r.csv") == 0 or die;
sql(qq{
CREATE TABLE t3 ($narrow); GRANT SELECT, INSERT ON t3 TO alice;
CREATE FUNCTION no_big() RETURNS trigger LANGUAGE plpgsql AS
  \$\$BEGIN IF (SELECT count(*) FROM t3) > 100 THEN RAISE EXCEPTION 't3 is full'; END IF; RETURN NULL; END\$\$;
});
($out, $err) = as_role_err('alice', "BEGIN; SELECT rows_loaded FROM csvpipe.load('$dir/r.csv', 't3', workers => 2); ROLLBACK;");
is($out, '500', 'alice loads r.csv into t3 in a transaction she rolls back') or diag $err;
is(sql('SELECT count(*) FROM t3'), '0', '... nothing stays');
# a savepoint rolled back after the load (the top-level commits), and one
# released (the load commits): only the latter is a loaded file
system("$gen narrow 500 9 > $dir/r3.csv") == 0 or die;
system("$gen narrow 500 10 > $dir/r4.csv") == 0 or die;
($out, $err) = as_role_err('alice', "BEGIN; SAVEPOINT s; SELECT rows_loaded FROM csvpipe.load('$dir/r3.csv', 't3', workers => 2); "
	  . "ROLLBACK TO SAVEPOINT s; COMMIT;");
is($out, '500', 'alice loads r3.csv in a savepoint she rolls back, then commits') or diag $err;
($out, $err) = as_role_err('alice', "BEGIN; SAVEPOINT s; SELECT rows_loaded FROM csvpipe.load('$dir/r4.csv', 't3', workers => 2); "
	  . "RELEASE SAVEPOINT s; COMMIT;");
is($out, '500', 'alice loads r4.csv in a savepoint she releases, then commits') or diag $err;
is(sql('SELECT count(*) FROM t3'), '500', '... only r4.csv\'s rows stay');
# The job rows say 'done' (a coordinator commits them on its own); the view
# tells what happened from the load's (sub)transaction.
is(sql("SELECT string_agg(v.state, ',' ORDER BY j.job_id) FROM csvpipe.jobs v JOIN csvpipe.job j USING (job_id) "
		  . "WHERE j.target = 't3'::regclass AND j.origin = 'load'"),
	'rolled back,rolled back,done',
	'csvpipe.jobs: the rolled-back load and savepoint are rolled back, the released one done');
# submit looks at the job rows: r.csv's only job is the rolled-back load
($out, $err) = as_role_err('alice', "SELECT count(*) FROM csvpipe.submit('$dir/r.csv', 't3')");
is($out, '1', 'submit queues r.csv: the rolled-back load did not load it') or diag $err;
wait_all();
is(sql('SELECT count(*) FROM t3'), '1000', '... and the job loads it');
# purge records the committed loads only (r.csv's queued job, r4.csv's
# load), not the rolled-back ones, which it removes
is(sql("SELECT loaded_files_kept FROM csvpipe.purge('0')"), '2',
	'purge records only the committed loads of t3 as loaded files');
is(sql("SELECT string_agg(path, ',' ORDER BY job_id) FROM csvpipe.loaded_file WHERE target = 't3'::regclass"),
	"$dir/r4.csv,$dir/r.csv", '... r4.csv and r.csv');
# and submit, which now finds r3.csv in neither job nor loaded_file
($out, $err) = as_role_err('alice', "SELECT count(*) FROM csvpipe.submit('$dir/r3.csv', 't3')");
is($out, '1', 'submit queues r3.csv: its savepoint rolled back') or diag $err;
($out, $err) = as_role_err('alice', "SELECT count(*) FROM csvpipe.submit('$dir/r4.csv', 't3')");
is($out, '0', 'submit skips r4.csv: loaded') or diag $err;
wait_all();
is(sql('SELECT count(*) FROM t3'), '1500', '... and the job loads r3.csv');
# (d) below compares the whole of loaded_file: t3's record is not part of it
sql("DELETE FROM csvpipe.loaded_file WHERE target = 't3'::regclass");
sql('TRUNCATE t3');
sql(q{CREATE CONSTRAINT TRIGGER t3_full AFTER INSERT ON t3 DEFERRABLE INITIALLY DEFERRED
      FOR EACH ROW EXECUTE FUNCTION no_big()});
system("$gen narrow 500 8 > $dir/r2.csv") == 0 or die;
my $rj = as_role('alice', "SELECT * FROM csvpipe.submit('$dir/r2.csv', 't3')");
wait_all();
is(sql('SELECT count(*) FROM t3'), '0', "a queued job whose runner's commit fails leaves nothing");
is(sql("SELECT state FROM csvpipe.job WHERE job_id = $rj"), 'failed', '... and is recorded as failed, not done');
# the same through the parallel engine (workers in the runner: the job's
# end is written by a coordinator, before the runner's COMMIT fails)
system("$gen narrow 3000 11 > $dir/r5.csv") == 0 or die;
$rj = as_role('alice', "SELECT * FROM csvpipe.submit('$dir/r5.csv', 't3', workers => 2, chunk_size => 4096)");
wait_all();
is(sql('SELECT count(*) FROM t3'), '0', "a parallel queued job whose runner's commit fails leaves nothing");
is(sql("SELECT state || ' ' || workers FROM csvpipe.jobs WHERE job_id = $rj"), 'failed 2',
	'... and is recorded as failed (with its workers), not done');
sql('DROP TRIGGER t3_full ON t3');
($out, $err) = as_role_err('alice', "SELECT count(*) FROM csvpipe.submit('$dir/r5.csv', 't3', workers => 2, chunk_size => 4096)");
is($out, '0', '... so submit backs r5.csv off as a failed file') or diag $err;
($out, $err) = as_role_err('alice', "SELECT count(*) FROM csvpipe.submit('$dir/r5.csv', 't3', workers => 2, chunk_size => 4096, force => true)");
is($out, '1', '... and force => true queues it again') or diag $err;
wait_all();
is(sql('SELECT count(*) FROM t3'), '3000', '... which loads it');

# ---- (d) pg_dump, then pg_restore into a cluster with other oids ----
my $dump = "$dir/db.dump";
$node->command_ok(['pg_dump', '-Fc', '-f', $dump, '-d', $node->connstr('postgres')], 'pg_dump');

my $node2 = PostgreSQL::Test::Cluster->new('ops_restored');
$node2->init;
$node2->append_conf('postgresql.conf', $conf);
$node2->start;
# other roles and tables first: alice, bob and t get other oids than on the
# first cluster, and an unrelated role and table may get theirs
$node2->safe_psql('postgres', q{
CREATE ROLE pad1; CREATE ROLE pad2; CREATE TABLE pad1 (x int); CREATE TABLE pad2 (x int);
CREATE ROLE bob LOGIN; CREATE ROLE alice LOGIN; CREATE ROLE mallory LOGIN;
GRANT pg_read_server_files TO alice, bob, mallory;
});
$node2->command_ok(['pg_restore', '-d', $node2->connstr('postgres'), $dump], 'pg_restore');
isnt($node2->safe_psql('postgres', "SELECT 't'::regclass::oid || ' ' || 'alice'::regrole::oid"),
	sql("SELECT 't'::regclass::oid || ' ' || 'alice'::regrole::oid"),
	't and alice have other oids on the restored cluster');
is($node2->safe_psql('postgres',
		"SELECT string_agg(target::regclass || ' ' || submitted_by::regrole || ' ' || path, ',' "
		  . "ORDER BY target::regclass::text, path, submitted_by::regrole::text) FROM csvpipe.loaded_file"),
	"t alice $dir/a.csv,t bob $dir/a.csv,t alice $dir/b.csv",
	'the restored loaded-file records name the same tables and roles')
  or diag $node2->safe_psql('postgres', 'SELECT * FROM csvpipe.loaded_file');
my ($o2, $e2);
$node2->psql('postgres', "SET ROLE alice; SELECT count(*) FROM csvpipe.submit('$dir/a.csv', 't')",
	stdout => \$o2, stderr => \$e2);
is($o2, '0', 'on the restored database, submit still skips the file alice loaded into t') or diag $e2;
$node2->psql('postgres', "SET ROLE alice; SELECT count(*) FROM csvpipe.submit('$dir/a.csv', 't2')",
	stdout => \$o2, stderr => \$e2);
is($o2, '1', '... and queues it into t2, where she never loaded it') or diag $e2;
wait_all($node2);
is($node2->safe_psql('postgres', 'SELECT count(*) FROM t'),
	sql('SELECT count(*) FROM t'), 't on the restored database holds what it held, nothing reloaded');

$node2->stop;
$node->stop;
done_testing();
