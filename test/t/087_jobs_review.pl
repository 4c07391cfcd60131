# 087_jobs_review.pl -- the job API says what is true (review of jobs.c,
# run.c, the job row of every load path).
#
#  1. csvpipe.wait(job, timeout) on a transaction-mode load whose
#     transaction is still open returned 'done' at the timeout (and
#     csvpipe.jobs showed 'done'), though the load may still roll back.
#     Now both say 'uncommitted' until that transaction ends; in the
#     loading transaction itself wait returns 'uncommitted' at once.
#  2. With every background-worker slot taken (max_worker_processes small,
#     parallel-query workers sleeping in them):
#     a. a chunked or prepared csvpipe.load ran in the session, in the
#        caller's transaction, and returned a job id that csvpipe.jobs
#        never showed.  Now refused: 53400, with a hint; no job, no row.
#        workers => 0 in those modes is refused the same way.
#     b. a transaction-mode load still runs in the session; its job row
#        was never written (csvpipe.jobs, wait and submit knew nothing of
#        it: submit queued the file again, loading it twice).  Now it is
#        written in the caller's transaction: 'uncommitted' while that is
#        open (wait from another session waits for it), 'done' once it
#        commits, nothing once it rolls back.
#     c. csvpipe.resume of a chunked csvpipe.load job with chunks in the
#        ledger loaded the whole file in the session: the ledger's rows
#        twice.  Now refused (53400); resumed once a slot is free, every
#        row once.
#     d. csvpipe.resume of a 'rolled back' transaction-mode job loaded it
#        in the session but left its row 'rolled back': a second resume
#        loaded it again.  Now the job is 'done'; a second resume refused.
#     e. a queued chunked job with chunks in the ledger, resumed, whose
#        runner got the last slot: the runner loaded the whole file in its
#        transaction, the ledger's rows twice, and said 'done'.  Now the
#        job fails saying why; resumed with slots free, every row once.
#  3. csvpipe.submit(path, 'new_table', create_target => true): the table
#     is created from the file in the submitting transaction, as the
#     submitting role (its owner), and the job loads it as that role; any
#     mode (the job runs after the commit); one file only, no columns.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run ();
use Time::HiRes ();

my $dir = PostgreSQL::Test::Utils::tempdir;
chmod 0755, $dir;

# 5 slots: the launcher, and 4 for loads, runners, coordinators and the
# sleeping parallel-query workers that take them away
my $node = PostgreSQL::Test::Cluster->new('jobs_review');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'csvpipe'
max_prepared_transactions = 10
max_worker_processes = 5
max_logical_replication_workers = 0
max_parallel_workers = 8
csvpipe.allowed_dirs = '$dir'
csvpipe.max_workers = 2
csvpipe.submit_backoff = 0
statement_timeout = '180s'
});
$node->start;

sub sql { return $node->safe_psql('postgres', $_[0]); }

# the same, an error as its first line instead of dying (the assertions
# below go on after a failure, to show every one of them)
sub tsql
{
	my ($ret, $out, $err) = $node->psql('postgres', $_[0]);
	return $ret == 0 ? $out : 'ERROR: ' . ((split /\n/, $err)[0] // '');
}

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
CREATE ROLE alice LOGIN;
GRANT pg_read_server_files TO alice;
GRANT CREATE ON SCHEMA public TO alice;
CREATE ROLE bob LOGIN;
GRANT pg_read_server_files TO bob;
CREATE FUNCTION try(q text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
	st text; msg text; det text; hint text;
BEGIN
	EXECUTE q;
	RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
	GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, msg = MESSAGE_TEXT,
		det = PG_EXCEPTION_DETAIL, hint = PG_EXCEPTION_HINT;
	RETURN st || ' ' || msg || ' | ' || coalesce(det, '') || ' | ' || coalesce(hint, '');
END $$;
GRANT EXECUTE ON FUNCTION try(text) TO PUBLIC;
-- fails the row with id = fail_id (set per table)
CREATE TABLE fail_at (tbl text PRIMARY KEY, id int);
CREATE FUNCTION fail_row() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	IF NEW.id = (SELECT f.id FROM fail_at f WHERE f.tbl = TG_TABLE_NAME) THEN
		RAISE EXCEPTION 'row % refused', NEW.id;
	END IF;
	RETURN NEW;
END $$;
});

my $nrows = 20000;
my $data = write_file('data.csv', "id,name\n" . join('', map { "$_,name$_\n" } 1 .. $nrows));
for my $n (2 .. 6)
{
	write_file("data$n.csv", "id,name\n" . join('', map { "$_,name$_\n" } 1 .. $nrows));
}
# rows, distinct ids, and a checksum of the table's rows
sub rows_of
{
	my ($t) = @_;
	return sql("SELECT count(*) || ' ' || count(DISTINCT id) || ' ' || coalesce(sum(id), 0) FROM $t");
}
my $full = "$nrows $nrows " . ($nrows * ($nrows + 1) / 2);

# ---------------------------------------------------------------------------
# 1. an open transaction-mode load: 'uncommitted' until its transaction ends
# ---------------------------------------------------------------------------
sql('CREATE TABLE t1 (id int, name text); GRANT INSERT, SELECT ON t1 TO alice');
for my $end ('COMMIT', 'ROLLBACK')
{
	sql('TRUNCATE t1');
	my $bg = $node->background_psql('postgres', on_error_stop => 0);
	$bg->query_safe('SET ROLE alice; BEGIN');
	my $id = $bg->query_safe(
		"SELECT job_id FROM csvpipe.load('$data', 't1', workers => 2, chunk_size => 16384)");
	like($id, qr/^\d+$/, "$end: a transaction-mode load with workers, in an open transaction");
	is(sql("SELECT state || ' ' || workers FROM csvpipe.jobs WHERE job_id = $id"), 'uncommitted 2',
		"$end: csvpipe.jobs says 'uncommitted' while the loading transaction is open");
	is(sql("SELECT csvpipe.wait($id, '300 ms')"), 'uncommitted',
		"$end: csvpipe.wait with a timeout returns 'uncommitted', not 'done'");
	is($bg->query_safe("SELECT state FROM csvpipe.jobs WHERE job_id = $id"), 'uncommitted',
		"$end: the loading transaction sees 'uncommitted' too");
	is($bg->query_safe("SELECT csvpipe.wait($id)"), 'uncommitted',
		"$end: wait in the loading transaction returns 'uncommitted' at once");
	$bg->query_safe($end);
	$bg->quit;
	my $final = $end eq 'COMMIT' ? 'done' : 'rolled back';
	is(sql("SELECT csvpipe.wait($id, '300 ms')"), $final, "$end: then wait says '$final'");
	is(sql("SELECT state FROM csvpipe.jobs WHERE job_id = $id"), $final, "$end: ... as csvpipe.jobs does");
	is(rows_of('t1'), $end eq 'COMMIT' ? $full : '0 0 0', "$end: the table agrees");
}

# ---------------------------------------------------------------------------
# 2. no background-worker slot free
# ---------------------------------------------------------------------------
sql(q{
CREATE TABLE c1 (id int, name text);
CREATE TRIGGER fail BEFORE INSERT ON c1 FOR EACH ROW EXECUTE FUNCTION fail_row();
CREATE TABLE c2 (id int, name text);
CREATE TRIGGER fail BEFORE INSERT ON c2 FOR EACH ROW EXECUTE FUNCTION fail_row();
INSERT INTO fail_at VALUES ('c1', 19000), ('c2', 19000);
CREATE TABLE t3 (id int, name text);
CREATE TABLE t4 (id int, name text);
CREATE TABLE t5 (id int, name text);
CREATE TABLE t6 (id int, name text);
CREATE TABLE cx (id int, name text);
});

# (set up while slots are free) a chunked csvpipe.load job that failed
# after some chunks committed
my ($ret, $out, $err) = $node->psql('postgres',
	"SELECT job_id FROM csvpipe.load('$dir/data2.csv', 'c1', mode => 'chunked', workers => 2, chunk_size => 16384)");
like($err, qr/row 19000 refused/, 'setup: a chunked load fails at row 19000');
my $c1_job = sql("SELECT max(job_id) FROM csvpipe.job WHERE target = 'c1'::regclass");
is(sql("SELECT state FROM csvpipe.jobs WHERE job_id = $c1_job"), 'failed', 'setup: ... its job failed');
my $c1_ledger = sql("SELECT count(*) || ' ' || sum(rows) FROM csvpipe.chunks WHERE job_id = $c1_job");
my ($c1_chunks, $c1_rows) = split / /, $c1_ledger;
cmp_ok($c1_chunks, '>', 0, "setup: ... with chunks in the ledger ($c1_ledger)");
is(sql('SELECT count(*) FROM c1'), $c1_rows, 'setup: ... exactly the ledger\'s rows in the table');

# a queued chunked job that failed the same way
my $c2_job = sql("SELECT * FROM csvpipe.submit('$dir/data3.csv', 'c2', mode => 'chunked', workers => 2, chunk_size => 16384)");
is(sql("SELECT csvpipe.wait($c2_job, '120s')"), 'failed', 'setup: a queued chunked job fails at row 19000');
my ($c2_chunks, $c2_rows) = split / /, sql("SELECT count(*) || ' ' || sum(rows) FROM csvpipe.chunks WHERE job_id = $c2_job");
cmp_ok($c2_chunks, '>', 0, 'setup: ... with chunks in the ledger');
is(sql('SELECT count(*) FROM c2'), $c2_rows, 'setup: ... exactly the ledger\'s rows in the table');
sql('DROP TRIGGER fail ON c1; DROP TRIGGER fail ON c2');

# a transaction-mode job whose transaction rolled back
my $t3_job = sql("BEGIN; SELECT job_id FROM csvpipe.load('$dir/data4.csv', 't3', workers => 2, chunk_size => 16384); ROLLBACK");
is(sql("SELECT state FROM csvpipe.jobs WHERE job_id = $t3_job"), 'rolled back', 'setup: a rolled back transaction-mode job');

# Take free slots away: sessions whose parallel worker sleeps.
my @holders;
sub hold_slots
{
	my ($n) = @_;
	my $tries = 0;
	while (@holders < $n)
	{
		die "could not take a worker slot" if ++$tries > 50;
		my $name = 'holder' . (scalar(@holders) + 1);
		my ($in, $hout, $herr) = ('', '', '');
		my $h = IPC::Run::start(
			[ $node->installed_command('psql'), '-XAtq', '-d',
			  $node->connstr('postgres') . " application_name=$name",
			  '-c', 'SET force_parallel_mode = on; SET max_parallel_workers_per_gather = 1; SET statement_timeout = 0; SELECT pg_sleep(600)' ],
			'<', \$in, '>', \$hout, '2>', \$herr);
		# its worker, or none (a slot not yet released by a worker gone)
		$node->poll_query_until('postgres', qq{
SELECT count(*) = 1 FROM pg_stat_activity l
 WHERE l.application_name = '$name' AND l.backend_type = 'client backend' AND l.wait_event IS NOT NULL
   AND (l.wait_event IN ('PgSleep', 'ExecuteGather') OR l.wait_event LIKE 'MessageQueue%')})
		  or die "holder $name did not start";
		Time::HiRes::usleep(100_000);
		if (sql(qq{SELECT count(*) FROM pg_stat_activity w JOIN pg_stat_activity l ON w.leader_pid = l.pid
			WHERE w.backend_type = 'parallel worker' AND l.application_name = '$name'}) eq '1')
		{
			push @holders, [ $name, $h ];
			next;
		}
		sql("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = '$name'");
		$h->finish;
		Time::HiRes::usleep(200_000);
	}
}

sub release_slots
{
	my ($n) = @_;
	while (@holders > $n)
	{
		my ($name, $h) = @{ pop @holders };
		sql("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = '$name'");
		$h->finish;
	}
	$node->poll_query_until('postgres',
		"SELECT count(*) = $n FROM pg_stat_activity WHERE backend_type = 'parallel worker'")
	  or die "parallel workers did not go";
}

# the slots the loads could use: all but the launcher's
$node->poll_query_until('postgres',
	"SELECT count(*) = 0 FROM pg_stat_activity WHERE backend_type IN ('csvpipe worker', 'csvpipe coordinator', 'csvpipe job runner')")
  or die "csvpipe workers did not go";
hold_slots(4);
is(sql(q{SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'parallel worker'}), '4',
	'every worker slot but the launcher\'s is taken');

# ---- 2a. chunked and prepared loads are refused ----
my $jobs_before = sql('SELECT count(*) FROM csvpipe.job');
for my $mode ('chunked', 'prepared')
{
	is(sql("SELECT try(\$\$SELECT csvpipe.load('$data', 'cx', mode => '$mode', workers => 2)\$\$)"),
		"53400 csvpipe.load with mode => '$mode' needs a background worker, and no slot is free"
		  . " | Chunked and prepared loads commit in their workers, outside the caller's transaction."
		  . " | Retry when a slot is free, raise max_worker_processes, or load with mode => 'transaction' (it inserts in this session).",
		"$mode, no slot free: refused with 53400 and a hint");
	is(sql("SELECT try(\$\$SELECT csvpipe.load('$data', 'cx', mode => '$mode', workers => 0)\$\$)"),
		"53400 csvpipe.load with mode => '$mode' needs at least one background worker"
		  . " | Chunked and prepared loads commit in their workers, outside the caller's transaction."
		  . " | Load with workers => 1 or more (csvpipe.max_workers, now 2, caps it), or with mode => 'transaction' (it inserts in this session).",
		"$mode, workers => 0: refused the same way");
}
is(sql('SELECT count(*) FROM cx'), '0', 'refused: nothing loaded');
is(sql('SELECT count(*) FROM csvpipe.job'), $jobs_before, 'refused: no job left behind');

# ---- 2b. a transaction-mode load in the session has its job row ----
($ret, $out, $err) = $node->psql('postgres',
	"SELECT job_id || ' ' || rows_loaded || ' ' || workers || ' ' || bytes FROM csvpipe.load('$dir/data5.csv', 't4', workers => 2)");
like($err, qr/no background worker slot is free; loading in this session/, 'transaction mode, no slot: a NOTICE');
my ($t4_job, $t4_rows, $t4_workers, $t4_bytes) = split / /, $out;
is("$t4_rows $t4_workers", "$nrows 0", '... loaded in the session');
is(tsql("SELECT state || ' ' || workers || ' ' || rows_loaded || ' ' || bytes || ' ' || submitted_by || ' ' || origin "
	  . "|| ' ' || (options->>'mode') FROM csvpipe.jobs WHERE job_id = $t4_job"),
	"done 0 $nrows " . (-s "$dir/data5.csv") . " postgres load transaction",
	'... its job is in csvpipe.jobs, done, with what it loaded');
is($t4_bytes, -s "$dir/data5.csv", '... and load says the bytes it read');
is(tsql("SELECT count(*) FROM csvpipe.submit('$dir/data5.csv', 't4')"), '0',
	'... so submit skips the file it loaded (it queued it again)');
is(rows_of('t4'), $full, '... every row once');

# seen from another session while the loading transaction is open
{
	my $bg = $node->background_psql('postgres', on_error_stop => 0);
	$bg->query_safe('SET client_min_messages = warning; BEGIN');
	my $id = $bg->query_safe("SELECT job_id FROM csvpipe.load('$dir/data5.csv', 't5')");
	is($bg->query_safe("SELECT state FROM csvpipe.jobs WHERE job_id = $id"), 'uncommitted',
		'open transaction, in the session: uncommitted');
	is(tsql("SELECT csvpipe.wait($id, '300 ms')"), 'uncommitted',
		'... wait from another session: uncommitted (it was: job does not exist)');
	# another role learns nothing of a job before it commits, as in csvpipe.jobs
	my ($bret, $bout, $berr) = $node->psql('postgres', "SET ROLE bob; SELECT csvpipe.wait($id, '0 s')");
	is((split /\n/, $berr)[0], "psql:<stdin>:1: ERROR:  csvpipe job $id does not exist",
		'... another role waiting for it: the job does not exist (it said uncommitted)');
	my ($in, $wout, $werr) = ('', '', '');
	my $waiter = IPC::Run::start(
		[ $node->installed_command('psql'), '-XAtq', '-d', $node->connstr('postgres'),
		  '-c', "SELECT csvpipe.wait($id)" ],
		'<', \$in, '>', \$wout, '2>', \$werr);
	$bg->query_safe('COMMIT');
	$bg->quit;
	$waiter->finish;
	is($wout, "done\n", '... wait without a timeout waits for the commit, then says done') or diag($werr);

	$bg = $node->background_psql('postgres', on_error_stop => 0);
	$bg->query_safe('SET client_min_messages = warning; BEGIN');
	$id = $bg->query_safe("SELECT job_id FROM csvpipe.load('$dir/data6.csv', 't6')");
	$bg->query_safe('ROLLBACK');
	$bg->quit;
	is(tsql("SELECT count(*) FROM csvpipe.job WHERE job_id = $id") . ' ' . tsql('SELECT count(*) FROM t6'), '0 0',
		'rolled back: neither rows nor a job stay');
}

# ---- 2c. resume of a chunked job with a ledger: refused, no row twice ----
is(tsql("SELECT try(\$\$SELECT csvpipe.resume($c1_job)\$\$)"),
	"53400 csvpipe.resume with mode => 'chunked' needs a background worker, and no slot is free"
	  . " | Chunked and prepared loads commit in their workers, outside the caller's transaction."
	  . " | Resume it once a slot is free, or raise max_worker_processes.",
	'resume of a chunked job, no slot: refused');
is(tsql('SELECT count(*) FROM c1'), $c1_rows, '... the table has the ledger\'s rows, none twice');
is(tsql("SELECT state || ' ' || (SELECT count(*) FROM csvpipe.chunks c WHERE c.job_id = $c1_job) FROM csvpipe.jobs WHERE job_id = $c1_job"),
	"failed $c1_chunks", '... the job is still failed, its ledger as it was');

# ---- 2d. resume of a rolled back transaction-mode job: the job says done ----
is(tsql("SELECT rows_loaded || ' ' || workers FROM csvpipe.resume($t3_job)"), "$nrows 0",
	'resume of a rolled back transaction-mode job, no slot: loaded in the session');
is(tsql("SELECT state || ' ' || rows_loaded || ' ' || workers FROM csvpipe.jobs WHERE job_id = $t3_job"), "done $nrows 0",
	'... and csvpipe.jobs says done (it said rolled back)');
is(tsql("SELECT try(\$\$SELECT csvpipe.resume($t3_job)\$\$)"),
	"55000 csvpipe job $t3_job is already done |  | ", '... so a second resume is refused (it loaded again)');
is(rows_of('t3'), $full, '... every row once');

# ---- 2e. a queued chunked job's runner gets the last slot ----
release_slots(3);
tsql("SELECT csvpipe.resume($c2_job)");
is(tsql("SELECT csvpipe.wait($c2_job, '120s')"), 'failed', 'a queued chunked job, resumed, the runner alone: it fails');
is(tsql("SELECT split_part(error, E'\\n', 1) FROM csvpipe.jobs WHERE job_id = $c2_job"),
	"csvpipe job $c2_job needs a background worker to load the chunks missing from its ledger, and no slot is free",
	'... saying why');
is(tsql('SELECT count(*) FROM c2'), $c2_rows, '... nothing loaded twice (the runner loaded every row again)');

# ---- with slots: both jobs finish, every row once ----
release_slots(0);
is(tsql("SELECT rows_loaded FROM csvpipe.resume($c1_job)"), $nrows - $c1_rows, 'slots free: resume loads the missing rows');
is(rows_of('c1'), $full, '... every row once');
tsql("SELECT csvpipe.resume($c2_job)");
is(tsql("SELECT csvpipe.wait($c2_job, '120s')"), 'done', 'the queued job resumed with slots free: done');
is(rows_of('c2'), $full, '... every row once');

# ---------------------------------------------------------------------------
# 3. submit(..., create_target => true)
# ---------------------------------------------------------------------------
my $zips = write_file('zips.csv', "zip,city,pop\n" . join('', map { sprintf("%05d,city%d,%d\n", $_, $_, $_ * 3) } 1 .. 3000));
my $jid = tsql(qq{SET ROLE alice; SELECT * FROM csvpipe.submit('$zips', 'zips_q', create_target => true)});
like($jid, qr/^\d+$/, 'submit with create_target queues a job');
is(tsql("SELECT csvpipe.wait($jid, '120s')"), 'done', '... which loads');
is(tsql(q{SELECT tableowner FROM pg_tables WHERE tablename = 'zips_q'}), 'alice',
	'... into a table the submitting role owns (created as alice by a superuser\'s SET ROLE session)');
is(tsql(qq{SELECT string_agg(attname || ' ' || format_type(atttypid, atttypmod), ', ' ORDER BY attnum)
  FROM pg_attribute WHERE attrelid = 'zips_q'::regclass AND attnum > 0}),
	'zip text, city text, pop smallint', '... with the columns sniff finds (leading zeros kept)');
is(tsql("SELECT submitted_by || ' ' || rows_loaded FROM csvpipe.jobs WHERE job_id = $jid"), 'alice 3000',
	'... and the job ran as alice');
tsql(q{CREATE TABLE zips_copy (zip text, city text, pop bigint)});
tsql("COPY zips_copy FROM '$zips' (FORMAT csv, HEADER)");
is(tsql('SELECT count(*) FROM (SELECT * FROM zips_q EXCEPT ALL SELECT * FROM zips_copy) x'), '0', '... the rows COPY loads');

# any mode: the job runs after the submitting transaction committed
$jid = tsql(qq{SET ROLE alice; SELECT * FROM csvpipe.submit('$zips', 'zips_c', create_target => true, mode => 'chunked', workers => 2, chunk_size => 8192)});
is(tsql("SELECT csvpipe.wait($jid, '120s')") . ' ' . tsql('SELECT count(*) FROM zips_c'), 'done 3000',
	'create_target with a chunked queued job');

# rolled back: neither table nor job
my $before = tsql('SELECT count(*) FROM csvpipe.job');
tsql(qq{BEGIN; SET ROLE alice; SELECT * FROM csvpipe.submit('$zips', 'zips_rb', create_target => true); ROLLBACK});
is(tsql(q{SELECT count(*) FROM pg_class WHERE relname = 'zips_rb'}) . ' ' . tsql('SELECT count(*) FROM csvpipe.job'),
	"0 $before", 'submit with create_target rolled back: no table, no job');

# refused: a glob, columns, an existing table, a role that may not create
is(tsql(qq{SET ROLE alice; SELECT try(\$\$SELECT csvpipe.submit('$dir/zip*.csv', 'zips_g', create_target => true)\$\$)}),
	'0A000 csvpipe.submit: create_target => true needs one file, not a glob'
	  . ' | The table is created from the file, in this transaction. | '
	  . 'Create the table from one of the files with csvpipe.create_table(), then submit the glob.',
	'create_target with a glob: refused');
is(tsql(qq{SET ROLE alice; SELECT try(\$\$SELECT csvpipe.submit('$zips', 'zips_x', create_target => true, columns => '{zip}')\$\$)}),
	'22023 csvpipe.submit: create_target => true creates a column for every field: columns must be NULL |  | ',
	'create_target with columns: refused');
is(tsql(qq{SET ROLE alice; SELECT try(\$\$SELECT csvpipe.submit('$zips', 'zips_q', create_target => true)\$\$)}),
	'42P07 relation "zips_q" already exists |  | ', 'create_target on an existing table: refused');
is(tsql(qq{SET ROLE bob; SELECT try(\$\$SELECT csvpipe.submit('$zips', 'zips_bob', create_target => true)\$\$)}),
	'42501 permission denied for schema public |  | ', 'a role without CREATE: refused');
is(tsql(q{SELECT count(*) FROM pg_class WHERE relname IN ('zips_g', 'zips_x', 'zips_bob')}) . ' '
	  . tsql('SELECT count(*) FROM csvpipe.job'), '0 ' . ($before),
	'refused: no table, no job');
# the target by name without create_target: as regclass input resolves it
$jid = tsql(qq{SET ROLE alice; SELECT * FROM csvpipe.submit('$dir/data6.csv', 'public.t1')});
is(tsql("SELECT csvpipe.wait($jid, '120s')") . ' ' . tsql("SELECT target FROM csvpipe.jobs WHERE job_id = $jid"), 'done t1',
	'submit with the target by name (text)');
is(tsql(qq{SET ROLE alice; SELECT try(\$\$SELECT csvpipe.submit('$dir/data.csv', 'no_such_table')\$\$)}),
	'42P01 relation "no_such_table" does not exist |  | ', 'an unknown name: the regclass error');

my $log = slurp_file($node->logfile);
unlike($log, qr/(TRAP|terminated by signal|PANIC)/, 'no crash in the server log');
$node->stop;
done_testing();
