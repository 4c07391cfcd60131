/* csvpipe--1.0--1.1.sql -- upgrade csvpipe 1.0 to 1.1 (ALTER EXTENSION csvpipe UPDATE) */

-- complain if script is sourced in psql, rather than via ALTER EXTENSION
\echo Use "ALTER EXTENSION csvpipe UPDATE TO '1.1'" to load this file. \quit

-- Every change here is mirrored in csvpipe--1.1.sql (fresh installs);
-- test/t/110_upgrade.pl compares the two.  Objects are schema-qualified and
-- operators qualified: this runs as a superuser with the caller's search_path.

-- Load modes (README, "Load modes"): mode text replaces 1.0's atomic
-- boolean in load and submit, with 'transaction' (the caller's own
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
    atomic boolean DEFAULT NULL)
RETURNS SETOF bigint
AS 'MODULE_PATHNAME', 'csvpipe_submit'
LANGUAGE C VOLATILE;

COMMENT ON FUNCTION csvpipe.submit(text, regclass, text[], int, text, text, text, csvpipe.header_mode, text, text, bigint, text, bigint, text, bigint, int, boolean)
IS 'queue one load job per file matching a path or glob; files already loaded into the target are skipped';
