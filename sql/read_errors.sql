--
-- Bad input and bad options: each gets a clear error with an SQLSTATE, the
-- file, the line and (where there is one) the column; the session stays
-- sound afterwards.
--
\getenv abs_srcdir PG_ABS_SRCDIR
\set data :abs_srcdir '/test/data'
SET timezone = 'UTC';

-- shorthand: try a typed read of a fixture with the given columns/options
CREATE FUNCTION try_read(file text, cols text, opts text DEFAULT '') RETURNS SETOF text
LANGUAGE sql AS $$
  SELECT csv_try(format('SELECT * FROM csvpipe.read(%L%s) AS t(%s)',
                        current_setting('csvpipe_test.data') || '/' || file, opts, cols))
$$;

-- files that cannot be read
SELECT try_read('no_such_file.csv', 'a text');
SELECT try_read('', 'a text');
SELECT try_read('allowed', 'a text');
SELECT csv_try('SELECT * FROM csvpipe.read(''/dev/null'') AS t(a text)');
SELECT csv_try(format('COPY (SELECT 1 WHERE false) TO PROGRAM %L', 'mkfifo ' || :'data' || '/fifo'));
SELECT try_read('fifo', 'a text');
SELECT csv_try(format('COPY (SELECT 1 WHERE false) TO PROGRAM %L',
               'cp ' || :'data' || '/basic.csv ' || :'data' || '/unreadable.csv && chmod 000 ' || :'data' || '/unreadable.csv'));
SELECT try_read('unreadable.csv', 'a text');
SELECT csv_try('SELECT * FROM csvpipe.read(NULL) AS t(a text)');

-- wrong number of fields: line, expected and found
SELECT try_read('bad_count.csv', 'a int, b int');
SELECT * FROM csv_try(format('SELECT * FROM csvpipe.read_text(%L)', :'data' || '/bad_count.csv'));
-- invalid values: line (physical, after a quoted newline), column, value
SELECT try_read('bad_value.csv', 'id int, note text, amount numeric');
SELECT try_read('bad_value2.csv', 'id int, amount numeric');
SELECT try_read('basic.csv', 'id int, ts date, name text, amount numeric, flag int');
-- malformed quoting
SELECT try_read('unterminated.csv', 'id int, name text');
SELECT try_read('bad_quote.csv', 'id int, name text');
SELECT try_read('bad_after_quote.csv', 'id int, name text');
-- bytes that are not valid in the file's encoding
SELECT try_read('bad_utf8.csv', 'id int, name text');
SELECT try_read('nul_byte.csv', 'id int, name text');
-- a field larger than csvpipe.max_field_size (at most 1GB)
SET csvpipe.max_field_size = '4kB';
SELECT try_read('big_field.csv', 'id int, name text');
RESET csvpipe.max_field_size;
SELECT id, length(name) FROM csvpipe.read(:'data' || '/big_field.csv') AS t(id int, name text);
SET csvpipe.max_field_size = '2GB';
SET csvpipe.max_field_size = 100;
-- header => 'match'
SELECT try_read('header_mismatch.csv', 'id int, name text', ', header => ''match''');
SELECT try_read('header_mismatch.csv', 'id int, nom text, extra text', ', header => ''match''');
SELECT try_read('header_mismatch.csv', 'id int, nom text', ', header => ''match''');
SELECT * FROM csv_try(format('SELECT * FROM csvpipe.read_text(%L, header => ''match'')', :'data' || '/basic.csv'));

-- invalid options
SELECT try_read('basic.csv', 'a text', ', delimiter => ''é''');
SELECT try_read('basic.csv', 'a text', ', delimiter => ''::''');
SELECT try_read('basic.csv', 'a text', ', delimiter => ''''');
SELECT try_read('basic.csv', 'a text', ', delimiter => ''"''');
SELECT try_read('basic.csv', 'a text', ', quote => E''\n''');
SELECT try_read('basic.csv', 'a text', ', escape => ''\''');
SELECT try_read('basic.csv', 'a text', ', encoding => ''no_such_encoding''');
SELECT try_read('basic.csv', 'a text', ', null_string => ''a,b''');
SELECT try_read('basic.csv', 'a text', ', skip_rows => -1');
SELECT try_read('basic.csv', 'a text', ', delimiter => NULL');
SELECT try_read('basic.csv', 'a text', ', header => ''maybe''');
SELECT * FROM csvpipe.read('/no/such/file.csv');

-- a file that grows while it is read
CREATE FUNCTION append_once(n int) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
  IF n = 1 THEN
    EXECUTE format('COPY (SELECT 9, ''late'') TO PROGRAM %L WITH (FORMAT csv)',
                   'cat >> ' || current_setting('csvpipe_test.data') || '/growing.csv');
  END IF;
  RETURN true;
END $$;
SELECT csv_try(format('COPY (SELECT 1 WHERE false) TO PROGRAM %L',
               'printf ''id,name\n1,a\n2,b\n'' > ' || :'data' || '/growing.csv'));
SELECT csv_try(format('SELECT * FROM csvpipe.read(%L) AS t(id int, name text) WHERE append_once(id)',
               :'data' || '/growing.csv'));

-- the session is fine afterwards, and no file was left open
SELECT count(*) FROM csvpipe.read(:'data' || '/basic.csv') AS t(id int, ts timestamptz, name text, amount numeric, flag boolean);

-- on_error => 'skip': bad rows are reported and skipped (NOTICE), the rest is read
\set VERBOSITY terse
SELECT * FROM csvpipe.read(:'data' || '/bad_count.csv', on_error => 'skip') AS t(a int, b int);
SELECT * FROM csvpipe.read(:'data' || '/bad_value2.csv', on_error => 'skip') AS t(id int, amount numeric);
SELECT count(*) FROM csvpipe.read(:'data' || '/basic.csv', on_error => 'skip') AS t(id small_id, ts timestamptz, name text, amount numeric, flag boolean);
SELECT * FROM csvpipe.read(:'data' || '/bad_value2.csv', on_error => 'maybe') AS t(id int, amount numeric);
\set VERBOSITY default
