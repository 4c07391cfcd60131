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
    skip_rows bigint DEFAULT 0)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'csvpipe_read'
LANGUAGE C VOLATILE
SUPPORT csvpipe.read_support;

COMMENT ON FUNCTION csvpipe.read(text, text, text, text, csvpipe.header_mode, text, text, bigint)
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
    OUT line_no bigint,
    OUT fields text[])
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'csvpipe_read_text'
LANGUAGE C VOLATILE
SUPPORT csvpipe.read_support;

COMMENT ON FUNCTION csvpipe.read_text(text, text, text, text, csvpipe.header_mode, text, text, bigint)
IS 'stream a CSV file on the server as (line_no, fields text[]) rows';

-- Reading server files is a privilege, checked in C when the file is opened
-- (superuser or pg_read_server_files, as for COPY FROM a file), so EXECUTE
-- stays with PUBLIC and a refused caller gets a message that says why.

GRANT USAGE ON SCHEMA csvpipe TO PUBLIC;
