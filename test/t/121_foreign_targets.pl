# 121_foreign_targets.pl -- loads whose target is, or has partitions that
# are, foreign tables (postgres_fdw shards) or Citus tables (issue 14, items
# 1, 3, 6 and 7), on a coordinator and two postgres_fdw shard clusters
# (test/perl/CsvpipeShards.pm; `sales` is hash-partitioned into two local
# and two foreign partitions, batch_size 1000).
#
#  1. Known before loading: mode => 'prepared' (and 1.0's atomic => true)
#     is refused at once with 0A000, naming the foreign table and its
#     server, with a hint to the modes that work -- from csvpipe.load,
#     csvpipe.submit (at submit time) and csvpipe.resume, for a foreign
#     partition and a plain foreign table, before the file is opened (the
#     path does not exist) and before any job is recorded.
#  2. Batched foreign inserts: every mode (transaction and chunked with 1
#     and 2 workers, load_serial, a submitted job) loads what COPY loads on
#     every server, and the shards received the rows in multi-row INSERTs
#     (pg_stat_statements on each shard: calls far below rows).  A foreign
#     partition with batch_size 1 gets one INSERT per row, as it asks; the
#     rows are the same.  Row triggers on foreign partitions (BEFORE ROW
#     changing the row, AFTER ROW counting) fire as with COPY, and those
#     partitions get their rows one at a time.  A plain foreign table as the
#     target is batched too.
#  3. Skip mode with bad rows routed to a foreign partition (a CHECK that
#     only the shard's table has): exactly those rows rejected, each with
#     its line and the remote SQLSTATE, every other row loaded as COPY
#     loads the good rows -- in transaction and chunked mode.
#  4. Citus: with an extension named citus and its pg_catalog.pg_dist_partition
#     (see citus_stub below), a Citus table as the target, or as a partition
#     of it, is refused with 0A000 and a hint to INSERT ... SELECT FROM
#     csvpipe.read, from load (every mode), submit and load_serial; a table
#     Citus does not list loads.
#  5. csvpipe.jobs.error holds the whole message (1.5 kB), and an error at a
#     chunk's COMMIT or at PREPARE (a deferred constraint trigger) names no
#     line (in skip mode the worker used to keep the last line it read).
#
# Every part fails on the csvpipe before issue 14: prepared loads ran and
# failed at PREPARE after the whole file; foreign rows went one INSERT per
# row; Citus tables were loaded into the shell table; long job errors were
# cut at 1 kB; the commit-time error carried "line N".
use strict;
use warnings;

use File::Copy qw(copy);
use File::Path qw(make_path);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use CsvpipeShards;

my $gen = $ENV{CSVPIPE_GEN_CSV} // 'test/gen/gen_csv';
my $dir = PostgreSQL::Test::Utils::tempdir;
chmod 0755, $dir;
my $NARROW = $CsvpipeShards::NARROW;

my $s = CsvpipeShards->new(
	name => 's121',
	shard_conf => "shared_preload_libraries = 'pg_stat_statements'\n");
my $c = $s->coord;
$s->shard_sql($_, 'CREATE EXTENSION pg_stat_statements') for 1 .. 2;
$s->create_sharded('sales');
$s->create_sharded('sales1', batch_size => 1);
# a plain foreign table (not a partition) on shard r1
$s->shard_sql(1, "CREATE TABLE plain ($NARROW); GRANT SELECT, INSERT, TRUNCATE ON plain TO shard_loader");
$s->sql("CREATE FOREIGN TABLE plain_ft ($NARROW) SERVER r1 OPTIONS (table_name 'plain', batch_size '1000'); "
	  . "GRANT SELECT, INSERT ON plain_ft TO loader, writer");

system("$gen narrow 40000 7 > $dir/sales.csv") == 0 or die;
my $expect = $s->copy_expected('sales', "$dir/sales.csv");
cmp_ok((split / /, $expect->{$_})[0], '>', 5000, "COPY puts rows on $_") for qw(r1 r2);

# psql as a role; returns (stdout, stderr) with VERBOSITY verbose (SQLSTATE)
sub try_as
{
	my ($role, $sql) = @_;
	my ($ret, $out, $err) = $c->psql('postgres',
		"\\set VERBOSITY verbose\nSET ROLE $role;\n$sql", on_error_stop => 0);
	return ($out, $err);
}

sub error_is
{
	my ($err, $sqlstate, $msg, $hint, $label) = @_;
	like($err, qr/ERROR:  \Q$sqlstate: $msg\E\n/, "$label: $sqlstate and the message");
	like($err, qr/^HINT:  \Q$hint\E\n/m, "$label: the hint") if defined $hint;
}

sub jobs_count { return $s->sql('SELECT count(*) FROM csvpipe.job'); }

# ---------------------------------------------------------------- 1 -------
my $prep_hint = "Use mode => 'chunked' (a commit per chunk, resumable) or mode => 'transaction' (the rows commit with your transaction).";
{
	my $jobs = jobs_count();
	my $missing = "$dir/no_such_file.csv";
	my %target = (
		sales => q{cannot load into "sales": its partition "sales_r1" is a foreign table on server "r1"},
		plain_ft => q{cannot load into foreign table "plain_ft" on server "r1"});
	for my $t (sort keys %target)
	{
		my ($out, $err) = try_as('loader',
			"SELECT * FROM csvpipe.load('$missing', '$t', mode => 'prepared', workers => 2)");
		error_is($err, '0A000', "csvpipe.load with mode => 'prepared' $target{$t}", $prep_hint,
			"load $t, prepared");
		unlike($err, qr/could not|No such file/, "load $t, prepared: refused before the file is opened");

		($out, $err) = try_as('loader',
			"SELECT * FROM csvpipe.load('$missing', '$t', atomic => true, workers => 2)");
		error_is($err, '0A000', "csvpipe.load with mode => 'prepared' $target{$t}", $prep_hint,
			"load $t, 1.0's atomic => true");

		($out, $err) = try_as('loader',
			"SELECT csvpipe.submit('$missing', '$t', mode => 'prepared')");
		error_is($err, '0A000', "csvpipe.submit with mode => 'prepared' $target{$t}", $prep_hint,
			"submit $t, prepared");
	}
	is(jobs_count(), $jobs, 'no job was recorded or queued for a refused load');

	# resume: a prepared job whose target got a foreign partition since
	$s->sql(qq{
CREATE TABLE sales2 ($NARROW) PARTITION BY HASH (id);
CREATE TABLE sales2_p0 PARTITION OF sales2 FOR VALUES WITH (MODULUS 4, REMAINDER 0);
CREATE TABLE sales2_p1 PARTITION OF sales2 FOR VALUES WITH (MODULUS 4, REMAINDER 1);
CREATE TABLE sales2_p2 PARTITION OF sales2 FOR VALUES WITH (MODULUS 4, REMAINDER 2);
GRANT SELECT, INSERT ON sales2 TO loader;
});
	my ($out, $err) = try_as('loader',
		"SELECT * FROM csvpipe.load('$dir/sales.csv', 'sales2', mode => 'prepared', workers => 2)");
	like($err, qr/no partition of relation "sales2" found for row/, 'prepared load into sales2 fails: no partition for remainder 3');
	my $job = $s->sql("SELECT max(job_id) FROM csvpipe.job WHERE target = 'sales2'::regclass");
	is($s->sql("SELECT state FROM csvpipe.job WHERE job_id = $job"), 'failed', "job $job failed");
	$s->shard_sql(2, "CREATE TABLE sales2 ($NARROW); GRANT SELECT, INSERT ON sales2 TO shard_loader");
	$s->sql("CREATE FOREIGN TABLE sales2_r PARTITION OF sales2 FOR VALUES WITH (MODULUS 4, REMAINDER 3) "
		  . "SERVER r2 OPTIONS (table_name 'sales2')");
	($out, $err) = try_as('loader', "SELECT * FROM csvpipe.resume($job)");
	error_is($err, '0A000',
		q{csvpipe.resume with mode => 'prepared' cannot load into "sales2": its partition "sales2_r" is a foreign table on server "r2"},
		$prep_hint, 'resume of a prepared job into a table with a foreign partition');
	is($s->sql("SELECT state || ' ' || (SELECT count(*) FROM sales2) FROM csvpipe.job WHERE job_id = $job"),
		'failed 0', '... the job stays failed, nothing loaded');
}

# ---------------------------------------------------------------- 2 -------
sub reset_stats { $s->shard_sql($_, 'SELECT pg_stat_statements_reset()') for 1 .. 2; }

# "calls rows" of the shard's INSERTs into $table (postgres_fdw's statement)
sub inserts
{
	my ($i, $table) = @_;
	return $s->shard_sql($i,
		"SELECT coalesce(sum(calls), 0) || ' ' || coalesce(sum(rows), 0) FROM pg_stat_statements "
		  . "WHERE query LIKE 'INSERT INTO public.$table(%'");
}

# every shard got its rows in multi-row INSERTs (at most 1 per 20 rows);
# $retried: skip mode, where a batch that failed on one shard is inserted
# again (in halves) on the other too, so the INSERTs carried more rows
sub batched_ok
{
	my ($table, $label, $retried) = @_;
	for my $i (1 .. 2)
	{
		my ($calls, $rows) = split / /, inserts($i, $table);
		my $n = $s->shard_sql($i, "SELECT count(*) FROM $table");
		ok(($retried ? $rows >= $n : $rows == $n) && $calls > 0 && $calls * 20 <= $n,
			"$label: r$i got its $n rows in $calls INSERTs")
		  or diag("r$i: $calls calls, $rows rows, $n in the table");
	}
}

for my $case (
	[ 'transaction, 1 worker', "mode => 'transaction', workers => 1" ],
	[ 'transaction, 2 workers', "mode => 'transaction', workers => 2" ],
	[ 'chunked, 1 worker', "mode => 'chunked', workers => 1" ],
	[ 'chunked, 2 workers', "mode => 'chunked', workers => 2" ])
{
	my ($label, $opts) = @{$case};
	reset_stats();
	is( $s->sql_as('loader',
			"SELECT rows_loaded FROM csvpipe.load('$dir/sales.csv', 'sales', $opts, chunk_size => 200000)"),
		'40000', "$label: 40000 rows loaded");
	$s->is_like('sales', $expect, $label);
	batched_ok('sales', $label);
	$s->truncate_table('sales');
}

reset_stats();
is($s->sql_as('loader', "SELECT csvpipe.load_serial('$dir/sales.csv', 'sales')"), '40000',
	'load_serial: 40000 rows');
$s->is_like('sales', $expect, 'load_serial');
batched_ok('sales', 'load_serial');
$s->truncate_table('sales');

reset_stats();
{
	my $job = $s->sql_as('loader',
		"SELECT csvpipe.submit('$dir/sales.csv', 'sales', mode => 'chunked', workers => 2, chunk_size => 200000, force => true)");
	is($s->sql_as('loader', "SELECT csvpipe.wait($job, '120 s')"), 'done', 'submitted chunked job done');
	$s->is_like('sales', $expect, 'submitted job');
	batched_ok('sales', 'submitted job');
	$s->truncate_table('sales');
}

# batch_size 1 on the foreign partitions: one INSERT per row, same rows
reset_stats();
$s->sql_as('loader', "SELECT csvpipe.load('$dir/sales.csv', 'sales1', mode => 'chunked', workers => 2, chunk_size => 200000)");
{
	my $got = $s->checksums('sales1');
	for my $k ($s->parts, 'total')
	{
		is($got->{$k}, $expect->{$k}, "batch_size 1: $k as COPY");
	}
	for my $i (1 .. 2)
	{
		my ($calls, $rows) = split / /, inserts($i, 'sales1');
		is("$calls $rows", "$rows $rows", "batch_size 1: r$i got one INSERT per row ($rows)");
	}
	$s->truncate_table('sales1');
}

# row triggers on the foreign partitions (coordinator side): a BEFORE ROW
# trigger that changes the row on sales_r2, an AFTER ROW trigger on
# sales_r1 that counts; their rows go one at a time (postgres_fdw batches
# no foreign table with row triggers), the others in batches; the outcome
# is COPY's, triggers included
{
	$s->sql(q{
CREATE TABLE trig_audit (part text, n bigint);
INSERT INTO trig_audit VALUES ('r1', 0);
GRANT SELECT, UPDATE ON trig_audit TO loader;
CREATE FUNCTION r2_upper() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN NEW.name := upper(NEW.name); RETURN NEW; END $$;
CREATE FUNCTION r1_count() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN UPDATE trig_audit SET n = n + 1 WHERE part = 'r1'; RETURN NULL; END $$;
CREATE TRIGGER r2_upper BEFORE INSERT ON sales_r2 FOR EACH ROW EXECUTE FUNCTION r2_upper();
CREATE TRIGGER r1_count AFTER INSERT ON sales_r1 FOR EACH ROW EXECUTE FUNCTION r1_count();
});
	my $texpect = $s->copy_expected('sales', "$dir/sales.csv");
	isnt($texpect->{r2}, $expect->{r2}, 'the BEFORE ROW trigger changes the rows COPY puts on r2');
	for my $mode (qw(transaction chunked))
	{
		$s->sql('UPDATE trig_audit SET n = 0');
		reset_stats();
		$s->sql_as('loader', "SELECT csvpipe.load('$dir/sales.csv', 'sales', mode => '$mode', workers => 2, chunk_size => 200000)");
		$s->is_like('sales', $texpect, "row triggers on foreign partitions, $mode");
		my $r1 = (split / /, $texpect->{r1})[0];
		is($s->sql("SELECT n FROM trig_audit"), $r1, "row triggers, $mode: the AFTER ROW trigger fired once per r1 row");
		for my $i (1 .. 2)
		{
			my ($calls, $rows) = split / /, inserts($i, 'sales');
			is("$calls $rows", "$rows $rows", "row triggers, $mode: r$i got its rows one INSERT each");
		}
		$s->truncate_table('sales');
	}
	$s->sql('DROP TRIGGER r2_upper ON sales_r2; DROP TRIGGER r1_count ON sales_r1');
}

# a plain foreign table as the target
{
	$s->sql("COPY plain_ft FROM '$dir/sales.csv' (FORMAT csv, HEADER)");
	my $md5 = "SELECT count(*) || ' ' || md5(string_agg(t::text, E'\\n' ORDER BY id)) FROM plain t";
	my $copy = $s->shard_sql(1, $md5);
	$s->shard_sql(1, 'TRUNCATE plain');
	for my $mode (qw(transaction chunked))
	{
		reset_stats();
		$s->sql_as('loader', "SELECT csvpipe.load('$dir/sales.csv', 'plain_ft', mode => '$mode', workers => 2, chunk_size => 200000)");
		is($s->shard_sql(1, $md5), $copy, "plain foreign table, $mode: rows as COPY");
		my ($calls, $rows) = split / /, inserts(1, 'plain');
		ok($rows == 40000 && $calls * 20 <= $rows, "plain foreign table, $mode: $rows rows in $calls INSERTs");
		$s->shard_sql(1, 'TRUNCATE plain');
	}
}

# ---------------------------------------------------------------- 3 -------
{
	# rows routed to sales_r1 (remainder 2), without quotes, spread over the file
	my @ids = split /\n/, $s->sql(
		"SELECT id FROM generate_series(1, 40000) id "
		  . "WHERE satisfies_hash_partition('sales'::regclass, 4, 2, id::bigint) "
		  . "AND id IN (17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, "
		  . "  19990, 19991, 19992, 19993, 19994, 19995, 19996, 19997, 19998, 19999, 20000, 20001, 20002, "
		  . "  39980, 39981, 39982, 39983, 39984, 39985, 39986, 39987, 39988, 39989, 39990) ORDER BY id");
	open my $in, '<', "$dir/sales.csv" or die;
	my @lines = <$in>;
	close $in;
	my (%bad, @picked);
	for my $id (@ids)
	{
		my $l = $lines[$id];    # line $id + 1 (the header is line 1)
		next if $l =~ /"/;
		next if @picked && (grep { abs($_ - $id) < 1000 } @picked);
		push @picked, $id;
	}
	is(scalar @picked, 3, 'three rows of shard r1 picked: ' . join(',', @picked));
	open my $bo, '>', "$dir/bad.csv" or die;
	open my $go, '>', "$dir/good.csv" or die;
	for my $n (0 .. $#lines)
	{
		my $l = $lines[$n];
		if ($n > 0 && grep { $_ == $n } @picked)
		{
			my @f = split /,/, $l;
			$f[2] = 'BAD ROW';
			print $bo join(',', @f);
			next;
		}
		print $bo $l;
		print $go $l;
	}
	close $bo;
	close $go;
	my $good = $s->copy_expected('sales', "$dir/good.csv");
	$s->shard_sql(1, "ALTER TABLE sales ADD CONSTRAINT no_bad_rows CHECK (name <> 'BAD ROW')");
	my $want = join(',', map { ($_ + 1) . ':23514' } @picked);

	for my $mode (qw(transaction chunked))
	{
		reset_stats();
		my $r = $s->sql_as('loader',
			"SELECT job_id || ' ' || rows_loaded || ' ' || rows_rejected FROM csvpipe.load('$dir/bad.csv', 'sales', "
			  . "mode => '$mode', workers => 2, chunk_size => 200000, on_error => 'skip')");
		my ($job, $loaded, $rejected) = split / /, $r;
		is("$loaded $rejected", '39997 3', "skip, $mode: 39997 loaded, 3 rejected");
		is( $s->sql("SELECT string_agg(line_no || ':' || sqlstate, ',' ORDER BY line_no) FROM csvpipe.rejected WHERE job_id = $job"),
			$want, "skip, $mode: the bad rows' lines, with the shard's SQLSTATE");
		is( $s->sql("SELECT count(*) FROM csvpipe.rejected WHERE job_id = $job "
				  . "AND message LIKE '%violates check constraint \"no_bad_rows\"%' AND raw_record LIKE '%BAD ROW%'"),
			'3', "skip, $mode: each with the shard's message and its raw record");
		$s->is_like('sales', $good, "skip, $mode");
		batched_ok('sales', "skip, $mode", 1);
		$s->truncate_table('sales');
	}
	$s->shard_sql(1, 'ALTER TABLE sales DROP CONSTRAINT no_bad_rows');
}

# ---------------------------------------------------------------- 4 -------
#
# Citus is not installed here.  csvpipe recognises a Citus table by what
# Citus itself records, and by nothing else: an installed extension named
# "citus" (pg_extension) and the table's oid in
# pg_catalog.pg_dist_partition.logicalrelid.  citus_stub creates exactly
# that: a control file named citus.control and a script running the
# statements Citus's own install script uses for that table (CREATE TABLE
# citus.pg_dist_partition (logicalrelid regclass NOT NULL, partmethod
# "char" NOT NULL, partkey text, colocationid integer ..., repmodel "char"
# ...); ALTER TABLE ... SET SCHEMA pg_catalog).  Rows are inserted as
# create_distributed_table would record them.  The stub lives in a private
# copy of the installation (postgres and pg_ctl copied, everything else
# symlinked, its share/extension directory with the stub added) so that no
# installation is modified: PostgreSQL finds its share directory relative to
# its executable.
sub citus_stub_install
{
	my $tmp = PostgreSQL::Test::Utils::tempdir;
	my $real = PostgreSQL::Test::Cluster->new('citus_probe');
	my ($bindir, $sharedir, $pkglibdir) = map { $real->config_data($_) } qw(--bindir --sharedir --pkglibdir);
	die "unexpected layout: $bindir" unless $bindir =~ m{^(.*)/bin$};
	my $inst = "$tmp$1";
	make_path("$tmp$bindir", "$tmp$sharedir/extension", (map { "$tmp$_" } ($pkglibdir =~ m{^(.*)/[^/]+$})));
	for my $f (glob("$bindir/*"))
	{
		(my $b = $f) =~ s{.*/}{};
		if ($b eq 'postgres' || $b eq 'pg_ctl')
		{
			copy($f, "$tmp$bindir/$b") or die "copy $f: $!";
			chmod 0755, "$tmp$bindir/$b";
		}
		else
		{
			symlink($f, "$tmp$bindir/$b") or die "symlink $f: $!";
		}
	}
	symlink($pkglibdir, "$tmp$pkglibdir") or die unless -e "$tmp$pkglibdir";
	for my $f (glob("$sharedir/*"))
	{
		(my $b = $f) =~ s{.*/}{};
		next if $b eq 'extension';
		symlink($f, "$tmp$sharedir/$b") or die;
	}
	for my $f (glob("$sharedir/extension/*"))
	{
		(my $b = $f) =~ s{.*/}{};
		symlink($f, "$tmp$sharedir/extension/$b") or die;
	}
	die 'a real citus is installed' if -e "$sharedir/extension/citus.control";
	PostgreSQL::Test::Utils::append_to_file("$tmp$sharedir/extension/citus.control", qq{
comment = 'csvpipe test stub: the Citus metadata csvpipe reads, nothing else'
default_version = '0.0'
relocatable = false
schema = pg_catalog
});
	PostgreSQL::Test::Utils::append_to_file("$tmp$sharedir/extension/citus--0.0.sql", q{
CREATE SCHEMA citus;
CREATE TABLE citus.pg_dist_partition (
    logicalrelid regclass NOT NULL,
    partmethod "char" NOT NULL,
    partkey text,
    colocationid integer DEFAULT 0 NOT NULL,
    repmodel "char" DEFAULT 'c' NOT NULL);
ALTER TABLE citus.pg_dist_partition SET SCHEMA pg_catalog;
GRANT SELECT ON pg_catalog.pg_dist_partition TO public;
});
	return $inst;
}

{
	my $inst = citus_stub_install();
	my $n = PostgreSQL::Test::Cluster->new('citus', install_path => $inst);
	$n->init;
	$n->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'csvpipe'
max_worker_processes = 16
max_prepared_transactions = 4
timezone = 'UTC'
});
	$n->start;
	$n->safe_psql('postgres', qq{
CREATE EXTENSION csvpipe;
CREATE EXTENSION citus;
CREATE ROLE loader LOGIN;
GRANT pg_read_server_files TO loader;
CREATE TABLE dist ($NARROW);
CREATE TABLE parted ($NARROW) PARTITION BY RANGE (id);
CREATE TABLE parted_1 PARTITION OF parted FOR VALUES FROM (MINVALUE) TO (20001);
CREATE TABLE parted_2 PARTITION OF parted FOR VALUES FROM (20001) TO (MAXVALUE);
CREATE TABLE plain ($NARROW);
GRANT SELECT, INSERT ON dist, parted, plain TO loader;
INSERT INTO pg_catalog.pg_dist_partition VALUES ('dist', 'h', '{VAR :varno 1 :varattno 1}', 1, 's');
INSERT INTO pg_catalog.pg_dist_partition VALUES ('parted_2', 'h', '{VAR :varno 1 :varattno 1}', 2, 's');
});
	is($n->safe_psql('postgres', "SELECT extname FROM pg_extension WHERE extname = 'citus'"), 'citus',
		'the citus stub is installed');
	my $hint = q{Load with INSERT INTO public.dist SELECT * FROM csvpipe.read(...) AS t(...): Citus routes those rows to its shards.};
	my $missing = "$dir/no_such_file.csv";
	my $as = sub {
		my ($ret, $out, $err) = $n->psql('postgres', "\\set VERBOSITY verbose\nSET ROLE loader;\n$_[0]",
			on_error_stop => 0);
		return $err;
	};
	for my $mode (qw(transaction chunked prepared))
	{
		my $err = $as->("SELECT * FROM csvpipe.load('$missing', 'dist', mode => '$mode', workers => 2)");
		error_is($err, '0A000', 'csvpipe.load cannot load into Citus table "dist"', $hint, "Citus table, $mode");
		unlike($err, qr/could not|No such file/, "Citus table, $mode: refused before the file is opened");
	}
	error_is($as->("SELECT csvpipe.submit('$missing', 'dist')"), '0A000',
		'csvpipe.submit cannot load into Citus table "dist"', $hint, 'Citus table, submit');
	error_is($as->("SELECT csvpipe.load_serial('$dir/sales.csv', 'dist')"), '0A000',
		'csvpipe.load_serial cannot load into Citus table "dist"', $hint, 'Citus table, load_serial');
	error_is($as->("SELECT * FROM csvpipe.load('$missing', 'parted', workers => 2)"), '0A000',
		'csvpipe.load cannot load into "parted": its partition "parted_2" is a Citus table',
		q{Load with INSERT INTO public.parted SELECT * FROM csvpipe.read(...) AS t(...): Citus routes those rows to its shards.},
		'a Citus table as a partition');
	is($n->safe_psql('postgres', 'SELECT (SELECT count(*) FROM dist) + (SELECT count(*) FROM parted) + (SELECT count(*) FROM csvpipe.job)'),
		'0', 'nothing loaded into the Citus tables, no job recorded');
	is($n->safe_psql('postgres', "SET ROLE loader; SELECT rows_loaded FROM csvpipe.load('$dir/sales.csv', 'plain', workers => 2)"),
		'40000', 'a table Citus does not list loads');
	$n->stop;
}

# ---------------------------------------------------------------- 5 -------
{
	$s->sql(qq{
CREATE TABLE longerr ($NARROW);
CREATE FUNCTION longerr_fail() RETURNS trigger LANGUAGE plpgsql AS \$\$
BEGIN
  IF NEW.id = 30000 THEN RAISE EXCEPTION '%', repeat('long error ', 140) || 'END'; END IF;
  RETURN NEW;
END \$\$;
CREATE TRIGGER longerr_fail BEFORE INSERT ON longerr FOR EACH ROW EXECUTE FUNCTION longerr_fail();
GRANT SELECT, INSERT ON longerr TO loader;
CREATE TABLE late ($NARROW);
CREATE FUNCTION late_fail() RETURNS trigger LANGUAGE plpgsql AS \$\$
BEGIN RAISE EXCEPTION 'deferred check failed at commit'; END \$\$;
CREATE CONSTRAINT TRIGGER late_fail AFTER INSERT ON late DEFERRABLE INITIALLY DEFERRED
  FOR EACH ROW WHEN (NEW.id = 30000) EXECUTE FUNCTION late_fail();
GRANT SELECT, INSERT ON late TO loader;
});
	my $msg = ('long error ' x 140) . 'END';
	for my $mode (qw(transaction chunked))
	{
		my ($out, $err) = try_as('loader',
			"SELECT * FROM csvpipe.load('$dir/sales.csv', 'longerr', mode => '$mode', workers => 2, chunk_size => 200000)");
		like($err, qr/ERROR:  P0001: \Q$msg\E\n/, "long error, $mode: the client gets it");
		is( $s->sql("SELECT error FROM csvpipe.job WHERE target = 'longerr'::regclass ORDER BY job_id DESC LIMIT 1"),
			$msg, "long error, $mode: csvpipe.jobs.error holds all " . length($msg) . ' bytes');
	}

	for my $case ([ 'chunked', '' ], [ 'chunked', ", on_error => 'skip'" ], [ 'prepared', ", on_error => 'skip'" ])
	{
		my ($mode, $extra) = @{$case};
		my ($out, $err) = try_as('loader',
			"SELECT * FROM csvpipe.load('$dir/sales.csv', 'late', mode => '$mode', workers => 2, chunk_size => 200000$extra)");
		my $label = "error at commit, $mode$extra";
		like($err, qr/ERROR:  P0001: deferred check failed at commit\n/, "$label: the load fails with it");
		my ($context) = $err =~ /^(CONTEXT:.*)\z/ms;
		$context //= '';
		unlike($context, qr/", lines? \d/, "$label: no line named") or diag($err);
	}
	my $job = $s->sql_as('loader',
		"SELECT csvpipe.submit('$dir/sales.csv', 'late', mode => 'chunked', workers => 2, chunk_size => 200000, on_error => 'skip', force => true)");
	is($s->sql_as('loader', "SELECT csvpipe.wait($job, '120 s')"), 'failed', 'submitted load with an error at commit fails');
	my $jerr = $s->sql("SELECT error FROM csvpipe.job WHERE job_id = $job");
	like($jerr, qr/^deferred check failed at commit/, '... with the error');
	unlike($jerr, qr/", lines? \d/, '... naming no line');
}

done_testing();
