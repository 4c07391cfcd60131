# test/bench/sharded.pl -- the driver of test/bench/sharded.sh (run it
# through that script, which builds, generates the files and sets the
# environment below).  A coordinator and two postgres_fdw shard clusters
# from test/perl/CsvpipeShards.pm: `sales` PARTITION BY HASH (id), two
# local partitions and one foreign partition on each shard (batch_size
# $BATCH_SIZE).  For each file, ROUNDS rounds of, in this order:
#
#   COPY sales FROM '<file>' (FORMAT csv, HEADER)                the reference
#   INSERT INTO sales SELECT * FROM csvpipe.read('<file>') AS t(...)
#   INSERT INTO sales SELECT * FROM csvpipe.read('<file>', cache => false) AS t(...)
#   csvpipe.load(..., mode => 'transaction', workers => 1 | 2)
#   csvpipe.load(..., mode => 'chunked', workers => 1 | 2)
#
# each after the table was emptied on every server, a CHECKPOINT on every
# server and a read of the file (untimed).  Times are psql's \timing of the
# statement; every run is checked (the rows on the coordinator's partitions
# and on each shard add up to the file's).  Writes the report (markdown) to
# $REPORT.
#
# The coordinator preloads csvpipe, so from the second round on the plain
# INSERT ... SELECT reads the file's rows from the result cache (when they
# fit in it) and parses nothing, where COPY and csvpipe.load parse the
# file every time; the cache => false statement is what a file seen for
# the first time costs.  The report gives the ratio to each, and the CPU
# time the machine spent busy during each statement (all cores, all
# clusters' processes; /proc/stat): a statement whose CPU busy is near
# cores x time is CPU-bound, one well below it waits on something.
#
# Environment: BENCH_FILES ("ROWS:PATH ..."), ROUNDS, REPORT, BATCH_SIZE,
# SHARED_BUFFERS, BENCH_WORKERS ("1 2").
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use CsvpipeShards;

my $rounds = $ENV{ROUNDS} // 3;
my $report = $ENV{REPORT} or die 'REPORT not set';
my $batch = $ENV{BATCH_SIZE} // 1000;
my $sb = $ENV{SHARED_BUFFERS} // '256MB';
my @workers = split ' ', ($ENV{BENCH_WORKERS} // '1 2');
my @files = map { [ split /:/, $_, 2 ] } split ' ', ($ENV{BENCH_FILES} // die 'BENCH_FILES not set');

# log_statement = none: PostgreSQL::Test::Cluster logs every statement,
# and on the shards that is every batch INSERT with its thousands of
# parameters -- time that would be measured too
my $conf = qq{
shared_buffers = '$sb'
max_wal_size = 8GB
checkpoint_timeout = 30min
jit = off
autovacuum = off
log_min_messages = warning
log_statement = none
};
my $s = CsvpipeShards->new(name => 'bench', coord_conf => $conf, shard_conf => $conf);
$s->create_sharded('sales', batch_size => $batch);
my $c = $s->coord;

# CPU time the whole machine spent busy (not idle, not waiting for I/O),
# in milliseconds, from /proc/stat: all the clusters' processes share it
sub cpu_busy_ms
{
	open my $st, '<', '/proc/stat' or return 0;
	my @f = split ' ', scalar <$st>;
	close $st;
	my ($user, $nice, $sys, $idle, $iowait, $irq, $softirq, $steal) = @f[1 .. 8];
	return ($user + $nice + $sys + $irq + $softirq + $steal) * 1000 / 100;    # USER_HZ
}

# one statement on the coordinator, timed by psql; returns milliseconds and
# the machine's busy CPU milliseconds over the psql run (it includes psql's
# start and connection, a few ms)
sub timed
{
	my ($sql) = @_;
	my $cpu0 = cpu_busy_ms();
	my ($ret, $out, $err) = $c->psql('postgres', "\\timing on\n$sql", on_error_stop => 1);
	my $cpu = cpu_busy_ms() - $cpu0;
	die "failed: $sql\n$err" if $ret != 0;
	my ($ms) = $out =~ /Time: ([\d.]+) ms/ or die "no timing for: $sql\n$out";
	return ($ms, $cpu);
}

sub median
{
	my @v = sort { $a <=> $b } @_;
	return @v % 2 ? $v[$#v / 2] : ($v[@v / 2 - 1] + $v[@v / 2]) / 2;
}

my $cols = $CsvpipeShards::NARROW;
my @lines;
push @lines, sprintf('%d cores; coordinator + %d shard clusters on this machine (unix sockets); '
	  . "sales: 2 local + %d postgres_fdw partitions, batch_size %d; shared_buffers %s each; %d round(s), medians",
	`nproc` + 0, $s->nshards, $s->nshards, $batch, $sb, $rounds);
push @lines, '';

for my $f (@files)
{
	my ($rows, $path) = @$f;
	my @sides = (
		[ 'COPY', "COPY sales FROM '$path' (FORMAT csv, HEADER)" ],
		[ 'INSERT ... SELECT FROM csvpipe.read', "INSERT INTO sales SELECT * FROM csvpipe.read('$path') AS t($cols)" ],
		[ 'INSERT ... SELECT, cache => false', "INSERT INTO sales SELECT * FROM csvpipe.read('$path', cache => false) AS t($cols)" ]);
	for my $mode (qw(transaction chunked))
	{
		push @sides, [ "load $mode, $_ w", "SELECT * FROM csvpipe.load('$path', 'sales', mode => '$mode', workers => $_)" ]
		  for @workers;
	}
	my (%t, %cpu);
	for my $r (1 .. $rounds)
	{
		for my $side (@sides)
		{
			my ($label, $sql) = @$side;
			$s->truncate_table('sales');
			$c->safe_psql('postgres', 'CHECKPOINT');
			$s->shard_sql($_, 'CHECKPOINT') for 1 .. $s->nshards;
			system("cat '$path' > /dev/null");
			my ($ms, $busy) = timed($sql);
			my $n = $s->counts('sales');
			die "$label: $n->{total} rows, expected $rows" unless $n->{total} == $rows;
			push @{ $t{$label} }, $ms;
			push @{ $cpu{$label} }, $busy;
			diag(sprintf('%s rows, round %d, %s: %.1f ms, CPU %.0f ms (local %d, %s)', $rows, $r, $label, $ms, $busy,
				$n->{local}, join(', ', map { "$_ $n->{$_}" } grep { /^r/ } sort keys %$n)));
		}
	}
	my $copy = median(@{ $t{COPY} });
	my $ins = median(@{ $t{'INSERT ... SELECT FROM csvpipe.read'} });
	my $insnc = median(@{ $t{'INSERT ... SELECT, cache => false'} });
	my $last = $s->counts('sales');
	push @lines, "| $rows rows (local $last->{local}, "
	  . join(', ', map { "$_ $last->{$_}" } grep { /^r\d/ } sort keys %$last)
	  . ') | time | x COPY | x INSERT ... SELECT | x INSERT ... SELECT, cache => false | CPU busy |';
	push @lines, '|---|---|---|---|---|---|';
	for my $side (@sides)
	{
		my $m = median(@{ $t{ $side->[0] } });
		push @lines, sprintf('| %s | %.0f ms | %.2f | %.2f | %.2f | %.0f ms |', $side->[0], $m, $copy / $m,
			$ins / $m, $insnc / $m, median(@{ $cpu{ $side->[0] } }));
	}
	push @lines, '';
}

open my $fh, '>', $report or die "$report: $!";
print $fh join("\n", @lines), "\n";
close $fh;

pass('benchmark done');
done_testing();
