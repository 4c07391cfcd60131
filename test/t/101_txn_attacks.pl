# 101_txn_attacks.pl -- transaction mode (csvpipe.load's default) attacked
# as a user who replaces COPY with it and expects COPY's semantics:
#  - AFTER STATEMENT triggers with a transition table (REFERENCING NEW
#    TABLE) see exactly the rows inserted, as with COPY, in stop and in skip
#    mode (skip mode inserts in subtransaction batches: rejected rows must
#    not appear, kept rows must), on a plain and a partitioned target with
#    a BEFORE ROW trigger on a partition whose columns are in another order;
#  - identity, volatile defaults, stored generated columns, domains and a
#    BEFORE ROW trigger that rewrites rows: the same rows as COPY, in file
#    order, with 4 workers and tiny chunks;
#  - a partition created and attached in the same transaction;
#  - RLS refused like COPY; column-level INSERT grants as COPY checks them;
#  - the caller's own uncommitted row: a unique violation naming the line;
#    skip mode rejects exactly that line;
#  - a procedure that COMMITs between two loads;
#  - pg_cancel_backend of the leader, pg_terminate_backend of a worker, at
#    random moments inside BEGIN .. COMMIT: every row or an ERROR and none;
#  - the leader's memory stays flat with the file's size (2M rows).
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run;
use Time::HiRes qw(usleep);

my $gen = $ENV{CSVPIPE_GEN_CSV} // 'test/gen/gen_csv';
my $dir = PostgreSQL::Test::Utils::tempdir;
chmod 0755, $dir;

my $node = PostgreSQL::Test::Cluster->new('txnattacks');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'csvpipe'
max_worker_processes = 16
timezone = 'UTC'
max_parallel_workers_per_gather = 0
});
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION csvpipe');

sub sql { return $node->safe_psql('postgres', $_[0]); }

system("$gen narrow 40000 5 > $dir/narrow.csv") == 0 or die;
chmod 0644, "$dir/narrow.csv";
my $narrow = 'id bigint, ts timestamptz, name text, amount numeric(12,2), flag boolean';

# a file with bad lines: type errors and duplicates of id 5
open(my $fh, '>', "$dir/bad.csv") or die;
print $fh "id,ts,name,amount,flag\n";
my $nbad = 0;
for my $i (1 .. 20000)
{
	if ($i % 997 == 0) { print $fh "$i,2024-01-01,n$i,notnum,t\n"; $nbad++; }
	elsif ($i % 1499 == 0) { print $fh "5,2024-01-01,dup$i,1,t\n"; $nbad++; }
	else { print $fh "$i,2024-01-01,n$i,$i.5,t\n"; }
}
close $fh;

# 1. transition tables: what AFTER STATEMENT triggers see equals the table
sql(qq{
CREATE TABLE tlog (tbl text, mode text, n bigint, md text);
CREATE FUNCTION log_new() RETURNS trigger LANGUAGE plpgsql AS \$\$
BEGIN
  INSERT INTO tlog SELECT TG_TABLE_NAME, current_setting('my.mode', true), count(*),
         coalesce(md5(string_agg(n::text, ',' ORDER BY id)), '') FROM newtab n;
  RETURN NULL;
END \$\$;
CREATE TABLE tt ($narrow, PRIMARY KEY (id));
CREATE TRIGGER tt_as AFTER INSERT ON tt REFERENCING NEW TABLE AS newtab
  FOR EACH STATEMENT EXECUTE FUNCTION log_new();
CREATE TABLE ptt ($narrow) PARTITION BY RANGE (id);
CREATE TABLE ptt1 PARTITION OF ptt FOR VALUES FROM (0) TO (7000);
CREATE TABLE ptt2 (flag boolean, amount numeric(12,2), name text, ts timestamptz, id bigint);
ALTER TABLE ptt ATTACH PARTITION ptt2 FOR VALUES FROM (7000) TO (100000);
CREATE UNIQUE INDEX ON ptt (id);
CREATE FUNCTION p2() RETURNS trigger LANGUAGE plpgsql AS \$\$
BEGIN NEW.name := NEW.name || '_p2'; RETURN NEW; END \$\$;
CREATE TRIGGER p2 BEFORE INSERT ON ptt2 FOR EACH ROW EXECUTE FUNCTION p2();
CREATE TRIGGER ptt_as AFTER INSERT ON ptt REFERENCING NEW TABLE AS newtab
  FOR EACH STATEMENT EXECUTE FUNCTION log_new();
});
for my $t ('tt', 'ptt')
{
	for my $case ([ 'stop', 'narrow', '' ], [ 'skip', 'narrow', ", on_error => 'skip'" ],
		[ 'skipbad', 'bad', ", on_error => 'skip'" ])
	{
		my ($mode, $file, $opt) = @$case;
		sql("TRUNCATE $t");
		my $res = sql("SET my.mode = '$mode'; SELECT rows_loaded || ' ' || rows_rejected FROM csvpipe.load('$dir/$file.csv', '$t', workers => 2, chunk_size => 8192$opt)");
		is($res, $mode eq 'skipbad' ? (20000 - $nbad) . " $nbad" : '40000 0', "$t $mode: counts");
		is( sql("SELECT n || ' ' || md FROM tlog WHERE tbl = '$t' AND mode = '$mode'"),
			sql("SELECT count(*) || ' ' || md5(string_agg(n::text, ',' ORDER BY id)) FROM $t n"),
			"$t $mode: the AFTER STATEMENT trigger's NEW TABLE holds exactly the rows inserted");
	}
}
# and COPY's, for the record
sql("TRUNCATE tt; SET my.mode = 'copy'; COPY tt FROM '$dir/narrow.csv' (FORMAT csv, HEADER)");
is(sql("SELECT count(*) FROM tlog WHERE tbl = 'tt' AND md = (SELECT md FROM tlog WHERE tbl = 'tt' AND mode = 'copy') AND mode IN ('stop', 'skip')"),
	'2', 'tt: stop and skip modes\' NEW TABLE equal COPY\'s');

# 2. identity, volatile defaults, generated columns, domains, BEFORE ROW rewrite
sql(q{
CREATE DOMAIN money12 AS numeric(12,2) CHECK (VALUE > -1e12);
CREATE TABLE ca (seq bigint GENERATED ALWAYS AS IDENTITY, id bigint, ts timestamptz, name text,
  amount money12, flag boolean, g text GENERATED ALWAYS AS (name || '!') STORED,
  r double precision DEFAULT random(), clk timestamptz DEFAULT clock_timestamp());
CREATE FUNCTION up() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN NEW.name := upper(NEW.name) || NEW.seq; RETURN NEW; END $$;
CREATE TRIGGER up BEFORE INSERT ON ca FOR EACH ROW EXECUTE FUNCTION up();
CREATE TABLE cb (LIKE ca INCLUDING ALL);
CREATE TRIGGER up BEFORE INSERT ON cb FOR EACH ROW EXECUTE FUNCTION up();
});
sql("COPY ca (id,ts,name,amount,flag) FROM '$dir/narrow.csv' (FORMAT csv, HEADER)");
sql("SELECT csvpipe.load('$dir/narrow.csv', 'cb', columns => '{id,ts,name,amount,flag}', workers => 4, chunk_size => 4096)");
my $cols = 'seq,id,ts,name,amount,flag,g';
is( sql("SELECT md5(string_agg(row($cols)::text, ',' ORDER BY seq)) FROM cb"),
	sql("SELECT md5(string_agg(row($cols)::text, ',' ORDER BY seq)) FROM ca"),
	'identity, domain, generated column, BEFORE ROW rewrite: rows equal COPY\'s in file order');
is(sql("SELECT count(DISTINCT r) || ' ' || count(DISTINCT clk) FROM cb"), '40000 40000',
	'volatile defaults evaluated per row');

# 3. a partition created and attached in the same transaction
sql("CREATE TABLE copy_narrow ($narrow); COPY copy_narrow FROM '$dir/narrow.csv' (FORMAT csv, HEADER);
	 CREATE TABLE pt ($narrow) PARTITION BY RANGE (id);
	 CREATE TABLE pt1 PARTITION OF pt FOR VALUES FROM (0) TO (15000);");
sql("BEGIN; CREATE TABLE pt2 PARTITION OF pt FOR VALUES FROM (15000) TO (30001);
	 CREATE TABLE pt3 (LIKE pt); ALTER TABLE pt ATTACH PARTITION pt3 FOR VALUES FROM (30001) TO (100000);
	 SELECT csvpipe.load('$dir/narrow.csv', 'pt', workers => 2, chunk_size => 4096); COMMIT");
is(sql("SELECT string_agg(tableoid::regclass || '=' || n, ',' ORDER BY tableoid::regclass::text) FROM (SELECT tableoid, count(*) n FROM pt GROUP BY 1) s"),
	'pt1=14999,pt2=15001,pt3=10000', 'partitions created in the transaction get their rows');
is( sql("SELECT md5(string_agg(t::text, ',' ORDER BY id)) FROM pt t"),
	sql("SELECT md5(string_agg(t::text, ',' ORDER BY id)) FROM copy_narrow t"), '... equal to COPY\'s');

# 4. an unprivileged role: RLS refused as COPY refuses it; column grants
sql("CREATE ROLE alice LOGIN; GRANT pg_read_server_files TO alice;
	 CREATE TABLE rls ($narrow); ALTER TABLE rls ENABLE ROW LEVEL SECURITY;
	 CREATE POLICY p ON rls USING (true); GRANT SELECT, INSERT ON rls TO alice;
	 CREATE TABLE cg ($narrow, secret text DEFAULT 'x');
	 GRANT INSERT (id, ts, name, amount, flag) ON cg TO alice;");
my ($ret, $out, $err) = $node->psql('postgres',
	"SET ROLE alice; SELECT csvpipe.load('$dir/narrow.csv', 'rls', workers => 2)",
	extra_params => [ '-v', 'VERBOSITY=verbose' ]);
like($err, qr/ERROR:  0A000: csvpipe load not supported with row-level security/, 'RLS: refused (0A000), as COPY');
is(sql("SELECT count(*) FROM rls"), '0', 'RLS: nothing loaded');
is( sql("SET ROLE alice; SELECT rows_loaded FROM csvpipe.load('$dir/narrow.csv', 'cg', columns => '{id,ts,name,amount,flag}', workers => 2)"),
	'40000', 'column grants: the granted columns load');
($ret, $out, $err) = $node->psql('postgres',
	"SET ROLE alice; SELECT csvpipe.load('$dir/narrow.csv', 'cg', columns => '{id,ts,name,amount,secret}', workers => 2)",
	extra_params => [ '-v', 'VERBOSITY=verbose' ]);
like($err, qr/ERROR:  42501: permission denied for table cg/, 'column grants: an ungranted column is refused (42501)');
is(sql("SELECT count(*) FROM cg"), '40000', 'column grants: nothing more loaded');

# 5. the caller's own uncommitted row
sql("CREATE TABLE u ($narrow, PRIMARY KEY (id))");
($ret, $out, $err) = $node->psql('postgres',
	"BEGIN; INSERT INTO u VALUES (30000, now(), 'mine', 1, true); SELECT csvpipe.load('$dir/narrow.csv', 'u', workers => 2, chunk_size => 65536)",
	extra_params => [ '-v', 'VERBOSITY=verbose' ]);
like($err, qr/ERROR:  23505: duplicate key value violates unique constraint "u_pkey"/, 'own uncommitted row: 23505');
like($err, qr/csvpipe.load "u", line 30001\b/, '... naming the line');
is( sql("BEGIN; INSERT INTO u VALUES (30000, now(), 'mine', 1, true);
	 SELECT job_id FROM csvpipe.load('$dir/narrow.csv', 'u', workers => 2, chunk_size => 65536, on_error => 'skip') \\gset\n
	 SELECT string_agg(line_no || ' ' || sqlstate, ',') FROM csvpipe.rejected WHERE job_id = :job_id; COMMIT; SELECT count(*), count(*) FILTER (WHERE name = 'mine') FROM u"),
	"30001 23505\n40000|1", 'own uncommitted row, skip mode: exactly that line rejected, the caller\'s row kept');

# 6. a procedure that commits between two loads
sql("TRUNCATE u; CREATE TABLE u2 (LIKE u INCLUDING ALL);
	 CREATE PROCEDURE two() LANGUAGE plpgsql AS \$\$
	 BEGIN PERFORM csvpipe.load('$dir/narrow.csv', 'u', workers => 2); COMMIT;
	       PERFORM csvpipe.load('$dir/narrow.csv', 'u2', workers => 2); ROLLBACK; END \$\$;");
sql("CALL two()");
is(sql("SELECT (SELECT count(*) FROM u) || ' ' || (SELECT count(*) FROM u2)"), '40000 0',
	'procedure: the committed load stays, the rolled back one is gone');

# 7. cancel the leader / terminate a worker at random moments
system("$gen narrow 300000 9 > $dir/big.csv") == 0 or die;
chmod 0644, "$dir/big.csv";
sql("CREATE TABLE cx ($narrow, PRIMARY KEY (id))");
my %seen;
srand(12);
for my $i (1 .. 12)
{
	my $kill = $i % 2 ? 'cancel' : 'worker';
	sql('TRUNCATE cx');
	my ($o, $e) = ('', '');
	local $ENV{PGAPPNAME} = 'victim';
	my $h = IPC::Run::start([ 'psql', '-XAtq', '-d', $node->connstr('postgres'), '-c',
			"BEGIN; SELECT rows_loaded FROM csvpipe.load('$dir/big.csv', 'cx', workers => 2, chunk_size => 262144); COMMIT" ],
		'>', \$o, '2>', \$e);
	my $delay = sprintf('%.2f', rand(0.5));
	my $what = $kill eq 'cancel'
	  ? "pg_cancel_backend(pid) FROM pg_stat_activity WHERE application_name = 'victim' AND backend_type = 'client backend'"
	  : "pg_terminate_backend(pid) FROM pg_stat_activity WHERE backend_type = 'csvpipe worker' LIMIT 1";
	local $ENV{PGAPPNAME} = 'killer';
	sql("SELECT pg_sleep($delay); SELECT $what");
	$h->finish;
	$o =~ s/\s+$//;
	my $count = sql('SELECT count(*) FROM cx');
	if ($e =~ /ERROR/)
	{
		is($count, '0', "$kill after ${delay}s: ERROR and no row");
		$seen{"$kill error"}++;
	}
	else
	{
		is("$o $count", "300000 300000", "$kill after ${delay}s: done with every row");
		$seen{"$kill done"}++;
	}
	is(sql("SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'csvpipe worker'"), '0', '... no worker left')
	  if $i == 12;
}
note(join(', ', map { "$_: $seen{$_}" } sort keys %seen));

# 8. the leader's private memory does not grow with the file (2M rows)
system("$gen narrow 2000000 4 > $dir/n2m.csv") == 0 or die;
chmod 0644, "$dir/n2m.csv";
sql("CREATE TABLE m ($narrow)");
sub leader_peak_kb
{
	my ($file, $opt) = @_;
	my ($o, $e) = ('', '');
	local $ENV{PGAPPNAME} = 'memv';
	my $h = IPC::Run::start([ 'psql', '-XAtq', '-d', $node->connstr('postgres'), '-c',
			"SELECT pg_sleep(0.3); SELECT rows_loaded FROM csvpipe.load('$dir/$file', 'm', workers => 2$opt)" ],
		'>', \$o, '2>', \$e);
	my $pid;
	local $ENV{PGAPPNAME} = 'watcher';
	# until its session shows (not for a fixed number of tries: without the
	# pid nothing is measured)
	while ($h->pumpable)
	{
		$h->pump_nb;
		$pid = sql("SELECT pid FROM pg_stat_activity WHERE application_name = 'memv' AND backend_type = 'client backend'");
		last if $pid ne '';
		usleep(10_000);
	}
	my $max = 0;
	while ($h->pumpable)
	{
		$h->pump_nb;
		if (open(my $st, '<', "/proc/$pid/status"))
		{
			while (<$st>) { $max = $1 if /^RssAnon:\s+(\d+)/ && $1 > $max; }
			close $st;
		}
		usleep(50_000);
	}
	$h->finish;
	$o =~ s/^\s+|\s+$//g;
	return ($o, $max);
}
my ($rows, $peak) = leader_peak_kb('n2m.csv', '');
is($rows, '2000000', '2M rows loaded');
cmp_ok($peak, '>', 0, 'the leader\'s memory was measured');
cmp_ok($peak, '<', 48 * 1024, "leader's peak private memory for 2M rows stays small (${peak} kB)");
($rows, $peak) = leader_peak_kb('n2m.csv', ", on_error => 'skip'");
is($rows, '2000000', '2M rows loaded in skip mode');
cmp_ok($peak, '<', 48 * 1024, "leader's peak private memory for 2M rows in skip mode (${peak} kB)");

$node->stop;
done_testing();
