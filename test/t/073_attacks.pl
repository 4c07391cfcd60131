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
#     role's atomic load (direct and queued) commits every row it reports.
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
