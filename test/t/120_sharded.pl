# 120_sharded.pl -- loads into a table sharded over postgres_fdw (issue 14):
# a coordinator whose `sales` is hash-partitioned into two local partitions
# and one foreign partition on each of two shard clusters
# (test/perl/CsvpipeShards.pm).
#
#  - every mode's outcome on every server equals COPY's (transaction and
#    chunked, as the superuser and as an unprivileged loader role);
#    prepared mode is refused up front, naming the foreign table;
#  - chunked mode refuses a server without a ledger, or a role that cannot
#    write it, before loading anything;
#  - a COMMIT that fails on one shard after the other committed (a deferred
#    constraint trigger that terminates its own backend at commit), on
#    either shard -- so in both orders -- leaves no duplicate and no gap,
#    retried in the worker or finished by csvpipe.resume;
#  - a shard stopped mid-load: the worker backs off (retry_delay,
#    doubling) instead of being replaced, the error names the server, and
#    resume finishes the job once the shard is back;
#  - skip mode: a table renamed on a shard (42P01) fails the load instead of
#    rejecting every row sent there; the same for a local non-data error;
#    a trigger's own error is still a rejected row.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time);
use CsvpipeShards;

my $gen = $ENV{CSVPIPE_GEN_CSV} // 'test/gen/gen_csv';
my $dir = PostgreSQL::Test::Utils::tempdir;

my $s = CsvpipeShards->new(name => 's120');
my $c = $s->coord;
$s->create_sharded('sales');

my $nrows = 40000;
system("$gen narrow $nrows 7 > $dir/sales.csv") == 0 or die;
my $file = "$dir/sales.csv";
my $expect = $s->copy_expected('sales', $file);
for my $k ($s->parts)
{
	cmp_ok((split / /, $expect->{$k})[0], '>', 5000, "COPY puts rows on $k");
}
# about 12 chunks
my $load_opts = "workers => 2, chunk_size => 150000";

sub psql_as
{
	my ($role, $sql) = @_;
	my ($ret, $out, $err) = $c->psql('postgres', ($role ? "SET ROLE $role; " : '') . $sql);
	return ($ret, $out, $err);
}

sub all_empty
{
	my $n = $s->counts('sales');
	return $n->{total} == 0;
}

# ---- every mode, as COPY ----------------------------------------------------

for my $role ('', 'loader')
{
	my $who = $role || 'superuser';
	for my $mode (qw(transaction chunked))
	{
		my $res = $s->sql(($role ? "SET ROLE $role; " : '')
			  . "SELECT rows_loaded FROM csvpipe.load('$file', 'sales', mode => '$mode', $load_opts)");
		is($res, $nrows, "mode $mode, $who: rows_loaded");
		$s->is_like('sales', $expect, "mode $mode, $who");
		$s->truncate_table('sales');
	}
}

# a queued chunked job: its runner's workers use the ledgers too
my $qjob = $s->sql_as('loader', "SELECT csvpipe.submit('$file', 'sales', mode => 'chunked', force => true, $load_opts)");
die "submit queued nothing" unless $qjob;
$c->poll_query_until('postgres', "SELECT csvpipe.wait($qjob, '60 s') <> 'running'");
is($s->sql("SELECT state || ' ' || rows_loaded FROM csvpipe.jobs WHERE job_id = $qjob"), "done $nrows",
	'submit, chunked: the job is done with every row');
$s->is_like('sales', $expect, 'submit, chunked, loader');
$s->truncate_table('sales');

# the chunked loads wrote one ledger row per chunk on each shard, in the
# chunk's remote transaction
my $chunks = $s->sql("SELECT count(*) FROM csvpipe.chunks c JOIN csvpipe.job j USING (job_id)
	WHERE j.path = '$file' AND j.options->>'mode' = 'chunked'");
cmp_ok($chunks, '>=', 30, 'chunked loads: 10 or more chunks each');
is($s->ledger_rows(1), $chunks, 'shard r1: a ledger row per chunk of the chunked loads');
is($s->ledger_rows(2), $chunks, 'shard r2: a ledger row per chunk of the chunked loads');

# prepared mode: postgres_fdw cannot PREPARE; refused before any row is sent
my ($ret, $out, $err) = psql_as('loader',
	"SELECT csvpipe.load('$file', 'sales', mode => 'prepared', $load_opts)");
isnt($ret, 0, 'mode prepared: refused');
like($err, qr/sales_r[12]/, 'mode prepared: the error names the foreign partition');
ok(all_empty(), 'mode prepared: nothing loaded anywhere');

# ---- chunked mode needs the ledgers -----------------------------------------

$s->sql("ALTER FOREIGN TABLE csvpipe_ledger_r2 OPTIONS (SET table_name 'not_the_ledger')");
($ret, $out, $err) = psql_as('loader',
	"SELECT csvpipe.load('$file', 'sales', mode => 'chunked', $load_opts)");
like($err, qr/ERROR:  csvpipe.load with mode => 'chunked' needs a ledger table on foreign server "r2"/,
	'chunked: a server without a ledger is refused, by name');
like($err, qr/HINT:  On server "r2", once: CREATE TABLE public.csvpipe_ledger/, 'with the DDL as a hint');
ok(all_empty(), 'chunked without a ledger: nothing loaded');
($ret, $out, $err) = psql_as('loader',
	"SELECT csvpipe.submit('$file', 'sales', mode => 'chunked', force => true)");
like($err, qr/ERROR:  csvpipe.load with mode => 'chunked' needs a ledger table on foreign server "r2"/,
	'chunked: submit refuses a server without a ledger too');
$s->sql("ALTER FOREIGN TABLE csvpipe_ledger_r2 OPTIONS (SET table_name 'csvpipe_ledger')");

$s->sql('REVOKE INSERT ON csvpipe_ledger_r1 FROM loader');
($ret, $out, $err) = psql_as('loader',
	"SELECT csvpipe.load('$file', 'sales', mode => 'chunked', $load_opts)");
like($err, qr/ERROR:  csvpipe.load with mode => 'chunked' needs SELECT and INSERT on public.csvpipe_ledger_r1/,
	'chunked: a role that cannot write a ledger is refused');
ok(all_empty(), 'chunked without ledger privileges: nothing loaded');
$s->sql('GRANT INSERT ON csvpipe_ledger_r1 TO loader');

# ---- a COMMIT that fails on one shard after the other committed --------------

# A row in the middle of the file on each shard: its chunk's COMMIT on that
# shard fires a deferred constraint trigger that terminates its own backend,
# once (a sequence, not rolled back, counts the firings).
my %victim;
$s->sql("COPY sales FROM '$file' (FORMAT csv, HEADER)");
for my $i (1, 2)
{
	$victim{$i} = $s->shard_sql($i, "SELECT min(id) FROM sales WHERE id > $nrows / 2");
	$s->shard_sql($i, qq{
CREATE SEQUENCE kill_gate;
CREATE FUNCTION kill_at_commit() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER
  SET search_path = public, pg_catalog AS \$\$
BEGIN
  IF nextval('kill_gate') = 1 THEN
    PERFORM pg_terminate_backend(pg_backend_pid());
  END IF;
  RETURN NULL;
END \$\$;
});
}
$s->truncate_table('sales');

# the chunk (ledger) holding a line
sub chunk_of_line
{
	my ($job, $line) = @_;
	return $s->sql("SELECT chunk_no FROM csvpipe.chunks WHERE job_id = $job
		AND first_line <= $line ORDER BY first_line DESC LIMIT 1");
}

my $ref_job = $s->sql("SELECT max(job_id) FROM csvpipe.job WHERE options->>'mode' = 'chunked' AND state = 'done'");
my $dboid = $s->sql("SELECT oid FROM pg_database WHERE datname = 'postgres'");
my $dangerous = 0;
for my $i (1, 2)
{
	my $other = 3 - $i;
	for my $how ('retry', 'resume')
	{
		$s->shard_sql($i, qq{
SELECT setval('kill_gate', 1, false);
CREATE CONSTRAINT TRIGGER kill_at_commit AFTER INSERT ON sales
  DEFERRABLE INITIALLY DEFERRED FOR EACH ROW WHEN (NEW.id = $victim{$i})
  EXECUTE FUNCTION kill_at_commit();
});
		my $label = "COMMIT fails on r$i ($how)";
		my $job;
		if ($how eq 'retry')
		{
			($ret, $out, $err) = psql_as('loader',
				"SET csvpipe.retry_delay = '200ms'; SELECT job_id FROM csvpipe.load('$file', 'sales', mode => 'chunked', $load_opts)");
			is($ret, 0, "$label: the load succeeds") or diag($err);
			like($err, qr/chunk \d+ \(line \d+\) failed, retrying \(attempt 2 of 4\): (FATAL:  )?terminating connection due to administrator command/,
				"$label: the worker retried its chunk");
			unlike($err, qr/was lost/, "$label: no lost worker");
			$job = $out;
			is($s->sql("SELECT state || ' ' || rows_loaded FROM csvpipe.jobs WHERE job_id = $job"),
				"done $nrows", "$label: every row counted once");
		}
		else
		{
			# no retry in the worker: the load fails, resume finishes it
			($ret, $out, $err) = psql_as('loader',
				"SET csvpipe.max_retries = 0; SELECT csvpipe.load('$file', 'sales', mode => 'chunked', $load_opts)");
			isnt($ret, 0, "$label: the load fails without retries");
			like($err, qr/terminating connection due to administrator command/, "$label: with the shard's error");
			$job = $s->sql("SELECT max(job_id) FROM csvpipe.job");
			is($s->sql("SELECT state FROM csvpipe.jobs WHERE job_id = $job"), 'failed', "$label: job failed");
			$s->sql_as('loader', "SELECT csvpipe.resume($job)");
			is($s->sql("SELECT state || ' ' || rows_loaded FROM csvpipe.jobs WHERE job_id = $job"),
				"done $nrows", "$label: resume finishes the job with every row counted")
			  or diag($s->sql("SELECT c.chunk_no, c.rows, r.rows FROM csvpipe.chunks c JOIN csvpipe.chunks r USING (chunk_no)
				WHERE c.job_id = $job AND r.job_id = $ref_job AND c.rows <> r.rows"),
				"\nr1: ", $s->shard_sql(1, "SELECT chunk_no, rows, committed_at FROM csvpipe_ledger WHERE job LIKE '%/$dboid/$job/%' ORDER BY 1"),
				"\nr2: ", $s->shard_sql(2, "SELECT chunk_no, rows, committed_at FROM csvpipe_ledger WHERE job LIKE '%/$dboid/$job/%' ORDER BY 1"));
		}
		# fired at the failed COMMIT, and again at the one that worked
		is($s->shard_sql($i, "SELECT last_value FROM kill_gate"), '2', "$label: the trigger ended one COMMIT");
		my $dups = $s->duplicates('sales');
		is($dups->{"r$other"}, 0, "$label: no duplicate on r$other");
		$s->is_like('sales', $expect, $label);

		# did r$other commit the failing chunk before r$i failed (the
		# dangerous order)?  Then its ledger row is older than r$i's.
		my $line = $victim{$i} + 1;
		my $chunk = chunk_of_line($job, $line);
		my $key = "'%/$dboid/$job/%'";
		my $t_other = $s->shard_sql($other,
			"SELECT extract(epoch FROM committed_at) FROM csvpipe_ledger WHERE job LIKE $key AND chunk_no = $chunk");
		my $t_victim = $s->shard_sql($i,
			"SELECT extract(epoch FROM committed_at) FROM csvpipe_ledger WHERE job LIKE $key AND chunk_no = $chunk");
		ok($t_other ne '' && $t_victim ne '', "$label: chunk $chunk is in both shards' ledgers");
		$dangerous++ if $t_other ne '' && $t_victim ne '' && $t_victim - $t_other > 0.1;

		$s->shard_sql($i, 'DROP TRIGGER kill_at_commit ON sales');
		$s->truncate_table('sales');
	}
}
ok($dangerous >= 1, "in $dangerous of 4 runs the other shard committed the chunk first (the order that doubled rows)");

# ---- a shard stopped mid-load -----------------------------------------------

# one chunk at a time, slowly: a statement trigger (once per chunk) sleeps
$s->sql(q{
CREATE FUNCTION pace() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN PERFORM pg_sleep(0.3); RETURN NULL; END $$;
CREATE TRIGGER pace BEFORE INSERT ON sales FOR EACH STATEMENT EXECUTE FUNCTION pace();
});
my $bg = $c->background_psql('postgres', on_error_stop => 0);
$bg->query_until(qr/started/, qq{SET ROLE loader;
SET csvpipe.retry_delay = '400ms';
\\echo started
SELECT csvpipe.load('$file', 'sales', mode => 'chunked', workers => 1, chunk_size => 150000);
});
$c->poll_query_until('postgres',
	"SELECT count(*) >= 3 FROM csvpipe.chunks c JOIN csvpipe.job j USING (job_id)
	  WHERE j.state = 'running'")
  or die "the load did not start";
my $job = $s->sql("SELECT job_id FROM csvpipe.job WHERE state = 'running'");
my $stopped = time;
$s->stop_shard(2);
$c->poll_query_until('postgres', "SELECT state <> 'running' FROM csvpipe.job WHERE job_id = $job")
  or die "the load did not end";
my $waited = time - $stopped;
$bg->query('SELECT 1');
my $bgerr = $bg->{stderr};
$bg->quit;
like($bgerr, qr/ERROR:  could not connect to server "r2"/, 'shard stopped: the error names the server');
like($bgerr, qr/CONTEXT: .*csvpipe chunk \d+ \(line \d+\), tried 4 times, into foreign servers r1, r2/s,
	'shard stopped: the error says which chunk, how often, which servers');
unlike($bgerr, qr/was lost/, 'shard stopped: no worker lost, none replaced');
like($bgerr, qr/retrying \(attempt 4 of 4\)/, 'shard stopped: the chunk was retried in the worker');
# 0.4 + 0.8 + 1.6 s of backoff before giving up
cmp_ok($waited, '>=', 2.8, sprintf('shard stopped: backoff doubling from retry_delay (%.1f s)', $waited));
like($s->sql("SELECT state || ': ' || error FROM csvpipe.jobs WHERE job_id = $job"),
	qr/^failed: could not connect to server "r2"/, 'shard stopped: the job failed, naming the server');
$s->start_shard(2);
cmp_ok($s->counts('sales')->{total}, '<', $nrows, 'shard stopped: part of the file was loaded');
$s->sql('DROP TRIGGER pace ON sales');
$s->sql_as('loader', "SELECT csvpipe.resume($job)");
is($s->sql("SELECT state || ' ' || rows_loaded FROM csvpipe.jobs WHERE job_id = $job"),
	"done $nrows", 'shard back: resume finishes the job');
$s->is_like('sales', $expect, 'shard stopped mid-load, then resumed');
$s->truncate_table('sales');

# ---- skip mode: a broken server is not a bad row ------------------------------

$s->shard_sql(2, 'ALTER TABLE sales RENAME TO sales_moved');
for my $mode (qw(chunked transaction))
{
	($ret, $out, $err) = psql_as('loader',
		"SELECT csvpipe.load('$file', 'sales', mode => '$mode', on_error => 'skip', $load_opts)");
	isnt($ret, 0, "skip mode, $mode, remote table renamed: the load fails");
	like($err, qr/ERROR:  relation "public.sales" does not exist/, "skip mode, $mode: with the shard's 42P01");
	my $j = $s->sql("SELECT max(job_id) FROM csvpipe.job");
	is($s->sql("SELECT count(*) FROM csvpipe.errors WHERE job_id = $j"), '0',
		"skip mode, $mode: no row rejected");
	# what chunked mode committed before it failed
	$s->sql('TRUNCATE sales_p0, sales_p1');
	$s->shard_sql(1, 'TRUNCATE sales');
}
$s->shard_sql(2, 'ALTER TABLE sales_moved RENAME TO sales');

# local targets too: a CHECK whose function reads a table that is gone is the
# server's problem; a BEFORE ROW trigger's RAISE is the row's
$s->sql(q{
CREATE TABLE lookup (n int);
CREATE FUNCTION lookup_ok(bigint) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN PERFORM 1 FROM public.lookup LIMIT 1; RETURN true; END $$;
CREATE TABLE local_t (id bigint, ts timestamptz, name text, amount numeric(12,2), flag boolean,
                      CHECK (lookup_ok(id)));
CREATE FUNCTION no_thousands() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF NEW.id % 1000 = 0 THEN RAISE EXCEPTION 'no multiples of 1000: %', NEW.id; END IF;
  RETURN NEW;
END $$;
CREATE TRIGGER no_thousands BEFORE INSERT ON local_t FOR EACH ROW EXECUTE FUNCTION no_thousands();
GRANT INSERT, SELECT ON local_t TO loader;
GRANT SELECT ON lookup TO loader;
});
for my $mode (qw(chunked transaction))
{
	my $r = $s->sql_as('loader',
		"SELECT rows_loaded || ' ' || rows_rejected FROM csvpipe.load('$file', 'local_t', mode => '$mode', on_error => 'skip', $load_opts)");
	my $bad = int($nrows / 1000);
	is($r, ($nrows - $bad) . " $bad", "skip mode, $mode: a trigger's RAISE is a rejected row");
	is($s->sql("SELECT count(*) || ' ' || min(sqlstate) FROM csvpipe.errors WHERE job_id = (SELECT max(job_id) FROM csvpipe.job)"),
		"$bad P0001", "skip mode, $mode: rejected with the trigger's SQLSTATE");
	$s->sql('TRUNCATE local_t');
}
$s->sql('DROP TABLE lookup');
for my $mode (qw(chunked transaction))
{
	($ret, $out, $err) = psql_as('loader',
		"SELECT csvpipe.load('$file', 'local_t', mode => '$mode', on_error => 'skip', $load_opts)");
	like($err, qr/ERROR:  relation "public.lookup" does not exist/,
		"skip mode, $mode: a local 42P01 fails the load");
	my $j = $s->sql("SELECT max(job_id) FROM csvpipe.job");
	is($s->sql("SELECT count(*) FROM csvpipe.errors WHERE job_id = $j"), '0',
		"skip mode, $mode: local 42P01, no row rejected");
	$s->sql('TRUNCATE local_t');
}

done_testing();
