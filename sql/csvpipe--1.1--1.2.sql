/* csvpipe--1.1--1.2.sql -- upgrade csvpipe 1.1 to 1.2 (ALTER EXTENSION csvpipe UPDATE) */

-- complain if script is sourced in psql, rather than via ALTER EXTENSION
\echo Use "ALTER EXTENSION csvpipe UPDATE TO '1.2'" to load this file. \quit

-- Every change here is mirrored in csvpipe--1.2.sql (fresh installs);
-- test/t/110_upgrade.pl compares 1.0 + both upgrades with a fresh install.
-- csvpipe--1.0.sql and csvpipe--1.1.sql are released and frozen: new
-- objects and changed signatures go here and in 1.2.sql only.  Objects are
-- schema-qualified; new table columns go last (where ADD COLUMN puts them).

-- ---- options (issue 13): header's type names the option in its errors ----
-- csvpipe.header_mode was an enum, whose input error named neither the
-- option nor its valid values.  It is now a base type whose input function
-- (src/csv/options.c) does, with the same name, values and implicit cast
-- from boolean; the functions that take it are dropped and created again
-- with the same signatures, load, submit and load_serial with match and
-- extra_columns (columns by name) at the end.
DROP FUNCTION csvpipe.read(text, text, text, text, csvpipe.header_mode, text, text, bigint, int, boolean, bigint, text, boolean);
DROP FUNCTION csvpipe.read_text(text, text, text, text, csvpipe.header_mode, text, text, bigint, int, boolean, bigint, text, boolean);
DROP FUNCTION csvpipe.load(text, regclass, text[], int, text, text, text, csvpipe.header_mode, text, text, bigint, text, bigint, text, bigint, boolean, boolean, boolean);
DROP FUNCTION csvpipe.submit(text, regclass, text[], int, text, text, text, csvpipe.header_mode, text, text, bigint, text, bigint, text, bigint, int, boolean, boolean);
DROP FUNCTION csvpipe.load_serial(text, regclass, text[], text, text, text, csvpipe.header_mode, text, text, bigint);
DROP CAST (boolean AS csvpipe.header_mode);
DROP FUNCTION csvpipe.header_mode(boolean);
DROP TYPE csvpipe.header_mode;

CREATE TYPE csvpipe.header_mode;

CREATE FUNCTION csvpipe.header_mode_in(cstring)
RETURNS csvpipe.header_mode
AS 'MODULE_PATHNAME', 'csvpipe_header_mode_in'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

CREATE FUNCTION csvpipe.header_mode_out(csvpipe.header_mode)
RETURNS cstring
AS 'MODULE_PATHNAME', 'csvpipe_header_mode_out'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

CREATE TYPE csvpipe.header_mode (
    INPUT = csvpipe.header_mode_in,
    OUTPUT = csvpipe.header_mode_out,
    INTERNALLENGTH = 4,
    PASSEDBYVALUE,
    ALIGNMENT = int4);

CREATE FUNCTION csvpipe.header_mode(boolean)
RETURNS csvpipe.header_mode
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
RETURN CASE WHEN $1 THEN 'true'::csvpipe.header_mode
            ELSE 'false'::csvpipe.header_mode END;

CREATE CAST (boolean AS csvpipe.header_mode)
    WITH FUNCTION csvpipe.header_mode(boolean) AS IMPLICIT;

CREATE FUNCTION csvpipe.read(
    path text,
    delimiter text DEFAULT ',',
    quote text DEFAULT '"',
    escape text DEFAULT NULL,
    header csvpipe.header_mode DEFAULT 'true',
    null_string text DEFAULT '',
    encoding text DEFAULT NULL,
    skip_rows bigint DEFAULT 0,
    workers int DEFAULT NULL,
    ordered boolean DEFAULT true,
    chunk_size bigint DEFAULT NULL,
    on_error text DEFAULT 'stop',
    cache boolean DEFAULT true)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'csvpipe_read'
LANGUAGE C VOLATILE
SUPPORT csvpipe.read_support;

COMMENT ON FUNCTION csvpipe.read(text, text, text, text, csvpipe.header_mode, text, text, bigint, int, boolean, bigint, text, boolean)
IS 'stream a CSV file on the server as rows typed by the column definition list';

CREATE FUNCTION csvpipe.read_text(
    path text,
    delimiter text DEFAULT ',',
    quote text DEFAULT '"',
    escape text DEFAULT NULL,
    header csvpipe.header_mode DEFAULT 'true',
    null_string text DEFAULT '',
    encoding text DEFAULT NULL,
    skip_rows bigint DEFAULT 0,
    workers int DEFAULT NULL,
    ordered boolean DEFAULT true,
    chunk_size bigint DEFAULT NULL,
    on_error text DEFAULT 'stop',
    cache boolean DEFAULT true,
    OUT line_no bigint,
    OUT fields text[])
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'csvpipe_read_text'
LANGUAGE C VOLATILE
SUPPORT csvpipe.read_support;

COMMENT ON FUNCTION csvpipe.read_text(text, text, text, text, csvpipe.header_mode, text, text, bigint, int, boolean, bigint, text, boolean)
IS 'stream a CSV file on the server as (line_no, fields text[]) rows';

CREATE FUNCTION csvpipe.load(
    path text,
    target regclass,
    columns text[] DEFAULT NULL,
    workers int DEFAULT NULL,
    delimiter text DEFAULT ',',
    quote text DEFAULT '"',
    escape text DEFAULT NULL,
    header csvpipe.header_mode DEFAULT 'true',
    null_string text DEFAULT '',
    encoding text DEFAULT NULL,
    skip_rows bigint DEFAULT 0,
    mode text DEFAULT 'transaction',
    chunk_size bigint DEFAULT NULL,
    on_error text DEFAULT 'stop',
    max_errors bigint DEFAULT NULL,
    progress boolean DEFAULT NULL,
    freeze boolean DEFAULT false,
    atomic boolean DEFAULT NULL,
    match text DEFAULT 'position',
    extra_columns text DEFAULT 'error')
RETURNS csvpipe.load_result
AS 'MODULE_PATHNAME', 'csvpipe_load'
LANGUAGE C VOLATILE;

COMMENT ON FUNCTION csvpipe.load(text, regclass, text[], int, text, text, text, csvpipe.header_mode, text, text, bigint, text, bigint, text, bigint, boolean, boolean, boolean, text, text)
IS 'load a CSV file on the server into a table, in parallel background workers (mode: transaction, prepared or chunked)';

CREATE FUNCTION csvpipe.submit(
    path_or_glob text,
    target regclass,
    columns text[] DEFAULT NULL,
    workers int DEFAULT NULL,
    delimiter text DEFAULT ',',
    quote text DEFAULT '"',
    escape text DEFAULT NULL,
    header csvpipe.header_mode DEFAULT 'true',
    null_string text DEFAULT '',
    encoding text DEFAULT NULL,
    skip_rows bigint DEFAULT 0,
    mode text DEFAULT 'transaction',
    chunk_size bigint DEFAULT NULL,
    on_error text DEFAULT 'stop',
    max_errors bigint DEFAULT NULL,
    priority int DEFAULT 0,
    force boolean DEFAULT false,
    atomic boolean DEFAULT NULL,
    match text DEFAULT 'position',
    extra_columns text DEFAULT 'error')
RETURNS SETOF bigint
AS 'MODULE_PATHNAME', 'csvpipe_submit'
LANGUAGE C VOLATILE;

COMMENT ON FUNCTION csvpipe.submit(text, regclass, text[], int, text, text, text, csvpipe.header_mode, text, text, bigint, text, bigint, text, bigint, int, boolean, boolean, text, text)
IS 'queue one load job per file matching a path or glob; files already loaded into the target, and files whose jobs failed recently (see csvpipe.jobs.backoff_until), are skipped unless force => true';

CREATE FUNCTION csvpipe.load_serial(path text, target regclass, columns text[] DEFAULT NULL,
    delimiter text DEFAULT ',', quote text DEFAULT '"', escape text DEFAULT NULL,
    header csvpipe.header_mode DEFAULT 'true', null_string text DEFAULT '', encoding text DEFAULT NULL,
    skip_rows bigint DEFAULT 0, match text DEFAULT 'position', extra_columns text DEFAULT 'error')
RETURNS bigint AS 'MODULE_PATHNAME', 'csvpipe_load_serial' LANGUAGE C VOLATILE;

-- ---------------------------------------------------------------------
-- Sniffing a file (issue 13): csvpipe.sniff says what a file's dialect,
-- header, column names and types are, from a sample; csvpipe.create_table
-- creates a table from that, in the caller's transaction, as the caller.
-- Options left NULL are detected; those given are taken as they are.
-- ---------------------------------------------------------------------
CREATE TYPE csvpipe.sniff_result AS (
    delimiter text,
    quote text,
    escape text,
    line_ending text,
    encoding text,
    bom boolean,
    header boolean,
    skip_rows bigint,
    null_string text,
    columns text[],
    types text[],
    nullable boolean[],
    column_list text,
    create_table text,
    sample_bytes bigint,
    sample_rows bigint,
    whole_file boolean,
    notes text[]);

CREATE FUNCTION csvpipe.sniff(
    path text,
    delimiter text DEFAULT NULL,
    quote text DEFAULT NULL,
    escape text DEFAULT NULL,
    header csvpipe.header_mode DEFAULT NULL,
    null_string text DEFAULT NULL,
    encoding text DEFAULT NULL,
    skip_rows bigint DEFAULT NULL,
    sample_size bigint DEFAULT NULL)
RETURNS csvpipe.sniff_result
AS 'MODULE_PATHNAME', 'csvpipe_sniff'
LANGUAGE C VOLATILE;

COMMENT ON FUNCTION csvpipe.sniff(text, text, text, text, csvpipe.header_mode, text, text, bigint, bigint)
IS 'detect a CSV file''s dialect, header, column names and types from a sample';

CREATE FUNCTION csvpipe.create_table(
    path text,
    name text,
    delimiter text DEFAULT NULL,
    quote text DEFAULT NULL,
    escape text DEFAULT NULL,
    header csvpipe.header_mode DEFAULT NULL,
    null_string text DEFAULT NULL,
    encoding text DEFAULT NULL,
    skip_rows bigint DEFAULT NULL,
    sample_size bigint DEFAULT NULL)
RETURNS regclass
AS 'MODULE_PATHNAME', 'csvpipe_create_table'
LANGUAGE C VOLATILE;

COMMENT ON FUNCTION csvpipe.create_table(text, text, text, text, text, csvpipe.header_mode, text, text, bigint, bigint)
IS 'create a table with the columns csvpipe.sniff finds in a CSV file';

-- ---------------------------------------------------------------------
-- csvpipe.load with the target by name, and create_target (issue 13):
-- the name is resolved as regclass input resolves it, or, with
-- create_target => true, the table is created from the file first (in the
-- caller's transaction, as the caller).  A quoted literal, load(path,
-- 'tbl'), resolves to this overload (a literal prefers text) and loads as
-- before; load(path, 'tbl'::regclass) calls the regclass one.
-- ---------------------------------------------------------------------
CREATE FUNCTION csvpipe.load(
    path text,
    target text,
    columns text[] DEFAULT NULL,
    workers int DEFAULT NULL,
    delimiter text DEFAULT ',',
    quote text DEFAULT '"',
    escape text DEFAULT NULL,
    header csvpipe.header_mode DEFAULT 'true',
    null_string text DEFAULT '',
    encoding text DEFAULT NULL,
    skip_rows bigint DEFAULT 0,
    mode text DEFAULT 'transaction',
    chunk_size bigint DEFAULT NULL,
    on_error text DEFAULT 'stop',
    max_errors bigint DEFAULT NULL,
    progress boolean DEFAULT NULL,
    freeze boolean DEFAULT false,
    create_target boolean DEFAULT false)
RETURNS csvpipe.load_result
AS 'MODULE_PATHNAME', 'csvpipe_load_by_name'
LANGUAGE C VOLATILE;

COMMENT ON FUNCTION csvpipe.load(text, text, text[], int, text, text, text, csvpipe.header_mode, text, text, bigint, text, bigint, text, bigint, boolean, boolean, boolean)
IS 'load a CSV file into a table named by text, created from the file first with create_target => true';

-- ---------------------------------------------------------------------
-- Reads without a column list (issue 13): csvpipe.read(path, NULL::t, ...)
-- returns rows of t's type, as jsonb_populate_record(NULL::t, ...) does;
-- the file's fields fill t's columns in order (its dropped and generated
-- columns excepted).  An overload of read: its parameters after rowtype
-- have, position by position, the types of the record form's parameters
-- after path (delimiter and quote right after rowtype, header and
-- null_string at the record form's places, escape, encoding and on_error
-- elsewhere, match and extra_columns last), so that no call that
-- resolved to the record form resolves to this one or becomes ambiguous
-- (test/t/133_read_rowtype.pl checks both).  Pass options by name.
-- match => 'name' maps the header's names to t's columns (options.c).
-- ---------------------------------------------------------------------
CREATE FUNCTION csvpipe.read(
    path text,
    rowtype anyelement,
    delimiter text DEFAULT ',',
    quote text DEFAULT '"',
    header csvpipe.header_mode DEFAULT 'true',
    null_string text DEFAULT '',
    escape text DEFAULT NULL,
    skip_rows bigint DEFAULT 0,
    workers int DEFAULT NULL,
    ordered boolean DEFAULT true,
    chunk_size bigint DEFAULT NULL,
    encoding text DEFAULT NULL,
    cache boolean DEFAULT true,
    on_error text DEFAULT 'stop',
    match text DEFAULT 'position',
    extra_columns text DEFAULT 'error')
RETURNS SETOF anyelement
AS 'MODULE_PATHNAME', 'csvpipe_read_rowtype'
LANGUAGE C VOLATILE
SUPPORT csvpipe.read_support;

COMMENT ON FUNCTION csvpipe.read(text, anyelement, text, text, csvpipe.header_mode, text, text, bigint, int, boolean, bigint, text, boolean, text, text, text)
IS 'stream a CSV file on the server as rows of the type of the second argument (NULL::a_table)';

-- ---------------------------------------------------------------------
-- csvpipe.jobs: state 'uncommitted' (jobs review) -- a transaction-mode
-- load that is done while the transaction that loaded it (load_xid) has
-- not ended, so it may still become 'rolled back'; csvpipe.wait returns it
-- at a timeout instead of 'done'.
-- ---------------------------------------------------------------------
CREATE OR REPLACE VIEW csvpipe.jobs WITH (security_barrier) AS
SELECT j.job_id,
       CASE WHEN v.visible THEN j.path END AS path,
       j.target::pg_catalog.regclass AS target,
       CASE WHEN j.state OPERATOR(pg_catalog.<>) 'done' THEN j.state
            WHEN pg_catalog.pg_xact_status(j.load_xid) OPERATOR(pg_catalog.=) 'aborted'
            THEN 'rolled back'
            WHEN pg_catalog.pg_xact_status(j.load_xid) OPERATOR(pg_catalog.=) 'in progress'
            THEN 'uncommitted' ELSE j.state END AS state,
       j.priority,
       j.submitted_at, j.started_at, j.finished_at,
       CASE WHEN NOT v.visible THEN NULL
            WHEN j.state = 'running' AND p.job_id IS NOT NULL THEN p.rows_done
            ELSE j.rows_loaded END AS rows_loaded,
       CASE WHEN NOT v.visible THEN NULL
            WHEN j.state = 'running' AND p.job_id IS NOT NULL THEN p.rows_rejected
            ELSE j.rows_rejected END AS rows_rejected,
       j.retries,
       CASE WHEN v.visible THEN j.error END AS error,
       j.submitted_by::pg_catalog.regrole AS submitted_by, j.atomic, j.workers,
       CASE WHEN NOT v.visible THEN NULL
            WHEN j.state = 'running' AND p.job_id IS NOT NULL THEN p.bytes_done
            ELSE j.bytes END AS bytes,
       j.decision, j.origin,
       CASE WHEN v.visible THEN j.options END AS options,
       j.leader_pid,
       j.state = 'running' AND p.job_id IS NULL
         AND (j.leader_pid IS NOT NULL OR j.origin = 'load')
         AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_stat_activity a WHERE a.pid = j.leader_pid)
         AS leader_gone,
       CASE WHEN v.visible THEN f.failures END AS failures,
       CASE WHEN v.visible THEN j.finished_at + csvpipe.submit_backoff(f.failures) END AS backoff_until
  FROM csvpipe.job j
  LEFT JOIN csvpipe.progress_1_0() p
    ON p.job_id = j.job_id
   AND p.datid = (SELECT d.oid FROM pg_catalog.pg_database d
                   WHERE d.datname = pg_catalog.current_database())
 CROSS JOIN LATERAL (SELECT coalesce(pg_catalog.pg_has_role(j.submitted_by, 'USAGE'), false)
                            OR pg_catalog.pg_has_role('pg_read_all_stats', 'USAGE') AS visible) v
 CROSS JOIN LATERAL (SELECT CASE WHEN j.state = 'failed' THEN
                            (SELECT count(*)::int FROM csvpipe.job o
                              WHERE o.path = j.path AND o.target = j.target
                                AND o.submitted_by = j.submitted_by AND o.file_size = j.file_size
                                AND o.file_dev = j.file_dev AND o.file_ino = j.file_ino
                                AND o.file_mtime_ns = j.file_mtime_ns
                                AND o.state = 'failed' AND o.job_id <= j.job_id) END AS failures) f;

-- ---------------------------------------------------------------------
-- csvpipe.submit with the target by name, and create_target (jobs
-- review), as csvpipe.load's text overload: the name is resolved as
-- regclass input resolves it, or, with create_target => true, the table is
-- created from the file first, in the submitting transaction and as the
-- submitting role (its owner, whom the job runs as).  Any mode: the job
-- runs once that transaction committed.  The parameters are the regclass
-- overload's, in its order, then create_target: a quoted literal,
-- submit(path, 'tbl'), resolves to this overload and queues as before.
-- ---------------------------------------------------------------------
CREATE FUNCTION csvpipe.submit(
    path_or_glob text,
    target text,
    columns text[] DEFAULT NULL,
    workers int DEFAULT NULL,
    delimiter text DEFAULT ',',
    quote text DEFAULT '"',
    escape text DEFAULT NULL,
    header csvpipe.header_mode DEFAULT 'true',
    null_string text DEFAULT '',
    encoding text DEFAULT NULL,
    skip_rows bigint DEFAULT 0,
    mode text DEFAULT 'transaction',
    chunk_size bigint DEFAULT NULL,
    on_error text DEFAULT 'stop',
    max_errors bigint DEFAULT NULL,
    priority int DEFAULT 0,
    force boolean DEFAULT false,
    atomic boolean DEFAULT NULL,
    match text DEFAULT 'position',
    extra_columns text DEFAULT 'error',
    create_target boolean DEFAULT false)
RETURNS SETOF bigint
AS 'MODULE_PATHNAME', 'csvpipe_submit_by_name'
LANGUAGE C VOLATILE;

COMMENT ON FUNCTION csvpipe.submit(text, text, text[], int, text, text, text, csvpipe.header_mode, text, text, bigint, text, bigint, text, bigint, int, boolean, boolean, text, text, boolean)
IS 'queue a load of a file (or of each file of a glob) into a table named by text, created from the file first with create_target => true (one file)';
