# 122_sharded_review.pl -- an adversarial review of sharded targets (issue 14):
# what other roles, and faults, can do to a chunked load into a table with
# postgres_fdw partitions (test/perl/CsvpipeShards.pm: a coordinator and two
# shard clusters).
#
#  - the shard ledgers cannot be forged: a role that may write a ledger (every
#    loading role may: README "Sharded targets") and reads a victim's job id
#    and submission time in csvpipe.jobs cannot make csvpipe believe a shard
#    has a chunk it has not (rows silently missing there), nor squat the row
#    csvpipe is about to write.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use CsvpipeShards;

my $gen = $ENV{CSVPIPE_GEN_CSV} // 'test/gen/gen_csv';
my $dir = PostgreSQL::Test::Utils::tempdir;

my $s = CsvpipeShards->new(name => 's122');
my $c = $s->coord;
$s->create_sharded('sales');

my $nrows = 20000;
system("$gen narrow $nrows 11 > $dir/sales.csv") == 0 or die;
my $file = "$dir/sales.csv";
my $expect = $s->copy_expected('sales', $file);
my $load_opts = "workers => 2, chunk_size => 150000";

sub psql_as
{
	my ($role, $sql) = @_;
	my ($ret, $out, $err) = $c->psql('postgres', ($role ? "SET ROLE $role; " : '') . $sql);
	return ($ret, $out, $err);
}

# ---- forged ledger rows --------------------------------------------------------

# A load that fails part way (a local partition refuses rows of the second
# half of the file until told otherwise), so the job is 'failed' with some
# chunks committed on every server, and waits for csvpipe.resume.
$s->sql(q{
CREATE TABLE gate (closed boolean);
INSERT INTO gate VALUES (true);
GRANT SELECT ON gate TO PUBLIC;
CREATE FUNCTION gate() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF NEW.id > 12000 AND (SELECT closed FROM public.gate) THEN RAISE EXCEPTION 'gate closed'; END IF;
  RETURN NEW;
END $$;
CREATE TRIGGER gate BEFORE INSERT ON sales_p0 FOR EACH ROW EXECUTE FUNCTION gate();
});
my ($ret, $out, $err) = psql_as('loader',
	"SELECT csvpipe.load('$file', 'sales', mode => 'chunked', $load_opts)");
like($err, qr/gate closed/, 'victim: the first run fails');
my $job = $s->sql("SELECT max(job_id) FROM csvpipe.job");
is($s->sql("SELECT state FROM csvpipe.jobs WHERE job_id = $job"), 'failed', 'victim: job failed');

my $dboid = $s->sql("SELECT oid FROM pg_database WHERE datname = 'postgres'");
cmp_ok($s->ledger_rows(1, "job LIKE '%/$dboid/$job/%'"), '>', 0, 'victim: some chunks committed on r1');

# writer: no file privilege, INSERT on the ledgers as every loading role.
# Everything in the job's name on the shards is public: the system
# identifier, the database oid, the job id and its submission time.
$s->sql_as('writer', qq{
INSERT INTO csvpipe_ledger_r1 (job, chunk_no, rows)
SELECT (pg_control_system()).system_identifier || '/' || d.oid || '/' || j.job_id || '/'
       || (extract(epoch FROM j.submitted_at) * 1000000)::bigint, n, 0
  FROM csvpipe.jobs j, pg_database d, generate_series(0, 999) n
 WHERE j.job_id = $job AND d.datname = current_database();
});
# and every ledger row of the job the shard shows, copied for every chunk
$s->sql_as('writer', qq{
INSERT INTO csvpipe_ledger_r1 (job, chunk_no, rows)
SELECT DISTINCT l.job, n, 0
  FROM csvpipe_ledger_r1 l, generate_series(0, 999) n
 WHERE l.job LIKE '%/' || (SELECT oid FROM pg_database WHERE datname = current_database())
                   || '/$job/%/%'
ON CONFLICT DO NOTHING;
});
cmp_ok($s->ledger_rows(1), '>', 1000, 'writer forged ledger rows on r1');
$s->sql('UPDATE gate SET closed = false');
$s->sql_as('loader', "SELECT csvpipe.resume($job)");
is($s->sql("SELECT state || ' ' || rows_loaded FROM csvpipe.jobs WHERE job_id = $job"), "done $nrows",
	'victim: resume finishes the job');
my $got = $s->counts('sales');
is($got->{total}, $nrows, 'forged ledger rows: every row is loaded');
$s->is_like('sales', $expect, 'forged ledger rows');
$s->truncate_table('sales');

done_testing();
