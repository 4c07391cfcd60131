/* csvpipe--1.0--1.1.sql -- upgrade csvpipe 1.0 to 1.1 (ALTER EXTENSION csvpipe UPDATE) */

-- complain if script is sourced in psql, rather than via ALTER EXTENSION
\echo Use "ALTER EXTENSION csvpipe UPDATE TO '1.1'" to load this file. \quit

-- Every change here is mirrored in csvpipe--1.1.sql (fresh installs);
-- test/t/110_upgrade.pl compares the two.  Objects are schema-qualified.

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

-- (1.1) transaction-mode loads: the (sub)transaction that inserted the
-- rows; a 'done' job whose load_xid aborted loaded nothing (csvpipe.jobs
-- shows it 'rolled back', submit and purge do not count it).
ALTER TABLE csvpipe.job ADD COLUMN load_xid xid8;

-- (1.1) How long csvpipe.submit holds back a file whose jobs failed
-- `failures` times in a row: csvpipe.submit_backoff, doubled at each
-- failure, at most csvpipe.submit_backoff_max (src/purge.c).
CREATE FUNCTION csvpipe.submit_backoff(failures int)
RETURNS interval
AS 'MODULE_PATHNAME', 'csvpipe_submit_backoff'
LANGUAGE C STABLE STRICT PARALLEL SAFE;

COMMENT ON FUNCTION csvpipe.submit_backoff(int)
IS 'how long csvpipe.submit skips a file after its jobs failed this many times in a row (csvpipe.submit_backoff, doubled each time, at most csvpipe.submit_backoff_max)';

-- csvpipe.jobs gains failures and backoff_until (at the end: CREATE OR
-- REPLACE VIEW keeps the grants).
CREATE OR REPLACE VIEW csvpipe.jobs WITH (security_barrier) AS
SELECT j.job_id,
       CASE WHEN v.visible THEN j.path END AS path,
       j.target::pg_catalog.regclass AS target,
       CASE WHEN j.state OPERATOR(pg_catalog.=) 'done'
             AND pg_catalog.pg_xact_status(j.load_xid) OPERATOR(pg_catalog.=) 'aborted'
            THEN 'rolled back' ELSE j.state END AS state,
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
COMMENT ON VIEW csvpipe.jobs
IS 'every load job with live counters; path, error, options, rows_loaded, rows_rejected, bytes, failures and backoff_until only for jobs of roles whose privileges you have (all for pg_read_all_stats)';

-- csvpipe.submit gains force, and mode replaces atomic (see csvpipe.load
-- below); a new signature: the old one goes
DROP FUNCTION csvpipe.submit(text, regclass, text[], int, text, text, text, csvpipe.header_mode, text, text, bigint, boolean, bigint, text, bigint, int);

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
    atomic boolean DEFAULT NULL)
RETURNS SETOF bigint
AS 'MODULE_PATHNAME', 'csvpipe_submit'
LANGUAGE C VOLATILE;

COMMENT ON FUNCTION csvpipe.submit(text, regclass, text[], int, text, text, text, csvpipe.header_mode, text, text, bigint, text, bigint, text, bigint, int, boolean, boolean)
IS 'queue one load job per file matching a path or glob; files already loaded into the target, and files whose jobs failed recently (see csvpipe.jobs.backoff_until), are skipped unless force => true';

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

-- Load modes (README, "Load modes"): mode text replaces 1.0's atomic
-- boolean in load (and submit, above), with 'transaction' (the caller's own
-- transaction) as the default; atomic stays accepted, last, for old calls
-- (true = 'prepared', false = 'chunked').  load gains freeze.
DROP FUNCTION csvpipe.load(text, regclass, text[], int, text, text, text, csvpipe.header_mode, text, text, bigint, boolean, bigint, text, bigint, boolean);
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
    atomic boolean DEFAULT NULL)
RETURNS csvpipe.load_result
AS 'MODULE_PATHNAME', 'csvpipe_load'
LANGUAGE C VOLATILE;

COMMENT ON FUNCTION csvpipe.load(text, regclass, text[], int, text, text, text, csvpipe.header_mode, text, text, bigint, text, bigint, text, bigint, boolean, boolean, boolean)
IS 'load a CSV file on the server into a table, in parallel background workers (mode: transaction, prepared or chunked)';
