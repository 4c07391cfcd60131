# 135_sniff_gaps.pl -- what csvpipe.sniff gets right on third-party files
# since the gaps found on them were closed:
#
#  - East Asian encodings: a Shift_JIS file of the DuckDB corpus is SJIS
#     (it was LATIN1) and reads as COPY reads it with ENCODING 'SJIS';
#     EUC-JP, EUC-KR (UHC), GBK and Big5 text (written here with Perl's
#     Encode: the corpora hold no such file) are told apart, and Latin-1
#     text stays LATIN1.
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

$node->stop;
done_testing();
