/* csvpipe--1.0--1.1.sql -- upgrade csvpipe 1.0 to 1.1 (ALTER EXTENSION csvpipe UPDATE) */

-- complain if script is sourced in psql, rather than via ALTER EXTENSION
\echo Use "ALTER EXTENSION csvpipe UPDATE TO '1.1'" to load this file. \quit

-- Every change here is mirrored in csvpipe--1.1.sql (fresh installs);
-- test/t/110_upgrade.pl compares the two.  Objects are schema-qualified and
-- operators qualified: this runs as a superuser with the caller's search_path.
