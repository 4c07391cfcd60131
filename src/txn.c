/*-------------------------------------------------------------------------
 *
 * txn.c
 *		How a load commits: atomic (two-phase) or chunked (ledger), the job
 *		row, and the coordinator worker that finishes prepared transactions.
 *
 * A load commits in its workers, never in the caller's transaction.
 *
 *	chunked (atomic => false): each chunk's rows and its row in
 *		csvpipe.chunks commit together, so a chunk is loaded exactly once
 *		(the ledger's primary key) and a broken job can be resumed.
 *
 *	atomic (default): each worker runs one explicit transaction block for
 *		all its chunks and ends it with PREPARE TRANSACTION
 *		'csvpipe_<job>_<worker>'.  When every worker has prepared, the
 *		leader starts a coordinator worker that records the decision in
 *		csvpipe.job, then runs COMMIT PREPARED for each part; on any failure
 *		it records "rollback" and rolls back whatever was prepared.  COMMIT
 *		PREPARED cannot run in the caller's transaction block, hence the
 *		separate worker.  After a crash, csvpipe.resolve_prepared() finishes
 *		leftover parts from the recorded decision (none recorded: roll back).
 *
 * Bookkeeping rows are written as the bootstrap superuser: the caller needs
 * INSERT on its target, not on csvpipe's own tables.
 *
 *-------------------------------------------------------------------------
 */
#include "txn.h"
#include "progress.h"

#include "access/twophase.h"
#include "access/xact.h"
#include "catalog/pg_authid.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "storage/ipc.h"
#include "storage/proc.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "tcop/tcopprot.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"

PG_FUNCTION_INFO_V1(csvpipe_resolve_prepared);

int
max_prepared_transactions_setting(void)
{
	return max_prepared_xacts;
}

char *
csv_txn_gid(int64 job_id, int worker_no)
{
	return psprintf("csvpipe_" INT64_FORMAT "_%d", job_id, worker_no);
}

/* Run one bookkeeping statement as the bootstrap superuser */
static void
run_as_owner(const char *sql, int nargs, Oid *argtypes, Datum *values,
			 const char *nulls)
{
	Oid			save_userid;
	int			save_sec;
	int			rc;

	int			save_nestlevel;

	GetUserIdAndSecContext(&save_userid, &save_sec);
	SetUserIdAndSecContext(BOOTSTRAP_SUPERUSERID,
						   save_sec | SECURITY_LOCAL_USERID_CHANGE);
	/* the caller's search_path must not pick the functions run as superuser */
	save_nestlevel = NewGUCNestLevel();
	(void) set_config_option("search_path", "pg_catalog, pg_temp",
							 PGC_USERSET, PGC_S_SESSION, GUC_ACTION_SAVE, true, 0, false);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	rc = SPI_execute_with_args(sql, nargs, argtypes, values, nulls, false, 0);
	if (rc < 0)
		elog(ERROR, "csvpipe bookkeeping failed: %s", SPI_result_code_string(rc));
	SPI_finish();
	AtEOXact_GUC(false, save_nestlevel);
	SetUserIdAndSecContext(save_userid, save_sec);
}

/* Worker 0, first thing: the job row, in its own committed transaction */
void
csv_txn_record_job_start(CsvParallelShared *shared, const char *path)
{
	Oid			types[12] = {INT8OID, TEXTOID, OIDOID, BOOLOID, INT4OID, INT4OID,
	OIDOID, INT8OID, INT8OID, INT8OID, INT8OID, TEXTOID};
	Datum		values[12];

	values[0] = Int64GetDatum(shared->job_id);
	values[1] = CStringGetTextDatum(path);
	values[2] = ObjectIdGetDatum(shared->target_relid);
	values[3] = BoolGetDatum(shared->atomic);
	values[4] = Int32GetDatum(shared->nworkers);
	values[5] = Int32GetDatum(shared->leader_pid);
	values[6] = ObjectIdGetDatum(shared->current_user_id);
	values[7] = Int64GetDatum(shared->file.size);
	values[8] = Int64GetDatum(shared->file.dev);
	values[9] = Int64GetDatum(shared->file.ino);
	values[10] = Int64GetDatum(shared->file.mtime_ns);
	values[11] = CStringGetTextDatum(shared->options_json[0] ? shared->options_json : "{}");

	StartTransactionCommand();
	PushActiveSnapshot(GetTransactionSnapshot());
	run_as_owner("INSERT INTO csvpipe.job (job_id, path, target, state, atomic, workers, "
				 "leader_pid, submitted_by, file_size, file_dev, file_ino, file_mtime_ns, "
				 "options, submitted_at, started_at) "
				 "VALUES ($1, $2, $3, 'running', $4, $5, $6, $7, $8, $9, $10, $11, $12::jsonb, now(), now()) "
				 "ON CONFLICT (job_id) DO UPDATE SET state = 'running', "
				 "started_at = CASE WHEN csvpipe.job.origin = 'submit' "
				 "  THEN coalesce(csvpipe.job.started_at, now()) ELSE now() END, "
				 "finished_at = NULL, error = NULL, "
				 "leader_pid = excluded.leader_pid, workers = excluded.workers, "
				 "file_size = excluded.file_size, file_dev = excluded.file_dev, "
				 "file_ino = excluded.file_ino, file_mtime_ns = excluded.file_mtime_ns, "
				 "options = coalesce(csvpipe.job.options, excluded.options)",
				 12, types, values, NULL);
	PopActiveSnapshot();
	CommitTransactionCommand();
}

/* Atomic mode: one explicit transaction block for all of this worker's chunks */
void
csv_txn_begin_atomic(void)
{
	StartTransactionCommand();
	BeginTransactionBlock();
	CommitTransactionCommand();
	StartTransactionCommand();
	PushActiveSnapshot(GetTransactionSnapshot());
}

/* Chunked mode: one transaction per chunk */
void
csv_txn_begin_chunk(void)
{
	StartTransactionCommand();
	PushActiveSnapshot(GetTransactionSnapshot());
}

void
csv_txn_ledger_insert(CsvParallelShared *shared, CsvChunkHeader *hdr, int64 rows)
{
	Oid			types[6] = {INT8OID, INT8OID, INT8OID, INT8OID, INT8OID, INT8OID};
	Datum		values[6];

	values[0] = Int64GetDatum(shared->job_id);
	values[1] = Int64GetDatum(hdr->chunk_no);
	values[2] = Int64GetDatum(hdr->start_offset);
	values[3] = Int64GetDatum(hdr->start_offset + hdr->length);
	values[4] = Int64GetDatum(hdr->first_line);
	values[5] = Int64GetDatum(rows);
	run_as_owner("INSERT INTO csvpipe.chunks (job_id, chunk_no, start_offset, end_offset, "
				 "first_line, rows, worker_pid, committed_at) "
				 "VALUES ($1, $2, $3, $4, $5, $6, pg_backend_pid(), now())",
				 6, types, values, NULL);
}

/* Chunked mode: the chunk's rows and its ledger row commit together */
void
csv_txn_commit_chunk(CsvParallelShared *shared, CsvChunkHeader *hdr, int64 rows)
{
	csv_txn_ledger_insert(shared, hdr, rows);
	PopActiveSnapshot();
	CommitTransactionCommand();
}

/* Atomic mode: end the worker's block with PREPARE TRANSACTION */
void
csv_txn_prepare(CsvParallelShared *shared, int worker_no)
{
	char	   *gid = csv_txn_gid(shared->job_id, worker_no);

	PopActiveSnapshot();
	CommitTransactionCommand();
	StartTransactionCommand();
	if (!PrepareTransactionBlock(gid))
		ereport(ERROR,
				(errcode(ERRCODE_TRANSACTION_ROLLBACK),
				 errmsg("csvpipe worker %d could not prepare its transaction", worker_no)));
	CommitTransactionCommand();
}

/*
 * Start the coordinator; with wait, block until it has exited.  Returns
 * false if no background worker slot was free.
 */
bool
csv_txn_run_coordinator(CsvCoordArgs *args, bool wait)
{
	BackgroundWorker bgw;
	BackgroundWorkerHandle *handle;

	memset(&bgw, 0, sizeof(bgw));
	bgw.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	bgw.bgw_start_time = BgWorkerStart_ConsistentState;
	bgw.bgw_restart_time = BGW_NEVER_RESTART;
	snprintf(bgw.bgw_library_name, BGW_MAXLEN, "csvpipe");
	snprintf(bgw.bgw_function_name, BGW_MAXLEN, "csvpipe_coordinator_main");
	snprintf(bgw.bgw_type, BGW_MAXLEN, "csvpipe coordinator");
	snprintf(bgw.bgw_name, BGW_MAXLEN, "csvpipe coordinator for job " INT64_FORMAT,
			 args->job_id);
	bgw.bgw_notify_pid = MyProcPid;
	memcpy(bgw.bgw_extra, args, sizeof(CsvCoordArgs));

	if (!RegisterDynamicBackgroundWorker(&bgw, &handle))
		return false;
	if (wait)
		(void) WaitForBackgroundWorkerShutdown(handle);
	return true;
}

void
csvpipe_coordinator_main(Datum main_arg)
{
	CsvCoordArgs args;
	List	   *gids = NIL;
	ListCell   *lc;
	char	   *pattern;

	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();
	memcpy(&args, MyBgworkerEntry->bgw_extra, sizeof(args));
	BackgroundWorkerInitializeConnectionByOid(args.database_id, BOOTSTRAP_SUPERUSERID, 0);
	pgstat_report_appname("csvpipe coordinator");
	csv_progress_register(CSV_PROC_COORDINATOR, args.job_id, 0);

	pattern = psprintf("csvpipe\\_" INT64_FORMAT "\\_%%", args.job_id);

	/* 1. record the decision (and the job's end) durably */
	StartTransactionCommand();
	PushActiveSnapshot(GetTransactionSnapshot());
	{
		Oid			types[8] = {INT8OID, TEXTOID, TEXTOID, INT8OID, INT8OID, TEXTOID, INT8OID, INT4OID};
		Datum		values[8];
		char		nulls[8] = "        ";
		const char *decision = args.action == CSV_COORD_COMMIT ? "commit" :
		args.action == CSV_COORD_ROLLBACK ? "rollback" : NULL;

		values[0] = Int64GetDatum(args.job_id);
		values[1] = CStringGetTextDatum(args.state);
		if (decision)
			values[2] = CStringGetTextDatum(decision);
		else
			nulls[2] = 'n';
		values[3] = Int64GetDatum(args.rows_loaded);
		values[4] = Int64GetDatum(args.bytes);
		if (args.error[0])
			values[5] = CStringGetTextDatum(args.error);
		else
			nulls[5] = 'n';
		values[6] = Int64GetDatum(args.rows_rejected);
		values[7] = Int32GetDatum(args.retries);

		/*
		 * Rows loaded and rejected: what the ledger and csvpipe.rejected hold
		 * for chunked jobs (a resumed job counts its earlier chunks too); for
		 * atomic ones, the leader's counts, since the parts holding those
		 * rows are committed only after this update.
		 */
		run_as_owner("UPDATE csvpipe.job SET state = $2, decision = coalesce($3, decision), "
					 "rows_loaded = CASE WHEN NOT atomic THEN "
					 "  (SELECT coalesce(sum(rows), 0) FROM csvpipe.chunks c WHERE c.job_id = $1) "
					 "  WHEN $2 = 'done' THEN $4 ELSE 0 END, "
					 "rows_rejected = CASE WHEN NOT atomic THEN "
					 "  (SELECT count(*) FROM csvpipe.rejected r WHERE r.job_id = $1) "
					 "  WHEN $2 = 'done' THEN $7 ELSE 0 END, "
					 "retries = retries + $8, "
					 "bytes = $5, error = CASE WHEN $6 IS NULL THEN NULL ELSE coalesce(error, $6) END, "
					 "finished_at = now(), leader_pid = NULL "
					 "WHERE job_id = $1",
					 8, types, values, nulls);

		/* which parts are prepared */
		if (args.action != CSV_COORD_NONE)
		{
			Oid			ptypes[1] = {TEXTOID};
			Datum		pvalues[1];

			pvalues[0] = CStringGetTextDatum(pattern);
			if (SPI_connect() != SPI_OK_CONNECT)
				elog(ERROR, "SPI_connect failed");
			if (SPI_execute_with_args("SELECT gid FROM pg_prepared_xacts "
									  "WHERE gid LIKE $1 AND database = current_database()",
									  1, ptypes, pvalues, NULL, true, 0) != SPI_OK_SELECT)
				elog(ERROR, "could not list prepared transactions");
			for (uint64 i = 0; i < SPI_processed; i++)
			{
				char	   *gid = SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1);
				MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);

				gids = lappend(gids, pstrdup(gid));
				MemoryContextSwitchTo(old);
			}
			SPI_finish();
		}
	}
	PopActiveSnapshot();
	CommitTransactionCommand();

	/* 2. finish each prepared part, each in its own transaction */
	foreach(lc, gids)
	{
		StartTransactionCommand();
		FinishPreparedTransaction((char *) lfirst(lc), args.action == CSV_COORD_COMMIT);
		CommitTransactionCommand();
	}
}

/*
 * csvpipe.resolve_prepared(): finish the prepared parts of atomic loads left
 * behind by a crash, following each job's recorded decision (none recorded:
 * roll back).  Skips jobs whose leader is still running, and queued jobs
 * still marked running: the launcher rolls those back and queues them again.
 */
Datum
csvpipe_resolve_prepared(PG_FUNCTION_ARGS)
{
	int64		resolved = 0;
	List	   *jobs = NIL;
	List	   *commit = NIL;
	ListCell   *lc,
			   *lc2;

	if (!superuser())
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("only superusers can resolve csvpipe's prepared transactions")));

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (SPI_execute("SELECT DISTINCT split_part(p.gid, '_', 2)::bigint AS job, "
					"       coalesce(j.decision = 'commit', false) "
					"  FROM pg_prepared_xacts p "
					"  LEFT JOIN csvpipe.job j ON j.job_id = split_part(p.gid, '_', 2)::bigint "
					" WHERE p.gid ~ '^csvpipe_[0-9]+_[0-9]+$' AND p.database = current_database() "
					"   AND NOT coalesce(j.state = 'running' AND j.origin = 'submit', false) "	/* the launcher's */
					"   AND (j.leader_pid IS NULL OR NOT EXISTS "
					"        (SELECT 1 FROM pg_stat_activity a WHERE a.pid = j.leader_pid))",
					true, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not list prepared transactions");
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		bool		isnull;
		int64		job = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1, &isnull));
		bool		c = DatumGetBool(SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 2, &isnull));
		MemoryContext old = MemoryContextSwitchTo(CurTransactionContext);

		jobs = lappend(jobs, psprintf(INT64_FORMAT, job));
		commit = lappend_int(commit, c);
		MemoryContextSwitchTo(old);
	}
	SPI_finish();

	forboth(lc, jobs, lc2, commit)
	{
		CsvCoordArgs args;

		memset(&args, 0, sizeof(args));
		args.database_id = MyDatabaseId;
		args.job_id = pg_strtoint64((char *) lfirst(lc));
		args.action = lfirst_int(lc2) ? CSV_COORD_COMMIT : CSV_COORD_ROLLBACK;
		strlcpy(args.state, lfirst_int(lc2) ? "done" : "failed", sizeof(args.state));
		strlcpy(args.error, lfirst_int(lc2) ? "" : "rolled back by csvpipe.resolve_prepared()",
				sizeof(args.error));
		if (!csv_txn_run_coordinator(&args, true))
			ereport(ERROR,
					(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
					 errmsg("no background worker slot free to resolve job %s",
							(char *) lfirst(lc))));
		resolved++;
	}
	PG_RETURN_INT64(resolved);
}
