# 124_sharded_attempts.pl -- which attempts at a chunk read the shard
# ledgers (issue 14, item 3: a chunked load no longer reads every server's
# ledger before every chunk).
#
# The first attempt at a chunk of a job that csvpipe.load itself created
# reads no ledger: nothing can have committed that chunk anywhere yet.  Every
# other attempt must read them, or a server that committed the chunk would
# be sent its rows again.  The ledger's primary key would then make that
# attempt fail rather than double the rows, so comparing the tables with
# COPY's (120, 122) cannot tell whether the ledgers were read.  Here each
# shard counts every row it is sent, in any attempt, committed or not (a row
# trigger bumps a sequence, which no rollback undoes), and the count must be
# exactly what each attempt had to send:
#
#  - a plain chunked load (the leader converting chunks for the workers):
#    each shard is sent each of its rows once;
#  - a COMMIT that fails on one shard after the other committed (a
#    deferred trigger that ends its own backend at commit), retried in the
#    worker, and with csvpipe.max_retries = 0 finished by csvpipe.resume:
#    the shard that committed is not sent the chunk again;
#  - the worker terminated while one shard's COMMIT waits (a deferred
#    trigger waits for an advisory lock) after the other shard committed:
#    the chunk goes to a new worker, which must not send it to the shard
#    that committed it.
#
# Every run ends equal to COPY on every server.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use CsvpipeShards;

my $gen = $ENV{CSVPIPE_GEN_CSV} // 'test/gen/gen_csv';
my $dir = PostgreSQL::Test::Utils::tempdir;

my $s = CsvpipeShards->new(name => 's124');
my $c = $s->coord;
$s->create_sharded('sales');

my $nrows = 40000;
system("$gen narrow $nrows 11 > $dir/sales.csv") == 0 or die;
my $file = "$dir/sales.csv";
my $expect = $s->copy_expected('sales', $file);
my %share = map { $_ => (split / /, $expect->{"r$_"})[0] } 1, 2;
cmp_ok($share{$_}, '>', 5000, "COPY puts rows on r$_") for 1, 2;
my $dboid = $s->sql("SELECT oid FROM pg_database WHERE datname = 'postgres'");

# every row a shard is sent, in any attempt, committed or not
for my $i (1, 2)
{
	$s->shard_sql($i, q{
CREATE SEQUENCE received;
CREATE FUNCTION count_received() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN PERFORM nextval('public.received'); RETURN NULL; END $$;
CREATE TRIGGER count_received AFTER INSERT ON sales FOR EACH ROW EXECUTE FUNCTION count_received();
GRANT USAGE, UPDATE ON SEQUENCE received TO shard_loader;
});
}

sub received
{
	my ($i) = @_;
	return $s->shard_sql($i, "SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM received");
}

sub reset_received
{
	$s->shard_sql($_, "SELECT setval('received', 1, false)") for 1, 2;
}

# a shard's ledger row for a chunk of a job: "rows committed_at_epoch", or ''
sub ledger_row
{
	my ($i, $job, $chunk) = @_;
	return $s->shard_sql($i, "SELECT rows || ' ' || extract(epoch FROM committed_at) FROM csvpipe_ledger
		WHERE job LIKE '%/$dboid/$job/%' AND chunk_no = $chunk");
}

# the chunk (ledger) holding a line
sub chunk_of_line
{
	my ($job, $line) = @_;
	return $s->sql("SELECT chunk_no FROM csvpipe.chunks WHERE job_id = $job
		AND first_line <= $line ORDER BY first_line DESC LIMIT 1");
}

# about 15 chunks
my $opts = "mode => 'chunked', chunk_size => 150000";

# ---- a plain load: every row sent once -------------------------------------------

reset_received();
my ($ret, $out, $err) = $c->psql('postgres',
	"SET ROLE loader; SET client_min_messages = debug1; SELECT job_id FROM csvpipe.load('$file', 'sales', $opts, workers => 1)");
is($ret, 0, 'plain load succeeds') or diag($err);
like($err, qr/csvpipe leader: converted [1-9]\d* of \d+ chunks for the workers/,
	'the leader converted chunks for the worker');
is(received($_), $share{$_}, "plain load: r$_ was sent each of its rows once") for 1, 2;
$s->is_like('sales', $expect, 'plain load');
$s->truncate_table('sales');

# ---- a COMMIT that fails on one shard after the other committed -----------------

my %victim;
$s->sql("COPY sales FROM '$file' (FORMAT csv, HEADER)");
for my $i (1, 2)
{
	$victim{$i} = $s->shard_sql($i, "SELECT min(id) FROM sales WHERE id > $nrows / 2");
	$s->shard_sql($i, q{
CREATE SEQUENCE kill_gate;
CREATE SEQUENCE kill_time;
CREATE FUNCTION kill_at_commit() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER
  SET search_path = public, pg_catalog AS $$
BEGIN
  IF nextval('kill_gate') = 1 THEN
    PERFORM setval('kill_time', (extract(epoch FROM clock_timestamp()) * 1000000)::bigint);
    PERFORM pg_terminate_backend(pg_backend_pid());
  END IF;
  RETURN NULL;
END $$;
CREATE FUNCTION wait_at_commit() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER
  SET search_path = public, pg_catalog AS $$
BEGIN
  PERFORM pg_advisory_xact_lock_shared(4124);
  RETURN NULL;
END $$;
});
}
$s->truncate_table('sales');

# After a run in which the chunk holding the victim row of r$i failed once:
# r$i was sent that chunk's rows twice, and r$other twice only if it had
# not committed the chunk when r$i failed.  $first: whether it had, when
# the caller knows; else whether the remote transaction of r$other's ledger
# row (committed_at: its start) began before r$i's COMMIT ended its backend
# (kill_time) -- a later attempt's began after.  (Not "r$other's row is
# older by more than a moment": in the other order both rows are the
# retry's, r$i's a reconnection later, which a busy machine stretches.)
# Returns whether it had.
sub check_received
{
	my ($label, $i, $job, $first) = @_;
	my $other = 3 - $i;
	my $chunk = chunk_of_line($job, $victim{$i} + 1);
	my ($rows_i, $t_i) = split / /, ledger_row($i, $job, $chunk);
	my ($rows_o, $t_o) = split / /, ledger_row($other, $job, $chunk);
	ok(defined $t_i && defined $t_o, "$label: chunk $chunk is in both ledgers")
	  or return 0;
	$first //= ($t_o < $s->shard_sql($i, 'SELECT last_value / 1000000.0 FROM kill_time'));
	is(received($i), $share{$i} + $rows_i, "$label: r$i was sent the chunk's $rows_i rows again, nothing else");
	is(received($other), $share{$other} + ($first ? 0 : $rows_o),
		$first ? "$label: r$other, which had committed the chunk, was not sent it again"
		  : "$label: r$other, which had not committed the chunk, was sent it again");
	return $first;
}

my $dangerous = 0;
for my $i (1, 2)
{
	for my $how ('retry', 'resume')
	{
		my $label = "COMMIT fails on r$i ($how)";
		reset_received();
		$s->shard_sql($i, qq{
SELECT setval('kill_gate', 1, false);
CREATE CONSTRAINT TRIGGER kill_at_commit AFTER INSERT ON sales
  DEFERRABLE INITIALLY DEFERRED FOR EACH ROW WHEN (NEW.id = $victim{$i})
  EXECUTE FUNCTION kill_at_commit();
});
		my ($job, $first);
		if ($how eq 'retry')
		{
			($ret, $out, $err) = $c->psql('postgres',
				"SET ROLE loader; SET csvpipe.retry_delay = '300ms'; SELECT job_id FROM csvpipe.load('$file', 'sales', $opts, workers => 1)");
			is($ret, 0, "$label: the load succeeds") or diag($err);
			$job = $out;
		}
		else
		{
			($ret, $out, $err) = $c->psql('postgres',
				"SET ROLE loader; SET csvpipe.max_retries = 0; SELECT csvpipe.load('$file', 'sales', $opts, workers => 1)");
			isnt($ret, 0, "$label: the load fails without retries");
			$job = $s->sql("SELECT max(job_id) FROM csvpipe.job");
			# one worker: r$other committed the failed chunk if its ledger
			# has one chunk of the job more than r$i's
			my $key = "job LIKE '%/$dboid/$job/%'";
			$first = $s->ledger_rows(3 - $i, $key) == $s->ledger_rows($i, $key) + 1;
			$s->sql_as('loader', "SELECT csvpipe.resume($job)");
		}
		is($s->sql("SELECT state || ' ' || rows_loaded FROM csvpipe.jobs WHERE job_id = $job"),
			"done $nrows", "$label: done, every row counted once");
		$dangerous++ if check_received($label, $i, $job, $first);
		$s->is_like('sales', $expect, $label);
		$s->shard_sql($i, 'DROP TRIGGER kill_at_commit ON sales');
		$s->truncate_table('sales');
	}
}
ok($dangerous >= 1, "in $dangerous of 4 runs the other shard had committed the chunk first");

# ---- the worker lost while one shard commits, after the other committed --------

# r$i's COMMIT of the victim's chunk waits for an advisory lock; the worker
# is terminated there.  Before the chunk's next attempt reads the ledgers,
# r$i's COMMIT is let through and done: the next attempt is held back by a
# lock on the ledgers' foreign tables here, which every attempt takes
# before it reads them (an ALTER FOREIGN TABLE that changes nothing, in a
# transaction: foreign tables cannot be LOCKed).  So the chunk is in r$i's
# ledger when the ledgers
# are read, and in r$other's if it committed before r$i's COMMIT began.
$dangerous = 0;
for my $i (1, 2)
{
	my $other = 3 - $i;
	my $label = "worker lost while r$i commits";
	reset_received();
	$s->shard_sql($i, qq{
CREATE CONSTRAINT TRIGGER wait_at_commit AFTER INSERT ON sales
  DEFERRABLE INITIALLY DEFERRED FOR EACH ROW WHEN (NEW.id = $victim{$i})
  EXECUTE FUNCTION wait_at_commit();
});
	my $hold = $s->shard($i)->background_psql('postgres', on_error_stop => 0);
	$hold->query_safe('SELECT pg_advisory_lock(4124)');
	my $load = $c->background_psql('postgres', on_error_stop => 0);
	$load->query_until(qr/started/, qq{SET ROLE loader;
\\echo started
SELECT job_id FROM csvpipe.load('$file', 'sales', $opts, workers => 1);
});
	$s->shard($i)->poll_query_until('postgres',
		"SELECT count(*) > 0 FROM pg_locks WHERE locktype = 'advisory' AND NOT granted")
	  or die "$label: the commit does not wait";
	my $job = $s->sql("SELECT max(job_id) FROM csvpipe.job");
	# one worker, one chunk at a time: r$other committed the victim's chunk
	# first if its ledger has one chunk of the job more than r$i's
	my $key = "job LIKE '%/$dboid/$job/%'";
	my $before = $s->ledger_rows($i, $key);
	my $first = $s->ledger_rows($other, $key) == $before + 1;
	my $gate = $c->background_psql('postgres', on_error_stop => 0);
	my $gate_pid = $gate->query_safe('SELECT pg_backend_pid()');
	$gate->query_until(qr/locking/, q{\echo locking
BEGIN;
ALTER FOREIGN TABLE csvpipe_ledger_r1 OPTIONS (SET table_name 'csvpipe_ledger');
ALTER FOREIGN TABLE csvpipe_ledger_r2 OPTIONS (SET table_name 'csvpipe_ledger');
\echo locked
});
	# the gate's lock on the first ledger is queued (the worker, in its
	# COMMIT, still holds the ledgers it read) before the worker goes, so
	# the next attempt queues behind it whatever runs first afterwards
	$c->poll_query_until('postgres', "SELECT count(*) = 1 FROM pg_locks WHERE pid = $gate_pid
		AND relation = 'csvpipe_ledger_r1'::regclass AND mode = 'AccessExclusiveLock'")
	  or die "$label: the gate did not ask for its lock";
	$c->safe_psql('postgres',
		"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE backend_type = 'csvpipe worker'");
	# the worker gone, the gate holds the ledgers; r$i's COMMIT goes on
	$gate->query_until(qr/locked/, '');
	$hold->query_safe('SELECT pg_advisory_unlock(4124)');
	$hold->quit;
	$s->shard($i)->poll_query_until('postgres',
		"SELECT count(*) = $before + 1 FROM csvpipe_ledger WHERE $key")
	  or die "$label: the COMMIT on r$i did not go on";
	$gate->query_safe('COMMIT');
	$gate->quit;
	$load->query('SELECT 1');
	my $lerr = $load->{stderr};
	$load->quit;
	like($lerr, qr/csvpipe worker \d+ was lost; \d+ chunk\(s\) will be loaded again/, "$label: the worker was lost")
	  or diag($lerr);
	is($s->sql("SELECT state || ' ' || rows_loaded FROM csvpipe.jobs WHERE job_id = $job"),
		"done $nrows", "$label: done, every row counted once");
	my $chunk = chunk_of_line($job, $victim{$i} + 1);
	my ($rows_o) = split / /, ledger_row($other, $job, $chunk);
	is(received($i), $share{$i}, "$label: r$i, which had committed the chunk, was not sent it again");
	# r$other's remote transaction, if it had not committed, ended with the
	# worker: then it was sent the chunk again
	is(received($other), $share{$other} + ($first ? 0 : $rows_o),
		$first ? "$label: r$other, which had committed the chunk, was not sent it again"
		  : "$label: r$other, which had not committed the chunk, was sent it again");
	$dangerous++ if $first;
	$s->is_like('sales', $expect, $label);
	$s->shard_sql($i, 'DROP TRIGGER wait_at_commit ON sales');
	$s->truncate_table('sales');
}
ok($dangerous >= 1, "in $dangerous of 2 runs the other shard had committed the chunk before the worker was lost");

done_testing();
