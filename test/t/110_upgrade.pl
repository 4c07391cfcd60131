# 110_upgrade.pl -- the upgrade path: CREATE EXTENSION csvpipe VERSION '1.0';
# ALTER EXTENSION csvpipe UPDATE in one database, a fresh CREATE EXTENSION
# csvpipe (the default version) in another, and the two must hold the same
# objects and behave the same, as pg_cron and pgvector test their upgrade
# chains.
#
# The comparison is generic: every object of the extension (pg_depend
# members) with its full definition -- functions (pg_get_functiondef,
# ACL, comment), tables and views (columns in order with types, defaults,
# NOT NULL, STATISTICS targets, column ACLs and comments; reloptions,
# ACL, RLS flags, view definitions, indexes, constraints, triggers,
# policies), sequences, types (enum labels, composite attributes), casts,
# the schema's ACL, and pg_extension's config-dump list.  So a change made
# in one of the two 1.x scripts and not in the other fails here, whoever
# makes it.  Dropped columns left by an upgrade are ignored; the order of
# the remaining columns is compared (a 1.1 CREATE TABLE puts new columns
# last, where ADD COLUMN puts them).
#
# The test also proves the comparison can fail (a grant, a comment, a
# statistics target or a view changed in a rolled-back transaction is
# seen), and that a job recorded under 1.0 survives the upgrade.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $gen = $ENV{CSVPIPE_GEN_CSV} // 'test/gen/gen_csv';
my $dir = PostgreSQL::Test::Utils::tempdir;

my $node = PostgreSQL::Test::Cluster->new('upgrade');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'csvpipe'
csvpipe.database = 'upgraded'
max_prepared_transactions = 10
max_worker_processes = 24
timezone = 'UTC'
});
$node->start;

sub sql { my ($db, $q) = @_; return $node->safe_psql($db, $q); }

# the extension's default version, from the control file the server reads
my $default = sql('postgres',
	"SELECT default_version FROM pg_available_extensions WHERE name = 'csvpipe'");
isnt($default, '1.0', "the default version is past 1.0 ($default)");
like(
	sql('postgres',
		"SELECT string_agg(source || '>' || target || ':' || path, ' ') "
		  . "FROM pg_extension_update_paths('csvpipe') WHERE source = '1.0' AND target = '$default'"),
	qr/^1\.0>\Q$default\E:1\.0--/,
	"an update path leads from 1.0 to $default");

sql('postgres', 'CREATE DATABASE upgraded');
sql('postgres', 'CREATE DATABASE fresh');

system("$gen narrow 20000 7 > $dir/a.csv") == 0 or die;
my $narrow = 'id bigint, ts timestamptz, name text, amount numeric(12,2), flag boolean';

# ---- 1.0, with a job recorded, then ALTER EXTENSION UPDATE ----
sql('upgraded', "CREATE EXTENSION csvpipe VERSION '1.0'");
is(sql('upgraded', "SELECT extversion FROM pg_extension WHERE extname = 'csvpipe'"),
	'1.0', 'installed 1.0');
sql('upgraded', "CREATE TABLE before_upgrade ($narrow)");
my $old_job = sql('upgraded',
	"SELECT job_id FROM csvpipe.load('$dir/a.csv', 'before_upgrade', workers => 2, chunk_size => 65536)");
like($old_job, qr/^\d+$/, 'a load under 1.0');
# the new library serves the 1.0 SQL objects until the update: the queue too
sql('upgraded', "CREATE TABLE queued_before ($narrow)");
my $old_queued = sql('upgraded', "SELECT * FROM csvpipe.submit('$dir/a.csv', 'queued_before')");
is(sql('upgraded', "SELECT csvpipe.wait($old_queued, '60s')"), 'done', 'a queued job under 1.0');
is(sql('upgraded', "SELECT count(*) FROM csvpipe.submit('$dir/a.csv', 'queued_before')"), '0',
	'1.0: submit skips the loaded file');

sql('upgraded', 'ALTER EXTENSION csvpipe UPDATE');
is(sql('upgraded', "SELECT extversion FROM pg_extension WHERE extname = 'csvpipe'"),
	$default, "ALTER EXTENSION csvpipe UPDATE reaches $default");
sql('fresh', 'CREATE EXTENSION csvpipe');
is(sql('fresh', "SELECT extversion FROM pg_extension WHERE extname = 'csvpipe'"),
	$default, "a fresh install is $default");

# ---- the catalog snapshot: one line per fact, sorted ----
my $snapshot = q{
WITH ext AS (
    SELECT oid, extnamespace FROM pg_extension WHERE extname = 'csvpipe'
), members AS (
    SELECT d.classid, d.objid, d.objsubid
      FROM pg_depend d, ext
     WHERE d.refclassid = 'pg_extension'::regclass AND d.refobjid = ext.oid AND d.deptype = 'e'
), rels AS (
    SELECT c.oid, c.relname FROM pg_class c, members m
     WHERE m.classid = 'pg_class'::regclass AND m.objid = c.oid
    UNION
    -- a composite type's relation is not a member itself
    SELECT c.oid, c.relname FROM pg_type t, members m, pg_class c
     WHERE m.classid = 'pg_type'::regclass AND m.objid = t.oid AND c.oid = t.typrelid
)
SELECT line FROM (
    -- every member, its owner and its comment
    SELECT 'member ' || pg_describe_object(m.classid, m.objid, m.objsubid)
           || ' comment=' || coalesce(quote_literal(obj_description(m.objid,
                  (SELECT relname FROM pg_class WHERE oid = m.classid))), 'none')
      FROM members m
    UNION ALL
    SELECT 'function ' || p.oid::regprocedure || ' owner=' || p.proowner::regrole
           || ' acl=' || coalesce(p.proacl::text, 'default') || E'\n' || pg_get_functiondef(p.oid)
      FROM pg_proc p, members m
     WHERE m.classid = 'pg_proc'::regclass AND m.objid = p.oid
    UNION ALL
    SELECT 'relation ' || c.oid::regclass || ' kind=' || c.relkind::text || ' persistence=' || c.relpersistence::text
           || ' owner=' || c.relowner::regrole || ' acl=' || coalesce(c.relacl::text, 'default')
           || ' options=' || coalesce(c.reloptions::text, 'none')
           || ' rls=' || c.relrowsecurity || '/' || c.relforcerowsecurity
           || ' replident=' || c.relreplident::text
           || CASE WHEN c.relkind IN ('v', 'm') THEN E'\n' || pg_get_viewdef(c.oid) ELSE '' END
      FROM pg_class c JOIN rels r ON r.oid = c.oid
    UNION ALL
    -- columns in order (dropped ones skipped, so the rank, not attnum)
    SELECT 'column ' || c.oid::regclass || ' #' || rank() OVER (PARTITION BY c.oid ORDER BY a.attnum)
           || ' ' || quote_ident(a.attname) || ' ' || format_type(a.atttypid, a.atttypmod)
           || ' notnull=' || a.attnotnull || ' default=' || coalesce(pg_get_expr(ad.adbin, ad.adrelid), 'none')
           || ' stats=' || a.attstattarget || ' storage=' || a.attstorage::text
           || ' collation=' || coalesce(nullif(a.attcollation, 0)::regcollation::text, 'none')
           || ' identity=' || a.attidentity::text || ' generated=' || a.attgenerated::text
           || ' acl=' || coalesce(a.attacl::text, 'default')
           -- (pg_attver, set by this server build on every column, differs
           -- between any two tables: not a setting)
           || ' options=' || coalesce((SELECT array_agg(o ORDER BY o)::text FROM unnest(a.attoptions) o
                                       WHERE o NOT LIKE 'pg\_attver=%'), 'none')
           || ' comment=' || coalesce(quote_literal(col_description(c.oid, a.attnum)), 'none')
      FROM pg_class c JOIN rels r ON r.oid = c.oid
      JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
      LEFT JOIN pg_attrdef ad ON ad.adrelid = a.attrelid AND ad.adnum = a.attnum
    UNION ALL
    -- indexes by definition (their names are generated for some)
    SELECT 'index ' || i.indrelid::regclass || ' ' || pg_get_indexdef(i.indexrelid)
           || ' options=' || coalesce(ic.reloptions::text, 'none')
           || ' clustered=' || i.indisclustered || ' replident=' || i.indisreplident
      FROM pg_index i JOIN rels r ON r.oid = i.indrelid JOIN pg_class ic ON ic.oid = i.indexrelid
    UNION ALL
    SELECT 'constraint ' || co.conrelid::regclass || ' ' || quote_ident(co.conname) || ' '
           || pg_get_constraintdef(co.oid)
      FROM pg_constraint co JOIN rels r ON r.oid = co.conrelid
    UNION ALL
    SELECT 'trigger ' || pg_get_triggerdef(tg.oid)
      FROM pg_trigger tg JOIN rels r ON r.oid = tg.tgrelid
    UNION ALL
    SELECT 'rule ' || pg_get_ruledef(rw.oid)
      FROM pg_rewrite rw JOIN rels r ON r.oid = rw.ev_class
    UNION ALL
    SELECT 'policy ' || pol.polrelid::regclass || ' ' || quote_ident(pol.polname) || ' ' || pol.polcmd::text
           || ' ' || pol.polroles::regrole[]::text
           || ' using=' || coalesce(pg_get_expr(pol.polqual, pol.polrelid), 'none')
           || ' check=' || coalesce(pg_get_expr(pol.polwithcheck, pol.polrelid), 'none')
      FROM pg_policy pol JOIN rels r ON r.oid = pol.polrelid
    UNION ALL
    SELECT 'statistics object ' || pg_get_statisticsobjdef(s.oid)
      FROM pg_statistic_ext s JOIN rels r ON r.oid = s.stxrelid
    UNION ALL
    SELECT 'sequence ' || s.seqrelid::regclass || ' ' || format_type(s.seqtypid, NULL)
           || ' start=' || s.seqstart || ' inc=' || s.seqincrement || ' max=' || s.seqmax
           || ' min=' || s.seqmin || ' cache=' || s.seqcache || ' cycle=' || s.seqcycle
           || ' ownedby=' || coalesce((SELECT d.refobjid::regclass || '.' || d.refobjsubid
                                         FROM pg_depend d
                                        WHERE d.classid = 'pg_class'::regclass AND d.objid = s.seqrelid
                                          AND d.refclassid = 'pg_class'::regclass AND d.deptype IN ('a', 'i')), 'none')
      FROM pg_sequence s JOIN rels r ON r.oid = s.seqrelid
    UNION ALL
    SELECT 'type ' || t.oid::regtype || ' kind=' || t.typtype::text || ' owner=' || t.typowner::regrole
           || ' acl=' || coalesce(t.typacl::text, 'default')
           || coalesce(' labels=' || (SELECT string_agg(quote_literal(e.enumlabel), ',' ORDER BY e.enumsortorder)
                                        FROM pg_enum e WHERE e.enumtypid = t.oid), '')
      FROM pg_type t, members m
     WHERE m.classid = 'pg_type'::regclass AND m.objid = t.oid
    UNION ALL
    SELECT 'cast ' || format_type(ca.castsource, NULL) || ' -> ' || format_type(ca.casttarget, NULL)
           || ' context=' || ca.castcontext::text || ' method=' || ca.castmethod::text
           || ' func=' || coalesce(nullif(ca.castfunc, 0)::regprocedure::text, 'none')
      FROM pg_cast ca, members m
     WHERE m.classid = 'pg_cast'::regclass AND m.objid = ca.oid
    UNION ALL
    SELECT 'schema ' || n.nspname || ' owner=' || n.nspowner::regrole
           || ' acl=' || coalesce(n.nspacl::text, 'default')
           || ' comment=' || coalesce(quote_literal(obj_description(n.oid, 'pg_namespace')), 'none')
      FROM pg_namespace n, ext WHERE n.oid = ext.extnamespace
    UNION ALL
    SELECT 'extension relocatable=' || e.extrelocatable || ' schema=' || e.extnamespace::regnamespace
           || ' config=' || coalesce((SELECT string_agg(cfg.rel::regclass || ':' || coalesce(quote_literal(cfg.cond), 'null'),
                                                        ',' ORDER BY cfg.rel::regclass::text)
                                        FROM unnest(e.extconfig, e.extcondition) AS cfg(rel, cond)), 'none')
      FROM pg_extension e WHERE e.extname = 'csvpipe'
    UNION ALL
    -- objects in the schema that belong to nothing: an upgrade script that
    -- forgot one is caught here (the other lists start from the members)
    SELECT 'loose ' || pg_describe_object(cl.classid, cl.objid, 0)
      FROM (SELECT 'pg_class'::regclass AS classid, c.oid AS objid, c.relnamespace AS nsp
              FROM pg_class c WHERE c.relkind IN ('r', 'v', 'm', 'S', 'f', 'p')
            UNION ALL SELECT 'pg_proc'::regclass, p.oid, p.pronamespace FROM pg_proc p
            UNION ALL SELECT 'pg_type'::regclass, t.oid, t.typnamespace FROM pg_type t
                       WHERE t.typtype IN ('e', 'd', 'b', 'r', 'm')
                          OR (t.typtype = 'c' AND (SELECT relkind FROM pg_class WHERE oid = t.typrelid) = 'c')) cl, ext
     WHERE cl.nsp = ext.extnamespace
       AND NOT EXISTS (SELECT 1 FROM members m WHERE m.classid = cl.classid AND m.objid = cl.objid)
) facts(line)
ORDER BY line COLLATE "C"
};

# the facts of one database; $change (if any) runs first, in a transaction
# rolled back afterwards
sub snapshot
{
	my ($db, $change) = @_;
	my $q = defined $change ? "BEGIN; $change; $snapshot; ROLLBACK" : $snapshot;
	my ($ret, $stdout, $stderr) = $node->psql($db, $q,
		extra_params => [ '-X', '-q', '-A', '-t', '-R', "\x1e" ]);
	die "snapshot failed in $db: $stderr" if $ret != 0;
	return [ split /\x1e/, $stdout ];
}

# facts in one list and not in the other, as "-" (upgraded) and "+" (fresh)
sub compare
{
	my ($a, $b) = @_;
	my (%ina, %inb);
	$ina{$_}++ for @$a;
	$inb{$_}++ for @$b;
	my @diff;
	push @diff, map { "- (upgraded) $_" } grep { ($ina{$_} // 0) != ($inb{$_} // 0) } sort keys %ina;
	push @diff, map { "+ (fresh)    $_" } grep { !exists $ina{$_} } sort keys %inb;
	return join("\n", @diff);
}

my $up = snapshot('upgraded');
my $fr = snapshot('fresh');
cmp_ok(scalar(@$fr), '>', 100, 'the snapshot lists the extension\'s objects (' . scalar(@$fr) . ' facts)');
ok(scalar(grep { /^function csvpipe\.load\(/ } @$fr) == 2	# target regclass, target text
	  && scalar(grep { /^column csvpipe\.job #1 job_id bigint/ } @$fr) == 1
	  && scalar(grep { /^relation csvpipe\.jobs kind=v/ } @$fr) == 1,
	'the snapshot holds function definitions, columns and views');
my $diff = compare($up, $fr);
is($diff, '', "1.0 + ALTER EXTENSION UPDATE and a fresh $default install hold the same objects")
  or diag("differences:\n$diff");

# The comparison sees each kind of drift (changed in a transaction rolled
# back at once, in a third database updated the same way).
sql('postgres', 'CREATE DATABASE drift');
sql('drift', "CREATE EXTENSION csvpipe VERSION '1.0'; ALTER EXTENSION csvpipe UPDATE");
is(compare(snapshot('drift'), $fr), '', 'a second upgraded database matches too');
for my $change (
	'REVOKE SELECT ON csvpipe.jobs FROM PUBLIC',
	"COMMENT ON VIEW csvpipe.errors IS 'changed'",
	'ALTER TABLE csvpipe.rejected ALTER COLUMN message SET STATISTICS -1',
	'ALTER TABLE csvpipe.job SET (fillfactor = 50)',
	'ALTER TABLE csvpipe.job ALTER COLUMN path SET (n_distinct = 5)',
	'CREATE OR REPLACE VIEW csvpipe.cache AS SELECT * FROM csvpipe.cache_1_0() WHERE false',
	'ALTER FUNCTION csvpipe.cancel(bigint) STABLE',
	'CREATE FUNCTION csvpipe.stray() RETURNS int LANGUAGE sql RETURN 1')
{
	isnt(compare(snapshot('drift', $change), $fr), '', "the comparison sees: $change");
}

# ---- the same behaviour: a job from 1.0, a load, a read, the queue ----
is(sql('upgraded', "SELECT state || ' ' || rows_loaded FROM csvpipe.jobs WHERE job_id = $old_job"),
	'done 20000', 'the job loaded under 1.0 is still in csvpipe.jobs after the update');

my %md5;
for my $db ('upgraded', 'fresh')
{
	sql($db, "CREATE TABLE copy_a ($narrow); COPY copy_a FROM '$dir/a.csv' (FORMAT csv, HEADER)");
	sql($db, "CREATE TABLE t_load ($narrow)");
	my $r = sql($db,
		"SELECT rows_loaded FROM csvpipe.load('$dir/a.csv', 't_load', workers => 2, chunk_size => 65536)");
	is($r, '20000', "$db: csvpipe.load loads every row");
	is( sql($db, "SELECT (SELECT md5(string_agg(t::text, ',' ORDER BY id)) FROM t_load t) = "
			  . "(SELECT md5(string_agg(t::text, ',' ORDER BY id)) FROM copy_a t)"),
		't', "$db: the loaded table equals COPY's");
	is( sql($db, "SELECT count(*) || ' ' || sum(id) FROM csvpipe.read('$dir/a.csv') AS ($narrow)"),
		sql($db, "SELECT count(*) || ' ' || sum(id) FROM copy_a"),
		"$db: csvpipe.read returns the file's rows");
	is(sql($db, "SELECT count(*) FROM csvpipe.read_text('$dir/a.csv', header => false)"),
		'20001', "$db: csvpipe.read_text returns every line");
	is( sql($db, "SELECT count(*) FROM csvpipe.jobs WHERE state = 'done' AND target = 't_load'::regclass"),
		'1', "$db: csvpipe.jobs shows the load");
}

# the queue runs in csvpipe.database, the upgraded one
sql('upgraded', "CREATE TABLE t_queue ($narrow)");
my $job = sql('upgraded', "SELECT * FROM csvpipe.submit('$dir/a.csv', 't_queue')");
like($job, qr/^\d+$/, 'upgraded: submit queues the file');
is(sql('upgraded', "SELECT csvpipe.wait($job, '60s')"), 'done', 'upgraded: the launcher runs it');
is(sql('upgraded', 'SELECT count(*) FROM t_queue'), '20000', 'upgraded: the queued job loaded every row');
is(sql('upgraded', "SELECT count(*) FROM csvpipe.submit('$dir/a.csv', 't_queue')"),
	'0', 'upgraded: submit skips the loaded file');
is(sql('upgraded', "SELECT count(*) FROM csvpipe.submit('$dir/a.csv', 'queued_before')"), '0',
	'upgraded: submit skips the file a 1.0 job loaded');
# jobs from before the update are purged like any other, and still skip
sql('upgraded', "UPDATE csvpipe.job SET finished_at = now() - interval '2 days' WHERE job_id IN ($old_job, $old_queued)");
is(sql('upgraded', "SELECT jobs || ' ' || loaded_files_kept FROM csvpipe.purge('1 day')"), '2 2',
	'upgraded: purge removes the two 1.0 jobs and records their files');
is(sql('upgraded', "SELECT count(*) FROM csvpipe.submit('$dir/a.csv', 'queued_before')"), '0',
	'upgraded: submit still skips the file the purged 1.0 job loaded');

$node->stop;
done_testing();
