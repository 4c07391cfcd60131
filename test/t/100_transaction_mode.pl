# 100_transaction_mode.pl -- csvpipe.load's default mode, 'transaction': the
# workers convert, the leader inserts in the caller's own transaction, as
# COPY does.  ROLLBACK leaves nothing; a table created or truncated in the
# same transaction can be loaded (and indexed after); freeze => true follows
# COPY FREEZE's rules and errors and leaves frozen pages; a savepoint rolled
# back after a load undoes it; statement triggers fire once; skip mode
# rejects exactly the bad lines (parse, convert and insert errors); rows
# equal COPY's with 1, 2 and 4 workers and tiny chunks.  Then a stock server
# (default postgresql.conf, no preload): read, read_text and load in
# transaction and chunked mode work, prepared mode names the setting it needs
# and its hint works, and a one-chunk file raises no shortage NOTICE.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $gen = $ENV{CSVPIPE_GEN_CSV} // 'test/gen/gen_csv';
my $dir = PostgreSQL::Test::Utils::tempdir;
chmod 0755, $dir;

my $node = PostgreSQL::Test::Cluster->new('txnmode');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'csvpipe'
max_worker_processes = 16
timezone = 'UTC'
max_parallel_workers_per_gather = 0
});
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION csvpipe; CREATE EXTENSION pg_visibility');

sub sql { return $node->safe_psql('postgres', $_[0]); }

system("$gen narrow 40000 5 > $dir/narrow.csv") == 0 or die;
my $narrow = 'id bigint, ts timestamptz, name text, amount numeric(12,2), flag boolean';

sub table_md5
{
	my ($table, $n) = @_;
	$n //= $node;
	return $n->safe_psql('postgres',
		"SELECT count(*) || ' ' || coalesce(md5(string_agg(t::text, E'\\n' ORDER BY id)), '') FROM $table t");
}

sql("CREATE TABLE copy_narrow ($narrow); COPY copy_narrow FROM '$dir/narrow.csv' (FORMAT csv, HEADER)");
my $expect = table_md5('copy_narrow');

# 1. ROLLBACK leaves nothing (1.0's default, atomic, committed on its own)
sql("CREATE TABLE rb ($narrow)");
is( sql("BEGIN; SELECT rows_loaded FROM csvpipe.load('$dir/narrow.csv', 'rb', workers => 2, chunk_size => 65536); ROLLBACK; SELECT count(*) FROM rb"),
	"40000\n0", 'BEGIN; load; ROLLBACK leaves the table empty');
is(sql("SELECT options->>'mode' FROM csvpipe.job ORDER BY job_id DESC LIMIT 1"),
	'transaction', 'the default mode is transaction');

# 2. the ETL pattern: CREATE TABLE; load; CREATE INDEX; COMMIT
is( sql("BEGIN; CREATE TABLE etl ($narrow); "
	  . "SELECT rows_loaded FROM csvpipe.load('$dir/narrow.csv', 'etl', workers => 2, chunk_size => 65536); "
	  . "CREATE UNIQUE INDEX ON etl (id); COMMIT; SELECT count(*) FROM etl"),
	"40000\n40000", 'CREATE TABLE + load + CREATE INDEX in one transaction');
is(table_md5('etl'), $expect, '... rows equal COPY\'s');

# TRUNCATE + load in one transaction
sql("BEGIN; TRUNCATE etl; SELECT csvpipe.load('$dir/narrow.csv', 'etl', workers => 2, chunk_size => 65536); COMMIT");
is(table_md5('etl'), $expect, 'TRUNCATE + load in one transaction: rows equal COPY\'s');

# 3. freeze => true: COPY FREEZE's rules, frozen pages
sql("BEGIN; CREATE TABLE fz ($narrow); SELECT csvpipe.load('$dir/narrow.csv', 'fz', workers => 2, freeze => true, chunk_size => 65536); COMMIT");
is(table_md5('fz'), $expect, 'freeze => true: rows equal COPY\'s');
is( sql("SELECT all_frozen > 0 AND all_frozen = pg_relation_size('fz') / current_setting('block_size')::int FROM pg_visibility_map_summary('fz')"),
	't', 'freeze => true: every page is all-frozen');
sql("BEGIN; TRUNCATE fz; SELECT csvpipe.load('$dir/narrow.csv', 'fz', workers => 2, freeze => true); COMMIT");
is(sql("SELECT count(*) FROM heap_page_items(get_raw_page('fz', 0)) WHERE (t_infomask & 768) <> 768"), '0',
	'after TRUNCATE: the tuples are frozen') if sql("SELECT count(*) FROM pg_available_extensions WHERE name = 'pageinspect'") eq '1'
  && sql("CREATE EXTENSION IF NOT EXISTS pageinspect; SELECT 1") eq '1';
my ($ret, $out, $err) = $node->psql('postgres',
	"SELECT csvpipe.load('$dir/narrow.csv', 'fz', workers => 2, freeze => true)");
like($err, qr/ERROR:  cannot perform COPY FREEZE because the table was not created or truncated in the current subtransaction/,
	'freeze on an old table: COPY FREEZE\'s error');
($ret, $out, $err) = $node->psql('postgres',
	"BEGIN; TRUNCATE fz; SAVEPOINT s; SELECT csvpipe.load('$dir/narrow.csv', 'fz', workers => 2, freeze => true); COMMIT",
	extra_params => [ '-v', 'VERBOSITY=verbose' ]);
like($err, qr/ERROR:  55000: cannot perform COPY FREEZE because the table was not created or truncated in the current subtransaction/,
	'freeze after a savepoint: COPY FREEZE\'s error and SQLSTATE');
($ret, $out, $err) = $node->psql('postgres',
	"BEGIN; TRUNCATE fz; DECLARE c CURSOR FOR SELECT * FROM copy_narrow; FETCH 1 FROM c; SELECT csvpipe.load('$dir/narrow.csv', 'fz', workers => 2, freeze => true); COMMIT");
like($err, qr/ERROR:  cannot perform COPY FREEZE because of prior transaction activity/,
	'freeze with an open cursor: COPY FREEZE\'s error');
($ret, $out, $err) = $node->psql('postgres',
	"BEGIN; TRUNCATE fz; SELECT csvpipe.load('$dir/narrow.csv', 'fz', mode => 'chunked', freeze => true); COMMIT");
like($err, qr/ERROR:  csvpipe.load with freeze => true needs mode => 'transaction'/,
	'freeze in chunked mode is refused');

# 4. a savepoint rolled back after a load undoes it
sql("CREATE TABLE sp ($narrow)");
is( sql("BEGIN; SAVEPOINT a; SELECT rows_loaded FROM csvpipe.load('$dir/narrow.csv', 'sp', workers => 2, chunk_size => 65536); "
	  . "ROLLBACK TO SAVEPOINT a; SELECT count(*) FROM sp; "
	  . "SELECT rows_loaded FROM csvpipe.load('$dir/narrow.csv', 'sp', workers => 4, chunk_size => 65536); COMMIT"),
	"40000\n0\n40000", 'ROLLBACK TO SAVEPOINT undoes a load; a second load in the same transaction works');
is(table_md5('sp'), $expect, '... and leaves COPY\'s rows once');

# 5. statement triggers fire once, rows as COPY with 1/2/4 workers and a serial id
sql(q{
CREATE TABLE stmt_log (tbl text, ev text);
CREATE FUNCTION log_stmt() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN INSERT INTO stmt_log VALUES (TG_TABLE_NAME, TG_WHEN || ' ' || TG_LEVEL); RETURN NULL; END $$;
});
my $cols = 'id,ts,name,amount,flag';
sql("CREATE TABLE copy_ser (seq bigserial, $narrow); COPY copy_ser ($cols) FROM '$dir/narrow.csv' (FORMAT csv, HEADER)");
for my $w (1, 2, 4)
{
	my $t = "ser_$w";
	sql("CREATE TABLE $t (seq bigserial, $narrow);
		 CREATE TRIGGER bs BEFORE INSERT ON $t FOR EACH STATEMENT EXECUTE FUNCTION log_stmt();
		 CREATE TRIGGER as_ AFTER INSERT ON $t FOR EACH STATEMENT EXECUTE FUNCTION log_stmt();");
	my $used = sql("SELECT workers FROM csvpipe.load('$dir/narrow.csv', '$t', columns => '{$cols}', workers => $w, chunk_size => 20000)");
	is($used, $w, "$w workers used");
	is( sql("SELECT md5(string_agg(t::text, E'\\n' ORDER BY seq)) FROM $t t"),
		sql("SELECT md5(string_agg(t::text, E'\\n' ORDER BY seq)) FROM copy_ser t"),
		"$w workers: rows and serial numbers equal COPY's (file order)");
	is( sql("SELECT string_agg(ev || '=' || n, ',' ORDER BY ev) FROM (SELECT ev, count(*) n FROM stmt_log WHERE tbl = '$t' GROUP BY ev) s"),
		'AFTER STATEMENT=1,BEFORE STATEMENT=1', "$w workers: each statement trigger fired once");
}

# 6. skip mode: parse, convert and insert errors rejected with their lines
open(my $fh, '>', "$dir/bad.csv") or die;
print $fh "id,name,amount\n";
my @bad;
for my $i (1 .. 3000)
{
	my $line = $i + 1;
	if ($i % 500 == 7) { print $fh "$i,name$i,notanumber\n"; push @bad, $line; }
	elsif ($i % 700 == 9) { print $fh "5,dup$i,1\n"; push @bad, $line; }    # duplicate of id 5
	elsif ($i % 900 == 11) { print $fh "$i,too,many,fields\n"; push @bad, $line; }
	else { print $fh "$i,name$i,$i.25\n"; }
}
close $fh;
sql("CREATE TABLE sk (id int PRIMARY KEY, name text, amount numeric);
	 CREATE TRIGGER bs BEFORE INSERT ON sk FOR EACH STATEMENT EXECUTE FUNCTION log_stmt();
	 CREATE TRIGGER as_ AFTER INSERT ON sk FOR EACH STATEMENT EXECUTE FUNCTION log_stmt();");
my $res = sql("SELECT job_id || ' ' || rows_loaded || ' ' || rows_rejected FROM csvpipe.load('$dir/bad.csv', 'sk', workers => 2, on_error => 'skip', chunk_size => 8192)");
my ($job, $loaded, $rejected) = split / /, $res;
is("$loaded $rejected", (3000 - @bad) . ' ' . scalar(@bad), 'skip mode: counts');
is(sql("SELECT string_agg(line_no::text, ',' ORDER BY line_no) FROM csvpipe.rejected WHERE job_id = $job"),
	join(',', @bad), 'skip mode: exactly the bad lines are rejected');
is( sql("SELECT string_agg(DISTINCT sqlstate, ',' ORDER BY sqlstate) FROM csvpipe.rejected WHERE job_id = $job"),
	'22P02,22P04,23505', 'skip mode: convert, parse and unique errors');
is(sql("SELECT raw_record FROM csvpipe.rejected WHERE job_id = $job AND sqlstate = '23505' ORDER BY line_no LIMIT 1"),
	'5,dup9,1', 'skip mode: an insert error keeps its raw record');
is(sql("SELECT count(*) FROM sk WHERE id = 5 AND name = 'name5'"), '1', 'skip mode: the first id 5 stays');
is( sql("SELECT string_agg(ev || '=' || n, ',' ORDER BY ev) FROM (SELECT ev, count(*) n FROM stmt_log WHERE tbl = 'sk' GROUP BY ev) s"),
	'AFTER STATEMENT=1,BEFORE STATEMENT=1', 'skip mode: each statement trigger fired once');
is(sql("SELECT state || ' ' || rows_loaded || ' ' || rows_rejected FROM csvpipe.job WHERE job_id = $job"),
	"done $loaded $rejected", 'skip mode: the job row');
# rejected rows roll back with the caller's transaction
sql("TRUNCATE sk");
is( sql("BEGIN; SELECT job_id FROM csvpipe.load('$dir/bad.csv', 'sk', workers => 2, on_error => 'skip') \\gset\nROLLBACK; SELECT count(*) FROM csvpipe.rejected WHERE job_id = :job_id"),
	'0', 'skip mode: ROLLBACK takes the rejected rows too');

# stop mode: the first bad line, and nothing loaded
($ret, $out, $err) = $node->psql('postgres',
	"SELECT csvpipe.load('$dir/bad.csv', 'sk', workers => 2)", extra_params => [ '-v', 'VERBOSITY=verbose' ]);
like($err, qr/ERROR:  22P02: invalid input syntax for type numeric: "notanumber"/, 'stop mode: the error');
like($err, qr/csvpipe.load "[^"]*bad.csv", line $bad[0]\b/, 'stop mode: its line');
is(sql("SELECT count(*) FROM sk"), '0', 'stop mode: nothing loaded');

$node->stop;

# 7. a stock server: default postgresql.conf, no preload
my $stock = PostgreSQL::Test::Cluster->new('stock');
$stock->init;
$stock->start;
is($stock->safe_psql('postgres', 'SHOW max_prepared_transactions'), '0', 'stock: max_prepared_transactions = 0');
$stock->safe_psql('postgres', "CREATE EXTENSION csvpipe; CREATE TABLE copy_narrow ($narrow);
	COPY copy_narrow FROM '$dir/narrow.csv' (FORMAT csv, HEADER)");
sub stock { return $stock->safe_psql('postgres', $_[0]); }
is( stock("SELECT count(*) || ' ' || md5(string_agg(t::text, E'\\n')) FROM csvpipe.read('$dir/narrow.csv', workers => 2, chunk_size => 65536) AS t($narrow)"),
	stock("SELECT count(*) || ' ' || md5(string_agg(t::text, E'\\n' ORDER BY id)) FROM copy_narrow t"),
	'stock: parallel read returns COPY\'s rows');
is(stock("SELECT count(*) FROM csvpipe.read_text('$dir/narrow.csv', workers => 2, chunk_size => 65536)"),
	'40000', 'stock: parallel read_text');
for my $mode ('transaction', 'chunked')
{
	stock("CREATE TABLE s_$mode ($narrow)");
	is(stock("SELECT workers FROM csvpipe.load('$dir/narrow.csv', 's_$mode', mode => '$mode', workers => 2, chunk_size => 65536)"),
		'2', "stock: $mode mode used 2 workers");
	is(table_md5("s_$mode", $stock), $expect, "stock: $mode mode loads COPY's rows");
}
stock("CREATE TABLE s_prep ($narrow)");
($ret, $out, $err) = $stock->psql('postgres',
	"SELECT csvpipe.load('$dir/narrow.csv', 's_prep', mode => 'prepared', workers => 2)",
	extra_params => [ '-v', 'VERBOSITY=verbose' ]);
like($err, qr/ERROR:  55000: csvpipe.load with mode => 'prepared' needs max_prepared_transactions >= workers \(0 < 2\)/,
	'stock: prepared mode names the setting it needs');
like($err, qr/HINT:  Set max_prepared_transactions = 2 or more in postgresql.conf and restart the server, or use mode => 'transaction' \(the default\) or mode => 'chunked'/,
	'stock: ... and a hint that does not suggest fewer workers');
is(stock("SELECT count(*) FROM s_prep"), '0', 'stock: nothing loaded by the refused call');
# the hint, followed
$stock->append_conf('postgresql.conf', 'max_prepared_transactions = 2');
$stock->restart;
is(stock("SELECT rows_loaded FROM csvpipe.load('$dir/narrow.csv', 's_prep', mode => 'prepared', workers => 2)"),
	'40000', 'stock: prepared mode works once the hint is followed');

# a file of one chunk: no NOTICE about missing workers
open($fh, '>', "$dir/small.csv") or die;
print $fh "a,b\n1,2\n3,4\n";
close $fh;
stock("CREATE TABLE small (a int, b int)");
for my $mode ('transaction', 'chunked', 'prepared')
{
	($ret, $out, $err) = $stock->psql('postgres',
		"SELECT rows_loaded FROM csvpipe.load('$dir/small.csv', 'small', mode => '$mode', workers => 2)");
	is($out, '2', "stock: small file, $mode mode loads");
	unlike($err, qr/NOTICE/, "stock: small file, $mode mode: no NOTICE");
}
$stock->stop;

done_testing();
