# 071_security_files.pl -- how csvpipe opens, checks and caches server files
# (issue 10, findings 4, 5, 8, 10 and the cache view; issue 11, #12's cache
# part), each written as the attack:
#
#  - a symbolic link swapped between an allowed file and a secret outside
#    csvpipe.allowed_dirs while hundreds of reads run: read, read_text,
#    load_serial, load (leader + worker) and cached reads never return a
#    byte of the secret; with the link held still they read the allowed
#    file every time and refuse the secret every time;
#  - a cursor whose first FETCH runs inside a savepoint that is rolled back:
#    the following FETCHes return exactly the file's rows (CustomScan and
#    value-per-call SRF paths), and no relation file is closed under the
#    backend;
#  - paths outside csvpipe.allowed_dirs (existing, missing, a directory, a
#    link inside pointing out, globs for submit) get one identical error
#    that names only the path given; EXPLAIN's row estimate does not come
#    from an outside file;
#  - a cache hit after chmod 000 is refused like a miss; a domain constraint
#    added after a read was cached is not bypassed; the cache view shows
#    no entry of another database;
#  - dsm_create failing while the cache allocates never leaves a broken
#    entry behind.
#
# Roles: reader (pg_read_server_files), nobody (no privileges), owner (a
# non-superuser database owner).  Settings are in postgresql.conf.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use POSIX ();
use Time::HiRes qw(usleep);

my $base = PostgreSQL::Test::Utils::tempdir;
my $allowed = "$base/allowed";
my $outside = "$base/outside";
mkdir $allowed or die;
mkdir $outside or die;
mkdir "$outside/sub" or die;
chmod 0755, $base, $allowed, $outside;

my $old = time - 3600;

sub write_file
{
	my ($path, $text) = @_;
	open my $fh, '>', $path or die "$path: $!";
	print $fh $text;
	close $fh;
	utime($old, $old, $path) or die "utime $path: $!";
}

# the good file and the secret have the same shape
write_file("$allowed/good.csv",
	"id,name\n" . join('', map { "$_,good$_\n" } 1 .. 20));
write_file("$outside/secret.csv",
	"id,name\n" . join('', map { "$_,SECRET$_\n" } 1 .. 20));
# a big secret, for the planner's estimate (640,000 bytes: 10,000 rows at
# the planner's 64 bytes a row)
write_file("$outside/big.csv", join('', ("x" x 63 . "\n") x 10000));
write_file("$allowed/big.csv", join('', ("y" x 63 . "\n") x 5000));
# a file larger than a read block (256 kB), for the cursor tests
write_file("$allowed/long.csv",
	"n,pad\n" . join('', map { "$_," . ("p" x 40) . "\n" } 1 .. 20000));
symlink("$outside/secret.csv", "$allowed/link_out.csv") or die;

my $node = PostgreSQL::Test::Cluster->new('security_files');
$node->init;
$node->append_conf(
	'postgresql.conf', qq{
shared_preload_libraries = 'csvpipe'
csvpipe.allowed_dirs = '$allowed'
max_worker_processes = 16
max_parallel_workers_per_gather = 0
max_prepared_transactions = 10
});
$node->start;

sub sql { return $node->safe_psql($_[1] // 'postgres', $_[0]); }

sql('CREATE EXTENSION csvpipe');
sql(q{
CREATE ROLE reader LOGIN;
GRANT pg_read_server_files TO reader;
CREATE ROLE nobody LOGIN;
CREATE ROLE owner LOGIN CREATEDB;
CREATE TABLE t (id int, name text);
GRANT INSERT, SELECT, DELETE ON t TO reader;
-- the error of a statement, as one line: SQLSTATE, message, detail
CREATE FUNCTION try(q text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
	st text; msg text; det text;
BEGIN
	EXECUTE q;
	RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
	GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, msg = MESSAGE_TEXT,
		det = PG_EXCEPTION_DETAIL;
	RETURN st || ' ' || msg || ' | ' || coalesce(det, '');
END $$;
GRANT EXECUTE ON FUNCTION try(text) TO PUBLIC;
});

# ---------------------------------------------------------------------------
# 1. symlink swap race
# ---------------------------------------------------------------------------

# n attempts of one statement whose text() result is checked for the
# secret; returns "leaked/ok/refused"
sql(q{
CREATE FUNCTION race(q text, n int, pre text DEFAULT NULL) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
	leaked int := 0; ok int := 0; refused int := 0; r text; lasterr text := '';
BEGIN
	FOR i IN 1..n LOOP
		BEGIN
			IF pre IS NOT NULL THEN EXECUTE pre; END IF;
			EXECUTE q INTO r;
			IF r LIKE '%SECRET%' THEN leaked := leaked + 1; ELSE ok := ok + 1; END IF;
		EXCEPTION WHEN OTHERS THEN
			refused := refused + 1;
			lasterr := SQLERRM;
		END;
	END LOOP;
	RETURN leaked || '/' || ok || '/' || refused || '/' || lasterr;
END $$;
GRANT EXECUTE ON FUNCTION race(text, int, text) TO reader;
});

my $swap = "$allowed/swap.csv";
symlink("$allowed/good.csv", $swap) or die;

# the swapper: atomically points swap.csv at the good file, then at the
# secret, as fast as it can, until killed
sub start_swapper
{
	my $pid = fork();
	die "fork: $!" unless defined $pid;
	if ($pid == 0)
	{
		my $tmp = "$allowed/.swap.tmp.$$";
		my $parent = getppid();
		for (;;)
		{
			POSIX::_exit(0) if getppid() != $parent;	# the test died
			for my $target ("$allowed/good.csv", "$outside/secret.csv")
			{
				unlink $tmp;
				symlink($target, $tmp) and rename($tmp, $swap);
			}
		}
	}
	return $pid;
}

sub stop_swapper
{
	my $pid = shift;
	kill 'KILL', $pid;
	waitpid($pid, 0);
	unlink $swap;
	symlink("$allowed/good.csv", $swap) or die;
}

my %race = (
	'read_text' =>
	  [ "SELECT string_agg(fields::text, ',') FROM csvpipe.read_text('$swap', cache => false)", 400 ],
	'read' => [
		"SELECT string_agg(name, ',') FROM csvpipe.read('$swap', cache => false) AS x(id int, name text)",
		400
	],
	'read, cached' => [
		"SELECT string_agg(name, ',') FROM csvpipe.read('$swap') AS x(id int, name text)",
		400
	],
	'load_serial' => [
		"SELECT csvpipe.load_serial('$swap', 't')::text || string_agg(name, ',') FROM t",
		400, 'DELETE FROM t'
	],
	# the leader and then the worker each check the path: both must see
	# the allowed file (about 1 in 15 attempts), hence more attempts
	'load, 1 worker' => [
		"SELECT (csvpipe.load('$swap', 't', workers => 1, atomic => false)).rows_loaded::text || string_agg(name, ',') FROM t",
		250, 'DELETE FROM t'
	],
);
# the link held still, first: on the allowed file every attempt reads it,
# on the outside file every one is refused -- so the race below can
# neither pass by refusing everything nor by never seeing the outside file
# (the race's own count of successful reads is only noted: with luck it is
# 0, and "some reads still succeed" failed about once in 3,000 runs)
sub point_swap
{
	my ($target) = @_;
	unlink $swap;
	symlink($target, $swap) or die;
}
for my $what (sort keys %race)
{
	my ($q, $n, $pre) = @{ $race{$what} };
	$q =~ s/'/''/g;
	my $preq = defined $pre ? "'$pre'" : 'NULL';
	for my $still ([ "$allowed/good.csv", '0/5/0' ], [ "$outside/secret.csv", '0/0/5' ])
	{
		point_swap($still->[0]);
		my $r = $node->safe_psql('postgres', "SET ROLE reader; SELECT race('$q', 5, $preq)");
		my ($counts) = $r =~ m{^(\d+/\d+/\d+)/};
		is($counts, $still->[1],
			"symlink held on " . ($still->[0] =~ /secret/ ? 'the outside' : 'the allowed') . " file: $what "
			  . ($still->[0] =~ /secret/ ? 'refuses it every time' : 'reads it every time'))
		  or diag($r);
	}
	point_swap("$allowed/good.csv");
	my $pid = start_swapper();
	my $t0 = time;
	# bounded: a statement that hangs is a failure, not a stuck test
	my $res = eval {
		$node->safe_psql('postgres',
			"SET ROLE reader; SET statement_timeout = '60s'; SELECT race('$q', $n, $preq)");
	};
	my $err = $@;
	stop_swapper($pid);
	if ($err)
	{
		fail("symlink swap: $what: $err");
		next;
	}
	my ($leaked, $ok, $refused, $lasterr) = split m{/}, $res, 4;
	note "$what: $n attempts in " . (time - $t0)
	  . "s: leaked $leaked, ok $ok, refused $refused (last error: $lasterr)";
	is($leaked, 0, "symlink swap: $what never returns a byte of the outside file");
}
# the cache never stored the secret either
is(sql("SELECT count(*) FROM csvpipe.read('$allowed/good.csv') AS x(id int, name text) WHERE name LIKE 'SECRET%'"),
	'0', 'no cache entry holds the outside file');

# ---------------------------------------------------------------------------
# 2. cursor + savepoint + ROLLBACK TO: the descriptor is the scan's
# ---------------------------------------------------------------------------

sql('CREATE TABLE other (a int); INSERT INTO other SELECT generate_series(1, 1000)');
my $expect_long = sql(
	"SELECT count(*) || ' ' || md5(string_agg(fields[1] || ':' || fields[2], ',' ORDER BY line_no)) "
	  . "FROM csvpipe.read_text('$allowed/long.csv', cache => false)");
for my $case (
	[ 'CustomScan', "SELECT line_no, fields FROM csvpipe.read_text('$allowed/long.csv', cache => false)" ],
	[ 'SRF', "SELECT (csvpipe.read_text('$allowed/long.csv', cache => false)).*" ])
{
	my ($path, $query) = @$case;
	# a new session, so that "other"'s relation file is first opened after
	# the rollback and takes the lowest free descriptor number
	my ($stdout, $stderr);
	$node->psql(
		'postgres', qq{
SET ROLE reader;
BEGIN;
DECLARE c CURSOR FOR $query;
SAVEPOINT s;
FETCH 2 FROM c;
ROLLBACK TO SAVEPOINT s;
RESET ROLE;
SELECT 'other:' || count(*) FROM other;
SET ROLE reader;
CREATE TEMP TABLE got AS SELECT 0::bigint AS line_no, NULL::text[] AS fields WHERE false;
DO \$\$ DECLARE r record; cur refcursor := 'c'; BEGIN
  LOOP
    FETCH cur INTO r;
    EXIT WHEN NOT FOUND;
    INSERT INTO got VALUES (r.line_no, r.fields);
  END LOOP;
END \$\$;
COMMIT;
RESET ROLE;
SELECT 'other:' || count(*) FROM other;
},
		stdout => \$stdout,
		stderr => \$stderr,
		on_error_stop => 0);
	is($stderr, '', "$path cursor across ROLLBACK TO: no error");
	like($stdout, qr/other:1000\n(?:.*\n)*other:1000/, "$path cursor: the relation is still readable");
	# the rows of the two FETCHes together are the file's rows
	my $got = eval {
		$node->safe_psql(
		'postgres', qq{
BEGIN;
DECLARE c CURSOR FOR $query;
SAVEPOINT s;
FETCH 2 FROM c;
ROLLBACK TO SAVEPOINT s;
CREATE TEMP TABLE got2 AS SELECT 0::bigint AS line_no, NULL::text[] AS fields WHERE false;
DO \$\$ DECLARE r record; cur refcursor := 'c'; BEGIN
  LOOP
    FETCH cur INTO r;
    EXIT WHEN NOT FOUND;
    INSERT INTO got2 VALUES (r.line_no, r.fields);
  END LOOP;
END \$\$;
SELECT count(*) + 2 || ' ' || (SELECT md5(string_agg(f, ',' ORDER BY l)) FROM (
  SELECT line_no AS l, fields[1] || ':' || fields[2] AS f FROM got2
  UNION ALL SELECT n + 1, n || ':' || repeat('p', 40) FROM generate_series(1, 2) n) u)
FROM got2;
COMMIT;
});
	} // "error: $@";
	$got = (split /\n/, $got)[-1];
	is($got, $expect_long, "$path cursor across ROLLBACK TO returns exactly the file's rows");
}

# ---------------------------------------------------------------------------
# 3. nothing about a path outside csvpipe.allowed_dirs
# ---------------------------------------------------------------------------

sql('CREATE TABLE sink (line text); GRANT INSERT ON sink TO reader');
my $outside_err = "42501 file \"<P>\" is outside csvpipe.allowed_dirs | "
  . "csvpipe reads only files under csvpipe.allowed_dirs (\"$allowed\").";
for my $p ("$outside/secret.csv", "$outside/missing.csv", $outside, "$outside/sub",
	"$outside/sub/", "$allowed/link_out.csv", "$allowed/../outside/secret.csv",
	"$allowed/../outside/missing.csv", "$outside/nodir/missing.csv", '/etc/passwd', '/proc/self/environ')
{
	for my $q ("SELECT * FROM csvpipe.read_text('$p')",
		"SELECT * FROM csvpipe.read('$p') AS t(a text)",
		"SELECT csvpipe.load_serial('$p', 'sink')",
		"SELECT csvpipe.submit('$p', 'sink')")
	{
		(my $qq = $q) =~ s/'/''/g;
		my $err = $node->safe_psql('postgres', "SET ROLE reader; SELECT try('$qq')");
		(my $norm = $err) =~ s/\Q$p\E/<P>/g;
		is($norm, $outside_err, "one error for $q");
	}
}
# globs: the pattern's directory is checked before anything is listed
for my $p ("$outside/*.csv", "$outside/nomatch*.csv", "$outside/*", "$allowed/../outside/*.csv",
	"$outside/nodir/*.csv")
{
	my $err = $node->safe_psql('postgres', "SET ROLE reader; SELECT try('SELECT csvpipe.submit(''$p'', ''sink'')')");
	(my $norm = $err) =~ s/\Q$p\E/<P>/g;
	is($norm, $outside_err, "one error for the glob $p");
}
# a glob inside whose matches lead outside: those matches are not there
is(eval { $node->safe_psql('postgres',
		"SET ROLE reader; SELECT count(*) FROM csvpipe.submit('$allowed/link_out*', 'sink')") } // "error: $@",
	'0', 'a glob match that leads outside is left out');
# legitimate errors inside still say what is wrong
like($node->safe_psql('postgres', "SET ROLE reader; SELECT try('SELECT * FROM csvpipe.read_text(''$allowed/missing.csv'')')"),
	qr/^58P01 could not open file ".*missing.csv" for reading: No such file or directory/,
	'a missing file inside is reported as missing');
like($node->safe_psql('postgres', "SET ROLE reader; SELECT try('SELECT * FROM csvpipe.read_text(''$allowed'')')"),
	qr/^42809 "\Q$allowed\E" is a directory/, 'a directory inside is reported as one');
# the unprivileged role learns nothing either
like($node->safe_psql('postgres', "SET ROLE nobody; SELECT try('SELECT * FROM csvpipe.read_text(''$outside/secret.csv'')')"),
	qr/^42501 permission denied to read file/, 'no privilege: permission denied first');

# the planner's row estimate
sub estimate
{
	my ($p) = @_;
	my $plan = $node->safe_psql('postgres',
		"SET ROLE reader; EXPLAIN SELECT * FROM csvpipe.read_text('$p')");
	return $plan =~ /rows=(\d+)/ ? $1 : "no estimate in $plan";
}
is(estimate("$outside/big.csv"), '1000', 'EXPLAIN: no estimate from an outside file');
is(estimate("$outside/missing.csv"), '1000', 'EXPLAIN: same for a missing outside file');
is(estimate("$allowed/big.csv"), '5000', 'EXPLAIN: an allowed file is estimated from its size');

# ---------------------------------------------------------------------------
# 4. the cache's trust rules
# ---------------------------------------------------------------------------

write_file("$allowed/perm.csv", "id,name\n1,a\n2,b\n");
my $readperm = "SELECT string_agg(name, ',') FROM csvpipe.read('$allowed/perm.csv') AS x(id int, name text)";
is($node->safe_psql('postgres', "SET ROLE reader; $readperm"), 'a,b', 'cached read before chmod');
is($node->safe_psql('postgres', "SET ROLE reader; $readperm"), 'a,b', 'cached read, a hit');
chmod 0000, "$allowed/perm.csv";
(my $qperm = $readperm) =~ s/'/''/g;
(my $qperm_uncached = $readperm) =~ s/\)\s+AS x/, cache => false) AS x/;
$qperm_uncached =~ s/'/''/g;
my $miss_err = $node->safe_psql('postgres', "SET ROLE reader; SELECT try('$qperm_uncached')");
like($miss_err, qr/^42501 could not open file .* Permission denied/, 'after chmod 000 an uncached read is refused');
is($node->safe_psql('postgres', "SET ROLE reader; SELECT try('$qperm')"), $miss_err,
	'after chmod 000 a cached read is refused exactly like an uncached one');
chmod 0644, "$allowed/perm.csv";

# a domain constraint added after the read was cached
write_file("$allowed/dom.csv", "id,name\n0,zero\n1,one\n");
sql('CREATE DOMAIN posint AS int');
my $readdom = "SELECT string_agg(id::text, ',') FROM csvpipe.read('$allowed/dom.csv') AS x(id posint, name text)";
is(sql($readdom), '0,1', 'read of a domain column');
is(sql($readdom), '0,1', 'read of a domain column, again');
sql('ALTER DOMAIN posint ADD CONSTRAINT positive CHECK (VALUE > 0)');
(my $qdom = $readdom) =~ s/'/''/g;
like(sql("SELECT try('$qdom')"),
	qr/^23514 value for domain posint violates check constraint "positive"/,
	'a domain constraint added later is not bypassed by the cache');
is(sql("SELECT count(*) FROM csvpipe.cache WHERE columns LIKE '%posint%'"), '0',
	'rows of a domain are not cached');

# another database's entries are not shown
sql('CREATE DATABASE db2 OWNER owner');
sql('CREATE EXTENSION csvpipe', 'db2');
sql('SELECT csvpipe.cache_invalidate()');
sql("SELECT count(*) FROM csvpipe.read('$allowed/good.csv') AS x(id int, name text)", 'db2');
is(sql("SELECT count(*) FROM csvpipe.cache"), '0', "the cache view does not show another database's entry");
is(sql("SELECT count(*) FROM csvpipe.cache", 'db2'), '1', "it shows this database's entry");
is(sql("SELECT count(*) FROM csvpipe.cache WHERE path IS NULL", 'db2'), '0', 'with its path, to a superuser');
$node->safe_psql('db2', 'GRANT pg_read_server_files TO owner');
is($node->safe_psql('db2', "SET ROLE owner; SELECT count(*) FROM csvpipe.cache WHERE path = '$allowed/good.csv'"),
	'1', 'a pg_read_server_files database owner sees the path of an allowed file');

# cache_invalidate says nothing about a path outside csvpipe.allowed_dirs:
# an entry cached by a superuser who widened the setting for a session is
# neither reported nor removed for a pg_read_server_files role
sql('SELECT csvpipe.cache_invalidate()');
is(sql("SET csvpipe.allowed_dirs = ''; "
	  . "SELECT count(*) FROM csvpipe.read('$outside/secret.csv') AS x(id int, name text)"),
	'20', 'a superuser reads (and caches) a file outside, with allowed_dirs widened');
is(sql("SELECT count(*) FROM csvpipe.read('$allowed/good.csv') AS x(id int, name text)"), '20',
	'and caches an allowed file');
is(sql("SELECT count(*) FROM csvpipe.cache"), '2', 'both are cached');
for my $p ("$outside/secret.csv", "$outside/missing.csv", $outside, $base, "$allowed/link_out.csv")
{
	(my $want = $outside_err) =~ s/<P>/$p/;
	is($node->safe_psql('postgres', "SET ROLE reader; SELECT try('SELECT csvpipe.cache_invalidate(''$p'')')"),
		$want, "cache_invalidate('$p') by reader: the one error for a path outside");
}
is(sql("SELECT count(*) FROM csvpipe.cache"), '2', '... and nothing was removed');
is($node->safe_psql('postgres', "SET ROLE reader; SELECT csvpipe.cache_invalidate('$allowed/good.csv')"),
	'1', 'cache_invalidate of an allowed file removes its entry');
is($node->safe_psql('postgres', "SET ROLE reader; SELECT csvpipe.cache_invalidate('$allowed/gone.csv')"),
	'0', '... and of a missing allowed file removes nothing');

$node->stop;
done_testing();
