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
#  - a cancel at any moment leaves either nothing at all
#    (before any worker started: no job) or a 'cancelled' job whose ledger
#    lists exactly the rows in the table;
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
SELECT 'R|' || job_id || '|' || rows_loaded FROM $call;
RESET ROLE;
$post
SELECT 'J|' || job_id || '|' || state || '|' || coalesce(error, '<null>') || '|' || submitted_by::regrole
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
# 2. cancels (pg_cancel_backend) at any moment of a larger load
# ---------------------------------------------------------------------------
my $big = write_file('big.csv', "id,name\n" . join('', map { "$_,name$_\n" } 1 .. 200000));
my %bad_cancels;
for my $t (0, 20, 50, 100, 200, 400)
{
	for my $atomic ('false', 'true')
	{
		my $mode = "cancel after ${t}ms atomic=$atomic";
		my $sent = 0;
		my ($err, $o) = load_and_look_bg(
			sub { $sent ||= cancel_load() if $_[0] * 1000 >= $t; },
			"csvpipe.load('$big', 'j', workers => 4, chunk_size => 65536, atomic => $atomic, header => true)");
		my @why;
		my @jobs = @{ $o->{J} // [] };
		my ($nchunks, $chunk_rows) = split /\|/, ($o->{C}[0] // '?|?');
		my $table = $o->{T}[0] // '?';
		if ($o->{R})
		{
			# finished before the timeout: done with every row
			push @why, "returned $o->{R}[0] but table holds $table" if $table ne '200000';
			push @why, "returned but job is @jobs" if @jobs != 1 || $jobs[0] !~ /\|done\|/;
		}
		elsif (@jobs == 0)
		{
			# cancelled before any worker started: nothing at all
			push @why, "no job row, but table $table, ledger $nchunks chunks"
			  if $table ne '0' || $nchunks ne '0';
		}
		else
		{
			my ($msg) = $err =~ /ERROR:\s+57014: ([^\n]*)/;
			my ($id, $state, $jerr) = split /\|/, $jobs[0], 4;
			push @why, "error: $err" unless defined $msg;
			push @why, "job $id is '$state' when the ERROR returned" if $state ne 'cancelled';
			push @why, "job $id records '$jerr', the client got '" . ($msg // '') . "'"
			  if !defined $msg || $jerr ne $msg;
			my $want = $atomic eq 'true' ? '0' : $chunk_rows;
			push @why, "table holds $table rows, expected $want" if $table ne $want;
			push @why, "atomic: ledger lists $nchunks chunks" if $atomic eq 'true' && $nchunks ne '0';
		}
		push @why, ($o->{P}[0] // '?') . " prepared transactions left" if ($o->{P}[0] // '?') ne '0';
		push @why, ($o->{O}[0] // '?') . " ledger rows of no job" if ($o->{O}[0] // '?') ne '0';
		$bad_cancels{$mode} = join('; ', @why) . "\n$err" if @why;
	}
}
is(scalar(keys %bad_cancels), 0,
	'a cancel at any moment: no job and nothing loaded, or the job cancelled with exactly its ledger\'s rows')
  or diag(join("\n", map { "$_: $bad_cancels{$_}" } sort keys %bad_cancels));

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

$node->stop;
done_testing();
