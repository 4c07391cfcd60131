--
-- CSV as it is found in the wild: CRLF, BOM, empty lines, no final newline,
-- other delimiters, other encodings, NULL markers, preambles.
--
\getenv abs_srcdir PG_ABS_SRCDIR
\set data :abs_srcdir '/test/data'
\set crlf :data '/crlf.csv'
\set bom :data '/bom.csv'
\set empty_lines :data '/empty_lines.csv'
\set tab :data '/tab.tsv'
\set pipe :data '/pipe.csv'
\set latin1 :data '/latin1.csv'
\set na :data '/na.csv'
\set empty :data '/empty.csv'
\set header_only :data '/header_only.csv'

-- CRLF line ends, a quoted CRLF kept inside its field, no final newline
SELECT id, replace(name, E'\r', '\r') AS name, name IS NULL AS is_null
  FROM csvpipe.read(:'crlf') AS t(id int, name text);
SELECT * FROM csvpipe.read_text(:'crlf');
CREATE TABLE crlf_copy (id int, name text);
COPY crlf_copy FROM :'crlf' WITH (FORMAT csv, HEADER true);
SELECT csv_rows(format('SELECT * FROM csvpipe.read(%L) AS t(id int, name text)', :'crlf'))
     = csv_rows('SELECT * FROM crlf_copy ORDER BY id') AS same_as_copy;

-- a UTF-8 byte order mark is not part of the first column's name or value
SELECT * FROM csvpipe.read(:'bom') AS t(id int, name text);
SELECT * FROM csvpipe.read(:'bom', header => 'match') AS t(id int, name text);
SELECT * FROM csvpipe.read_text(:'bom', header => false);

-- empty lines: read_text returns them as one NULL field; a read of two
-- columns skips them (both still count in line numbers)
SELECT * FROM csvpipe.read_text(:'empty_lines');
SELECT * FROM csvpipe.read(:'empty_lines') AS t(id int, name text);

-- other one-byte delimiters
SELECT id, name, note, note IS NULL AS note_null
  FROM csvpipe.read(:'tab', delimiter => E'\t') AS t(id int, name text, note text);
CREATE TABLE tab_copy (id int, name text, note text);
COPY tab_copy FROM :'tab' WITH (FORMAT csv, HEADER true, DELIMITER E'\t');
SELECT csv_rows(format('SELECT * FROM csvpipe.read(%L, delimiter => E''\t'') AS t(id int, name text, note text)', :'tab'))
     = csv_rows('SELECT * FROM tab_copy ORDER BY id') AS same_as_copy;
SELECT * FROM csvpipe.read(:'pipe', delimiter => '|') AS t(id int, name text);

-- a LATIN1 file converted to the server encoding (UTF8)
SELECT id, name, octet_length(name) FROM csvpipe.read(:'latin1', encoding => 'LATIN1') AS t(id int, name text);
CREATE TABLE latin1_copy (id int, name text);
COPY latin1_copy FROM :'latin1' WITH (FORMAT csv, HEADER true, ENCODING 'LATIN1');
SELECT csv_rows(format('SELECT * FROM csvpipe.read(%L, encoding => ''latin1'') AS t(id int, name text)', :'latin1'))
     = csv_rows('SELECT * FROM latin1_copy ORDER BY id') AS same_as_copy;
-- read as UTF-8, the same bytes are invalid
SELECT * FROM csv_try(format('SELECT * FROM csvpipe.read(%L) AS t(id int, name text)', :'latin1'));

-- skip_rows skips records before the header; null_string as COPY's NULL
SELECT id, name, name IS NULL AS is_null
  FROM csvpipe.read(:'na', skip_rows => 2, null_string => 'NA') AS t(id int, name text);
SELECT id, name, name IS NULL AS is_null
  FROM csvpipe.read(:'na', skip_rows => 2) AS t(id int, name text);
SELECT * FROM csvpipe.read_text(:'na', skip_rows => 2, header => false, null_string => 'NA');

-- header => false reads the header line as data; true skips it
SELECT * FROM csvpipe.read(:'bom', header => false) AS t(a text, b text);
SELECT count(*) FROM csvpipe.read(:'bom', header => true) AS t(a text, b text);

-- empty file, header only
SELECT count(*) FROM csvpipe.read(:'empty') AS t(id int, name text);
SELECT count(*) FROM csvpipe.read(:'empty', header => 'match') AS t(id int, name text);
SELECT count(*) FROM csvpipe.read(:'header_only', header => 'match') AS t(id int, name text);
SELECT count(*) FROM csvpipe.read_text(:'header_only', header => false);

-- streaming: LIMIT stops reading, so a bad line after the first blocks is
-- never reached (the whole file is ~470 kB, read in 256 kB blocks)
\set tail_bad :data '/tail_bad.csv'
COPY (SELECT g::text AS id, repeat('x', 5) || g AS name FROM generate_series(1, 40000) g
      UNION ALL SELECT 'not a number', 'bad') TO :'tail_bad' WITH (FORMAT csv, HEADER true);
SELECT * FROM csvpipe.read(:'tail_bad') AS t(id int, name text) LIMIT 3;
SELECT count(*) FROM (SELECT * FROM csvpipe.read(:'tail_bad') AS t(id int, name text) LIMIT 30000) s;
SELECT * FROM csv_try(format('SELECT count(*) FROM csvpipe.read(%L) AS t(id int, name text)', :'tail_bad'));
SELECT line_no, fields FROM csvpipe.read_text(:'tail_bad') WHERE line_no > 40000;
