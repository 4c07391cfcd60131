# 125_review14b.pl -- review of issue 14's sharded loads (a coordinator and
# two postgres_fdw shard clusters, test/perl/CsvpipeShards.pm).
#
#  1. A transaction-mode load that inserts in the session (workers => 0;
#     no free worker slot takes the same path) records its job in the
#     caller's transaction.  When the COMMIT then fails on one shard after
#     the other committed, the rows stay on the shard that committed and
#     the job vanishes with the rollback: nothing is "in doubt", so
#     csvpipe.submit queued the file again and doubled those rows
#     (doc/sharded.md promises it does not).  Such a load into a target
#     with foreign tables is refused now (53400), before anything is read.
#  2. The same through the queue: a queued transaction-mode job whose file
#     fits in one chunk was loaded by its runner in the session
#     (launcher.c's shortcut), so its job had no load_xid: after a COMMIT
#     that failed on one shard it was a plain 'failed' job, and
#     csvpipe.resume loaded it again, doubling the rows on the shard that
#     committed.  Now such a job is loaded with a worker, and is in doubt:
#     resume refuses it, submit does not queue the file again.
#  3. Skip mode: a chunk whose retry fails before any row (reading a
#     shard's ledger) named the line where the earlier attempt had stopped,
#     a line that has nothing to do with the error.
#  4. csvpipe.submit(path, 'pg_temp.t', create_target => true) created a
#     temporary table and queued a job into it, which its runner (another
#     session) could never load ("could not open relation with OID ...");
#     a chunked or prepared load into a temporary table failed in its
#     workers ("cannot access temporary tables of other sessions").  Both
#     are refused up front now.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use CsvpipeShards;

my $gen = $ENV{CSVPIPE_GEN_CSV} // 'test/gen/gen_csv';
my $dir = PostgreSQL::Test::Utils::tempdir;

my $s = CsvpipeShards->new(name => 's125');
my $c = $s->coord;
$s->create_sharded('sales');

# small: one chunk (the runner's shortcut in section 2)
my $nrows = 3000;
system("$gen narrow $nrows 17 > $dir/sales.csv") == 0 or die;
my $expect = $s->copy_expected('sales', "$dir/sales.csv");

sub psql_as
{
	my ($role, $sql) = @_;
	my ($ret, $out, $err) = $c->psql('postgres', ($role ? "SET ROLE $role; " : '') . $sql);
	return ($ret, $out, $err);
}

sub last_job { return $s->sql("SELECT max(job_id) FROM csvpipe.job"); }

# a file of its own for each run (submit knows a file by its identity)
my $nfile = 0;
sub new_file
{
	my $f = "$dir/sales_" . ++$nfile . ".csv";
	system('cp', "$dir/sales.csv", $f) == 0 or die;
	return $f;
}

# On each shard: a row of its own whose COMMIT there ends the backend, once
# (a sequence, which no rollback undoes, counts the firings).
for my $i (1, 2)
{
	my $id = $s->sql("SELECT min(i) FROM generate_series(1, $nrows) i
		WHERE satisfies_hash_partition('sales'::regclass, 4, 1 + $i, i::bigint)");
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
CREATE CONSTRAINT TRIGGER kill_rows AFTER INSERT ON sales
  DEFERRABLE INITIALLY DEFERRED FOR EACH ROW WHEN (NEW.id = $id)
  EXECUTE FUNCTION kill_at_commit();
ALTER TABLE sales DISABLE TRIGGER kill_rows;
});
}

sub arm
{
	my ($k) = @_;
	$s->shard_sql($k, "SELECT setval('kill_gate', 1, false); ALTER TABLE sales ENABLE TRIGGER kill_rows");
}

sub disarm
{
	my ($k) = @_;
	$s->shard_sql($k, 'ALTER TABLE sales DISABLE TRIGGER kill_rows');
}

# the queue: submit's job, waited for
sub submit_and_wait
{
	my ($file, $opts) = @_;
	my $job = $s->sql_as('loader', "SELECT csvpipe.submit('$file', 'sales'$opts)");
	return undef unless $job;
	$c->poll_query_until('postgres', "SELECT csvpipe.wait($job, '60 s') NOT IN ('running', 'queued')")
	  or die "job $job did not end";
	return $job;
}

my ($ret, $out, $err);

# ---- 1. in the session: refused ----------------------------------------------------

for my $k (2, 1)
{
	my $other = 3 - $k;
	my $label = "workers => 0, COMMIT failing on r$k";
	my $file = new_file();
	arm($k);
	($ret, $out, $err) = psql_as('loader',
		"BEGIN; SELECT job_id FROM csvpipe.load('$file', 'sales', workers => 0); COMMIT;");
	disarm($k);
	like($err,
		qr/ERROR:  csvpipe.load with mode => 'transaction' into "sales" needs a background worker, and has none\nDETAIL:  "sales_r1" is a foreign table on server "r1"/,
		"$label: refused");
	is($s->counts('sales')->{total}, 0, "$label: nothing loaded anywhere");

	# what the refusal prevents: the file queued again after that COMMIT
	my $job = submit_and_wait($file, '');
	ok($job, "$label: the file can be submitted") or next;
	is($s->sql("SELECT state FROM csvpipe.jobs WHERE job_id = $job"), 'done', "$label: the queued job is done");
	is($s->duplicates('sales')->{"r$other"}, 0, "$label: no duplicate on r$other");
	$s->is_like('sales', $expect, "$label, then queued");
	$s->truncate_table('sales');
}

# the same when csvpipe.max_workers allows none (53400); a local table
# still loads in the session
($ret, $out, $err) = $c->psql('postgres', "\\set VERBOSITY verbose\nSET csvpipe.max_workers = 0; SET ROLE loader;\n"
	  . "SELECT csvpipe.load('" . new_file() . "', 'sales');");
like($err, qr/ERROR:  53400: csvpipe.load with mode => 'transaction' into "sales" needs a background worker, and has none/,
	'csvpipe.max_workers = 0: refused, 53400');
is($s->counts('sales')->{total}, 0, 'csvpipe.max_workers = 0: nothing loaded');
$s->sql('CREATE TABLE plain (LIKE sales); GRANT INSERT ON plain TO loader');
is($s->sql("SET csvpipe.max_workers = 0; SET ROLE loader; SELECT rows_loaded FROM csvpipe.load('$dir/sales.csv', 'plain')"),
	$nrows, 'csvpipe.max_workers = 0: a local table loads in the session');

# ---- 2. the queue: a file of one chunk ---------------------------------------------

my $sure = 0;
for my $k (2, 1)
{
	my $other = 3 - $k;
	my $label = "queued, one chunk, COMMIT failing on r$k";
	my $file = new_file();
	arm($k);
	my $job = submit_and_wait($file, '');
	disarm($k);
	like($s->sql("SELECT state || ': ' || error FROM csvpipe.jobs WHERE job_id = $job"),
		qr/^failed: .*terminating connection due to administrator command/, "$label: the runner's COMMIT failed");
	my $n = $s->counts('sales');
	is($n->{"r$k"} + $n->{local}, 0, "$label: nothing committed here or on r$k");
	$sure++ if $n->{"r$other"} == (split / /, $expect->{"r$other"})[0];

	($ret, $out, $err) = psql_as('loader', "SELECT csvpipe.resume($job)");
	like($err, qr/ERROR:  csvpipe job $job cannot be resumed: its transaction ended after the load without committing/,
		"$label: resume refuses it");
	$c->poll_query_until('postgres', "SELECT csvpipe.wait($job, '60 s') NOT IN ('running', 'queued')")
	  or die "job $job did not end";
	($ret, $out, $err) = psql_as('loader', "SELECT * FROM csvpipe.submit('$file', 'sales')");
	is($out, '', "$label: submit does not queue the file again");
	$c->poll_query_until('postgres', "SELECT count(*) = 0 FROM csvpipe.job WHERE state IN ('queued', 'running')")
	  or die;
	is_deeply($s->counts('sales'), $n, "$label: nothing loaded again");
	is($s->duplicates('sales')->{"r$other"}, 0, "$label: no duplicate on r$other");
	$s->truncate_table('sales');
}
ok($sure >= 1, "in $sure of 2 runs the other shard had committed its rows (the order that doubles them)");

# ---- 3. skip mode: a retry that fails before its rows names no line -----------------

{
	my $big = 40000;
	system("$gen narrow $big 5 > $dir/big.csv") == 0 or die;
	# a row of r2 in the middle of the file: its batch ends r2's backend, once
	my $id = $s->sql("SELECT min(i) FROM generate_series($big / 2, $big) i
		WHERE satisfies_hash_partition('sales'::regclass, 4, 3, i::bigint)");
	$s->shard_sql(2, qq{
SELECT setval('kill_gate', 1, false);
CREATE TRIGGER kill_now AFTER INSERT ON sales FOR EACH ROW WHEN (NEW.id = $id)
  EXECUTE FUNCTION kill_at_commit();
REVOKE SELECT ON csvpipe_ledger FROM shard_loader;
});
	# the retry reads r2's ledger first, and may not
	($ret, $out, $err) = psql_as('loader',
		"SELECT * FROM csvpipe.load('$dir/big.csv', 'sales', mode => 'chunked', workers => 1, "
		  . "chunk_size => 300000, on_error => 'skip')");
	$s->shard_sql(2, 'DROP TRIGGER kill_now ON sales; GRANT SELECT ON csvpipe_ledger TO shard_loader');
	like($err, qr/retrying \(attempt 2 of \d+\)/, 'skip mode: the chunk is retried after r2 went away');
	like($err, qr/ERROR:  permission denied for table csvpipe_ledger/, 'the retry fails reading r2\'s ledger');
	my ($ctx) = $err =~ /ERROR:  permission denied for table csvpipe_ledger\n(.*)/s;
	like($ctx, qr/csvpipe ledger public.csvpipe_ledger_r2 of foreign server "r2"/, 'its context names the ledger');
	unlike($ctx, qr/csvpipe.load "[^"]*", line \d+/, '... and no line of the file');
}

# ---- 4. temporary tables: not for other sessions ----------------------------------

($ret, $out, $err) = psql_as('loader',
	"SELECT csvpipe.submit('" . new_file() . "', 'pg_temp.t_new', create_target => true)");
like($err, qr/ERROR:  csvpipe.submit cannot queue a load into temporary table "t_new"/,
	'submit, create_target into pg_temp: refused');
is($out, '', '... no job');
($ret, $out, $err) = psql_as('loader',
	"CREATE TEMP TABLE t_tmp (LIKE sales); SELECT csvpipe.submit('" . new_file() . "', 't_tmp')");
like($err, qr/ERROR:  csvpipe.submit cannot queue a load into temporary table "t_tmp"/,
	'submit into a temporary table: refused');
is($s->sql("SELECT count(*) FROM csvpipe.job WHERE state = 'queued'"), '0', 'no job queued');
for my $mode ('chunked', 'prepared')
{
	($ret, $out, $err) = psql_as('loader',
		"CREATE TEMP TABLE t_tmp (LIKE sales); SELECT * FROM csvpipe.load('$dir/sales.csv', 't_tmp', mode => '$mode', workers => 1)");
	like($err, qr/ERROR:  table "t_tmp" is a temporary table of this session/,
		"$mode load into a temporary table: refused before its workers fail");
}
is($s->sql_as('loader', "CREATE TEMP TABLE t_tmp (LIKE sales); SELECT rows_loaded FROM csvpipe.load('$dir/sales.csv', 't_tmp', workers => 2)"),
	$nrows, 'transaction mode loads a temporary table');

done_testing();
