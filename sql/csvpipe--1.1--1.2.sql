/* csvpipe--1.1--1.2.sql -- upgrade csvpipe 1.1 to 1.2 (ALTER EXTENSION csvpipe UPDATE) */

-- complain if script is sourced in psql, rather than via ALTER EXTENSION
\echo Use "ALTER EXTENSION csvpipe UPDATE TO '1.2'" to load this file. \quit

-- Every change here is mirrored in csvpipe--1.2.sql (fresh installs);
-- test/t/110_upgrade.pl compares 1.0 + both upgrades with a fresh install.
-- csvpipe--1.0.sql and csvpipe--1.1.sql are released and frozen: new
-- objects and changed signatures go here and in 1.2.sql only.  Objects are
-- schema-qualified; new table columns go last (where ADD COLUMN puts them).

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
