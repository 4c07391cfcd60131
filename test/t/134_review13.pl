# 134_review13.pl -- review of issue 13 (sniff, create_target, typed reads):
#
#  - a parallel transaction-mode load whose worker fails on a value the
#    sniffed types do not accept (a row beyond sniff's sample) fails with
#    that value's error, and returns: it used to hang for good, cancel
#    included, in about one run out of two -- the leader, erroring with
#    interrupts held, waited for the workers' exits while not reading their
#    reply queues, and a worker stopped while waiting on its full queue
#    waited for room there to send its FATAL report.  Run several times
#    (the hang is a race); each run must end within the timeout, with the
#    exact error, no row loaded and no worker left.
#
# Settings in postgresql.conf; role loader (pg_read_server_files, CREATE on
# schema public): not a superuser.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $dir = PostgreSQL::Test::Utils::tempdir;
chmod 0755, $dir;

# 300000 rows that the sniffer types from its 4MB sample, then one row that
# none of those types accepts: the error comes from the file's last chunk
# while the other workers are waiting on their full reply queues
open my $fh, '>', "$dir/late.csv" or die;
print $fh "id,zip,flag,day,amount,u,small\n";
for my $i (0 .. 299999)
{
	printf $fh "%d,%d,true,2020-01-%02d,%d.5,0a0b0c0d-0000-0000-0000-%012d,%d\n",
	  $i, 10000 + $i % 80000, 1 + $i % 28, $i % 100, $i, $i % 100;
}
print $fh "300000,00501,maybe,N/A,1e5,none,x\n";
close $fh;
chmod 0644, "$dir/late.csv";

my $node = PostgreSQL::Test::Cluster->new('review13');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'csvpipe'
csvpipe.allowed_dirs = '$dir'
max_worker_processes = 16
});
$node->start;

$node->safe_psql('postgres', q{
CREATE EXTENSION csvpipe;
CREATE ROLE loader LOGIN;
GRANT pg_read_server_files TO loader;
GRANT CREATE ON SCHEMA public TO loader;
});

my $err = qq{ERROR:  22P02: invalid input syntax for type boolean: "maybe"};
my $ctx = qq{csvpipe.load "$dir/late.csv", line 300002, column flag: "maybe"};

$node->safe_psql('postgres', q{
CREATE TABLE public.late (id bigint, zip bigint, flag boolean, day date,
						  amount numeric, u uuid, small bigint);
GRANT INSERT, SELECT ON public.late TO loader;
});

sub load_once
{
	my ($sql, $name) = @_;
	my ($stdout, $stderr, $timed_out);
	$node->psql('postgres', "\\set VERBOSITY verbose\n$sql",
		extra_params => [ '-U', 'loader' ],
		stdout => \$stdout, stderr => \$stderr,
		timeout => 60, timed_out => \$timed_out);
	ok(!$timed_out, "$name: returns");
	like($stderr, qr/\Q$err\E/, "$name: the value's error");
	like($stderr, qr/\Q$ctx\E/, "$name: its line and column");
	return $timed_out;
}

for my $run (1 .. 10)
{
	last if load_once(
		q{SELECT * FROM csvpipe.load('} . "$dir/late.csv" . q{', 'public.late', workers => 4);},
		"load workers 4, run $run");
}
load_once(
	q{BEGIN; SELECT * FROM csvpipe.load('} . "$dir/late.csv" . q{', 'fresh', create_target => true, workers => 4); ROLLBACK;},
	"create_target workers 4");

is($node->safe_psql('postgres', 'SELECT count(*) FROM public.late'), '0', 'no row loaded');
is($node->safe_psql('postgres', q{SELECT to_regclass('public.fresh') IS NULL}), 't', 'created table rolled back');
ok($node->poll_query_until('postgres',
		q{SELECT count(*) = 0 FROM pg_stat_activity WHERE backend_type = 'csvpipe worker'}),
	'no worker left');

$node->stop('immediate');
done_testing();
