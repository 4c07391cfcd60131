# 120_sharded.pl -- loads into a table sharded over postgres_fdw (issue 14):
# a coordinator whose `sales` is hash-partitioned into two local partitions
# and one foreign partition on each of two shard clusters
# (test/perl/CsvpipeShards.pm).  Every mode's outcome on every server equals
# COPY's.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use CsvpipeShards;

my $gen = $ENV{CSVPIPE_GEN_CSV} // 'test/gen/gen_csv';
my $dir = PostgreSQL::Test::Utils::tempdir;

my $s = CsvpipeShards->new(name => 's120');
$s->create_sharded('sales');

system("$gen narrow 40000 7 > $dir/sales.csv") == 0 or die;
my $expect = $s->copy_expected('sales', "$dir/sales.csv");
cmp_ok((split / /, $expect->{r1})[0], '>', 5000, 'COPY puts rows on shard r1');

for my $mode (qw(transaction chunked))
{
	$s->sql_as('loader', "SELECT csvpipe.load('$dir/sales.csv', 'sales', mode => '$mode', workers => 2, chunk_size => 200000)");
	$s->is_like('sales', $expect, "mode $mode, loader");
	$s->truncate_table('sales');
}

done_testing();
