# 135_sniff_gaps.pl -- what csvpipe.sniff gets right on third-party files
# since the gaps found on them were closed:
#
#  1. null markers: a column of numbers whose missing values are written
#     \N, N/A, null... is typed, null_string says the marker, and sniff's
#     options with its column list (or create_table) read and load the
#     file as COPY does with that NULL; the marker found in a text column
#     is reported, a marker that cannot work beside empty fields is only
#     reported, and a null_string given is taken as it is;
#  2. East Asian encodings: a Shift_JIS file of the DuckDB corpus is SJIS
#     (it was LATIN1) and reads as COPY reads it with ENCODING 'SJIS';
#     EUC-JP, EUC-KR (UHC), GBK and Big5 text (written here with Perl's
#     Encode: the corpora hold no such file) are told apart, and Latin-1
#     text stays LATIN1;
#  3. numbers with a decimal comma or thousands separators stay text, with
#     a note;
#  4. a header of two or three rows (Pollock's multi-row header files, two
#     survey files with grouped column names) is found: skip_rows skips all
#     but its last row, the names join the rows, the types are those of the
#     data, and a read with sniff's options returns the rows of Pollock's
#     clean/ table; a data row that fits no type under the header stays
#     data.
#
# The corpus files are read in place from $CSVPIPE_CORPUS_DIR (default
# /work/shared/corpus, see its README.md); without it those parts are
# skipped.
use strict;
use warnings;

use Encode ();
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $corpus = $ENV{CSVPIPE_CORPUS_DIR} // '/work/shared/corpus';
my $have_corpus = -r "$corpus/README.md";

my $dir = PostgreSQL::Test::Utils::tempdir;
chmod 0755, $dir;

my $node = PostgreSQL::Test::Cluster->new('sniff_gaps');
$node->init(extra => [ '--encoding=UTF8', '--locale=C' ]);
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'csvpipe'
datestyle = 'iso, mdy'
timezone = 'UTC'
});
$node->start;

sub sql { return $node->safe_psql('postgres', $_[0]); }

sql(q{
CREATE EXTENSION csvpipe;
-- what sniff says, on one line
CREATE FUNCTION said(p text) RETURNS text LANGUAGE sql AS $$
	SELECT concat_ws('|', delimiter, encoding, header, skip_rows, null_string,
					 columns, types, nullable)
	  FROM csvpipe.sniff(p)
$$;
-- read a file with sniff's options and column list: count, and q over the rows
CREATE FUNCTION sniff_read(p text, q text DEFAULT 'count(*)::text') RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
	s csvpipe.sniff_result := csvpipe.sniff(p);
	r text;
BEGIN
	EXECUTE format('SELECT %s FROM csvpipe.read(%L, delimiter => %L, quote => %L, '
				   'header => %L, skip_rows => %s, encoding => %L, null_string => %L) AS t(%s)',
				   q, p, s.delimiter, s.quote, s.header::text, s.skip_rows,
				   s.encoding, s.null_string, s.column_list) INTO r;
	RETURN r;
END $$;
});

# ---------------------------------------------------------------------------
# 1. null markers
# ---------------------------------------------------------------------------
SKIP:
{
	skip "no corpus at $corpus (set CSVPIPE_CORPUS_DIR)", 16 unless $have_corpus;

	# MySQL's \N (Amazon Redshift's TICKIT sample venue table)
	my $venue = "$corpus/duckdb/csv/venue_pipe.csv";
	is( sql("SELECT said('$venue')"),
		'||UTF8|t|0|\N|{venueid,venuename,venuecity,venuestate,venueseats}'
		  . '|{smallint,text,text,text,integer}|{f,f,f,f,t}',
		'venue_pipe.csv: \N is null_string, venueseats integer and nullable');
	is( sql("SELECT array_to_string(notes, E'\\n') FROM csvpipe.sniff('$venue')"),
		q{missing values are written \N: null_string is E'\\\\N', which types column(s) venueseats; read and load with null_string => E'\\\\N'},
		'... and the note says so, with the option to give');
	my $venue_copy = sql(qq{
		CREATE TABLE venue_copy (id smallint, name text, city text, state text, seats integer);
		COPY venue_copy FROM '$venue' WITH (FORMAT csv, DELIMITER '|', HEADER true, NULL '\\N');
		SELECT count(*) || ' ' || count(seats) || ' ' || sum(seats) || ' '
			   || md5(string_agg(venue_copy::text, '|' ORDER BY id)) FROM venue_copy});
	like($venue_copy, qr/^202 187 /, '(COPY reads 202 rows, 15 without seats)');
	is( sql("SELECT sniff_read('$venue', 'count(*) || '' '' || count(venueseats) || '' '' || sum(venueseats) || '' '' || md5(string_agg(t::text, ''|'' ORDER BY venueid))')"),
		$venue_copy, 'read with sniff\'s options and types returns COPY\'s rows');
	is( sql(qq{
		SELECT csvpipe.create_table('$venue', 'venue');
		SELECT rows_loaded FROM csvpipe.load('$venue', 'venue', delimiter => '|',
			null_string => (SELECT null_string FROM csvpipe.sniff('$venue')));
		SELECT count(*) || ' ' || count(venueseats) || ' ' || sum(venueseats) || ' '
			   || md5(string_agg(venue::text, '|' ORDER BY venueid)) FROM venue;}),
		"venue\n202\n$venue_copy",
		'create_table, then load with sniff\'s null_string: COPY\'s rows');
	is(sql("SELECT concat_ws('|', null_string, types) FROM csvpipe.sniff('$venue', null_string => '')"),
		'|{smallint,text,text,text,text}', 'null_string given: taken as it is, no marker looked for');

	# N/A in a UK government open-data file: two pay columns typed; the
	# phone column's own N/A is said to become NULL
	my $mod = "$corpus/pollock_survey/csv/ministry-of-defence__30-09-2012__mod_300912-Air-Govt-data-template-u-senior.csv";
	is( sql("SELECT concat_ws('|', null_string, types, nullable) FROM csvpipe.sniff('$mod')"),
		'N/A|{integer,text,text,text,text,text,text,text,text,text,text,integer,"numeric(20,2)",integer,integer,text,text,text,smallint}'
		  . '|{f,f,f,f,f,f,f,f,t,f,f,f,f,t,t,f,f,f,f}',
		'MoD senior posts: N/A is null_string, the pay floor and ceiling integer');
	is( sql("SELECT array_to_string(notes, E'\\n') FROM csvpipe.sniff('$mod')"),
		"missing values are written N/A: null_string is 'N/A', which types column(s) Actual Pay Floor (£), Actual Pay Ceiling (£); read and load with null_string => 'N/A'\n"
		  . 'column Contact Phone: its value "N/A" (1 in the sample) is read as NULL too',
		'... and a text column whose N/A becomes NULL is named');
	# (the file quotes every field: COPY's FORCE_NULL reads a quoted N/A as
	# csvpipe does, doc/reference.md "Options")
	my $mod_copy = sql(qq{
		CREATE TEMP TABLE mc (c1 text, c2 text, c3 text, c4 text, c5 text, c6 text, c7 text,
			c8 text, c9 text, c10 text, c11 text, c12 text, c13 text, c14 text, c15 text,
			c16 text, c17 text, c18 text, c19 text);
		COPY mc FROM '$mod' WITH (FORMAT csv, HEADER true, NULL 'N/A', FORCE_NULL (c9, c14, c15));
		SELECT count(*) || ' ' || count(c14) || ' ' || sum(c14::int) || ' ' || sum(c15::int) FROM mc});
	is( sql(qq{SELECT sniff_read('$mod', 'count(*) || '' '' || count("Actual Pay Floor (£)") || '' '' || sum("Actual Pay Floor (£)") || '' '' || sum("Actual Pay Ceiling (£)")')}),
		$mod_copy, '... read with sniff\'s options: COPY\'s rows and sums');

	# DuckDB's null tests: both columns; and empty fields beside the marker
	is( sql("SELECT concat_ws('|', null_string, types, notes) FROM csvpipe.sniff('$corpus/duckdb/csv/null_string.csv')"),
		q{null|{smallint,smallint}|{"missing values are written null: null_string is 'null', which types column(s) a, b; read and load with null_string => 'null'"}},
		'null_string.csv: null types both columns');
	is(sql("SELECT sniff_read('$corpus/duckdb/csv/null_string.csv', 'a || ''/'' || coalesce(b::text, ''-'')')"),
		'1/-', '... and reads as NULL');
	is( sql("SELECT concat_ws('|', null_string, types, notes) FROM csvpipe.sniff('$corpus/duckdb/csv/null/multiple_nulls.csv')"),
		q{null|{text,smallint,text}|{"missing values are written null: null_string is 'null', which types column(s) age; read and load with null_string => 'null'","with null_string 'null', empty fields are empty strings, not NULL: column(s) height"}},
		'multiple_nulls.csv: null types age; the empty height is said to be an empty string then');
	is(sql("SELECT sniff_read('$corpus/duckdb/csv/null/multiple_nulls.csv', 'string_agg(name || ''/'' || coalesce(age::text, ''-'') || ''/'' || quote_nullable(height), '','' ORDER BY name)')"),
		q{Mark/-/'',Pedro/31/'1.73',Thijs/26/'none'}, '... and reads so');
	is(sql("SELECT concat_ws('|', null_string, types) FROM csvpipe.sniff('$corpus/duckdb/csv/response.csv')"),
		'Null|{boolean}', 'response.csv (Y, N, Null): boolean');

	# a marker and empty fields in columns of numbers: one null_string
	# cannot take both, nothing changes but a note
	my $types16857 = '{text,text,smallint,bigint,"numeric(27,9)","numeric(27,9)","numeric(21,3)",boolean,text,timestamp,text,jsonb,text,jsonb,text,text,timestamp,smallint,text,text,text,text,text,text,text,text}';
	is( sql("SELECT concat_ws('|', null_string, types) FROM csvpipe.sniff('$corpus/duckdb/csv/16857.csv')"),
		"|$types16857", '16857.csv: null beside empty fields: null_string stays empty, same types');
	is( sql("SELECT array_to_string(notes, E'\\n') FROM csvpipe.sniff('$corpus/duckdb/csv/16857.csv')"),
		q{missing values are written null in column(s) tinyIntCol, but column(s) smallIntCol, bigIntCol, doubleCol, doubleCol_2, decimalCol... (11 in all) have empty fields, which null_string 'null' would make empty strings (a null_string is one marker): typed text},
		'... and a note says why');
}

# ---------------------------------------------------------------------------
# 2. East Asian encodings
# ---------------------------------------------------------------------------
SKIP:
{
	skip "no corpus at $corpus (set CSVPIPE_CORPUS_DIR)", 3 unless $have_corpus;

	my $sjis = "$corpus/duckdb/csv/encodings/shift_jis.csv";
	is(sql("SELECT said('$sjis')"), ',|SJIS|t|0||{名前,年齢}|{text,smallint}|{f,f}',
		'shift_jis.csv: SJIS, names and types');
	my $copied = sql(qq{CREATE TEMP TABLE sj (a text, b int);
		COPY sj FROM '$sjis' WITH (FORMAT csv, HEADER true, ENCODING 'SJIS');
		SELECT string_agg(a || '=' || b, ',') FROM sj});
	like($copied, qr/^名前=25,山田=30,佐藤=28,/, '(COPY reads it with ENCODING SJIS)');
	is(sql("SELECT sniff_read('$sjis', 'string_agg(\"名前\" || ''='' || \"年齢\", '','')')"),
		$copied, 'read with sniff\'s options returns COPY\'s rows');
}

# text in each encoding, as Perl's Encode writes it (this file is UTF-8;
# psql's output is compared as bytes)
my %text = (
	ja => "id,名前,住所,メモ\n1,山田太郎,東京都新宿区西新宿二丁目,ご注文ありがとうございました\n"
	  . "2,佐藤花子,大阪府大阪市北区梅田,配送は来週の予定です\n3,鈴木一郎,北海道札幌市中央区,お問い合わせください\n",
	ko => "id,이름,주소,메모\n1,김민준,서울특별시 강남구 테헤란로,주문해 주셔서 감사합니다\n"
	  . "2,이서연,부산광역시 해운대구,배송은 다음 주에 예정되어 있습니다\n3,박지호,대구광역시 중구,문의해 주세요\n",
	zh => "id,姓名,地址,备注\n1,王伟,北京市朝阳区建国路,感谢您的订购\n2,李娜,上海市浦东新区世纪大道,预计下周发货\n"
	  . "3,张敏,广州市天河区体育西路,如有问题请联系我们\n",
	zht => "id,姓名,地址,備註\n1,王偉,臺北市信義區市府路,感謝您的訂購\n2,李娜,高雄市前鎮區中山二路,預計下週發貨\n"
	  . "3,張敏,臺中市西屯區臺灣大道,如有問題請聯繫我們\n",
	fr => "id,nom,ville\n1,Élodie Lefèvre,Besançon\n2,François Dupré,Orléans\n3,Hélène Gâteau,Nîmes\n",
	de => "id,Name,Straße\n1,Jürgen Müller,Hauptstraße 5\n2,Käthe Schröder,Bahnhofstraße 12\n3,ÄÖÜ Weiß,Übergasse\n");
for my $case (
	[ 'ja', 'shiftjis', 'SJIS' ], [ 'ja', 'cp932', 'SJIS' ], [ 'ja', 'euc-jp', 'EUC_JP' ],
	[ 'ko', 'euc-kr', 'UHC' ], [ 'ko', 'cp949', 'UHC' ], [ 'zh', 'cp936', 'GBK' ],
	[ 'zht', 'big5-eten', 'BIG5' ], [ 'fr', 'iso-8859-1', 'LATIN1' ],
	[ 'de', 'iso-8859-1', 'LATIN1' ])
{
	my ($lang, $enc, $want) = @$case;
	my $p = "$dir/${lang}_$enc.csv";
	open my $fh, '>:raw', $p or die "$p: $!";
	print $fh Encode::encode($enc, Encode::decode('UTF-8', $text{$lang}), Encode::FB_CROAK);
	close $fh;
	chmod 0644, $p;
	my ($header) = split /\n/, $text{$lang};
	is( sql("SELECT encoding || ' ' || array_to_string(columns, ',') || ' ' || sniff_read('$p') FROM csvpipe.sniff('$p')"),
		"$want $header 3", "$lang text in $enc: $want, its names, and every row reads");
}

# ---------------------------------------------------------------------------
# 3. numbers with a decimal comma
# ---------------------------------------------------------------------------
SKIP:
{
	skip "no corpus at $corpus (set CSVPIPE_CORPUS_DIR)", 2 unless $have_corpus;

	is( sql("SELECT types[7] || ' ' || array_to_string(notes, E'\\n') FROM csvpipe.sniff('$corpus/duckdb/csv/rejects_sniffer.csv')"),
		q{text numbers with a comma ("123,45": a decimal comma, or thousands separators) are typed text, numeric input takes neither: column(s) Transactiebedrag},
		'rejects_sniffer.csv (; and 123,45): text, and a note');
	is( sql("SELECT concat_ws('|', types, notes) FROM csvpipe.sniff('$corpus/duckdb/csv/double_trouble.csv')"),
		q[{text,text}|{"numbers with a comma (\"123,000\": a decimal comma, or thousands separators) are typed text, numeric input takes neither: column(s) number"}],
		'double_trouble.csv (| and 123,000): text, and a note');
	is( sql("SELECT concat_ws('|', types, notes) FROM csvpipe.sniff('$corpus/duckdb/csv/thousands_separator/simple.csv')"),
		q[{text}|{"numbers with a comma (\"300,000.20\": a decimal comma, or thousands separators) are typed text, numeric input takes neither: column(s) 100,000.00"}],
		'thousands_separator/simple.csv (300,000,000.40): text, and a note');
}

# ---------------------------------------------------------------------------
# 4. headers of several rows
# ---------------------------------------------------------------------------
SKIP:
{
	skip "no corpus at $corpus (set CSVPIPE_CORPUS_DIR)", 10 unless $have_corpus;

	# the rows of Pollock's clean/ table (its header is the names)
	sql(q{
	CREATE FUNCTION clean_rows(p text, ncols int) RETURNS text LANGUAGE plpgsql AS $$
	DECLARE r text;
	BEGIN
		EXECUTE format('CREATE TEMP TABLE cl (%s)',
					   (SELECT string_agg(format('c%s text', i), ', ') FROM generate_series(1, ncols) i));
		EXECUTE format('COPY cl FROM %L WITH (FORMAT csv, HEADER true)', p);
		SELECT count(*) || ' ' || md5(string_agg(array_to_string(
				   (SELECT array_agg(x) FROM json_each_text(row_to_json(cl)) j(k, x)), '|', ''), E'\n'))
		  INTO r FROM cl;
		DROP TABLE cl;
		RETURN r;
	END $$;
	-- the same of read_text with what sniff says
	CREATE FUNCTION sniffed_rows(p text) RETURNS text LANGUAGE plpgsql AS $$
	DECLARE
		s csvpipe.sniff_result := csvpipe.sniff(p);
		r text;
	BEGIN
		SELECT count(*) || ' ' || md5(string_agg(array_to_string(fields, '|', ''), E'\n' ORDER BY line_no))
		  INTO r
		  FROM csvpipe.read_text(p, delimiter => s.delimiter, quote => s.quote, header => s.header,
								 skip_rows => s.skip_rows, encoding => s.encoding,
								 null_string => s.null_string);
		RETURN r;
	END $$;
	});
	my $names = '{DATE,TIME,Qty,PRODUCTID,Price,ProductType,ProductDescription,URL,Comments}';
	my $types = '{text,time,smallint,text,text,text,text,text,text}';
	for my $h (2, 3)
	{
		my $f = "file_header_multirow_$h.csv";
		is( sql("SELECT concat_ws('|', header, skip_rows, columns, types, notes[1]) FROM csvpipe.sniff('$corpus/pollock/csv/$f')"),
			"t|" . ($h - 1) . "|$names|$types|the header has $h rows (lines 1 to $h): skip_rows skips all but the last, and the column names join their values",
			"Pollock $f: a header of $h rows, skipped but the last, the data's types (was no header, all text)");
		my $clean = sql("SELECT clean_rows('$corpus/pollock/clean/$f', 9)");
		like($clean, qr/^83 /, "(Pollock's clean $f has 83 rows)");
		is(sql("SELECT sniffed_rows('$corpus/pollock/csv/$f')"), $clean,
			"... read with sniff's options: the clean table's rows");
	}
	my $sun = "$corpus/pollock_survey/csv/Sun2014-Rs.csv";
	is( sql("SELECT concat_ws('|', header, skip_rows, columns, types) FROM csvpipe.sniff('$sun')"),
		't|1|{"Sun2014-bp X","Sun2014-bp Y","Sun2014-lg X","Sun2014-lg Y"}|{"numeric(34,16)","numeric(34,16)","numeric(34,16)","numeric(35,17)"}',
		'Sun2014-Rs.csv: grouped names over X,Y: joined (the clean table\'s names), numeric');
	is(sql("SELECT sniffed_rows('$sun')"), sql("SELECT clean_rows('$corpus/pollock_survey/clean/Sun2014-Rs.csv', 4)"),
		"... read with sniff's options: the clean table's rows");
	is( sql("SELECT concat_ws('|', header, skip_rows, columns, types) FROM csvpipe.sniff('$corpus/pollock_survey/csv/Takakai2008-ch4.csv')"),
		't|1|{"control X","control Y","fire X","fire Y"}|{"numeric(33,15)","numeric(35,17)","numeric(33,15)","numeric(34,16)"}',
		'Takakai2008-ch4.csv: the same');
	is( sql("SELECT concat_ws('|', header, skip_rows, columns, types) FROM csvpipe.sniff('$corpus/duckdb/csv/date_specificity.csv')"),
		't|0|{a}|{text}', 'date_specificity.csv: 0.00 under the header, above dates, is data');
}

$node->stop;
done_testing();
