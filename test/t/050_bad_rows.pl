# 050_bad_rows.pl -- bad rows captured, failures retried, nothing lost:
# every class of bad row lands in csvpipe.errors with its line and SQLSTATE
# while the table equals COPY of the file without them; 'stop' names the
# first bad line; max_errors; a lock timeout is retried; workers terminated
# 20 times during a load lose nothing; a crash mid-load and csvpipe.resume
# give exactly COPY's rows.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $gen = $ENV{CSVPIPE_GEN_CSV} // 'test/gen/gen_csv';
my $dir = PostgreSQL::Test::Utils::tempdir;

my $node = PostgreSQL::Test::Cluster->new('badrows');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'csvpipe'
max_prepared_transactions = 10
max_worker_processes = 20
timezone = 'UTC'
});
$node->start;
sub sql { return $node->safe_psql('postgres', $_[0]); }
sql('CREATE EXTENSION csvpipe');

# ---- every class of bad row, in 'skip' mode ----
sql(q{
CREATE TABLE ref (code int PRIMARY KEY);
INSERT INTO ref SELECT g FROM generate_series(1, 10) g;
CREATE FUNCTION no_13() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN IF NEW.id = 13 THEN RAISE EXCEPTION 'trigger refuses id 13' USING ERRCODE = 'P0013'; END IF; RETURN NEW; END $$;
});
my $cols = 'id int PRIMARY KEY, name text NOT NULL, amount numeric CHECK (amount >= 0), code int REFERENCES ref';
# good rows are 1..40 except the bad ones below; line N+1 holds id N
my %bad = (
	3 => [qq{3,ab"c"d,1.5,1}, '22P04'],                      # quote inside an unquoted field
	5 => [qq{5,five,1.5}, '22P04'],                          # too few fields
	7 => [qq{7,seven,not-a-number,1}, '22P02'],              # type input
	9 => [qq{9,,1.5,1}, '23502'],                            # NOT NULL
	11 => [qq{11,eleven,-4,1}, '23514'],                     # CHECK
	13 => [qq{13,thirteen,1.5,1}, 'P0013'],                  # trigger error
	15 => [qq{2,dup of two,1.5,1}, '23505'],                 # unique violation
	17 => [qq{17,seventeen,1.5,99}, '23503'],                # foreign key
	19 => ["19,bad\xff\xfebyte,1.5,1", '22021'],             # encoding
	21 => [qq{21,"text"after,1.5,1}, '22P04'],               # text after closing quote
);
open(my $fh, '>', "$dir/bad.csv") or die;
open(my $gfh, '>', "$dir/good.csv") or die;
print $fh "id,name,amount,code\n";
print $gfh "id,name,amount,code\n";
for my $i (1 .. 40)
{
	if ($bad{$i})
	{
		print $fh "$bad{$i}[0]\n";
	}
	else
	{
		my $line = "$i,name $i,$i.25," . (($i % 10) + 1) . "\n";
		print $fh $line;
		print $gfh $line;
	}
}
close $fh;
close $gfh;

for my $t ('skip_load', 'skip_copy')
{
	sql("CREATE TABLE $t ($cols); CREATE TRIGGER no_13 BEFORE INSERT ON $t FOR EACH ROW EXECUTE FUNCTION no_13()");
}
sql("COPY skip_copy FROM '$dir/good.csv' (FORMAT csv, HEADER)");
for my $w (1, 2)
{
	sql("TRUNCATE skip_load");
	my $res = sql("SELECT rows_loaded || ' ' || rows_rejected || ' ' || job_id FROM csvpipe.load('$dir/bad.csv', 'skip_load', "
		  . "workers => $w, on_error => 'skip', atomic => false, chunk_size => 100)");
	my ($loaded, $rejected, $job) = split / /, $res;
	is($loaded, 30, "skip, $w workers: 30 good rows loaded");
	is($rejected, 10, "skip, $w workers: 10 rows rejected");
	is( sql("SELECT string_agg(t::text, ';' ORDER BY id) FROM skip_load t"),
		sql("SELECT string_agg(t::text, ';' ORDER BY id) FROM skip_copy t"),
		"skip, $w workers: the table equals COPY of the good rows");
	my $errors = sql("SELECT string_agg(line_no || ':' || sqlstate, ',' ORDER BY line_no) FROM csvpipe.errors WHERE job_id = $job");
	my $expect = join(',', map { ($_ + 1) . ":$bad{$_}[1]" } sort { $a <=> $b } keys %bad);
	is($errors, $expect, "skip, $w workers: each bad row with its line and SQLSTATE");
	is(sql("SELECT state || ' ' || rows_loaded || ' ' || rows_rejected FROM csvpipe.jobs WHERE job_id = $job"),
		'done 30 10', "skip, $w workers: the job records both counts");
}
is(sql("SELECT raw_record || ' | ' || column_name FROM csvpipe.errors WHERE line_no = 8 LIMIT 1"),
	'7,seven,not-a-number,1 | amount', 'a rejected row keeps its raw text and column');
is(sql("SELECT raw_record FROM csvpipe.errors WHERE line_no = 20 LIMIT 1"),
	'19,bad\xff\xfebyte,1.5,1', 'invalid bytes are kept escaped');
is(sql("SELECT byte_offset FROM csvpipe.errors WHERE line_no = 4 LIMIT 1"),
	length("id,name,amount,code\n1,name 1,1.25,2\n2,name 2,2.25,3\n"), 'byte offset of the bad row');

# atomic skip mode: same result
sql("TRUNCATE skip_load");
is(sql("SELECT rows_loaded || ' ' || rows_rejected FROM csvpipe.load('$dir/bad.csv', 'skip_load', workers => 2, on_error => 'skip', chunk_size => 100)"),
	'30 10', 'atomic skip: 30 loaded, 10 rejected');
is(sql("SELECT state || ' ' || rows_loaded || ' ' || rows_rejected FROM csvpipe.jobs ORDER BY job_id DESC LIMIT 1"),
	'done 30 10', 'atomic skip: the job records both counts');

# max_errors
sql("TRUNCATE skip_load");
my ($ret, $out, $err) = $node->psql('postgres',
	"SELECT csvpipe.load('$dir/bad.csv', 'skip_load', workers => 1, on_error => 'skip', max_errors => 5)");
like($err, qr/too many bad rows: more than max_errors \(5\)/, 'max_errors fails the job');
is(sql("SELECT count(*) FROM skip_load"), '0', 'max_errors (atomic): nothing stays');

# lone CR line ends: skip mode goes record by record; bad rows early in a
# chunk, then more good rows than one insert batch holds
open(my $crfh, '>', "$dir/cr.csv") or die;
print $crfh "id,name,amount,code\r";
for my $i (1 .. 10000)
{
	if ($i == 5) { print $crfh "$i,\"bad\"quote,1,1\r"; }
	elsif ($i == 7) { print $crfh "$i,short\r"; }
	else { print $crfh "$i,n$i,$i.5," . (($i % 10) + 1) . "\r"; }
}
close $crfh;
sql("CREATE TABLE cr_load (id int, name text, amount numeric, code int)");
is(sql("SELECT rows_loaded || ' ' || rows_rejected FROM csvpipe.load('$dir/cr.csv', 'cr_load', workers => 1, on_error => 'skip')"),
	'9998 2', 'CR line ends, skip mode: 9998 loaded, 2 rejected');
is(sql("SELECT count(*) || ' ' || sum(id) FROM cr_load"), '9998 ' . (50005000 - 12),
	'CR line ends, skip mode: exactly the good rows');

# 'stop' names the first bad line
($ret, $out, $err) = $node->psql('postgres',
	"SELECT csvpipe.load('$dir/bad.csv', 'skip_load', workers => 2)");
like($err, qr/malformed CSV.*line 4/s, "stop: the error names the first bad line");

# ---- a lock timeout is retried ----
system("$gen narrow 20000 5 > $dir/narrow.csv") == 0 or die;
my $narrow = 'id bigint, ts timestamptz, name text, amount numeric(12,2), flag boolean';
sql("CREATE TABLE locked ($narrow)");
my $locker = $node->background_psql('postgres');
$locker->query_safe("BEGIN; LOCK TABLE locked IN SHARE MODE;");
my $bg = $node->background_psql('postgres', on_error_stop => 0);
$bg->query_until(qr/started/, qq{\\echo started
SET lock_timeout = '100ms'; SET csvpipe.max_retries = 8; SET csvpipe.retry_delay = '100ms';
SELECT rows_loaded FROM csvpipe.load('$dir/narrow.csv', 'locked', workers => 2, atomic => false);
});
# hold the lock until a worker's wait for it has ended while it is still
# held -- by lock_timeout, so the load has a retry to count -- rather than
# for a fixed second the load may not even reach the lock in
$node->safe_psql('postgres', q{
DO $$
DECLARE p int; t0 timestamptz := clock_timestamp();
BEGIN
  LOOP
    SELECT pid INTO p FROM pg_locks
     WHERE relation = 'locked'::regclass AND NOT granted AND pid <> pg_backend_pid() LIMIT 1;
    EXIT WHEN p IS NOT NULL;
    IF clock_timestamp() - t0 > interval '60 s' THEN RAISE 'no worker waited for the lock'; END IF;
    PERFORM pg_sleep(0.001);
  END LOOP;
  WHILE EXISTS (SELECT FROM pg_locks WHERE pid = p AND relation = 'locked'::regclass AND NOT granted)
  LOOP
    IF clock_timestamp() - t0 > interval '60 s' THEN RAISE 'the lock wait did not time out'; END IF;
    PERFORM pg_sleep(0.001);
  END LOOP;
END $$;});
$locker->query_safe("COMMIT");
$locker->quit;
my $r = $bg->query('SELECT 1');
$bg->quit;
is(sql("SELECT count(*) FROM locked"), '20000', 'lock timeout: retried, the load completed');
ok(sql("SELECT retries FROM csvpipe.job WHERE target = 'locked'::regclass") > 0, 'the job counts its retries');

# ---- terminate a worker 20 times during a load: nothing lost ----
system("$gen narrow 1000000 6 > $dir/million.csv") == 0 or die;
sql("CREATE TABLE million_copy ($narrow); COPY million_copy FROM '$dir/million.csv' (FORMAT csv, HEADER)");
my $expect_md5 = sql("SELECT count(*) || ' ' || md5(string_agg(t::text, ',' ORDER BY id)) FROM million_copy t");
for my $atomic ('false', 'true')
{
	my $t = "million_$atomic";
	sql("CREATE TABLE $t ($narrow)");
	my $loader = $node->background_psql('postgres', on_error_stop => 0);
	$loader->query_until(qr/started/, qq{\\echo started
SET csvpipe.max_retries = 25; SET client_min_messages = warning;
SELECT rows_loaded FROM csvpipe.load('$dir/million.csv', '$t', workers => 3, atomic => $atomic, chunk_size => 200000);
\\echo finished
});
	my $kills = 0;
	for my $i (1 .. 400)
	{
		last if $kills >= 20;
		my $k = sql("SELECT count(pg_terminate_backend(pid)) FROM (SELECT pid FROM pg_stat_activity "
			  . "WHERE backend_type = 'csvpipe worker' ORDER BY random() LIMIT 1) s");
		$kills += $k;
		last if $k == 0 && sql("SELECT count(*) FROM pg_stat_activity WHERE query LIKE '%csvpipe.load(%million%' AND pid <> pg_backend_pid() AND state = 'active'") == 0;
		select(undef, undef, undef, 0.05);
	}
	my $said = $loader->query_until(qr/finished/, "\\echo finished\n");
	note("loader said: $loader->{stderr}");
	like($said, qr/^1000000$/m, "atomic $atomic: the load succeeded and counted every row")
	  or diag("the load's output: $said; its messages: $loader->{stderr}");
	$loader->quit;
	note("terminated $kills workers");
	ok($kills >= 5, "atomic $atomic: workers were terminated during the load ($kills)");
	is(sql("SELECT count(*) || ' ' || md5(string_agg(t::text, ',' ORDER BY id)) FROM $t t"), $expect_md5,
		"atomic $atomic: after $kills terminated workers the table equals COPY's");
}

# ---- crash mid-load, restart, resume (chunked): exactly COPY's rows ----
sql("CREATE TABLE resumed ($narrow)");
my $crash = $node->background_psql('postgres', on_error_stop => 0);
$crash->query_until(qr/started/, qq{\\echo started
SELECT csvpipe.load('$dir/million.csv', 'resumed', workers => 2, atomic => false, chunk_size => 300000);
});
$node->poll_query_until('postgres',
	"SELECT count(*) >= 3 FROM csvpipe.chunks c JOIN csvpipe.job j USING (job_id) WHERE j.target = 'resumed'::regclass")
  or die "the load did not progress";
$node->stop('immediate');
eval { $crash->quit; };
$node->start;
my $job = sql("SELECT job_id FROM csvpipe.job WHERE target = 'resumed'::regclass");
is(sql("SELECT state || ' ' || leader_gone FROM csvpipe.jobs WHERE job_id = $job"), 'running true',
	'after the crash the job shows running with its leader gone');
my $before = sql("SELECT count(*) FROM resumed");
ok($before > 0 && $before < 1000000, "some chunks were committed before the crash ($before rows)");
sql("SELECT csvpipe.resume($job)");
is(sql("SELECT count(*) || ' ' || md5(string_agg(t::text, ',' ORDER BY id)) FROM resumed t"), $expect_md5,
	'resume: the table equals COPY, no duplicate, no gap');
is(sql("SELECT state || ' ' || rows_loaded FROM csvpipe.jobs WHERE job_id = $job"), 'done 1000000',
	'resume: the job is done with every row counted');

# a changed file cannot be resumed
sql("UPDATE csvpipe.job SET state = 'failed' WHERE job_id = $job");
system("touch $dir/million.csv");
($ret, $out, $err) = $node->psql('postgres', "SELECT csvpipe.resume($job)");
like($err, qr/changed since csvpipe job $job started/, 'resume refuses a changed file');

$node->stop;
done_testing();
