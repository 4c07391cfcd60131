# 123_ledger.pl -- the shard ledgers of chunked loads into postgres_fdw
# partitions (issue 14) after a COMMIT that broke, and keeping them bounded
# (test/perl/CsvpipeShards.pm: a coordinator and two shard clusters).
#
#  1. A COMMIT whose remote transaction goes on after this side saw it fail:
#     with postgres_fdw's parallel_commit, one shard's COMMIT fails (its
#     backend ends at commit) while the other's is still under way (a
#     deferred trigger sleeps at commit).  The worker's retry reads that
#     shard's ledger before the earlier attempt's commit is visible there;
#     its ledger INSERT then waits and fails with 23505 once it is.  The
#     worker tries the chunk again and skips that shard: the load finishes
#     exactly once, without csvpipe.resume (it failed with 23505 before).
#     Both assignments of the two shards, so both orders of postgres_fdw's
#     pending commits.
#  2. Skip mode, bad rows routed to every partition (a CHECK on each, the
#     shards' their own), and a COMMIT that fails on one shard after the
#     other committed (either shard): every line is loaded or rejected,
#     once, with its own line and raw record; csvpipe.jobs and the result
#     count them all; the rows are COPY's good rows on every server.  The
#     rows the committed shard rejected were missing before (neither loaded
#     nor rejected), and max_errors counted the failed attempt's rejects
#     twice (a load with max_errors => exactly its bad rows failed).
#  3. Keeping the ledgers bounded: the SQL of doc/sharded.md,
#     run on the coordinator for each ledger, deletes the ledger rows of
#     done jobs and of jobs long gone, and keeps those of a failed job (it
#     may be resumed: it is, afterwards, exactly as COPY), of a job gone
#     only lately, of other databases and clusters, and rows it cannot
#     read.
#  4. The same class in transaction mode (no ledger: postgres_fdw commits
#     server by server at COMMIT): a load whose COMMIT fails on one shard
#     after the other committed (either shard, so both orders) -- in the
#     caller's transaction, or a queued job's runner --
#     is in doubt: csvpipe.resume refuses it (it ran the load again from the
#     start: r1's rows doubled), csvpipe.submit does not queue the file again
#     unless forced (it did: the job had "loaded nothing"), and csvpipe.purge
#     keeps the file as loaded (it kept no record of it).
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use CsvpipeShards;

my $gen = $ENV{CSVPIPE_GEN_CSV} // 'test/gen/gen_csv';
my $dir = PostgreSQL::Test::Utils::tempdir;

my $s = CsvpipeShards->new(name => 's123');
my $c = $s->coord;
$s->create_sharded('sales');

my $nrows = 20000;
system("$gen narrow $nrows 13 > $dir/sales.csv") == 0 or die;
my $file = "$dir/sales.csv";
my $expect = $s->copy_expected('sales', $file);
my $load_opts = "workers => 2, chunk_size => 150000";
my $dboid = $s->sql("SELECT oid FROM pg_database WHERE datname = 'postgres'");
my $sysid = $s->sql("SELECT system_identifier FROM pg_control_system()");
# the chunk whose COMMIT breaks
my $victim = 3;

sub psql_as
{
	my ($role, $sql) = @_;
	my ($ret, $out, $err) = $c->psql('postgres', ($role ? "SET ROLE $role; " : '') . $sql);
	return ($ret, $out, $err);
}

sub last_job { return $s->sql("SELECT max(job_id) FROM csvpipe.job"); }

# this job's ledger rows on shard $i (optionally of one chunk)
sub job_ledger_rows
{
	my ($i, $job, $chunk) = @_;
	return $s->ledger_rows($i, "job LIKE '$sysid/$dboid/$job/%'"
		  . (defined $chunk ? " AND chunk_no = $chunk" : ''));
}

# On each shard: at the COMMIT of the victim chunk's ledger row, end the
# backend (kill) or sleep 3 s first (slow) -- once each (a sequence, not
# rolled back, counts the firings; another keeps the moment of the kill).
for my $i (1, 2)
{
	$s->shard_sql($i, q{
CREATE SEQUENCE kill_gate;
CREATE SEQUENCE kill_time;
CREATE SEQUENCE slow_gate;
CREATE FUNCTION kill_at_commit() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER
  SET search_path = public, pg_catalog AS $$
BEGIN
  IF nextval('kill_gate') = 1 THEN
    PERFORM setval('kill_time', (extract(epoch FROM clock_timestamp()) * 1000000)::bigint);
    PERFORM pg_terminate_backend(pg_backend_pid());
  END IF;
  RETURN NULL;
END $$;
CREATE FUNCTION slow_at_commit() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER
  SET search_path = public, pg_catalog AS $$
BEGIN
  IF nextval('slow_gate') = 1 THEN
    PERFORM pg_sleep(3);
  END IF;
  RETURN NULL;
END $$;
});
}

sub arm
{
	my ($i, $what) = @_;
	$s->shard_sql($i, qq{
SELECT setval('${what}_gate', 1, false);
CREATE CONSTRAINT TRIGGER ${what}_at_commit AFTER INSERT ON csvpipe_ledger
  DEFERRABLE INITIALLY DEFERRED FOR EACH ROW WHEN (NEW.chunk_no = $victim)
  EXECUTE FUNCTION ${what}_at_commit();
});
}

sub disarm
{
	my ($i, $what) = @_;
	$s->shard_sql($i, "DROP TRIGGER ${what}_at_commit ON csvpipe_ledger");
}

sub gate_value
{
	my ($i, $what) = @_;
	return $s->shard_sql($i, "SELECT last_value FROM ${what}_gate");
}

# ---- 1. a COMMIT still under way when the retry reads the ledger --------------

$s->sql("ALTER SERVER r1 OPTIONS (ADD parallel_commit 'true');
ALTER SERVER r2 OPTIONS (ADD parallel_commit 'true')");
my $raced = 0;
my @done_jobs;
for my $k (1, 2)
{
	my $slow = 3 - $k;
	my $label = "parallel commit, COMMIT fails on r$k while r$slow commits slowly";
	arm($k, 'kill');
	arm($slow, 'slow');
	my ($ret, $out, $err) = psql_as('loader',
		"SET csvpipe.retry_delay = '100ms'; SELECT rows_loaded FROM csvpipe.load('$file', 'sales', mode => 'chunked', $load_opts)");
	my $job = last_job();
	push @done_jobs, $job;
	cmp_ok($s->sql("SELECT count(*) FROM csvpipe.chunks WHERE job_id = $job AND chunk_no > $victim"),
		'>', 0, "$label: chunk $victim is not the last");
	is($ret, 0, "$label: the load succeeds") or diag($err);
	is($out, $nrows, "$label: every row counted once");
	like($err, qr/chunk $victim \(line \d+\) failed, retrying \(attempt 2 of 4\): (FATAL:  )?terminating connection due to administrator command/,
		"$label: the worker retried the chunk");
	$raced++
	  if $err =~ /chunk $victim \(line \d+\) failed, retrying \(attempt 3 of 4\): chunk $victim was committed on foreign server "r$slow" by an earlier attempt/;
	is($s->sql("SELECT state || ' ' || rows_loaded FROM csvpipe.jobs WHERE job_id = $job"),
		"done $nrows", "$label: the job is done with every row");
	is(gate_value($k, 'kill'), '2', "$label: r${k}'s COMMIT was ended once");
	is(gate_value($slow, 'slow'), '1', "$label: r$slow committed the chunk once");
	my $dups = $s->duplicates('sales');
	is($dups->{"r$_"}, 0, "$label: no duplicate on r$_") for 1, 2;
	$s->is_like('sales', $expect, $label);
	is(job_ledger_rows($_, $job, $victim), '1', "$label: chunk $victim once in r${_}'s ledger") for 1, 2;
	disarm($k, 'kill');
	disarm($slow, 'slow');
	$s->truncate_table('sales');
}
ok($raced >= 1,
	"in $raced of 2 runs the retry found the chunk committed after it read the ledger (23505 on the ledger row)");
$s->sql("ALTER SERVER r1 OPTIONS (DROP parallel_commit);
ALTER SERVER r2 OPTIONS (DROP parallel_commit)");

# ---- 2. skip mode: the rows a committed shard rejected ----------------------------

# every id divisible by 97 is refused by its partition: locally by a CHECK
# here, on the shards by a CHECK only the shard's table has (23514 there)
$s->sql('ALTER TABLE sales_p0 ADD CHECK (id % 97 <> 0); ALTER TABLE sales_p1 ADD CHECK (id % 97 <> 0)');
$s->shard_sql($_, 'ALTER TABLE sales ADD CHECK (id % 97 <> 0)') for 1, 2;
my (@bad_lines, %raw, @good);
open(my $fh, '<', $file) or die;
my $header = <$fh>;
push @good, $header;
my $line = 1;
while (my $l = <$fh>)
{
	$line++;
	my ($id) = split /,/, $l;
	if ($id % 97 == 0)
	{
		push @bad_lines, $line;
		chomp(my $t = $l);
		$raw{$line} = $t;
	}
	else
	{
		push @good, $l;
	}
}
close $fh;
my $nbad = scalar @bad_lines;
my $ngood = $nrows - $nbad;
open(my $gfh, '>', "$dir/good.csv") or die;
print $gfh @good;
close $gfh;
my $expect_good = $s->copy_expected('sales', "$dir/good.csv");
my %bad_on;
$bad_on{r1} = $s->sql("SELECT count(*) FROM generate_series(1, $nrows) i WHERE i % 97 = 0
	AND satisfies_hash_partition('sales'::regclass, 4, 2, i::bigint)");
$bad_on{r2} = $s->sql("SELECT count(*) FROM generate_series(1, $nrows) i WHERE i % 97 = 0
	AND satisfies_hash_partition('sales'::regclass, 4, 3, i::bigint)");
cmp_ok($bad_on{"r$_"}, '>', 10, "skip mode: bad rows routed to r$_") for 1, 2;

my $committed_first = 0;
for my $run ([ 1, '' ], [ 2, '' ], [ 2, ", max_errors => $nbad" ])
{
	my ($k, $max) = @$run;
	my $other = 3 - $k;
	my $label = "skip mode, COMMIT fails on r$k" . ($max ? ', max_errors => its bad rows' : '');
	arm($k, 'kill');
	my ($ret, $out, $err) = psql_as('loader',
		"SET csvpipe.retry_delay = '200ms'; SELECT rows_loaded || ' ' || rows_rejected FROM csvpipe.load('$file', 'sales', mode => 'chunked', on_error => 'skip'$max, $load_opts)");
	my $job = last_job();
	push @done_jobs, $job;
	is($ret, 0, "$label: the load succeeds") or diag($err);
	is($out, "$ngood $nbad", "$label: every line loaded or rejected, once");
	like($err, qr/chunk $victim \(line \d+\) failed, retrying \(attempt 2 of 4\)/, "$label: the worker retried the chunk");
	# a firing per ledger row of the chunk: the first ended the COMMIT
	is(gate_value($k, 'kill'), 1 + job_ledger_rows($k, $job, $victim), "$label: r${k}'s COMMIT was ended once");
	is($s->sql("SELECT state || ' ' || rows_loaded || ' ' || rows_rejected FROM csvpipe.jobs WHERE job_id = $job"),
		"done $ngood $nbad", "$label: csvpipe.jobs counts them");
	is($s->sql("SELECT string_agg(line_no::text, ',' ORDER BY line_no) FROM csvpipe.errors WHERE job_id = $job"),
		join(',', @bad_lines), "$label: each bad line rejected once, with its own line");
	is($s->sql("SELECT count(*) FROM csvpipe.errors WHERE job_id = $job AND sqlstate <> '23514'"), '0',
		"$label: each with the CHECK's SQLSTATE");
	my $raws = $s->sql("SELECT string_agg(line_no || ':' || raw_record, E'\\n' ORDER BY line_no) FROM csvpipe.errors WHERE job_id = $job");
	is($raws, join("\n", map { "$_:$raw{$_}" } @bad_lines), "$label: with its own raw record");
	$s->is_like('sales', $expect_good, $label);
	my $dups = $s->duplicates('sales');
	is($dups->{"r$_"}, 0, "$label: no duplicate on r$_") for 1, 2;

	# did r$other commit the chunk before r$k failed (the order where the
	# retry skips r$other)?  Then the remote transaction of r${other}'s
	# ledger row (committed_at: its start) began before r$k's COMMIT ended
	# its backend; any later attempt's began after.  Not "its ledger row is
	# the older one by more than a moment": in the other order both rows
	# are the retry's, and r$k's was written a reconnection later.
	my $t_other = $s->shard_sql($other, "SELECT extract(epoch FROM committed_at) FROM csvpipe_ledger
		WHERE job LIKE '$sysid/$dboid/$job/%' AND chunk_no = $victim");
	my $t_kill = $s->shard_sql($k, 'SELECT last_value / 1000000.0 FROM kill_time');
	if ($t_other ne '' && $t_other < $t_kill)
	{
		$committed_first++;
		like($s->sql("SELECT string_agg(DISTINCT message, ' | ') FROM csvpipe.errors WHERE job_id = $job AND chunk_no = $victim
			AND message LIKE 'row rejected by foreign server%'"),
			qr/^row rejected by foreign server "r$other" \(SQLSTATE 23514\) when chunk $victim committed there$/,
			"$label: r${other}'s bad rows of chunk $victim rejected again from its ledger");
	}
	disarm($k, 'kill');
	$s->truncate_table('sales');
}
ok($committed_first >= 1,
	"in $committed_first of 3 runs the other shard committed the chunk first (the retry skipped it)");
$s->sql('ALTER TABLE sales_p0 DROP CONSTRAINT sales_p0_id_check; ALTER TABLE sales_p1 DROP CONSTRAINT sales_p1_id_check');
$s->shard_sql($_, 'ALTER TABLE sales DROP CONSTRAINT sales_id_check') for 1, 2;

# ---- 3. keeping the ledgers bounded -------------------------------------------------

# the SQL a DBA runs, as doc/sharded.md has it (run_tests.sh copies it)
open(my $rfh, '<', 'doc/sharded.md') or die "doc/sharded.md: $!";
my $doc = do { local $/; <$rfh> };
close $rfh;
my ($purge_sql) = $doc =~ /```sql\n((?:(?!```).)*?DELETE FROM csvpipe_ledger_r1\b.*?)```/s;
ok(defined $purge_sql, 'doc/sharded.md shows the SQL that deletes finished jobs\' ledger rows');
$purge_sql //= 'SELECT 1';

# a job that fails part way (a local partition refuses the second half of
# the file until told otherwise): 'failed', resumable, with chunks on the shards
$s->sql(q{
CREATE TABLE gate (closed boolean);
INSERT INTO gate VALUES (true);
GRANT SELECT ON gate TO PUBLIC;
CREATE FUNCTION gate() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF NEW.id > 12000 AND (SELECT closed FROM public.gate) THEN RAISE EXCEPTION 'gate closed'; END IF;
  RETURN NEW;
END $$;
CREATE TRIGGER gate BEFORE INSERT ON sales_p0 FOR EACH ROW EXECUTE FUNCTION gate();
});
my ($ret, $out, $err) = psql_as('loader', "SELECT csvpipe.load('$file', 'sales', mode => 'chunked', $load_opts)");
like($err, qr/gate closed/, 'a failed job: the load fails');
my $failed = last_job();
is($s->sql("SELECT state FROM csvpipe.jobs WHERE job_id = $failed"), 'failed', 'a failed job: failed');

# rows csvpipe must not delete, and one it must
my $now_us = $s->sql("SELECT (extract(epoch FROM now()) * 1000000)::bigint");
my $old_us = $s->sql("SELECT (extract(epoch FROM now() - interval '2 days') * 1000000)::bigint");
my %keep = (
	'another cluster' => "1234567/$dboid/1/$now_us/x",
	'another database' => "$sysid/1/1/$now_us/x",
	'a job gone lately' => "$sysid/$dboid/999998/$now_us/x",
	'unreadable' => "$sysid/$dboid/x/y/z",
);
my $gone_old = "$sysid/$dboid/999999/$old_us/x";
for my $i (1, 2)
{
	$s->shard_sql($i, "INSERT INTO csvpipe_ledger (job, chunk_no, rows) VALUES "
		  . join(', ', map { "('$_', 0, 1)" } values %keep, $gone_old));
}
my %before;
for my $i (1, 2)
{
	$before{$i}{failed} = job_ledger_rows($i, $failed);
	cmp_ok($before{$i}{failed}, '>', 0, "a failed job: some chunks committed on r$i");
	cmp_ok(job_ledger_rows($i, $_), '>', 0, "done job $_: ledger rows on r$i") for @done_jobs;
}

# as the coordinator's superuser (its mapping: the shard's superuser)
for my $i (1, 2)
{
	(my $q = $purge_sql) =~ s/\bcsvpipe_ledger_r1\b/csvpipe_ledger_r$i/g;
	my ($r, $o, $e) = $c->psql('postgres', $q);
	is($r, 0, "doc/sharded.md's SQL runs on csvpipe_ledger_r$i") or diag($e);
}
for my $i (1, 2)
{
	is(job_ledger_rows($i, $_), '0', "r$i: done job ${_}'s ledger rows deleted") for @done_jobs;
	is(job_ledger_rows($i, $failed), $before{$i}{failed}, "r$i: the failed job's ledger rows kept");
	is($s->ledger_rows($i, "job = '$keep{$_}'"), '1', "r$i: the row of $_ kept") for sort keys %keep;
	is($s->ledger_rows($i, "job = '$gone_old'"), '0', "r$i: the row of a job gone for 2 days deleted");
}

# the failed job is resumed: exactly as COPY
$s->sql('UPDATE gate SET closed = false');
$s->sql_as('loader', "SELECT csvpipe.resume($failed)");
is($s->sql("SELECT state || ' ' || rows_loaded FROM csvpipe.jobs WHERE job_id = $failed"), "done $nrows",
	'the failed job: resume finishes it');
$s->is_like('sales', $expect, 'the failed job, resumed');
$s->sql('DROP TRIGGER gate ON sales_p0');
for my $i (1, 2)
{
	(my $q = $purge_sql) =~ s/\bcsvpipe_ledger_r1\b/csvpipe_ledger_r$i/g;
	$s->sql($q);
	is(job_ledger_rows($i, $failed), '0', "r$i: once done, the resumed job's ledger rows deleted too");
	is($s->ledger_rows($i, "job LIKE '$sysid/$dboid/%'"), scalar(grep { /^$sysid\/$dboid\// } values %keep),
		"r$i: of this database, only the rows kept on purpose are left");
}

# ---- 4. transaction mode: a COMMIT that fails on one shard after the other ---------

# a file of its own (the jobs above made $file a loaded file for submit)
system('cp', $file, "$dir/sales4.csv") == 0 or die;
$file = "$dir/sales4.csv";
$s->truncate_table('sales');
# on each shard, a row of its own whose COMMIT there ends the backend
for my $i (1, 2)
{
	my $id = $s->sql("SELECT min(i) FROM generate_series(1, $nrows) i
		WHERE satisfies_hash_partition('sales'::regclass, 4, 1 + $i, i::bigint)");
	$s->shard_sql($i, qq{
CREATE CONSTRAINT TRIGGER kill_rows AFTER INSERT ON sales
  DEFERRABLE INITIALLY DEFERRED FOR EACH ROW WHEN (NEW.id = $id)
  EXECUTE FUNCTION kill_at_commit();
ALTER TABLE sales DISABLE TRIGGER kill_rows;
});
}
my $sure = 0;
my @txn_jobs;

# the COMMIT fails on r$k; postgres_fdw may have committed the other first
sub in_doubt_checks
{
	my ($job, $k, $label) = @_;
	my $other = 3 - $k;
	my $n = $s->counts('sales');
	is($n->{"r$k"} + $n->{local}, 0, "$label: nothing committed here or on r$k");
	$sure++ if $n->{"r$other"} == (split / /, $expect->{"r$other"})[0];
	my ($ret, $out, $err) = psql_as('loader', "SELECT csvpipe.resume($job)");
	like($err,
		qr/ERROR:  csvpipe job $job cannot be resumed: its transaction ended after the load without committing, and its target "sales" has foreign tables\nDETAIL:  "sales_r[12]" is a foreign table on server "r[12]"/,
		"$label: resume refuses it");
	($ret, $out, $err) = psql_as('loader', "SELECT * FROM csvpipe.submit('$file', 'sales', mode => 'transaction')");
	is($ret, 0, "$label: submit runs") or diag($err);
	is($out, '', "$label: submit does not queue the file again");
	like($err, qr/NOTICE:  csvpipe.submit skipped 1 file\(s\) that a transaction-mode job may have loaded into some of the foreign servers of "sales"/,
		"$label: and says why");
	is($s->sql("SELECT count(*) FROM csvpipe.job WHERE job_id > $job"), '0', "$label: no job queued");
	is_deeply($s->counts('sales'), $n, "$label: nothing loaded again");
	is($s->duplicates('sales')->{"r$other"}, 0, "$label: no duplicate on r$other");
	$s->truncate_table('sales');
}

for my $k (2, 1)
{
	$s->shard_sql($k, "SELECT setval('kill_gate', 1, false); ALTER TABLE sales ENABLE TRIGGER kill_rows");
	($ret, $out, $err) = psql_as('loader',
		"BEGIN; SELECT job_id FROM csvpipe.load('$file', 'sales', mode => 'transaction', $load_opts); COMMIT;");
	like($err, qr/terminating connection due to administrator command/, "transaction mode: the COMMIT fails on r$k");
	my $job = last_job();
	push @txn_jobs, $job;
	is($s->sql("SELECT state FROM csvpipe.jobs WHERE job_id = $job"), 'rolled back', "transaction mode, r$k: the job is rolled back");
	in_doubt_checks($job, $k, "transaction mode, COMMIT failed on r$k");

	# a queued job's runner: the same
	$s->shard_sql($k, "SELECT setval('kill_gate', 1, false)");
	my $qjob = $s->sql_as('loader', "SELECT csvpipe.submit('$file', 'sales', mode => 'transaction', force => true, $load_opts)");
	ok($qjob, "r$k: a queued transaction-mode job, forced");
	push @txn_jobs, $qjob;
	$c->poll_query_until('postgres', "SELECT csvpipe.wait($qjob, '60 s') NOT IN ('running', 'queued')")
	  or die "job $qjob did not end";
	like($s->sql("SELECT state || ': ' || error FROM csvpipe.jobs WHERE job_id = $qjob"),
		qr/^failed: .*terminating connection due to administrator command/, "queued: its runner's COMMIT failed on r$k");
	in_doubt_checks($qjob, $k, "queued, COMMIT failed on r$k");
	$s->shard_sql($k, 'ALTER TABLE sales DISABLE TRIGGER kill_rows');
}
ok($sure >= 2, "in $sure of 4 runs the other shard had committed every row of its own (the order that doubles them)");

# purged, the file stays loaded
my $jobs = join(', ', @txn_jobs);
$s->sql("SELECT csvpipe.purge('0 s')");
is($s->sql("SELECT count(*) FROM csvpipe.job WHERE job_id IN ($jobs)"), '0', 'purge removed the jobs');
is($s->sql("SELECT count(*) FROM csvpipe.loaded_file WHERE job_id IN ($jobs)"), '1',
	'purge kept the file as loaded');
($ret, $out, $err) = psql_as('loader', "SELECT * FROM csvpipe.submit('$file', 'sales', mode => 'transaction')");
is($ret, 0, 'after purge: submit runs') or diag($err);
is($out, '', 'after purge: submit does not queue the file again');
is($s->sql("SELECT count(*) FROM csvpipe.job WHERE state IN ('queued', 'running')"), '0', 'after purge: no job queued');
$s->shard_sql($_, 'DROP TRIGGER kill_rows ON sales') for 1, 2;

done_testing();
