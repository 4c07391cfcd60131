# 083_faults.pl -- faults at every moment of a load (issue 11, "What each
# mode guarantees when something dies").
#
# A seeded random campaign: a load (atomic or chunked, 1/2/4 workers, stop
# or skip) of a file whose lines are numbered, and at a random moment one
# fault: a worker, the leader or the coordinator terminated, the leader
# cancelled, possibly right after the k-th chunk committed.  After each:
#  - nothing stays prepared after a few seconds, and no csvpipe process;
#  - atomic: the table is all or nothing, and the answer and csvpipe.jobs
#    say which;
#  - chunked: the table holds exactly the lines of the chunks in the
#    ledger (each once), the ledger's row counts and csvpipe.errors agree;
#  - resume (when the job is not done) finishes it: every good line once,
#    every bad line rejected once, csvpipe.jobs counts right.
# Then an immediate shutdown mid-load, restart, settle, resume.
# CSVPIPE_FAULT_SEED replays a run, CSVPIPE_FAULT_RUNS sets its length.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run;
use Time::HiRes qw(usleep time);

my $seed = $ENV{CSVPIPE_FAULT_SEED} // (time() ^ $$) % 1000000;
my $runs = $ENV{CSVPIPE_FAULT_RUNS} // 40;
srand($seed);
diag("083_faults: seed $seed, $runs runs (CSVPIPE_FAULT_SEED=$seed to replay)");

my $dir = PostgreSQL::Test::Utils::tempdir;
chmod 0755, $dir;

my $node = PostgreSQL::Test::Cluster->new('faults');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'csvpipe'
max_prepared_transactions = 10
max_worker_processes = 24
timezone = 'UTC'
statement_timeout = '120s'
csvpipe.max_retries = 3
csvpipe.retry_delay = '50ms'
});
$node->start;

sub sql { return $node->safe_psql('postgres', $_[0]); }

# the file: line L (2..N+1) holds id L-1; every 997th id is a bad value
my $nrows = 20000;
my (@line_off, %bad);
my $text = "id,v\n";
for my $i (1 .. $nrows)
{
	push @line_off, [ length($text), $i ];
	if ($i % 997 == 0) { $text .= "$i,bad\n"; $bad{$i} = 1; }
	else { $text .= "$i,$i\n"; }
}
my $file = "$dir/f.csv";
{
	open(my $fh, '>', $file) or die;
	print $fh $text;
	close $fh;
	chmod 0644, $file;
}
my $nbad = scalar keys %bad;
my $ngood = $nrows - $nbad;
# stop mode reads the same file without its bad lines
my $clean = "$dir/clean.csv";
{
	open(my $fh, '>', $clean) or die;
	print $fh join('', grep { !/bad/ } split /^/, $text);
	close $fh;
	chmod 0644, $clean;
}
my (@clean_off);
{
	my $off = 5;
	for my $i (1 .. $nrows)
	{
		next if $bad{$i};
		push @clean_off, [ $off, $i ];
		$off += length("$i,$i\n");
	}
}

sql(q{CREATE EXTENSION csvpipe;
	CREATE TABLE t (id int, v int);
	CREATE FUNCTION slow() RETURNS trigger LANGUAGE plpgsql AS
	  $$ BEGIN PERFORM pg_sleep(0.005 + random() * 0.02); RETURN NULL; END $$;
	CREATE TRIGGER slow BEFORE INSERT ON t FOR EACH STATEMENT EXECUTE FUNCTION slow()});

sub settle
{
	# no prepared part, no csvpipe worker or coordinator, within 15 s
	my $t0 = time();
	while (time() - $t0 < 15)
	{
		return 1 if sql(q{SELECT (SELECT count(*) FROM pg_prepared_xacts) = 0
			AND (SELECT count(*) FROM pg_stat_activity
			     WHERE backend_type IN ('csvpipe worker', 'csvpipe coordinator')) = 0}) eq 't';
		usleep(100_000);
	}
	return 0;
}

# the ids a set of committed chunks holds (from their byte ranges)
sub ids_in_chunks
{
	my ($job, $offs) = @_;
	my @ranges = map { [ split /\|/ ] }
	  split /\n/, sql("SELECT start_offset, end_offset FROM csvpipe.chunks WHERE job_id = $job");
	my (%good, %rej);
	for my $r (@ranges)
	{
		for my $lo (@$offs)
		{
			next if $lo->[0] < $r->[0] || $lo->[0] >= $r->[1];
			if ($bad{ $lo->[1] }) { $rej{ $lo->[1] }++; }
			else { $good{ $lo->[1] }++; }
		}
	}
	return (\%good, \%rej);
}

sub table_ids
{
	my %ids;
	my $dups = 0;
	for (split /\n/, sql('SELECT id FROM t'))
	{
		$dups++ if $ids{$_}++;
	}
	return (\%ids, $dups);
}

sub rejected_ids
{
	my ($job) = @_;
	my %r;
	my $dups = 0;
	for (split /\n/, sql("SELECT line_no FROM csvpipe.errors WHERE job_id = $job"))
	{
		$dups++ if $r{ $_ - 1 }++;
	}
	return (\%r, $dups);
}

sub same_set
{
	my ($a, $b) = @_;
	return 0 if scalar(keys %$a) != scalar(keys %$b);
	for (keys %$a) { return 0 unless exists $b->{$_}; }
	return 1;
}

my @failures;
my %outcomes;

sub fail_run
{
	my ($desc, $why) = @_;
	push @failures, "$desc: $why";
	diag("BREAK $desc: $why");
}

# a fault, as one DO block: wait, find the process, hit it
sub fault_sql
{
	my ($kind, $delay, $after_chunks) = @_;
	my $then_coord = $kind =~ s/\+coordinator$// ? 'true' : 'false';
	my %target = (
		worker => "backend_type = 'csvpipe worker'",
		leader => "application_name = 'faultload' AND query LIKE '%csvpipe.load(%'",
		cancel => "application_name = 'faultload' AND query LIKE '%csvpipe.load(%'",
		coordinator => "backend_type = 'csvpipe coordinator'");
	my $fn = $kind eq 'cancel' ? 'pg_cancel_backend' : 'pg_terminate_backend';
	my $cond = $after_chunks
	  ? "AND (SELECT count(*) FROM csvpipe.chunks c JOIN csvpipe.job j USING (job_id)
	          WHERE j.path IN ('$file', '$clean') AND j.state = 'running') >= $after_chunks"
	  : '';
	return qq{SET statement_timeout = '10s';
DO \$\$ DECLARE p int; t0 timestamptz := clock_timestamp(); BEGIN
  PERFORM pg_sleep($delay);
  LOOP
    PERFORM pg_stat_clear_snapshot();
    SELECT pid INTO p FROM pg_stat_activity WHERE $target{$kind} $cond ORDER BY random() LIMIT 1;
    EXIT WHEN p IS NOT NULL
      OR NOT EXISTS (SELECT FROM pg_stat_activity WHERE application_name = 'faultload' AND state = 'active'
                     AND query LIKE '%csvpipe.load(%')
      OR clock_timestamp() - t0 > interval '5s';
    PERFORM pg_sleep(0.0005);
  END LOOP;
  IF p IS NOT NULL THEN PERFORM $fn(p); RAISE NOTICE 'hit %', p; END IF;
  -- then the coordinator that ends the failed load
  IF p IS NOT NULL AND $then_coord THEN
    p := NULL; t0 := clock_timestamp();
    LOOP
      PERFORM pg_stat_clear_snapshot();
      SELECT pid INTO p FROM pg_stat_activity WHERE backend_type = 'csvpipe coordinator';
      EXIT WHEN p IS NOT NULL OR clock_timestamp() - t0 > interval '3s';
      PERFORM pg_sleep(0.0005);
    END LOOP;
    IF p IS NOT NULL THEN PERFORM pg_terminate_backend(p); RAISE NOTICE 'hit coordinator %', p; END IF;
  END IF;
END \$\$;};
}

my $max_job = 0;
for my $run (1 .. $runs)
{
	my $atomic = rand() < 0.5 ? 'true' : 'false';
	my $workers = (1, 2, 4)[ int(rand(3)) ];
	my $skip = rand() < 0.6;
	my @kinds = split /,/, ($ENV{CSVPIPE_FAULT_KINDS} // 'worker,worker,leader,leader,cancel,cancel,coordinator,worker+coordinator');
	my $kind = $kinds[ int(rand(@kinds)) ];
	my $delay = sprintf('%.3f', rand() * ($kind eq "coordinator" ? 0.1 : 0.3));
	my $after = ($atomic eq 'false' && $kind ne 'coordinator' && rand() < 0.5) ? 1 + int(rand(8)) : 0;
	my $chunk = (4096, 16384, 65536)[ int(rand(3)) ];
	my $path = $skip ? $file : $clean;
	my $offs = $skip ? \@line_off : \@clean_off;
	my $desc = "run $run (seed $seed): atomic $atomic, $workers workers, "
	  . ($skip ? 'skip' : 'stop') . ", chunk $chunk, $kind after ${delay}s"
	  . ($after ? " and $after chunks" : '');

	sql('TRUNCATE t');
	my $q = "SELECT job_id, rows_loaded, rows_rejected FROM csvpipe.load('$path', 't', header => true, "
	  . "workers => $workers, atomic => $atomic, chunk_size => $chunk"
	  . ($skip ? ", on_error => 'skip'" : '') . ")";
	my ($out, $err, $fout, $ferr) = ('', '', '', '');
	local $ENV{PGAPPNAME} = 'faultload';
	# the leader's session stays open after its load (a pg_sleep the test
	# ends): what it leaves behind must settle while it lives
	my $h = IPC::Run::start([ 'psql', '-XAtq', '-d', $node->connstr('postgres'), '-c', $q,
			'-c', "SELECT 'state:' || state FROM csvpipe.jobs WHERE job_id = (SELECT max(job_id) FROM csvpipe.job)",
			'-c', 'SELECT pg_sleep(60)' ], '>', \$out, '2>', \$err);
	local $ENV{PGAPPNAME} = 'faulter';
	IPC::Run::run([ 'psql', '-XAtq', '-d', $node->connstr('postgres'), '-c', fault_sql($kind, $delay, $after) ],
		'>', \$fout, '2>', \$ferr);
	# wait for the load's answer (its row or its error)
	my $t0 = time();
	while (time() - $t0 < 60)
	{
		$h->pump_nb;
		last if $out =~ /^state:/m || $err =~ /FATAL:|server closed/ || !$h->pumpable;
		usleep(20_000);
	}
	# an ERROR reaches the client once the job's end is recorded
	my ($state_at_error) = $err =~ /ERROR:/ ? $out =~ /^state:(\w+)/m : ('');
	$state_at_error //= '';
	my $hit = $ferr =~ /hit/ ? 'hit' : 'miss';
	my $job = sql("SELECT max(job_id) FROM csvpipe.job");
	if ($job eq '' || $job <= $max_job)
	{
		# no job row: the load died before its first worker recorded one
		fail_run($desc, "ERROR but rows in the table") if sql('SELECT count(*) FROM t') ne '0';
		$outcomes{"$kind $hit nojob"}++;
		sql("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'faultload'");
		$h->finish;
		next;
	}
	$max_job = $job;
	my $ok = $out =~ /^$job\|/m;
	settle() or fail_run($desc, "not settled after 15 s: "
		  . sql("SELECT string_agg(gid, ',') FROM pg_prepared_xacts") . ' / '
		  . sql("SELECT string_agg(backend_type, ',') FROM pg_stat_activity WHERE backend_type LIKE 'csvpipe%'"));
	# the launcher settles atomic parts within seconds; wait for the job row
	my $settled = 0;
	for (1 .. 100)
	{
		$settled = sql("SELECT state <> 'running' OR leader_gone FROM csvpipe.jobs WHERE job_id = $job") eq 't';
		last if $settled;
		usleep(100_000);
	}
	fail_run($desc, "the job is still 'running' 10 s after its load ended in its live session (err: $err)")
	  unless $settled;
	my ($state, $decision, $rl, $rr, $gone) = split /\|/,
	  sql("SELECT state, coalesce(decision, '-'), rows_loaded, rows_rejected, leader_gone FROM csvpipe.jobs WHERE job_id = $job");
	my ($ids, $dups) = table_ids();
	my $n = scalar keys %$ids;
	$outcomes{"$kind $hit " . ($ok ? 'ok' : 'error') . " $state"}++;
	fail_run($desc, "$dups duplicate rows") if $dups;
	if ($ok)
	{
		fail_run($desc, "success but $n rows / state $state rows_loaded $rl")
		  unless $n == $ngood && $state eq 'done' && $rl == $ngood && $rr == ($skip ? $nbad : 0);
	}
	fail_run($desc, "the load ended in ERROR while its job was still '$state_at_error'")
	  if $state_at_error eq 'running';
	fail_run($desc, "the load ended in ERROR but its job is 'done'")
	  if !$ok && $err =~ /ERROR:/ && $state eq 'done';
	if ($atomic eq 'true')
	{
		fail_run($desc, "atomic: $n rows (not all or nothing)") unless $n == 0 || $n == $ngood;
		fail_run($desc, "atomic: ERROR from a live client but $n rows committed")
		  if !$ok && $n && $err =~ /ERROR/ && $err !~ /terminat|server closed/;
		fail_run($desc, "atomic: state $state decision $decision but $n rows")
		  if ($n == $ngood) != ($state eq 'done' && $decision eq 'commit');
	}
	else
	{
		my ($good, $rej) = ids_in_chunks($job, $offs);
		fail_run($desc, "chunked: table has $n rows, the ledger's chunks hold " . scalar(keys %$good))
		  unless same_set($ids, $good);
		my $ledger = sql("SELECT coalesce(sum(rows), 0) FROM csvpipe.chunks WHERE job_id = $job");
		fail_run($desc, "chunked: ledger counts $ledger rows, table $n") if $ledger != $n;
		if ($skip)
		{
			my ($r, $rdups) = rejected_ids($job);
			fail_run($desc, "chunked: rejected lines differ from the ledger's chunks' bad lines ("
				  . join(',', sort keys %$r) . ' vs ' . join(',', sort keys %$rej) . ')')
			  unless same_set($r, $rej) && !$rdups;
		}
	}
	# the leader's session ends; resume finishes the job
	sql("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'faultload'");
	$h->finish;
	next if $state eq 'done';
	my ($rret, $rout, $rerr) = $node->psql('postgres', "SELECT rows_loaded FROM csvpipe.resume($job)");
	if ($rret != 0)
	{
		fail_run($desc, "resume of a $state job failed: $rerr");
		next;
	}
	settle();
	($state, $decision, $rl, $rr) = split /\|/,
	  sql("SELECT state, coalesce(decision, '-'), rows_loaded, rows_rejected FROM csvpipe.jobs WHERE job_id = $job");
	($ids, $dups) = table_ids();
	$n = scalar keys %$ids;
	fail_run($desc, "after resume: $n rows, $dups duplicates, state $state, rows_loaded $rl, rows_rejected $rr")
	  unless $n == $ngood && !$dups && $state eq 'done' && $rl == $ngood && $rr == ($skip ? $nbad : 0);
	if ($skip)
	{
		my ($r, $rdups) = rejected_ids($job);
		fail_run($desc, "after resume: " . scalar(keys %$r) . " rejected lines, $rdups twice")
		  unless scalar(keys %$r) == $nbad && !$rdups && same_set($r, \%bad);
	}
}
# ---------------------------------------------------------------------------
# a server crash (immediate shutdown) mid-load, restart, settle, resume
# ---------------------------------------------------------------------------
my $crashes = $ENV{CSVPIPE_FAULT_CRASHES} // 6;
for my $run (1 .. $crashes)
{
	my $atomic = $run % 2 ? 'false' : 'true';
	my $workers = (1, 2, 4)[ int(rand(3)) ];
	my $skip = rand() < 0.6;
	my $delay = 0.05 + rand() * 0.25;
	my $path = $skip ? $file : $clean;
	my $offs = $skip ? \@line_off : \@clean_off;
	my $desc = sprintf("crash %d (seed %d): atomic %s, %d workers, %s, after %.3fs",
		$run, $seed, $atomic, $workers, $skip ? 'skip' : 'stop', $delay);
	sql('TRUNCATE t');
	my ($out, $err) = ('', '');
	my $h = IPC::Run::start([ 'psql', '-XAtq', '-d', $node->connstr('postgres'), '-c',
			"SELECT job_id FROM csvpipe.load('$path', 't', header => true, workers => $workers, "
			  . "atomic => $atomic, chunk_size => 4096" . ($skip ? ", on_error => 'skip'" : '') . ")" ],
		'>', \$out, '2>', \$err);
	usleep(int($delay * 1_000_000));
	$node->stop('immediate');
	$h->finish;
	$node->start;
	my $job = sql("SELECT max(job_id) FROM csvpipe.job");
	next if $job eq '' || $job <= $max_job;
	$max_job = $job;
	settle() or fail_run($desc, "prepared parts left after the restart: "
		  . sql("SELECT string_agg(gid, ',') FROM pg_prepared_xacts"));
	my ($state, $rl) = split /\|/, sql("SELECT state, rows_loaded FROM csvpipe.jobs WHERE job_id = $job");
	my ($ids, $dups) = table_ids();
	my $n = scalar keys %$ids;
	$outcomes{"crash atomic $atomic $state"}++;
	fail_run($desc, "$dups duplicate rows") if $dups;
	if ($atomic eq 'true')
	{
		fail_run($desc, "atomic: $n rows, job $state") unless ($n == 0 && $state ne 'done') || ($n == $ngood && $state eq 'done');
	}
	else
	{
		my ($good, $rej) = ids_in_chunks($job, $offs);
		fail_run($desc, "chunked: table has $n rows, the ledger's chunks hold " . scalar(keys %$good))
		  unless same_set($ids, $good);
		if ($skip)
		{
			my ($r, $rdups) = rejected_ids($job);
			fail_run($desc, "chunked: rejected lines differ from the ledger's chunks' bad lines")
			  unless same_set($r, $rej) && !$rdups;
		}
	}
	next if $state eq 'done';
	my ($rret, $rout, $rerr) = $node->psql('postgres', "SELECT rows_loaded FROM csvpipe.resume($job)");
	if ($rret != 0)
	{
		fail_run($desc, "resume of a $state job failed: $rerr");
		next;
	}
	settle();
	my ($rr);
	($state, $rl, $rr) = split /\|/,
	  sql("SELECT state, rows_loaded, rows_rejected FROM csvpipe.jobs WHERE job_id = $job");
	($ids, $dups) = table_ids();
	$n = scalar keys %$ids;
	fail_run($desc, "after resume: $n rows, $dups duplicates, state $state, rows_loaded $rl, rows_rejected $rr")
	  unless $n == $ngood && !$dups && $state eq 'done' && $rl == $ngood && $rr == ($skip ? $nbad : 0);
	if ($skip)
	{
		my ($r, $rdups) = rejected_ids($job);
		fail_run($desc, "after resume: " . scalar(keys %$r) . " rejected lines, $rdups twice")
		  unless same_set($r, \%bad) && !$rdups;
	}
}

diag(join("\n", map { "$outcomes{$_} x $_" } sort keys %outcomes));
is(join("\n", @failures), '', "$runs loads with a fault at a random moment keep every row once (seed $seed)");

$node->stop;
done_testing();
