# 122_sharded_review.pl -- an adversarial review of sharded targets (issue 14):
# what other roles, and faults, can do to a chunked load into a table with
# postgres_fdw partitions (test/perl/CsvpipeShards.pm: a coordinator and two
# shard clusters).
#
#  - the shard ledgers cannot be forged: a role that may write a ledger (every
#    loading role may: doc/sharded.md) and reads a victim's job id
#    and submission time in csvpipe.jobs cannot make csvpipe believe a shard
#    has a chunk it has not (rows silently missing there), nor squat the row
#    csvpipe is about to write.
#  - two foreign servers that lead to the same shard database (so to one
#    ledger table): a chunked load finishes, as COPY (it hung before: both
#    servers wrote the same ledger row, in two remote transactions).
#  - a queued chunked job whose file is one chunk or less, a COMMIT failing
#    on one shard after the other committed (either shard): no duplicate
#    (the runner loaded such a file itself, in one transaction across the
#    servers with no ledger rows, and resume sent the committed shard's
#    rows again); csvpipe.load with workers => 0 refuses a chunked load
#    into foreign tables rather than load it in the caller's transaction
#    (into local tables too, since 087).
#  - a ledger foreign table that a role other than a superuser or the
#    server's owner made (as the hint says to) is refused as such, naming
#    the table and its fix (it was "needs a ledger table", the hint the DDL
#    just run).
#  - a non-superuser database owner (owner of schema public) who drops the
#    superuser's ledger foreign table during a load and puts a table of its
#    own under that name does not receive the ledger rows: the next chunk
#    fails (they went to that table, not to the shard with the rows).
#  - skip mode: a trigger error that a "best effort" trigger caught does not
#    make the batch's next error (a table gone: 42P01, not the row's) a
#    rejected row; every row was rejected and the load "succeeded".
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use CsvpipeShards;

my $gen = $ENV{CSVPIPE_GEN_CSV} // 'test/gen/gen_csv';
my $dir = PostgreSQL::Test::Utils::tempdir;

my $s = CsvpipeShards->new(name => 's122');
my $c = $s->coord;
$s->create_sharded('sales');

my $nrows = 20000;
system("$gen narrow $nrows 11 > $dir/sales.csv") == 0 or die;
my $file = "$dir/sales.csv";
my $expect = $s->copy_expected('sales', $file);
my $load_opts = "workers => 2, chunk_size => 150000";

sub psql_as
{
	my ($role, $sql) = @_;
	my ($ret, $out, $err) = $c->psql('postgres', ($role ? "SET ROLE $role; " : '') . $sql);
	return ($ret, $out, $err);
}

# ---- forged ledger rows --------------------------------------------------------

# A load that fails part way (a local partition refuses rows of the second
# half of the file until told otherwise), so the job is 'failed' with some
# chunks committed on every server, and waits for csvpipe.resume.
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
my ($ret, $out, $err) = psql_as('loader',
	"SELECT csvpipe.load('$file', 'sales', mode => 'chunked', $load_opts)");
like($err, qr/gate closed/, 'victim: the first run fails');
my $job = $s->sql("SELECT max(job_id) FROM csvpipe.job");
is($s->sql("SELECT state FROM csvpipe.jobs WHERE job_id = $job"), 'failed', 'victim: job failed');

my $dboid = $s->sql("SELECT oid FROM pg_database WHERE datname = 'postgres'");
cmp_ok($s->ledger_rows(1, "job LIKE '%/$dboid/$job/%'"), '>', 0, 'victim: some chunks committed on r1');

# writer: no file privilege, INSERT on the ledgers as every loading role.
# Everything in the job's name on the shards is public: the system
# identifier, the database oid, the job id and its submission time.
$s->sql_as('writer', qq{
INSERT INTO csvpipe_ledger_r1 (job, chunk_no, rows)
SELECT (pg_control_system()).system_identifier || '/' || d.oid || '/' || j.job_id || '/'
       || (extract(epoch FROM j.submitted_at) * 1000000)::bigint, n, 0
  FROM csvpipe.jobs j, pg_database d, generate_series(0, 999) n
 WHERE j.job_id = $job AND d.datname = current_database();
});
# and every ledger row of the job the shard shows, copied for every chunk
$s->sql_as('writer', qq{
INSERT INTO csvpipe_ledger_r1 (job, chunk_no, rows)
SELECT DISTINCT l.job, n, 0
  FROM csvpipe_ledger_r1 l, generate_series(0, 999) n
 WHERE l.job LIKE '%/' || (SELECT oid FROM pg_database WHERE datname = current_database())
                   || '/$job/%/%'
ON CONFLICT DO NOTHING;
});
cmp_ok($s->ledger_rows(1), '>', 1000, 'writer forged ledger rows on r1');
$s->sql('UPDATE gate SET closed = false');
$s->sql_as('loader', "SELECT csvpipe.resume($job)");
is($s->sql("SELECT state || ' ' || rows_loaded FROM csvpipe.jobs WHERE job_id = $job"), "done $nrows",
	'victim: resume finishes the job');
my $got = $s->counts('sales');
is($got->{total}, $nrows, 'forged ledger rows: every row is loaded');
$s->is_like('sales', $expect, 'forged ledger rows');
$s->truncate_table('sales');
$s->sql('DROP TRIGGER gate ON sales_p0');

# ---- two servers, one shard database -------------------------------------------

# r1b leads where r1 does; "two" has a partition over each
my $sh = $s->shard(1);
my $host = $sh->host;
my $port = $sh->port;
$s->shard_sql(1, q{
CREATE TABLE two_a (id bigint, ts timestamptz, name text, amount numeric(12,2), flag boolean);
CREATE TABLE two_b (LIKE two_a);
GRANT INSERT, SELECT, TRUNCATE ON two_a, two_b TO shard_loader;
});
$s->sql(qq{
CREATE SERVER r1b FOREIGN DATA WRAPPER postgres_fdw
  OPTIONS (host '$host', port '$port', dbname 'postgres');
CREATE USER MAPPING FOR loader SERVER r1b
  OPTIONS (user 'shard_loader', password_required 'false');
CREATE FOREIGN TABLE csvpipe_ledger_r1b (job text, chunk_no bigint, rows bigint)
  SERVER r1b OPTIONS (schema_name 'public', table_name 'csvpipe_ledger');
GRANT SELECT, INSERT ON csvpipe_ledger_r1b TO loader;
CREATE TABLE two (id bigint, ts timestamptz, name text, amount numeric(12,2), flag boolean)
  PARTITION BY HASH (id);
CREATE TABLE two_p0 PARTITION OF two FOR VALUES WITH (MODULUS 3, REMAINDER 0);
CREATE FOREIGN TABLE two_a PARTITION OF two FOR VALUES WITH (MODULUS 3, REMAINDER 1)
  SERVER r1 OPTIONS (table_name 'two_a', batch_size '1000');
CREATE FOREIGN TABLE two_b PARTITION OF two FOR VALUES WITH (MODULUS 3, REMAINDER 2)
  SERVER r1b OPTIONS (table_name 'two_b', batch_size '1000');
GRANT INSERT, SELECT ON two TO loader;
CREATE TABLE two_copy (LIKE two);
COPY two_copy FROM '$file' (FORMAT csv, HEADER);
});
my %two_expect;
for my $p (qw(two_p0 two_a two_b))
{
	$two_expect{$p} = $s->sql("SELECT count(*) || ' ' || md5(string_agg(t::text, ',' ORDER BY t::text))
		FROM two_copy t WHERE satisfies_hash_partition('two'::regclass, 3,
		  CASE '$p' WHEN 'two_p0' THEN 0 WHEN 'two_a' THEN 1 ELSE 2 END, id)");
}
# a hang fails by statement_timeout, not by the test's own timeout
($ret, $out, $err) = psql_as('loader',
	"SET statement_timeout = '60s'; SELECT rows_loaded FROM csvpipe.load('$file', 'two', mode => 'chunked', $load_opts)");
is($ret, 0, 'two servers, one database: the chunked load succeeds') or diag($err);
is($out, $nrows, 'two servers, one database: every row counted');
for my $p (qw(two_p0 two_a two_b))
{
	my $got = $p eq 'two_p0' ? $s->sql("SELECT count(*) || ' ' || md5(string_agg(t::text, ',' ORDER BY t::text)) FROM two_p0 t")
	  : $s->shard_sql(1, "SELECT count(*) || ' ' || md5(string_agg(t::text, ',' ORDER BY t::text)) FROM $p t");
	is($got, $two_expect{$p}, "two servers, one database: $p as COPY");
}
my $two_job = $s->sql("SELECT max(job_id) FROM csvpipe.job");
my $two_chunks = $s->sql("SELECT count(*) FROM csvpipe.chunks WHERE job_id = $two_job");
is($s->ledger_rows(1, "job LIKE '%/$dboid/$two_job/%'"), 2 * $two_chunks,
	'two servers, one database: a ledger row per chunk and server');

# ---- a queued file of one chunk, a COMMIT that fails on one shard ---------------

for my $i (1, 2)
{
	$s->shard_sql($i, q{
CREATE SEQUENCE kill_gate;
CREATE FUNCTION kill_at_commit() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER
  SET search_path = public, pg_catalog AS $$
BEGIN
  IF nextval('kill_gate') = 1 THEN
    PERFORM pg_terminate_backend(pg_backend_pid());
  END IF;
  RETURN NULL;
END $$;
});
}
cmp_ok(-s $file, '<', 2048 * 1024, 'the file is one chunk (csvpipe.chunk_size)');
for my $i (1, 2)
{
	my $label = "queued, one chunk, COMMIT fails on r$i";
	$s->shard_sql($i, q{
SELECT setval('kill_gate', 1, false);
CREATE CONSTRAINT TRIGGER kill_at_commit AFTER INSERT ON sales
  DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION kill_at_commit();
});
	my $qjob = $s->sql_as('loader', "SET csvpipe.retry_delay = '100ms';
		SELECT csvpipe.submit('$file', 'sales', mode => 'chunked', force => true)");
	$c->poll_query_until('postgres', "SELECT csvpipe.wait($qjob, '60 s') NOT IN ('running', 'queued')")
	  or die "job $qjob did not end";
	if ($s->sql("SELECT state FROM csvpipe.jobs WHERE job_id = $qjob") ne 'done')
	{
		$s->sql_as('loader', "SELECT csvpipe.resume($qjob)");
		$c->poll_query_until('postgres', "SELECT csvpipe.wait($qjob, '60 s') NOT IN ('running', 'queued')")
		  or die "job $qjob did not end";
	}
	# a firing per row: the first ended the failed COMMIT, then one per row
	is($s->shard_sql($i, 'SELECT last_value FROM kill_gate'), 1 + (split / /, $expect->{"r$i"})[0],
		"$label: the trigger ended one COMMIT");
	is($s->sql("SELECT state || ' ' || rows_loaded FROM csvpipe.jobs WHERE job_id = $qjob"), "done $nrows",
		"$label: done with every row");
	is($s->duplicates('sales')->{'r' . (3 - $i)}, 0, "$label: no duplicate on r" . (3 - $i));
	$s->is_like('sales', $expect, $label);
	$s->shard_sql($i, 'DROP TRIGGER kill_at_commit ON sales');
	$s->truncate_table('sales');
}

# csvpipe.load in the caller's transaction, chunked: refused
($ret, $out, $err) = psql_as('loader',
	"SELECT csvpipe.load('$file', 'sales', mode => 'chunked', workers => 0)");
like($err, qr/ERROR:  csvpipe.load with mode => 'chunked' into "sales" needs a background worker, and has none/,
	'chunked, workers => 0, foreign partitions: refused');
like($err, qr/DETAIL:  "sales_r1" is a foreign table on server "r1"/, 'naming a foreign partition');
is($s->counts('sales')->{total}, 0, 'chunked, workers => 0: nothing loaded');
# a local target is refused too, since 087 (it loaded in the caller's
# transaction, with a job id csvpipe.jobs never showed)
$s->sql('CREATE TABLE plain (LIKE sales); GRANT INSERT ON plain TO loader');
($ret, $out, $err) = psql_as('loader',
	"SELECT csvpipe.load('$file', 'plain', mode => 'chunked', workers => 0)");
like($err, qr/ERROR:  csvpipe.load with mode => 'chunked' needs at least one background worker/,
	'chunked, workers => 0, a local table: refused as well');
is($s->sql('SELECT count(*) FROM plain'), '0', '... nothing loaded');

# ---- the database owner swaps the ledger during a load -----------------------------

$s->sql(q{
CREATE ROLE dbo LOGIN;
ALTER DATABASE postgres OWNER TO dbo;
CREATE FUNCTION hold() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN PERFORM pg_advisory_lock_shared(4242); PERFORM pg_advisory_unlock_shared(4242); RETURN NULL; END $$;
CREATE TRIGGER hold BEFORE INSERT ON sales FOR EACH STATEMENT EXECUTE FUNCTION hold();
});
my $holder = $c->background_psql('postgres', on_error_stop => 0);
$holder->query_safe('SELECT pg_advisory_lock(4242)');
my $victim = $c->background_psql('postgres', on_error_stop => 0);
$victim->query_until(qr/started/, qq{SET ROLE loader;
\\echo started
SELECT csvpipe.load('$file', 'sales', mode => 'chunked', workers => 1, chunk_size => 150000);
});
# the worker waits in its first chunk, after reading the ledgers
$c->poll_query_until('postgres', "SELECT count(*) > 0 FROM pg_locks WHERE locktype = 'advisory' AND NOT granted")
  or die 'the load did not start';
my $swap = $c->background_psql('postgres', on_error_stop => 0);
$swap->query_until(qr/swapping/, q{SET ROLE dbo;
\\echo swapping
BEGIN;
DROP FOREIGN TABLE public.csvpipe_ledger_r1;
CREATE TABLE public.csvpipe_ledger_r1 (job text, chunk_no bigint, rows bigint);
GRANT SELECT, INSERT ON public.csvpipe_ledger_r1 TO loader;
COMMIT;
});
$c->poll_query_until('postgres', "SELECT count(*) > 0 FROM pg_locks WHERE relation = 'public.csvpipe_ledger_r1'::regclass AND NOT granted")
  or die 'the swap does not wait for the load';
$holder->query_safe('SELECT pg_advisory_unlock(4242)');
$holder->quit;
$swap->quit;
$victim->query('SELECT 1');
my $verr = $victim->{stderr};
$victim->quit;
my $sjob = $s->sql("SELECT max(job_id) FROM csvpipe.job");
my $done = $s->sql("SELECT count(*) FROM csvpipe.chunks WHERE job_id = $sjob");
cmp_ok($done, '>=', 1, 'ledger swapped: the first chunk committed');
is($s->ledger_rows(1, "job LIKE '%/$dboid/$sjob/%'"), $done,
	"ledger swapped: shard r1's ledger has every committed chunk ($done)");
is($s->sql('SELECT count(*) FROM public.csvpipe_ledger_r1'), '0', 'ledger swapped: no ledger row in the owner\'s table');
like($verr, qr/ERROR:  a relation csvpipe checked before the load was dropped or replaced during it\n.*\nHINT:  .*\nCONTEXT:  csvpipe ledger public.csvpipe_ledger_r1 of foreign server "r1"/, 'ledger swapped: the load fails')
  or diag($verr);
$s->sql(q{
DROP TRIGGER hold ON sales;
ALTER DATABASE postgres OWNER TO CURRENT_USER;
DROP TABLE public.csvpipe_ledger_r1;
});
$s->sql(qq{CREATE FOREIGN TABLE csvpipe_ledger_r1 (job text, chunk_no bigint, rows bigint)
  SERVER r1 OPTIONS (schema_name 'public', table_name 'csvpipe_ledger');
GRANT SELECT, INSERT ON csvpipe_ledger_r1 TO loader, writer;});
$s->truncate_table('sales');

# ---- a ledger foreign table made by another role ----------------------------------

$s->sql(q{
CREATE ROLE app LOGIN;
GRANT USAGE ON FOREIGN SERVER r2 TO app;
GRANT CREATE ON SCHEMA public TO app;
DROP FOREIGN TABLE csvpipe_ledger_r2;
SET ROLE app;
CREATE FOREIGN TABLE csvpipe_ledger_r2 (job text, chunk_no bigint, rows bigint)
  SERVER r2 OPTIONS (schema_name 'public', table_name 'csvpipe_ledger');
GRANT SELECT, INSERT ON csvpipe_ledger_r2 TO loader;
});
($ret, $out, $err) = psql_as('loader',
	"SELECT csvpipe.load('$file', 'sales', mode => 'chunked', $load_opts)");
like($err, qr/ERROR:  csvpipe.load with mode => 'chunked' cannot use public.csvpipe_ledger_r2 as the ledger of foreign server "r2": its owner is neither a superuser nor the server's owner/,
	'a ledger foreign table of another role: refused as such');
like($err, qr/HINT:  ALTER FOREIGN TABLE public.csvpipe_ledger_r2 OWNER TO /, 'with the fix as a hint');
is($s->counts('sales')->{total}, 0, 'a ledger foreign table of another role: nothing loaded');

# ---- skip mode: a caught trigger error is not the row's ----------------------------

$s->sql(q{
CREATE TABLE lookup (n int);
CREATE FUNCTION lookup_ok(bigint) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN PERFORM 1 FROM public.lookup LIMIT 1; RETURN true; END $$;
CREATE TABLE lt (id bigint, ts timestamptz, name text, amount numeric(12,2), flag boolean,
                 CHECK (lookup_ok(id)));
CREATE TABLE audit (id bigint);
CREATE FUNCTION audit_no() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN RAISE EXCEPTION 'audit is read-only'; END $$;
CREATE TRIGGER audit_no BEFORE INSERT ON audit FOR EACH ROW EXECUTE FUNCTION audit_no();
CREATE FUNCTION best_effort_audit() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  BEGIN INSERT INTO public.audit VALUES (NEW.id); EXCEPTION WHEN others THEN NULL; END;
  IF NEW.id % 1000 = 0 THEN RAISE EXCEPTION 'no multiples of 1000: %', NEW.id; END IF;
  RETURN NEW;
END $$;
CREATE TRIGGER bea BEFORE INSERT ON lt FOR EACH ROW EXECUTE FUNCTION best_effort_audit();
GRANT INSERT, SELECT ON lt, audit TO loader;
GRANT SELECT ON lookup TO loader;
});
my $bad = int($nrows / 1000);
for my $mode (qw(chunked transaction))
{
	# the trigger's own error is the row's
	is($s->sql_as('loader', "SELECT rows_loaded || ' ' || rows_rejected FROM csvpipe.load('$file', 'lt', mode => '$mode', on_error => 'skip', $load_opts)"),
		($nrows - $bad) . " $bad", "skip mode, $mode, best-effort audit: the trigger's RAISE is a rejected row");
	$s->sql('TRUNCATE lt');
}
$s->sql('DROP TABLE lookup');
for my $mode (qw(chunked transaction))
{
	($ret, $out, $err) = psql_as('loader',
		"SELECT rows_loaded || ' ' || rows_rejected FROM csvpipe.load('$file', 'lt', mode => '$mode', on_error => 'skip', $load_opts)");
	like($err, qr/ERROR:  relation "public.lookup" does not exist/,
		"skip mode, $mode, best-effort audit: a 42P01 fails the load") or diag("got: $out");
	my $j = $s->sql("SELECT max(job_id) FROM csvpipe.job");
	is($s->sql("SELECT count(*) FROM csvpipe.errors WHERE job_id = $j AND sqlstate = '42P01'"), '0',
		"skip mode, $mode, best-effort audit: no row rejected with 42P01");
	$s->sql('TRUNCATE lt');
}

done_testing();
