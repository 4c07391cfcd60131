# 020_parallel_load.pl -- the parallel engine: csvpipe.load with 1, 2 and 4
# workers loads exactly what COPY FROM loads (ordered checksums) into plain,
# constrained, triggered, generated-column and partitioned targets, with tiny
# chunks putting quoted newlines on chunk boundaries; parallel read returns
# the single-process rows in order; cancel leaves no worker and a consistent
# ledger; a bad row late in an atomic load leaves the target untouched and no
# prepared transaction; too few worker slots still completes.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $gen = $ENV{CSVPIPE_GEN_CSV} // 'test/gen/gen_csv';
my $dir = PostgreSQL::Test::Utils::tempdir;

my $node = PostgreSQL::Test::Cluster->new('parallel');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'csvpipe'
max_prepared_transactions = 10
max_worker_processes = 16
timezone = 'UTC'
max_parallel_workers_per_gather = 0
});
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION csvpipe');

sub sql { return $node->safe_psql('postgres', $_[0]); }

system("$gen narrow 60000 11 > $dir/narrow.csv") == 0 or die;
system("$gen wide 8000 11 > $dir/wide.csv") == 0 or die;

# quoted fields with newlines (LF and CRLF) and commas on every other row
open(my $fh, '>', "$dir/multiline.csv") or die;
print $fh "id,note,amount\r\n";
for my $i (1 .. 20000)
{
	my $note = $i % 2 ? qq{"line one, $i\nline ""two""\r\nthree"} : "plain$i";
	print $fh "$i,$note,$i.5\r\n";
}
close $fh;

my $narrow = 'id bigint, ts timestamptz, name text, amount numeric(12,2), flag boolean';
my $wide = join(', ', 'id bigint', (map { "c$_ int4" } 1 .. 10),
	(map { "t$_ text" } 1 .. 9), (map { "f$_ float8" } 1 .. 10));

sub table_md5
{
	my ($table) = @_;
	return sql("SELECT count(*) || ' ' || coalesce(md5(string_agg(t::text, E'\\n' ORDER BY id)), '') FROM $table t");
}

# COPY's result for each file
sql("CREATE TABLE copy_narrow ($narrow); COPY copy_narrow FROM '$dir/narrow.csv' (FORMAT csv, HEADER)");
sql("CREATE TABLE copy_wide ($wide); COPY copy_wide FROM '$dir/wide.csv' (FORMAT csv, HEADER)");
sql("CREATE TABLE copy_multi (id int, note text, amount numeric); COPY copy_multi FROM '$dir/multiline.csv' (FORMAT csv, HEADER)");
my %expect = (
	narrow => table_md5('copy_narrow'),
	wide => table_md5('copy_wide'),
	multi => table_md5('copy_multi'));

my %cols = (narrow => $narrow, wide => $wide, multi => 'id int, note text, amount numeric');
my %file = (narrow => 'narrow.csv', wide => 'wide.csv', multi => 'multiline.csv');

for my $w (1, 2, 4)
{
	for my $kind (qw(narrow wide multi))
	{
		for my $atomic ('true', 'false')
		{
			my $t = "t_${kind}_${w}_$atomic";
			# tiny chunks: hundreds of boundaries, many inside quoted newlines
			my $chunk = $kind eq 'multi' ? 2000 : 65536;
			sql("CREATE TABLE $t ($cols{$kind})");
			my $res = sql("SELECT rows_loaded || ' ' || workers FROM csvpipe.load('$dir/$file{$kind}', '$t', "
				  . "workers => $w, atomic => $atomic, chunk_size => $chunk)");
			my ($rows, $used) = split / /, $res;
			is(table_md5($t), $expect{$kind}, "$kind, $w workers, atomic $atomic: table equals COPY's");
			is($used, $w, "$kind, $w workers, atomic $atomic: $w workers used");
		}
	}
}

# the ledger of a chunked load accounts for every row, once
my $job = sql("SELECT job_id FROM csvpipe.load('$dir/narrow.csv', 't_narrow_2_false', workers => 2, atomic => false, chunk_size => 100000)");
is( sql("SELECT count(*) = count(DISTINCT chunk_no) AND sum(rows) = 60000 FROM csvpipe.chunks WHERE job_id = $job"),
	't', 'ledger: one row per chunk, rows add up');
is(sql("SELECT state || ' ' || rows_loaded FROM csvpipe.jobs WHERE job_id = $job"), 'done 60000',
	'csvpipe.jobs shows the finished job');

# targets with constraints, defaults, generated columns, triggers, partitions
sql(q{
CREATE TABLE audit (n bigint);
CREATE FUNCTION upper_name() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN NEW.name := upper(NEW.name); RETURN NEW; END $$;
CREATE FUNCTION count_row() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN INSERT INTO audit VALUES (NEW.id); RETURN NULL; END $$;
});
for my $target ('rich_copy', 'rich_load')
{
	sql(qq{
CREATE TABLE $target (
  id bigint PRIMARY KEY,
  ts timestamptz NOT NULL,
  name text,
  amount numeric(12,2) CHECK (amount > -1000000),
  flag boolean,
  loaded_at date DEFAULT '2000-01-01',
  doubled numeric GENERATED ALWAYS AS (amount * 2) STORED);
CREATE TRIGGER upper_name BEFORE INSERT ON $target FOR EACH ROW EXECUTE FUNCTION upper_name();
CREATE TRIGGER count_row AFTER INSERT ON $target FOR EACH ROW EXECUTE FUNCTION count_row();
});
}
sql("COPY rich_copy (id, ts, name, amount, flag) FROM '$dir/narrow.csv' (FORMAT csv, HEADER)");
sql("SELECT csvpipe.load('$dir/narrow.csv', 'rich_load', columns => '{id,ts,name,amount,flag}', workers => 2, chunk_size => 50000)");
is(table_md5('rich_load'), table_md5('rich_copy'), 'PK, CHECK, default, generated column, triggers: same as COPY');
is(sql("SELECT count(*) FROM audit"), '120000', 'AFTER ROW trigger fired once per row for both');

sql(q{
CREATE TABLE part_copy (id bigint, ts timestamptz, name text, amount numeric(12,2), flag boolean) PARTITION BY RANGE (id);
CREATE TABLE part_copy_1 PARTITION OF part_copy FOR VALUES FROM (0) TO (30000);
CREATE TABLE part_copy_2 PARTITION OF part_copy FOR VALUES FROM (30000) TO (MAXVALUE);
CREATE TABLE part_load (id bigint, ts timestamptz, name text, amount numeric(12,2), flag boolean) PARTITION BY RANGE (id);
CREATE TABLE part_load_1 PARTITION OF part_load FOR VALUES FROM (0) TO (30000);
CREATE TABLE part_load_2 (flag boolean, amount numeric(12,2), name text, ts timestamptz, id bigint);
ALTER TABLE part_load ATTACH PARTITION part_load_2 FOR VALUES FROM (30000) TO (MAXVALUE);
});
sql("COPY part_copy FROM '$dir/narrow.csv' (FORMAT csv, HEADER)");
sql("SELECT csvpipe.load('$dir/narrow.csv', 'part_load', workers => 4, chunk_size => 50000)");
is(table_md5('part_load'), table_md5('part_copy'), 'partitioned target: same rows as COPY');
is(sql("SELECT count(*) FROM part_load_2"), sql("SELECT count(*) FROM part_copy_2"),
	'rows routed to the partition with another column order');

# parallel read returns the single-process rows, in order
my $serial = sql("SELECT count(*) || ' ' || md5(string_agg(x::text, E'\\n')) FROM (SELECT * FROM csvpipe.read('$dir/multiline.csv') AS t(id int, note text, amount numeric)) x");
for my $w (1, 2, 4)
{
	is( sql("SELECT count(*) || ' ' || md5(string_agg(x::text, E'\\n')) FROM (SELECT * FROM csvpipe.read('$dir/multiline.csv', workers => $w, chunk_size => 3000) AS t(id int, note text, amount numeric)) x"),
		$serial, "parallel read with $w workers: same rows in the same order");
}
is( sql("SELECT count(*) || ' ' || sum(id) FROM csvpipe.read('$dir/narrow.csv', workers => 2, ordered => false, chunk_size => 50000) AS t($narrow)"),
	'60000 1800030000', 'unordered parallel read: every row once');
is( sql("SELECT count(*) FROM (SELECT * FROM csvpipe.read_text('$dir/multiline.csv', workers => 2, chunk_size => 3000) LIMIT 5) s"),
	'5', 'parallel read_text with LIMIT');
is(sql("SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'csvpipe worker'"), '0',
	'LIMIT stopped the workers');

# atomic: a bad value late in the file leaves the target as it was
system("cp $dir/narrow.csv $dir/bad_late.csv && echo '60001,2024-01-01 00:00:00+00,late,not-a-number,t' >> $dir/bad_late.csv") == 0 or die;
sql("CREATE TABLE atomic_target ($narrow); INSERT INTO atomic_target VALUES (0, now(), 'before', 1, true)");
my ($ret, $out, $err) = $node->psql('postgres',
	"SELECT csvpipe.load('$dir/bad_late.csv', 'atomic_target', workers => 2, chunk_size => 100000)");
like($err, qr/invalid input syntax for type numeric: "not-a-number".*line 60002, column amount/s,
	'atomic: the bad value is reported with its line and column');
is(sql("SELECT count(*) FROM atomic_target"), '1', 'atomic: the target is exactly as before');
$node->poll_query_until('postgres', "SELECT count(*) = 0 FROM pg_prepared_xacts")
  or die "prepared transactions left";
pass('atomic: no prepared transaction left behind');
is(sql("SELECT state FROM csvpipe.jobs ORDER BY job_id DESC LIMIT 1"), 'failed', 'the job is marked failed');

# chunked: the same failure keeps the committed chunks, and the ledger matches
sql("CREATE TABLE chunked_target ($narrow)");
($ret, $out, $err) = $node->psql('postgres',
	"SELECT csvpipe.load('$dir/bad_late.csv', 'chunked_target', workers => 2, atomic => false, chunk_size => 100000)");
like($err, qr/line 60002/, 'chunked: error names the line');
my $jid = sql("SELECT max(job_id) FROM csvpipe.job");
is( sql("SELECT (SELECT count(*) FROM chunked_target) = (SELECT coalesce(sum(rows), 0) FROM csvpipe.chunks WHERE job_id = $jid)"),
	't', 'chunked: committed rows equal the ledger');

# a target created in the caller's transaction: clear error
($ret, $out, $err) = $node->psql('postgres',
	"BEGIN; CREATE TABLE fresh ($narrow); SELECT csvpipe.load('$dir/narrow.csv', 'fresh', atomic => true); COMMIT;");
like($err, qr/was created or truncated in the current transaction/, 'uncommitted target, prepared mode: clear error');
like($err, qr/HINT:  Load with mode => 'transaction', or commit the transaction first/, 'uncommitted target: a hint that works');

# the load commits in the workers: the caller's ROLLBACK does not undo it
sql("CREATE TABLE rb ($narrow)");
sql("BEGIN; SELECT csvpipe.load('$dir/narrow.csv', 'rb', workers => 2, mode => 'prepared'); ROLLBACK;");
is(sql("SELECT count(*) FROM rb"), '60000', "prepared mode: the caller's ROLLBACK does not undo a load");

# atomic needs max_prepared_transactions >= workers
($ret, $out, $err) = $node->psql('postgres',
	"SET csvpipe.max_workers = 12; SELECT csvpipe.load('$dir/narrow.csv', 'rb', workers => 12, mode => 'prepared')");
like($err, qr/needs max_prepared_transactions >= workers/, 'atomic: too few prepared transaction slots is a clear error');

# cancel: the leader's pg_cancel_backend stops every worker within a second
system("$gen narrow 3000000 12 > $dir/big.csv") == 0 or die;
sql("CREATE TABLE big_target ($narrow)");
my $bg = $node->background_psql('postgres', on_error_stop => 0);
$bg->query_until(qr/started/, qq{\\echo started
SELECT csvpipe.load('$dir/big.csv', 'big_target', workers => 2, atomic => false, chunk_size => 1000000);
});
$node->poll_query_until('postgres',
	"SELECT count(*) > 0 FROM csvpipe.chunks c JOIN csvpipe.job j USING (job_id) WHERE j.path = '$dir/big.csv'")
  or die "the load did not start";
sql("SELECT pg_cancel_backend(pid) FROM pg_stat_activity WHERE query LIKE '%csvpipe.load(%big.csv%' AND pid <> pg_backend_pid()");
$bg->query('SELECT 1');
like($bg->{stderr}, qr/canceling statement due to user request/, 'load cancelled');
$node->poll_query_until('postgres',
	"SELECT count(*) = 0 FROM pg_stat_activity WHERE backend_type = 'csvpipe worker'")
  or die "workers left";
pass('no csvpipe worker left after cancel');
$jid = sql("SELECT job_id FROM csvpipe.job WHERE path = '$dir/big.csv'");
is( sql("SELECT (SELECT count(*) FROM big_target) = (SELECT sum(rows) FROM csvpipe.chunks WHERE job_id = $jid)"),
	't', 'cancel: committed chunks stay and equal the ledger');
$node->poll_query_until('postgres', "SELECT state = 'cancelled' FROM csvpipe.job WHERE job_id = $jid")
  or die "job not marked cancelled";
pass('cancel: the job is marked cancelled');
$bg->quit;

# count(*) needs no value back from the workers, but every value is still
# converted: a bad one fails the read as it does with file_fdw
($ret, $out, $err) = $node->psql('postgres',
	"SELECT count(*) FROM csvpipe.read('$dir/bad_late.csv', header => true, workers => 2, chunk_size => 100000) AS t($narrow)");
like($err, qr/invalid input syntax for type numeric: "not-a-number".*line 60002, column amount/s,
	'parallel count(*): a bad value in an unused column is an error with its line');
is( sql("SELECT count(*) || ' ' || sum(amount) FROM csvpipe.read('$dir/narrow.csv', workers => 2, chunk_size => 50000) AS t($narrow)"),
	sql("SELECT count(*) || ' ' || sum(amount) FROM copy_narrow"),
	'parallel read of one column: same sum as COPY');

# workers read their chunks from the file: one rewritten in place while the
# load runs is an error, and the atomic load leaves nothing behind
system("cp $dir/narrow.csv $dir/changing.csv") == 0 or die;
sql(qq{CREATE TABLE changing_target ($narrow);
CREATE FUNCTION append_to_file() RETURNS trigger LANGUAGE plpgsql AS \$\$
BEGIN
  IF NEW.id = 100 THEN
    EXECUTE format('COPY (SELECT 1 WHERE false) TO PROGRAM %L',
                   'echo "60001,2024-01-01 00:00:00+00,late,1.00,t" >> $dir/changing.csv');
  END IF;
  RETURN NEW;
END \$\$;
CREATE TRIGGER append_to_file BEFORE INSERT ON changing_target
  FOR EACH ROW EXECUTE FUNCTION append_to_file();});
($ret, $out, $err) = $node->psql('postgres',
	"SELECT csvpipe.load('$dir/changing.csv', 'changing_target', workers => 2, chunk_size => 65536)");
like($err, qr/file ".*changing.csv" changed while it was being read/,
	'a file changed during a parallel load is an error');
is(sql("SELECT count(*) FROM changing_target"), '0', 'changed file: the atomic load left nothing');

# workers append to new pages of their own: free space left by a DELETE is
# not reused (as COPY into a table created in the same transaction); only
# the last page, where the heap always looks first, may take rows
sql("CREATE TABLE append_target ($narrow)");
sql("SELECT csvpipe.load('$dir/narrow.csv', 'append_target', workers => 2)");
sql("DELETE FROM append_target WHERE id BETWEEN 101 AND 59000; VACUUM append_target");
my $pages = sql("SELECT pg_relation_size('append_target') / current_setting('block_size')::int");
my $below = "SELECT count(*) FROM append_target WHERE (ctid::text::point)[0] < $pages - 1";
my $before = sql($below);
sql("SELECT csvpipe.load('$dir/narrow.csv', 'append_target', workers => 2, mode => 'chunked', chunk_size => 100000)");
is(sql($below), $before, 'parallel load (workers insert): no row goes to the free space of earlier pages');
cmp_ok($pages, '>', 100, 'parallel load: that free space was there');
is(sql("SELECT count(*) FROM append_target"), '61100', 'parallel load after a delete: all rows');

# chunked: chunk commits do not wait for their WAL flush, but the load
# returns only once they are durable: a crash right after loses nothing
sql("CREATE TABLE durable_target ($narrow)");
my $djob = sql("SELECT job_id FROM csvpipe.load('$dir/narrow.csv', 'durable_target', workers => 2, atomic => false, chunk_size => 65536)");
$node->stop('immediate');
$node->start;
is(table_md5('durable_target'), $expect{narrow}, 'chunked: every row survives a crash right after the load');
is(sql("SELECT sum(rows) FROM csvpipe.chunks WHERE job_id = $djob"), '60000',
	'chunked: and so does the ledger');

# lone CR line ends: cut into chunks at the CRs, the same rows as COPY
{
	open(my $in, '<', "$dir/narrow.csv") or die;
	open(my $out, '>', "$dir/narrow_cr.csv") or die;
	while (my $l = <$in>) { $l =~ s/\r?\n\z/\r/; print $out $l; }
	close $in;
	close $out;
}
sql("CREATE TABLE cr_copy ($narrow); COPY cr_copy FROM '$dir/narrow_cr.csv' (FORMAT csv, HEADER)");
sql("CREATE TABLE cr_load ($narrow)");
sql("SELECT csvpipe.load('$dir/narrow_cr.csv', 'cr_load', workers => 2, mode => 'chunked', chunk_size => 65536)");
is(table_md5('cr_load'), table_md5('cr_copy'), 'lone CR line ends, 2 workers, many chunks: same rows as COPY');
is(sql("SELECT count(*) FROM csvpipe.chunks WHERE job_id = (SELECT max(job_id) FROM csvpipe.job)") > 10 ? 'many' : 'few',
	'many', 'lone CR line ends: the file was cut into chunks');

# slot shortage: with 3 worker processes, ask for 4 workers
$node->append_conf('postgresql.conf', "max_worker_processes = 3");
$node->restart;
sql("CREATE TABLE short_target ($narrow)");
($ret, $out, $err) = $node->psql('postgres',
	"SELECT rows_loaded FROM csvpipe.load('$dir/narrow.csv', 'short_target', workers => 4, chunk_size => 100000)");
is($out, '60000', 'slot shortage: the load completes');
like($err, qr/of 4 workers could be started/, 'slot shortage: a NOTICE says so');
is(table_md5('short_target'), $expect{narrow}, 'slot shortage: same rows as COPY');

my $log = slurp_file($node->logfile);
unlike($log, qr/(TRAP|terminated by signal|PANIC)/, 'no crash in the server log');

$node->stop;
done_testing();
