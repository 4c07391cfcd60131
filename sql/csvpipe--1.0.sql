/* csvpipe--1.0.sql -- install script for csvpipe 1.0 */

-- complain if script is sourced in psql, rather than via CREATE EXTENSION
\echo Use "CREATE EXTENSION csvpipe" to load this file. \quit

-- header => true | false | 'match' (COPY's HEADER MATCH).  An enum with an
-- implicit cast from boolean lets callers write header => false as well as
-- header => 'match'.
CREATE TYPE csvpipe.header_mode AS ENUM ('false', 'true', 'match');

CREATE FUNCTION csvpipe.header_mode(boolean)
RETURNS csvpipe.header_mode
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
RETURN CASE WHEN $1 THEN 'true'::csvpipe.header_mode
            ELSE 'false'::csvpipe.header_mode END;

CREATE CAST (boolean AS csvpipe.header_mode)
    WITH FUNCTION csvpipe.header_mode(boolean) AS IMPLICIT;

-- Planner support: estimates rows from the file size and lets csvpipe plan a
-- streaming scan for calls in FROM (see src/scan.c).
CREATE FUNCTION csvpipe.read_support(internal)
RETURNS internal
AS 'MODULE_PATHNAME', 'csvpipe_read_support'
LANGUAGE C STRICT;

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

-- Reading server files is a privilege, checked in C when the file is opened
-- (superuser or pg_read_server_files, as for COPY FROM a file), so EXECUTE
-- stays with PUBLIC and a refused caller gets a message that says why.

GRANT USAGE ON SCHEMA csvpipe TO PUBLIC;

-- Jobs: one row per csvpipe.load call (and, later, per queued file).
-- Written by csvpipe's workers in their own transactions.
CREATE SEQUENCE csvpipe.job_id_seq;
GRANT USAGE ON SEQUENCE csvpipe.job_id_seq TO PUBLIC;

CREATE TABLE csvpipe.job (
    job_id        bigint PRIMARY KEY,
    path          text NOT NULL,
    target        oid NOT NULL,          -- pg_class oid of the target table
    state         text NOT NULL DEFAULT 'queued'
                  CHECK (state IN ('queued', 'running', 'done', 'failed', 'cancelled')),
    atomic        boolean NOT NULL DEFAULT true,
    workers       int,
    leader_pid    int,                   -- set while a leader runs the job
    submitted_by  oid,                   -- role whose privileges the inserts use
    file_size     bigint,
    file_dev      bigint,
    file_ino      bigint,
    file_mtime_ns bigint,
    submitted_at  timestamptz NOT NULL DEFAULT now(),
    started_at    timestamptz,
    finished_at   timestamptz,
    rows_loaded   bigint NOT NULL DEFAULT 0,
    rows_rejected bigint NOT NULL DEFAULT 0,
    bytes         bigint NOT NULL DEFAULT 0,
    retries       int NOT NULL DEFAULT 0,
    decision      text CHECK (decision IN ('commit', 'rollback')),  -- atomic loads
    options       jsonb,                 -- the load's options, for resume
    error         text
);

-- The chunk ledger: a chunk's rows and its row here commit together
-- (chunked mode), so each chunk is loaded exactly once.
CREATE TABLE csvpipe.chunks (
    job_id        bigint NOT NULL,
    chunk_no      bigint NOT NULL,
    start_offset  bigint NOT NULL,
    end_offset    bigint NOT NULL,
    first_line    bigint NOT NULL,
    rows          bigint NOT NULL,
    worker_pid    int NOT NULL,
    committed_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (job_id, chunk_no)
);

-- Rows rejected by loads with on_error => 'skip'
CREATE TABLE csvpipe.rejected (
    job_id        bigint NOT NULL,
    chunk_no      bigint,
    line_no       bigint,
    byte_offset   bigint,
    raw_record    text,                  -- at most 4 kB; invalid bytes as \xNN
    column_name   text,
    message       text NOT NULL,
    sqlstate      text NOT NULL,
    detail        text,
    logged_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX ON csvpipe.rejected (job_id, line_no);

CREATE VIEW csvpipe.errors AS
SELECT job_id, chunk_no, line_no, byte_offset, raw_record, column_name,
       message, sqlstate, detail, logged_at
  FROM csvpipe.rejected;
GRANT SELECT ON csvpipe.errors TO PUBLIC;

SELECT pg_catalog.pg_extension_config_dump('csvpipe.rejected', '');
SELECT pg_catalog.pg_extension_config_dump('csvpipe.job', '');
SELECT pg_catalog.pg_extension_config_dump('csvpipe.chunks', '');
SELECT pg_catalog.pg_extension_config_dump('csvpipe.job_id_seq', '');

CREATE VIEW csvpipe.jobs AS
SELECT j.job_id, j.path, j.target::regclass AS target, j.state, j.atomic, j.workers,
       j.submitted_at, j.started_at, j.finished_at, j.rows_loaded, j.rows_rejected,
       j.bytes, j.retries, j.decision, j.error,
       j.state = 'running' AND NOT EXISTS
         (SELECT 1 FROM pg_stat_activity a WHERE a.pid = j.leader_pid) AS leader_gone
  FROM csvpipe.job j;
GRANT SELECT ON csvpipe.jobs TO PUBLIC;

-- (a type, not OUT parameters: "workers" is both an option and a result)
CREATE TYPE csvpipe.load_result AS (
    job_id bigint,
    rows_loaded bigint,
    rows_rejected bigint,
    bytes bigint,
    seconds double precision,
    workers int);

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
    atomic boolean DEFAULT true,
    chunk_size bigint DEFAULT NULL,
    on_error text DEFAULT 'stop',
    max_errors bigint DEFAULT NULL)
RETURNS csvpipe.load_result
AS 'MODULE_PATHNAME', 'csvpipe_load'
LANGUAGE C VOLATILE;

COMMENT ON FUNCTION csvpipe.load(text, regclass, text[], int, text, text, text, csvpipe.header_mode, text, text, bigint, boolean, bigint, text, bigint)
IS 'load a CSV file on the server into a table, in parallel background workers';

CREATE FUNCTION csvpipe.resume(job bigint)
RETURNS csvpipe.load_result
AS 'MODULE_PATHNAME', 'csvpipe_resume'
LANGUAGE C STRICT VOLATILE;

COMMENT ON FUNCTION csvpipe.resume(bigint)
IS 'finish a load whose leader died: chunked jobs load only the chunks missing from the ledger';

CREATE FUNCTION csvpipe.resolve_prepared()
RETURNS bigint
AS 'MODULE_PATHNAME', 'csvpipe_resolve_prepared'
LANGUAGE C VOLATILE;

COMMENT ON FUNCTION csvpipe.resolve_prepared()
IS 'finish prepared parts of atomic loads left by a crash, following each job''s recorded decision';

-- Single-process load in the caller's transaction (used when no background worker is available, and by tests).
CREATE FUNCTION csvpipe.load_serial(path text, target regclass, columns text[] DEFAULT NULL,
    delimiter text DEFAULT ',', quote text DEFAULT '"', escape text DEFAULT NULL,
    header csvpipe.header_mode DEFAULT 'true', null_string text DEFAULT '', encoding text DEFAULT NULL,
    skip_rows bigint DEFAULT 0)
RETURNS bigint AS 'MODULE_PATHNAME', 'csvpipe_load_serial' LANGUAGE C VOLATILE;

-- The shared result cache of read and read_text (src/cache.c).  It needs
-- shared_preload_libraries; without it these functions raise an error.
-- The views sit over versioned functions, so a later release can change a
-- view without breaking an older library.

CREATE FUNCTION csvpipe.cache_1_0(
    OUT path text,
    OUT version int,
    OUT bytes bigint,
    OUT rows bigint,
    OUT hits bigint,
    OUT created_at timestamptz,
    OUT last_used_at timestamptz,
    OUT expires_at timestamptz,
    OUT function text,
    OUT options text,
    OUT columns text)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'csvpipe_cache_1_0'
LANGUAGE C VOLATILE STRICT;

CREATE VIEW csvpipe.cache AS
SELECT path, version, bytes, rows, hits, created_at, last_used_at, expires_at,
       function, options, columns
  FROM csvpipe.cache_1_0();
GRANT SELECT ON csvpipe.cache TO PUBLIC;

COMMENT ON VIEW csvpipe.cache
IS 'one row per cached read result (path shown to roles with pg_read_server_files)';

CREATE FUNCTION csvpipe.cache_stats_1_0(
    OUT hits bigint,
    OUT misses bigint,
    OUT evictions bigint,
    OUT invalidations bigint,
    OUT bytes_used bigint,
    OUT bytes_limit bigint,
    OUT hit_ratio double precision,
    OUT entries bigint,
    OUT too_large bigint,
    OUT stats_reset timestamptz)
RETURNS record
AS 'MODULE_PATHNAME', 'csvpipe_cache_stats_1_0'
LANGUAGE C VOLATILE STRICT;

CREATE VIEW csvpipe.cache_stats AS
SELECT hits, misses, evictions, invalidations, bytes_used, bytes_limit,
       round(hit_ratio::numeric, 4) AS hit_ratio, entries, too_large, stats_reset
  FROM csvpipe.cache_stats_1_0();
GRANT SELECT ON csvpipe.cache_stats TO PUBLIC;

COMMENT ON VIEW csvpipe.cache_stats
IS 'counters of csvpipe''s result cache since the last csvpipe.cache_reset_stats()';

CREATE FUNCTION csvpipe.cache_invalidate(path text DEFAULT NULL)
RETURNS bigint
AS 'MODULE_PATHNAME', 'csvpipe_cache_invalidate'
LANGUAGE C VOLATILE;

COMMENT ON FUNCTION csvpipe.cache_invalidate(text)
IS 'remove the cached results of a file, of the files under a directory, or all (NULL); returns how many';

CREATE FUNCTION csvpipe.cache_reset_stats()
RETURNS void
AS 'MODULE_PATHNAME', 'csvpipe_cache_reset_stats'
LANGUAGE C VOLATILE;
REVOKE ALL ON FUNCTION csvpipe.cache_reset_stats() FROM PUBLIC;

COMMENT ON FUNCTION csvpipe.cache_reset_stats()
IS 'zero the counters of csvpipe.cache_stats';
