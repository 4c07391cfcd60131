--
-- Reading server files needs superuser or pg_read_server_files, as COPY FROM
-- a file does; csvpipe.allowed_dirs narrows that to some directories,
-- checked on the canonical path.
--
\getenv abs_srcdir PG_ABS_SRCDIR
\set data :abs_srcdir '/test/data'

CREATE ROLE csv_nobody;
CREATE ROLE csv_reader IN ROLE pg_read_server_files;

-- no privilege: refused, whatever the file
SET ROLE csv_nobody;
SELECT * FROM csv_try(format('SELECT * FROM csvpipe.read(%L) AS t(id int, name text)', :'data' || '/outside.csv'));
SELECT * FROM csv_try(format('SELECT * FROM csvpipe.read_text(%L)', '/etc/passwd'));
-- and cannot lift the directory restriction
SELECT * FROM csv_try('SET csvpipe.allowed_dirs = ''''');
RESET ROLE;

-- pg_read_server_files members read any file while allowed_dirs is empty
SET ROLE csv_reader;
SELECT * FROM csvpipe.read(:'data' || '/outside.csv') AS t(id int, name text);
RESET ROLE;

-- with allowed_dirs set, only files under those directories
SELECT csv_try(format('COPY (SELECT 1 WHERE false) TO PROGRAM %L',
       format('ln -sf %s/outside.csv %s/allowed/link.csv && ln -sfn %s %s/allowed/dirlink',
              :'data', :'data', :'data', :'data')));
SELECT set_config('csvpipe.allowed_dirs', :'data' || '/allowed/, /nonexistent', false) IS NOT NULL AS set;
SET ROLE csv_reader;
SELECT * FROM csvpipe.read(:'data' || '/allowed/in.csv') AS t(id int, name text);
SELECT * FROM csvpipe.read(:'data' || '/allowed/sub/../sub/deep.csv') AS t(id int, name text);
SELECT * FROM csv_try(format('SELECT * FROM csvpipe.read(%L) AS t(id int, name text)', :'data' || '/outside.csv'));
-- ".." and symlinks cannot escape
SELECT * FROM csv_try(format('SELECT * FROM csvpipe.read(%L) AS t(id int, name text)', :'data' || '/allowed/../outside.csv'));
SELECT * FROM csv_try(format('SELECT * FROM csvpipe.read(%L) AS t(id int, name text)', :'data' || '/allowed/link.csv'));
SELECT * FROM csv_try(format('SELECT * FROM csvpipe.read(%L) AS t(id int, name text)', :'data' || '/allowed/dirlink/outside.csv'));
-- a prefix of a directory name is not that directory
SELECT * FROM csv_try(format('SELECT * FROM csvpipe.read(%L) AS t(id int, name text)', :'data' || '/allowed_not/x.csv'));
RESET ROLE;
-- the restriction holds for superusers too
SELECT * FROM csv_try(format('SELECT * FROM csvpipe.read(%L) AS t(id int, name text)', :'data' || '/outside.csv'));
RESET csvpipe.allowed_dirs;
SELECT count(*) FROM csvpipe.read(:'data' || '/outside.csv') AS t(id int, name text);

DROP ROLE csv_nobody;
DROP ROLE csv_reader;
