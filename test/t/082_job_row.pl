# 082_job_row.pl -- a parallel load's csvpipe.job row (issue 11, the
# conservation test's "jobrow" dimension).
#
#  - a job row exists (committed) before any chunk of the job commits or any
#    part is prepared: a failed load with several workers always has its job
#    row, and the ledger (csvpipe.chunks) never lists a job that does not
#    exist (seen on the unfixed code: 8 of 15 failed loads left no job row,
#    4 of them with committed rows and ledger chunks);
#  - when csvpipe.load returns an ERROR, the job's end is already recorded:
#    the very next statement of the session sees it 'failed' (or
#    'cancelled') with the error the client got, no prepared part left
#    (seen: 7 of 15 still 'running');
#  - a cancel (pg_cancel_backend, or statement_timeout) at any moment of a
#    load, in every mode -- a sweep of delays over the load's length --
#    gives either success with every row and the job 'done', or the ERROR
#    with a job that is not 'done' and exactly its committed rows in the
#    table (chunked: its ledger's; prepared and transaction: none), or
#    nothing at all (cancelled before any worker started: no job); the
#    client's retry (resume, or the load again) then leaves exactly COPY's
#    rows.  Seen on the unfixed code: the ERROR with the job 'done' and
#    every row committed (a cancel after the load returned, still in its
#    statement), and a transaction-mode job left 'running';
#  - a cancel in the rest of the load's statement, after the load
#    returned, is an ERROR: chunked and prepared loads stay committed and
#    'done', transaction mode rolls back; the next statement, and a DO
#    block's work after a load, can be cancelled;
#  - a cancel after every chunk of a chunked load committed, while the
#    workers wait for their commits to reach a synchronous standby, is too
#    late: the load returns its result, the job is 'done' (it was an ERROR
#    with every row loaded and the job 'cancelled').
#
# The loads run as an unprivileged role (pg_read_server_files, INSERT on the
# target); the checks read csvpipe's own tables as superuser.
use strict;
use warnings;
use feature 'state';

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run ();
use Time::HiRes ();

my $dir = PostgreSQL::Test::Utils::tempdir;
chmod 0755, $dir;

my $node = PostgreSQL::Test::Cluster->new('jobrow');
# streaming allowed: max_wal_senders > 0, so synchronous_commit = on waits
# for the (absent) synchronous standby
$node->init(allows_streaming => 1);
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'csvpipe'
max_prepared_transactions = 10
max_worker_processes = 24
statement_timeout = '120s'
synchronous_standby_names = 'nosuch_standby'
synchronous_commit = local
});
$node->start;

sub sql { return $node->safe_psql('postgres', $_[0]); }

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
CREATE TABLE j (id int, name text);
GRANT INSERT, SELECT, TRUNCATE ON j TO alice;
});

# the repro: 60 rows of (int, text), line 21 has three fields
my $bad = write_file('failed_load_job_row.csv',
	"id,name\n" . join('', map { $_ == 20 ? "20,x,extra\n" : "$_,name$_\n" } 1 .. 60));

# The statements of one load as alice, then at once (same session, next
# statements) what csvpipe recorded.
sub load_script
{
	my ($call, %opt) = @_;
	my $pre = $opt{pre} // '';
	my $post = $opt{post} // '';
	return qq{
\\set VERBOSITY verbose
SELECT CASE WHEN is_called THEN last_value ELSE last_value - 1 END AS j0 FROM csvpipe.job_id_seq \\gset
TRUNCATE j;
SET ROLE alice;
$pre
SELECT 'R', job_id, rows_loaded FROM $call;
RESET ROLE;
$post
-- the error's first line: the client's message (a HINT follows on its own line)
SELECT 'J|' || job_id || '|' || state || '|' || coalesce(split_part(error, E'\n', 1), '<null>') || '|' || submitted_by::regrole
  FROM csvpipe.job WHERE job_id > :j0 ORDER BY job_id;
SELECT 'C|' || count(*) || '|' || coalesce(sum(rows), 0) FROM csvpipe.chunks WHERE job_id > :j0;
SELECT 'T|' || count(*) FROM j;
SELECT 'P|' || count(*) FROM pg_prepared_xacts;
SELECT 'O|' || count(*) FROM csvpipe.chunks c
  WHERE NOT EXISTS (SELECT 1 FROM csvpipe.job x WHERE x.job_id = c.job_id);
};
}

sub parse_out
{
	my ($out) = @_;
	my %o;
	for (split /\n/, $out)
	{
		my ($k, $rest) = split /\|/, $_, 2;
		push @{ $o{$k} }, $rest;
	}
	return \%o;
}

# Returns (psql stderr, {R => [...], J => [...], C => ..., T, P, O})
sub load_and_look
{
	my ($ret, $out, $err) = $node->psql('postgres', load_script(@_), on_error_stop => 0);
	return ($err, parse_out($out));
}

# The same in the background; $tick->(elapsed seconds) runs every 10 ms
# until psql ends
sub load_and_look_bg
{
	my ($tick, @args) = @_;
	my $script = write_file('load.sql', load_script(@args));
	my ($in, $out, $err) = ('', '', '');
	my $h = IPC::Run::start(
		[ $node->installed_command('psql'), '-XAtq', '-d', $node->connstr('postgres'), '-f', $script ],
		'<', \$in, '>', \$out, '2>', \$err);
	my $t0 = Time::HiRes::time();
	while ($h->pumpable && Time::HiRes::time() - $t0 < 120)
	{
		$h->pump_nb;
		$tick->(Time::HiRes::time() - $t0);
		Time::HiRes::usleep(10_000);
	}
	$h->finish;
	return ($err, parse_out($out));
}

# cancel the client backend running csvpipe.load, if any; true if one was
sub cancel_load
{
	my ($what) = @_;
	$what //= "state = 'active' AND query LIKE '%FROM csvpipe.load(%'";
	return sql(qq{SELECT count(pg_cancel_backend(pid)) FROM pg_stat_activity
		WHERE backend_type = 'client backend' AND pid <> pg_backend_pid() AND $what}) > 0;
}

# ---------------------------------------------------------------------------
# 1. failed stop-mode loads: job row, final state at the ERROR, ledger
# ---------------------------------------------------------------------------
my @modes = ((map { [ 4, 'false' ] } 1 .. 15), (map { [ 4, 'true' ] } 1 .. 5),
	(map { [ 2, 'false' ] } 1 .. 3), [ 1, 'false' ], [ 1, 'true' ]);
my %bad_runs;
my $run = 0;
for my $m (@modes)
{
	my ($w, $atomic) = @$m;
	my $mode = "workers=$w atomic=$atomic run " . ++$run;
	my ($err, $o) = load_and_look(
		"csvpipe.load('$bad', 'j', workers => $w, chunk_size => 64, atomic => $atomic, header => true)");
	my @why;
	my ($code, $msg) = $err =~ /ERROR:\s+([0-9A-Z]{5}): ([^\n]*)/;
	push @why, "no ERROR: " . ($o->{R}[0] // $err) unless defined $code;
	push @why, "SQLSTATE $code" if defined $code && $code ne '22P04';
	push @why, "the error does not name line 21: $err" unless $err =~ /line 21\b/;
	my @jobs = @{ $o->{J} // [] };
	if (@jobs != 1)
	{
		push @why, scalar(@jobs) . " job rows";
	}
	else
	{
		my ($id, $state, $jerr, $role) = split /\|/, $jobs[0], 4;
		push @why, "job $id is '$state' when the ERROR returned" if $state ne 'failed';
		push @why, "job $id records the error '$jerr', the client got '" . ($msg // '') . "'"
		  if !defined $msg || $jerr ne $msg;
		push @why, "job $id submitted by $role" if $role ne 'alice';
	}
	my ($nchunks, $chunk_rows) = split /\|/, ($o->{C}[0] // '?|?');
	my $table = $o->{T}[0] // '?';
	if ($atomic eq 'true')
	{
		push @why, "atomic: table holds $table rows, ledger $nchunks chunks"
		  if $table ne '0' || $nchunks ne '0';
	}
	else
	{
		push @why, "table holds $table rows, the ledger lists $chunk_rows"
		  if $table ne $chunk_rows;
	}
	push @why, ($o->{P}[0] // '?') . " prepared transactions left" if ($o->{P}[0] // '?') ne '0';
	push @why, ($o->{O}[0] // '?') . " ledger rows of no job" if ($o->{O}[0] // '?') ne '0';
	$bad_runs{$mode} = join('; ', @why) if @why;
}
is(scalar(keys %bad_runs), 0,
	'every failed load has its job row, failed with its error when the ERROR returns; ledger only for jobs'
) or diag(join("\n", map { "$_: $bad_runs{$_}" } sort keys %bad_runs));

# ---------------------------------------------------------------------------
# 2. a cancel (pg_cancel_backend from another session, or statement_timeout)
#    at every moment of a larger load, in every mode
# ---------------------------------------------------------------------------
# For each delay the outcome is one of:
#  - success: every row, the job 'done';
#  - ERROR 57014, and the job says what is committed: not 'done' (chunked:
#    'cancelled' with exactly its ledger's rows in the table; prepared and
#    transaction: nothing in the table), or no job at all and nothing
#    loaded (cancelled before any worker started).
# Then the retry a client makes after an ERROR (resume of a chunked job,
# the load again otherwise) leaves exactly COPY's rows: never a row twice.
# The cancel is timed by the server (the canceller sleeps until the load's
# query_start + delay), so a sweep of delays lands on every phase of the
# load: start, chunks, the last commits, the coordinator, the return.
my $nbig = 200000;
my $big = write_file('big.csv', "id,name\n" . join('', map { "$_,name$_\n" } 1 .. $nbig));
sql(qq{CREATE TABLE ref (id int, name text);
COPY ref FROM '$big' (FORMAT csv, HEADER true);
GRANT SELECT ON ref TO alice;});
# j against COPY's rows: count and a checksum of the rows (a row twice or
# missing changes both): '=' when they agree
my $sum_sql = q{SELECT count(*) || ':' || coalesce(sum(hashtext(id || ',' || name)::bigint), 0) FROM };
my $copy_sum = sql($sum_sql . 'ref');
my $diff_sql = $sum_sql . "j";

# The canceller: waits (at most 30 s) for the load of application $app to
# start, then sleeps until its query_start + $ms -- or, with $ms = 'sleep',
# until the load's statement sleeps in pg_sleep -- and cancels it.  Returns
# a sub that waits for it and says what it did.
sub start_canceller
{
	my ($app, $ms) = @_;
	my $when = $ms eq 'sleep'
	  ? q{LOOP
    PERFORM pg_stat_clear_snapshot();
    EXIT WHEN n > 30000 OR EXISTS (SELECT 1 FROM pg_stat_activity a
                                    WHERE a.pid = p AND a.wait_event = 'PgSleep');
    n := n + 1;
    PERFORM pg_sleep(0.001);
  END LOOP;}
	  : "PERFORM pg_sleep(greatest(0, extract(epoch FROM t0 + interval '$ms ms' - clock_timestamp())));";
	my $code = qq{
SET statement_timeout = 0;
DO \$\$
DECLARE p int; t0 timestamptz; s text; n int := 0;
BEGIN
  LOOP
    PERFORM pg_stat_clear_snapshot();
    SELECT a.pid, a.query_start INTO p, t0 FROM pg_stat_activity a
     WHERE a.application_name = '$app' AND a.state = 'active'
       AND a.query LIKE '%csvpipe.load(%';
    EXIT WHEN p IS NOT NULL OR n > 30000;
    n := n + 1;
    PERFORM pg_sleep(0.001);
  END LOOP;
  IF p IS NULL THEN RAISE NOTICE 'S|no load seen'; RETURN; END IF;
  $when
  PERFORM pg_stat_clear_snapshot();
  SELECT a.state || ':' || coalesce(a.wait_event, '-') INTO s FROM pg_stat_activity a WHERE a.pid = p;
  PERFORM pg_cancel_backend(p);
  RAISE NOTICE 'S|cancel at % ms (%)',
    round(extract(epoch FROM clock_timestamp() - t0) * 1000), s;
END \$\$;};
	my ($in, $out, $err) = ('', '', '');
	my $h = IPC::Run::start(
		[ $node->installed_command('psql'), '-XAtq', '-d', $node->connstr('postgres'), '-c', $code ],
		'<', \$in, '>', \$out, '2>', \$err);
	return sub { $h->finish; return $err =~ /(S\|[^\n]*)/ ? $1 : $err; };
}

# The load alone in its session (a cancel that comes after the load
# statement ended finds the session idle, so it cancels nothing); what it
# left is read afterwards from another session.  $select: the statement,
# with %s for the load's call.
sub load_alone
{
	my ($app, $call, $pre, $select) = @_;
	# the statement is only the load (columns of its result, constants):
	# cancels are held to its end (psql -A separates the columns with |)
	$select //= "SELECT 'R', job_id, rows_loaded FROM %s";
	$select = sprintf($select, $call);
	my ($ret, $out, $err) = $node->psql('postgres', qq{
\\set VERBOSITY verbose
SET application_name = '$app';
SET ROLE alice;
$pre
$select;
}, on_error_stop => 0);
	return ($err, parse_out($out));
}

sub look_after
{
	my ($j0) = @_;
	return parse_out(sql(qq{
-- the error's first line: the client's message (a HINT follows on its own line)
SELECT 'J|' || job_id || '|' || state || '|' || coalesce(split_part(error, E'\n', 1), '<null>') || '|' || submitted_by
  FROM csvpipe.jobs WHERE job_id > $j0 ORDER BY job_id;
SELECT 'C|' || count(*) || '|' || coalesce(sum(rows), 0) FROM csvpipe.chunks WHERE job_id > $j0;
SELECT 'T|' || count(*) FROM j;
SELECT 'P|' || count(*) FROM pg_prepared_xacts;
SELECT 'O|' || count(*) FROM csvpipe.chunks c
  WHERE NOT EXISTS (SELECT 1 FROM csvpipe.job x WHERE x.job_id = c.job_id);
}));
}

sub big_call
{
	my ($mode) = @_;
	return "csvpipe.load('$big', 'j', workers => 4, chunk_size => 65536, mode => '$mode', header => true)";
}

# One cancelled (or not) load of big.csv in $mode: did the client's answer
# and what csvpipe recorded agree, and does the client's retry end with
# exactly COPY's rows?  Returns ($outcome, @why): $outcome 'returned',
# 'no job', or the job's state (csvpipe.jobs) at the ERROR.
sub judge
{
	my ($mode, $j0, $err, $r) = @_;
	my $o = look_after($j0);
	my @why;
	my @jobs = @{ $o->{J} // [] };
	my ($nchunks, $chunk_rows) = split /\|/, ($o->{C}[0] // '?|?');
	my $table = $o->{T}[0] // '?';
	my ($id, $state, $jerr) = @jobs ? split(/\|/, $jobs[0], 4) : ();
	my $retry;
	if ($r->{R})
	{
		push @why, "returned $r->{R}[0] but table holds $table" if $table ne $nbig;
		push @why, "returned but job is @jobs" if @jobs != 1 || $state ne 'done';
		push @why, "returned but the ledger lists $chunk_rows rows"
		  if $mode eq 'chunked' && $chunk_rows ne $nbig;
	}
	else
	{
		my ($msg) = $err =~ /ERROR:\s+57014: ([^\n]*)/;
		push @why, "error: $err" unless defined $msg;
		if (!@jobs)
		{
			push @why, "no job row, but table $table, ledger $nchunks chunks"
			  if $table ne '0' || $nchunks ne '0';
			$retry = big_call($mode);
		}
		else
		{
			push @why, "job $id is '$state' when the ERROR returned"
			  if $state eq 'done' || $state eq 'running';
			push @why, "job $id records '$jerr', the client got '" . ($msg // '') . "'"
			  if $state ne 'rolled back' && (!defined $msg || $jerr ne $msg);
			my $want = $mode eq 'chunked' ? $chunk_rows : '0';
			push @why, "table holds $table rows, expected $want" if $table ne $want;
			push @why, "$mode: ledger lists $nchunks chunks"
			  if $mode ne 'chunked' && $nchunks ne '0';
			$retry = $mode eq 'chunked' ? "csvpipe.resume($id)" : big_call($mode);
		}
	}
	push @why, ($o->{P}[0] // '?') . " prepared transactions left" if ($o->{P}[0] // '?') ne '0';
	push @why, ($o->{O}[0] // '?') . " ledger rows of no job" if ($o->{O}[0] // '?') ne '0';

	# the client's retry: exactly COPY's rows afterwards
	if (!@why)
	{
		my ($ret, $out, $rerr) = $node->psql('postgres',
			($retry ? "SET ROLE alice; SELECT rows_loaded FROM $retry; RESET ROLE;" : '') . $diff_sql);
		my @l = split /\n/, $out;
		push @why, "retry: $rerr" if $ret != 0;
		push @why, "after " . ($retry ? 'the retry' : 'success') . ": j has count:checksum $l[-1], COPY $copy_sum"
		  if ($l[-1] // '') ne $copy_sum;
	}
	return ($r->{R} ? 'returned' : @jobs ? $state : 'no job', @why);
}

my %bad_cancels;
my %outcomes;
my $n_runs = 0;
my %phase;
my $steps = $ENV{CSVPIPE_CANCEL_STEPS} // 20;
for my $mode ('chunked', 'prepared', 'transaction')
{
	my $call = big_call($mode);
	# how long this load takes here and now: the sweep spans it
	sql('TRUNCATE j');
	my $t0 = Time::HiRes::time();
	sql("SELECT * FROM $call");
	my $took = int((Time::HiRes::time() - $t0) * 1000);
	my @delays = map { int($_ * $took * 1.25 / $steps) } 0 .. $steps;
	note("$mode: a load takes $took ms; cancels at @delays ms");
	for my $kind ('cancel', 'timeout')
	{
		for my $ms (@delays)
		{
			my $app = "race_" . ++$n_runs;
			my $j0 = sql('SELECT last_value FROM csvpipe.job_id_seq');
			sql('TRUNCATE j');
			my $canceller = $kind eq 'cancel' ? start_canceller($app, $ms) : undef;
			my $pre = $kind eq 'timeout' ? "SET statement_timeout = '" . ($ms || 1) . "ms';" : '';
			my ($err, $r) = load_alone($app, $call, $pre);
			my $sent = $canceller ? $canceller->() : '';
			my ($outcome, @why) = judge($mode, $j0, $err, $r);
			$outcomes{$outcome}++;
			$phase{$outcome}{$ms}++;
			$bad_cancels{"$mode $kind ${ms}ms"} = join('; ', @why) . " [$sent]\n$err" if @why;
		}
	}
}
note("cancel sweep: $n_runs loads: " . join(', ', map { "$outcomes{$_} $_" } sort keys %outcomes));
note(join("\n", map { my $p = $_; "  $p at: " . join(' ', map { "$_=$phase{$p}{$_}" } sort { $a <=> $b } keys %{ $phase{$p} }) } sort keys %phase));
is(scalar(keys %bad_cancels), 0,
	'a cancel or statement_timeout at any moment: success with every row, or the ERROR and a job that is not done with exactly its committed rows; the retry loads each row once')
  or diag(join("\n", map { "$_: $bad_cancels{$_}" } sort keys %bad_cancels));
ok(($outcomes{returned} // 0) > 0 && ($outcomes{cancelled} // 0) > 0,
	"the sweep saw loads that finished and loads cancelled midway");

# ---------------------------------------------------------------------------
# 2b. a cancel in the rest of the load's statement, after the load returned
# ---------------------------------------------------------------------------
# The statement goes on after the load returned (pg_sleep in its target
# list), and the cancel -- from another session, or statement_timeout --
# comes then.  That work must stay cancellable (held cancels would let any
# loading role run statements no admin or statement_timeout can stop;
# 086), so the statement is an ERROR; chunked and prepared loads committed
# on their own: every row stays and the job says 'done' (doc/reference.md,
# "What each mode guarantees when something dies"), as after a DO block's
# later work fails.  Transaction mode: the ERROR rolls the rows back, and
# the job says 'rolled back'.
{
	my %bad;
	# the statement takes a number from this sequence once the load has
	# returned its row (no rollback undoes that): whether the timeout came
	# after the load returned or in it
	sql('CREATE SEQUENCE load_returned; GRANT USAGE ON SEQUENCE load_returned TO alice');
	my $returned_sql = 'SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM load_returned';
	for my $mode ('chunked', 'prepared', 'transaction')
	{
		for my $kind ('cancel', 'timeout')
		{
			my $app = "race_" . ++$n_runs;
			my $j0 = sql('SELECT last_value FROM csvpipe.job_id_seq');
			sql('TRUNCATE j');
			my $returned0 = sql($returned_sql);
			my $canceller = $kind eq 'cancel' ? start_canceller($app, 'sleep') : undef;
			my $pre = $kind eq 'timeout' ? "SET statement_timeout = '2s';" : '';
			my ($err, $r) = load_alone($app, big_call($mode), $pre,
				"SELECT 'R', job_id, rows_loaded, nextval('load_returned'), pg_sleep("
				  . ($kind eq 'timeout' ? 3 : 30) . ") FROM %s");
			my $sent = $canceller ? $canceller->() : '';
			my @why;
			# a load slower than the timeout is cancelled itself: the sweep's
			# case (this checked for no 57014 at all, so such a load, 57014
			# and its job cancelled, failed here)
			if ($kind eq 'timeout' && sql($returned_sql) eq $returned0)
			{
				note("$mode $kind: the load itself took longer than the timeout");
				next;
			}
			push @why, "no cancel ERROR: $err" unless $err =~ /ERROR:\s+57014/;
			my $o = look_after($j0);
			my ($id, $state) = split(/\|/, ($o->{J}[0] // '?|?'), 3);
			my $want_state = $mode eq 'transaction' ? 'rolled back' : 'done';
			my $want_rows = $mode eq 'transaction' ? 0 : $nbig;
			push @why, "job is '$state', not '$want_state'" if $state ne $want_state;
			push @why, "table holds $o->{T}[0], not $want_rows" if ($o->{T}[0] // '?') ne $want_rows;
			push @why, "$o->{P}[0] prepared transactions left" if ($o->{P}[0] // '?') ne '0';
			$bad{"$mode $kind"} = join('; ', @why) . " [$sent]\n$err" if @why;
		}
	}
	is(scalar(keys %bad), 0,
		'a cancel after the load returned, in the rest of its statement: an ERROR; chunked and prepared stay committed and done, transaction mode rolls back')
	  or diag(join("\n", map { "$_: $bad{$_}" } sort keys %bad));

	# the hold ends with the statement: the session's next statement, and a
	# load's statement inside a DO block, can be cancelled as usual
	my $app = "race_" . ++$n_runs;
	my $j0 = sql('SELECT last_value FROM csvpipe.job_id_seq');
	sql('TRUNCATE j');
	my $canceller = start_canceller($app, 'sleep');
	my ($ret, $out, $err) = $node->psql('postgres', qq{
SET application_name = '$app';
SET ROLE alice;
SELECT rows_loaded FROM } . big_call('chunked') . qq{;
SELECT pg_sleep(30) AS "csvpipe.load(";
}, on_error_stop => 0);
	$canceller->();
	like($err, qr/canceling statement due to user request/,
		'the statement after the load can be cancelled');
	like($out, qr/^$nbig$/m, '... the load before it returned its rows');

	$app = "race_" . ++$n_runs;
	sql('TRUNCATE j');
	$canceller = start_canceller($app, 'sleep');
	my $t0 = Time::HiRes::time();
	($ret, $out, $err) = $node->psql('postgres', qq{
SET application_name = '$app';
SET ROLE alice;
DO \$\$ BEGIN PERFORM } . big_call('chunked') . qq{; PERFORM pg_sleep(30); END \$\$;
}, on_error_stop => 0);
	$canceller->();
	like($err, qr/canceling statement due to user request/,
		'a DO block\'s work after a load can be cancelled');
	ok(Time::HiRes::time() - $t0 < 20, '... at once');
}

# ---------------------------------------------------------------------------
# 3. a cancel once every chunk is committed is too late: success
# ---------------------------------------------------------------------------
# synchronous_commit = on: each worker ends by waiting for its commits to
# reach the synchronous standby, which does not exist; the statement
# timeout fires while the leader waits for them.  The caller's own commit
# may wait for the standby too (nextval of the job id can write WAL): the
# test cancels that wait, as a user would, once the load has returned.
my $small = write_file('small.csv', "id,name\n" . join('', map { "$_,name$_\n" } 1 .. 3000));
{
	my ($err, $o) = load_and_look_bg(
		# only a client backend's commit waits for the standby (the load's
		# leader never does): cancel that wait
		sub {
			state $last = 0;
			return if $_[0] - $last < 0.3;
			$last = $_[0];
			cancel_load("wait_event = 'SyncRep'");
		},
		"csvpipe.load('$small', 'j', workers => 2, chunk_size => 4096, atomic => false, header => true)",
		pre => "SET synchronous_commit = on; SET statement_timeout = '3s';",
		post => "RESET statement_timeout; SET synchronous_commit = local;");
	my %o = %$o;
	my ($jid, $loaded) = split /\|/, ($o{R}[0] // '|');
	is($loaded, '3000', 'cancel after the last chunk committed: the load returns its result')
	  or diag($err);
	like($err, qr/WARNING:\s+(?:\w+:\s+)?csvpipe\.load was cancelled after/,
		'... with a warning that the commits may not have reached the standby');
	is($o{T}[0], '3000', '... every row is in the table');
	like($o{J}[0] // '', qr/^\d+\|done\|<null>\|alice$/, '... and the job is done');
	my ($nchunks, $chunk_rows) = split /\|/, ($o{C}[0] // '?|?');
	is($chunk_rows, '3000', '... the ledger lists every row');
}

# ---------------------------------------------------------------------------
# 4. a transaction-mode load whose transaction rolls back: csvpipe.jobs,
#    csvpipe.wait and csvpipe.resume say the same
# ---------------------------------------------------------------------------
# The job row says 'done' (its rows were in the caller's transaction); the
# job's load_xid tells the transaction's fate.  csvpipe.jobs said 'rolled
# back', but wait returned 'done' and resume refused an 'already done' job.
{
	my $call = "csvpipe.load('$small', 'j', workers => 2, chunk_size => 4096, mode => 'transaction', header => true)";
	my $copy = sql("TRUNCATE j; COPY j FROM '$small' (FORMAT csv, HEADER true); $sum_sql j");
	for my $how ('ROLLBACK', 'ROLLBACK TO SAVEPOINT')
	{
		sql('TRUNCATE j');
		my $id = sql(qq{SET ROLE alice; BEGIN; SAVEPOINT s;
SELECT job_id FROM $call;
} . ($how eq 'ROLLBACK' ? 'ROLLBACK;' : 'ROLLBACK TO SAVEPOINT s; COMMIT;'));
		is(sql("SELECT state FROM csvpipe.jobs WHERE job_id = $id"), 'rolled back',
			"$how: csvpipe.jobs says 'rolled back'");
		is(sql("SELECT csvpipe.wait($id)"), 'rolled back', "$how: csvpipe.wait says 'rolled back'");
		my ($ret, $out, $err) = $node->psql('postgres',
			"SET ROLE alice; SELECT rows_loaded FROM csvpipe.resume($id)");
		is($out, '3000', "$how: csvpipe.resume loads it again") or diag($err);
		is(sql("$sum_sql j"), $copy, '... exactly COPY\'s rows');
		is(sql("SELECT csvpipe.wait($id)"), 'done', '... and the job is done');
	}

	# while the loading transaction is open, wait waits for its end, and
	# resume refuses; then each says what became of it
	for my $end ('ROLLBACK', 'COMMIT')
	{
		sql('TRUNCATE j');
		my $bg = $node->background_psql('postgres', on_error_stop => 0);
		$bg->query_safe('SET ROLE alice; BEGIN');
		my $id = $bg->query_safe("SELECT job_id FROM $call");
		my ($in, $wout, $werr) = ('', '', '');
		my $waiter = IPC::Run::start(
			[ $node->installed_command('psql'), '-XAtq', '-d', $node->connstr('postgres'),
				'-c', "SELECT csvpipe.wait($id)" ],
			'<', \$in, '>', \$wout, '2>', \$werr);
		Time::HiRes::usleep(500_000);
		$waiter->pump_nb;
		is($wout, '', "open transaction, then $end: wait has not returned yet");
		my ($ret, $out, $err) = $node->psql('postgres',
			"SET ROLE alice; SELECT rows_loaded FROM csvpipe.resume($id)");
		like($err, qr/is done in a transaction that has not ended yet/, '... resume refuses');
		$bg->query_safe($end);
		$bg->quit;
		$waiter->finish;
		is($wout, ($end eq 'COMMIT' ? 'done' : 'rolled back') . "\n", "... wait then says what became of it")
		  or diag($werr);
	}
}

# ---------------------------------------------------------------------------
# 5. a coordinator terminated on the error path is started again
# ---------------------------------------------------------------------------
# A failed load's leader has a coordinator record the job's end (and roll
# back a prepared load's parts) before the ERROR reaches the client.  The
# coordinator is held on a lock (csvpipe.rejected, which its UPDATE reads
# and a stop-mode load never touches) and terminated; then the lock goes.
# It used to end there: the ERROR, and the job 'running' for as long as
# the session lived (resume refused it: "still running"), a prepared
# load's parts left for the launcher.
{
	my %bad;
	for my $mode ('chunked', 'prepared', 'transaction')
	{
		my $j0 = sql('SELECT last_value FROM csvpipe.job_id_seq');
		sql('TRUNCATE j');
		my $locker = $node->background_psql('postgres', on_error_stop => 0);
		$locker->query_safe('BEGIN; LOCK TABLE csvpipe.rejected IN ACCESS EXCLUSIVE MODE');
		my ($in, $out, $err) = ('', '', '');
		my $h = IPC::Run::start(
			[ $node->installed_command('psql'), '-XAtq', '-v', 'VERBOSITY=verbose', '-d', $node->connstr('postgres'),
				'-c', "SET ROLE alice; SELECT job_id FROM csvpipe.load('$bad', 'j', workers => 4, chunk_size => 64, mode => '$mode', header => true)" ],
			'<', \$in, '>', \$out, '2>', \$err);
		my @why;
		my $killed = 0;
		for my $try (1 .. 2)
		{
			# the coordinator, waiting for the lock (within 10 s): terminate
			# it; twice, so the leader has to start a third
			my $waiting = 0;
			for (1 .. 100)
			{
				$waiting = sql(q{SELECT count(*) FROM pg_stat_activity
					WHERE backend_type = 'csvpipe coordinator' AND wait_event_type = 'Lock'});
				last if $waiting;
				Time::HiRes::usleep(100_000);
			}
			last unless $waiting;
			$killed += sql(q{SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
				WHERE backend_type = 'csvpipe coordinator'});
		}
		push @why, "$killed coordinators waited on the lock, not 2" unless $killed == 2;
		$locker->query_safe('COMMIT');
		$locker->quit;
		$h->finish;
		my ($msg) = $err =~ /ERROR:\s+22P04: ([^\n]*)/;
		push @why, "not the load's error: $err" unless defined $msg;
		my $o = look_after($j0);
		my ($id, $state, $jerr) = split /\|/, ($o->{J}[0] // '||');
		push @why, "job is '$state' when the ERROR returned" if $state ne 'failed';
		push @why, "job records '$jerr', the client got '" . ($msg // '') . "'"
		  if !defined $msg || $jerr ne $msg;
		push @why, ($o->{P}[0] // '?') . " prepared transactions left" if ($o->{P}[0] // '?') ne '0';
		my ($nchunks, $chunk_rows) = split /\|/, ($o->{C}[0] // '?|?');
		my $want = $mode eq 'chunked' ? $chunk_rows : '0';
		push @why, "table holds $o->{T}[0] rows, expected $want" if ($o->{T}[0] // '?') ne $want;
		$bad{$mode} = join('; ', @why) . " ($killed terminated)" if @why;
	}
	is(scalar(keys %bad), 0,
		'a coordinator terminated on the error path: another records the job failed with its error before the ERROR returns')
	  or diag(join("\n", map { "$_: $bad{$_}" } sort keys %bad));
}

$node->stop;
done_testing();
