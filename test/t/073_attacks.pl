# 073_attacks.pl -- attacks on csvpipe by non-superusers that the first
# security tests (070-072) did not cover, each written as the attack
# (it must fail) beside the legitimate use (it must still work):
#   - submit's "already loaded" skip: another role queues the victim's file
#     first (with skip_rows past its end) so the victim's own submit would
#     be a silent no-op, and learns from its submit that someone loaded a
#     file into a table;
#   - the cache view: another role's read options (null_string), columns,
#     row and byte counts are not shown to a role that may not read the file;
#   - the database owner's ALTER DATABASE ... SET session_authorization,
#     role, default_transaction_read_only, exit_on_error: csvpipe's superuser
#     processes (launcher, coordinators) are not changed by them, so another
#     role's atomic load (direct and queued) commits every row it reports;
#   - a queued job records the file it read, not one moved into place since.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $dir = PostgreSQL::Test::Utils::tempdir;

my $node = PostgreSQL::Test::Cluster->new('attacks');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'csvpipe'
max_prepared_transactions = 10
max_worker_processes = 20
csvpipe.database = 'csvdb'
csvpipe.max_jobs = 2
});
$node->start;

my $su = $node->safe_psql('postgres', 'SELECT current_user');

# The test's own superuser sessions: immune to the owner's database settings
# below (startup options rank above ALTER DATABASE ... SET).
$ENV{PGOPTIONS} = "-c session_authorization=$su -c role=none "
  . '-c default_transaction_read_only=off -c exit_on_error=off';

sub sql { return $node->safe_psql($_[1] // 'csvdb', $_[0]); }

# (stdout, stderr) of sql run as a role
sub as
{
	my ($role, $query, $db) = @_;
	my ($ret, $out, $err) = $node->psql($db // 'csvdb', "SET ROLE $role; $query");
	return ($out, $err);
}

# (stdout, stderr) of sql in a session that role logs in with
sub login
{
	my ($role, $query) = @_;
	local $ENV{PGOPTIONS} = '';
	my ($ret, $out, $err) = $node->psql('csvdb', $query, extra_params => [ '-U', $role ]);
	return ($out, $err);
}

sub write_rows
{
	my ($name, $n) = @_;
	open my $fh, '>', "$dir/$name" or die;
	print $fh "id,v\n";
	print $fh "$_,v$_\n" for 1 .. $n;
	close $fh;
	return "$dir/$name";
}

sub poll
{
	my ($query) = @_;
	for (1 .. 300)
	{
		return 1 if sql($query) eq 't';
		select(undef, undef, undef, 0.1);
	}
	return 0;
}

$node->safe_psql('postgres', q{
CREATE ROLE nobody LOGIN;
CREATE ROLE loader LOGIN IN ROLE pg_read_server_files;
CREATE ROLE loader2 LOGIN IN ROLE pg_read_server_files;
CREATE ROLE dbowner LOGIN;
CREATE DATABASE csvdb OWNER dbowner;
});
sql('CREATE EXTENSION csvpipe');
$node->poll_query_until('csvdb', "SELECT count(*) = 1 FROM pg_stat_activity "
	  . "WHERE backend_type = 'csvpipe launcher' AND datname = 'csvdb'")
  or die 'no launcher';

# ---- (a) submit's "already loaded" skip is per role ----
sql('CREATE TABLE t_skip (id int, v text); GRANT INSERT, SELECT ON t_skip TO loader, loader2');
my $fv = write_rows('victim.csv', 2000);
my ($out, $err) = as('loader2', "SELECT csvpipe.submit('$fv', 't_skip', skip_rows => 1000000000)");
like($out, qr/^\d+$/, 'the attacker queues the victim\'s file first') or diag $err;
my $ajob = $out;
($out, $err) = as('loader', "SELECT csvpipe.submit('$fv', 't_skip')");
like($out, qr/^\d+$/, "another role's job on the same file does not make the victim's submit a no-op")
  or diag $err;
my $vjob = $out || 0;
is(sql("SELECT csvpipe.wait($ajob, '60s')"), 'done', "the attacker's job ran (and loaded nothing)");
is(sql("SELECT csvpipe.wait($vjob, '60s')"), 'done', "the victim's job ran") if $vjob;
is(sql('SELECT count(*) FROM t_skip'), '2000', "the victim's rows are loaded");
($out, $err) = as('loader', "SELECT count(*) FROM csvpipe.submit('$fv', 't_skip')");
is($out, '0', 'a role\'s own loaded file is still skipped when submitted again') or diag $err;
my $fl = write_rows('loaded.csv', 100);
($out, $err) = as('loader', "SELECT rows_loaded FROM csvpipe.load('$fl', 't_skip')");
is($out, '100', 'the victim loads another file') or diag $err;
($out, $err) = as('loader2', "SELECT count(*) FROM csvpipe.submit('$fl', 't_skip', skip_rows => 1000000000)");
is($out, '1', 'submit tells another role nothing about who loaded a file') or diag $err;

# ---- (b) the cache view: another role's read is not shown ----
my $fc = write_rows('cached.csv', 50);
utime(time - 60, time - 60, $fc);	# old enough to be cached
($out, $err) = as('loader', "SELECT count(*) FROM csvpipe.read('$fc', null_string => 'S3CRET-NULL') "
	  . "AS x(id int, secretcol text)");
is($out, '50', 'a cached read') or diag $err;
is(sql("SELECT count(*) FROM csvpipe.cache WHERE options LIKE '%S3CRET-NULL%'"), '1',
	'the read is cached');
($out, $err) = as('nobody', "SELECT count(*), count(path), count(options), count(columns), "
	  . "count(rows), count(bytes) FROM csvpipe.cache");
is($out, '1|0|0|0|0|0',
	"a role that may not read the file sees the entry, not its path, options, columns, rows or bytes")
  or diag $err;
($out, $err) = as('nobody', "SELECT count(*) FROM csvpipe.cache_1_0() WHERE options LIKE '%S3CRET%' "
	  . "OR columns IS NOT NULL");
is($out, '0', '... nor through the function under the view') or diag $err;
($out, $err) = as('loader2', "SELECT count(*) FROM csvpipe.cache WHERE options LIKE '%S3CRET-NULL%' "
	  . "AND columns = 'integer, text' AND rows = 50 AND bytes > 0 AND path LIKE '%/cached.csv'");
is($out, '1', 'a role that may read the file sees it all') or diag $err;

# ---- a queued job records the identity of the file it read ----
# A file moved into place (as files should be) while a runner loads the
# previous version: the job must record the version it read, or the next
# submit takes the new file for loaded and skips it.
sql(q{CREATE TABLE t_mv (id int, v text);
GRANT INSERT ON t_mv TO loader;});
my $fmv = write_rows('moved.csv', 100);
my $fnew = write_rows('moved.new', 7);
sql(qq{CREATE FUNCTION mv_on_last() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER AS \$\$
BEGIN
  IF NEW.id = 100 THEN
    COPY (SELECT 1) TO PROGRAM 'mv $fnew $fmv';
  END IF;
  RETURN NEW;
END \$\$;
CREATE TRIGGER mv_on_last BEFORE INSERT ON t_mv FOR EACH ROW EXECUTE FUNCTION mv_on_last();});
($out, $err) = as('loader', "SELECT csvpipe.submit('$fmv', 't_mv')");
like($out, qr/^\d+$/, 'a file is queued') or diag $err;
is(sql("SELECT csvpipe.wait(" . ($out || 0) . ", '60s')"), 'done', 'its job is done');
ok(!-e $fnew, 'the new version was moved into place during the load');
($out, $err) = as('loader', "SELECT count(*) FROM csvpipe.submit('$fmv', 't_mv')");
is($out, '1', 'the new version of the file is not taken for loaded') or diag $err;
poll("SELECT count(*) = 0 FROM csvpipe.jobs WHERE state IN ('queued', 'running')");
is(sql('SELECT count(*) FROM t_mv'), '107', 'both versions are loaded, once each');

# ---- (c) the database owner's settings do not reach csvpipe's superuser processes ----
$node->safe_psql('csvdb', q{
SET ROLE dbowner;
ALTER DATABASE csvdb SET session_authorization = 'dbowner';
ALTER DATABASE csvdb SET role = 'dbowner';
ALTER DATABASE csvdb SET default_transaction_read_only = on;
ALTER DATABASE csvdb SET exit_on_error = on;
});
# the victim's own sessions work as the administrator set them up
sql('ALTER ROLE loader IN DATABASE csvdb SET default_transaction_read_only = off');
sql('ALTER ROLE loader IN DATABASE csvdb SET exit_on_error = off');
{
	local $ENV{PGOPTIONS} = '';
	is($node->safe_psql('csvdb', 'SELECT current_user'), 'dbowner',
		"the owner's settings reach a superuser's new session");
}
my $lpid = sql("SELECT pid FROM pg_stat_activity WHERE backend_type = 'csvpipe launcher'");
sql("SELECT pg_terminate_backend($lpid)");
ok(poll("SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 'csvpipe launcher' "
		  . "AND pid <> $lpid AND state = 'idle'"),
	'the launcher runs again in the database with the owner\'s settings');

sql('CREATE TABLE t_set (id int, v text); GRANT INSERT ON t_set TO loader');
my $f1 = write_rows('set1.csv', 3000);
my $f2 = write_rows('set2.csv', 3000);
($out, $err) = login('loader', "SELECT rows_loaded FROM csvpipe.load('$f1', 't_set', "
	  . "workers => 2, chunk_size => 8000)");
is($out, '3000', 'an atomic parallel load by another role reports its rows') or diag $err;
is(sql('SELECT count(*) FROM t_set'), '3000', '... and committed every one of them');
($out, $err) = login('loader', "SELECT csvpipe.submit('$f2', 't_set', workers => 2, chunk_size => 8000)");
like($out, qr/^\d+$/, 'a queued job is submitted') or diag $err;
is(sql("SELECT csvpipe.wait(" . ($out || 0) . ", '60s')"), 'done', 'the queued job is done');
is(sql('SELECT count(*) FROM t_set'), '6000', '... with every row committed');
is(sql("SELECT count(*) FROM pg_prepared_xacts WHERE gid LIKE 'csvpipe%'"), '0',
	'no prepared part is left behind');
($out, $err) = login('dbowner', "SELECT pg_cancel_backend(pid) FROM pg_stat_activity "
	  . "WHERE backend_type = 'csvpipe launcher'");
like($err, qr/must be a superuser to cancel superuser query/,
	'the owner cannot cancel the launcher');

sql('ALTER DATABASE csvdb RESET ALL');
$node->stop;
done_testing();
