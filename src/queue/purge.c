/*-------------------------------------------------------------------------
 *
 * purge.c
 *		Operating the job history for months (extension 1.1):
 *		csvpipe.purge(older_than, keep_loaded_files), and the backoff that
 *		keeps csvpipe.submit from queueing a file that keeps failing
 *		(csvpipe.submit_backoff(failures) and its two settings).
 *
 * purge removes finished jobs (done, failed, cancelled) that finished
 * before now() - older_than, with their chunk ledger rows and rejected
 * rows, in one statement (so in the caller's transaction, all or nothing).
 * It acts only on jobs of roles whose privileges the caller has
 * (has_privs_of_role, as csvpipe.jobs shows them and cancel/resume act on
 * them; every job for a superuser); other roles' jobs are left alone,
 * silently, as the views hide them.  A job that still has prepared
 * transactions named after it (an atomic load that a crash left
 * half-finished) is kept: the launcher settles those following the job's
 * recorded decision, which must still be there.
 *
 * "Exactly once" for submit rests on the 'done' jobs: submit skips a file
 * whose identity (canonical path, device, inode, size, mtime) a done job of
 * the same role loaded into the same target.  So purge first copies each
 * removed done job's identity into csvpipe.loaded_file, which submit
 * checks too (a row of about 100 bytes per file).  A transaction-mode
 * load's 'done' is written by a coordinator that commits on its own, so a
 * done job whose load_xid aborted loaded nothing: it is removed without a
 * record -- unless its target has foreign tables, where it is in doubt
 * (csv_txn_job_in_doubt_sql: a COMMIT that failed on one server may have
 * left its rows on another) and its file is recorded as loaded, as submit
 * treats it -- and one whose load_xid is still in progress is not removed
 * yet.
 *
 * The shard ledgers of chunked loads into foreign tables are not purged
 * here: that would delete on other servers from the caller's transaction,
 * which postgres_fdw commits there before it commits here, as a role whose
 * mapping could then delete any job's ledger rows (doc/sharded.md has
 * the statement a superuser runs instead).
 * keep_loaded_files =>
 * false is the other choice: nothing is copied, and the loaded-file records
 * older than the cutoff are forgotten as well, so submit loads those files
 * again if they are still there.  Either way, records for a target or a
 * role that no longer exists are dropped (its oid could be reused by a new
 * table or role, and pg_dump writes a dangling regclass or regrole as a bare
 * number, which means whatever has that oid in the restored cluster).
 * loaded_file's target and submitted_by are regclass and regrole for that
 * dump: they are written as names and restored to the same table and role.
 *
 * Backoff: a file whose jobs failed n times (same identity, target and
 * role, counted from csvpipe.job) is skipped by submit until the last
 * failure's finished_at + csvpipe.submit_backoff * 2^(n-1), at most
 * csvpipe.submit_backoff_max; force => true queues it anyway.
 * csvpipe.jobs shows failures and backoff_until for each failed job
 * through csvpipe.submit_backoff(), the one place the delay is computed.
 * Purging the failed jobs resets a file's count.
 *
 * All SQL runs through csv_internal_query (internal_sql.c).  No shared
 * state; the statements' own row locks serialize purge with resume and
 * cancel (a job resumed meanwhile is no longer finished, and stays).
 *
 *-------------------------------------------------------------------------
 */
#include "jobs.h"
#include "txn.h"

#include <math.h>

#include "catalog/pg_type.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/timestamp.h"

PG_FUNCTION_INFO_V1(csvpipe_purge);
PG_FUNCTION_INFO_V1(csvpipe_submit_backoff);

int			csv_backoff_secs = 60;	/* s */
int			csv_backoff_max_secs = 6 * 3600;	/* s */

void
csv_purge_init(void)
{
	DefineCustomIntVariable("csvpipe.submit_backoff",
							"How long csvpipe.submit skips a file after a job of it failed; doubles at each further failure.",
							"0 turns the backoff off.",
							&csv_backoff_secs,
							60, 0, INT_MAX,
							PGC_SIGHUP,
							GUC_UNIT_S,
							NULL, NULL, NULL);

	DefineCustomIntVariable("csvpipe.submit_backoff_max",
							"Longest time csvpipe.submit skips a file whose jobs keep failing.",
							NULL,
							&csv_backoff_max_secs,
							6 * 3600, 0, INT_MAX,
							PGC_SIGHUP,
							GUC_UNIT_S,
							NULL, NULL, NULL);
}

/*
 * csvpipe.submit_backoff(failures int) RETURNS interval: how long submit
 * skips a file after its jobs failed this many times (0 for none).
 */
Datum
csvpipe_submit_backoff(PG_FUNCTION_ARGS)
{
	int32		failures = PG_GETARG_INT32(0);
	Interval   *result = palloc0(sizeof(Interval));
	double		secs = 0;

	if (failures > 0 && csv_backoff_secs > 0)
	{
		/* 2^(n-1) in floating point: no overflow for any n, then capped */
		secs = (double) csv_backoff_secs * pow(2.0, Min(failures - 1, 1000));
		secs = Min(secs, (double) csv_backoff_max_secs);
	}
	result->time = (int64) secs * USECS_PER_SEC;
	PG_RETURN_INTERVAL_P(result);
}

/* The jobs of this database that have prepared transactions named after them */
static ArrayType *
jobs_with_prepared_parts(void)
{
	List	   *jobs = csv_txn_prepared_jobs(MyDatabaseId);
	Datum	   *ids = palloc(sizeof(Datum) * Max(list_length(jobs), 1));
	int			n = 0;
	ListCell   *lc;

	foreach(lc, jobs)
		ids[n++] = Int64GetDatum(((CsvPreparedJob *) lfirst(lc))->job_id);
	return construct_array(ids, n, INT8OID, sizeof(int64), FLOAT8PASSBYVAL, TYPALIGN_DOUBLE);
}

/*
 * csvpipe.purge(older_than interval, keep_loaded_files boolean DEFAULT true,
 *				 OUT jobs, OUT chunks, OUT rejected_rows,
 *				 OUT loaded_files_kept, OUT loaded_files_forgotten)
 */
Datum
csvpipe_purge(PG_FUNCTION_ARGS)
{
	Interval   *older_than;
	bool		keep;
	TupleDesc	desc;
	Oid			types[5] = {INTERVALOID, BOOLOID, OIDOID, INT8ARRAYOID, BOOLOID};
	Datum		values[5];
	CsvRows    *r;
	Datum		out[5];
	bool		outnull[5] = {false, false, false, false, false};

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("csvpipe.purge: older_than must not be NULL")));
	older_than = PG_GETARG_INTERVAL_P(0);
	if (older_than->time < 0 || older_than->day < 0 || older_than->month < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("csvpipe.purge: older_than must not be negative")));
	keep = PG_ARGISNULL(1) ? true : PG_GETARG_BOOL(1);
	if (get_call_result_type(fcinfo, NULL, &desc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "csvpipe.purge must return a record");
	desc = BlessTupleDesc(desc);

	values[0] = IntervalPGetDatum(older_than);
	values[1] = BoolGetDatum(superuser());
	values[2] = ObjectIdGetDatum(GetUserId());
	values[3] = PointerGetDatum(jobs_with_prepared_parts());
	values[4] = BoolGetDatum(keep);

	/*
	 * One statement: its snapshot sees the jobs it deletes and the ledger
	 * and rejected rows hanging off them consistently.  $2 OR pg_has_role:
	 * a superuser purges every role's jobs (and NULL-role ones).
	 */
	r = csv_internal_query(psprintf(
		"WITH gone AS ("
		"  DELETE FROM @extschema@.job j"
		"   WHERE j.state IN ('done', 'failed', 'cancelled')"
		"     AND coalesce(j.finished_at, j.submitted_at) < pg_catalog.now() - $1"
		"     AND ($2 OR coalesce(pg_catalog.pg_has_role($3, j.submitted_by, 'USAGE'), false))"
		"     AND j.job_id <> ALL ($4)"
		/* a load whose transaction is still open: it may yet roll back */
		"     AND coalesce(pg_catalog.pg_xact_status(j.load_xid), 'committed')"
		"         OPERATOR(pg_catalog.<>) 'in progress'"
		"  RETURNING j.job_id, j.state, j.path, j.target, j.submitted_by, j.file_size,"
		"            j.file_dev, j.file_ino, j.file_mtime_ns, j.finished_at, j.submitted_at,"
		"            coalesce(pg_catalog.pg_xact_status(j.load_xid), 'committed') AS xact,"
		"            %s AS in_doubt"
		"), kept AS ("
		"  INSERT INTO @extschema@.loaded_file (target, path, submitted_by, file_size,"
		"         file_dev, file_ino, file_mtime_ns, job_id, loaded_at)"
		"  SELECT DISTINCT ON (g.target, g.path, g.submitted_by, g.file_size, g.file_dev,"
		"                     g.file_ino, g.file_mtime_ns)"
		"         g.target, g.path, g.submitted_by, g.file_size, g.file_dev, g.file_ino,"
		"         g.file_mtime_ns, g.job_id, coalesce(g.finished_at, g.submitted_at)"
		"    FROM gone g"
		"   WHERE $5 AND ((g.state = 'done' AND g.xact OPERATOR(pg_catalog.<>) 'aborted')"
		/* in doubt: may be on a server (csv_txn_job_in_doubt_sql) */
		"          OR (g.in_doubt AND (EXISTS (SELECT 1 FROM pg_catalog.pg_class c"
		"                                      WHERE c.oid OPERATOR(pg_catalog.=) g.target"
		"                                        AND c.relkind OPERATOR(pg_catalog.=) 'f')"
		"                              OR EXISTS (SELECT 1 FROM pg_catalog.pg_partition_tree(g.target::pg_catalog.regclass) p"
		"                                         JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) p.relid"
		"                                        WHERE c.relkind OPERATOR(pg_catalog.=) 'f'))))"
		"     AND g.submitted_by IS NOT NULL"
		"     AND g.file_size IS NOT NULL AND g.file_dev IS NOT NULL"
		"     AND g.file_ino IS NOT NULL AND g.file_mtime_ns IS NOT NULL"
		"   ORDER BY g.target, g.path, g.submitted_by, g.file_size, g.file_dev,"
		"            g.file_ino, g.file_mtime_ns, g.job_id DESC"
		"  ON CONFLICT DO NOTHING"
		"  RETURNING 1"
		"), chunks AS ("
		"  DELETE FROM @extschema@.chunks c USING gone g WHERE c.job_id = g.job_id RETURNING 1"
		"), rejected AS ("
		"  DELETE FROM @extschema@.rejected x"
		"   WHERE x.job_id IN (SELECT g.job_id FROM gone g)"
		/* rows of no job at all (a superuser's purge only) */
		"      OR ($2 AND x.logged_at < pg_catalog.now() - $1"
		"          AND NOT EXISTS (SELECT 1 FROM @extschema@.job j WHERE j.job_id = x.job_id))"
		"  RETURNING 1"
		"), forgotten AS ("
		"  DELETE FROM @extschema@.loaded_file l"
		"   WHERE ($2 OR coalesce(pg_catalog.pg_has_role($3, l.submitted_by, 'USAGE'), false))"
		"     AND ((NOT $5 AND l.loaded_at < pg_catalog.now() - $1)"
		"          OR NOT EXISTS (SELECT 1 FROM pg_catalog.pg_class c WHERE c.oid = l.target)"
		"          OR NOT EXISTS (SELECT 1 FROM pg_catalog.pg_authid a WHERE a.oid = l.submitted_by))"
		"  RETURNING 1"
		")"
		"SELECT (SELECT count(*) FROM gone), (SELECT count(*) FROM chunks),"
		"       (SELECT count(*) FROM rejected), (SELECT count(*) FROM kept),"
		"       (SELECT count(*) FROM forgotten)",
		csv_txn_job_in_doubt_sql("j.")),
		5, types, values, NULL);

	for (int i = 0; i < 5; i++)
		out[i] = CSV_ROW_VALUE(r, 0, i);
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(desc, out, outnull)));
}
