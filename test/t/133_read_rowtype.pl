# 133_read_rowtype.pl -- reads without a column list (issue 13 item 3):
# csvpipe.read(path, NULL::t, ...) returns rows of t's type.
#
#  1. Call resolution: every call form of the record form (positional with
#     literals up to all 13 arguments, typed values, text/varchar/name,
#     named) still resolves to it, never ambiguously; the typed form's
#     parameters after rowtype have the record form's types position by
#     position (what makes that hold); positional options of the typed
#     form are delimiter, quote, header.
#  2. Rows equal to COPY into the same table (same order, every value), for
#     a generated file (a table with a dropped and a generated column,
#     quoted commas, quotes, line breaks, leading-zero codes, "" vs NULL)
#     and for files nobody here wrote: test/data (header, CRLF, BOM, '|',
#     tab, LATIN1, preamble + null_string) and the third-party corpus
#     (TPC-H lineitem, TPC-DS web_page and customer, AWS locations with a
#     header, a 94-column tab-separated voter file, a 110-column header);
#     each through the streaming CustomScan and the FunctionScan (WITH
#     ORDINALITY), with workers 0 and 2 (small chunks), header => 'match'
#     where the file has a header.  Generated columns come back NULL.
#     Columns by name (match => 'name'): the generated file with its columns
#     reversed and a name in upper case, the same with a column the type
#     lacks (extra_columns => 'ignore'), test/data and the AWS file into
#     reordered tables with a column the file lacks: rows equal to COPY with
#     the column list in file order.
#  3. A cursor over the read FETCHed in pieces, its first FETCH (which opens
#     the file and starts the workers) inside a savepoint rolled back, later
#     ones in savepoints released and rolled back, gives COPY's rows in
#     order (workers 0 and 2); an error inside a savepoint leaves the
#     session able to read.
#  4. Privileges and csvpipe.allowed_dirs exactly as the record form: an
#     unprivileged role is denied (42501), a pg_read_server_files role
#     reads, a file outside allowed_dirs gets the same error, on both the
#     CustomScan and the FunctionScan.
#  5. Exact errors: more and fewer fields than the type (SQLSTATE, message,
#     hint naming the columns, file and line; workers 0 and 2), header =>
#     'match' with a wrong name (names the column), a non-composite row
#     type, record, a domain over a composite type whose CHECK fails (with
#     the line; on_error => 'skip' skips the row); match => 'name' with a
#     column the type lacks, without a header, a record longer than the
#     header.
#  6. The result cache: a repeat typed read is a hit; a row type with other
#     column types is a miss with its own values (leading zeros kept); with
#     match => 'name' a hit, and by position another entry; ALTER TABLE
#     changing a column's type is seen at once; a domain row type is not
#     cached.
use strict;
use warnings;

use Cwd ();
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $corpus = $ENV{CSVPIPE_CORPUS_DIR} // '/work/shared/corpus';
my $data = Cwd::abs_path('test/data');
my $dir = PostgreSQL::Test::Utils::tempdir;
chmod 0755, $dir;
my $outside = PostgreSQL::Test::Utils::tempdir;
chmod 0755, $outside;
my $allowed = join(',', $dir, $data, (-d $corpus ? ($corpus) : ()));
# files older than a second can be cached ("racily clean" otherwise)
my $old = time - 3600;

my $node = PostgreSQL::Test::Cluster->new('rowtype');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'csvpipe'
max_worker_processes = 16
csvpipe.database = 'postgres'
csvpipe.allowed_dirs = '$allowed'
timezone = 'UTC'
datestyle = 'ISO, MDY'
});
$node->start;

sub sql { return $node->safe_psql('postgres', $_[0]); }

sql(q{
CREATE EXTENSION csvpipe;
CREATE FUNCTION try(q text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE st text; m text; h text; c text;
BEGIN
  EXECUTE q;
  RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
  GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, m = MESSAGE_TEXT,
                          h = PG_EXCEPTION_HINT, c = PG_EXCEPTION_CONTEXT;
  RETURN st || ' ' || m || coalesce(' HINT: ' || nullif(h, ''), '')
         || coalesce(' CONTEXT: ' || (regexp_match(c, '(csvpipe\.read "[^\n]*)'))[1], '');
END $$;
GRANT EXECUTE ON FUNCTION try(text) TO PUBLIC;
});

sub write_file
{
	my ($name, $text) = @_;
	my $path = "$dir/$name";
	open(my $fh, '>:raw', $path) or die "$path: $!";
	print $fh $text;
	close $fh;
	chmod 0644, $path;
	utime($old, $old, $path) or die "utime $path: $!";
	return $path;
}

sub lit { my $s = shift; $s =~ s/'/''/g; return "'$s'"; }

# what the result cache did for a read (EXPLAIN ANALYZE of the CustomScan)
sub cache_status
{
	my $q = shift;
	my $plan = sql("EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) $q");
	return $plan =~ /Cache: (.*)/ ? $1 : "no cache line in: $plan";
}

# ---- 1. call resolution ----
my $record_form = sql(q{SELECT p.oid::regprocedure FROM pg_proc p
	WHERE p.proname = 'read' AND p.pronamespace = 'csvpipe'::regnamespace
	  AND p.prorettype = 'record'::regtype});
my $typed_form = sql(q{SELECT p.oid::regprocedure FROM pg_proc p
	WHERE p.proname = 'read' AND p.pronamespace = 'csvpipe'::regnamespace
	  AND p.prorettype = 'anyelement'::regtype});
ok($record_form ne '' && $typed_form ne '', "both forms exist: $record_form; $typed_form");

# the parameters after rowtype have the record form's types, position by
# position (path: both; rowtype: the record form's delimiter): so a call the
# record form takes is told apart only by its second argument
is(sql(q{
WITH r AS (SELECT proargtypes::oid[] a FROM pg_proc WHERE oid = 'csvpipe.read(text,text,text,text,csvpipe.header_mode,text,text,bigint,int,boolean,bigint,text,boolean)'::regprocedure),
     t AS (SELECT p.proargtypes::oid[] a FROM pg_proc p
            WHERE p.proname = 'read' AND p.pronamespace = 'csvpipe'::regnamespace
              AND p.prorettype = 'anyelement'::regtype)
SELECT string_agg(i || ':' || r.a[i]::regtype || '/' || t.a[i]::regtype, ' ')
  FROM r, t, generate_subscripts(r.a, 1) i
 WHERE i <> 1 AND r.a[i] IS DISTINCT FROM t.a[i]}), '',
	'typed form: parameters 3.. have the record form\'s types');

sql(q{CREATE TABLE ab (a text, b text)});
my $ab = write_file('ab.csv', "a,b\n1,x\n2,y\n");
my @record_calls = (
	"csvpipe.read('$ab') AS t(a text, b text)",
	"csvpipe.read('$ab', ',') AS t(a text, b text)",
	"csvpipe.read('$ab', NULL) AS t(a text, b text)",
	"csvpipe.read('$ab', E'\\t') AS t(a text, b text)",
	"csvpipe.read('$ab', ',', '\"') AS t(a text, b text)",
	"csvpipe.read('$ab', ',', '\"', NULL) AS t(a text, b text)",
	"csvpipe.read('$ab', ',', '\"', NULL, false) AS t(a text, b text)",
	"csvpipe.read('$ab', ',', '\"', NULL, 'match') AS t(a text, b text)",
	"csvpipe.read('$ab', ',', '\"', NULL, 'match', 'NA') AS t(a text, b text)",
	"csvpipe.read('$ab', ',', '\"', NULL, 'match', '', 'UTF8', '0', '2', 'true', '100', 'stop', 'false') AS t(a text, b text)",
	"csvpipe.read('$ab', ',', '\"', NULL, 'match', '', 'UTF8', 0, 2, true, 100, 'stop', false) AS t(a text, b text)",
	"csvpipe.read('$ab', NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL) AS t(a text, b text)",
	"csvpipe.read('$ab'::text, ','::text) AS t(a text, b text)",
	"csvpipe.read('$ab'::varchar, ','::varchar) AS t(a text, b text)",
	"csvpipe.read('$ab', ','::name) AS t(a text, b text)",
	"csvpipe.read('$ab', ','::bpchar) AS t(a text, b text)",
	"csvpipe.read('$ab', delimiter => ';') AS t(a text, b text)",
	"csvpipe.read('$ab', ',', header => 'match', workers => 2) AS t(a text, b text)",
	"csvpipe.read(path => '$ab', delimiter => ',') AS t(a text, b text)",
	"csvpipe.read('$ab', header => 'match'::csvpipe.header_mode) AS t(a text, b text)",
	"csvpipe.read(current_setting('data_directory') || '/x.csv', ',') AS t(a text, b text)",
);
my $n = 0;
for my $call (@record_calls)
{
	$n++;
	my $q = "CREATE VIEW call_$n AS SELECT * FROM $call";
	is(sql("SELECT try(" . lit($q) . ")"), 'ok', "resolves: $call");
	is(sql("SELECT refobjid::regprocedure FROM pg_depend d JOIN pg_rewrite r ON r.oid = d.objid
			 WHERE r.ev_class = 'call_$n'::regclass AND d.refclassid = 'pg_proc'::regclass
			   AND d.refobjid::regproc::text = 'csvpipe.read'"),
		$record_form, "to the record form: $call");
}
for my $call ("csvpipe.read('$ab', NULL::ab)", "csvpipe.read('$ab', NULL::ab, ',')",
	"csvpipe.read('$ab', NULL::ab, ',', '\"', 'match')",
	"csvpipe.read(path => '$ab', rowtype => NULL::ab, workers => 2)")
{
	$n++;
	sql("CREATE VIEW call_$n AS SELECT * FROM $call");
	is(sql("SELECT refobjid::regprocedure FROM pg_depend d JOIN pg_rewrite r ON r.oid = d.objid
			 WHERE r.ev_class = 'call_$n'::regclass AND d.refclassid = 'pg_proc'::regclass
			   AND d.refobjid::regproc::text = 'csvpipe.read'"),
		$typed_form, "to the typed form: $call");
}
# positional options of the typed form: delimiter, quote, header
my $semi = write_file('semi.csv', "b;a\n'1;1';x\n");
is(sql("SELECT string_agg(a || '/' || b, ' ') FROM csvpipe.read('$semi', NULL::ab, ';', '''', false)"),
	"b/a 1;1/x", 'typed form: positional delimiter, quote, header');
is(sql("SELECT string_agg(a || '/' || b, ' ') FROM csvpipe.read('$semi', NULL::ab, ';', '''')"),
	"1;1/x", 'typed form: positional delimiter, quote');

# ---- 2. rows equal to COPY into the same table ----

# a generated file: the table has a dropped and a generated column
my @gen_rows;
my @names = ('plain', 'with, comma', 'say "hi"', "two\nlines", 'caf' . "\xc3\xa9", ' spaced ', '');
for my $i (1 .. 600)
{
	my $name = $names[$i % @names];
	$name = '"' . ($name =~ s/"/""/gr) . '"' if $name =~ /[",\n ]/ || $i % 11 == 0;
	my $note = $i % 5 == 0 ? '' : $i % 5 == 1 ? '""' : "n$i";
	my $amount = $i % 13 == 0 ? '' : sprintf('%d.%02d', $i * 7 % 1000 - 300, $i % 100);
	push @gen_rows, [ $i, sprintf('%05d', $i * 37 % 100000), $name, $amount,
		sprintf('2024-%02d-%02d %02d:%02d:%02d+%02d', $i % 12 + 1, $i % 28 + 1, $i % 24, $i % 60, $i % 59, $i % 5),
		$i % 17 == 0 ? '' : sprintf('20%02d-%02d-%02d', $i % 30, $i % 12 + 1, $i % 28 + 1),
		$i % 3 == 0 ? 'true' : $i % 3 == 1 ? 'f' : '',
		$note ];
}
my $items = write_file('items.csv',
	join('', map { join(',', @$_) . "\n" } [qw(id code name amount ts d flag note)], @gen_rows));
# the same rows, columns reversed, one name in upper case; and with a column
# the table lacks, quoted commas in it
my $items_rev = write_file('items_rev.csv',
	join('', map { join(',', reverse @$_) . "\n" } [qw(id code name amount ts d FLAG note)], @gen_rows));
my $n_extra = 0;
my $items_extra = write_file('items_extra.csv',
	join('', map { my @r = reverse @$_; splice(@r, 3, 0, $n_extra++ ? "\"x,$n_extra\"" : 'extra'); join(',', @r) . "\n" }
		[qw(id code name amount ts d FLAG note)], @gen_rows));
sql(q{
CREATE TABLE items (id int, dropme int, code text, name text, amount numeric(12,2),
                    total numeric GENERATED ALWAYS AS (amount * 2) STORED,
                    ts timestamptz, d date, flag boolean, note text);
ALTER TABLE items DROP COLUMN dropme;
});

# typed tables for third-party files, the columns their schemas give
sql(q{
CREATE TABLE lineitem (l_orderkey int, l_partkey int, l_suppkey int, l_linenumber int,
  l_quantity numeric, l_extendedprice numeric(15,2), l_discount numeric(15,2), l_tax numeric(15,2),
  l_returnflag char(1), l_linestatus char(1), l_shipdate date, l_commitdate date,
  l_receiptdate date, l_shipinstruct varchar(25), l_shipmode varchar(10), l_comment varchar(44));
CREATE TABLE web_page (wp_web_page_sk int, wp_web_page_id char(16), wp_rec_start_date date,
  wp_rec_end_date date, wp_creation_date_sk int, wp_access_date_sk int, wp_autogen_flag char(1),
  wp_customer_sk int, wp_url varchar(100), wp_type char(50), wp_char_count int,
  wp_link_count int, wp_image_count int, wp_max_ad_count int);
CREATE TABLE customer (c_customer_sk int, c_customer_id char(16), c_current_cdemo_sk int,
  c_current_hdemo_sk int, c_current_addr_sk int, c_first_shipto_date_sk int,
  c_first_sales_date_sk int, c_salutation char(10), c_first_name char(20), c_last_name char(30),
  c_preferred_cust_flag char(1), c_birth_day int, c_birth_month int, c_birth_year int,
  c_birth_country varchar(20), c_login char(13), c_email_address char(50),
  c_last_review_date_sk int);
CREATE TABLE aws_locations (code text, city text, state text, country text, country_code text,
  count int, latitude double precision, longitude double precision, region text,
  pricing_region text);
CREATE TABLE basic (id int, ts timestamptz, name text, amount numeric(12,2), flag boolean);
CREATE TABLE people (id int, name text);
CREATE TABLE people3 (id int, name text, amount numeric(12,2));
CREATE TABLE people_rev (amount numeric(12,2), name text, id int, note text);
CREATE TABLE aws_rev (pricing_region text, region text, longitude double precision,
  latitude double precision, count int, note text, country_code text, country text,
  state text, city text, code text);
CREATE TABLE tabbed (id int, name text, note text);
});

# a table of text columns named after a file's header (or c1..cN)
sub text_table
{
	my ($table, $path, $delim, $header) = @_;
	open(my $fh, '<:raw', $path) or die "$path: $!";
	my $first = <$fh>;
	close $fh;
	$first =~ s/\r?\n\z//;
	my $d = quotemeta($delim);
	my @f = map { s/^"(.*)"\z/$1/r } split(/$d/, $first, -1);
	my $i = 0;
	my @cols = map { $i++; $header && $_ ne '' ? $_ : "c$i" } @f;
	sql("CREATE TABLE $table ("
		  . join(', ', map { my $c = $_ =~ s/"/""/gr; "\"$c\" text" } @cols) . ')');
}

# [ name, table, path, csvpipe options, COPY options, header (also with
#   header => 'match'), COPY's column list, COPY's file (the path's if not) ]
my @cases;
push @cases, [ 'generated file', 'items', $items, "", "HEADER true", 1 ];
push @cases, [ 'test/data basic.csv', 'basic', "$data/basic.csv", "", "HEADER true", 1 ];
push @cases, [ 'test/data crlf.csv', 'people', "$data/crlf.csv", "", "HEADER true", 1 ];
push @cases, [ 'test/data pipe.csv', 'people', "$data/pipe.csv", ", delimiter => '|'", "HEADER true, DELIMITER '|'", 1 ];
push @cases, [ 'test/data tab.tsv', 'tabbed', "$data/tab.tsv", ", delimiter => E'\\t'", "HEADER true, DELIMITER E'\\t'", 1 ];
push @cases, [ 'test/data latin1.csv', 'people', "$data/latin1.csv", ", encoding => 'LATIN1'", "HEADER true, ENCODING 'LATIN1'", 1 ];
push @cases, [ 'test/data bom.csv', 'people', "$data/bom.csv", "", "HEADER true", 1 ];
# columns by name: reordered, a name in another case, a column the table
# lacks (ignored), a table column the file lacks (NULL, as COPY's default)
my $rev_cols = '(note, flag, d, ts, amount, name, code, id)';
push @cases, [ 'generated file, reordered, match => name', 'items', $items_rev,
	", match => 'name'", "HEADER true", 0, $rev_cols ];
push @cases, [ 'generated file, reordered + an extra column, match => name, extra_columns => ignore', 'items',
	$items_extra, ", match => 'name', extra_columns => 'ignore'", "HEADER true", 0, $rev_cols, $items_rev ];
push @cases, [ 'test/data load_people.csv into (amount, name, id, note), match => name', 'people_rev',
	"$data/load_people.csv", ", match => 'name'", "HEADER true", 0, '(id, name, amount)' ];

my $have_corpus = -r "$corpus/README.md";
if ($have_corpus)
{
	my $dd = "$corpus/duckdb/csv";
	push @cases, [ 'corpus TPC-H lineitem', 'lineitem', "$dd/real/lineitem_sample.csv",
		", delimiter => '|', header => false", "DELIMITER '|'", 0 ];
	push @cases, [ 'corpus TPC-DS web_page', 'web_page', "$dd/real/web_page.csv",
		", delimiter => '|', header => false", "DELIMITER '|'", 0 ];
	push @cases, [ 'corpus TPC-DS customer', 'customer', "$dd/customer.csv",
		", header => false", "", 0 ];
	push @cases, [ 'corpus aws_locations', 'aws_locations', "$dd/aws_locations.csv", "", "HEADER true", 1 ];
	push @cases, [ 'corpus aws_locations into a reordered table with one more column, match => name',
		'aws_rev', "$dd/aws_locations.csv", ", match => 'name'", "HEADER true", 0,
		'(code, city, state, country, country_code, count, latitude, longitude, region, pricing_region)' ];
	text_table('ncvoter', "$dd/real/ncvoter.csv", "\t", 0);
	push @cases, [ 'corpus ncvoter (94 columns, tab)', 'ncvoter', "$dd/real/ncvoter.csv",
		", delimiter => E'\\t', header => false", "DELIMITER E'\\t'", 0 ];
	text_table('ontime', "$dd/real/ontime_sample.csv", ",", 1);
	# its header ends with an empty name: no header => 'match'
	push @cases, [ 'corpus ontime (110 columns)', 'ontime', "$dd/real/ontime_sample.csv", "", "HEADER true", 0 ];
	my $alsn = "$corpus/pollock_survey/csv/0Al-Sn.CSV";
	sql(q{CREATE TABLE alsn (x numeric, y double precision)});
	push @cases, [ 'corpus pollock_survey 0Al-Sn', 'alsn', $alsn, ", header => false", "", 0 ];
}
else
{
	diag("no corpus at $corpus: third-party files skipped");
}

# the columns COPY fills (not dropped, not generated), as an expression list
sub copy_columns
{
	my $table = shift;
	return sql("SELECT string_agg(quote_ident(attname), ', ' ORDER BY attnum) FROM pg_attribute
		WHERE attrelid = '$table'::regclass AND attnum > 0 AND NOT attisdropped AND attgenerated = ''");
}

for my $c (@cases)
{
	my ($name, $table, $path, $opts, $copyopts, $header, $copycols, $copypath) = @$c;
	my $cols = copy_columns($table);
	my $p = lit($path);
	sql("TRUNCATE $table; COPY $table " . ($copycols // '') . " FROM " . lit($copypath // $path)
		  . " WITH (FORMAT csv" . ($copyopts ne '' ? ", $copyopts" : '') . ")");
	my $want = sql("SELECT count(*) || ' ' || md5(coalesce(string_agg(ROW($cols)::text, E'\\n' ORDER BY ctid), '')) FROM $table");
	ok($want !~ /^0 /, "$name: COPY loads rows ($want)");
	my @variants = ('');
	push @variants, ", header => 'match'" if $header;
	for my $v (@variants)
	{
		for my $w (0, 2)
		{
			my $o = "$opts$v, workers => $w, chunk_size => 512";
			my $scan = sql("SELECT count(*) || ' ' || md5(coalesce(string_agg(ROW($cols)::text, E'\\n'), '')) "
				  . "FROM csvpipe.read($p, NULL::$table$o)");
			is($scan, $want, "$name$v workers $w: CustomScan rows = COPY's");
			my $fs = sql("SELECT count(*) || ' ' || md5(coalesce(string_agg(ROW($cols)::text, E'\\n' ORDER BY r.ordinality), '')) "
				  . "FROM ROWS FROM (csvpipe.read($p, NULL::$table$o)) WITH ORDINALITY AS r");
			is($fs, $want, "$name$v workers $w: FunctionScan rows = COPY's");
		}
	}
}
like(sql("EXPLAIN (COSTS OFF) SELECT * FROM csvpipe.read('$items', NULL::items)"),
	qr/Custom Scan \(CsvpipeRead\)/, 'typed read in FROM: the streaming CustomScan');
# the CustomScan's column pruning and quals, in the type's positions (a
# table with a dropped column before the one used)
my $badint = write_file('badint.csv', "id,code,name,amount,ts,d,flag,note\nx,007,a,1,2024-01-01,2024-01-01,t,n\n2,008,b,2,2024-01-02,2024-01-02,f,m\n");
like(sql("EXPLAIN (VERBOSE, COSTS OFF) SELECT name FROM csvpipe.read('$badint', NULL::items) WHERE code > '007'"),
	qr/Converted Columns: code, name/, 'only the columns the query uses are converted');
is(sql("SELECT string_agg(name, ' ') FROM csvpipe.read('$badint', NULL::items) WHERE code > '007'"), 'b',
	'a bad value in a column the query does not use is not read (as file_fdw)');
is(sql("SELECT try('SELECT id FROM csvpipe.read(''$badint'', NULL::items)')"),
	qq{22P02 invalid input syntax for type integer: "x" CONTEXT: csvpipe.read "$badint", line 2, column id: "x"},
	'... and is reported when it is used');
is(sql("SELECT count(*) FILTER (WHERE total IS NULL) || '/' || count(*) FROM csvpipe.read('$items', NULL::items)"),
	'600/600', 'generated column: NULL in every row (not in the file, as for COPY)');
is(sql("SELECT string_agg(x::text, ' ') FROM (SELECT csvpipe.read('$ab', NULL::ab) x) s"),
	'(1,x) (2,y)', 'typed read in the select list: values of the row type');
is(sql("SELECT pg_typeof(x)::text FROM csvpipe.read('$ab', NULL::ab) x LIMIT 1"), 'ab',
	'the rows are of the row type');
# a composite type (not a table) with a domain column and a typmod
sql(q{CREATE DOMAIN posint AS int CHECK (VALUE > 0);
	  CREATE TYPE money_row AS (id posint, name varchar(8), amount numeric(12,2))});
is(sql("SELECT string_agg(ROW(id, name, amount)::text, ' ') FROM csvpipe.read('$data/load_people.csv', NULL::money_row) "
	  . "WHERE id < 3"), '(1,ann,10.50) (2,bob,2.00)', 'composite type with a domain and typmods');
# a domain over a composite type: rows pass its check
sql(q{CREATE DOMAIN small_people AS people3 CHECK ((VALUE).id < 100)});
is(sql("SELECT count(*) FROM csvpipe.read('$data/load_people.csv', NULL::small_people, workers => 2, chunk_size => 16)"),
	sql("SELECT count(*) FROM csvpipe.read('$data/load_people.csv') AS t(id int, name text, amount text)"),
	'domain over a composite type: every row passes');

# ---- 3. cursors and savepoints ----
sql(q{TRUNCATE items});
sql("COPY items FROM " . lit($items) . " WITH (FORMAT csv, HEADER true)");
my $icols = copy_columns('items');
my $want_lines = sql("SELECT string_agg(ROW($icols)::text, E'\\n' ORDER BY ctid) FROM items");
for my $w (0, 2)
{
	my $got = sql(qq{
BEGIN;
DECLARE c CURSOR FOR SELECT ROW($icols)::text FROM csvpipe.read('$items', NULL::items, workers => $w, chunk_size => 1024);
SAVEPOINT s1;
FETCH 7 FROM c;
ROLLBACK TO s1;
FETCH 100 FROM c;
SAVEPOINT s2;
FETCH 93 FROM c;
RELEASE s2;
SAVEPOINT s3;
FETCH 250 FROM c;
ROLLBACK TO s3;
FETCH ALL FROM c;
COMMIT;
});
	is($got, $want_lines, "cursor, workers $w: FETCH in pieces across savepoints = COPY's rows in order");
}
is(sql(qq{
BEGIN;
SAVEPOINT a;
SELECT try('SELECT * FROM csvpipe.read(''$dir/missing.csv'', NULL::items, workers => 2)');
ROLLBACK TO a;
SELECT count(*) FROM csvpipe.read('$items', NULL::items, workers => 2, chunk_size => 1024);
COMMIT;
}), qq{58P01 could not open file "$dir/missing.csv" for reading: No such file or directory CONTEXT: csvpipe.read "$dir/missing.csv"\n600},
	'an error inside a savepoint, then a parallel read in the same transaction');
is($node->poll_query_until('postgres',
	"SELECT count(*) = 0 FROM pg_stat_activity WHERE backend_type = 'csvpipe worker'"), 1,
	'no worker left behind');

# ---- 4. privileges and allowed_dirs, exactly as the record form ----
sql(q{
CREATE ROLE nobody LOGIN;
CREATE ROLE reader LOGIN IN ROLE pg_read_server_files;
});
my $basic = "$data/basic.csv";
my $denied = qq{42501 permission denied to read file "$basic"};
for my $role ('nobody', 'reader')
{
	for my $path ($basic, "$outside/x.csv")
	{
		my $rec_scan = sql("SET ROLE $role; SELECT try('SELECT count(*) FROM csvpipe.read(''$path'') AS t(id int, ts timestamptz, name text, amount numeric, flag boolean)')");
		my $typ_scan = sql("SET ROLE $role; SELECT try('SELECT count(*) FROM csvpipe.read(''$path'', NULL::basic)')");
		my $typ_fs = sql("SET ROLE $role; SELECT try('SELECT count(*) FROM ROWS FROM (csvpipe.read(''$path'', NULL::basic)) WITH ORDINALITY')");
		my $typ_w = sql("SET ROLE $role; SELECT try('SELECT count(*) FROM csvpipe.read(''$path'', NULL::basic, workers => 2)')");
		is($typ_scan, $rec_scan, "$role, $path: typed read (CustomScan) as the record form");
		is($typ_fs, $rec_scan, "$role, $path: typed read (FunctionScan) as the record form");
		is($typ_w, $rec_scan, "$role, $path: typed read (workers 2) as the record form");
		if ($role eq 'nobody')
		{
			like($typ_scan, qr/^42501 permission denied to read file "\Q$path\E"/, "$role, $path: denied");
		}
		elsif ($path eq $basic)
		{
			is($typ_scan, 'ok', "$role reads $path");
		}
		else
		{
			like($typ_scan, qr/^42501 file "\Q$path\E" is outside csvpipe.allowed_dirs/,
				"$role, $path: outside allowed_dirs");
		}
	}
}
is(sql("SET ROLE reader; SELECT string_agg(id || name, ' ') FROM csvpipe.read('$basic', NULL::basic, header => 'match') WHERE id < 3"),
	'1plain 2with, comma', 'a pg_read_server_files role reads rows');

# ---- 5. exact errors ----
my $more = write_file('more.csv', "a,b\n1,x\n2,y,z\n3,w\n");
my $fewer = write_file('fewer.csv', "a,b\n1,x\n2,y\n3\n");
my $hint = q{HINT: The file's fields fill the row type's columns in order: a, b (generated and dropped columns are not in the file).};
for my $w (0, 2)
{
	is(sql("SELECT try('SELECT * FROM csvpipe.read(''$more'', NULL::ab, workers => $w)')"),
		qq{22P04 wrong number of fields: expected 2, found 3 $hint CONTEXT: csvpipe.read "$more", line 3},
		"more fields than the type, workers $w");
	is(sql("SELECT try('SELECT * FROM csvpipe.read(''$fewer'', NULL::ab, workers => $w)')"),
		qq{22P04 wrong number of fields: expected 2, found 1 $hint CONTEXT: csvpipe.read "$fewer", line 4},
		"fewer fields than the type, workers $w");
	is(sql("SELECT try('SELECT * FROM ROWS FROM (csvpipe.read(''$more'', NULL::ab, workers => $w)) WITH ORDINALITY')"),
		qq{22P04 wrong number of fields: expected 2, found 3 $hint CONTEXT: csvpipe.read "$more", line 3},
		"more fields than the type, FunctionScan, workers $w");
}
# the hint leaves out what is not in the file
is(sql("SELECT try('SELECT * FROM csvpipe.read(''$more'', NULL::items)')"),
	qq{22P04 wrong number of fields: expected 8, found 2 HINT: The file's fields fill the row type's columns in order: id, code, name, amount, ts, d, flag, note (generated and dropped columns are not in the file). CONTEXT: csvpipe.read "$more", line 2},
	'a table with dropped and generated columns: the hint names the columns the file fills');
my $wrong = write_file('wrong.csv', "a,B\n1,x\n");
for my $w (0, 2)
{
	is(sql("SELECT try('SELECT * FROM csvpipe.read(''$wrong'', NULL::ab, header => ''match'', workers => $w)')"),
		qq{22P04 column name mismatch in header line field 2: got "B", expected "b" CONTEXT: csvpipe.read "$wrong", line 1},
		"header => 'match' with a wrong name, workers $w");
}
my $short = write_file('short.csv', "a\n1\n");
is(sql("SELECT try('SELECT * FROM csvpipe.read(''$short'', NULL::ab, header => ''match'')')"),
	qq{22P04 wrong number of fields in header line: expected 2, found 1 HINT: The file's fields fill the row type's columns in order: a, b (generated and dropped columns are not in the file). CONTEXT: csvpipe.read "$short", line 1},
	"header => 'match' with a column missing");
my $nc = q{HINT: Pass NULL::a_table or NULL::a_composite_type, or use csvpipe.read(path) with a column definition list.};
for my $q ("SELECT * FROM csvpipe.read(''$ab'', NULL::int)",
	"SELECT * FROM ROWS FROM (csvpipe.read(''$ab'', NULL::int)) WITH ORDINALITY",
	"SELECT csvpipe.read(''$ab'', 1)")
{
	is(sql("SELECT try('$q')"), "42804 csvpipe.read: the row type must be a composite type, not integer $nc",
		"non-composite row type: $q");
}
is(sql("SELECT try('SELECT * FROM csvpipe.read(''$ab'', NULL::record) AS t(a text, b text)')"),
	"42804 csvpipe.read: the row type must be a named composite type, not record $nc", 'record');
is(sql("SELECT try('SELECT * FROM csvpipe.read(''$ab'', NULL::int, delimiter => ''xx'')')"),
	qq{22023 csvpipe option "delimiter" must be a single one-byte character CONTEXT: csvpipe.read "$ab"},
	'options are checked as in the record form');
my $big = write_file('big.csv', "id,name,amount\n1,a,1\n2,b,2\n150,c,3\n4,d,4\n");
for my $w (0, 2)
{
	is(sql("SELECT try('SELECT * FROM csvpipe.read(''$big'', NULL::small_people, workers => $w, chunk_size => 8)')"),
		qq{23514 value for domain small_people violates check constraint "small_people_check" CONTEXT: csvpipe.read "$big", line 4},
		"domain over a composite type: its check fails with the line, workers $w");
	is(sql("SELECT string_agg(id::text, ' ') FROM csvpipe.read('$big', NULL::small_people, workers => $w, chunk_size => 8, on_error => 'skip')"),
		'1 2 4', "domain over a composite type: on_error => 'skip' skips the row, workers $w");
}
# columns by name
is(sql("SELECT try('SELECT * FROM csvpipe.read(''$items_extra'', NULL::items, match => ''name'')')"),
	qq{42703 the file has a column that row type items does not have: "extra" HINT: Leave them out with extra_columns => 'ignore', or add them to the table. CONTEXT: csvpipe.read "$items_extra", line 1},
	"match => 'name': a column the row type lacks, named");
like(sql("SELECT try('SELECT * FROM csvpipe.read(''$items_rev'', NULL::items, match => ''name'', header => false)')"),
	qr/^22023 csvpipe match => 'name' needs a header/, "match => 'name' needs a header");
my $rev_more = write_file('rev_more.csv', "b,a
x,1
y,2,3
");
for my $w (0, 2)
{
	is(sql("SELECT try('SELECT * FROM csvpipe.read(''$rev_more'', NULL::ab, match => ''name'', workers => $w)')"),
		qq{22P04 wrong number of fields: expected 2, found 3 HINT: With match => 'name', every record has as many fields as the header (2). CONTEXT: csvpipe.read "$rev_more", line 3},
		"match => 'name': a record with more fields than the header, workers $w");
	my $big_rev = write_file('big_rev.csv', "amount,ID,name
1,1,a
2,2,b
3,150,c
");
	is(sql("SELECT try('SELECT * FROM csvpipe.read(''$big_rev'', NULL::small_people, match => ''name'', workers => $w, chunk_size => 8)')"),
		qq{23514 value for domain small_people violates check constraint "small_people_check" CONTEXT: csvpipe.read "$big_rev", line 4},
		"match => 'name', domain over a composite type: its check fails with the line, workers $w");
	is(sql("SELECT string_agg(id || name || amount, ' ') FROM csvpipe.read('$big_rev', NULL::small_people, match => 'name', workers => $w, chunk_size => 8, on_error => 'skip')"),
		'1a1.00 2b2.00', "match => 'name', domain: on_error => 'skip', workers $w");
}
is(cache_status("SELECT * FROM csvpipe.read('$data/load_people.csv', NULL::small_people)"), 'off',
	'a domain over a composite type is not cached (its constraints can change)');

# ---- 6. the result cache ----
my $codes = write_file('codes.csv', "a,b\n007,x\n010,y\n");
sql(q{CREATE TABLE code_int (a int, b text); CREATE TABLE code_text (a text, b text);
	  SELECT csvpipe.cache_invalidate(); SELECT csvpipe.cache_reset_stats();});
is(cache_status("SELECT * FROM csvpipe.read('$codes', NULL::code_int)"), 'miss, stored', 'a typed read is stored');
is(cache_status("SELECT * FROM csvpipe.read('$codes', NULL::code_int)"), 'hit', 'a repeat typed read is a hit');
is(sql("SELECT string_agg(a::text, ' ') FROM csvpipe.read('$codes', NULL::code_int, cache => false)"), '7 10', 'int row type');
is(cache_status("SELECT * FROM csvpipe.read('$codes', NULL::code_text)"), 'miss, stored', 'another row type: a miss');
is(sql("SELECT string_agg(a, ' ') FROM csvpipe.read('$codes', NULL::code_text)"), '007 010',
	'its own values (leading zeros kept)');
is(sql("SELECT string_agg(a::text, ' ') FROM csvpipe.read('$codes', NULL::code_int)"), '7 10',
	'and the first type still its own');
my $codes_rev = write_file('codes_rev.csv', "b,a\nx,007\ny,010\n");
is(cache_status("SELECT * FROM csvpipe.read('$codes_rev', NULL::code_text, match => 'name')"), 'miss, stored',
	"match => 'name': stored");
is(cache_status("SELECT * FROM csvpipe.read('$codes_rev', NULL::code_text, match => 'name')"), 'hit',
	"match => 'name': a repeat is a hit");
is(sql("SELECT string_agg(a || b, ' ') FROM csvpipe.read('$codes_rev', NULL::code_text, match => 'name')"), '007x 010y',
	"match => 'name': the hit's values");
is(cache_status("SELECT * FROM csvpipe.read('$codes_rev', NULL::code_text)"), 'miss, stored',
	'the same file and type by position: another entry');
is(sql("SELECT string_agg(a || b, ' ') FROM csvpipe.read('$codes_rev', NULL::code_text)"), 'x007 y010',
	'by position: its own values');
sql(q{ALTER TABLE code_int ALTER COLUMN a TYPE text});
is(sql("SELECT string_agg(a, ' ') FROM csvpipe.read('$codes', NULL::code_int)"), '007 010',
	'ALTER TABLE ... TYPE is seen by the next read');

$node->stop;
done_testing();
