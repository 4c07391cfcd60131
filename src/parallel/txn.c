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
 *		'csvpipe_<database oid>_<job>_<worker>_<tag>', the tag derived from
 *		a random nonce the leader draws for each run and the workers record
 *		with the job (csvpipe.job.gid_nonce, superuser-only), so no role can
 *		guess a name and take it first, and names never collide across
 *		databases.  When every worker has sent its own "prepared" message
 *		(the existence of a gid proves nothing), the leader starts a
 *		coordinator worker that records the decision and the parts it
 *		commits (csvpipe.job.decision, commit_parts), then runs COMMIT
 *		PREPARED for exactly those parts and ROLLBACK PREPARED for anything
 *		else named after the job; on any failure it records "rollback" and
 *		rolls back every part.  COMMIT PREPARED cannot run in the caller's
 *		transaction block, hence the separate worker.  A job whose leader
 *		died is settled the same way from the recorded decision (none:
 *		rollback) by the launcher within seconds (csv_txn_settle_job), or
 *		by csvpipe.resolve_prepared().
 *
 * The job row is committed before any chunk commits or any part is
 * prepared: each worker makes sure of it, in a transaction of its own,
 * before its first chunk (csv_txn_record_job_start).  When a load fails,
 * its leader waits for the coordinator, which records the job's end (and
 * writes the job row first if no worker got to it, from the leader's
 * segment), before the error reaches the client.
 *
 * Bookkeeping statements go through csv_internal_query (internal_sql.c):
 * the caller needs INSERT on its target, not on csvpipe's own tables.
 *
 *-------------------------------------------------------------------------
 */
#include "txn.h"
#include "internal_sql.h"
#include "progress.h"

#include "access/twophase.h"
#include "storage/dsm.h"
#include "access/xact.h"
#include "catalog/pg_authid.h"
#include "catalog/pg_type.h"
#include "common/cryptohash.h"
#include "common/sha2.h"
#include "utils/array.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "storage/ipc.h"
#include "storage/proc.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "tcop/tcopprot.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/xid8.h"

PG_FUNCTION_INFO_V1(csvpipe_resolve_prepared);

int
max_prepared_transactions_setting(void)
{
	return max_prepared_xacts;
}

/* A fresh random secret for the gids of one atomic run */
void
csv_txn_new_nonce(char *nonce)
{
	uint8		raw[CSV_GID_NONCE_LEN / 2];

	if (!pg_strong_random(raw, sizeof(raw)))
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("could not generate a random number for csvpipe's transaction names")));
	hex_encode((const char *) raw, sizeof(raw), nonce);
	nonce[CSV_GID_NONCE_LEN] = '\0';
}

/* "csvpipe_<database oid>_<job>_": what every part of a job's gid starts with */
static char *
gid_prefix(Oid dbid, int64 job_id)
{
	return psprintf("csvpipe_%u_" INT64_FORMAT "_", dbid, job_id);
}

/* the tag of worker_no's gid: sha256(nonce:db:job:worker), 16 hex digits */
static void
gid_tag(const char *nonce, Oid dbid, int64 job_id, int worker_no, char *tag)
{
	char	   *msg = psprintf("%s:%u:" INT64_FORMAT ":%d", nonce, dbid, job_id, worker_no);
	uint8		digest[PG_SHA256_DIGEST_LENGTH];
	pg_cryptohash_ctx *ctx = pg_cryptohash_create(PG_SHA256);

	if (pg_cryptohash_init(ctx) < 0 ||
		pg_cryptohash_update(ctx, (const uint8 *) msg, strlen(msg)) < 0 ||
		pg_cryptohash_final(ctx, digest, sizeof(digest)) < 0)
	{
		pg_cryptohash_free(ctx);
		elog(ERROR, "could not compute the name of a csvpipe prepared transaction");
	}
	pg_cryptohash_free(ctx);
	hex_encode((const char *) digest, CSV_GID_TAG_LEN / 2, tag);
	tag[CSV_GID_TAG_LEN] = '\0';
	pfree(msg);
}

/*
 * The gid of worker_no's part of an atomic run:
 * csvpipe_<database oid>_<job>_<worker>_<tag>, the tag derived from the
 * run's secret nonce (recorded with the job, readable by superusers only).
 * Unique across databases, and unguessable even by a role that sees the
 * other parts' gids in pg_prepared_xacts, so nobody can take a name before
 * a worker does.
 */
char *
csv_txn_gid(int64 job_id, const char *nonce, int worker_no)
{
	char		tag[CSV_GID_TAG_LEN + 1];

	gid_tag(nonce, MyDatabaseId, job_id, worker_no, tag);
	return psprintf("csvpipe_%u_" INT64_FORMAT "_%d_%s", MyDatabaseId, job_id, worker_no, tag);
}

/*
 * The one parser of csvpipe gid names, csvpipe_<database oid>_<job>_<worker>_<tag>:
 * the database, job and worker a gid is named after (worker_no may be
 * NULL); false if not csvpipe's form.
 */
bool
csv_txn_parse_gid(const char *gid, Oid *dbid, int64 *job_id, int *worker_no)
{
	unsigned int db;
	long long	job;
	int			w;
	int			n = 0;

	if (sscanf(gid, "csvpipe_%u_%lld_%d_%n", &db, &job, &w, &n) != 3 || n == 0)
		return false;
	*dbid = (Oid) db;
	*job_id = (int64) job;
	if (worker_no)
		*worker_no = w;
	return true;
}

/*
 * Inside a transaction: a CsvPreparedJob for each prepared transaction with
 * a csvpipe gid name whose database is the one it was prepared in -- of
 * database dbid, or of every database if dbid is InvalidOid.  One entry per
 * gid, so a job with several parts comes several times.
 */
List *
csv_txn_prepared_jobs(Oid dbid)
{
	Oid			types[1] = {TEXTOID};
	Datum		values[1];
	CsvRows    *r;
	List	   *jobs = NIL;

	values[0] = CStringGetTextDatum(OidIsValid(dbid) ?
									psprintf("csvpipe_%u_", dbid) : "csvpipe_");
	r = csv_internal_query("SELECT p.gid, d.oid FROM pg_catalog.pg_prepared_xacts p "
						   "  JOIN pg_catalog.pg_database d ON d.datname OPERATOR(pg_catalog.=) p.database "
						   " WHERE pg_catalog.starts_with(p.gid, $1)",
						   1, types, values, NULL);
	for (int i = 0; i < r->nrows; i++)
	{
		CsvPreparedJob *pj = palloc(sizeof(CsvPreparedJob));

		if (!csv_txn_parse_gid(TextDatumGetCString(CSV_ROW_VALUE(r, i, 0)),
							   &pj->db, &pj->job_id, NULL) ||
			pj->db != DatumGetObjectId(CSV_ROW_VALUE(r, i, 1)))
		{
			pfree(pj);
			continue;			/* not a name csvpipe gives */
		}
		jobs = lappend(jobs, pj);
	}
	return jobs;
}

typedef struct CsvPart
{
	char	   *gid;
	int			worker_no;
	bool		verified;		/* its tag matches the job's recorded nonce */
} CsvPart;

/*
 * Inside a transaction: the job's recorded nonce (NULL if none, or if the
 * job or the extension is missing) and the prepared transactions of this
 * database named after the job, with whether each is really one of the
 * run's parts.  Allocated in cxt.
 */
static List *
list_job_parts(int64 job_id, MemoryContext cxt)
{
	char	   *prefix = gid_prefix(MyDatabaseId, job_id);
	char	   *nonce = NULL;
	Oid			types[1];
	Datum		values[1];
	CsvRows    *r;
	List	   *parts = NIL;

	if (csv_extension_installed())
	{
		types[0] = INT8OID;
		values[0] = Int64GetDatum(job_id);
		r = csv_internal_query("SELECT gid_nonce FROM @extschema@.job "
							   "WHERE job_id OPERATOR(pg_catalog.=) $1",
							   1, types, values, NULL);
		if (r->nrows == 1 && !CSV_ROW_ISNULL(r, 0, 0))
			nonce = TextDatumGetCString(CSV_ROW_VALUE(r, 0, 0));
	}

	types[0] = TEXTOID;
	values[0] = CStringGetTextDatum(prefix);
	r = csv_internal_query("SELECT gid FROM pg_catalog.pg_prepared_xacts "
						   "WHERE database OPERATOR(pg_catalog.=) pg_catalog.current_database() "
						   "  AND pg_catalog.starts_with(gid, $1)",
						   1, types, values, NULL);
	for (int i = 0; i < r->nrows; i++)
	{
		char	   *gid = TextDatumGetCString(CSV_ROW_VALUE(r, i, 0));
		Oid			db;
		int64		job;
		int			w;
		MemoryContext old;
		CsvPart    *part;

		if (!csv_txn_parse_gid(gid, &db, &job, &w) || w < 0 || w >= CSVPIPE_MAX_SLOTS)
			w = -1;
		old = MemoryContextSwitchTo(cxt);
		part = palloc0(sizeof(CsvPart));
		part->gid = pstrdup(gid);
		part->worker_no = (int) w;
		if (w >= 0 && nonce != NULL)
			part->verified = (strcmp(gid, csv_txn_gid(job_id, nonce, (int) w)) == 0);
		parts = lappend(parts, part);
		MemoryContextSwitchTo(old);
	}
	return parts;
}

/* Does the job's current run have prepared parts?  (a name alone is not one) */
bool
csv_txn_job_has_parts(int64 job_id)
{
	ListCell   *lc;

	foreach(lc, list_job_parts(job_id, CurrentMemoryContext))
		if (((CsvPart *) lfirst(lc))->verified)
			return true;
	return false;
}

/* Outside a transaction: COMMIT or ROLLBACK PREPARED one gid; false on error */
static bool
finish_one(const char *gid, bool commit)
{
	MemoryContext cxt = CurrentMemoryContext;
	bool		ok = true;

	StartTransactionCommand();
	PG_TRY();
	{
		FinishPreparedTransaction(gid, commit);
		CommitTransactionCommand();
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		MemoryContextSwitchTo(cxt);
		edata = CopyErrorData();
		FlushErrorState();
		AbortCurrentTransaction();
		ereport(WARNING,
				(errmsg("csvpipe could not %s prepared transaction \"%s\": %s",
						commit ? "commit" : "roll back", gid, edata->message)));
		FreeErrorData(edata);
		ok = false;
	}
	PG_END_TRY();
	MemoryContextSwitchTo(cxt);
	return ok;
}

/*
 * Outside a transaction: finish the prepared parts of a job.  With commit,
 * a part is committed only if it is a verified part of the job's run and
 * its worker is in parts (the workers whose own "prepared" message the
 * leader received); every other transaction named after the job -- a part
 * of a lost worker whose chunks other workers loaded again, a part of an
 * older run, or a name someone else prepared -- is rolled back.
 */
void
csv_txn_finish_parts(int64 job_id, bool commit, const uint32 *parts)
{
	MemoryContext cxt = CurrentMemoryContext;
	List	   *list;
	ListCell   *lc;

	StartTransactionCommand();
	PushActiveSnapshot(GetTransactionSnapshot());
	list = list_job_parts(job_id, cxt);
	PopActiveSnapshot();
	CommitTransactionCommand();
	MemoryContextSwitchTo(cxt);

	foreach(lc, list)
	{
		CsvPart    *part = (CsvPart *) lfirst(lc);
		bool		c = commit && part->verified && parts != NULL &&
			(parts[part->worker_no / 32] & (1U << (part->worker_no % 32))) != 0;

		(void) finish_one(part->gid, c);
		pfree(part->gid);
	}
	list_free_deep(list);
}

/* commit_parts (int[]) from a bitmap of worker numbers */
static Datum
parts_array(const uint32 *parts)
{
	Datum		elems[CSVPIPE_MAX_SLOTS];
	int			n = 0;

	for (int w = 0; w < CSVPIPE_MAX_SLOTS; w++)
		if (parts[w / 32] & (1U << (w % 32)))
			elems[n++] = Int32GetDatum(w);
	return PointerGetDatum(construct_array(elems, n, INT4OID, 4, true, TYPALIGN_INT));
}

/*
 * Outside a transaction: settle a job whose leader is gone (no csvpipe
 * process works on it any more; the caller checked).  Its recorded
 * decision decides; none recorded: record "rollback" and fail the job.
 * A running queued job is the launcher's (it rolls back and re-queues):
 * skipped.  Returns false if skipped.
 */
bool
csv_txn_settle_job(int64 job_id)
{
	MemoryContext cxt = CurrentMemoryContext;
	bool		commit = false;
	uint32		parts[CSV_PARTS_WORDS];
	bool		skip = false;

	memset(parts, 0, sizeof(parts));
	StartTransactionCommand();
	PushActiveSnapshot(GetTransactionSnapshot());
	if (csv_extension_installed())
	{
		Oid			types[2] = {INT8OID, TEXTOID};
		Datum		values[2];
		CsvRows    *r;

		values[0] = Int64GetDatum(job_id);
		values[1] = CStringGetTextDatum("the leader of this atomic load is gone; its prepared parts were rolled back");
		r = csv_internal_query("UPDATE @extschema@.job SET "
							   "  state = CASE WHEN decision IS NULL AND state OPERATOR(pg_catalog.=) 'running' "
							   "    THEN 'failed' ELSE state END, "
							   "  error = CASE WHEN decision IS NULL THEN coalesce(error, $2) ELSE error END, "
							   "  finished_at = coalesce(finished_at, pg_catalog.now()), "
							   "  leader_pid = NULL, "
							   "  decision = coalesce(decision, 'rollback') "
							   "WHERE job_id OPERATOR(pg_catalog.=) $1 "
							   "  AND NOT (state OPERATOR(pg_catalog.=) 'running' AND origin OPERATOR(pg_catalog.=) 'submit') "
							   "RETURNING decision OPERATOR(pg_catalog.=) 'commit', commit_parts",
							   2, types, values, NULL);
		if (r->nrows == 1)
		{
			commit = DatumGetBool(CSV_ROW_VALUE(r, 0, 0));
			if (commit && !CSV_ROW_ISNULL(r, 0, 1))
			{
				ArrayType  *arr = DatumGetArrayTypeP(CSV_ROW_VALUE(r, 0, 1));
				Datum	   *elems;
				bool	   *enulls;
				int			n;

				deconstruct_array(arr, INT4OID, 4, true, TYPALIGN_INT, &elems, &enulls, &n);
				for (int i = 0; i < n; i++)
				{
					int			w = DatumGetInt32(elems[i]);

					if (!enulls[i] && w >= 0 && w < CSVPIPE_MAX_SLOTS)
						parts[w / 32] |= 1U << (w % 32);
				}
			}
		}
		else
		{
			/* no row updated: the launcher's running job, or no job at all */
			r = csv_internal_query("SELECT 1 FROM @extschema@.job WHERE job_id OPERATOR(pg_catalog.=) $1",
								   1, types, values, NULL);
			skip = (r->nrows > 0);
		}
	}
	PopActiveSnapshot();
	CommitTransactionCommand();
	MemoryContextSwitchTo(cxt);
	if (skip)
		return false;
	csv_txn_finish_parts(job_id, commit, parts);
	ereport(LOG,
			(errmsg("csvpipe: job " INT64_FORMAT ": %s the prepared parts of an atomic load whose leader is gone",
					job_id, commit ? "committed" : "rolled back")));
	return true;
}

/*
 * Inside a transaction: the jobs of this database with prepared
 * transactions named after them and no csvpipe process working on them.
 */
static List *
orphaned_jobs(void)
{
	List	   *jobs = NIL;
	ListCell   *pc;

	foreach(pc, csv_txn_prepared_jobs(MyDatabaseId))
	{
		int64		job = ((CsvPreparedJob *) lfirst(pc))->job_id;
		bool		seen = false;
		ListCell   *lc;

		if (csv_progress_job_pid(job, CSV_PROC_NONE) != 0)
			continue;
		foreach(lc, jobs)
			if (*(int64 *) lfirst(lc) == job)
				seen = true;
		if (!seen)
		{
			int64	   *p = palloc(sizeof(int64));

			*p = job;
			jobs = lappend(jobs, p);
		}
	}
	return jobs;
}

/* Inside a transaction: insert the job row, or mark a known job running */
static void
upsert_job_row(CsvParallelShared *shared, const char *path)
{
	Oid			types[13] = {INT8OID, TEXTOID, OIDOID, BOOLOID, INT4OID, INT4OID,
	OIDOID, INT8OID, INT8OID, INT8OID, INT8OID, TEXTOID, TEXTOID};
	Datum		values[13];
	char		nulls[13] = "             ";

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
	if (shared->gid_nonce[0])
		values[12] = CStringGetTextDatum(shared->gid_nonce);
	else
		nulls[12] = 'n';

	(void) csv_internal_query("INSERT INTO @extschema@.job AS j (job_id, path, target, state, atomic, workers, "
							  "leader_pid, submitted_by, file_size, file_dev, file_ino, file_mtime_ns, "
							  "options, gid_nonce, submitted_at, started_at) "
							  "VALUES ($1, $2, $3, 'running', $4, $5, $6, $7, $8, $9, $10, $11, "
							  "        $12::pg_catalog.jsonb, $13, pg_catalog.now(), pg_catalog.now()) "
							  "ON CONFLICT (job_id) DO UPDATE SET state = 'running', "
							  "started_at = CASE WHEN j.origin OPERATOR(pg_catalog.=) 'submit' "
							  "  THEN coalesce(j.started_at, pg_catalog.now()) ELSE pg_catalog.now() END, "
							  "finished_at = NULL, error = NULL, decision = NULL, commit_parts = NULL, "
							  "gid_nonce = excluded.gid_nonce, "
							  "leader_pid = excluded.leader_pid, workers = excluded.workers, "
							  "file_size = excluded.file_size, file_dev = excluded.file_dev, "
							  "file_ino = excluded.file_ino, file_mtime_ns = excluded.file_mtime_ns, "
							  "options = coalesce(j.options, excluded.options)",
							  13, types, values, nulls);

	/*
	 * (1.1) The transaction-mode leader's (sub)transaction, NULL for the
	 * other modes (a queued job runs again in the mode it asked for).
	 */
	if (get_attnum(csv_extension_relid("job"), "load_xid") != InvalidAttrNumber)
	{
		Oid			xtypes[2] = {INT8OID, XID8OID};
		Datum		xvalues[2];
		char		xnulls[2] = "  ";

		xvalues[0] = Int64GetDatum(shared->job_id);
		xvalues[1] = FullTransactionIdGetDatum(FullTransactionIdFromU64(shared->load_xid));
		if (!shared->txn_load || shared->load_xid == 0)
			xnulls[1] = 'n';
		(void) csv_internal_query("UPDATE @extschema@.job SET load_xid = $2 "
								  "WHERE job_id OPERATOR(pg_catalog.=) $1",
								  2, xtypes, xvalues, xnulls);
	}
}

/*
 * Every load worker, before its first chunk (and before an atomic worker
 * opens its transaction block): make sure the job row is committed, in a
 * transaction of its own.  So no chunk commits and no part is prepared
 * before the job exists, whichever worker gets there first and whichever
 * fails or dies.  The flag is set only after the commit, so a worker that
 * sees it set may go on at once; workers that start before it is set all
 * write the same row (the upserts serialize on it).  The commit follows
 * the worker's synchronous_commit: flushed in prepared and transaction
 * mode, so a job interrupted by a crash is still there (leader_gone);
 * not waited for in chunked mode, where any later chunk commit that
 * survives a crash has flushed it.
 */
void
csv_txn_record_job_start(CsvParallelShared *shared, const char *path)
{
	bool		written;

	SpinLockAcquire(&shared->mutex);
	written = shared->job_row_written;
	SpinLockRelease(&shared->mutex);
	if (written)
		return;

	StartTransactionCommand();
	PushActiveSnapshot(GetTransactionSnapshot());
	upsert_job_row(shared, path);
	PopActiveSnapshot();
	CommitTransactionCommand();

	SpinLockAcquire(&shared->mutex);
	shared->job_row_written = true;
	SpinLockRelease(&shared->mutex);
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
	(void) csv_internal_query("INSERT INTO @extschema@.chunks (job_id, chunk_no, start_offset, end_offset, "
							  "first_line, rows, worker_pid, committed_at) "
							  "VALUES ($1, $2, $3, $4, $5, $6, pg_catalog.pg_backend_pid(), pg_catalog.now())",
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
	char	   *gid = csv_txn_gid(shared->job_id, shared->gid_nonce, worker_no);

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

/*
 * The coordinator works for the job's role, and its status slot says so
 * (it connects as the bootstrap superuser), as its leader's and workers'
 * slots do.
 */
static void
coordinator_set_role(CsvCoordArgs *args, CsvParallelShared *shared)
{
	Oid			role = shared ? shared->current_user_id : InvalidOid;

	if (!OidIsValid(role))
	{
		Oid			types[1] = {INT8OID};
		Datum		values[1];
		CsvRows    *r;

		values[0] = Int64GetDatum(args->job_id);
		StartTransactionCommand();
		PushActiveSnapshot(GetTransactionSnapshot());
		if (csv_extension_installed())
		{
			r = csv_internal_query("SELECT submitted_by FROM @extschema@.job "
								   "WHERE job_id OPERATOR(pg_catalog.=) $1",
								   1, types, values, NULL);
			if (r->nrows == 1 && !CSV_ROW_ISNULL(r, 0, 0))
				role = DatumGetObjectId(CSV_ROW_VALUE(r, 0, 0));
		}
		PopActiveSnapshot();
		CommitTransactionCommand();
	}
	if (OidIsValid(role))
		csv_progress_set_user(role);
}

void
csvpipe_coordinator_main(Datum main_arg)
{
	CsvCoordArgs args;
	CsvParallelShared *shared = NULL;
	const char *path = NULL;

	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();
	memcpy(&args, MyBgworkerEntry->bgw_extra, sizeof(args));
	BackgroundWorkerInitializeConnectionByOid(args.database_id, BOOTSTRAP_SUPERUSERID, 0);
	csv_internal_pin_session();
	pgstat_report_appname("csvpipe coordinator");
	csv_progress_register(CSV_PROC_COORDINATOR, args.job_id, 0);

	/*
	 * A failed load: its leader waits for us with its segment mapped, which
	 * holds the job's details (for a job row no worker got to write) and
	 * the whole error.
	 */
	if (args.dsm != DSM_HANDLE_INVALID)
	{
		dsm_segment *seg = dsm_attach(args.dsm);
		shm_toc    *toc = seg ? shm_toc_attach(CSVPIPE_DSM_MAGIC, dsm_segment_address(seg)) : NULL;

		if (toc != NULL)
		{
			shared = shm_toc_lookup(toc, CSV_KEY_SHARED, true);
			path = shm_toc_lookup(toc, CSV_KEY_PATH, true);
			if (shared == NULL || path == NULL || shared->job_id != args.job_id)
				shared = NULL;
		}
	}
	coordinator_set_role(&args, shared);

	if (args.action == CSV_COORD_SETTLE)
	{
		(void) csv_txn_settle_job(args.job_id);
		return;
	}

	/* 1. record the decision, the parts it commits, and the job's end, durably */
	StartTransactionCommand();
	PushActiveSnapshot(GetTransactionSnapshot());
	{
		Oid			types[9] = {INT8OID, TEXTOID, TEXTOID, INT8OID, INT8OID, TEXTOID, INT8OID,
		INT4OID, INT4ARRAYOID};
		Datum		values[9];
		char		nulls[9] = "         ";
		const char *decision = args.action == CSV_COORD_COMMIT ? "commit" :
		args.action == CSV_COORD_ROLLBACK ? "rollback" : NULL;
		dsm_segment *eseg = NULL;	/* the whole error, when it is long */

		values[0] = Int64GetDatum(args.job_id);
		values[1] = CStringGetTextDatum(args.state);
		if (decision)
			values[2] = CStringGetTextDatum(decision);
		else
			nulls[2] = 'n';
		values[3] = Int64GetDatum(args.rows_loaded);
		values[4] = Int64GetDatum(args.bytes);
		if (shared != NULL && shared->error_dsm != 0 &&
			(eseg = dsm_attach(shared->error_dsm)) != NULL &&
			memchr(dsm_segment_address(eseg), '\0', dsm_segment_map_length(eseg)) != NULL)
			values[5] = CStringGetTextDatum((char *) dsm_segment_address(eseg));
		else if (shared != NULL && shared->error[0])
			values[5] = CStringGetTextDatum(shared->error);
		else if (args.error[0])
			values[5] = CStringGetTextDatum(args.error);
		else
			nulls[5] = 'n';
		values[6] = Int64GetDatum(args.rows_rejected);
		values[7] = Int32GetDatum(args.retries);
		values[8] = parts_array(args.parts);

		/* the load failed before any worker wrote the job row: write it now */
		if (shared != NULL)
		{
			bool		written;

			SpinLockAcquire(&shared->mutex);
			written = shared->job_row_written;
			SpinLockRelease(&shared->mutex);
			if (!written)
				upsert_job_row(shared, path);
		}

		/*
		 * Rows loaded and rejected: what the ledger and csvpipe.rejected hold
		 * for chunked jobs (a resumed job counts its earlier chunks too); for
		 * atomic ones, the leader's counts, since the parts holding those
		 * rows are committed only after this update.
		 */
		(void) csv_internal_query("UPDATE @extschema@.job SET state = $2, "
								  "decision = coalesce($3, decision), "
								  "commit_parts = CASE WHEN $3 OPERATOR(pg_catalog.=) 'commit' THEN $9 ELSE commit_parts END, "
								  "rows_loaded = CASE WHEN NOT atomic "
								  "  AND coalesce(options OPERATOR(pg_catalog.->>) 'mode', 'chunked') OPERATOR(pg_catalog.=) 'chunked' THEN "
								  "  (SELECT coalesce(pg_catalog.sum(c.rows), 0) FROM @extschema@.chunks c "
								  "    WHERE c.job_id OPERATOR(pg_catalog.=) $1) "
								  "  WHEN $2 OPERATOR(pg_catalog.=) 'done' THEN $4 ELSE 0 END, "
								  "rows_rejected = CASE WHEN NOT atomic "
								  "  AND coalesce(options OPERATOR(pg_catalog.->>) 'mode', 'chunked') OPERATOR(pg_catalog.=) 'chunked' THEN "
								  "  (SELECT pg_catalog.count(*) FROM @extschema@.rejected r "
								  "    WHERE r.job_id OPERATOR(pg_catalog.=) $1) "
								  "  WHEN $2 OPERATOR(pg_catalog.=) 'done' THEN $7 ELSE 0 END, "
								  "retries = retries OPERATOR(pg_catalog.+) $8, "
								  "bytes = $5, error = CASE WHEN $6 IS NULL THEN NULL ELSE coalesce(error, $6) END, "
								  "finished_at = pg_catalog.now(), leader_pid = NULL "
								  "WHERE job_id OPERATOR(pg_catalog.=) $1",
								  9, types, values, nulls);
	}
	PopActiveSnapshot();
	CommitTransactionCommand();

	/* 2. finish each prepared part, each in its own transaction */
	if (args.action != CSV_COORD_NONE)
		csv_txn_finish_parts(args.job_id, args.action == CSV_COORD_COMMIT, args.parts);

	/* a failed load's leader starts us again unless it sees this */
	if (shared != NULL)
	{
		SpinLockAcquire(&shared->mutex);
		shared->job_end_recorded = true;
		SpinLockRelease(&shared->mutex);
	}
}

/*
 * csvpipe.resolve_prepared(): finish the prepared parts of atomic loads
 * whose leader is gone, following each job's recorded decision (none
 * recorded: roll back).  Skips jobs a csvpipe process still works on, and
 * queued jobs still marked running: the launcher rolls those back and
 * queues them again.  The launcher does the same by itself within seconds
 * of a leader's death; this is for servers where it does not run.
 */
Datum
csvpipe_resolve_prepared(PG_FUNCTION_ARGS)
{
	int64		resolved = 0;
	List	   *jobs;
	ListCell   *lc;

	if (!superuser())
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("only superusers can resolve csvpipe's prepared transactions")));

	jobs = orphaned_jobs();
	foreach(lc, jobs)
	{
		CsvCoordArgs args;

		memset(&args, 0, sizeof(args));
		args.database_id = MyDatabaseId;
		args.job_id = *(int64 *) lfirst(lc);
		args.action = CSV_COORD_SETTLE;
		if (!csv_txn_run_coordinator(&args, true))
			ereport(ERROR,
					(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
					 errmsg("no background worker slot free to resolve job " INT64_FORMAT,
							args.job_id)));
		resolved++;
	}
	PG_RETURN_INT64(resolved);
}

/*
 * Three select-list items for a csvpipe.job row (columns prefixed with
 * alias, "" or "j."): its state as csvpipe.jobs shows it, the status of
 * the transaction that loaded it, and its load_xid.  A transaction-mode
 * load is 'done' when its rows are in the caller's transaction, written by
 * a coordinator that commits on its own (or by the caller's transaction
 * itself, for a load without workers: run.c); load_xid tells whether that
 * transaction (or the savepoint around the load) committed, aborted --
 * 'rolled back': nothing of it stays here (on foreign servers it may:
 * csv_txn_job_in_doubt_sql) -- or is still in progress --
 * 'uncommitted': it may still do either, so it is not 'done' yet, for
 * any session, the loading one included.  pg_xact_status is NULL for a
 * transaction too old to know: committed, as csvpipe.jobs, submit and
 * purge count it.  Other modes and states: 'committed'.  (1.0 has no
 * load_xid.)  The same CASE as the view csvpipe.jobs.
 */
char *
csv_txn_job_state_sql(const char *alias)
{
	if (get_attnum(csv_extension_relid("job"), "load_xid") == InvalidAttrNumber)
		return psprintf("%sstate, 'committed', NULL::pg_catalog.xid8", alias);
	return psprintf("CASE WHEN %1$sstate OPERATOR(pg_catalog.<>) 'done' THEN %1$sstate "
					"  WHEN pg_catalog.pg_xact_status(%1$sload_xid) OPERATOR(pg_catalog.=) 'aborted' "
					"  THEN 'rolled back' "
					"  WHEN pg_catalog.pg_xact_status(%1$sload_xid) OPERATOR(pg_catalog.=) 'in progress' "
					"  THEN 'uncommitted' ELSE %1$sstate END, "
					"CASE WHEN %1$sstate OPERATOR(pg_catalog.=) 'done' "
					"  THEN coalesce(pg_catalog.pg_xact_status(%1$sload_xid), 'committed') "
					"  ELSE 'committed' END, %1$sload_xid",
					alias);
}

/*
 * A boolean SQL expression for a csvpipe.job row (alias as above): a
 * transaction-mode load whose transaction aborted after the load had
 * finished -- its 'done' was recorded (rows_loaded is written only with
 * 'done' in that mode), then a ROLLBACK, a cancel, or a COMMIT that failed.
 * Into local tables it loaded nothing.  Into foreign tables it is in doubt:
 * postgres_fdw commits each server's part in turn at COMMIT, without
 * two-phase commit, so a COMMIT that failed on one server may have left
 * the job's rows committed on another, and loading the file again would
 * double them there.  resume refuses such a job, submit does not queue its
 * file again, purge keeps its file as loaded (when the target has foreign
 * tables).  A load that failed (rows_loaded 0) is not in doubt: its
 * statement's error aborted the transaction before any COMMIT.
 */
char *
csv_txn_job_in_doubt_sql(const char *alias)
{
	if (get_attnum(csv_extension_relid("job"), "load_xid") == InvalidAttrNumber)
		return pstrdup("false");
	return psprintf("(%1$sload_xid IS NOT NULL AND %1$srows_loaded OPERATOR(pg_catalog.>) 0 "
					" AND coalesce(pg_catalog.pg_xact_status(%1$sload_xid) "
					"              OPERATOR(pg_catalog.=) 'aborted', false))",
					alias);
}
