# 072_security_views.pl -- who sees what (issue 10, finding 3 and two of its
# smaller ones).
#
# Roles at once: an unprivileged role, two pg_read_server_files roles that
# load files with a secret in a rejected row or in a failed job's error, a
# member of one of them (and a NOINHERIT member), a pg_read_all_stats role, a
# pg_monitor role and the (non-superuser) owner of the database.  Each role
# reads csvpipe.errors and csvpipe.jobs: the rejected rows of jobs of roles
# whose privileges it has (all for pg_read_all_stats/pg_monitor members);
# every job, but path, options, error and the counters that measure the file
# (rows_loaded, rows_rejected, bytes) only for those jobs; nobody but the
# owner reads the tables underneath.  While a load runs, csvpipe.progress
# and csvpipe.workers show its counters (file size, bytes, rows, chunk) to
# the same roles only, as pg_stat_progress_copy does.  Then: csvpipe.load, load_serial and
# submit accept column-level INSERT grants as COPY does and refuse a column
# the role lacks with COPY's error; csvpipe.wait polls in constant memory.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use CsvpipeJobs ();

my $dir = PostgreSQL::Test::Utils::tempdir;

my $node = PostgreSQL::Test::Cluster->new('secviews');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'csvpipe'
max_prepared_transactions = 10
max_worker_processes = 20
csvpipe.max_jobs = 2
csvpipe.allowed_dirs = '$dir'
timezone = 'UTC'
});
$node->start;

sub sql { return $node->safe_psql('postgres', $_[0]); }

# run as a role: (stdout, stderr); dies on nothing
sub as
{
	my ($role, $q) = @_;
	my ($ret, $out, $err) = $node->psql('postgres', "SET client_min_messages = warning;\n$q",
		extra_params => [ '-U', $role ]);
	return ($out, $err);
}

sub set_max_jobs { CsvpipeJobs::set_max_jobs($node, $_[0]); }

sub write_file
{
	my ($name, $text) = @_;
	open(my $fh, '>', "$dir/$name") or die;
	print $fh $text;
	close $fh;
}

sql(q{
CREATE ROLE nobody LOGIN;
CREATE ROLE loader1 LOGIN IN ROLE pg_read_server_files;
CREATE ROLE loader2 LOGIN IN ROLE pg_read_server_files;
CREATE ROLE team1 LOGIN IN ROLE loader1;
CREATE ROLE noinh LOGIN NOINHERIT IN ROLE loader1;
CREATE ROLE stats LOGIN IN ROLE pg_read_all_stats;
CREATE ROLE monitor LOGIN IN ROLE pg_monitor;
CREATE ROLE dbowner LOGIN;
ALTER DATABASE postgres OWNER TO dbowner;
CREATE EXTENSION csvpipe;
CREATE TABLE t_sec (id int, name text);
GRANT INSERT ON t_sec TO loader1, loader2;
});

# J1 (loader1) and J2 (loader2): a rejected row each, with a secret in it;
# J3 (loader2): a failed job whose error quotes a secret
write_file('one.csv', "id,name\n1,alpha\ns3cr3t-ONE,beta\n3,gamma\n");
write_file('two.csv', "id,name\n4,delta\ns3cr3t-TWO,epsilon\n");
write_file('three.csv', "id,name\n5,zeta\ns3cr3t-THREE,eta\n");
my $j1 = (as('loader1', "SELECT job_id FROM csvpipe.load('$dir/one.csv', 't_sec', on_error => 'skip')"))[0];
my $j2 = (as('loader2', "SELECT job_id FROM csvpipe.load('$dir/two.csv', 't_sec', on_error => 'skip')"))[0];
my (undef, $e3) = as('loader2', "SELECT job_id FROM csvpipe.load('$dir/three.csv', 't_sec')");
like($e3, qr/s3cr3t-THREE/, 'a failed load: its error quotes the bad value');
my $j3 = sql("SELECT max(job_id) FROM csvpipe.job");
like("$j1 $j2 $j3", qr/^\d+ \d+ \d+$/, "three jobs: $j1 $j2 $j3");
my %owner = ($j1 => 'loader1', $j2 => 'loader2', $j3 => 'loader2');

# ---- what the superuser sees: the reference ----
my $errq = "SELECT job_id, line_no, sqlstate, target, raw_record, column_name, message, detail, path "
  . "FROM csvpipe.errors ORDER BY job_id, line_no";
my $jobq = "SELECT job_id, submitted_by, state, target, path, error, options, rows_loaded, rows_rejected, bytes "
  . "FROM csvpipe.jobs ORDER BY job_id";
my $err_all = sql($errq);
my $job_all = sql($jobq);
is( sql("SELECT string_agg(job_id || ' ' || line_no || ' ' || raw_record || ' ' || column_name || ' ' || "
		  . "(message LIKE '%s3cr3t%') || ' ' || path, '|' ORDER BY job_id) FROM csvpipe.errors"),
	"$j1 3 s3cr3t-ONE,beta id true $dir/one.csv|$j2 3 s3cr3t-TWO,epsilon id true $dir/two.csv",
	'superuser: both rejected rows, with their record, column, message and file');
is( sql("SELECT string_agg(job_id || ' ' || state || ' ' || (path IS NOT NULL) || ' ' || "
		  . "coalesce(error LIKE '%s3cr3t-THREE%', false) || ' ' || (options IS NOT NULL), '|' ORDER BY job_id) FROM csvpipe.jobs"),
	"$j1 done true false true|$j2 done true false true|$j3 failed true true true",
	'superuser: every job with path, error and options');

# the reference with the hidden columns NULL for jobs the role may not see
# (psql prints NULL as an empty field); hidden_from undef: without those rows
sub expected
{
	my ($all, $hidden_from, %sees) = @_;
	my @out;
	for my $line (split /\n/, $all)
	{
		my @f = split /\|/, $line, -1;
		if (!$sees{ $owner{ $f[0] } })
		{
			next unless defined $hidden_from;
			$f[$_] = '' for $hidden_from .. $#f;
		}
		push @out, join('|', @f);
	}
	return join("\n", @out);
}

my %visible = (
	nobody => [],
	loader1 => ['loader1'],
	loader2 => ['loader2'],
	team1 => ['loader1'],
	noinh => [],
	stats => [ 'loader1', 'loader2' ],
	monitor => [ 'loader1', 'loader2' ],
	dbowner => [],);
for my $role (sort keys %visible)
{
	my %sees = map { $_ => 1 } @{ $visible{$role} };
	my $who = @{ $visible{$role} } ? join(',', @{ $visible{$role} }) : 'no one';
	my ($out, $err) = as($role, $errq);
	is($err, '', "$role reads csvpipe.errors");
	is($out, expected($err_all, undef, %sees), "$role: the rejected rows of $who\'s jobs only");
	($out, $err) = as($role, $jobq);
	is($err, '', "$role reads csvpipe.jobs");
	is($out, expected($job_all, 4, %sees), "$role: every job; path, error, options, rows, bytes of $who\'s jobs only");
	($out, $err) = as($role, "SELECT count(*) FROM csvpipe.errors WHERE raw_record LIKE '%s3cr3t%' OR message LIKE '%s3cr3t%'");
	is($out, scalar(grep { $sees{ $owner{$_} } } ($j1, $j2)), "$role: a filter on the hidden columns finds only visible rows");

	# the tables underneath: only their owner reads them
	for my $t (qw(job chunks rejected))
	{
		($out, $err) = as($role, "SELECT count(*) FROM csvpipe.$t");
		like($err, qr/ERROR:  permission denied for table $t/, "$role cannot read csvpipe.$t");
	}
}

# a NOINHERIT member has the rights once it takes the role, as for pg_stat_activity
my ($out, $err) = as('noinh', "SET ROLE loader1;\n$errq");
is($out, expected($err_all, undef, loader1 => 1), 'noinh after SET ROLE loader1: loader1\'s rows');

# a leaky function of the caller's own sees no hidden value
($out, $err) = as('nobody', q{
CREATE FUNCTION pg_temp.leak(text) RETURNS boolean LANGUAGE plpgsql COST 0.0000001
AS $$BEGIN RAISE WARNING 'seen: %', $1; RETURN true; END$$;
SELECT count(*) FROM csvpipe.errors
 WHERE pg_temp.leak(raw_record) AND pg_temp.leak(message) AND pg_temp.leak(path) AND pg_temp.leak(detail);
SELECT count(*) FROM csvpipe.jobs
 WHERE pg_temp.leak(path) AND pg_temp.leak(error) AND pg_temp.leak(options::text)
   AND pg_temp.leak(rows_loaded::text) AND pg_temp.leak(rows_rejected::text) AND pg_temp.leak(bytes::text);
});
is($out, "0\n3", 'nobody: no rejected row; its function ran over every job');
is(scalar(() = $err =~ /WARNING:  seen: <NULL>$/mg), 3 * 6, '... and saw NULL in every hidden column');
unlike($err, qr/s3cr3t|one\.csv|two\.csv|three\.csv|delimiter|seen: [^<]/, '... none of the hidden values');

# the planner's statistics: a condition on a view column pushed into the
# view (text = text is leakproof) is estimated from the table's statistics;
# EXPLAIN must not tell a value common in hidden rows from a value absent.
# The database owner may ANALYZE csvpipe's tables itself.
sql(q{INSERT INTO csvpipe.rejected (job_id, line_no, raw_record, column_name, message, sqlstate, detail)
  SELECT j, g, CASE WHEN g % 3 = 0 THEN 'TOPSECRET-42' ELSE 'r' || g END,
         CASE WHEN g % 3 = 0 THEN 'secretcol' END, 'm',
         CASE WHEN g % 3 = 0 THEN '23514' ELSE '22P02' END, 'd'
    FROM (SELECT max(job_id) j FROM csvpipe.job WHERE submitted_by = 'loader2'::regrole) s,
         generate_series(1000, 3999) g});
is((as('dbowner', 'ANALYZE csvpipe.rejected; ANALYZE csvpipe.job'))[1], '', 'the database owner analyzes csvpipe.rejected and csvpipe.job');
for my $probe ([ 'raw_record', 'TOPSECRET-42', 'r1001' ], [ 'column_name', 'secretcol', 'othercol' ],
	[ 'path', "$dir/two.csv", "$dir/none.csv" ], [ 'sqlstate', '23514', '23505' ])
{
	my ($col, $common, $absent) = @$probe;
	my @est = map {
		my ($plan) = as('loader1', "EXPLAIN SELECT * FROM csvpipe.errors WHERE $col = '$_'");
		$plan =~ /rows=(\d+)/ ? $1 : 'none';
	} ($common, $absent);
	is($est[0], $est[1], "loader1: EXPLAIN estimates errors.$col = <common in loader2's rows> as an absent value ($est[0], $est[1])");
}
sql("DELETE FROM csvpipe.rejected WHERE line_no >= 1000");

# csvpipe.wait returns a job's state to anyone: the state is in csvpipe.jobs
# for everyone too
is((as('nobody', "SELECT csvpipe.wait($j1)"))[0], 'done', 'wait: the state of another role\'s job (public, as in csvpipe.jobs)');

# the underlying functions: counters only, no column naming a file, an
# option or an error
is( sql("SELECT string_agg(a, ',' ORDER BY a) FROM (SELECT unnest(proargnames) a FROM pg_proc "
		  . "WHERE proname IN ('progress_1_0', 'workers_1_0') AND pronamespace = 'csvpipe'::regnamespace) s "
		  . "WHERE a ~ 'path|option|error|record|message|detail|column'"),
	'', 'progress_1_0 and workers_1_0 return no path, option, error or file data');

# ---- a load under way: csvpipe.progress and csvpipe.workers ----
# loader1 loads a file while the test holds a SHARE lock on the target, so
# its workers wait at their first chunk: the file's size (bytes_total), the
# bytes, rows, chunk numbers are loader1's, shown to whoever may see its
# jobs, NULL for the others (as pg_stat_progress_copy hides another role's
# bytes_total and tuples); who runs what stays visible to all.
{
	open(my $fh, '>', "$dir/slow.csv") or die;
	print $fh "id,name\n";
	print $fh "$_,row$_\n" for 1 .. 5000;
	close $fh;
}
my $slow_size = -s "$dir/slow.csv";
sql("CREATE TABLE t_slow (id int, name text); GRANT INSERT ON t_slow TO loader1");
my $locker = $node->background_psql('postgres');
$locker->query_safe("BEGIN; LOCK TABLE t_slow IN SHARE MODE;");
my $slow = $node->background_psql('postgres', on_error_stop => 0);
$slow->query_until(qr/started/, qq{\\echo started
SET ROLE loader1;
SELECT rows_loaded FROM csvpipe.load('$dir/slow.csv', 't_slow', workers => 2, mode => 'chunked', chunk_size => 8192);
\\echo finished
});
$node->poll_query_until('postgres',
	"SELECT EXISTS (SELECT FROM csvpipe.progress WHERE bytes_total = $slow_size) "
	  . "AND (SELECT count(*) FILTER (WHERE w.state = 'chunk') = 2 AND count(*) = 2 "
	  . "FROM csvpipe.workers w JOIN csvpipe.progress p USING (job_id) "
	  . "WHERE w.kind = 'worker' AND p.bytes_total = $slow_size)")
  or die "the slow load did not start";
my $slowjob = sql("SELECT job_id FROM csvpipe.progress WHERE bytes_total = $slow_size");
my $progq = "SELECT kind, workers, bytes_total, bytes_done > 0, rows_done, rows_rejected, "
  . "rows_per_sec IS NULL, eta IS NULL FROM csvpipe.progress WHERE job_id = $slowjob";
my $workq = "SELECT count(*), count(chunk_no), count(rows) FROM csvpipe.workers "
  . "WHERE job_id = $slowjob AND kind = 'worker' AND state = 'chunk'";
my $nworkers = (split /\|/, sql($workq))[0];
is($nworkers, 2, "the load's two workers wait at a chunk");
my $slowjobq = "SELECT state, rows_loaded, rows_rejected, bytes IS NULL FROM csvpipe.jobs WHERE job_id = $slowjob";
for my $role (sort keys %visible)
{
	my $sees = grep { $_ eq 'loader1' } @{ $visible{$role} };
	my ($out, $err) = as($role, "$progq;\n$workq;\n$slowjobq;\n"
		  . "SELECT count(*) FROM csvpipe.progress_1_0() WHERE job_id = $slowjob AND bytes_total IS NOT NULL;\n"
		  . "SELECT count(*) FROM csvpipe.workers_1_0() WHERE job_id = $slowjob AND kind = 'worker' AND rows IS NOT NULL");
	is($err, '', "$role reads csvpipe.progress and csvpipe.workers");
	is( $out,
		$sees
		? "leader|2|$slow_size|t|0|0|f|f\n2|2|2\nrunning|0|0|f\n1\n2"
		: "leader|2|||||t|t\n2|0|0\nrunning|||t\n0\n0",
		$sees
		? "$role: loader1's running load with its file size, bytes, rows and chunks"
		: "$role: loader1's running load, without its file size, bytes, rows or chunks (views and functions)");
}
$locker->query_safe("COMMIT");
$locker->quit;
$slow->query_until(qr/finished/, "\\echo finished\n");
$slow->quit;
is(sql("SELECT count(*) FROM t_slow"), '5000', 'the slow load finished once the lock was gone');

# ---- column-level INSERT grants, as COPY ----
write_file('ab.csv', "a,b\n1,one\n2,two\n3,three\n");
sql(q{
CREATE TABLE tc (a int, b text, c int DEFAULT 7);
CREATE TABLE copy_tc (a int, b text, c int DEFAULT 7);
GRANT INSERT (a, b) ON tc TO loader1;
GRANT INSERT (a, b) ON copy_tc TO loader1;
CREATE FUNCTION err_of(q text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN EXECUTE q; RETURN 'ok';
EXCEPTION WHEN OTHERS THEN RETURN SQLSTATE || ' ' || SQLERRM; END $$;
});
($out, $err) = as('loader1', "COPY copy_tc (a, b) FROM '$dir/ab.csv' (FORMAT csv, HEADER)");
is($err, '', 'COPY accepts INSERT (a, b) for columns (a, b)');
my $copy_md5 = sql("SELECT md5(string_agg(t::text, ',' ORDER BY a)) FROM copy_tc t");

($out, $err) = as('loader1', "SELECT rows_loaded FROM csvpipe.load('$dir/ab.csv', 'tc', columns => '{a,b}')");
is("$out$err", '3', 'csvpipe.load accepts INSERT (a, b) for columns => {a,b}');
is(sql("SELECT md5(string_agg(t::text, ',' ORDER BY a)) FROM tc t"), $copy_md5, '... and loads what COPY loads');
sql('TRUNCATE tc');
($out, $err) = as('loader1', "SELECT csvpipe.load_serial('$dir/ab.csv', 'tc', columns => '{a,b}')");
is("$out$err", '3', 'load_serial too');
sql('TRUNCATE tc');
# (a file of its own: submit skips a file already loaded into the target)
write_file('ab_submit.csv', "a,b\n1,one\n2,two\n3,three\n");
($out, $err) = as('loader1', "SELECT * FROM csvpipe.submit('$dir/ab_submit.csv', 'tc', columns => '{a,b}')");
is($err, '', 'submit too');
is(sql("SELECT csvpipe.wait($out, '60s')"), 'done', '... and its job runs as the role');
is(sql("SELECT md5(string_agg(t::text, ',' ORDER BY a)) FROM tc t"), $copy_md5, '... loading what COPY loads');

# a column it lacks, or all columns: COPY's error, from every entry point
for my $cols ('{a,c}', undef)
{
	my $copycols = defined $cols ? '(' . join(', ', $cols =~ /(\w)/g) . ')' : '';
	my $arg = defined $cols ? ", columns => '$cols'" : '';
	my $copyerr = (as('loader1', "SELECT err_of(\$q\$COPY copy_tc $copycols FROM '$dir/ab.csv' (FORMAT csv, HEADER)\$q\$)"))[0];
	is($copyerr, '42501 permission denied for table copy_tc', "COPY $copycols: refused");
	$copyerr =~ s/copy_tc/tc/;
	for my $call ("csvpipe.load('$dir/ab.csv', 'tc'$arg)",
		"csvpipe.load_serial('$dir/ab.csv', 'tc'$arg)",
		"csvpipe.submit('$dir/ab.csv', 'tc'$arg)")
	{
		is((as('loader1', "SELECT err_of(\$q\$SELECT $call\$q\$)"))[0], $copyerr,
			"$call: COPY's error");
	}
}

# ---- csvpipe.wait polls in constant memory ----
# A job that stays queued (no runner), waited for 0.3 s and then 6 s
# (about 30 polls): the caller's ExprContext must not grow with the polls.
set_max_jobs(0);
my $jq = sql("SELECT * FROM csvpipe.submit('$dir/ab.csv', 'copy_tc')");
my $memq = "SELECT (SELECT sum(used_bytes) FROM pg_backend_memory_contexts WHERE name = 'ExprContext')";
my ($short, $long);
($short) = split /\|/, sql("SELECT * FROM (SELECT csvpipe.wait($jq, '0.3s') s, ($memq) m) x")
  =~ s/^queued\|//r;
($long) = split /\|/, sql("SELECT * FROM (SELECT csvpipe.wait($jq, '6s') s, ($memq) m) x")
  =~ s/^queued\|//r;
like("$short $long", qr/^\d+ \d+$/, "ExprContext used bytes after a wait of 0.3 s: $short, of 6 s: $long");
cmp_ok($long - $short, '<', 512, 'a 30 times longer wait uses less than 512 bytes more');
sql("SELECT csvpipe.cancel($jq)");
set_max_jobs(2);

$node->stop;
done_testing();
