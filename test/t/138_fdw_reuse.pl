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
	my $victim = r1_row_from(20000);
	$s->shard_sql(1, 'CREATE DATABASE other');
	$s->shard(1)->safe_psql('other', "CREATE TABLE sales ($CsvpipeShards::NARROW); "
		  . CsvpipeShards::SHARD_LEDGER_DDL . qq{;
GRANT SELECT, INSERT, TRUNCATE ON sales TO shard_loader;
GRANT SELECT, INSERT ON csvpipe_ledger TO shard_loader;
});
	$s->shard_sql(1, qq{
CREATE FUNCTION hold_row() RETURNS trigger LANGUAGE plpgsql AS \$\$
BEGIN PERFORM pg_advisory_lock_shared(4138); PERFORM pg_advisory_unlock_shared(4138); RETURN NEW; END \$\$;
CREATE TRIGGER hold_row BEFORE INSERT ON sales FOR EACH ROW WHEN (NEW.id = $victim)
  EXECUTE FUNCTION hold_row();
});
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
	$s->sql("ALTER SERVER r1 OPTIONS (SET dbname 'other')");
	$hold->query_safe('SELECT pg_advisory_unlock(4138)');
	$hold->quit;
	$load->query('SELECT 1');
	my $lerr = $load->{stderr};
	$load->quit;
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
	$s->shard_sql(1, 'DROP TRIGGER hold_row ON sales');
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
	my $victim = r1_row_from(25000);
	# the test clusters say restart_after_crash = off
	$s->shard_sql(1, 'ALTER SYSTEM SET restart_after_crash = on; SELECT pg_reload_conf();');
	$s->shard_sql(1, qq{
CREATE TRIGGER hold_row BEFORE INSERT ON sales FOR EACH ROW WHEN (NEW.id = $victim)
  EXECUTE FUNCTION hold_row();
});
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
	my $old_pid = $s->shard_sql(1, "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND NOT granted");
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
	$hold->query_safe('SELECT pg_advisory_unlock(4138)');
	$gate->query_until(qr/locked/, '');
	# the chunk committed; the next one waits for the gate: kill r1's session
	kill 'KILL', $old_pid;
	$hold->quit;
	$s->shard(1)->poll_query_until('postgres', 'SELECT true')
	  or die "$label: r1 did not come back";
	$gate->query_safe('COMMIT');
	$gate->quit;
	$load->query('SELECT 1');
	my $lerr = $load->{stderr};
	$load->quit;
	unlike($lerr, qr/ERROR/, "$label: no error") or diag($lerr);
	load_done($label);
	$s->is_like('sales', $expect, $label);
}

done_testing();
