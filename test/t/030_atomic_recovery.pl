# 030_atomic_recovery.pl -- atomic loads across failures: a key duplicated
# in two chunks is an error, not a hang; prepared parts left by a crash are
# resolved at the next start from the job's recorded decision; a crash in the
# middle of an atomic load leaves the target untouched.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $gen = $ENV{CSVPIPE_GEN_CSV} // 'test/gen/gen_csv';
my $dir = PostgreSQL::Test::Utils::tempdir;

my $node = PostgreSQL::Test::Cluster->new('atomic');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'csvpipe'
max_prepared_transactions = 8
timezone = 'UTC'
});
$node->start;
sub sql { return $node->safe_psql('postgres', $_[0]); }
sql('CREATE EXTENSION csvpipe');

my $narrow = 'id bigint, ts timestamptz, name text, amount numeric(12,2), flag boolean';

# the same keys in two chunks, each chunk on its own worker: the first half
# of the file is rows 1..10000, the second half the same rows again
system("$gen narrow 10000 3 > $dir/half.csv") == 0 or die;
system("cp $dir/half.csv $dir/dup.csv && tail -n +2 $dir/half.csv >> $dir/dup.csv") == 0 or die;
my $half = (-s "$dir/half.csv") - length("id,ts,name,amount,flag\n");
sql("CREATE TABLE pk_target ($narrow, PRIMARY KEY (id))");
my ($ret, $out, $err) = $node->psql('postgres',
	"SELECT csvpipe.load('$dir/dup.csv', 'pk_target', workers => 2, mode => 'prepared', chunk_size => $half)",
	timeout => 60);
like($err, qr/waits for a row that another part of the same atomic load inserted/,
	'atomic: keys duplicated across workers are reported, not a hang');
is(sql("SELECT count(*) FROM pk_target"), '0', 'atomic: nothing loaded');
$node->poll_query_until('postgres', "SELECT count(*) = 0 FROM pg_prepared_xacts")
  or die;
pass('atomic: no prepared transaction left');

# a wait between parts that ends is not a hang: a trigger holds a session
# advisory lock for 2.5 s in worker 0's chunk while worker 1 wants it (the
# leader checks once a second), and two workers extending a plain table
# wait for each other's relation extension lock all the time
sql(q{CREATE TABLE slow_target (id bigint, ts timestamptz, name text, amount numeric(12,2), flag boolean);
CREATE FUNCTION hold_lock() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF NEW.id = 1 THEN
    PERFORM pg_advisory_lock(4242); PERFORM pg_sleep(2.5); PERFORM pg_advisory_unlock(4242);
  ELSIF NEW.id = 5001 THEN
    PERFORM pg_sleep(0.3); PERFORM pg_advisory_lock(4242); PERFORM pg_advisory_unlock(4242);
  END IF;
  RETURN NEW;
END $$;
CREATE TRIGGER hold_lock BEFORE INSERT ON slow_target FOR EACH ROW EXECUTE FUNCTION hold_lock();});
my $half5k = 0;
{
	open(my $fh, '<', "$dir/half.csv") or die;
	my $hdr = <$fh>;
	while (my $l = <$fh>) { last if $l =~ /^5001,/; $half5k += length($l); }
	close $fh;
}
($ret, $out, $err) = $node->psql('postgres',
	"SELECT rows_loaded FROM csvpipe.load('$dir/half.csv', 'slow_target', workers => 2, mode => 'prepared', chunk_size => $half5k)",
	timeout => 60);
is("$out|$err", '10000|', 'atomic: a worker waiting 2.5 s for another part\'s session lock is not reported as a hang');
is(sql("SELECT count(*) FROM slow_target"), '10000', 'atomic: every row loaded');

# within one worker it is a plain unique violation, with the line
($ret, $out, $err) = $node->psql('postgres',
	"SELECT csvpipe.load('$dir/dup.csv', 'pk_target', workers => 1, mode => 'prepared')", timeout => 60);
like($err, qr/duplicate key value violates unique constraint.*line 10002/s,
	'atomic, one worker: the unique violation names the first duplicate line');

($ret, $out, $err) = $node->psql('postgres',
	"SELECT csvpipe.load('$dir/dup.csv', 'pk_target', workers => 2, atomic => false, chunk_size => $half)",
	timeout => 60);
like($err, qr/duplicate key value violates unique constraint.*csvpipe.load "pk_target", line \d+/s,
	'chunked: the unique violation names the line');

# prepared parts left by a crash: one job decided "commit", one undecided
sql("CREATE TABLE orphan (id int)");
sql("INSERT INTO csvpipe.job (job_id, path, target, state, decision, gid_nonce, commit_parts) "
	  . "VALUES (900001, '/x', 'orphan'::regclass, 'running', 'commit', 'n1', '{0,1}'), "
	  . "       (900002, '/y', 'orphan'::regclass, 'running', NULL, 'n2', NULL)");
# a part's name: csvpipe_<database oid>_<job>_<worker>_<tag of the job's nonce>
sub part_gid
{
	my ($job, $nonce, $w) = @_;
	return sql("SELECT format('csvpipe_%s_%s_%s_%s', d.oid, $job, $w, "
		  . "left(encode(sha256(convert_to(format('%s:%s:%s:%s', '$nonce', d.oid, $job, $w), 'UTF8')), 'hex'), 16)) "
		  . "FROM pg_database d WHERE d.datname = current_database()");
}
my ($g1, $g2, $g3) = (part_gid(900001, 'n1', 0), part_gid(900001, 'n1', 1), part_gid(900002, 'n2', 0));
sql("BEGIN; INSERT INTO orphan VALUES (1); PREPARE TRANSACTION '$g1'");
sql("BEGIN; INSERT INTO orphan VALUES (2); PREPARE TRANSACTION '$g2'");
sql("BEGIN; INSERT INTO orphan VALUES (3); PREPARE TRANSACTION '$g3'");
$node->stop('immediate');
$node->start;
$node->poll_query_until('postgres', "SELECT count(*) = 0 FROM pg_prepared_xacts")
  or die "prepared transactions were not resolved";
pass('at start, the recovery worker resolved every orphaned part');
is(sql("SELECT string_agg(id::text, ',' ORDER BY id) FROM orphan"), '1,2',
	'the job decided "commit" was committed, the undecided one rolled back');
is(sql("SELECT state || ',' || decision FROM csvpipe.job WHERE job_id = 900002"), 'failed,rollback',
	'the undecided job is recorded as failed and rolled back');
like(slurp_file($node->logfile), qr/resolved the prepared transactions of 2 interrupted atomic load/,
	'the server log says so');

# a crash in the middle of an atomic load leaves the target as it was
system("$gen narrow 3000000 4 > $dir/big.csv") == 0 or die;
sql("CREATE TABLE crash_target ($narrow)");
my $bg = $node->background_psql('postgres', on_error_stop => 0);
$bg->query_until(qr/started/, qq{\\echo started
SELECT csvpipe.load('$dir/big.csv', 'crash_target', workers => 2, mode => 'prepared', chunk_size => 1000000);
});
$node->poll_query_until('postgres',
	"SELECT count(*) > 0 FROM csvpipe.job WHERE path = '$dir/big.csv' AND state = 'running'")
  or die "the load did not start";
$node->stop('immediate');
eval { $bg->quit; };
$node->start;
$node->poll_query_until('postgres', "SELECT count(*) = 0 FROM pg_prepared_xacts") or die;
is(sql("SELECT count(*) FROM crash_target"), '0', 'crash during an atomic load: the target is untouched');
is(sql("SELECT leader_gone FROM csvpipe.jobs WHERE path = '$dir/big.csv'"), 't',
	'the interrupted job shows its leader is gone');

# resolve_prepared is for superusers
sql("CREATE ROLE plain LOGIN");
($ret, $out, $err) = $node->psql('postgres', "SET ROLE plain; SELECT csvpipe.resolve_prepared()");
like($err, qr/only superusers can resolve/, 'resolve_prepared needs superuser');

$node->stop;
done_testing();
