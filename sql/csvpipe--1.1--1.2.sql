/* csvpipe--1.1--1.2.sql -- upgrade csvpipe 1.1 to 1.2 (ALTER EXTENSION csvpipe UPDATE) */

-- complain if script is sourced in psql, rather than via ALTER EXTENSION
\echo Use "ALTER EXTENSION csvpipe UPDATE TO '1.2'" to load this file. \quit

-- Every change here is mirrored in csvpipe--1.2.sql (fresh installs);
-- test/t/110_upgrade.pl compares 1.0 + both upgrades with a fresh install.
-- csvpipe--1.0.sql and csvpipe--1.1.sql are released and frozen: new
-- objects and changed signatures go here and in 1.2.sql only.  Objects are
-- schema-qualified; new table columns go last (where ADD COLUMN puts them).
