# 060_cache.pl -- the shared result cache (src/cache/cache.c), with exact hit and
# miss counts: a repeat read hits; touching the file, rewriting it with the
# same size, replacing it by another inode, changing an option or the column
# types, bumping csvpipe.cache_version, cache_invalidate() and TTL expiry
# each miss; LRU eviction under a small cache_size and the entry size limit;
# LIMIT, errors and cancel do not store; memory used returns to zero; 8
# concurrent readers of one file return identical rows, also while entries
# are evicted and invalidated under them; without shared_preload_libraries
# reads work uncached and the cache functions say what is missing.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep);

my $gen = $ENV{CSVPIPE_GEN_CSV} // 'test/gen/gen_csv';
my $dir = PostgreSQL::Test::Utils::tempdir;
my $cols = 'id bigint, ts timestamptz, name text, amount numeric(12,2), flag boolean';
# files are given an mtime well before the reads: a file modified within the
# second before a read starts is read but not stored ("racily clean")
my $old = time - 3600;

sub gen
{
	my ($rows, $file, $seed) = @_;
	$seed //= 42;
	system("$gen narrow $rows $seed > $file") == 0
	  or die "gen_csv narrow $rows failed";
	utime($old, $old, $file) or die "utime $file: $!";
}

my $node = PostgreSQL::Test::Cluster->new('cache');
$node->init;
$node->append_conf(
	'postgresql.conf', qq{
shared_preload_libraries = 'csvpipe'
timezone = 'UTC'
max_parallel_workers_per_gather = 0
max_worker_processes = 16
});
$node->start;

sub sql { return $node->safe_psql('postgres', $_[0]); }

sql('CREATE EXTENSION csvpipe');

# count and md5 of a read's rows in file order, through the streaming scan
# (every column used, so every column converted)
sub read_q
{
	my ($file, $opts, $c) = @_;
	$opts //= '';
	$c //= $cols;
	my @names = map { (split / /)[0] } split /, /, $c;
	my $concat = join(", ", @names);
	return "SELECT count(*) || ' ' || md5(string_agg(concat_ws('|', $concat), E'\\n')) "
	  . "FROM csvpipe.read('$file'$opts) AS t($c)";
}
sub rows { return sql(read_q(@_)); }

sub uncached
{
	my ($file, $opts, $c) = @_;
	return rows($file, ($opts // '') . ', cache => false', $c);
}

# hits/misses/evictions/invalidations/entries
sub stats
{
	return sql("SELECT concat_ws('/', hits, misses, evictions, invalidations, entries) "
		  . "FROM csvpipe.cache_stats");
}

sub reset_cache
{
	sql('SELECT csvpipe.cache_invalidate(); SELECT csvpipe.cache_reset_stats()');
}

sub set_guc
{
	my ($name, $value) = @_;
	sql("ALTER SYSTEM SET $name = '$value'; SELECT pg_reload_conf()");
	$node->poll_query_until('postgres',
		"SELECT current_setting('$name') = '$value'")
	  or die "$name did not become $value";
}

# ---- repeat read, cache => false, both read paths, column subsets ----------

my $fa = "$dir/a.csv";
gen(20000, $fa);
my $want = uncached($fa);
reset_cache();
is(rows($fa), $want, 'first read returns the uncached rows');
is(stats(), '0/1/0/0/1', 'first read: a miss that stores an entry');
is(rows($fa), $want, 'repeat read returns the same rows');
is(stats(), '1/1/0/0/1', 'repeat read: a hit');
uncached($fa);
is(stats(), '1/1/0/0/1', 'cache => false neither hits nor misses');

like(
	sql("EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) "
		  . "SELECT count(*) FROM csvpipe.read('$fa') AS t($cols)"),
	qr/Cache: hit/, 'EXPLAIN ANALYZE shows the hit');
is(stats(), '2/1/0/0/1', 'EXPLAIN ANALYZE counted');

# a whole-row reference goes through FunctionScan: same cache
my $srf = "SELECT count(*) || ' ' || md5(string_agg(t::text, E'\\n')) FROM csvpipe.read('$fa'%s) AS t($cols)";
is(sql(sprintf($srf, '')), sql(sprintf($srf, ', cache => false')),
	'FunctionScan path served from the entry');
is(stats(), '3/1/0/0/1', 'FunctionScan path: a hit');

# a query that uses one column is served by the fully converted entry
my $sum = "SELECT sum(amount) FROM csvpipe.read('$fa'%s) AS t($cols)";
is(sql(sprintf($sum, '')), sql(sprintf($sum, ', cache => false')),
	'sum(amount) from the full entry');
is(stats(), '4/1/0/0/1', 'a column subset hits the full entry');

# ... while a partly converted entry serves only its own subset
reset_cache();
is(sql(sprintf($sum, '')), sql(sprintf($sum, ', cache => false')), 'sum(amount), cold');
is(sql(sprintf($sum, '')), sql(sprintf($sum, ', cache => false')), 'sum(amount), warm');
is(stats(), '1/1/0/0/1', 'a column subset stores and hits its own entry');
is(sql("SELECT columns FROM csvpipe.cache"), '-, -, -, numeric(12,2), -',
	'the view shows which columns the entry converted');
rows($fa);
is(stats(), '1/2/0/0/2', 'all columns: a miss (the subset entry cannot serve it)');

# read_text has entries of its own
my $text = "SELECT count(*) || ' ' || md5(string_agg(line_no || ':' || array_to_string(fields, '|', '~'), E'\\n')) "
  . "FROM csvpipe.read_text('$fa'%s)";
is(sql(sprintf($text, '')), sql(sprintf($text, ', cache => false')), 'read_text, cold');
is(sql(sprintf($text, '')), sql(sprintf($text, ', cache => false')), 'read_text, warm');
is(stats(), '2/3/0/0/3', 'read_text: a miss, then a hit');

# ---- options and column types are part of the key --------------------------

reset_cache();
rows($fa);
is(rows($fa, ", skip_rows => 1"), uncached($fa, ", skip_rows => 1"), 'skip_rows => 1 rows');
is(stats(), '0/2/0/0/2', 'another option: a miss, stored beside the first');
rows($fa, ", skip_rows => 1");
rows($fa);
is(stats(), '2/2/0/0/2', 'both option sets hit afterwards');

my $cols14 = $cols =~ s/numeric\(12,2\)/numeric(14,2)/r;
my $colstext = $cols =~ s/numeric\(12,2\)/text/r;
is(rows($fa, '', $cols14), uncached($fa, '', $cols14), 'numeric(14,2) rows');
is(stats(), '2/3/0/0/3', 'another typmod: a miss');
is(rows($fa, '', $colstext), uncached($fa, '', $colstext), 'text column rows');
is(stats(), '2/4/0/0/4', 'another type: a miss');
sql("SET timezone = 'Asia/Tokyo'; " . read_q($fa));
is(stats(), '2/5/0/0/5', 'another TimeZone (typed input depends on it): a miss');

# ---- the file changes -------------------------------------------------------

reset_cache();
rows($fa);
rows($fa);
is(stats(), '1/1/0/0/1', 'primed');

utime($old + 60, $old + 60, $fa) or die;
is(rows($fa), $want, 'touched file: same rows');
is(stats(), '1/2/0/1/1', 'touching the file (mtime): a miss; the stale entry is replaced');
rows($fa);
is(stats(), '2/2/0/1/1', 'then a hit');

# rewrite in place with the same size: swap two data lines
sub swap_lines
{
	my ($file, $i, $j) = @_;
	my @lines = split /(?<=\n)/, slurp_file($file);
	@lines[ $i, $j ] = @lines[ $j, $i ];
	return join('', @lines);
}
my $size = -s $fa;
my $ino = (stat $fa)[1];
my $content = swap_lines($fa, 1, 2);
open(my $fh, '+<', $fa) or die;
print $fh $content;
close $fh;
is(-s $fa, $size, 'rewritten with the same size');
is((stat $fa)[1], $ino, 'in place (same inode)');
sleep 2;    # out of the racy window of the new mtime
my $want2 = uncached($fa);
isnt($want2, $want, 'the rewritten file has other rows');
is(rows($fa), $want2, 'same-size rewrite: the new rows');
is(stats(), '2/3/0/2/1', 'same-size rewrite: a miss');
rows($fa);
is(stats(), '3/3/0/2/1', 'then a hit');

# replaced by another file (new inode) with the same size and mtime
my $mtime = (stat $fa)[9];
my $fb = "$dir/a.csv.new";
open($fh, '>', $fb) or die;
print $fh swap_lines($fa, 3, 4);
close $fh;
utime($mtime, $mtime, $fb) or die;
rename($fb, $fa) or die;
is(-s $fa, $size, 'replacement has the same size');
is((stat $fa)[9], $mtime, 'and the same mtime');
isnt((stat $fa)[1], $ino, 'but another inode');
my $want3 = uncached($fa);
is(rows($fa), $want3, 'replaced file: the new rows');
is(stats(), '3/4/0/3/1', 'replaced file (inode): a miss');

# a file modified too recently (here: mtime in the future) is not stored
my $future = time + 600;
utime($future, $future, $fa) or die;
rows($fa);
rows($fa);
is(stats(), '3/6/0/4/0', 'recently modified file: read, not stored (two misses)');
utime($old, $old, $fa) or die;
rows($fa);
rows($fa);
is(stats(), '4/7/0/4/1', 'stored again once its mtime is old');

# ---- csvpipe.cache_version ------------------------------------------------

reset_cache();
rows($fa);
rows($fa);
is(sql('SELECT version FROM csvpipe.cache'), '1', 'entry made under version 1');
set_guc('csvpipe.cache_version', '2');
is(rows($fa), $want3, 'rows after the version bump');
is(stats(), '1/2/0/1/1', 'version bump: a miss; the old entry was invalidated');
is(sql('SELECT version FROM csvpipe.cache'), '2', 'entry made under version 2');
rows($fa);
is(stats(), '2/2/0/1/1', 'then a hit');

# ---- cache_invalidate ----------------------------------------------------

reset_cache();
mkdir "$dir/sub" or die;
my $s1 = "$dir/sub/s1.csv";
gen(1000, $s1, 7);
rows($fa);
rows($s1);
rows($s1, ', skip_rows => 1');
is(stats(), '0/3/0/0/3', 'three entries');
is(sql("SELECT csvpipe.cache_invalidate('$fa')"), '1', 'invalidate(file) removes its entry');
rows($fa);
is(stats(), '0/4/0/1/3', 'invalidated file: a miss');
is(sql("SELECT csvpipe.cache_invalidate('$dir/sub')"), '2',
	'invalidate(directory) removes the entries of the files under it');
is(sql("SELECT csvpipe.cache_invalidate('$dir/nothing.csv')"), '0', 'unknown path: 0');
is(sql('SELECT csvpipe.cache_invalidate()'), '1', 'invalidate() removes all');
is(sql('SELECT bytes_used FROM csvpipe.cache_stats'), '0', 'memory used is back to zero');

# ---- TTL ------------------------------------------------------------------

set_guc('csvpipe.cache_ttl', '2s');
reset_cache();
rows($fa);
rows($fa);
is(stats(), '1/1/0/0/1', 'TTL: miss, hit');
is(sql("SELECT expires_at - created_at FROM csvpipe.cache"), '00:00:02', 'expires_at shown');
sleep 3;
is(rows($fa), $want3, 'rows after expiry');
is(stats(), '1/2/0/1/1', 'expired entry: a miss (counted as invalidated)');
rows($fa);
is(stats(), '2/2/0/1/1', 'then a hit');
set_guc('csvpipe.cache_ttl', '0');

# ---- LIMIT, errors and cancel do not store --------------------------------

reset_cache();
is(sql("SELECT count(*) FROM (SELECT * FROM csvpipe.read('$fa') AS t($cols) LIMIT 5) x"),
	'5', 'LIMIT 5');
is(stats(), '0/1/0/0/0', 'LIMIT: a miss that stores nothing');
is(sql('SELECT bytes_used FROM csvpipe.cache_stats'), '0', 'and keeps no memory');
rows($fa);
sql("SELECT * FROM csvpipe.read('$fa') AS t($cols) LIMIT 5");
is(stats(), '1/2/0/0/1', 'after a complete read, LIMIT hits');

my $bad = "$dir/bad.csv";
open($fh, '>', $bad) or die;
print $fh "id,amount\n", (map { "$_,$_.5\n" } 1 .. 5000), "5001,x\n";
close $fh;
utime($old, $old, $bad) or die;
reset_cache();
for (1 .. 2)
{
	my ($ret, $out, $err) = $node->psql('postgres',
		"SELECT count(*) FROM csvpipe.read('$bad') AS t(id int, amount numeric)");
	like($err, qr/invalid input syntax for type numeric: "x"/, "bad file: error $_");
}
is(stats(), '0/2/0/0/0', 'a read that fails stores nothing (two misses)');

set_guc('csvpipe.cache_max_entry_percent', '100');
my $big = "$dir/big.csv";
gen(2000000, $big);
my ($ret, $out, $err) = $node->psql('postgres',
	"SET statement_timeout = '200ms'; SELECT count(*) FROM csvpipe.read('$big') AS t($cols)");
like($err, qr/statement timeout/, 'a read cancelled by statement_timeout');
is(sql('SELECT concat_ws(\'/\', entries, bytes_used) FROM csvpipe.cache_stats'), '0/0',
	'cancelled read: nothing stored, its memory freed');
set_guc('csvpipe.cache_max_entry_percent', '25');

# ---- open cursors: a pinned entry, an entry being built; backend exit --------

reset_cache();
rows($fa);
my $cur = $node->background_psql('postgres');
$cur->query_safe("BEGIN; DECLARE c CURSOR FOR SELECT * FROM csvpipe.read('$fa') AS t($cols)");
$cur->query_safe('FETCH 2 FROM c');
is(stats(), '1/1/0/0/1', 'the cursor hit');
is(sql('SELECT csvpipe.cache_invalidate()'), '1', 'invalidated while the cursor reads it');
ok(sql('SELECT bytes_used > 0 FROM csvpipe.cache_stats') eq 't',
	'its memory stays while the cursor holds it');
is($cur->query_safe('FETCH ALL FROM c') =~ tr/\n//, 20000 - 2 - 1, 'the cursor reads the rest of the rows');
my $curpid = $cur->query_safe('SELECT pg_backend_pid()');
sql("SELECT pg_terminate_backend($curpid)");
$node->poll_query_until('postgres', 'SELECT bytes_used = 0 FROM csvpipe.cache_stats')
  or die 'the pin of a terminated backend was not released';
pass('a terminated reader releases its pin, and the entry is freed');
$cur->quit;

reset_cache();
$cur = $node->background_psql('postgres');
$cur->query_safe("BEGIN; DECLARE c CURSOR FOR SELECT * FROM csvpipe.read('$fa') AS t($cols)");
$cur->query_safe('FETCH 2 FROM c');
is(rows($fa), $want3, 'another session reads the file while the cursor builds its entry');
is(stats(), '0/2/0/0/0', 'both miss; the other session does not wait and stores nothing');
$cur->query_safe('CLOSE c; COMMIT');
is(sql('SELECT concat_ws(\'/\', entries, bytes_used) FROM csvpipe.cache_stats'), '0/0',
	'a cursor closed early stores nothing and frees what it built');
$cur->query_safe("BEGIN; DECLARE c CURSOR FOR SELECT * FROM csvpipe.read('$fa') AS t($cols)");
$cur->query_safe('FETCH 2 FROM c');
$curpid = $cur->query_safe('SELECT pg_backend_pid()');
sql("SELECT pg_terminate_backend($curpid)");
$node->poll_query_until('postgres', 'SELECT bytes_used = 0 FROM csvpipe.cache_stats')
  or die 'the build of a terminated backend was not abandoned';
pass('a terminated builder abandons its entry');
$cur->quit;
rows($fa);
is(sql('SELECT entries FROM csvpipe.cache_stats'), '1', 'and the next read stores it');

# ---- parallel reads, on_error => 'skip' -------------------------------------

reset_cache();
is(rows($fa, ', workers => 2, chunk_size => 65536'), $want3, 'parallel read, cold');
is(stats(), '0/1/0/0/1', 'a parallel read stores its entry (the leader sees every row)');
is(rows($fa), $want3, 'a single-process read of it');
is(rows($fa, ', workers => 2'), $want3, 'a parallel read of it, served by the leader');
is(stats(), '2/1/0/0/1', 'both hit');
reset_cache();
sql("SELECT count(*) FROM csvpipe.read('$fa', workers => 2, ordered => false, chunk_size => 65536) AS t($cols)");
is(stats(), '0/1/0/0/0', 'ordered => false: a miss that does not store (rows not in file order)');

reset_cache();
for (1 .. 2)
{
	($ret, $out, $err) = $node->psql('postgres',
		"SELECT count(*) FROM csvpipe.read('$bad', on_error => 'skip') AS t(id int, amount numeric)");
	is($out, '5000', "on_error => 'skip': good rows ($_)");
	like($err, qr/skipped 1 bad row/, "on_error => 'skip': the bad row is reported ($_)");
}
is(stats(), '0/2/0/0/0', 'a read that skipped rows is not stored, so it reports them every time');
is(rows($fa, ", on_error => 'skip'"), $want3, "on_error => 'skip' on a clean file");
is(rows($fa), $want3, 'then on_error => stop');
is(stats(), '1/3/0/0/1', 'a clean read is stored whatever on_error was');

# ---- LRU eviction and the entry size limit -----------------------------------

set_guc('csvpipe.cache_size', '1MB');
set_guc('csvpipe.cache_max_entry_percent', '50');
my @l = map { "$dir/l$_.csv" } 1 .. 3;
gen(7000, $l[$_], 100 + $_) for 0 .. 2;    # ~400 kB each: two fit in 1 MB
reset_cache();
rows($l[0]);
rows($l[1]);
is(stats(), '0/2/0/0/2', 'two entries fit');
rows($l[0]);                               # l1 is now the most recently used
is(rows($l[2]), uncached($l[2]), 'third file rows');
is(stats(), '1/3/1/0/2', 'third file: one eviction');
is(sql("SELECT string_agg(replace(path, '$dir/', ''), ',' ORDER BY path) FROM csvpipe.cache"),
	'l1.csv,l3.csv', 'the least recently used (l2) was evicted');
rows($l[0]);
rows($l[1]);
is(stats(), '2/4/2/0/2', 'l2 again: a miss that evicts l3, now the least recently used');
is(sql("SELECT string_agg(replace(path, '$dir/', ''), ',' ORDER BY path) FROM csvpipe.cache"),
	'l1.csv,l2.csv', 'l1 and l2 cached');
ok(sql('SELECT bytes_used <= bytes_limit FROM csvpipe.cache_stats') eq 't',
	'bytes_used within bytes_limit');

# a read larger than 50% of the cache is not stored, and not retried
my $l20k = "$dir/l20k.csv";
gen(20000, $l20k, 9);    # ~1.1 MB of rows
reset_cache();
rows($l[0]);
rows($l20k);
is(sql('SELECT concat_ws(\'/\', misses, too_large, entries) FROM csvpipe.cache_stats'), '2/1/1',
	'too large: a miss, not stored');
is(rows($l20k), uncached($l20k), 'too large file: rows');
is(sql('SELECT concat_ws(\'/\', misses, too_large, entries, evictions) FROM csvpipe.cache_stats'),
	'3/1/1/0', 'read again: a miss that does not try to store it again');
is(sql("SELECT replace(path, '$dir/', '') FROM csvpipe.cache"), 'l1.csv',
	'the view shows stored entries only');
is(sql('SELECT csvpipe.cache_invalidate()'), '1', 'invalidate all');
is(sql('SELECT bytes_used FROM csvpipe.cache_stats'), '0', 'memory used is back to zero');
set_guc('csvpipe.cache_size', '64MB');
set_guc('csvpipe.cache_max_entry_percent', '25');

# ---- 8 concurrent readers ---------------------------------------------------

my $c = "$dir/c.csv";
gen(100000, $c, 5);
my $cwant = uncached($c);
reset_cache();
sql('CREATE TABLE conc (reader int, result text)');
my $locker = $node->background_psql('postgres');
$locker->query_safe('SELECT pg_advisory_lock(4242)');
my @readers;
for my $i (1 .. 8)
{
	my $bg = $node->background_psql('postgres');
	$bg->query_until(qr/ready/, "\\echo ready\n"
		  . "SELECT pg_advisory_lock_shared(4242);\n"
		  . "INSERT INTO conc SELECT $i, r FROM (" . read_q($c) . ") x(r);\n");
	push @readers, $bg;
}
$node->poll_query_until('postgres',
	"SELECT count(*) = 8 FROM pg_locks WHERE locktype = 'advisory' AND NOT granted")
  or die 'readers did not line up';
$locker->query_safe('SELECT pg_advisory_unlock(4242)');
$node->poll_query_until('postgres', 'SELECT count(*) = 8 FROM conc')
  or die 'readers did not finish';
$_->quit for @readers;
$locker->quit;
is(sql('SELECT count(DISTINCT result) || \' \' || min(result) FROM conc'), "1 $cwant",
	'8 concurrent readers return identical rows, equal to the uncached read');
is(sql('SELECT hits + misses, entries FROM csvpipe.cache_stats'), '8|1',
	'8 lookups, one entry');
note('concurrent first reads: ' . stats());
rows($c);
is(sql('SELECT hits + misses, entries FROM csvpipe.cache_stats'), '9|1', 'and it hits');

# stress: 8 clients read two files whose entries do not fit together, while a
# ninth invalidates; pinned entries are never freed under a reader
my $c2 = "$dir/c2.csv";
gen(50000, $c2, 6);
my $c1 = "$dir/c1.csv";
gen(50000, $c1, 8);
my %cw = (1 => uncached($c1), 2 => uncached($c2));
set_guc('csvpipe.cache_size', '4MB');
set_guc('csvpipe.cache_max_entry_percent', '100');
reset_cache();
sql('CREATE TABLE stress (file int, result text)');
for my $f (1, 2)
{
	my $file = $f == 1 ? $c1 : $c2;
	open($fh, '>', "$dir/stress$f.sql") or die;
	print $fh "INSERT INTO stress SELECT $f, r FROM (" . read_q($file) . ") x(r);\n";
	close $fh;
}
open($fh, '>', "$dir/inval.sql") or die;
print $fh "SELECT csvpipe.cache_invalidate();\n";
close $fh;
$node->command_ok(
	[
		'pgbench', '-n', '-c', '8', '-j', '8', '-t', '25',
		'-f', "$dir/stress1.sql\@10",
		'-f', "$dir/stress2.sql\@10",
		'-f', "$dir/inval.sql\@1",
		'postgres'
	],
	'pgbench: 8 clients reading, evicting and invalidating');
is(sql('SELECT string_agg(file || \':\' || n || \':\' || (r = CASE file WHEN 1 THEN \''
		  . $cw{1} . '\' ELSE \'' . $cw{2} . '\' END), \',\' ORDER BY file) '
		  . 'FROM (SELECT file, count(DISTINCT result) AS n, min(result) AS r FROM stress GROUP BY file) s'),
	'1:1:true,2:1:true', 'every stressed read returned the right rows');
note('stress: ' . stats() . ' bytes_used '
	  . sql('SELECT bytes_used FROM csvpipe.cache_stats'));
# whether the stress evicted depends on timing (a pinned entry is never
# evicted); in turn, one file's entry must push the other's out
my $ev = sql('SELECT evictions FROM csvpipe.cache_stats');
sql(read_q($c1));
sql(read_q($c2));
cmp_ok(sql('SELECT evictions FROM csvpipe.cache_stats'), '>', $ev,
	'after the stress, entries that do not fit together still evict each other');
sql('SELECT csvpipe.cache_invalidate()');
is(sql('SELECT bytes_used FROM csvpipe.cache_stats'), '0',
	'memory used back to zero: no reference was leaked');
set_guc('csvpipe.cache_size', '64MB');
set_guc('csvpipe.cache_max_entry_percent', '25');

# ---- a role without pg_read_server_files ------------------------------------

rows($fa);
sql('CREATE ROLE plain LOGIN');
($ret, $out, $err) = $node->psql('postgres',
	"SET ROLE plain; SELECT count(*) FROM csvpipe.read('$fa') AS t($cols)");
like($err, qr/permission denied to read file/, 'a cached file is still refused without the privilege');
is($node->safe_psql('postgres', 'SET ROLE plain; SELECT count(*), count(path) FROM csvpipe.cache'),
	'1|0', 'the view hides paths from roles that may not read server files');

my $log = slurp_file($node->logfile);
unlike($log, qr/(TRAP|terminated by signal|leaked)/, 'server log is clean');
$node->stop;

# ---- without shared_preload_libraries ------------------------------------

my $plain = PostgreSQL::Test::Cluster->new('nopreload');
$plain->init;
$plain->append_conf('postgresql.conf', "timezone = 'UTC'");
$plain->start;
$plain->safe_psql('postgres', 'CREATE EXTENSION csvpipe');
is($plain->safe_psql('postgres', read_q($fa)), $want3, 'not preloaded: reads work, uncached');
is($plain->safe_psql('postgres', read_q($fa)), $want3, 'again');
($ret, $out, $err) = $plain->psql('postgres', 'SELECT * FROM csvpipe.cache_stats');
like($err, qr/csvpipe.cache_stats needs shared_preload_libraries to include csvpipe.*\n.*\n.*HINT:  Add csvpipe to shared_preload_libraries/,
	'cache_stats says shared_preload_libraries must include csvpipe');
($ret, $out, $err) = $plain->psql('postgres', 'SELECT csvpipe.cache_invalidate()');
like($err, qr/shared_preload_libraries/, 'so does cache_invalidate');
($ret, $out, $err) = $plain->psql('postgres', 'SELECT * FROM csvpipe.cache');
like($err, qr/shared_preload_libraries/, 'and the cache view');
$plain->stop;

done_testing();
