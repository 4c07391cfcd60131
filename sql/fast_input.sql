--
-- src/fastinput.c reads the common shapes of timestamptz, timestamp, date
-- and boolean values itself.  Whatever the shape, every value must be what
-- the type's input function makes of it: 20000 generated values in shapes
-- the fast path takes and shapes it leaves to the input function, under two
-- TimeZone and DateStyle settings, compared with a cast of the same text.
--
\getenv abs_srcdir PG_ABS_SRCDIR
\set fast :abs_srcdir '/test/data/fast_input.csv'
\set bad :abs_srcdir '/test/data/fast_input_bad.csv'

CREATE TEMP TABLE fast_src AS
SELECT g AS id,
       day || sep || tod || frac || off AS tstz,
       day || sep || tod || frac || (CASE WHEN g % 7 = 0 THEN off ELSE '' END) AS ts,
       day AS d,
       (ARRAY['t', 'f', 'true', 'false', 'TRUE', 'yes', '0', '1', ' t', 'on'])[1 + g % 10] AS b
  FROM (SELECT g,
               to_char(v, 'YYYY-MM-DD') AS day,
               (ARRAY[' ', 'T'])[1 + abs(hashint4(g + 2)) % 2] AS sep,
               to_char(v, 'HH24:MI:SS') AS tod,
               (ARRAY['', '.5', '.123456', '.000001', '.1234567', '.12', '.999999'])[1 + abs(hashint4(g + 3)) % 7] AS frac,
               (ARRAY['+00', '-05', '+05:30', '-0930', '+14', '', 'Z', ' UTC', '+15:59',
                      '-03:00', '+0000', '-12:45'])[1 + abs(hashint4(g + 4)) % 12] AS off
          FROM (SELECT g, timestamp '0001-01-01'
                            + (abs(hashint4(g)) % 3652000) * interval '1 day'
                            + (abs(hashint4(g + 1)) % 86400) * interval '1 second' AS v
                  FROM generate_series(1, 20000) g) r) s;
-- edge cases: leap days, the last day of months, year 1 and 9999, midnight
INSERT INTO fast_src VALUES
  (20001, '2024-02-29 00:00:00+00', '2024-02-29 23:59:59.999999', '2024-02-29', 'false'),
  (20002, '0001-01-01 00:00:00+00', '0001-01-01 00:00:00', '0001-01-01', 'f'),
  (20003, '9999-12-31 23:59:59.999999-15:59', '9999-12-31 23:59:59.999999', '9999-12-31', 't'),
  (20004, '2000-02-29 12:00:00+01', '1900-02-28 12:00:00', '2000-02-29', 'true'),
  (20005, '2023-04-30 24:00:00+00', '2023-06-30 23:59:60', '2023-01-31', 'FALSE'),
  (20006, '1999-12-31 23:59:59.9999995+00', '1999-12-31T23:59:59', '1999-12-31', 'y'),
  (20007, '2023-03-12 02:30:00', '2023-11-05 01:30:00-04', '2023-03-12', 'off'),
  (20008, 'infinity', '-infinity', 'epoch', 'no'),
  (20009, '2023-06-01 12:00:00 America/New_York', '2023-06-01 12:00:00 +02', '99999-01-01', '1');
COPY (SELECT id, tstz, ts, d, b FROM fast_src ORDER BY id) TO :'fast' WITH (FORMAT csv, HEADER);

CREATE FUNCTION fast_mismatches(OUT rows bigint, OUT mismatches bigint) LANGUAGE sql AS $$
  SELECT count(*),
         count(*) FILTER (WHERE r.tstz IS DISTINCT FROM s.tstz::timestamptz
                             OR r.ts IS DISTINCT FROM s.ts::timestamp
                             OR r.d IS DISTINCT FROM s.d::date
                             OR r.b IS DISTINCT FROM s.b::boolean)
    FROM csvpipe.read(current_setting('fast.file'))
           AS r(id int, tstz timestamptz, ts timestamp, d date, b boolean)
    JOIN fast_src s USING (id)
$$;
SELECT set_config('fast.file', :'fast', false) IS NOT NULL AS file_set;

SET TimeZone = 'UTC';
SET DateStyle = 'ISO, MDY';
SELECT * FROM fast_mismatches();
SET TimeZone = 'America/New_York';
SET DateStyle = 'SQL, DMY';
SELECT * FROM fast_mismatches();
-- the same through parallel workers
SELECT count(*) AS rows,
       count(*) FILTER (WHERE r.tstz IS DISTINCT FROM s.tstz::timestamptz
                           OR r.ts IS DISTINCT FROM s.ts::timestamp
                           OR r.d IS DISTINCT FROM s.d::date) AS mismatches
  FROM csvpipe.read(:'fast', workers => 2, chunk_size => 65536)
         AS r(id int, tstz timestamptz, ts timestamp, d date, b boolean)
  JOIN fast_src s USING (id);
-- a typmod rounds as the input function does
SELECT count(*) FILTER (WHERE r.tstz IS DISTINCT FROM s.tstz::timestamptz(0)) AS mismatches
  FROM csvpipe.read(:'fast') AS r(id int, tstz timestamptz(0), ts text, d text, b text)
  JOIN fast_src s USING (id);
RESET TimeZone;
RESET DateStyle;

-- values no input function accepts: the input function's own errors
COPY (SELECT * FROM (VALUES (1, '2023-02-29 10:00:00+00'), (2, '2023-13-01 10:00:00+00'),
                            (3, '2023-01-01 10:00:00+16'), (4, '2023-01-01 25:00:00+00'),
                            (5, '2023-01-01 10:00:00.5+00')) v(id, v))
  TO :'bad' WITH (FORMAT csv, HEADER);
SELECT * FROM csvpipe.read(:'bad', on_error => 'skip') AS t(id int, v timestamptz);
SELECT * FROM csvpipe.read(:'bad', on_error => 'skip') AS t(id int, v date);
SELECT csv_try(format('SELECT * FROM csvpipe.read(%L) AS t(id int, v timestamptz)', :'bad'));
DROP FUNCTION fast_mismatches();
