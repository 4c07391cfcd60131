# 131_sniff.pl -- csvpipe.sniff and csvpipe.create_table (issue 13, items 2
# and 4) on the small real-shaped files of test/data/sniff/:
#
#  - per file, the dialect (delimiter, quote, escape, line ending, encoding,
#    byte order mark), header, skip_rows, column names, types and
#    nullability, exactly;
#  - the proposal works: read with the sniffed dialect and column list
#    returns every data row (the types accept every value), with the same
#    fields as COPY FROM with the file's real dialect, and leading zeros,
#    offsets and quoted numbers come through as they are in the file;
#  - options given are fixed (delimiter, header), a sample smaller than the
#    file uses whole records only and widens the types, DateStyle decides
#    day-first dates;
#  - create_table creates the table as the calling role (not a superuser),
#    in its transaction (ROLLBACK removes it), with names resolved as
#    regclass input and CREATE TABLE resolve them;
#  - privileges as read: a role without pg_read_server_files cannot sniff
#    (or create_table from) a file, and a path outside csvpipe.allowed_dirs
#    gets read's very error.
#
# Settings are in postgresql.conf: DateStyle 'ISO, MDY', TimeZone UTC,
# csvpipe.allowed_dirs.  Roles: reader (pg_read_server_files, CREATE on
# schema public), nobody (no privileges).
use strict;
use warnings;

use File::Copy ();
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $src = 'test/data/sniff';
my $base = PostgreSQL::Test::Utils::tempdir;
my $dir = "$base/allowed";
my $outside = "$base/outside";
mkdir $dir or die;
mkdir $outside or die;
chmod 0755, $base, $dir, $outside;
opendir(my $dh, $src) or die "$src: $!";
for my $f (grep { !/^\./ && !/\.py$/ } readdir $dh)
{
	File::Copy::copy("$src/$f", "$dir/$f") or die "$f: $!";
}
closedir $dh;
File::Copy::copy("$src/zipcodes.csv", "$outside/zipcodes.csv") or die;

# a file larger than a small sample: ids 1..2000, then one of 70000
open my $fh, '>', "$dir/long.csv" or die;
print $fh "id,name\n";
print $fh "$_,n$_\n" for 1 .. 2000;
print $fh "70000,last\n";
close $fh;

my $node = PostgreSQL::Test::Cluster->new('sniff');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'csvpipe'
csvpipe.allowed_dirs = '$dir'
datestyle = 'iso, mdy'
timezone = 'UTC'
max_prepared_transactions = 4
max_worker_processes = 16
});
$node->start;

sub sql { return $node->safe_psql('postgres', $_[0]); }

sql(q{
CREATE EXTENSION csvpipe;
CREATE ROLE reader LOGIN;
GRANT pg_read_server_files TO reader;
GRANT CREATE ON SCHEMA public TO reader;
CREATE ROLE nobody LOGIN;
-- the error of a statement as one line: SQLSTATE, message, detail, hint
CREATE FUNCTION try(q text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
	st text; msg text; det text; hint text;
BEGIN
	EXECUTE q;
	RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
	GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, msg = MESSAGE_TEXT,
		det = PG_EXCEPTION_DETAIL, hint = PG_EXCEPTION_HINT;
	RETURN st || ' ' || msg || ' | ' || coalesce(det, '') || ' | ' || coalesce(hint, '');
END $$;
GRANT EXECUTE ON FUNCTION try(text) TO PUBLIC;
-- read a file with what sniff says: count, and the rows as text
CREATE FUNCTION sniff_read(p text, q text DEFAULT 'count(*)::text') RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
	s csvpipe.sniff_result := csvpipe.sniff(p);
	r text;
BEGIN
	EXECUTE format('SELECT %s FROM csvpipe.read(%L, delimiter => %L, quote => %L, '
				   'header => %L, skip_rows => %s, encoding => %L) AS t(%s)',
				   q, p, s.delimiter, s.quote, s.header::text, s.skip_rows,
				   s.encoding, s.column_list) INTO r;
	RETURN r;
END $$;
-- read_text with what sniff says, as COPY's text rows would print
CREATE FUNCTION sniff_text(p text) RETURNS SETOF text
LANGUAGE plpgsql AS $$
DECLARE
	s csvpipe.sniff_result := csvpipe.sniff(p);
BEGIN
	RETURN QUERY SELECT array_to_string(fields, '|', '<NULL>')
	  FROM csvpipe.read_text(p, delimiter => s.delimiter, quote => s.quote,
							 header => s.header, skip_rows => s.skip_rows,
							 encoding => s.encoding)
	 ORDER BY line_no;
END $$;
});

# ---------------------------------------------------------------------------
# 1. dialect, header, names, types and nullability per file
# ---------------------------------------------------------------------------
# delimiter|quote|escape|line_ending|encoding|bom|header|skip_rows|columns|types|nullable
my %expect = (
	'zipcodes.csv' => ',|"|"|LF|UTF8|f|t|0|{zip_code,latitude,longitude,city,state,county}'
	  . '|{text,"numeric(22,4)","numeric(22,4)",text,text,text}|{f,f,f,f,f,f}',
	'invoices_semicolon.csv' => ';|"|"|LF|UTF8|f|t|0|{nr,kunde,betrag,datum}'
	  . '|{smallint,text,text,text}|{f,f,f,f}',
	'weather.tsv' => "\t" . '|"|"|LF|UTF8|f|t|0|{date,precipitation,temp_max,temp_min,wind,weather}'
	  . '|{date,"numeric(19,1)","numeric(19,1)","numeric(19,1)","numeric(19,1)",text}|{f,f,f,f,f,f}',
	'stocks_preamble.csv' => ',|"|"|LF|UTF8|f|t|3|{symbol,date,price}'
	  . '|{text,date,"numeric(20,2)"}|{f,f,f}',
	'bom.csv' => ',|"|"|LF|UTF8|t|t|0|{Nr,Name,Straße,Größe}'
	  . '|{smallint,text,text,"numeric(20,2)"}|{f,f,f,f}',
	'mixed_dates.csv' => ',|"|"|LF|UTF8|f|t|0|{id,iso,us,eu,mixed}'
	  . '|{smallint,date,date,text,date}|{f,f,f,f,f}',
	'quoted_numbers.csv' => ',|"|"|LF|UTF8|f|t|0|{id,price,paid,day,ref}'
	  . '|{smallint,"numeric(20,2)",boolean,date,text}|{f,f,f,f,f}',
	'timestamps.csv' => ',|"|"|LF|UTF8|f|t|0|{id,local_ts,offset_ts,utc_ts,hhmm,hhmmss}'
	  . '|{smallint,timestamp,timestamptz,timestamptz,time,time}|{f,f,f,f,f,f}',
	'uuids_bools.csv' => ',|"|"|LF|UTF8|f|t|0|{id,active,verified,flag,bit,payload}'
	  . '|{uuid,boolean,boolean,boolean,smallint,jsonb}|{f,f,f,f,f,f}',
	'one_column.csv' => ',|"|"|LF|UTF8|f|t|0|{email}|{text}|{t}',
	'no_header.csv' => ',|"|"|LF|UTF8|f|f|0|{c1,c2,c3,c4}'
	  . '|{smallint,text,date,"numeric(20,2)"}|{f,f,f,f}',
	'empty_columns.csv' => ',|"|"|LF|UTF8|f|t|0|{id,code,unused,amount}'
	  . '|{smallint,text,text,smallint}|{f,f,t,t}',
	'numbers.psv' => '||"|"|LF|UTF8|f|t|0|{big,huge,sci,medium}'
	  . '|{bigint,"numeric(30,0)","double precision",integer}|{f,f,f,f}',
	'latin1.csv' => ',|"|"|LF|LATIN1|f|t|0|{id,dish}|{smallint,text}|{f,f}',
	'single_quotes_crlf.csv' => q{,|'|'|CRLF|UTF8|f|t|0|{id,name,state}|{smallint,text,text}|{f,f,f}},
	'trailing_delimiter.csv' => ',|"|"|LF|UTF8|f|t|0|{id,name,amount,c4}'
	  . '|{smallint,text,"numeric(20,2)",text}|{f,f,f,t}',
	'empty.csv' => ',|"|"||UTF8|f|f|0|{}|{}|{}',
);
# data rows of each file (what a read with the sniffed options returns)
my %rows = (
	'zipcodes.csv' => 10, 'invoices_semicolon.csv' => 5, 'weather.tsv' => 10,
	'stocks_preamble.csv' => 8, 'bom.csv' => 4, 'mixed_dates.csv' => 4,
	'quoted_numbers.csv' => 3, 'timestamps.csv' => 3, 'uuids_bools.csv' => 3,
	'one_column.csv' => 4, 'no_header.csv' => 3, 'empty_columns.csv' => 3,
	'numbers.psv' => 3, 'latin1.csv' => 3, 'single_quotes_crlf.csv' => 3,
	'trailing_delimiter.csv' => 3);
# the file's real dialect for COPY: delimiter, quote, header, encoding
my %copy = (
	'zipcodes.csv' => [',', '"', 1], 'invoices_semicolon.csv' => [';', '"', 1],
	'weather.tsv' => ["\t", '"', 1], 'bom.csv' => [',', '"', 1],
	'mixed_dates.csv' => [',', '"', 1], 'quoted_numbers.csv' => [',', '"', 1],
	'timestamps.csv' => [',', '"', 1], 'uuids_bools.csv' => [',', '"', 1],
	'one_column.csv' => [',', '"', 1], 'no_header.csv' => [',', '"', 0],
	'empty_columns.csv' => [',', '"', 1], 'numbers.psv' => ['|', '"', 1],
	'latin1.csv' => [',', '"', 1, 'LATIN1'],
	'single_quotes_crlf.csv' => [',', "'", 1]);

for my $f (sort keys %expect)
{
	my $p = "$dir/$f";
	is( sql(qq{SELECT concat_ws('|', delimiter, quote, escape, coalesce(line_ending, ''), encoding,
		bom, header, skip_rows, columns, types, nullable) FROM csvpipe.sniff('$p')}),
		$expect{$f}, "$f: dialect, header, names, types, nullability");
	next unless $rows{$f};
	is(sql("SELECT sniff_read('$p')"), $rows{$f},
		"$f: read with the sniffed dialect and types returns every row");
	next unless $copy{$f};

	# the fields a read with the sniffed dialect sees are COPY's
	my ($d, $q, $h, $enc) = @{ $copy{$f} };
	# (the column count was checked above)
	my $ncols = sql("SELECT cardinality(columns) FROM csvpipe.sniff('$p')");
	my $cols = join(', ', map { "c$_ text" } 1 .. $ncols);
	$d =~ s/'/''/g;
	$q =~ s/'/''/g;
	my $opts = "FORMAT csv, DELIMITER E'" . ($d eq "\t" ? '\t' : $d) . "', QUOTE '$q', HEADER "
	  . ($h ? 'true' : 'false') . ($enc ? ", ENCODING '$enc'" : '');
	my $copied = sql(qq{
		CREATE TEMP TABLE c ($cols);
		COPY c FROM '$p' WITH ($opts);
		SELECT string_agg(concat_ws('|', } . join(', ', map { "coalesce(c$_, '<NULL>')" } 1 .. $ncols)
		  . qq{), E'\\n') FROM c;});
	is(sql("SELECT string_agg(s, E'\\n') FROM sniff_text('$p') s"), $copied,
		"$f: the fields with the sniffed dialect are COPY's with the file's own");
}

# values come through as the file has them
is(sql("SELECT sniff_read('$dir/zipcodes.csv', 'string_agg(zip_code, '','' ORDER BY zip_code)')"),
	'00501,00544,01001,01002,02108,10001,30301,60601,94105,99950',
	'zip codes keep their leading zeros');
is( sql("SELECT sniff_read('$dir/timestamps.csv', 'string_agg(offset_ts::text || ''/'' || utc_ts::text, '','' ORDER BY id)')"),
	'2024-03-05 10:34:56+00/2024-03-05 10:34:56+00,2024-03-06 13:00:00+00/2024-03-06 13:00:00+00,'
	  . '2024-03-07 02:30:00+00/2024-03-07 00:00:00+00',
	'offsets are kept (timestamptz)');
is(sql("SELECT sniff_read('$dir/quoted_numbers.csv', 'sum(price)::text || '' '' || bool_and(paid)::text')"),
	'8.75 false', 'quoted numbers and booleans are read as such');
is(sql("SELECT sniff_read('$dir/numbers.psv', 'string_agg(big::text || ''/'' || huge::text, '','' ORDER BY medium)')"),
	'42/2,9007199254740993/123456789012345678901234567890,-9223372036854775808/1',
	'bigint and numeric beyond it exactly');

is(sql("SELECT notes FROM csvpipe.sniff('$dir/empty.csv')"), '{"the file is empty"}',
	'an empty file: no columns, and a note');
is( sql(qq{SELECT try(\$\$SELECT csvpipe.create_table('$dir/empty.csv', 'e')\$\$)}),
	'22P04 no columns found to create table "e" | csvpipe.sniff says: the file is empty. | ',
	'create_table of an empty file says why it cannot');
is(sql("SELECT notes FROM csvpipe.sniff('$dir/zipcodes.csv')"),
	'{"column zip_code: numbers with leading zeros (\"00501\") are typed text, so the zeros are kept"}',
	'the leading-zero rule is explained');
is( sql("SELECT notes FROM csvpipe.sniff('$dir/mixed_dates.csv')"),
	q({"column eu: the dates put the day first (\"31/01/2024\", line 2) but DateStyle's order is MDY: typed text; SET DateStyle TO 'ISO, DMY' before sniffing and reading to get date"}),
	'a day-first date column under MDY is text, and the note says why');
is( sql("SET DateStyle = 'ISO, DMY'; SELECT types FROM csvpipe.sniff('$dir/mixed_dates.csv')"),
	'{smallint,date,text,date,text}',
	'under DMY the day-first column is a date, the month-first ones (us, 03/15/2024 in mixed) text');
is( sql("SELECT create_table FROM csvpipe.sniff('$dir/bom.csv')"),
	qq{CREATE TABLE bom (\n    "Nr" smallint,\n    "Name" text,\n    "Straße" text,\n    "Größe" numeric(20,2)\n)},
	'sniff proposes a CREATE TABLE with quoted names');
is( sql("SELECT column_list FROM csvpipe.sniff('$dir/timestamps.csv')"),
	'id smallint, local_ts timestamp, offset_ts timestamptz, utc_ts timestamptz, hhmm time, hhmmss time',
	'and a column definition list for read');

# ---------------------------------------------------------------------------
# 2. options given are fixed; the sample
# ---------------------------------------------------------------------------
is( sql("SELECT concat_ws('|', header, columns, types) FROM csvpipe.sniff('$dir/no_header.csv', header => true)"),
	't|{1,alice,2024-01-05,3.5}|{smallint,text,date,"numeric(20,2)"}',
	'header => true: the first record names the columns');
is( sql("SELECT concat_ws('|', delimiter, columns, types) FROM csvpipe.sniff('$dir/zipcodes.csv', delimiter => ';')"),
	';|{"zip_code,latitude,longitude,city,state,county"}|{text}',
	'delimiter given: taken as it is');
is( sql("SELECT concat_ws('|', skip_rows, header, columns) FROM csvpipe.sniff('$dir/stocks_preamble.csv', skip_rows => 4)"),
	'4|f|{c1,c2,c3}',
	'skip_rows given: taken as it is (the header skipped, the first row is data)');
is( sql("SELECT concat_ws('|', sample_bytes, whole_file, sample_rows, types) FROM csvpipe.sniff('$dir/long.csv', sample_size => 1000)"),
	'1000|f|134|{bigint,text}',
	'a sample of 1000 bytes: whole records only (8 + 9 * 5 + 90 * 7 + 35 * 9 bytes), smallint widened to bigint');
is( sql("SELECT concat_ws('|', whole_file, sample_rows, types) FROM csvpipe.sniff('$dir/long.csv')"),
	't|2001|{integer,text}', 'the whole file by default: 70000 needs integer');
is( sql("SELECT try(\$\$SELECT csvpipe.sniff('$dir/long.csv', sample_size => 0)\$\$)"),
	'22023 csvpipe sample_size must be between 1 and 1073741824 bytes | Got 0. | ',
	'sample_size is checked');
is( sql("SELECT try(\$\$SELECT csvpipe.sniff('$dir/long.csv', delimiter => '\\t')\$\$)"),
	q{22023 csvpipe option "delimiter" must be a single one-byte character | Got "\t". | For a tab, write E'\t'.},
	"delimiter => '\\t' (two characters): the hint says E'\\t'");

# ---------------------------------------------------------------------------
# 3. create_table: as the caller, in the caller's transaction
# ---------------------------------------------------------------------------
is( $node->safe_psql('postgres', qq{
		SET ROLE reader;
		SELECT csvpipe.create_table('$dir/zipcodes.csv', 'zips');
		INSERT INTO zips SELECT * FROM csvpipe.read('$dir/zipcodes.csv') AS t(zip_code text,
			latitude numeric, longitude numeric, city text, state text, county text);
		SELECT pg_get_userbyid(relowner) || ' ' || relnamespace::regnamespace
		  FROM pg_class WHERE oid = 'zips'::regclass;
		SELECT count(*) || ' ' || min(zip_code) FROM zips;}),
	"zips\nreader public\n10 00501",
	'create_table as reader: the table is reader\'s, in public, and takes the file');
is( sql(q{SELECT string_agg(attname || ' ' || format_type(atttypid, atttypmod), ', ' ORDER BY attnum)
	FROM pg_attribute WHERE attrelid = 'zips'::regclass AND attnum > 0}),
	'zip_code text, latitude numeric(22,4), longitude numeric(22,4), city text, state text, county text',
	'with the sniffed types');
is( sql(qq{
		BEGIN;
		SELECT csvpipe.create_table('$dir/weather.tsv', 'weather_tx');
		SELECT count(*) FROM weather_tx;
		ROLLBACK;
		SELECT to_regclass('weather_tx') IS NULL;}),
	"weather_tx\n0\nt", 'ROLLBACK removes the created table');
is( sql(qq{
		CREATE SCHEMA s1; CREATE SCHEMA s2;
		SET search_path = s2, s1, public;
		SELECT csvpipe.create_table('$dir/bom.csv', 'b1')::text;
		SELECT csvpipe.create_table('$dir/bom.csv', 's1.b2')::text;
		SELECT csvpipe.create_table('$dir/bom.csv', '"B3"')::text;
		SELECT string_agg(relname || ' ' || relnamespace::regnamespace::text, ', ' ORDER BY relname)
		  FROM pg_class WHERE relname IN ('b1', 'b2', 'B3');}),
	"b1\nb2\n\"B3\"\nB3 s2, b1 s2, b2 s1", 'names resolve as CREATE TABLE resolves them');
is( sql(qq{SELECT try(\$\$SELECT csvpipe.create_table('$dir/bom.csv', 'public.zips')\$\$)}),
	'42P07 relation "zips" already exists |  | ', 'an existing table is an error');
is( sql(qq{SELECT try(\$\$SELECT csvpipe.create_table('$dir/bom.csv', 'nosuch.t')\$\$)}),
	'3F000 schema "nosuch" does not exist |  | ', 'a missing schema is an error');
is( sql(qq{SET ROLE reader; SELECT try(\$\$SELECT csvpipe.create_table('$dir/bom.csv', 's1.t')\$\$)}),
	'42501 permission denied for schema s1 |  | ', 'reader cannot create where it has no CREATE');

# ---------------------------------------------------------------------------
# 4. load's target by name, create_target
# ---------------------------------------------------------------------------
sql(q{CREATE TABLE w (day date, precipitation numeric, temp_max numeric, temp_min numeric,
	wind numeric, weather text);
GRANT SELECT, INSERT, DELETE ON w TO reader;});
my $wcopy = sql(qq{CREATE TEMP TABLE wc (LIKE w); COPY wc FROM '$dir/weather.tsv' WITH (FORMAT csv, DELIMITER E'\\t', HEADER true);
	SELECT count(*) || ' ' || md5(string_agg(wc::text, '|' ORDER BY day)) FROM wc});
my $wload = qq{SELECT count(*) || ' ' || md5(string_agg(w::text, '|' ORDER BY day)) FROM w};
for my $call (
	qq{csvpipe.load('$dir/weather.tsv', 'w', delimiter => E'\\t')},
	qq{csvpipe.load('$dir/weather.tsv', 'w'::regclass, delimiter => E'\\t')},
	qq{csvpipe.load('$dir/weather.tsv', 'public.w', delimiter => E'\\t', workers => 2)},
	qq{csvpipe.load(path => '$dir/weather.tsv', target => 'w', delimiter => E'\\t', mode => 'chunked')},
	qq{csvpipe.load('$dir/weather.tsv', 'w', delimiter => E'\\t', atomic => false)},
	qq{(VALUES ('$dir/weather.tsv'::text, 'w'::text)) v(p, t), csvpipe.load(p, t, delimiter => E'\\t')})
{
	is(sql(qq{DELETE FROM w; SELECT rows_loaded FROM $call; $wload}), "10\n$wcopy",
		"existing calls still load: $call");
}
is( sql(qq{SELECT try(\$\$SELECT csvpipe.load('$dir/weather.tsv', 'nosuch')\$\$)}),
	'42P01 relation "nosuch" does not exist |  | ', 'a missing target: regclass\'s error');

is( $node->safe_psql('postgres', qq{
		SET ROLE reader;
		BEGIN;
		SELECT rows_loaded FROM csvpipe.load('$dir/weather.tsv', 'w_new', delimiter => E'\\t',
			create_target => true);
		SELECT pg_get_userbyid(relowner) FROM pg_class WHERE oid = 'w_new'::regclass;
		SELECT string_agg(attname || ' ' || format_type(atttypid, atttypmod), ', ' ORDER BY attnum)
		  FROM pg_attribute WHERE attrelid = 'w_new'::regclass AND attnum > 0;
		SELECT count(*) || ' ' || md5(string_agg(w_new::text, '|' ORDER BY date)) FROM w_new;
		ROLLBACK;
		SELECT to_regclass('w_new') IS NULL;}),
	"10\nreader\ndate date, precipitation numeric(19,1), temp_max numeric(19,1), temp_min numeric(19,1), "
	  . "wind numeric(19,1), weather text\n$wcopy\nt",
	'create_target: created as the caller with the sniffed types, loaded as COPY loads it, '
	  . 'in the transaction (ROLLBACK removes both)');
is( sql(qq{SELECT rows_loaded FROM csvpipe.load('$dir/zipcodes.csv', 'zips_new', create_target => true, workers => 2);
		SELECT string_agg(zip_code, ',' ORDER BY zip_code) FROM zips_new;}),
	"10\n00501,00544,01001,01002,02108,10001,30301,60601,94105,99950",
	'create_target with workers, leading zeros kept');
is( sql(qq{SELECT try(\$\$SELECT csvpipe.load('$dir/zipcodes.csv', 'zips_new', create_target => true)\$\$)}),
	'42P07 relation "zips_new" already exists |  | ', 'create_target on an existing table is an error');
for my $mode ('chunked', 'prepared')
{
	is( sql(qq{SELECT try(\$\$SELECT csvpipe.load('$dir/zipcodes.csv', 'z_$mode', create_target => true, mode => '$mode')\$\$)}),
		"0A000 csvpipe.load: create_target => true needs mode => 'transaction' | "
		  . "A $mode load commits in its workers' own transactions, which cannot see a table created in the caller's transaction. | "
		  . "Create the table with csvpipe.create_table() and commit, then load it with mode => '$mode'.",
		"create_target with mode => '$mode' is refused, saying what to do");
}
is( sql(qq{SELECT try(\$\$SELECT csvpipe.load('$dir/zipcodes.csv', 'z_cols', create_target => true, columns => '{zip_code}')\$\$)}),
	'22023 csvpipe.load: create_target => true creates a column for every field: columns must be NULL |  | ',
	'create_target with columns is refused');

# delimiter => '\t' (two characters) says E'\t', in every function
for my $call (
	qq{SELECT * FROM csvpipe.read('$dir/weather.tsv', delimiter => '\\t') AS t(a text)},
	qq{SELECT * FROM csvpipe.read_text('$dir/weather.tsv', delimiter => '\\t')},
	qq{SELECT * FROM csvpipe.load('$dir/weather.tsv', 'w', delimiter => '\\t')},
	qq{SELECT * FROM csvpipe.load('$dir/weather.tsv', 'w'::regclass, delimiter => '\\t')},
	qq{SELECT csvpipe.submit('$dir/weather.tsv', 'w', delimiter => '\\t')},
	qq{SELECT * FROM csvpipe.load_serial('$dir/weather.tsv', 'w', delimiter => '\\t')},
	qq{SELECT csvpipe.sniff('$dir/weather.tsv', delimiter => '\\t')})
{
	is(sql(qq{SELECT try(\$q\$$call\$q\$)}),
		q{22023 csvpipe option "delimiter" must be a single one-byte character | Got "\t". | For a tab, write E'\t'.},
		"delimiter => '\\t' hints E'\\t': $call");
}

# ---------------------------------------------------------------------------
# 5. errors that say what to do: the likely delimiter or quote, in every
#    function (read serial and parallel, read_text, load in every mode,
#    load_serial, submit's job error), and no hint when the dialect fits
# ---------------------------------------------------------------------------
my $semi_hint = q{The file looks delimited by ';' (4 fields in each of its first records): try delimiter => ';' (csvpipe.sniff shows what it detects).};
my $tab_hint = q{The file looks delimited by tabs (6 fields in each of its first records): try delimiter => E'\t' (csvpipe.sniff shows what it detects).};
my $quote_hint = q{The file looks quoted with ' (3 fields in each of its first records): try quote => '''' (csvpipe.sniff shows what it detects).};
my $malformed = '22P04 malformed CSV: quote character inside an unquoted field';
sql(q{CREATE TABLE inv (nr int, kunde text, betrag text, datum text);
	CREATE TABLE wt (a text, b text, c text, d text, e text, f text);
	CREATE TABLE sq (id int, name text, state text);
	GRANT SELECT, INSERT ON inv, wt, sq TO reader;});
my $inv = "$dir/invoices_semicolon.csv";
my $wtf = "$dir/weather.tsv";
my $sqf = "$dir/single_quotes_crlf.csv";
for my $case (
	[ "SELECT * FROM csvpipe.read('$inv') AS t(nr int, kunde text, betrag text, datum text)", "$malformed |  | $semi_hint" ],
	[ "SELECT * FROM csvpipe.read('$inv', workers => 2) AS t(nr int, kunde text, betrag text, datum text)", "$malformed |  | $semi_hint" ],
	[ "SELECT * FROM csvpipe.read('$inv', NULL::inv)", "$malformed |  | $semi_hint" ],
	[ "SELECT * FROM csvpipe.read_text('$inv')", "$malformed |  | $semi_hint" ],
	[ "SELECT * FROM csvpipe.load('$inv', 'inv')", "$malformed |  | $semi_hint" ],
	[ "SELECT * FROM csvpipe.load('$inv', 'inv', workers => 2, mode => 'chunked')", "$malformed |  | $semi_hint" ],
	[ "SELECT * FROM csvpipe.load('$inv', 'inv', workers => 2, mode => 'prepared')", "$malformed |  | $semi_hint" ],
	[ "SELECT * FROM csvpipe.load_serial('$inv', 'inv')", "$malformed |  | $semi_hint" ],
	[ "SELECT * FROM csvpipe.read('$wtf') AS t(a text, b text, c text, d text, e text, f text)",
		"22P04 wrong number of fields: expected 6, found 1 |  | $tab_hint" ],
	[ "SELECT * FROM csvpipe.load('$wtf', 'wt', workers => 2)",
		"22P04 wrong number of fields: expected 6, found 1 |  | $tab_hint" ],
	[ "SELECT * FROM csvpipe.read('$sqf') AS t(id int, name text, state text)",
		"22P04 wrong number of fields: expected 3, found 4 |  | $quote_hint" ],
	[ "SELECT * FROM csvpipe.load('$sqf', 'sq', mode => 'chunked', workers => 2)",
		"22P04 wrong number of fields: expected 3, found 4 |  | $quote_hint" ])
{
	my ($q, $want) = @$case;
	is(sql(qq{SET ROLE reader; SELECT try(\$q\$$q\$q\$)}), $want, "hint: $q");
}
# the job records the error with its hint
my $job = sql(qq{SELECT csvpipe.submit('$inv', 'inv')});
is(sql(qq{SELECT csvpipe.wait($job, '60 s')}), 'failed', 'a submitted load of the wrong delimiter fails');
like(sql(qq{SELECT error FROM csvpipe.jobs WHERE job_id = $job}),
	qr/^malformed CSV: quote character inside an unquoted field\nHINT: \Q$semi_hint\E\nCONTEXT: csvpipe.load /,
	'... and its job says what to do');
# an error far down a file whose first 512kB fit the dialect: no hint
open my $lf, '>', "$dir/late_bad.csv" or die;
print $lf "id,name\n";
print $lf "$_,name$_\n" for 1 .. 60000;
print $lf "60001,x,y\n";
close $lf;
# (the field-count errors have their own hints: no dialect is named)
my $err = sql(qq{SELECT try(\$\$SELECT count(*) FROM csvpipe.read('$dir/late_bad.csv') AS t(id int, name text)\$\$)});
like($err, qr/^22P04 wrong number of fields: expected 2, found 3 \|  \| /, 'an error far down a file that fits its dialect');
unlike($err, qr/looks (delimited|quoted)/, '... names no other dialect');
$err = sql(qq{SELECT try(\$\$SELECT * FROM csvpipe.read('$dir/zipcodes.csv') AS t(a text, b text, c text, d text, e text, f text, g text)\$\$)});
like($err, qr/^22P04 wrong number of fields: expected 7, found 6 \|  \| /, 'a column more than the file has');
unlike($err, qr/looks (delimited|quoted)/, '... names no other dialect');

# ---------------------------------------------------------------------------
# 6. privileges as read
# ---------------------------------------------------------------------------
my $denied = qq{42501 permission denied to read file "$dir/zipcodes.csv" | Only roles with privileges of the "pg_read_server_files" role may read server files with csvpipe. | A superuser can run GRANT pg_read_server_files TO <role>.};
is( sql(qq{SET ROLE nobody; SELECT try(\$\$SELECT csvpipe.sniff('$dir/zipcodes.csv')\$\$)}),
	$denied, 'nobody cannot sniff a file');
is( sql(qq{SET ROLE nobody; SELECT try(\$\$SELECT csvpipe.create_table('$dir/zipcodes.csv', 'x')\$\$)}),
	$denied, 'nor create a table from one');
is( sql(qq{SET ROLE nobody; SELECT try(\$\$SELECT * FROM csvpipe.read_text('$dir/zipcodes.csv')\$\$)}),
	$denied, '(read says the same)');
sql('GRANT CREATE ON SCHEMA public TO nobody');
is( sql(qq{SET ROLE nobody; SELECT try(\$\$SELECT csvpipe.load('$dir/zipcodes.csv', 'z_nobody', create_target => true)\$\$)}),
	$denied, 'nor load with create_target (nothing is created)');
is(sql("SELECT to_regclass('z_nobody') IS NULL"), 't', 'no table z_nobody');
for my $p ("$outside/zipcodes.csv", "$outside/missing.csv", $outside, "$dir/../outside/zipcodes.csv")
{
	my $read = sql(qq{SET ROLE reader; SELECT try(\$\$SELECT * FROM csvpipe.read_text('$p')\$\$)});
	like($read, qr/^42501 file ".*" is outside csvpipe.allowed_dirs/, "read refuses $p");
	is(sql(qq{SET ROLE reader; SELECT try(\$\$SELECT csvpipe.sniff('$p')\$\$)}),
		$read, "sniff gives read's error for $p");
	is(sql(qq{SET ROLE reader; SELECT try(\$\$SELECT csvpipe.create_table('$p', 'x')\$\$)}),
		$read, "create_table gives read's error for $p");
}
is(sql(qq{SET ROLE reader; SELECT try(\$\$SELECT csvpipe.sniff('$dir')\$\$)}),
	sql(qq{SET ROLE reader; SELECT try(\$\$SELECT * FROM csvpipe.read_text('$dir')\$\$)}),
	'a directory: read\'s error');
is(sql(qq{SET ROLE reader; SELECT try(\$\$SELECT csvpipe.sniff('$dir/missing.csv')\$\$)}),
	qq{58P01 could not open file "$dir/missing.csv" for reading: No such file or directory |  | },
	'a missing file inside: read\'s error');

$node->stop;
done_testing();
