# 081_load_integrity.pl -- the parallel load/read engine keeps its promise
# (issue 11, items 3-7): nothing loaded that should not be, nothing lost,
# and every error is the real one.
#
#  - header => 'match' is checked on every path (load with 0/1/2 workers,
#    atomic and chunked, columns =>, load_serial, submit, resume, read
#    serial, parallel and through the CustomScan), with the same error;
#  - skip mode: a lock timeout while a batch is inserted is retried, never
#    captured as a bad row, and the table equals COPY's;
#  - a worker's own error reaches the user (SQLSTATE, message, line), never
#    "exited unexpectedly", in repeated parallel reads and loads;
#  - a cancel during the commit phase: either ERROR and nothing committed,
#    or success and everything committed -- never ERROR with the rows;
#  - a worker blocked by the leader's own uncommitted row is reported at
#    once in every mode, far below statement_timeout.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep time);

my $dir = PostgreSQL::Test::Utils::tempdir;
chmod 0755, $dir;

my $node = PostgreSQL::Test::Cluster->new('integrity');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'csvpipe'
max_prepared_transactions = 10
max_worker_processes = 24
timezone = 'UTC'
statement_timeout = '120s'
csvpipe.max_retries = 3
csvpipe.retry_delay = '100ms'
});
$node->start;

sub sql { return $node->safe_psql('postgres', $_[0]); }

# run one statement, return "SQLSTATE: message | line N" of its error, or
# "ok <output>"
sub try_sql
{
	my ($db, $query) = @_;
	my ($ret, $out, $err) = $node->psql($db, "\\set VERBOSITY verbose\n$query");
	return "ok $out" if $ret == 0;
	my ($code, $msg) = $err =~ /ERROR:\s+([0-9A-Z]{5}): ([^\n]*)/;
	my ($line) = $err =~ /CONTEXT:[^\n]*, line (\d+)/;
	return ($code // '?????') . ": " . ($msg // $err) . (defined $line ? " | line $line" : '');
}

sub write_file
{
	my ($name, $text) = @_;
	open(my $fh, '>', "$dir/$name") or die;
	print $fh $text;
	close $fh;
	chmod 0644, "$dir/$name";
	return "$dir/$name";
}

sub table_md5
{
	my ($db, $table) = @_;
	return $node->safe_psql($db,
		"SELECT count(*) || ' ' || coalesce(md5(string_agg(t::text, E'\\n' ORDER BY t::text)), '') FROM $table t");
}

sql('CREATE EXTENSION csvpipe');

# ---------------------------------------------------------------------------
# 1. header => 'match': one check, on every path
# ---------------------------------------------------------------------------
my $bad_hdr = write_file('zips_bad.csv',
	"zip_code,latitude\n" . join('', map { "$_,$_.5\n" } 1 .. 3000));
my $good_hdr = write_file('zips_good.csv',
	"zip,lat\n" . join('', map { "$_,$_.5\n" } 1 .. 3000));
sql("CREATE TABLE zips (zip int, lat float8, note text DEFAULT 'd')");
sql("CREATE TABLE copy_zips (zip int, lat float8, note text DEFAULT 'd');
	 COPY copy_zips (zip, lat) FROM '$good_hdr' (FORMAT csv, HEADER MATCH)");
my $want_zips = table_md5('postgres', 'copy_zips');
my $hdr_err = '22P04: column name mismatch in header line field 1: got "zip_code", expected "zip" | line 1';

my %load_paths = (
	'load, 1 worker, atomic' => "SELECT rows_loaded FROM csvpipe.load('%s', 'zips', columns => '{zip,lat}', header => 'match', workers => 1)",
	'load, 2 workers, atomic' => "SELECT rows_loaded FROM csvpipe.load('%s', 'zips', columns => '{zip,lat}', header => 'match', workers => 2, chunk_size => 4096)",
	'load, 2 workers, chunked' => "SELECT rows_loaded FROM csvpipe.load('%s', 'zips', columns => '{zip,lat}', header => 'match', workers => 2, atomic => false, chunk_size => 4096)",
	'load, 1 worker, chunked, skip' => "SELECT rows_loaded FROM csvpipe.load('%s', 'zips', columns => '{zip,lat}', header => 'match', workers => 1, atomic => false, on_error => 'skip')",
	'load, no worker' => "SELECT rows_loaded FROM csvpipe.load('%s', 'zips', columns => '{zip,lat}', header => 'match', workers => 0)",
	'load_serial' => "SELECT csvpipe.load_serial('%s', 'zips', columns => '{zip,lat}', header => 'match')");
for my $path (sort keys %load_paths)
{
	sql('TRUNCATE zips');
	is(try_sql('postgres', sprintf($load_paths{$path}, $bad_hdr)), $hdr_err,
		"header mismatch refused: $path");
	is(sql('SELECT count(*) FROM zips'), '0', "nothing loaded: $path");
	is(try_sql('postgres', sprintf($load_paths{$path}, $good_hdr)), 'ok 3000',
		"matching header accepted: $path");
	is(table_md5('postgres', 'zips'), $want_zips, "rows equal COPY's: $path");
}

# without columns =>: the target's own column names
sql('CREATE TABLE zips2 (zip int, lat float8)');
is(try_sql('postgres', "SELECT rows_loaded FROM csvpipe.load('$bad_hdr', 'zips2', header => 'match', workers => 2, chunk_size => 4096)"),
	$hdr_err, 'header mismatch refused: load without columns =>');

# resume checks again: a chunked job with header => 'match' fails on a bad
# row, the column is renamed meanwhile, and the resumed job's header no
# longer matches
my $badrow = write_file('zips_badrow.csv',
	"zip,lat\n" . join('', map { "$_,$_.5\n" } 1 .. 29999) . "30000,oops\n");
sql('CREATE TABLE zr (zip int, lat float8)');
like(try_sql('postgres', "SELECT rows_loaded FROM csvpipe.load('$badrow', 'zr', header => 'match', workers => 2, atomic => false, chunk_size => 4096)"),
	qr/^22P02: invalid input syntax for type double precision: "oops" \| line 30001$/, 'a chunked job fails on its bad row');
my $jid = sql("SELECT max(job_id) FROM csvpipe.job WHERE path = '$badrow' AND state = 'failed'");
like($jid, qr/^\d+$/, 'the failed job is recorded');
sql('ALTER TABLE zr RENAME COLUMN zip TO zipcode');
is(try_sql('postgres', "SELECT rows_loaded FROM csvpipe.resume($jid)"),
	'22P04: column name mismatch in header line field 1: got "zip", expected "zipcode" | line 1',
	'header mismatch refused: resume');

# submit: the runner refuses it too (one chunk in the runner, and through the engine)
for my $w (1, 2)
{
	sql("CREATE TABLE zips_s$w (zip int, lat float8, note text DEFAULT 'd')");
	my $job = sql("SELECT csvpipe.submit('$bad_hdr', 'zips_s$w', columns => '{zip,lat}', header => 'match', workers => $w, chunk_size => 4096)");
	# wait first, then read the row: in one statement the row (and its
	# error) comes from the snapshot taken before wait() waited
	my $state = sql("SELECT csvpipe.wait($job, '60s')");
	like($state . ' ' . sql("SELECT error FROM csvpipe.jobs WHERE job_id = $job"),
		qr/^failed column name mismatch in header line field 1: got "zip_code", expected "zip"$/m,
		"submit, $w workers: the job fails with the header error");
	is(sql("SELECT count(*) FROM zips_s$w"), '0', "submit, $w workers: nothing loaded");
}

# read, serial and parallel, as a function and through the CustomScan
for my $w (0, 2)
{
	is(try_sql('postgres', "SELECT count(*) FROM csvpipe.read('$bad_hdr', header => 'match', workers => $w, chunk_size => 4096) AS t(zip int, lat float8)"),
		$hdr_err, "header mismatch refused: read, $w workers");
	is(try_sql('postgres', "SELECT sum(zip) FROM csvpipe.read('$good_hdr', header => 'match', workers => $w, chunk_size => 4096) AS t(zip int, lat float8)"),
		'ok 4501500', "matching header accepted: read, $w workers");
	is(try_sql('postgres', "SELECT * FROM csvpipe.read('$bad_hdr', header => 'match', workers => $w, chunk_size => 4096) AS t(zip int, lat float8) WHERE zip = 7"),
		$hdr_err, "header mismatch refused: read in FROM with a qual, $w workers");
}

# ---------------------------------------------------------------------------
# 2. skip mode: a lock timeout while a batch is inserted is retried, never
#    captured as a bad row; the batch never overruns
# ---------------------------------------------------------------------------
sql('CREATE DATABASE lt');
sql("ALTER DATABASE lt SET lock_timeout = '100ms'");
$node->safe_psql('lt', 'CREATE EXTENSION csvpipe');
my @bad_lines = (3, 6001, 19999);
# lines of 16 bytes: chunks of exactly 8194 lines, so chunk 0 (two bad rows)
# ends with the row that fills its second batch of 4096 -- the flush happens
# inside the fast path's tokenizing loop, where only libcsv's errors may be
# caught
my $skip_csv = write_file('skip.csv', "id,v\n" . join('', map {
	my $line = $_ + 1;
	sprintf((grep { $_ == $line } @bad_lines) ? "%06d,x%07d\n" : "%06d,%08d\n", $_, $_)
} 1 .. 30000));
my $skip_chunk = 16 * 8194;
$node->safe_psql('lt', "CREATE TABLE sk (id int PRIMARY KEY, v int);
	CREATE TABLE copy_sk (id int PRIMARY KEY, v int);
	CREATE TEMP TABLE raw (id int, v text);
	COPY raw FROM '$skip_csv' (FORMAT csv, HEADER);
	INSERT INTO copy_sk SELECT id, v::int FROM raw WHERE v !~ '^x'");
my $want_sk = table_md5('lt', 'copy_sk');
for my $atomic ('false', 'true')
{
	$node->safe_psql('lt', 'TRUNCATE sk');
	# another session holds key 5000 (in the second batch of 4096 rows, of
	# the chunk's first run of records) for two seconds: the batch insert
	# times out on its lock more often than insert_batch retries
	my $holder = $node->background_psql('lt', on_error_stop => 0);
	$holder->query_safe('BEGIN; INSERT INTO sk VALUES (5000, -1)');
	my $loader = $node->background_psql('lt', on_error_stop => 0);
	$loader->query_until(qr/started/, qq{\\echo started
SELECT rows_loaded || ' ' || rows_rejected FROM csvpipe.load('$skip_csv', 'sk', workers => 2, atomic => $atomic, on_error => 'skip', chunk_size => $skip_chunk);
\\echo finished
});
	sleep(2);
	$holder->query_safe('ROLLBACK');
	$holder->quit;
	my $out = $loader->query_until(qr/finished/, '');
	$loader->quit;
	like($out, qr/^29997 3$/m, "skip, atomic $atomic, lock timeouts: 29997 rows loaded, 3 rejected");
	is(table_md5('lt', 'sk'), $want_sk, "skip, atomic $atomic, lock timeouts: table equals COPY's");
	my $job = $node->safe_psql('lt', "SELECT max(job_id) FROM csvpipe.job WHERE path = '$skip_csv'");
	is($node->safe_psql('lt', "SELECT string_agg(line_no || ':' || sqlstate, ',' ORDER BY line_no) FROM csvpipe.errors WHERE job_id = $job"),
		join(',', map { "$_:22P02" } @bad_lines),
		"skip, atomic $atomic: only the bad rows are captured, none with 55P03/57014");
}

# ---------------------------------------------------------------------------
# 3. a worker's own error always reaches the user
# ---------------------------------------------------------------------------
my @positions = (2, 43, 9000, 20001);
for my $pos (@positions)
{
	write_file("err_$pos.csv", "id,v\n" . join('', map {
		$_ + 1 == $pos ? "$_,$_,extra\n" : "$_,$_\n"
	} 1 .. 20000));
}
sql('CREATE TABLE ev (id int, v int)');
my %seen;
my $runs = 0;
for my $round (1 .. 4)
{
	for my $pos (@positions)
	{
		my $f = "$dir/err_$pos.csv";
		for my $w (2, 4)
		{
			my $want = "22P04: wrong number of fields: expected 2, found 3 | line $pos";
			my @stmts = (
				"SELECT count(*) FROM csvpipe.read('$f', workers => $w, chunk_size => 2000) AS t(id int, v int)",
				"SELECT * FROM csvpipe.read('$f', workers => $w, chunk_size => 2000) AS t(id int, v int) ORDER BY id DESC LIMIT 1",
				"SELECT rows_loaded FROM csvpipe.load('$f', 'ev', workers => $w, chunk_size => 2000)",
				"SELECT rows_loaded FROM csvpipe.load('$f', 'ev', workers => $w, chunk_size => 2000, atomic => false)");
			for my $s (@stmts)
			{
				my ($ret, $out, $err) = $node->psql('postgres', "\\set VERBOSITY verbose\n$s");
				my ($code, $msg) = $err =~ /ERROR:\s+([0-9A-Z]{5}): ([^\n]*)/;
				my ($line) = $err =~ /CONTEXT:[^\n]*, line (\d+)/;
				my $got = ($code // '?') . ": " . ($msg // '?') . " | line " . ($line // '?');
				$got .= ' (after a lost worker)' if $err =~ /was lost/;
				$runs++;
				$seen{$got}++ if $got ne $want;
			}
		}
	}
}
is(join("\n", map { "$seen{$_} x $_" } sort keys %seen), '',
	"$runs parallel reads and loads with a bad row: always the worker's own error and line");

# ---------------------------------------------------------------------------
# 4. a cancel during the commit phase
# ---------------------------------------------------------------------------
my $big = write_file('big.csv', "id,v\n" . join('', map { "$_,$_\n" } 1 .. 200000));
# a gate the test can close: each chunk's statement trigger passes it
sql(q{CREATE TABLE cc (id int, v int);
	CREATE FUNCTION gate() RETURNS trigger LANGUAGE plpgsql AS $$
	BEGIN PERFORM pg_advisory_lock_shared(42); PERFORM pg_advisory_unlock_shared(42); RETURN NULL; END $$;
	CREATE TRIGGER gate BEFORE INSERT ON cc FOR EACH STATEMENT EXECUTE FUNCTION gate()});
for my $atomic ('true', 'false')
{
	sql('TRUNCATE cc');
	my $holder = $node->background_psql('postgres', on_error_stop => 0);
	$holder->query_safe('SELECT pg_advisory_lock(42)');
	my $loader = $node->background_psql('postgres', on_error_stop => 0);
	$loader->query_until(qr/started/, qq{\\echo started
SELECT rows_loaded FROM csvpipe.load('$big', 'cc', workers => 2, atomic => $atomic, chunk_size => 100000);
\\echo finished
});
	$node->poll_query_until('postgres', "SELECT count(*) = 1 FROM csvpipe.job WHERE path = '$big' AND state = 'running'")
	  or die 'the load did not start';
	# the coordinator records the job's end: hold that row, so the commit
	# phase lasts until we let it go, then open the gate
	$holder->query_safe("BEGIN; SELECT 1 FROM csvpipe.job WHERE path = '$big' AND state = 'running' FOR NO KEY UPDATE; SELECT pg_advisory_unlock(42)");
	$node->poll_query_until('postgres',
		"SELECT count(*) > 0 FROM pg_stat_activity WHERE backend_type = 'csvpipe coordinator' AND wait_event_type = 'Lock'")
	  or die 'the coordinator did not wait';
	sql("SELECT pg_cancel_backend(pid) FROM pg_stat_activity WHERE query LIKE '%csvpipe.load(%big.csv%' AND backend_type = 'client backend' AND pid <> pg_backend_pid()");
	usleep(300_000);
	$holder->query_safe('COMMIT');
	$holder->quit;
	my $out = $loader->query_until(qr/finished/, '');
	my $err = $loader->{stderr};
	$loader->quit;
	my $rows = sql('SELECT count(*) FROM cc');
	is(($err =~ /ERROR/ ? 'error' : 'ok') . " $rows", 'ok 200000',
		"atomic $atomic: a cancel after the decision to commit reports success with every row");
	like($out, qr/^200000$/m, "atomic $atomic: the result row says 200000");
	is(sql("SELECT state FROM csvpipe.job WHERE path = '$big' ORDER BY job_id DESC LIMIT 1"), 'done',
		"atomic $atomic: the job is done");
}

# and at any moment: either ERROR and nothing, or success and everything
for my $delay_ms (20, 60, 120, 200, 300, 450)
{
	sql('TRUNCATE cc');
	my $loader = $node->background_psql('postgres', on_error_stop => 0);
	$loader->query_until(qr/started/, qq{\\echo started
SELECT rows_loaded FROM csvpipe.load('$big', 'cc', workers => 2, chunk_size => 100000);
\\echo finished
});
	usleep($delay_ms * 1000);
	sql("SELECT pg_cancel_backend(pid) FROM pg_stat_activity WHERE query LIKE '%csvpipe.load(%big.csv%' AND backend_type = 'client backend' AND pid <> pg_backend_pid()");
	$loader->query_until(qr/finished/, '');
	my $err = $loader->{stderr};
	$loader->quit;
	# a rollback coordinator may still be finishing
	$node->poll_query_until('postgres', "SELECT count(*) = 0 FROM pg_prepared_xacts") or die;
	my $rows = sql('SELECT count(*) FROM cc');
	my $outcome = ($err =~ /ERROR/ ? 'error' : 'ok') . " $rows";
	ok($outcome eq 'error 0' || $outcome eq 'ok 200000',
		"atomic, cancel after ${delay_ms}ms: all or nothing, and the answer says which ($outcome)");
}

# ---------------------------------------------------------------------------
# 5. a worker blocked by the leader's own uncommitted row
# ---------------------------------------------------------------------------
my $ids = write_file('ids.csv', "id\n" . join('', map { "$_\n" } 1 .. 5000));
sql('CREATE TABLE pk (id int PRIMARY KEY)');
for my $mode ("workers => 1, mode => 'prepared'", "workers => 2, mode => 'prepared'", "workers => 1, atomic => false",
	"workers => 2, atomic => false", "workers => 2, atomic => false, on_error => 'skip'")
{
	sql('TRUNCATE pk');
	my $t0 = time();
	my $got = try_sql('postgres', "BEGIN; INSERT INTO pk VALUES (100);
		SELECT rows_loaded FROM csvpipe.load('$ids', 'pk', $mode, chunk_size => 1000);");
	my $secs = time() - $t0;
	$got =~ s/worker \d+/worker N/;
	is($got, '55P03: csvpipe worker N waits for a lock held by this transaction',
		"$mode: a worker waiting for the caller's own row is an error");
	ok($secs < 20, "$mode: reported in ${\ sprintf('%.1f', $secs)}s, far below statement_timeout");
	# atomic: nothing; chunked: the chunks committed before, as the ledger says
	is(sql("SELECT count(*) = coalesce((SELECT sum(rows) FROM csvpipe.chunks c JOIN csvpipe.job j USING (job_id)
			WHERE j.path = '$ids' AND j.job_id = (SELECT max(job_id) FROM csvpipe.job WHERE path = '$ids') AND NOT j.atomic), 0) FROM pk"),
		't', "$mode: the table holds exactly the committed chunks (none when atomic)");
	is(sql("SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'csvpipe worker'"), '0',
		"$mode: no worker left");
}
# transaction mode: the leader inserts, so it is COPY's unique violation, with its line
for my $w (1, 2)
{
	sql('TRUNCATE pk');
	is( try_sql('postgres', "BEGIN; INSERT INTO pk VALUES (100);
		SELECT rows_loaded FROM csvpipe.load('$ids', 'pk', workers => $w, chunk_size => 1000);"),
		'23505: duplicate key value violates unique constraint "pk_pkey" | line 101',
		"transaction mode, $w workers: the caller's own row is a plain unique violation with its line");
}
# a read is unaffected
is(try_sql('postgres', "BEGIN; INSERT INTO pk VALUES (100);
	SELECT count(*) FROM csvpipe.read('$ids', workers => 2, chunk_size => 1000) AS t(id int); ROLLBACK;"),
	"ok 5000", 'a parallel read in the same situation works');

$node->stop;
done_testing();
