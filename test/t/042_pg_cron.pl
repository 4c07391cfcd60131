# 042_pg_cron.pl -- csvpipe with the real pg_cron (postgresql-15-cron),
# preloaded beside it: a job scheduled every minute submits an incoming
# directory; files dropped there are loaded, each exactly once, although
# every run submits the whole directory again.  pg_cron 1.4 schedules by the
# minute, so this test takes about two minutes.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $gen = $ENV{CSVPIPE_GEN_CSV} // 'test/gen/gen_csv';
my $dir = PostgreSQL::Test::Utils::tempdir;
my $incoming = "$dir/incoming";
mkdir $incoming or die;

my $node = PostgreSQL::Test::Cluster->new('cron');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'csvpipe,pg_cron'
cron.database_name = 'postgres'
cron.use_background_workers = on
max_worker_processes = 24
max_prepared_transactions = 10
timezone = 'UTC'
});
$node->start;

sub sql { return $node->safe_psql('postgres', $_[0]); }

sub table_md5
{
	my ($table) = @_;
	return sql("SELECT count(*) || ' ' || coalesce(md5(string_agg(t::text, E'\\n' ORDER BY t::text)), '') FROM $table t");
}

# Files must appear whole: write them elsewhere, then rename them in.
sub drop_file
{
	my ($name, $rows, $seed) = @_;
	system("$gen narrow $rows $seed > $dir/$name.tmp") == 0 or die;
	rename("$dir/$name.tmp", "$incoming/$name") or die;
}

my $narrow = 'id bigint, ts timestamptz, name text, amount numeric(12,2), flag boolean';
sql('CREATE EXTENSION csvpipe; CREATE EXTENSION pg_cron');
sql("CREATE TABLE sales ($narrow); CREATE TABLE copy_sales ($narrow)");

my $cron_job = sql(qq{SELECT cron.schedule('load-incoming', '* * * * *',
  \$\$SELECT csvpipe.submit('$incoming/*.csv', 'sales')\$\$)});
like($cron_job, qr/^\d+$/, 'cron.schedule accepted the submit');

drop_file("a$_.csv", 20000 * $_, 500 + $_) for 1 .. 3;
$node->poll_query_until('postgres',
	"SELECT count(*) = 3 FROM csvpipe.jobs WHERE target = 'sales'::regclass AND state = 'done'")
  or die "the first files were not loaded: " . sql("SELECT string_agg(status || ' ' || coalesce(return_message, ''), '; ') FROM cron.job_run_details");
pass('pg_cron ran the submit and the launcher loaded the first three files');

drop_file("b$_.csv", 15000, 600 + $_) for 1 .. 2;
$node->poll_query_until('postgres',
	"SELECT count(*) = 5 FROM csvpipe.jobs WHERE target = 'sales'::regclass AND state = 'done'")
  or die "the next files were not loaded";
pass('files dropped later are loaded by a later run');

sql("COPY copy_sales FROM '$incoming/$_' (FORMAT csv, HEADER)") for qw(a1.csv a2.csv a3.csv b1.csv b2.csv);
is(table_md5('sales'), table_md5('copy_sales'), 'the table holds exactly the rows of the five files, once');
is( sql("SELECT count(*) || ' ' || count(DISTINCT path) FROM csvpipe.jobs WHERE target = 'sales'::regclass"),
	'5 5', 'one job per file, although every run submitted the whole directory');
is( sql("SELECT bool_and(state = 'done' AND rows_loaded > 0) FROM csvpipe.jobs WHERE target = 'sales'::regclass"),
	't', 'every job done');
cmp_ok(sql("SELECT count(*) FROM cron.job_run_details WHERE jobid = $cron_job AND status = 'succeeded'"),
	'>=', 2, 'pg_cron recorded at least two successful runs');
is(sql("SELECT count(*) FROM cron.job_run_details WHERE jobid = $cron_job AND status <> 'succeeded' AND status <> 'running' AND status <> 'starting'"),
	'0', 'no failed run');

sql("SELECT cron.unschedule('load-incoming')");
$node->stop;
done_testing();
