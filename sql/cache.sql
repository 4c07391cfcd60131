--
-- The shared result cache of csvpipe.read / read_text (src/cache.c): the SQL
-- surface, with exact hit and miss counts.  test/t/060_cache.pl covers file
-- changes, versions, TTL, LRU eviction and concurrency.
--
\getenv abs_srcdir PG_ABS_SRCDIR
\set data :abs_srcdir '/test/data'
\set f :data '/cache_people.csv'
SET timezone = 'UTC';

-- a fresh file, with an mtime an hour back: a file modified within the
-- second before a read starts is read but not stored
COPY (SELECT i AS id, 'name ' || i AS name, i * 1.5 AS amount
        FROM generate_series(1, 1000) i) TO :'f' WITH (FORMAT csv, HEADER);
SELECT csv_try(format('COPY (SELECT 1 WHERE false) TO PROGRAM %L',
                      format('touch -d "1 hour ago" %s', :'f')));

-- start from an empty cache (earlier tests read files too)
SELECT csvpipe.cache_invalidate() >= 0 AS emptied;
SELECT csvpipe.cache_reset_stats();
SELECT hits, misses, evictions, invalidations, bytes_used, hit_ratio, entries, too_large
  FROM csvpipe.cache_stats;

-- a miss stores the rows, a repeat read hits
SELECT count(*), sum(id), max(name), sum(amount)
  FROM csvpipe.read(:'f') AS t(id int, name text, amount numeric);
SELECT hits, misses, entries, bytes_used > 0 AS uses_memory FROM csvpipe.cache_stats;
SELECT * FROM csvpipe.read(:'f') AS t(id int, name text, amount numeric) WHERE id > 997;
SELECT hits, misses, entries FROM csvpipe.cache_stats;
-- a query that uses fewer columns (so converts fewer) is served by it too
SELECT sum(amount) FROM csvpipe.read(:'f') AS t(id int, name text, amount numeric);
SELECT hits, misses, entries, hit_ratio FROM csvpipe.cache_stats;
-- a partly converted entry serves only queries that use no other columns
SELECT csvpipe.cache_invalidate(:'f');
SELECT sum(amount) FROM csvpipe.read(:'f') AS t(id int, name text, amount numeric);
SELECT sum(amount) FROM csvpipe.read(:'f') AS t(id int, name text, amount numeric);
SELECT columns FROM csvpipe.cache;
SELECT count(*) FROM csvpipe.read(:'f') AS t(id int, name text, amount numeric);
SELECT hits, misses, invalidations, entries FROM csvpipe.cache_stats;

-- EXPLAIN ANALYZE says what the cache did
CREATE FUNCTION cache_explain(q text) RETURNS SETOF text LANGUAGE plpgsql AS $$
DECLARE line text;
BEGIN
  FOR line IN EXECUTE 'EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) ' || q LOOP
    RETURN NEXT replace(line, current_setting('csvpipe_test.data'), '@data@');
  END LOOP;
END $$;
SELECT cache_explain(format('SELECT count(*) FROM csvpipe.read(%L) AS t(id int, name text, amount numeric)', :'f'));
SELECT csvpipe.cache_invalidate(:'f');
SELECT cache_explain(format('SELECT count(*) FROM csvpipe.read(%L) AS t(id int, name text, amount numeric)', :'f'));
SELECT cache_explain(format('SELECT count(*) FROM csvpipe.read(%L, cache => false) AS t(id int, name text, amount numeric)', :'f'));
SELECT hits, misses, invalidations, entries FROM csvpipe.cache_stats;

-- cache => false bypasses it: no hit, no miss
SELECT count(*) FROM csvpipe.read(:'f', cache => false) AS t(id int, name text, amount numeric);
SELECT hits, misses FROM csvpipe.cache_stats;

-- other options, other column types, and read_text are other entries
SELECT count(*) FROM csvpipe.read(:'f', skip_rows => 10) AS t(id int, name text, amount numeric);
SELECT count(*) FROM csvpipe.read(:'f') AS t(id bigint, name text, amount numeric);
SELECT count(*) FROM csvpipe.read(:'f') AS t(id int, name varchar(10), amount numeric);
SELECT count(*), max(line_no) FROM csvpipe.read_text(:'f');
SELECT count(*), max(line_no) FROM csvpipe.read_text(:'f');
SELECT hits, misses, entries FROM csvpipe.cache_stats;

-- the view, one row per entry
SELECT replace(path, :'data', '@data@') AS path, version, rows, hits, function, columns,
       bytes > 0 AS has_bytes, created_at <= last_used_at AS times_ok, expires_at
  FROM csvpipe.cache ORDER BY function, columns, rows;
SELECT DISTINCT options FROM csvpipe.cache ORDER BY 1;

-- LIMIT stops the read early: nothing is stored
SELECT csvpipe.cache_invalidate(:'f');
SELECT * FROM csvpipe.read(:'f') AS t(id int, name text, amount numeric) LIMIT 2;
SELECT hits, misses, entries FROM csvpipe.cache_stats;

-- neither does a read that fails; the session goes on
\set bad :data '/cache_bad.csv'
COPY (SELECT i::text AS id, CASE WHEN i = 900 THEN 'oops' ELSE i::text END AS amount
        FROM generate_series(1, 1000) i) TO :'bad' WITH (FORMAT csv, HEADER);
SELECT csv_try(format('COPY (SELECT 1 WHERE false) TO PROGRAM %L',
                      format('touch -d "1 hour ago" %s', :'bad')));
SELECT * FROM csv_try(format('SELECT count(*) FROM csvpipe.read(%L) AS t(id int, amount int)', :'bad'));
SELECT * FROM csv_try(format('SELECT count(*) FROM csvpipe.read(%L) AS t(id int, amount int)', :'bad'));
SELECT hits, misses, entries FROM csvpipe.cache_stats;

-- invalidate returns how many entries it removed; memory used goes back to 0
SELECT count(*) FROM csvpipe.read(:'f') AS t(id int, name text, amount numeric);
SELECT csvpipe.cache_invalidate(:'data' || '/nothing_here.csv');
SELECT csvpipe.cache_invalidate(:'f');
SELECT csvpipe.cache_invalidate(:'f');
SELECT count(*) FROM csvpipe.read(:'f') AS t(id int, name text, amount numeric);
SELECT count(*) FROM csvpipe.read_text(:'f');
SELECT csvpipe.cache_invalidate(:'data');
SELECT count(*) FROM csvpipe.read(:'f') AS t(id int, name text, amount numeric);
SELECT csvpipe.cache_invalidate();
SELECT hits, misses, invalidations, entries, bytes_used FROM csvpipe.cache_stats;

-- privileges: resetting the counters is for superusers (or whoever is
-- granted it), invalidating for roles that may read server files; the view
-- hides paths, sizes, row counts, options and columns from others
SELECT count(*) FROM csvpipe.read(:'f') AS t(id int, name text, amount numeric);
CREATE ROLE csv_cache_nobody;
SET ROLE csv_cache_nobody;
SELECT * FROM csv_try('SELECT csvpipe.cache_reset_stats()');
SELECT * FROM csv_try('SELECT csvpipe.cache_invalidate()');
SELECT * FROM csv_try(format('SELECT count(*) FROM csvpipe.read(%L) AS t(id int, name text, amount numeric)', :'f'));
SELECT path, rows FROM csvpipe.cache;
SELECT hits, misses, entries FROM csvpipe.cache_stats;
RESET ROLE;
DROP ROLE csv_cache_nobody;

-- the settings (csvpipe.cache_size etc. are set in postgresql.conf)
SELECT name, setting, unit, context FROM pg_settings
 WHERE name LIKE 'csvpipe.cache%' ORDER BY name;
SELECT * FROM csv_try('SET csvpipe.cache_size = ''1MB''');

-- reset_stats zeroes the counters, not the entries
SELECT csvpipe.cache_reset_stats();
SELECT hits, misses, evictions, invalidations, hit_ratio, entries FROM csvpipe.cache_stats;
SELECT csvpipe.cache_invalidate();
DROP FUNCTION cache_explain(text);
