# 138_fdw_reuse.pl -- a chunked load's worker keeps postgres_fdw's batch
# INSERTs prepared from one chunk to the next (src/insert/fdw_reuse.c), and
# never uses one that may be gone or out of date.
#
#  - prepared once: a load of ~30 chunks into two shards makes each shard
#    parse a handful of batch INSERTs (the full batch and the powers of two
#    of the chunks' last rows), not two per chunk; every server as COPY;
#  - the foreign server's options changed between two chunks (its dbname
#    now another database): every chunk from then on goes to the new
#    database, none before it, no row lost or doubled;
#  - the worker's session on a shard killed between two chunks:
#    postgres_fdw reconnects silently at the next chunk, and the kept
#    statements of the old session are not used on the new one: the load
#    ends done, as COPY.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use CsvpipeShards;

my $gen = $ENV{CSVPIPE_GEN_CSV} // 'test/gen/gen_csv';
my $dir = PostgreSQL::Test::Utils::tempdir;

my $s = CsvpipeShards->new(name => 's138');
my $c = $s->coord;
$s->create_sharded('sales');

my $nrows = 40000;
system("$gen narrow $nrows 38 > $dir/sales.csv") == 0 or die;
my $file = "$dir/sales.csv";
my $expect = $s->copy_expected('sales', $file);
my $opts = "mode => 'chunked', workers => 1, chunk_size => 65536";

# the first id from $from on that goes to r1 (hash remainder 2 of 4)
sub r1_row_from
{
	my ($from) = @_;
	my $id = $s->sql("SELECT min(id) FROM generate_series(${from}::bigint, $from + 200) id
		WHERE satisfies_hash_partition('sales'::regclass, 4, 2, id)");
	ok($id, "row $id goes to r1");
	return $id;
}

sub load_done
{
	my ($label) = @_;
	my $job = $s->sql("SELECT max(job_id) FROM csvpipe.job");
	is($s->sql("SELECT state || ' ' || rows_loaded FROM csvpipe.jobs WHERE job_id = $job"),
		"done $nrows", "$label: done, every row counted once");
	return $job;
}

# A load held inside a chunk: r1's row $victim waits (a row trigger there)
# for an advisory lock this holds; $action runs meanwhile (given the
# waiting remote backend's pid), then the lock goes.  Returns the load's
# stderr once it ended.
$s->shard_sql(1, q{
CREATE FUNCTION hold_row() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN PERFORM pg_advisory_lock_shared(4138); PERFORM pg_advisory_unlock_shared(4138); RETURN NEW; END $$;
});

sub held_load
{
	my ($label, $victim, $action) = @_;
	$s->shard_sql(1, "CREATE TRIGGER hold_row BEFORE INSERT ON sales FOR EACH ROW
		WHEN (NEW.id = $victim) EXECUTE FUNCTION hold_row()");
	my $hold = $s->shard(1)->background_psql('postgres', on_error_stop => 0);
	$hold->query_safe('SELECT pg_advisory_lock(4138)');
	my $load = $c->background_psql('postgres', on_error_stop => 0);
	$load->query_until(qr/started/, qq{SET ROLE loader;
\\echo started
SELECT job_id FROM csvpipe.load('$file', 'sales', $opts);
});
	$s->shard(1)->poll_query_until('postgres',
		"SELECT count(*) > 0 FROM pg_locks WHERE locktype = 'advisory' AND NOT granted")
	  or die "$label: the load does not wait";
	my $pid = $s->shard_sql(1, "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND NOT granted");
	$action->($pid, sub { $hold->query_safe('SELECT pg_advisory_unlock(4138)'); });
	eval { $hold->query_safe('SELECT pg_advisory_unlock(4138)'); };
	eval { $hold->quit; };
	$load->query('SELECT 1');
	my $lerr = $load->{stderr};
	$load->quit;
	$s->shard(1)->poll_query_until('postgres', 'SELECT true') or die "$label: r1 is down";
	$s->shard_sql(1, 'DROP TRIGGER hold_row ON sales');
	return $lerr;
}

# ---- prepared once per worker, not per chunk ----
{
	my $label = 'prepared once';
	my @off;
	for my $i (1, 2)
	{
		$s->shard_sql($i, "ALTER SYSTEM SET log_min_duration_statement = 0; SELECT pg_reload_conf();");
		$off[$i] = -s $s->shard($i)->logfile;
	}
	$s->sql_as('loader', "SELECT * FROM csvpipe.load('$file', 'sales', $opts)");
	my $job = load_done($label);
	$s->is_like('sales', $expect, $label);
	my $chunks = $s->sql("SELECT count(*) FROM csvpipe.chunks WHERE job_id = $job");
	cmp_ok($chunks, '>=', 20, "$label: the load had $chunks chunks");
	for my $i (1, 2)
	{
		$s->shard_sql($i, "ALTER SYSTEM RESET log_min_duration_statement; SELECT pg_reload_conf();");
		my $log = slurp_file($s->shard($i)->logfile, $off[$i]);
		my $parses = () = $log =~ /parse pgsql_fdw_prep_\d+: INSERT INTO public\.sales\(/g;
		my $execs = () = $log =~ /execute pgsql_fdw_prep_\d+: INSERT INTO public\.sales\(/g;
		cmp_ok($parses, '<=', 11, "$label: r$i parsed $parses batch INSERTs for $chunks chunks");
		cmp_ok($execs, '>=', $chunks, "$label: r$i executed $execs batches");
	}
	$s->truncate_table('sales');
}

# ---- the foreign server's options changed between two chunks ----
#
# r1's server is pointed at another database of the same cluster (its own
# sales table and ledger) while a chunk is held (a row trigger on r1 waits
# for an advisory lock).  postgres_fdw closes the connection at the end of
# that chunk's transaction and connects to the new database for the next
# one; a statement kept from the old session must not be used (in fact it
# could not be: another session).  So every row of r1 up to that chunk is
# in the old database, every row after it in the new one.  (A foreign
# table's own options cannot change during a load: ALTER FOREIGN TABLE
# waits for the load's statement, which holds the partitions it checked.)
{
	my $label = 'server options changed between chunks';
	$s->shard_sql(1, 'CREATE DATABASE other');
	$s->shard(1)->safe_psql('other', "CREATE TABLE sales ($CsvpipeShards::NARROW); "
		  . CsvpipeShards::SHARD_LEDGER_DDL . qq{;
GRANT SELECT, INSERT, TRUNCATE ON sales TO shard_loader;
GRANT SELECT, INSERT ON csvpipe_ledger TO shard_loader;
});
	my $lerr = held_load($label, r1_row_from(20000),
		sub { $s->sql("ALTER SERVER r1 OPTIONS (SET dbname 'other')"); });
	unlike($lerr, qr/ERROR/, "$label: no error") or diag($lerr);
	load_done($label);
	my ($old_n, $old_max) = split /\|/, $s->shard_sql(1, 'SELECT count(*), max(id) FROM sales');
	my ($new_n, $new_min) = split /\|/, $s->shard(1)->safe_psql('other', 'SELECT count(*), min(id) FROM sales');
	cmp_ok($old_n, '>', 0, "$label: the chunks up to the change are in the old database ($old_n rows)");
	cmp_ok($new_n, '>', 0, "$label: the chunks after it are in the new one ($new_n rows)");
	cmp_ok($old_max, '<', $new_min, "$label: none of a later chunk in the old database, none of an earlier one in the new");
	my ($r1_n) = split / /, $expect->{r1};
	is($old_n + $new_n, $r1_n, "$label: r1's rows, all of them, once");
	$s->sql("ALTER SERVER r1 OPTIONS (SET dbname 'postgres')");
	$s->truncate_table('sales');
}

# ---- the worker's remote session replaced between two chunks ----
#
# The next chunk is held before it touches r1 (a lock on r1's ledger
# foreign table, which every chunk takes first: an ALTER FOREIGN TABLE
# that changes nothing, in an open transaction), and r1's session of the
# worker is killed (SIGKILL: no message, only a closed socket, so r1
# restarts and postgres_fdw reconnects silently when the next chunk starts
# its remote transaction).  The new session has none of the old session's
# statements: the worker must not execute them there.
{
	my $label = 'session replaced between chunks';
	# the test clusters say restart_after_crash = off
	$s->shard_sql(1, 'ALTER SYSTEM SET restart_after_crash = on; SELECT pg_reload_conf();');
	my $lerr = held_load($label, r1_row_from(25000), sub {
		my ($old_pid, $release) = @_;
		my $gate = $c->background_psql('postgres', on_error_stop => 0);
		my $gate_pid = $gate->query_safe('SELECT pg_backend_pid()');
		$gate->query_until(qr/locking/, q{\echo locking
BEGIN;
ALTER FOREIGN TABLE csvpipe_ledger_r1 OPTIONS (SET table_name 'csvpipe_ledger');
\echo locked
});
		$c->poll_query_until('postgres', "SELECT count(*) = 1 FROM pg_locks WHERE pid = $gate_pid
			AND relation = 'csvpipe_ledger_r1'::regclass AND NOT granted")
		  or die "$label: the gate does not wait for the chunk";
		$release->();
		$gate->query_until(qr/locked/, '');
		# the chunk committed; the next one waits for the gate: kill r1's session
		kill 'KILL', $old_pid;
		$s->shard(1)->poll_query_until('postgres', 'SELECT true')
		  or die "$label: r1 did not come back";
		$gate->query_safe('COMMIT');
		$gate->quit;
	});
	unlike($lerr, qr/ERROR/, "$label: no error") or diag($lerr);
	load_done($label);
	$s->is_like('sales', $expect, $label);
	$s->truncate_table('sales');
}

# ---- the remote table altered between two chunks ----
#
# A prepared statement keeps the parameter types the server inferred when
# it was prepared.  r1's flag column becomes text while a chunk is held:
# the ALTER waits for that chunk, the next chunk's INSERT for the ALTER.
# A kept statement would store the boolean 't' cast to text, 'true'; a
# statement prepared anew stores the text sent, 't', as INSERT and COPY do.
# The worker sees the table changed, and loads the chunk again with new
# statements.
{
	my $label = 'remote table altered between chunks';
	my $lerr = held_load($label, r1_row_from(20000), sub {
		my ($pid, $release) = @_;
		my $alter = $s->shard(1)->background_psql('postgres', on_error_stop => 0);
		$alter->query_until(qr/altering/, "\\echo altering\nALTER TABLE sales ALTER flag TYPE text USING CASE WHEN flag THEN 'T' ELSE 'F' END;\n");
		$s->shard(1)->poll_query_until('postgres', "SELECT count(*) > 0 FROM pg_locks
			WHERE relation = 'sales'::regclass AND mode = 'AccessExclusiveLock' AND NOT granted")
		  or die "$label: the ALTER does not wait";
		$release->();
		$alter->query_safe('SELECT 1');
		$alter->quit;
	});
	load_done($label);
	# the rows before the ALTER say 'T' and 'F' (its USING)
	is($s->shard_sql(1, "SELECT count(*) FROM sales WHERE flag NOT IN ('t', 'f', 'T', 'F')"), 0,
		"$label: r1's flags after it are the text sent ('t', 'f'), none cast from a boolean");
	cmp_ok($s->shard_sql(1, "SELECT count(*) FROM sales WHERE flag IN ('t', 'f')"), '>', 0,
		"$label: rows went in after the ALTER");
	my ($r1_n) = split / /, $expect->{r1};
	is($s->shard_sql(1, 'SELECT count(*) FROM sales'), $r1_n, "$label: r1's rows, all of them");
	is($s->duplicates('sales')->{r1}, 0, "$label: none twice");
	$s->shard_sql(1, "TRUNCATE sales; ALTER TABLE sales ALTER flag TYPE boolean USING flag::boolean");
	$s->truncate_table('sales');
}

# ---- invalidations that keep the session: statements deallocated ----
#
# Every GRANT on r1's foreign table invalidates it, and the worker drops its
# statements for it: they must be DEALLOCATEd on the session, not left
# there (a loop of GRANTs would otherwise fill the remote session's memory).
# A user mapping of another role on another server changes nothing here.
{
	my $label = 'invalidation storm';
	$s->shard_sql(1, "ALTER SYSTEM SET log_min_duration_statement = 0; SELECT pg_reload_conf();");
	my $off = -s $s->shard(1)->logfile;
	my $storm = $c->background_psql('postgres', on_error_stop => 0);
	my $storm_pid = $storm->query_safe('SELECT pg_backend_pid()');
	$storm->query_until(qr/storming/, q{\echo storming
DO $$ BEGIN FOR i IN 1..100000 LOOP
  GRANT SELECT ON sales_r1 TO writer;
  ALTER USER MAPPING FOR writer SERVER r2 OPTIONS (SET password_required 'false');
  COMMIT; PERFORM pg_sleep(0.01); END LOOP; END $$;
});
	$s->sql_as('loader', "SELECT * FROM csvpipe.load('$file', 'sales', $opts)");
	$s->sql("SELECT pg_cancel_backend($storm_pid)");
	$storm->quit;
	load_done($label);
	$s->is_like('sales', $expect, $label);
	$s->shard_sql(1, "ALTER SYSTEM RESET log_min_duration_statement; SELECT pg_reload_conf();");
	my $log = slurp_file($s->shard(1)->logfile, $off);
	my $parsed = () = $log =~ /parse pgsql_fdw_prep_\d+: INSERT INTO public\.sales\(/g;
	# the ledger's INSERT, prepared and deallocated once per chunk
	my $ledger = () = $log =~ /parse pgsql_fdw_prep_\d+: INSERT INTO public\.csvpipe_ledger\(/g;
	my $deallocs = () = $log =~ /statement: DEALLOCATE pgsql_fdw_prep_\d+/g;
	my $left = $parsed - ($deallocs - $ledger);
	cmp_ok($parsed, '>', 11, "$label: r1 prepared its batch INSERTs again after invalidations ($parsed)");
	cmp_ok($left, '<=', 11, "$label: and deallocated the ones it dropped ($left left)");
	$s->truncate_table('sales');
}

done_testing();
