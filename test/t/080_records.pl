# 080_records.pl -- record boundaries, empty lines and encodings: the
# splitter (parallel chunks, skip-mode records), the tokenizer and the skip
# path agree, on every path (read, read_text, load with 0/1/2/4 workers,
# atomic and chunked, stop and skip, load_serial, the cache):
#  - a stray quote makes exactly its own line a bad record;
#  - a one-column file's empty line is a NULL row, as COPY reads it;
#  - NUL bytes are refused in a SQL_ASCII database, as COPY refuses them;
#  - SJIS with quote '|' ('ポ' = 0x83 0x7C) splits the same in parallel;
#  - chunk_size has a documented upper bound.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $dir = PostgreSQL::Test::Utils::tempdir;
chmod 0755, $dir;

my $node = PostgreSQL::Test::Cluster->new('records');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'csvpipe'
max_prepared_transactions = 20
max_worker_processes = 24
csvpipe.max_workers = 4
timezone = 'UTC'
});
$node->start;

sub sql { return $node->safe_psql('postgres', $_[0]); }

# reads and loads run as a role that may read server files and owns the
# tables, not as a superuser
sql(q{
CREATE EXTENSION csvpipe;
CREATE ROLE loader LOGIN;
GRANT pg_read_server_files TO loader;
GRANT CREATE ON SCHEMA public TO loader;
});
sub lsql { return $node->safe_psql('postgres', $_[0], extra_params => [ '-U', 'loader' ]); }
sub lpsql
{
	my ($ret, $out, $err) = $node->psql('postgres', $_[0], extra_params => [ '-U', 'loader' ]);
	return ($ret, $out, $err);
}

sub write_file
{
	my ($path, $content) = @_;
	open(my $fh, '>:raw', $path) or die "$path: $!";
	print $fh $content;
	close $fh;
	chmod 0644, $path;
}

# ==== 1. a stray quote: exactly its own line is a bad record ====

# 1,461 daily rows (2020-2023), with quoted fields holding commas, doubled
# quotes and one newline; line 50 has ra"in in an unquoted field
my @lines = ("day,station,temp,precip,cond\n");
my @good = ("day,station,temp,precip,cond\n");
my $bad_line_text;
for my $i (0 .. 1460)
{
	my $station = $i % 7 == 0 ? '"Oslo, Blindern"' : 'Bergen';
	my $cond = ('sun', 'rain', '"light ""drizzle"""', 'snow')[ $i % 4 ];
	$cond = qq{"fog\nlater"} if $i == 300;
	my @t = gmtime(1577836800 + 86400 * $i);
	my $day = sprintf("%04d-%02d-%02d", $t[5] + 1900, $t[4] + 1, $t[3]);
	my $line = sprintf("%s,%s,%.1f,%.1f,%s\n",
		$day, $station, ($i % 40) - 10.5, ($i % 9) * 0.3, $cond);
	if (scalar(@lines) + 1 == 50)
	{
		$line =~ s/,[^,]*\n$/,ra"in\n/;
		$bad_line_text = $line;
		chomp $bad_line_text;
		push @lines, $line;
		next;
	}
	push @lines, $line;
	push @good, $line;
}
write_file("$dir/weather.csv", join('', @lines));
write_file("$dir/weather_good.csv", join('', @good));
is(scalar(@lines) - 1, 1461, 'the weather file holds 1,461 data rows');

my $wcols = 'day date, station text, temp numeric, precip numeric, cond text';
sql("CREATE TABLE w_copy ($wcols); ALTER TABLE w_copy OWNER TO loader;");
sql("COPY w_copy FROM '$dir/weather_good.csv' (FORMAT csv, HEADER)");
my $want = sql("SELECT count(*) || ' ' || md5(string_agg(t::text, ';' ORDER BY day)) FROM w_copy t");
like($want, qr/^1460 /, 'COPY of the file without line 50: 1,460 rows');

# COPY itself fails on the file: the quote opens a field that never closes
my ($ret, $out, $err) = $node->psql('postgres',
	"CREATE TEMP TABLE c ($wcols); COPY c FROM '$dir/weather.csv' (FORMAT csv, HEADER)");
like($err, qr/ERROR:  (unterminated CSV quoted field|extra data after last expected column)/,
	'COPY fails on the stray quote');

lsql("CREATE TABLE w ($wcols)");
my $checksum = "SELECT count(*) || ' ' || md5(string_agg(t::text, ';' ORDER BY day)) FROM w t";

# stop: every path names line 50
for my $w (0, 1, 2)
{
	($ret, $out, $err) = lpsql("SELECT count(*) FROM csvpipe.read('$dir/weather.csv', workers => $w, chunk_size => 4096) AS t($wcols)");
	like($err, qr/ERROR:  malformed CSV: quote character inside an unquoted field\n.*CONTEXT:  csvpipe.read "[^"]*weather.csv", line 50, column cond/s,
		"read, $w workers, stop: the error names line 50, column cond");
}
# (without workers only a transaction-mode load runs: the others need one, 087)
for my $w (0, 1, 2, 4)
{
	for my $mode ($w == 0 ? ("mode => 'transaction'") : ('atomic => true', 'atomic => false'))
	{
		lsql("TRUNCATE w");
		($ret, $out, $err) = lpsql("SELECT csvpipe.load('$dir/weather.csv', 'w', workers => $w, $mode, chunk_size => 4096)");
		like($err, qr/malformed CSV: quote character inside an unquoted field.*line 50/s,
			"load, $w workers, $mode, stop: the error names line 50");
	}
}
($ret, $out, $err) = lpsql("SELECT csvpipe.load_serial('$dir/weather.csv', 'w')");
like($err, qr/malformed CSV: quote character inside an unquoted field.*line 50/s,
	'load_serial: the error names line 50');

# skip: reads return the 1,460 good rows, and report line 50 only
for my $w (0, 1, 2)
{
	($ret, $out, $err) = lpsql("SELECT count(*) || ' ' || md5(string_agg(t::text, ';' ORDER BY day)) "
		  . "FROM csvpipe.read('$dir/weather.csv', workers => $w, chunk_size => 4096, on_error => 'skip') AS t($wcols)");
	is($out, $want, "read, $w workers, skip: COPY's rows of the good lines");
	like($err, qr/skipped line 50: malformed CSV: quote character inside an unquoted field/,
		"read, $w workers, skip: line 50 reported");
	unlike($err, qr/skipped line (?!50:)/, "read, $w workers, skip: no other line reported");
}

# skip: loads reject exactly line 50, whatever the workers, chunks and mode
for my $w (1, 2, 4)
{
	for my $atomic ('true', 'false')
	{
		lsql("TRUNCATE w");
		my $res = lsql("SELECT rows_loaded || ' ' || rows_rejected || ' ' || job_id FROM csvpipe.load('$dir/weather.csv', 'w', "
			  . "workers => $w, atomic => $atomic, on_error => 'skip', chunk_size => 4096)");
		my ($loaded, $rejected, $job) = split / /, $res;
		is("$loaded $rejected", '1460 1', "load, $w workers, atomic $atomic, skip: 1,460 loaded, 1 rejected");
		is(lsql($checksum), $want, "load, $w workers, atomic $atomic, skip: the table equals COPY of the good lines");
		is(sql("SELECT line_no || '|' || raw_record || '|' || sqlstate FROM csvpipe.errors WHERE job_id = $job"),
			"50|$bad_line_text|22P04", "load, $w workers, atomic $atomic, skip: exactly line 50 rejected, raw");
		is(sql("SELECT state || ' ' || rows_loaded || ' ' || rows_rejected FROM csvpipe.jobs WHERE job_id = $job"),
			'done 1460 1', "load, $w workers, atomic $atomic, skip: the job state matches");
	}
}

# a malformed record spans the lines its quoted fields really span (a stray
# quote is data, a quote at a field's start still opens a field); the line
# after it is a record of its own; an unterminated quote runs to the end
write_file("$dir/spans.csv",
	qq{id,t\n1,a\n2,"two\nlines"x\n3,c\n4,"d"\n5,e"\n6,"f""g"\n9,x"y,"multi\nline"\n10,k\n7,"open\n8,never closed\n});
lsql("CREATE TABLE sp (id int, t text)");
for my $w (1, 2)
{
	lsql("TRUNCATE sp");
	my $job = lsql("SELECT job_id FROM csvpipe.load('$dir/spans.csv', 'sp', workers => $w, on_error => 'skip', chunk_size => 8)");
	is(lsql("SELECT string_agg(id || '=' || t, ',' ORDER BY id) FROM sp"), '1=a,3=c,4=d,6=f"g,10=k',
		"spans, $w workers: the good records");
	is(sql("SELECT string_agg(line_no || ':' || replace(raw_record, E'\\n', '/'), ' ' ORDER BY line_no) FROM csvpipe.errors WHERE job_id = $job"),
		'3:2,"two/lines"x 7:5,e" 9:9,x"y,"multi/line" 12:7,"open/8,never closed',
		"spans, $w workers: each bad record is the line(s) it spans");
}
is(lsql("SELECT string_agg(id || '=' || t, ',' ORDER BY id) FROM csvpipe.read('$dir/spans.csv', on_error => 'skip') AS t(id int, t text)"),
	'1=a,3=c,4=d,6=f"g,10=k', 'spans, read skip: the same good records');
is(lsql("SELECT string_agg(line_no::text, ',') FROM csvpipe.read_text('$dir/spans.csv', on_error => 'skip')"),
	'2,5,6,8,11', 'spans, read_text skip: the same records (the header is line 1)');

# ==== 2. a one-column file's empty line is a NULL row ====

sql(q{
CREATE TABLE one_src (n int, v text);
INSERT INTO one_src SELECT g, CASE WHEN g % 3 = 0 THEN NULL WHEN g = 10 THEN '' ELSE 'v' || g END
  FROM generate_series(1, 30) g;
});
sql("COPY (SELECT v FROM one_src ORDER BY n) TO '$dir/one.csv' (FORMAT csv)");
sql("COPY (SELECT v FROM one_src ORDER BY n) TO '$dir/one_h.csv' (FORMAT csv, HEADER)");
sql("COPY (SELECT n FROM one_src ORDER BY n) TO '$dir/one_int.csv' (FORMAT csv)");
sql("CREATE TABLE one_copy (v text); COPY one_copy FROM '$dir/one.csv' (FORMAT csv)");
my $one = sql("SELECT count(*) || ' ' || count(v) || ' ' || md5(string_agg(coalesce(v, '<null>'), ',' ORDER BY v NULLS FIRST)) FROM one_copy");
like($one, qr/^30 20 /, 'COPY FROM reads 30 rows, 10 NULL');
my $onesum = "count(*) || ' ' || count(v) || ' ' || md5(string_agg(coalesce(v, '<null>'), ',' ORDER BY v NULLS FIRST))";

for my $w (0, 2)
{
	is(lsql("SELECT $onesum FROM csvpipe.read('$dir/one.csv', header => false, workers => $w, chunk_size => 16) AS t(v text)"),
		$one, "read, $w workers: 30 rows, 10 NULL, as COPY FROM");
	is(lsql("SELECT $onesum FROM csvpipe.read('$dir/one_h.csv', workers => $w, chunk_size => 16) AS t(v text)"),
		$one, "read with a header, $w workers: as COPY FROM");
	is(lsql("SELECT count(*) || ' ' || count(fields[1]) FROM csvpipe.read_text('$dir/one.csv', header => false, workers => $w, chunk_size => 16)"),
		'30 20', "read_text, $w workers: 30 records, 10 of them {NULL}");
}
is(lsql("SELECT count(*) || ' ' || count(n) FROM csvpipe.read('$dir/one_int.csv', header => false) AS t(n int)"),
	'30 30', 'a one-column int file has no empty line');
lsql("CREATE TABLE one_t (v text)");
for my $w (0, 1, 2, 4)
{
	for my $mode ('stop', 'skip')
	{
		next if $w == 0 && $mode eq 'skip';	# skip mode needs a worker
		# so do prepared and chunked mode (087): transaction mode in the session
		for my $how ($w == 0 ? ("mode => 'transaction'") : ('atomic => true', 'atomic => false'))
		{
			lsql("TRUNCATE one_t");
			lsql("SELECT csvpipe.load('$dir/one.csv', 'one_t', header => false, workers => $w, on_error => '$mode', $how, chunk_size => 16)");
			is(lsql("SELECT $onesum FROM one_t"), $one,
				"load, $w workers, $mode, $how: 30 rows, 10 NULL, as COPY FROM");
		}
	}
}
lsql("TRUNCATE one_t");
lsql("SELECT csvpipe.load_serial('$dir/one.csv', 'one_t', header => false)");
is(lsql("SELECT $onesum FROM one_t"), $one, 'load_serial: as COPY FROM');

# the cache: a stored entry returns the same 30 rows
is(lsql("SELECT $onesum FROM csvpipe.read('$dir/one.csv', header => false) AS t(v text)"), $one, 'cached read (store)');
is(lsql("SELECT $onesum FROM csvpipe.read('$dir/one.csv', header => false) AS t(v text)"), $one, 'cached read (hit)');

# files of more columns skip empty lines (doc/reference.md, "Record
# boundaries and bad records"), on every path alike
write_file("$dir/two_empty.csv", "a,b\n\n1,x\r\n\r\n2,y\n\n");
is(lsql("SELECT string_agg(a || b, ',') FROM csvpipe.read('$dir/two_empty.csv') AS t(a int, b text)"),
	'1x,2y', 'two columns: empty lines skipped by read');
lsql("CREATE TABLE two_t (a int, b text)");
lsql("SELECT csvpipe.load('$dir/two_empty.csv', 'two_t', workers => 2, on_error => 'skip', chunk_size => 4)");
is(lsql("SELECT string_agg(a || b, ',' ORDER BY a) FROM two_t"), '1x,2y', 'two columns: empty lines skipped by load, skip mode');

# ==== 3. NUL bytes in a SQL_ASCII database ====

sql("CREATE DATABASE ascii ENCODING 'SQL_ASCII' LC_COLLATE 'C' LC_CTYPE 'C' TEMPLATE template0");
$node->safe_psql('ascii', "CREATE EXTENSION csvpipe; GRANT CREATE ON SCHEMA public TO loader;");
write_file("$dir/nul.csv", "id,name\n1,a\n2,b\0c\n3,d\n");
sub asql { return $node->safe_psql('ascii', $_[0], extra_params => [ '-U', 'loader' ]); }
sub apsql
{
	my ($ret, $out, $err) = $node->psql('ascii', $_[0], extra_params => [ '-U', 'loader' ]);
	return ($ret, $out, $err);
}
($ret, $out, $err) = $node->psql('ascii', "CREATE TEMP TABLE c (id int, name text); COPY c FROM '$dir/nul.csv' (FORMAT csv, HEADER)");
like($err, qr/invalid byte sequence for encoding "SQL_ASCII": 0x00/, 'COPY refuses the NUL byte');
for my $q ("SELECT count(*) FROM csvpipe.read('$dir/nul.csv') AS t(id int, name text)",
	"SELECT count(*) FROM csvpipe.read('$dir/nul.csv', workers => 2, chunk_size => 8) AS t(id int, name text)",
	"SELECT count(*) FROM csvpipe.read_text('$dir/nul.csv')")
{
	($ret, $out, $err) = apsql("SET client_min_messages = error; $q");
	like($err, qr/ERROR:  invalid byte sequence for encoding "SQL_ASCII": 0x00\n.*CONTEXT:  csvpipe.read(_text)? "[^"]*nul.csv", line 3/s,
		"NUL refused with its file and line: $q");
}
apsql("SET client_min_messages = error; CREATE TABLE nul_t (id int, name text)");
for my $w (0, 2)
{
	($ret, $out, $err) = apsql("SELECT csvpipe.load('$dir/nul.csv', 'nul_t', workers => $w)");
	like($err, qr/invalid byte sequence for encoding "SQL_ASCII": 0x00.*line 3/s, "load, $w workers: NUL refused, line 3");
}
is(asql("SELECT rows_loaded || ' ' || rows_rejected FROM csvpipe.load('$dir/nul.csv', 'nul_t', workers => 2, on_error => 'skip')"),
	'2 1', 'load skip: the NUL line rejected, the others loaded');
is($node->safe_psql('ascii', "SELECT line_no || ' ' || sqlstate FROM csvpipe.errors"), '3 22021', 'load skip: line 3, 22021');
is(asql("SELECT string_agg(id || name, ',' ORDER BY id) FROM nul_t"), '1a,3d', 'load skip: rows 1 and 3');
is(asql("SELECT string_agg(id || name, ',' ORDER BY id) FROM csvpipe.read('$dir/nul.csv', on_error => 'skip') AS t(id int, name text)"),
	'1a,3d', 'read skip: the NUL line skipped');

# ==== 4. SJIS with a quote byte that is a trail byte ====

# 'ポ' is 0x83 0x7C in SJIS: a byte-wise scan would take its second byte for
# the quote '|'
my $po = "\x83\x7c";
my $sjis = "id,name,note\n";
for my $i (1 .. 400)
{
	# a quoted field holding a newline after the character: a byte-wise
	# scan closes the field at 0x7C and cuts the record at that newline
	$sjis .= $i % 2 ? "$i,n$i,|${po}\nb|\n" : "$i,|x${po}|,plain$po\n";
}
write_file("$dir/sjis.csv", $sjis);
my $scols = 'id int, name text, note text';
sql("CREATE TABLE s_copy ($scols); COPY s_copy FROM '$dir/sjis.csv' (FORMAT csv, HEADER, QUOTE '|', ENCODING 'SJIS')");
my $swant = sql("SELECT count(*) || ' ' || md5(string_agg(t::text, ';' ORDER BY id)) FROM s_copy t");
like($swant, qr/^400 /, 'COPY reads the SJIS file');
for my $w (0, 2, 4)
{
	is(lsql("SELECT count(*) || ' ' || md5(string_agg(t::text, ';' ORDER BY id)) FROM csvpipe.read('$dir/sjis.csv', "
		  . "quote => '|', encoding => 'SJIS', workers => $w, chunk_size => 64) AS t($scols)"),
		$swant, "SJIS, quote '|', read with $w workers: COPY's rows");
}
lsql("CREATE TABLE s_t ($scols)");
for my $mode ('stop', 'skip')
{
	lsql("TRUNCATE s_t");
	lsql("SELECT csvpipe.load('$dir/sjis.csv', 's_t', quote => '|', encoding => 'SJIS', workers => 2, on_error => '$mode', chunk_size => 64)");
	is(lsql("SELECT count(*) || ' ' || md5(string_agg(t::text, ';' ORDER BY id)) FROM s_t t"),
		$swant, "SJIS, quote '|', load with 2 workers, $mode: COPY's rows");
}

# ==== 5. chunk_size has an upper bound ====

for my $q ("SELECT count(*) FROM csvpipe.read('$dir/one.csv', workers => 2, chunk_size => 1099511627776) AS t(v text)",
	"SELECT csvpipe.load('$dir/one.csv', 'one_t', workers => 2, chunk_size => 1099511627776)")
{
	($ret, $out, $err) = lpsql($q);
	like($err, qr/ERROR:  csvpipe chunk_size must be between 1 and 1073741824 bytes\nDETAIL:  Got 1099511627776\./,
		"chunk_size over 1GB refused: $q");
}

# ==== 6. the other line end ends a bad record too (corpus: duckdb afl case_63) ====
# The tokenizer (libcsv) ends a record at LF, CR or CRLF.  A malformed record
# followed by a lone CR in an LF file (or a lone LF in a file of CR line
# ends) ends there, so skip-mode loads reject only its own text and load the
# next record, as read(on_error => 'skip') does.
write_file("$dir/cr_in_lf.csv", "v\n1\na\"b\rc\n2\n");
write_file("$dir/lf_in_cr.csv", "v\r1\ra\"b\nc\r2\r");
write_file("$dir/cr_in_lf2.csv", "k,v\n1,x\n2,a\"b\r3,c\n4,y\n");
for my $case ([ 'cr_in_lf', 'v text', "1 2 c" ], [ 'lf_in_cr', 'v text', "1 2 c" ],
	[ 'cr_in_lf2', 'k int, v text', "1 3 4" ])
{
	my ($f, $cols, $want) = @$case;
	my $key = $cols =~ /^k/ ? 'k' : 'v';
	is(lsql("SELECT string_agg($key\::text, ' ' ORDER BY $key) FROM csvpipe.read('$dir/$f.csv', on_error => 'skip') AS t($cols)"),
		$want, "$f: read skip returns every record but the bad one");
	lsql("CREATE TABLE ${f}_t ($cols)");
	for my $w (1, 2)
	{
		lsql("TRUNCATE ${f}_t");
		my $r = lsql("SELECT rows_loaded || ' ' || rows_rejected || ' ' || job_id FROM csvpipe.load('$dir/$f.csv', '${f}_t', workers => $w, "
			  . "chunk_size => 64, atomic => false, on_error => 'skip')");
		my ($loaded, $rejected, $job) = split / /, $r;
		is(lsql("SELECT string_agg($key\::text, ' ' ORDER BY $key) FROM ${f}_t"), $want,
			"$f, load skip, $w workers: the same rows as read");
		is(lsql("SELECT string_agg(raw_record, '|') FROM csvpipe.errors WHERE job_id = $job"),
			$f eq 'cr_in_lf2' ? '2,a"b' : 'a"b', "$f, load skip, $w workers: only the bad record rejected");
	}
}

# ==== 7. an empty first line is the header line, as for COPY (corpus: duckdb empty_first_line.csv, afl case_17) ====
# HEADER takes the file's first line, even an empty one; skip_rows counts
# empty lines too.  Every path alike, compared with COPY FROM.
write_file("$dir/efl.csv", "\na,b\n1,x\n2,y\n");
write_file("$dir/efl1.csv", "\nv\n1\n\n2\n");
write_file("$dir/efl_pre.csv", "preamble\n\na,b\n1,x\n2,y\n");
write_file("$dir/efl_bad.csv", "\n10\"\n1,2\n3,4\n");
sql("CREATE TABLE efl_copy (a text, b text); COPY efl_copy FROM '$dir/efl.csv' (FORMAT csv, HEADER)");
is(sql("SELECT string_agg(a || '/' || b, ' ' ORDER BY a) FROM efl_copy"), '1/x 2/y a/b',
	'COPY takes the empty first line as the header');
sql("CREATE TABLE efl1_copy (v text); COPY efl1_copy FROM '$dir/efl1.csv' (FORMAT csv, HEADER)");
my $efl1 = sql("SELECT string_agg(coalesce(v, '<null>'), ' ' ORDER BY v NULLS FIRST) FROM efl1_copy");
is($efl1, '<null> 1 2 v', 'COPY, one column: the empty first line is the header');
for my $w (0, 2)
{
	is(lsql("SELECT string_agg(a || '/' || b, ' ' ORDER BY a) FROM csvpipe.read('$dir/efl.csv', workers => $w, chunk_size => 4) AS t(a text, b text)"),
		'1/x 2/y a/b', "read, $w workers: the empty first line is the header");
	is(lsql("SELECT string_agg(coalesce(v, '<null>'), ' ' ORDER BY v NULLS FIRST) FROM csvpipe.read('$dir/efl1.csv', workers => $w, chunk_size => 4) AS t(v text)"),
		$efl1, "read one column, $w workers: as COPY");
	is(lsql("SELECT string_agg(line_no || ':' || fields::text, ' ') FROM csvpipe.read_text('$dir/efl.csv', workers => $w, chunk_size => 4)"),
		'2:{a,b} 3:{1,x} 4:{2,y}', "read_text, $w workers: records after the empty header line");
	is(lsql("SELECT string_agg(a || '/' || b, ' ' ORDER BY a) FROM csvpipe.read('$dir/efl_pre.csv', skip_rows => 2, workers => $w, chunk_size => 4) AS t(a text, b text)"),
		'1/x 2/y', "read, $w workers: skip_rows counts the empty line");
	is(lsql("SELECT string_agg(a || '/' || b, ' ' ORDER BY a) FROM csvpipe.read('$dir/efl_bad.csv', workers => $w, chunk_size => 4, on_error => 'skip') AS t(a text, b text)"),
		'1/2 3/4', "read skip, $w workers: line 2 is a bad record, not a bad header");
}
lsql("CREATE TABLE efl_t (a text, b text)");
for my $w (0, 1, 2)
{
	for my $mode ('stop', 'skip')
	{
		next if $w == 0 && $mode eq 'skip';
		for my $how ($w == 0 ? ("mode => 'transaction'") : ('atomic => true', 'atomic => false'))
		{
			lsql("TRUNCATE efl_t");
			lsql("SELECT csvpipe.load('$dir/efl.csv', 'efl_t', workers => $w, on_error => '$mode', $how, chunk_size => 4)");
			is(lsql("SELECT string_agg(a || '/' || b, ' ' ORDER BY a) FROM efl_t"), '1/x 2/y a/b',
				"load, $w workers, $mode, $how: the empty first line is the header");
		}
	}
}
lsql("TRUNCATE efl_t");
lsql("SELECT csvpipe.load_serial('$dir/efl.csv', 'efl_t')");
is(lsql("SELECT string_agg(a || '/' || b, ' ' ORDER BY a) FROM efl_t"), '1/x 2/y a/b', 'load_serial: the empty first line is the header');
for my $w (1, 2)
{
	lsql("TRUNCATE efl_t");
	my $r = lsql("SELECT rows_loaded || ' ' || rows_rejected || ' ' || job_id FROM csvpipe.load('$dir/efl_bad.csv', 'efl_t', workers => $w, "
		  . "chunk_size => 64, atomic => false, on_error => 'skip')");
	my ($loaded, $rejected, $job) = split / /, $r;
	is("$loaded $rejected", '2 1', "efl_bad, load skip, $w workers: 2 loaded, 1 rejected");
	is(lsql("SELECT line_no || ' ' || sqlstate || ' ' || raw_record FROM csvpipe.errors WHERE job_id = $job"),
		"2 22P04 10\"", "efl_bad, load skip, $w workers: line 2 rejected with its own text");
}
($ret, $out, $err) = lpsql("SELECT count(*) FROM csvpipe.read('$dir/efl_bad.csv') AS t(a text, b text)");
like($err, qr/quote character inside an unquoted field.*efl_bad.csv", line 2, column a/s, 'efl_bad, read stop: line 2 named');

# ==== 8. stop and skip name the same bad record, with the same SQLSTATE (corpus: fuzzing/6, afl case_63) ====
# A record spanning lines 3-5 with an invalid byte on line 4: stop mode names
# line 3 (the record's first line, the line skip mode rejects), the byte's
# own line in the detail.  A record with a stray quote and an invalid byte
# is bad for its bytes (22021) in every mode, as skip mode rejects it.
write_file("$dir/span_bad.csv", "v\n1\n\"a\nb\xff\nc\"\n2\n");
write_file("$dir/both_bad.csv", "v,w\n1,2\n3,a\"b\xff\n4,5\n");
for my $case ([ 'span_bad', 'v text', 3, '1 2', qr/DETAIL:  The record starts on line 3; the error is on line 4\./ ],
	[ 'both_bad', 'v text, w text', 3, '1/2 4/5', qr/^/ ])
{
	my ($f, $cols, $line, $rows, $detail) = @$case;
	my $expr = $cols =~ /w/ ? "v || '/' || w" : 'v';
	for my $w (0, 2)
	{
		($ret, $out, $err) = lpsql("SELECT count(*) FROM csvpipe.read('$dir/$f.csv', workers => $w, chunk_size => 4) AS t($cols)");
		like($err, qr/ERROR:  invalid byte sequence for encoding "UTF8": 0xff\n(?:.*\n)?.*CONTEXT:  csvpipe.read "[^"]*$f.csv", line $line\b/,
			"$f, read stop, $w workers: 22021 on line $line");
		like($err, $detail, "$f, read stop, $w workers: detail");
		is(lsql("SELECT string_agg($expr, ' ' ORDER BY v) FROM csvpipe.read('$dir/$f.csv', workers => $w, chunk_size => 4, on_error => 'skip') AS t($cols)"),
			$rows, "$f, read skip, $w workers: the other rows");
	}
	lsql("CREATE TABLE ${f}_t ($cols)");
	($ret, $out, $err) = lpsql("SELECT csvpipe.load('$dir/$f.csv', '${f}_t', workers => 2, chunk_size => 4)");
	like($err, qr/ERROR:  invalid byte sequence for encoding "UTF8": 0xff\n(?:.*\n)?.*CONTEXT:  csvpipe.load "[^"]*$f.csv", line $line\b/,
		"$f, load stop: 22021 on line $line");
	my $r = lsql("SELECT job_id FROM csvpipe.load('$dir/$f.csv', '${f}_t', workers => 2, chunk_size => 4, on_error => 'skip', atomic => false)");
	is(lsql("SELECT line_no || ' ' || sqlstate FROM csvpipe.errors WHERE job_id = $r"), "$line 22021",
		"$f, load skip: line $line rejected, 22021");
}

# ==== 9. an invalid byte does not change what a quote after it means (corpus: afl/3977/case_50) ====
# A quote after an invalid byte is inside an unquoted field, on the raw bytes
# the splitter reads (chunk boundaries, skip-mode records): the record ends
# at its line end.  The single-process reader dropped the byte before
# tokenizing, so the quote opened a quoted field there that swallowed the
# next lines: a serial read skipped rows that a load loaded (case_50, a
# one-column file mixing CR and LF: 10 rows against 11).
write_file("$dir/bad_then_quote.csv", "v,w\n1,a\n\xff\"b,c\n2,d\n3\",e\n4,f\n");
write_file("$dir/bad_then_quote1.csv", "v\r1\r\xf1\"x\r\r\xff\"\n2\r");
for my $case ([ 'bad_then_quote', 'v text, w text', "v || '/' || w", '1/a 2/d 4/f', '3 22021|5 22P04', 3 ],
	[ 'bad_then_quote1', 'v text', "coalesce(v, 'NULL')", 'NULL 1 2', '3 22021|5 22021', 3 ])
{
	my ($f, $cols, $expr, $rows, $rejected, $first) = @$case;
	for my $w (0, 2)
	{
		is(lsql("SELECT string_agg($expr, ' ' ORDER BY v NULLS FIRST) FROM csvpipe.read('$dir/$f.csv', workers => $w, chunk_size => 4, on_error => 'skip') AS t($cols)"),
			$rows, "$f, read skip, $w workers: the rows after the bad lines");
		is(lsql("SELECT string_agg(coalesce(fields[1], 'NULL'), ' ' ORDER BY fields[1] NULLS FIRST) FROM csvpipe.read_text('$dir/$f.csv', workers => $w, chunk_size => 4, on_error => 'skip')"),
			$rows =~ s{/\w}{}gr, "$f, read_text skip, $w workers: the same rows");
		my ($ret, $out, $err) = lpsql("SELECT count(*) FROM csvpipe.read('$dir/$f.csv', workers => $w, chunk_size => 4) AS t($cols)");
		like($err, qr/ERROR:  invalid byte sequence for encoding "UTF8": 0x(?:ff|f1)[^\n]*\n(?:.*\n)?.*CONTEXT:  csvpipe.read "[^"]*$f.csv", line $first\b/,
			"$f, read stop, $w workers: 22021 on line $first");
	}
	lsql("CREATE TABLE ${f}_t ($cols)");
	for my $mode ('chunked', 'transaction')
	{
		lsql("TRUNCATE ${f}_t");
		my $job = lsql("SELECT job_id FROM csvpipe.load('$dir/$f.csv', '${f}_t', workers => 2, chunk_size => 4, on_error => 'skip', mode => '$mode')");
		is(lsql("SELECT string_agg($expr, ' ' ORDER BY v NULLS FIRST) FROM ${f}_t"), $rows, "$f, load skip, $mode: the same rows");
		is(lsql("SELECT string_agg(line_no || ' ' || sqlstate, '|' ORDER BY line_no) FROM csvpipe.errors WHERE job_id = $job"),
			$rejected, "$f, load skip, $mode: each bad line rejected alone");
	}
}

$node->stop;
done_testing();
