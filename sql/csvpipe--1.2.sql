/* csvpipe--1.2.sql -- install script for csvpipe 1.2 (fresh installs) */

-- Keep this script and the upgrade scripts (1.0--1.1, 1.1--1.2) in step: test/t/110_upgrade.pl
-- checks that a fresh install and 1.0 + ALTER EXTENSION csvpipe UPDATE
-- give the same objects (definitions, column order, grants, comments,
-- statistics targets, reloptions, config-dump tables).  A column added
-- to a table goes at the END of its CREATE TABLE here, as ADD COLUMN puts it.

-- complain if script is sourced in psql, rather than via CREATE EXTENSION
\echo Use "CREATE EXTENSION csvpipe" to load this file. \quit

-- csvpipe's background processes run their bookkeeping on this schema's
-- tables as a superuser: the schema must be the installing superuser's, not
-- one another role created beforehand (its owner could swap the tables or
-- plant triggers on them).  Nothing here may resolve to that role's objects,
-- hence the qualified names and operators.
DO $csvpipe_schema_check$
DECLARE
    owner_name pg_catalog.name;
BEGIN
    SELECT r.rolname INTO owner_name
      FROM pg_catalog.pg_namespace n
      JOIN pg_catalog.pg_roles r ON r.oid OPERATOR(pg_catalog.=) n.nspowner
     WHERE n.nspname OPERATOR(pg_catalog.=) 'csvpipe';
    IF owner_name IS DISTINCT FROM CURRENT_USER THEN
        RAISE EXCEPTION USING
            ERRCODE = 'insufficient_privilege',
            MESSAGE = pg_catalog.format('schema "csvpipe" is owned by role %I, not by the superuser installing the extension', owner_name),
            HINT = 'Drop that schema, or have a superuser own it and install csvpipe as that superuser.';
    END IF;
END
$csvpipe_schema_check$;

-- header => true | false | 'match' (COPY's HEADER MATCH).  A type with an
-- implicit cast from boolean lets callers write header => false as well as
-- header => 'match'; its input function (src/csv/options.c) names the
-- option and its valid values when a value is wrong.
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

-- Jobs: one row per csvpipe.load call and per file queued by csvpipe.submit.
-- Written by csvpipe's workers, runners and launcher in their own
-- transactions (as the bootstrap superuser; users read csvpipe.jobs).
-- Job ids come from csvpipe's own code only: no role gets USAGE on the
-- sequence (nor any privilege on the tables below).
CREATE SEQUENCE csvpipe.job_id_seq;
REVOKE ALL ON SEQUENCE csvpipe.job_id_seq FROM PUBLIC;

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
    error         text,
    options       jsonb,                 -- the load's options (resume, and queued jobs)
    origin        text NOT NULL DEFAULT 'load'
                  CHECK (origin IN ('load', 'submit')),  -- csvpipe.load or csvpipe.submit
    priority      int NOT NULL DEFAULT 0,   -- queued jobs: higher runs first
    attempt       int NOT NULL DEFAULT 0,   -- queued jobs: times the launcher started it
    -- atomic loads: the secret behind this run's prepared-transaction names
    -- (never shown by a view), and the parts the "commit" decision commits
    gid_nonce     text,
    commit_parts  int[],
    -- (1.1) transaction-mode loads: the (sub)transaction that inserted the
    -- rows.  The job's 'done' is written by a coordinator that commits on
    -- its own; the rows count as loaded only if this one did not abort.
    load_xid      xid8
);

-- the launcher's queue order, and submit's "already loaded?" lookup
CREATE INDEX job_queue_idx ON csvpipe.job (priority DESC, submitted_at, job_id)
    WHERE state = 'queued';
CREATE INDEX job_file_idx ON csvpipe.job (path, target);

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
REVOKE ALL ON csvpipe.job, csvpipe.chunks, csvpipe.rejected FROM PUBLIC;

-- (1.1) What csvpipe.submit needs to skip a file already loaded, once
-- csvpipe.purge has removed the job that loaded it: one row per file
-- identity (canonical path, device, inode, size, mtime) loaded into a
-- target by a role.  Written by purge from the 'done' jobs it removes.
-- target and submitted_by are regclass and regrole, not oid: pg_dump writes
-- them as names, so a restore into another cluster (other oids) keeps each
-- record on its table and role (an oid would point at whatever got it there).
CREATE TABLE csvpipe.loaded_file (
    target        pg_catalog.regclass NOT NULL,
    path          text NOT NULL,
    submitted_by  pg_catalog.regrole NOT NULL,
    file_size     bigint NOT NULL,
    file_dev      bigint NOT NULL,
    file_ino      bigint NOT NULL,
    file_mtime_ns bigint NOT NULL,
    job_id        bigint NOT NULL,       -- the job that loaded it (purged)
    loaded_at     timestamptz NOT NULL,  -- that job's finished_at
    PRIMARY KEY (target, path, submitted_by, file_size, file_dev, file_ino, file_mtime_ns)
);
REVOKE ALL ON csvpipe.loaded_file FROM PUBLIC;
ALTER TABLE csvpipe.loaded_file
    ALTER COLUMN path SET STATISTICS 0, ALTER COLUMN file_size SET STATISTICS 0;
SELECT pg_catalog.pg_extension_config_dump('csvpipe.loaded_file', '');

-- Who sees what (doc/security.md, "Who sees what").  The tables above are
-- readable only by their owner; users read the views below, which run with
-- the owner's privileges.  What comes from a file -- its name, its rejected
-- rows, a load's options and error, and the counters that measure the file
-- (rows, rejected rows, bytes, line numbers and offsets) -- is shown only
-- to roles with the privileges of the submitting role (has_privs_of_role,
-- so superusers too) and to members of pg_read_all_stats (hence
-- pg_monitor), as pg_stat_activity shows a query and
-- pg_stat_progress_copy its counters.  csvpipe.errors shows only those
-- jobs' rows (a rejected row is nothing but file data); csvpipe.jobs
-- shows every job with those columns NULL.  pg_has_role() runs as the
-- querying role, not as the view's owner.  security_barrier: a caller's
-- functions in WHERE see only what the view returns.

-- No statistics on what the views hide: the planner would use them for a
-- caller's condition pushed into a view (a leakproof operator such as
-- text = text is), and EXPLAIN's row estimate would tell whether a value is
-- common in rows the caller may not see.  ANALYZE (which the database owner
-- may run too) collects nothing on these columns.
ALTER TABLE csvpipe.rejected
    ALTER COLUMN chunk_no SET STATISTICS 0, ALTER COLUMN line_no SET STATISTICS 0,
    ALTER COLUMN byte_offset SET STATISTICS 0, ALTER COLUMN raw_record SET STATISTICS 0,
    ALTER COLUMN column_name SET STATISTICS 0, ALTER COLUMN message SET STATISTICS 0,
    ALTER COLUMN sqlstate SET STATISTICS 0, ALTER COLUMN detail SET STATISTICS 0,
    ALTER COLUMN logged_at SET STATISTICS 0;
ALTER TABLE csvpipe.job
    ALTER COLUMN path SET STATISTICS 0, ALTER COLUMN error SET STATISTICS 0,
    ALTER COLUMN options SET STATISTICS 0, ALTER COLUMN rows_loaded SET STATISTICS 0,
    ALTER COLUMN rows_rejected SET STATISTICS 0, ALTER COLUMN bytes SET STATISTICS 0;

-- rejected rows, with their job's file and target
CREATE VIEW csvpipe.errors WITH (security_barrier) AS
SELECT r.job_id, r.chunk_no, r.line_no, r.byte_offset, r.raw_record, r.column_name,
       r.message, r.sqlstate, r.detail, r.logged_at, j.path,
       j.target::pg_catalog.regclass AS target
  FROM csvpipe.rejected r
  LEFT JOIN csvpipe.job j ON j.job_id OPERATOR(pg_catalog.=) r.job_id
 WHERE coalesce(pg_catalog.pg_has_role(j.submitted_by, 'USAGE'), false)
    OR pg_catalog.pg_has_role('pg_read_all_stats', 'USAGE');
GRANT SELECT ON csvpipe.errors TO PUBLIC;

COMMENT ON VIEW csvpipe.errors
IS 'rows rejected by loads with on_error => ''skip'', of jobs of roles whose privileges you have (all for pg_read_all_stats)';

SELECT pg_catalog.pg_extension_config_dump('csvpipe.job', '');
SELECT pg_catalog.pg_extension_config_dump('csvpipe.chunks', '');
SELECT pg_catalog.pg_extension_config_dump('csvpipe.rejected', '');
SELECT pg_catalog.pg_extension_config_dump('csvpipe.job_id_seq', '');

-- Monitoring.  Each view sits on a versioned C function, so a later library
-- can keep serving an older view definition.

-- one row per load under way (csvpipe.load in a backend, or a job runner)
CREATE FUNCTION csvpipe.progress_1_0(
    OUT job_id bigint, OUT pid int, OUT datid oid, OUT kind text, OUT phase text,
    OUT bytes_total bigint, OUT bytes_done bigint, OUT rows_done bigint,
    OUT rows_rejected bigint, OUT workers int,
    OUT started_at timestamptz, OUT last_heartbeat timestamptz)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'csvpipe_progress_1_0'
LANGUAGE C VOLATILE STRICT;

-- one row per csvpipe process (launcher, runners, workers, coordinators,
-- and backends while they lead a csvpipe.load)
CREATE FUNCTION csvpipe.workers_1_0(
    OUT pid int, OUT kind text, OUT datid oid, OUT job_id bigint, OUT leader_pid int,
    OUT chunk_no bigint, OUT state text, OUT rows bigint,
    OUT started_at timestamptz, OUT last_heartbeat timestamptz)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'csvpipe_workers_1_0'
LANGUAGE C VOLATILE STRICT;

CREATE VIEW csvpipe.progress AS
SELECT p.job_id, p.pid, p.datid, d.datname, p.kind, p.phase,
       p.bytes_total, p.bytes_done, p.rows_done, p.rows_rejected, p.workers,
       CASE WHEN e.secs > 0 THEN round((p.rows_done / e.secs)::numeric, 1) END AS rows_per_sec,
       CASE WHEN p.bytes_total > 0 AND p.bytes_done >= p.bytes_total THEN interval '0'
            WHEN p.bytes_done > 0 AND e.secs > 0
            THEN make_interval(secs => round((e.secs * (p.bytes_total - p.bytes_done)
                                              / p.bytes_done)::numeric, 1)::float8)
       END AS eta,
       p.started_at, p.last_heartbeat
  FROM csvpipe.progress_1_0() p
  LEFT JOIN pg_catalog.pg_database d ON d.oid = p.datid
 CROSS JOIN LATERAL (SELECT extract(epoch FROM clock_timestamp() - p.started_at)::float8 AS secs) e;
GRANT SELECT ON csvpipe.progress TO PUBLIC;

COMMENT ON VIEW csvpipe.progress
IS 'one row per load under way, in any database; bytes and rows only for loads of roles whose privileges you have (all for pg_read_all_stats)';

CREATE VIEW csvpipe.workers AS
SELECT w.pid, w.kind, w.job_id, w.chunk_no, w.state, w.rows, w.last_heartbeat,
       w.started_at, w.leader_pid, w.datid
  FROM csvpipe.workers_1_0() w
 WHERE w.kind <> 'leader';
GRANT SELECT ON csvpipe.workers TO PUBLIC;

COMMENT ON VIEW csvpipe.workers
IS 'one row per csvpipe process, in any database; chunk_no and rows only for processes of roles whose privileges you have (all for pg_read_all_stats)';

-- (1.1) How long csvpipe.submit holds back a file whose jobs failed
-- `failures` times in a row: csvpipe.submit_backoff, doubled at each
-- failure, at most csvpipe.submit_backoff_max (src/purge.c).
CREATE FUNCTION csvpipe.submit_backoff(failures int)
RETURNS interval
AS 'MODULE_PATHNAME', 'csvpipe_submit_backoff'
LANGUAGE C STABLE STRICT PARALLEL SAFE;

COMMENT ON FUNCTION csvpipe.submit_backoff(int)
IS 'how long csvpipe.submit skips a file after its jobs failed this many times in a row (csvpipe.submit_backoff, doubled each time, at most csvpipe.submit_backoff_max)';

-- every job, with live counters while it runs (job ids are per database,
-- status slots of every database: match the slot's database too).
-- (1.1) failures and backoff_until: for a failed job, how many jobs of the
-- same file (identity, target, role) failed up to this one, and until when
-- csvpipe.submit skips that file (unless force => true).
-- (1.2) state 'uncommitted': a transaction-mode load that is done while the
-- transaction that loaded it (load_xid) has not ended; 'rolled back' once
-- it aborted.
CREATE VIEW csvpipe.jobs WITH (security_barrier) AS
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
GRANT SELECT ON csvpipe.jobs TO PUBLIC;

COMMENT ON VIEW csvpipe.jobs
IS 'every load job with live counters; path, error, options, rows_loaded, rows_rejected, bytes, failures and backoff_until only for jobs of roles whose privileges you have (all for pg_read_all_stats)';

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

-- The job queue (needs csvpipe in shared_preload_libraries).  Privileges
-- are checked in C: submitting needs pg_read_server_files and INSERT on the
-- target; cancel and resume need membership in the submitting role.
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

CREATE FUNCTION csvpipe.cancel(job bigint)
RETURNS boolean
AS 'MODULE_PATHNAME', 'csvpipe_cancel'
LANGUAGE C VOLATILE STRICT;

COMMENT ON FUNCTION csvpipe.cancel(bigint)
IS 'cancel a queued job, or ask a running one to stop; false if it had already finished';

CREATE FUNCTION csvpipe.wait(job bigint, timeout interval DEFAULT NULL)
RETURNS text
AS 'MODULE_PATHNAME', 'csvpipe_wait'
LANGUAGE C VOLATILE;

COMMENT ON FUNCTION csvpipe.wait(bigint, interval)
IS 'wait until a job is done, failed or cancelled and return that state (or its state at the timeout)';

-- A job queued by submit goes back in the queue (and returns at once); a
-- csvpipe.load job is finished in this session.  Either way a chunked job
-- loads only the chunks missing from the ledger.
CREATE FUNCTION csvpipe.resume(job bigint)
RETURNS csvpipe.load_result
AS 'MODULE_PATHNAME', 'csvpipe_resume'
LANGUAGE C STRICT VOLATILE;

COMMENT ON FUNCTION csvpipe.resume(bigint)
IS 'resume a failed, cancelled or interrupted job: queued again if it came from submit, else finished in this session; chunked jobs load only the chunks missing from the ledger';

CREATE FUNCTION csvpipe.resolve_prepared()
RETURNS bigint
AS 'MODULE_PATHNAME', 'csvpipe_resolve_prepared'
LANGUAGE C VOLATILE;

COMMENT ON FUNCTION csvpipe.resolve_prepared()
IS 'finish prepared parts of atomic loads left by a crash, following each job''s recorded decision';

-- (1.1) Remove old finished jobs (done, failed, cancelled) with their
-- chunk ledger and rejected rows, of the roles whose privileges the caller
-- has (every role for a superuser); a job that still has prepared
-- transactions is kept.  A done job's file identity is kept in
-- csvpipe.loaded_file (unless keep_loaded_files => false), so submit still
-- skips that file; keep_loaded_files => false also forgets the loaded files
-- recorded before the cutoff.  Privileges are checked in C (src/purge.c).
CREATE FUNCTION csvpipe.purge(
    older_than interval,
    keep_loaded_files boolean DEFAULT true,
    OUT jobs bigint,
    OUT chunks bigint,
    OUT rejected_rows bigint,
    OUT loaded_files_kept bigint,
    OUT loaded_files_forgotten bigint)
RETURNS record
AS 'MODULE_PATHNAME', 'csvpipe_purge'
LANGUAGE C VOLATILE;

COMMENT ON FUNCTION csvpipe.purge(interval, boolean)
IS 'remove finished jobs older than older_than, with their chunks and rejected rows, of roles whose privileges you have; submit keeps skipping the files they loaded unless keep_loaded_files => false';

-- Single-process load in the caller's transaction (used when no background worker is available, and by tests).
CREATE FUNCTION csvpipe.load_serial(path text, target regclass, columns text[] DEFAULT NULL,
    delimiter text DEFAULT ',', quote text DEFAULT '"', escape text DEFAULT NULL,
    header csvpipe.header_mode DEFAULT 'true', null_string text DEFAULT '', encoding text DEFAULT NULL,
    skip_rows bigint DEFAULT 0, match text DEFAULT 'position', extra_columns text DEFAULT 'error')
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
