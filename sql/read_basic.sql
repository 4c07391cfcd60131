--
-- csvpipe.read / csvpipe.read_text on well-formed files: exact rows, and the
-- same rows COPY ... FROM loads from the same file.
--
\getenv abs_srcdir PG_ABS_SRCDIR
\set data :abs_srcdir '/test/data'
\set basic :data '/basic.csv'
SET client_min_messages = warning;
CREATE EXTENSION csvpipe;
RESET client_min_messages;
SET timezone = 'UTC';
SET datestyle = 'ISO, YMD';

-- Helpers used by all csvpipe regression tests.
-- csv_rows: md5 and count of a query's rows, in the order they come.
CREATE FUNCTION csv_rows(q text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE r text;
BEGIN
  EXECUTE format('SELECT count(*) || '' rows, md5 '' || md5(string_agg(x::text, E''\n'' ORDER BY n))
                  FROM (SELECT x, row_number() OVER () AS n FROM (%s) x) y', q) INTO r;
  RETURN r;
END $$;
-- csv_try: run a statement, report ok or the error's SQLSTATE, message,
-- detail and first context line, with the fixture directory shown as @data@.
CREATE FUNCTION csv_try(q text) RETURNS SETOF text LANGUAGE plpgsql AS $$
DECLARE st text; msg text; det text; ctx text; dir text := current_setting('csvpipe_test.data');
BEGIN
  EXECUTE q;
  RETURN NEXT 'ok';
EXCEPTION WHEN others THEN
  GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, msg = MESSAGE_TEXT,
                          det = PG_EXCEPTION_DETAIL, ctx = PG_EXCEPTION_CONTEXT;
  RETURN NEXT 'ERROR ' || st || ': ' || replace(msg, dir, '@data@');
  IF det <> '' THEN RETURN NEXT 'DETAIL: ' || replace(det, dir, '@data@'); END IF;
  ctx := split_part(ctx, E'\n', 1);
  IF ctx LIKE 'csvpipe.%' THEN RETURN NEXT 'CONTEXT: ' || replace(ctx, dir, '@data@'); END IF;
END $$;
-- csv_explain: EXPLAIN (COSTS OFF) with the fixture directory shown as @data@
CREATE FUNCTION csv_explain(q text) RETURNS SETOF text LANGUAGE plpgsql AS $$
DECLARE line text;
BEGIN
  FOR line IN EXECUTE 'EXPLAIN (COSTS OFF) ' || q LOOP
    RETURN NEXT replace(line, current_setting('csvpipe_test.data'), '@data@');
  END LOOP;
END $$;
-- the fixture directory, for every later session of the test database
SELECT set_config('csvpipe_test.data', :'data', false) IS NOT NULL AS set;
DO $$ BEGIN
  EXECUTE format('ALTER DATABASE %I SET csvpipe_test.data = %L',
                 current_database(), current_setting('csvpipe_test.data'));
END $$;

-- typed rows: quoted delimiters, doubled quotes, embedded newline, NULL vs
-- empty string, spaces kept, multibyte text
SELECT * FROM csvpipe.read(:'basic')
    AS t(id int, ts timestamptz, name text, amount numeric(12,2), flag boolean);
SELECT id, name IS NULL AS name_null, name = '' AS name_empty, length(name)
  FROM csvpipe.read(:'basic')
    AS t(id int, ts timestamptz, name text, amount numeric(12,2), flag boolean)
 WHERE id IN (5, 6, 7);

-- the same rows, in the same order, as COPY loads
CREATE TABLE basic_copy (id int, ts timestamptz, name text, amount numeric(12,2), flag boolean);
COPY basic_copy FROM :'basic' WITH (FORMAT csv, HEADER true);
SELECT csv_rows(format('SELECT * FROM csvpipe.read(%L) AS t(id int, ts timestamptz, name text, amount numeric(12,2), flag boolean)', :'basic'))
     = csv_rows('SELECT * FROM basic_copy ORDER BY id') AS same_as_copy;
SELECT csv_rows('SELECT * FROM basic_copy ORDER BY id');

-- untyped access: every record with its physical line number
SELECT * FROM csvpipe.read_text(:'basic');
SELECT * FROM csvpipe.read_text(:'basic', header => false) LIMIT 2;

-- the file is streamed: LIMIT, quals and projections use the streaming
-- scan, and only the columns the query needs are converted
SELECT csv_explain(format('SELECT name FROM csvpipe.read(%L)
    AS t(id int, ts timestamptz, name text, amount numeric(12,2), flag boolean)
 WHERE id > 3 LIMIT 2', :'basic'));
-- count(*) needs no column: all are converted, so a count validates the file
SELECT csv_explain(format('SELECT count(*) FROM csvpipe.read(%L) AS t(id int, name text)', :'basic'));
SELECT name FROM csvpipe.read(:'basic')
    AS t(id int, ts timestamptz, name text, amount numeric(12,2), flag boolean)
 WHERE id > 3 LIMIT 2;
SELECT count(*), sum(amount), min(ts), max(ts), bool_or(flag)
  FROM csvpipe.read(:'basic')
    AS t(id int, ts timestamptz, name text, amount numeric(12,2), flag boolean);

-- a column that is not converted is not checked either (as file_fdw): the
-- name column holds text, but only id is used here
SELECT sum(id) FROM csvpipe.read(:'basic') AS t(id int, ts timestamptz, name int, amount numeric, flag boolean);

-- the value-per-call path (targetlist SRF, WITH ORDINALITY, whole-row
-- references) returns the same rows
SELECT csvpipe.read_text(:'basic', header => false) LIMIT 3;
SELECT * FROM ROWS FROM (csvpipe.read(:'basic')
    AS (id int, ts timestamptz, name text, amount numeric(12,2), flag boolean))
    WITH ORDINALITY AS t(id, ts, name, amount, flag, n)
 WHERE n <= 2;
SELECT csv_explain(format('SELECT t FROM csvpipe.read(%L) AS t(id int, name text)', :'basic'));
SELECT t FROM csvpipe.read(:'basic') AS t(id int, ts timestamptz, name text, amount numeric(12,2), flag boolean) WHERE id = 2;

-- joins, subqueries and LATERAL with a path from another table
SELECT b.id, r.name FROM basic_copy b
  JOIN csvpipe.read(:'basic') AS r(id int, ts timestamptz, name text, amount numeric(12,2), flag boolean)
    ON r.id = b.id
 WHERE b.id <= 2 ORDER BY 1;
CREATE TABLE files (path text);
INSERT INTO files VALUES (:'basic'), (:'data' || '/bom.csv');
SELECT f.path = :'basic' AS is_basic, count(*)
  FROM files f, LATERAL csvpipe.read_text(f.path) r
 GROUP BY 1 ORDER BY 1;

-- rescans (the inner side of a nested loop) read the file again
SET enable_hashjoin = off; SET enable_mergejoin = off; SET enable_material = off;
SELECT count(*) FROM generate_series(1, 3) g,
       csvpipe.read(:'basic') AS r(id int, ts timestamptz, name text, amount numeric(12,2), flag boolean)
 WHERE r.id = g;
RESET enable_hashjoin; RESET enable_mergejoin; RESET enable_material;

-- domains, arrays and typmods go through the column types' input functions
CREATE DOMAIN small_id AS int CHECK (VALUE < 5);
SELECT * FROM csvpipe.read(:'basic') AS t(id small_id, ts timestamptz, name varchar(30), amount numeric(5,1), flag boolean) LIMIT 3;
SELECT * FROM csv_try(format('SELECT * FROM csvpipe.read(%L) AS t(id small_id, ts timestamptz, name text, amount numeric, flag boolean)', :'basic'));
