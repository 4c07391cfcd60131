/*-------------------------------------------------------------------------
 *
 * fdw_calls.c
 *		postgres_fdw's and libpq's functions that csvpipe calls, found in
 *		postgres_fdw's library at run time.
 *
 * Chunked loads into postgres_fdw tables send a few statements of their own
 * (shards.c: SET LOCAL plan_cache_mode; fdw_reuse.c: the remote table's
 * columns) through the very connection and remote transaction the chunk's
 * rows use, postgres_fdw's: its exported connection functions, and libpq's
 * through its library, which links libpq (csvpipe itself does not).  Looked
 * up once per process, on first use.
 *
 * Per-process state only (the function pointers); no locks.
 *
 *-------------------------------------------------------------------------
 */
#include "fdw_calls.h"

#include "fmgr.h"

static CsvFdwCalls calls;
static bool loaded = false;

static void *
fdw_function(const char *name)
{
	return load_external_function("$libdir/postgres_fdw", name, true, NULL);
}

const CsvFdwCalls *
csv_fdw_calls(void)
{
	if (loaded)
		return &calls;
	calls.get_connection = fdw_function("GetConnection");
	calls.release_connection = fdw_function("ReleaseConnection");
	calls.do_sql_command = fdw_function("do_sql_command");
	calls.exec_query = fdw_function("pgfdw_exec_query");
	calls.report_error = fdw_function("pgfdw_report_error");
	calls.server_version = fdw_function("PQserverVersion");
	calls.backend_pid = fdw_function("PQbackendPID");
	calls.result_status = fdw_function("PQresultStatus");
	calls.nfields = fdw_function("PQnfields");
	calls.fname = fdw_function("PQfname");
	calls.ftype = fdw_function("PQftype");
	calls.fmod = fdw_function("PQfmod");
	calls.clear = fdw_function("PQclear");
	loaded = true;
	return &calls;
}
