--
-- csvpipe.load_serial and the insert path under it (src/load.c): a file is
-- loaded the way COPY FROM loads it.  Each case creates the same tables in
-- schema via_csvpipe and in schema via_copy, loads a file into the first
-- with csvpipe.load_serial and into the second with COPY FROM, and
-- compares rows, trigger side effects and errors (SQLSTATE, message,
-- detail; the context lines show where each names the line).
--
\getenv abs_srcdir PG_ABS_SRCDIR
\set data :abs_srcdir '/test/data'
SET timezone = 'UTC';
SET datestyle = 'ISO, YMD';

CREATE SCHEMA via_csvpipe;
CREATE SCHEMA via_copy;

-- in_both: run DDL once in each schema (@schema@ names the schema)
CREATE FUNCTION in_both(ddl text) RETURNS void LANGUAGE plpgsql AS $$
DECLARE s text; old text := current_setting('search_path');
BEGIN
  FOREACH s IN ARRAY ARRAY['via_csvpipe', 'via_copy'] LOOP
    PERFORM set_config('search_path', s || ', public', true);
    EXECUTE replace(ddl, '@schema@', s);
  END LOOP;
  PERFORM set_config('search_path', old, true);
END $$;

-- load_cmp: load a fixture into via_csvpipe.<t> with csvpipe.load_serial and
-- into via_copy.<t> with COPY FROM (same columns, header line skipped);
-- one row per loader with the rows loaded or the error, its context line,
-- and whether both outcomes are the same.
CREATE FUNCTION load_cmp(t text, file text, cols text[] DEFAULT NULL,
                         OUT loader text, OUT outcome text, OUT context text)
RETURNS SETOF record LANGUAGE plpgsql AS $$
DECLARE
  dir text := current_setting('csvpipe_test.data');
  path text := dir || '/' || file;
  n bigint; st text; msg text; det text; ctx text; prev text;
BEGIN
  FOREACH loader IN ARRAY ARRAY['csvpipe', 'copy'] LOOP
    context := NULL;
    BEGIN
      IF loader = 'csvpipe' THEN
        EXECUTE format('SELECT csvpipe.load_serial(%L, %L, %L)',
                       path, 'via_csvpipe.' || quote_ident(t), cols) INTO n;
      ELSE
        EXECUTE format('COPY via_copy.%I %s FROM %L WITH (FORMAT csv, HEADER true)', t,
                       CASE WHEN cols IS NULL THEN ''
                            ELSE '(' || (SELECT string_agg(quote_ident(c), ', ') FROM unnest(cols) c) || ')' END,
                       path);
        GET DIAGNOSTICS n = ROW_COUNT;
      END IF;
      outcome := n || ' rows';
    EXCEPTION WHEN others THEN
      GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, msg = MESSAGE_TEXT,
                              det = PG_EXCEPTION_DETAIL, ctx = PG_EXCEPTION_CONTEXT;
      outcome := 'ERROR ' || st || ': ' || replace(msg, dir, '@data@');
      IF det <> '' THEN outcome := outcome || ' DETAIL: ' || det; END IF;
      ctx := split_part(ctx, E'\n', 1);
      IF ctx LIKE 'csvpipe.%' OR ctx LIKE 'COPY %' THEN
        context := replace(ctx, dir, '@data@');
      END IF;
    END;
    RETURN NEXT;
    IF prev IS NULL THEN prev := outcome; END IF;
  END LOOP;
  loader := 'same?'; outcome := (prev = outcome)::text; context := NULL;
  RETURN NEXT;
END $$;

-- same_rows: both tables hold the same rows (in the order given)
CREATE FUNCTION same_rows(t text, order_by text DEFAULT 'id') RETURNS text LANGUAGE sql AS $$
  SELECT CASE WHEN a = b THEN 'same: ' || a ELSE 'DIFFERENT: ' || a || ' vs ' || b END
    FROM csv_rows(format('SELECT * FROM via_csvpipe.%I ORDER BY %s', t, order_by)) a,
         csv_rows(format('SELECT * FROM via_copy.%I ORDER BY %s', t, order_by)) b
$$;

-- what triggers did, per schema, in order
CREATE TABLE audit (seq serial, sch text, tbl text, trg text, lvl text, id int, note text);
CREATE FUNCTION audit_of(s text) RETURNS SETOF text LANGUAGE sql AS $$
  SELECT format('%s %s %s %s %s', tbl, trg, lvl, coalesce(id::text, '-'), coalesce(note, '-'))
    FROM audit WHERE sch = s ORDER BY seq
$$;
CREATE FUNCTION same_audit() RETURNS text LANGUAGE sql AS $$
  SELECT CASE WHEN a IS NOT DISTINCT FROM b THEN 'same audit: ' || coalesce(a, '(none)')
              ELSE 'DIFFERENT audit: ' || coalesce(a, '(none)') || ' vs ' || coalesce(b, '(none)') END
    FROM (SELECT string_agg(x, ' | ') FROM audit_of('via_csvpipe') x) ca(a),
         (SELECT string_agg(x, ' | ') FROM audit_of('via_copy') x) cb(b)
$$;
CREATE FUNCTION log_row() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO audit (sch, tbl, trg, lvl, id, note)
  VALUES (TG_TABLE_SCHEMA, TG_TABLE_NAME, TG_NAME, TG_WHEN || ' ' || TG_LEVEL, NEW.id,
          coalesce(to_jsonb(NEW) ->> 'name', to_jsonb(NEW) ->> 'amount'));
  RETURN NEW;
END $$;
CREATE FUNCTION log_stmt() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE n bigint;
BEGIN
  EXECUTE format('SELECT count(*) FROM %I.%I', TG_TABLE_SCHEMA, TG_TABLE_NAME) INTO n;
  INSERT INTO audit (sch, tbl, trg, lvl, note)
  VALUES (TG_TABLE_SCHEMA, TG_TABLE_NAME, TG_NAME, TG_WHEN || ' ' || TG_LEVEL, 'rows in table: ' || n);
  RETURN NULL;
END $$;
CREATE FUNCTION log_new_table() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO audit (sch, tbl, trg, lvl, note)
  SELECT TG_TABLE_SCHEMA, TG_TABLE_NAME, TG_NAME, TG_WHEN || ' ' || TG_LEVEL,
         format('new rows: %s, ids %s..%s', count(*), min(id), max(id)) FROM new_rows;
  RETURN NULL;
END $$;

-- a generated file of 2500 rows (several multi-insert batches), and one
-- with a duplicate key in its third batch
SELECT csv_try(format('COPY (SELECT g AS id, ''n'' || g AS name, g / 100.0 AS amount FROM generate_series(1, 2500) g) TO %L WITH (FORMAT csv, HEADER true)',
                      :'data' || '/load_gen.csv'));
SELECT csv_try(format('COPY (SELECT id, name, amount FROM (SELECT g AS id, ''n'' || g AS name, g / 100.0 AS amount, g AS o FROM generate_series(1, 2500) g UNION ALL SELECT 1234, ''again'', 0, 2345.5) s ORDER BY o) TO %L WITH (FORMAT csv, HEADER true)',
                      :'data' || '/load_gen_dup.csv'));

-- 1. plain table: every column, in order
SELECT in_both($$CREATE TABLE plain (id int, ts timestamptz, name text, amount numeric(12,2), flag boolean)$$);
SELECT * FROM load_cmp('plain', 'basic.csv');
SELECT same_rows('plain');
SELECT * FROM via_csvpipe.plain ORDER BY id;
-- a column list in another order than the table's
SELECT in_both($$CREATE TABLE people (name text, amount numeric, id int, note text)$$);
SELECT * FROM load_cmp('people', 'load_people.csv', ARRAY['id', 'name', 'amount']);
SELECT same_rows('people');
-- header => 'match' checks the header against the target column names
TRUNCATE via_csvpipe.people;
SELECT csvpipe.load_serial(:'data' || '/load_people.csv', 'via_csvpipe.people',
                           ARRAY['id', 'name', 'amount'], header => 'match');
SELECT csv_try(format('SELECT csvpipe.load_serial(%L, %L, ARRAY[''id'', ''amount'', ''name''], header => ''match'')',
                      :'data' || '/load_people.csv', 'via_csvpipe.people'));
-- other options reach the reader: no header, skip_rows, null_string
TRUNCATE via_csvpipe.people;
SELECT csvpipe.load_serial(:'data' || '/load_people.csv', 'via_csvpipe.people',
                           ARRAY['id', 'name', 'note'], header => false, skip_rows => 2,
                           null_string => 'eve');
SELECT * FROM via_csvpipe.people ORDER BY id;
-- an empty file loads nothing
SELECT csvpipe.load_serial(:'data' || '/empty.csv', 'via_csvpipe.people');
-- rows are visible in the same transaction, and go away with it
BEGIN;
SELECT csvpipe.load_serial(:'data' || '/load_people.csv', 'via_csvpipe.people', ARRAY['id', 'name', 'amount']);
SELECT count(*) FROM via_csvpipe.people;
ROLLBACK;
SELECT count(*) FROM via_csvpipe.people;
-- a table created in the same transaction
BEGIN;
CREATE TABLE via_csvpipe.fresh (id int, name text, amount numeric);
SELECT csvpipe.load_serial(:'data' || '/load_gen.csv', 'via_csvpipe.fresh');
SELECT count(*), sum(id), sum(amount) FROM via_csvpipe.fresh;
COMMIT;

-- 2. primary key: rows over several batches; a duplicate in the file and a
-- key already in the table are unique violations naming the line
SELECT in_both($$CREATE TABLE pk (id int PRIMARY KEY, name text, amount numeric)$$);
SELECT * FROM load_cmp('pk', 'load_gen.csv');
SELECT same_rows('pk');
SELECT * FROM load_cmp('pk', 'load_people.csv');
SELECT in_both($$TRUNCATE pk$$);
SELECT * FROM load_cmp('pk', 'load_dup.csv');
SELECT * FROM load_cmp('pk', 'load_gen_dup.csv');
SELECT count(*) FROM via_csvpipe.pk;
-- a row that table_multi_insert itself cannot write: the error names the
-- lines of the batch
SELECT in_both($$CREATE TABLE wide (id int, big text)$$);
SELECT in_both($$ALTER TABLE wide ALTER COLUMN big SET STORAGE PLAIN$$);
SELECT csv_try(format('COPY (SELECT g, CASE WHEN g = 3 THEN repeat(''x'', 9000) ELSE ''small'' END FROM generate_series(1, 4) g) TO %L WITH (FORMAT csv, HEADER true)',
                      :'data' || '/load_toobig.csv'));
SELECT * FROM load_cmp('wide', 'load_toobig.csv');

-- 3. CHECK constraint
SELECT in_both($$CREATE TABLE chk (id int, name text, amount numeric CONSTRAINT amount_not_negative CHECK (amount >= 0))$$);
SELECT * FROM load_cmp('chk', 'load_check.csv');
SELECT * FROM load_cmp('chk', 'load_people.csv');
SELECT same_rows('chk');

-- 4. NOT NULL
SELECT in_both($$CREATE TABLE nn (id int, name text NOT NULL, amount numeric)$$);
SELECT * FROM load_cmp('nn', 'load_notnull.csv');
SELECT * FROM load_cmp('nn', 'load_people.csv');
SELECT same_rows('nn');

-- 5. defaults, identity and serial columns not in the file
SELECT in_both($$CREATE TABLE defs (id int GENERATED ALWAYS AS IDENTITY, name text,
                                    created date DEFAULT '2024-01-01', n bigserial,
                                    note text DEFAULT 'none', code text)$$);
SELECT * FROM load_cmp('defs', 'load_names.csv', ARRAY['name']);
SELECT same_rows('defs');
SELECT * FROM via_csvpipe.defs ORDER BY id;
-- a volatile default that reads the table: rows are inserted one at a time
-- (as COPY does), so each row sees the ones before it
CREATE FUNCTION rows_in(s text, t text) RETURNS bigint LANGUAGE plpgsql VOLATILE AS $$
DECLARE n bigint;
BEGIN
  EXECUTE format('SELECT count(*) FROM %I.%I', s, t) INTO n;
  RETURN n;
END $$;
SELECT in_both($$CREATE TABLE vdef (name text, seen bigint DEFAULT rows_in('@schema@', 'vdef'))$$);
SELECT * FROM load_cmp('vdef', 'load_names.csv', ARRAY['name']);
SELECT same_rows('vdef', 'name');
SELECT * FROM via_csvpipe.vdef ORDER BY name;
-- generated identity columns may be given in the file, as with COPY
SELECT in_both($$CREATE TABLE ident (id int GENERATED ALWAYS AS IDENTITY, name text)$$);
SELECT * FROM load_cmp('ident', 'load_idname.csv');
SELECT same_rows('ident');

-- 6. stored generated column: computed, and cannot be a target column
SELECT in_both($$CREATE TABLE gen (id int, name text, amount numeric,
                                   doubled numeric GENERATED ALWAYS AS (amount * 2) STORED)$$);
SELECT * FROM load_cmp('gen', 'load_people.csv');
SELECT same_rows('gen');
SELECT id, amount, doubled FROM via_csvpipe.gen ORDER BY id;
SELECT * FROM load_cmp('gen', 'load_people.csv', ARRAY['id', 'name', 'doubled']);

-- column lists COPY refuses
SELECT * FROM load_cmp('plain', 'load_people.csv', ARRAY['id', 'nosuch', 'amount']);
SELECT * FROM load_cmp('plain', 'load_people.csv', ARRAY['id', 'name', 'id']);
SELECT csv_try(format('SELECT csvpipe.load_serial(%L, %L, ARRAY[]::text[])', :'data' || '/load_people.csv', 'via_csvpipe.plain'));
SELECT csv_try(format('SELECT csvpipe.load_serial(%L, %L, ARRAY[''id'', NULL])', :'data' || '/load_people.csv', 'via_csvpipe.plain'));
SELECT csv_try(format('SELECT csvpipe.load_serial(%L, NULL)', :'data' || '/load_people.csv'));
-- more fields in the file than target columns
SELECT csv_try(format('SELECT csvpipe.load_serial(%L, %L, ARRAY[''id'', ''name''])', :'data' || '/load_people.csv', 'via_csvpipe.plain'));

-- 7. BEFORE ROW triggers: one changes rows, one skips some; they see the
-- rows inserted before (rows go in one at a time, as with COPY)
CREATE FUNCTION br_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  NEW.name := upper(NEW.name);
  NEW.note := 'seen ' || rows_in(TG_TABLE_SCHEMA, TG_TABLE_NAME);
  RETURN NEW;
END $$;
CREATE FUNCTION br_skip_even() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF NEW.id % 2 = 0 THEN RETURN NULL; END IF;
  RETURN NEW;
END $$;
SELECT in_both($$CREATE TABLE brt (id int PRIMARY KEY, name text, amount numeric, note text)$$);
SELECT in_both($$CREATE TRIGGER a_change BEFORE INSERT ON brt FOR EACH ROW EXECUTE FUNCTION br_change()$$);
SELECT in_both($$CREATE TRIGGER b_skip BEFORE INSERT ON brt FOR EACH ROW EXECUTE FUNCTION br_skip_even()$$);
SELECT * FROM load_cmp('brt', 'load_people.csv', ARRAY['id', 'name', 'amount']);
SELECT same_rows('brt');
SELECT * FROM via_csvpipe.brt ORDER BY id;

-- 8. AFTER ROW triggers writing to an audit table, statement triggers
-- (once per load, also for an empty file), a transition table
SELECT in_both($$CREATE TABLE trg (id int PRIMARY KEY, name text, amount numeric)$$);
SELECT in_both($$CREATE TRIGGER ar AFTER INSERT ON trg FOR EACH ROW EXECUTE FUNCTION log_row()$$);
SELECT in_both($$CREATE TRIGGER bs BEFORE INSERT ON trg FOR EACH STATEMENT EXECUTE FUNCTION log_stmt()$$);
SELECT in_both($$CREATE TRIGGER as_ AFTER INSERT ON trg FOR EACH STATEMENT EXECUTE FUNCTION log_stmt()$$);
SELECT in_both($$CREATE TRIGGER as_new AFTER INSERT ON trg REFERENCING NEW TABLE AS new_rows
                 FOR EACH STATEMENT EXECUTE FUNCTION log_new_table()$$);
SELECT * FROM load_cmp('trg', 'load_people.csv');
SELECT same_rows('trg');
SELECT same_audit();
SELECT audit_of('via_csvpipe');
TRUNCATE audit;
SELECT * FROM load_cmp('trg', 'empty.csv');
SELECT same_audit();
TRUNCATE audit;
-- a failed load leaves no trace, triggers' included
SELECT * FROM load_cmp('trg', 'load_dup.csv');
SELECT same_audit();
-- statement triggers fire once for 2500 rows in three batches
SELECT in_both($$CREATE TABLE trg_big (id int, name text, amount numeric)$$);
SELECT in_both($$CREATE TRIGGER bs BEFORE INSERT ON trg_big FOR EACH STATEMENT EXECUTE FUNCTION log_stmt()$$);
SELECT in_both($$CREATE TRIGGER as_ AFTER INSERT ON trg_big FOR EACH STATEMENT EXECUTE FUNCTION log_stmt()$$);
SELECT in_both($$CREATE TRIGGER as_new AFTER INSERT ON trg_big REFERENCING NEW TABLE AS new_rows
                 FOR EACH STATEMENT EXECUTE FUNCTION log_new_table()$$);
SELECT * FROM load_cmp('trg_big', 'load_gen.csv');
SELECT same_rows('trg_big');
SELECT same_audit();
TRUNCATE audit;

-- foreign keys are checked at the end of the load, as at the end of COPY
SELECT in_both($$CREATE TABLE parent (id int PRIMARY KEY)$$);
SELECT in_both($$INSERT INTO parent VALUES (1), (2)$$);
SELECT in_both($$CREATE TABLE child (id int, parent_id int REFERENCES parent)$$);
SELECT * FROM load_cmp('child', 'load_fk.csv');
SELECT count(*) FROM via_csvpipe.child;

-- 9. partitioned target: rows routed to partitions; partition us has
-- another column order (and a dropped column), apac has a BEFORE ROW
-- trigger (its rows go in one at a time, the others in batches)
SELECT in_both($$CREATE TABLE parts (id int, region text, amount numeric) PARTITION BY LIST (region)$$);
SELECT in_both($$CREATE TABLE parts_eu PARTITION OF parts FOR VALUES IN ('eu')$$);
SELECT in_both($$CREATE TABLE parts_us (junk int, amount numeric, region text, id int)$$);
SELECT in_both($$ALTER TABLE parts_us DROP COLUMN junk$$);
SELECT in_both($$ALTER TABLE parts ATTACH PARTITION parts_us FOR VALUES IN ('us')$$);
SELECT in_both($$CREATE TABLE parts_apac PARTITION OF parts FOR VALUES IN ('apac')$$);
CREATE FUNCTION br_amount() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  NEW.amount := NEW.amount * 100 + rows_in(TG_TABLE_SCHEMA, 'parts');
  RETURN NEW;
END $$;
SELECT in_both($$CREATE TRIGGER br BEFORE INSERT ON parts_apac FOR EACH ROW EXECUTE FUNCTION br_amount()$$);
SELECT in_both($$CREATE TRIGGER ar AFTER INSERT ON parts_us FOR EACH ROW EXECUTE FUNCTION log_row()$$);
SELECT * FROM load_cmp('parts', 'load_parts.csv');
SELECT same_rows('parts');
SELECT (SELECT relname FROM pg_class c WHERE c.oid = p.tableoid) AS part, * FROM via_csvpipe.parts p ORDER BY id;
SELECT csv_rows('SELECT (SELECT relname FROM pg_class c WHERE c.oid = p.tableoid), id FROM via_csvpipe.parts p ORDER BY id')
     = csv_rows('SELECT (SELECT relname FROM pg_class c WHERE c.oid = p.tableoid), id FROM via_copy.parts p ORDER BY id')
    AS same_partitions;
SELECT same_audit();
TRUNCATE audit;
-- no partition for a row
SELECT * FROM load_cmp('parts', 'load_parts_bad.csv');
-- straight into a partition: its partition constraint is checked
SELECT * FROM load_cmp('parts_eu', 'load_parts.csv');
-- many partitions: more than the 32 partition buffers kept at a time
SELECT in_both($$CREATE TABLE hp (id int, name text, amount numeric) PARTITION BY HASH (id)$$);
SELECT count(in_both(format('CREATE TABLE hp_%s PARTITION OF hp FOR VALUES WITH (MODULUS 40, REMAINDER %s)', r, r)))
  FROM generate_series(0, 39) r;
SELECT * FROM load_cmp('hp', 'load_gen.csv');
SELECT same_rows('hp');
SELECT count(DISTINCT tableoid) AS partitions_used FROM via_csvpipe.hp;
SELECT bool_and(a.n = b.n) AS same_per_partition
  FROM (SELECT tableoid::regclass::text, count(*) n FROM via_csvpipe.hp GROUP BY 1) a(p, n)
  JOIN (SELECT tableoid::regclass::text, count(*) n FROM via_copy.hp GROUP BY 1) b(p, n)
    ON replace(a.p, 'via_csvpipe.', '') = replace(b.p, 'via_copy.', '');

-- 10. domain column: domain checks run on input, for NULL too
CREATE DOMAIN posint AS int CHECK (VALUE > 0);
CREATE DOMAIN nn_text AS text NOT NULL;
SELECT in_both($$CREATE TABLE dom (id int, qty posint)$$);
SELECT * FROM load_cmp('dom', 'load_domain.csv');
SELECT same_rows('dom');
SELECT * FROM load_cmp('dom', 'load_domain_bad.csv');
SELECT in_both($$CREATE TABLE dom2 (id int, name nn_text, amount numeric)$$);
SELECT * FROM load_cmp('dom2', 'load_notnull.csv');

-- 11. a view with an INSTEAD OF INSERT trigger
SELECT in_both($$CREATE TABLE vbase (id int, name text, amount numeric)$$);
SELECT in_both($$CREATE VIEW vw AS SELECT id, name, amount FROM vbase$$);
CREATE FUNCTION vw_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  EXECUTE format('INSERT INTO %I.vbase VALUES ($1, $2, $3 * 10)', TG_TABLE_SCHEMA)
    USING NEW.id, NEW.name, NEW.amount;
  RETURN NEW;
END $$;
SELECT in_both($$CREATE TRIGGER ins INSTEAD OF INSERT ON vw FOR EACH ROW EXECUTE FUNCTION vw_insert()$$);
SELECT * FROM load_cmp('vw', 'load_people.csv');
SELECT same_rows('vbase');

-- relations that cannot be loaded into (COPY's rules, csvpipe's words)
CREATE VIEW via_csvpipe.plainview AS SELECT * FROM via_csvpipe.plain;
CREATE MATERIALIZED VIEW via_csvpipe.mv AS SELECT 1 AS id;
CREATE SEQUENCE via_csvpipe.seq;
CREATE TYPE via_csvpipe.comp AS (id int);
SELECT csv_try(format('SELECT csvpipe.load_serial(%L, %L)', :'data' || '/basic.csv', r))
  FROM unnest(ARRAY['via_csvpipe.plainview', 'via_csvpipe.mv', 'via_csvpipe.seq', 'via_csvpipe.comp']) r;
-- a read-only transaction
BEGIN READ ONLY;
SELECT csv_try(format('SELECT csvpipe.load_serial(%L, %L)', :'data' || '/basic.csv', 'via_csvpipe.plain'));
ROLLBACK;

-- 12. a foreign table, through its FDW (postgres_fdw over a loopback)
CREATE EXTENSION postgres_fdw;
DO $d$ BEGIN
  EXECUTE format('CREATE SERVER loopback FOREIGN DATA WRAPPER postgres_fdw OPTIONS (dbname %L, port %L)',
                 current_database(), current_setting('port'));
END $d$;
CREATE USER MAPPING FOR CURRENT_USER SERVER loopback;
SELECT in_both($$CREATE TABLE ft_data (id int PRIMARY KEY, name text, amount numeric)$$);
SELECT in_both($$CREATE FOREIGN TABLE ft (id int, name text, amount numeric)
                 SERVER loopback OPTIONS (schema_name '@schema@', table_name 'ft_data')$$);
SELECT * FROM load_cmp('ft', 'load_people.csv');
SELECT same_rows('ft_data');

-- 13. privileges: INSERT on the target columns, as COPY checks them; row-
-- level security refused as COPY FROM refuses it
CREATE ROLE csv_loader IN ROLE pg_read_server_files;
GRANT USAGE ON SCHEMA via_csvpipe, via_copy TO csv_loader;
SELECT in_both($$CREATE TABLE perm (id int, name text, amount numeric)$$);
SET ROLE csv_loader;
SELECT * FROM load_cmp('perm', 'load_people.csv');
RESET ROLE;
SELECT in_both($$GRANT INSERT (id, name) ON perm TO csv_loader$$);
SET ROLE csv_loader;
SELECT * FROM load_cmp('perm', 'load_people.csv');
SELECT * FROM load_cmp('perm', 'load_idname.csv', ARRAY['id', 'name']);
RESET ROLE;
SELECT same_rows('perm');
SELECT in_both($$ALTER TABLE perm ENABLE ROW LEVEL SECURITY$$);
SELECT in_both($$CREATE POLICY p ON perm FOR ALL USING (true)$$);
SET ROLE csv_loader;
SELECT * FROM load_cmp('perm', 'load_idname.csv', ARRAY['id', 'name']);
RESET ROLE;
-- without pg_read_server_files the file cannot be read
CREATE ROLE csv_noread;
GRANT USAGE ON SCHEMA via_csvpipe TO csv_noread;
GRANT INSERT ON via_csvpipe.perm TO csv_noread;
SET ROLE csv_noread;
SELECT csv_try(format('SELECT csvpipe.load_serial(%L, %L)', :'data' || '/load_idname.csv', 'via_csvpipe.perm'));
RESET ROLE;

-- bad input: the reader's and converter's errors name the file, line and column
SELECT * FROM load_cmp('plain', 'bad_value.csv', ARRAY['id', 'name', 'amount']);
SELECT * FROM load_cmp('plain', 'no_such_file.csv');

SET client_min_messages = warning;
DROP SCHEMA via_csvpipe CASCADE;
DROP SCHEMA via_copy CASCADE;
RESET client_min_messages;
DROP USER MAPPING FOR CURRENT_USER SERVER loopback;
DROP SERVER loopback;
DROP EXTENSION postgres_fdw;
DROP ROLE csv_loader;
DROP ROLE csv_noread;
