/*-------------------------------------------------------------------------
 *
 * launcher.c
 *		The job launcher (a static background worker) and the job runners
 *		(dynamic background workers) it starts.
 *
 * The launcher is registered at preload, connects to csvpipe.database as
 * the bootstrap superuser, pins search_path = pg_catalog, pg_temp over any
 * database or role setting (csv_internal_pin_session), and runs every
 * statement through csv_internal_query.  The postmaster restarts it one
 * second after it dies (bgw_restart_time), whatever killed it.  It loops:
 *
 *	0. Settle the prepared parts of atomic loads whose leader is gone, in
 *	   every database: a prepared transaction named after a job
 *	   (csvpipe_<database>_<job>_...) with no csvpipe process working on
 *	   that job for ORPHAN_GRACE_MS follows the job's recorded decision,
 *	   else is rolled back (txn.c: csv_txn_settle_job; in another database
 *	   through a coordinator started there).  This covers a crash (at the
 *	   next start) as well as a leader killed while the server runs.
 *	1. Check the running queued jobs.  One whose runner is gone -- no runner
 *	   handle of ours still alive, and no csvpipe process of any kind (runner,
 *	   worker, coordinator) with its job id in a status slot -- for
 *	   ORPHAN_GRACE_MS in a row was interrupted, and goes back to the queue:
 *	   an atomic one after its prepared parts are rolled back (it runs again
 *	   from the start), a chunked one as it is (its next runner skips the
 *	   chunks in the ledger).  After CSV_JOB_MAX_RESTARTS interruptions a job
 *	   is failed.
 *	2. While fewer than csvpipe.max_jobs queued jobs run, claim the next one
 *	   (highest priority, then oldest; FOR UPDATE SKIP LOCKED), mark it
 *	   'running' with attempt + 1, commit, and start a runner for it.
 *	3. Sleep on its latch: set by a committing submit/resume/cancel, by the
 *	   postmaster when a runner starts or stops (bgw_notify_pid), or by a
 *	   timeout (a regular poll).
 *
 * A runner connects as the submitting role (when the role may log in;
 * otherwise as the bootstrap superuser, then switches to the role for the
 * rest of its life with SECURITY_LOCAL_USERID_CHANGE, as SECURITY DEFINER
 * functions do, so SET ROLE cannot escape it), claims its job -- leader_pid
 * set only if the job is still 'running' with the attempt it was started
 * for, so a runner left over from an earlier launcher never runs a job
 * twice -- and runs csv_run_load() as the leader of the parallel engine; a
 * chunked job that committed chunks before (interrupted, or resumed) loads
 * only the chunks missing from the ledger, and only from the same file.  A
 * file of one chunk or less is loaded by the runner itself, in the same
 * transaction that records the job as done.  On error the runner records
 * 'failed' (or 'cancelled') with the full message; the load itself has
 * already rolled back what it must (see run.c).
 *
 *-------------------------------------------------------------------------
 */
#include "jobs.h"
#include "parallel.h"
#include "progress.h"
#include "run.h"
#include "shards.h"
#include "txn.h"
#include "internal_sql.h"

#include <sys/stat.h>

#include "access/twophase.h"
#include "access/xact.h"
#include "catalog/pg_authid.h"
#include "catalog/pg_type.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/proc.h"
#include "tcop/tcopprot.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#define LAUNCHER_POLL_MS	2000	/* regular poll when nothing wakes it */
#define ORPHAN_GRACE_MS		2000	/* a job must look orphaned this long */

/* a runner this launcher started */
typedef struct Runner
{
	int64		job_id;
	BackgroundWorkerHandle *handle;
} Runner;

/* a running job that looked orphaned, since when */
typedef struct Suspect
{
	int64		job_id;
	TimestampTz since;
} Suspect;

/* a job with prepared parts and no csvpipe process, since when */
typedef struct Orphan
{
	Oid			db;
	int64		job_id;
	TimestampTz since;
} Orphan;

static List *runners = NIL;
static List *suspects = NIL;
static List *orphans = NIL;

void
csv_launcher_register(void)
{
	BackgroundWorker bgw;

	memset(&bgw, 0, sizeof(bgw));
	bgw.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	bgw.bgw_start_time = BgWorkerStart_RecoveryFinished;
	bgw.bgw_restart_time = 1;
	snprintf(bgw.bgw_library_name, BGW_MAXLEN, "csvpipe");
	snprintf(bgw.bgw_function_name, BGW_MAXLEN, "csvpipe_launcher_main");
	snprintf(bgw.bgw_name, BGW_MAXLEN, "csvpipe launcher");
	snprintf(bgw.bgw_type, BGW_MAXLEN, "csvpipe launcher");
	RegisterBackgroundWorker(&bgw);
}

/* ---- the launcher ---- */

/* Is a runner we started for job_id still alive (or about to start)? */
static bool
our_runner_alive(int64 job_id)
{
	ListCell   *lc;

	foreach(lc, runners)
	{
		Runner	   *r = (Runner *) lfirst(lc);
		pid_t		pid;

		if (r->job_id == job_id &&
			GetBackgroundWorkerPid(r->handle, &pid) != BGWH_STOPPED)
			return true;
	}
	return false;
}

/* Forget runners that have exited */
static void
reap_runners(void)
{
	ListCell   *lc;

	foreach(lc, runners)
	{
		Runner	   *r = (Runner *) lfirst(lc);
		pid_t		pid;

		if (GetBackgroundWorkerPid(r->handle, &pid) == BGWH_STOPPED)
		{
			pfree(r->handle);
			runners = foreach_delete_current(runners, lc);
			pfree(r);
		}
	}
}

static Suspect *
find_suspect(int64 job_id)
{
	ListCell   *lc;

	foreach(lc, suspects)
		if (((Suspect *) lfirst(lc))->job_id == job_id)
			return (Suspect *) lfirst(lc);
	return NULL;
}

/*
 * Step 1: find interrupted jobs and put them back in the queue (or fail
 * them).  Returns the number of queued jobs still running, and sets
 * *pending when some job is under watch (so the caller polls sooner).
 */
static int
check_running_jobs(bool *pending)
{
	typedef struct Interrupted
	{
		int64		job_id;
		int32		attempt;
		bool		atomic;
		int			retries;
		int64		chunks;
	} Interrupted;
	List	   *interrupted = NIL;
	List	   *still = NIL;
	CsvRows    *r;
	ListCell   *lc;
	int			nrunning = 0;
	TimestampTz now = GetCurrentTimestamp();

	*pending = false;
	r = csv_internal_query("SELECT j.job_id, j.attempt, j.atomic, j.retries, "
						   "       (SELECT pg_catalog.count(*) FROM @extschema@.chunks c "
						   "         WHERE c.job_id OPERATOR(pg_catalog.=) j.job_id) "
						   "  FROM @extschema@.job j "
						   " WHERE j.state OPERATOR(pg_catalog.=) 'running' "
						   "   AND j.origin OPERATOR(pg_catalog.=) 'submit'",
						   0, NULL, NULL, NULL);
	for (int i = 0; i < r->nrows; i++)
	{
		int64		job_id = DatumGetInt64(CSV_ROW_VALUE(r, i, 0));
		Suspect    *s;

		nrunning++;
		if (our_runner_alive(job_id) || csv_progress_job_pid(job_id, CSV_PROC_NONE) != 0)
			continue;
		*pending = true;
		s = find_suspect(job_id);
		if (s == NULL)
		{
			MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);

			s = palloc(sizeof(Suspect));
			s->job_id = job_id;
			s->since = now;
			suspects = lappend(suspects, s);
			MemoryContextSwitchTo(old);
			still = lappend(still, s);
			continue;
		}
		still = lappend(still, s);
		if (TimestampDifferenceExceeds(s->since, now, ORPHAN_GRACE_MS))
		{
			/* outlives this transaction: see below */
			Interrupted *o = MemoryContextAlloc(TopMemoryContext, sizeof(Interrupted));
			MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);

			o->job_id = job_id;
			o->attempt = DatumGetInt32(CSV_ROW_VALUE(r, i, 1));
			o->atomic = DatumGetBool(CSV_ROW_VALUE(r, i, 2));
			o->retries = DatumGetInt32(CSV_ROW_VALUE(r, i, 3));
			o->chunks = DatumGetInt64(CSV_ROW_VALUE(r, i, 4));
			interrupted = lappend(interrupted, o);
			MemoryContextSwitchTo(old);
		}
	}

	/*
	 * A runner still counts after its job row says 'done': the coordinator
	 * writes that before the runner commits and exits, and max_jobs is
	 * about processes.
	 */
	foreach(lc, runners)
	{
		Runner	   *rn = (Runner *) lfirst(lc);
		pid_t		pid;
		bool		counted = false;

		if (GetBackgroundWorkerPid(rn->handle, &pid) == BGWH_STOPPED)
			continue;
		for (int i = 0; i < r->nrows && !counted; i++)
			counted = (DatumGetInt64(CSV_ROW_VALUE(r, i, 0)) == rn->job_id);
		if (!counted)
			nrunning++;
	}

	/* forget suspects that are no longer (finished, or alive after all) */
	foreach(lc, suspects)
		if (!list_member_ptr(still, lfirst(lc)))
		{
			pfree(lfirst(lc));
			suspects = foreach_delete_current(suspects, lc);
		}
	if (interrupted == NIL)
		return nrunning;

	/* the caller's transaction must end before prepared parts are finished */
	PopActiveSnapshot();
	CommitTransactionCommand();

	foreach(lc, interrupted)
	{
		Interrupted *o = (Interrupted *) lfirst(lc);
		Oid			types[3] = {INT8OID, INT4OID, TEXTOID};
		Datum		values[3];
		Suspect    *s = find_suspect(o->job_id);

		if (o->atomic)
			csv_txn_finish_parts(o->job_id, false, NULL);

		StartTransactionCommand();
		PushActiveSnapshot(GetTransactionSnapshot());
		values[0] = Int64GetDatum(o->job_id);
		values[1] = Int32GetDatum(o->attempt);
		if (o->retries >= CSV_JOB_MAX_RESTARTS)
		{
			values[2] = CStringGetTextDatum(psprintf("interrupted %d times; not restarted again",
													 o->retries + 1));
			(void) csv_internal_query("UPDATE @extschema@.job SET state = 'failed', "
									  "finished_at = pg_catalog.now(), leader_pid = NULL, error = $3 "
									  "WHERE job_id OPERATOR(pg_catalog.=) $1 "
									  "  AND state OPERATOR(pg_catalog.=) 'running' "
									  "  AND attempt OPERATOR(pg_catalog.=) $2",
									  3, types, values, NULL);
			ereport(LOG,
					(errmsg("csvpipe launcher: job " INT64_FORMAT " was interrupted %d times; marked failed",
							o->job_id, o->retries + 1)));
		}
		else
		{
			(void) csv_internal_query("UPDATE @extschema@.job SET state = 'queued', "
									  "retries = retries OPERATOR(pg_catalog.+) 1, "
									  "started_at = NULL, leader_pid = NULL, decision = NULL, "
									  "commit_parts = NULL "
									  "WHERE job_id OPERATOR(pg_catalog.=) $1 "
									  "  AND state OPERATOR(pg_catalog.=) 'running' "
									  "  AND attempt OPERATOR(pg_catalog.=) $2",
									  2, types, values, NULL);
			ereport(LOG,
					(errmsg("csvpipe launcher: job " INT64_FORMAT " was interrupted (its runner is gone); queued again",
							o->job_id),
					 o->atomic ? 0 : errdetail("The " INT64_FORMAT " chunks it committed will be skipped.", o->chunks)));
		}
		PopActiveSnapshot();
		CommitTransactionCommand();
		if (s != NULL)
		{
			suspects = list_delete_ptr(suspects, s);
			pfree(s);
		}
		nrunning--;
	}
	list_free_deep(interrupted);

	StartTransactionCommand();
	PushActiveSnapshot(GetTransactionSnapshot());
	return nrunning;
}

static bool
start_runner(CsvRunnerArgs *args)
{
	BackgroundWorker bgw;
	BackgroundWorkerHandle *handle;
	MemoryContext old;
	Runner	   *r;

	memset(&bgw, 0, sizeof(bgw));
	bgw.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	bgw.bgw_start_time = BgWorkerStart_ConsistentState;
	bgw.bgw_restart_time = BGW_NEVER_RESTART;
	snprintf(bgw.bgw_library_name, BGW_MAXLEN, "csvpipe");
	snprintf(bgw.bgw_function_name, BGW_MAXLEN, "csvpipe_runner_main");
	snprintf(bgw.bgw_type, BGW_MAXLEN, "csvpipe job runner");
	snprintf(bgw.bgw_name, BGW_MAXLEN, "csvpipe job runner for job " INT64_FORMAT, args->job_id);
	bgw.bgw_notify_pid = MyProcPid;
	memcpy(bgw.bgw_extra, args, sizeof(CsvRunnerArgs));

	old = MemoryContextSwitchTo(TopMemoryContext);
	if (!RegisterDynamicBackgroundWorker(&bgw, &handle))
	{
		MemoryContextSwitchTo(old);
		return false;
	}
	r = palloc(sizeof(Runner));
	r->job_id = args->job_id;
	r->handle = handle;
	runners = lappend(runners, r);
	MemoryContextSwitchTo(old);
	return true;
}

/*
 * Step 2: claim and start queued jobs while fewer than csvpipe.max_jobs
 * run.  Called inside a transaction; leaves one open.
 * Returns false when no worker slot was free (the caller backs off).
 */
static bool
launch_jobs(int nrunning)
{
	while (nrunning < csvpipe_max_jobs)
	{
		CsvRunnerArgs args;
		CsvRows    *r;
		Oid			types[1] = {INT8OID};
		Datum		values[1];

		CHECK_FOR_INTERRUPTS();
		r = csv_internal_query("WITH next AS ("
							   "  SELECT job_id FROM @extschema@.job WHERE state OPERATOR(pg_catalog.=) 'queued' "
							   "   ORDER BY priority DESC, submitted_at, job_id "
							   "   LIMIT 1 FOR UPDATE SKIP LOCKED) "
							   "UPDATE @extschema@.job j SET state = 'running', "
							   "       started_at = pg_catalog.clock_timestamp(), "
							   "       finished_at = NULL, error = NULL, leader_pid = NULL, "
							   "       attempt = j.attempt OPERATOR(pg_catalog.+) 1 "
							   "  FROM next WHERE j.job_id OPERATOR(pg_catalog.=) next.job_id "
							   "RETURNING j.job_id, j.attempt, j.submitted_by, "
							   "  (SELECT a.rolcanlogin FROM pg_catalog.pg_authid a "
							   "    WHERE a.oid OPERATOR(pg_catalog.=) j.submitted_by)",
							   0, NULL, NULL, NULL);
		if (r->nrows == 0)
			return true;

		memset(&args, 0, sizeof(args));
		args.database_id = MyDatabaseId;
		args.job_id = DatumGetInt64(CSV_ROW_VALUE(r, 0, 0));
		args.attempt = DatumGetInt32(CSV_ROW_VALUE(r, 0, 1));
		args.role_id = DatumGetObjectId(CSV_ROW_VALUE(r, 0, 2));
		values[0] = Int64GetDatum(args.job_id);
		if (CSV_ROW_ISNULL(r, 0, 3))
		{
			(void) csv_internal_query("UPDATE @extschema@.job SET state = 'failed', "
									  "finished_at = pg_catalog.now(), "
									  "error = 'the role that submitted the job no longer exists' "
									  "WHERE job_id OPERATOR(pg_catalog.=) $1",
									  1, types, values, NULL);
			continue;
		}
#ifdef BGWORKER_BYPASS_ROLELOGINCHECK
		args.connect_as_role = true;
#else
		args.connect_as_role = DatumGetBool(CSV_ROW_VALUE(r, 0, 3));
#endif

		/* the runner must see the claim: commit before starting it */
		PopActiveSnapshot();
		CommitTransactionCommand();

		if (!start_runner(&args))
		{
			StartTransactionCommand();
			PushActiveSnapshot(GetTransactionSnapshot());
			(void) csv_internal_query("UPDATE @extschema@.job SET state = 'queued', started_at = NULL "
									  "WHERE job_id OPERATOR(pg_catalog.=) $1 "
									  "  AND state OPERATOR(pg_catalog.=) 'running' AND leader_pid IS NULL",
									  1, types, values, NULL);
			return false;
		}
		csv_progress_count(1);
		nrunning++;

		StartTransactionCommand();
		PushActiveSnapshot(GetTransactionSnapshot());
	}
	return true;
}

/*
 * Step 0, in every database: prepared parts of atomic loads whose leader
 * is gone.  Every prepared transaction named csvpipe_<database>_<job>_...
 * with no csvpipe process working on that job for ORPHAN_GRACE_MS is
 * settled: in this database here, in another one by a coordinator started
 * there (csv_txn_settle_job: the recorded decision, else rollback).  Runs
 * outside a transaction; sets *pending while some job is under watch.
 */
static void
settle_orphans(bool *pending)
{
	List	   *still = NIL;
	List	   *due = NIL;
	ListCell   *lc;
	ListCell   *pc;
	TimestampTz now = GetCurrentTimestamp();
	int			settled = 0;
	MemoryContext cxt = CurrentMemoryContext;

	StartTransactionCommand();
	PushActiveSnapshot(GetTransactionSnapshot());
	foreach(pc, csv_txn_prepared_jobs(InvalidOid))
	{
		Oid			db = ((CsvPreparedJob *) lfirst(pc))->db;
		int64		job = ((CsvPreparedJob *) lfirst(pc))->job_id;
		Orphan	   *o = NULL;

		if (csv_progress_db_job_pid(db, job, CSV_PROC_NONE) != 0 ||
			(db == MyDatabaseId && our_runner_alive(job)))
			continue;			/* its leader, a worker or a coordinator is at work */
		*pending = true;
		foreach(lc, orphans)
		{
			Orphan	   *x = (Orphan *) lfirst(lc);

			if (x->db == db && x->job_id == job)
				o = x;
		}
		if (o == NULL)
		{
			MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);

			o = palloc(sizeof(Orphan));
			o->db = db;
			o->job_id = job;
			o->since = now;
			orphans = lappend(orphans, o);
			MemoryContextSwitchTo(old);
		}
		if (!list_member_ptr(still, o))
		{
			MemoryContext old = MemoryContextSwitchTo(cxt);

			still = lappend(still, o);
			if (TimestampDifferenceExceeds(o->since, now, ORPHAN_GRACE_MS))
				due = lappend(due, o);
			MemoryContextSwitchTo(old);
		}
	}
	PopActiveSnapshot();
	CommitTransactionCommand();
	MemoryContextSwitchTo(cxt);

	foreach(lc, orphans)
		if (!list_member_ptr(still, lfirst(lc)))
		{
			pfree(lfirst(lc));
			orphans = foreach_delete_current(orphans, lc);
		}

	foreach(lc, due)
	{
		Orphan	   *o = (Orphan *) lfirst(lc);

		CHECK_FOR_INTERRUPTS();
		if (o->db == MyDatabaseId)
		{
			if (csv_txn_settle_job(o->job_id))
				settled++;
		}
		else
		{
			CsvCoordArgs args;

			memset(&args, 0, sizeof(args));
			args.database_id = o->db;
			args.job_id = o->job_id;
			args.action = CSV_COORD_SETTLE;
			if (!csv_txn_run_coordinator(&args, false))
				continue;		/* no slot: next time */
		}
		o->since = now;			/* give it time before looking again */
	}
	list_free(due);
	list_free(still);
	if (settled > 0)
		ereport(LOG,
				(errmsg("csvpipe: resolved the prepared transactions of %d interrupted atomic load(s)",
						settled)));
}

void
csvpipe_launcher_main(Datum main_arg)
{
	MemoryContext loop_cxt;

	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();
	BackgroundWorkerInitializeConnection(csvpipe_database, NULL, 0);
	/* no ALTER DATABASE/ROLE ... SET search_path reaches what runs here */
	csv_internal_pin_session();
	pgstat_report_appname("csvpipe launcher");
	csv_progress_register(CSV_PROC_LAUNCHER, 0, 0);
	csv_progress_set_launcher(true);
	loop_cxt = AllocSetContextCreate(TopMemoryContext, "csvpipe launcher loop",
									 ALLOCSET_DEFAULT_SIZES);

	for (;;)
	{
		long		timeout = LAUNCHER_POLL_MS;
		bool		pending = false;

		CHECK_FOR_INTERRUPTS();
		MemoryContextSwitchTo(loop_cxt);
		MemoryContextReset(loop_cxt);
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
		}
		reap_runners();

		csv_progress_set_state("scanning");
		SetCurrentStatementStartTimestamp();
		pgstat_report_activity(STATE_RUNNING, "csvpipe launcher: scanning the queue");

		/* prepared parts of atomic loads whose leader died, in any database */
		settle_orphans(&pending);
		MemoryContextSwitchTo(loop_cxt);

		StartTransactionCommand();
		PushActiveSnapshot(GetTransactionSnapshot());
		if (csv_extension_installed())
		{
			int			nrunning;

			nrunning = check_running_jobs(&pending);
			if (!launch_jobs(nrunning))
				timeout = 1000; /* no worker slot: try again soon */
		}
		PopActiveSnapshot();
		CommitTransactionCommand();
		if (pending)
			timeout = Min(timeout, ORPHAN_GRACE_MS / 4);
		pgstat_report_stat(false);
		pgstat_report_activity(STATE_IDLE, NULL);
		csv_progress_set_state("idle");

		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 timeout, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
	}
}

/* ---- a job runner ---- */

/*
 * Claim the job and read its request from its row (the options as submit
 * recorded them); false if the claim failed.  A chunked job with chunks in
 * the ledger gets them as chunks to skip, and in *file the file's identity
 * as recorded: the caller checks that the file is still the one they came
 * from.
 */
static bool
claim_job(CsvRunnerArgs *args, CsvLoadRequest *req, List **settings, CsvFileId *file)
{
	Oid			types[2] = {INT8OID, INT4OID};
	Datum		values[2];
	CsvRows    *r;
	CsvOptions	opts;
	MemoryContext old;

	values[0] = Int64GetDatum(args->job_id);
	values[1] = Int32GetDatum(args->attempt);
	r = csv_internal_query("UPDATE @extschema@.job j SET leader_pid = pg_catalog.pg_backend_pid() "
						" WHERE j.job_id = $1 AND j.state = 'running' AND j.attempt = $2 "
						"   AND j.leader_pid IS NULL "
						"RETURNING j.path, j.target, j.options, j.atomic, "
						"  ARRAY(SELECT ARRAY[key, value] FROM jsonb_each_text(j.options->'settings')), "
						"  j.file_size, j.file_dev, j.file_ino, j.file_mtime_ns, "
						"  ARRAY(SELECT c.chunk_no FROM @extschema@.chunks c WHERE c.job_id = j.job_id "
						"        ORDER BY c.chunk_no)",
						2, types, values, NULL);
	if (r->nrows == 0)
		return false;

	old = MemoryContextSwitchTo(TopMemoryContext);

	/* the options as submit validated and recorded them (options.c) */
	csv_options_from_job(&opts, CSV_ROW_ISNULL(r, 0, 2) ? NULL :
						 DatumGetJsonbP(CSV_ROW_VALUE(r, 0, 2)),
						 DatumGetBool(CSV_ROW_VALUE(r, 0, 3)), "csvpipe.load");
	opts.path = TextDatumGetCString(CSV_ROW_VALUE(r, 0, 0));
	opts.relid = DatumGetObjectId(CSV_ROW_VALUE(r, 0, 1));
	opts.progress = false;
	csv_load_request_init(req, &opts);
	req->job_id = args->job_id;
	req->runner = true;

	/* settings: text[][2] of name, value */
	{
		ArrayType  *arr = DatumGetArrayTypeP(CSV_ROW_VALUE(r, 0, 4));
		Datum	   *elems;
		bool	   *enulls;
		int			n;

		deconstruct_array(arr, TEXTOID, -1, false, TYPALIGN_INT, &elems, &enulls, &n);
		*settings = NIL;
		for (int i = 0; i + 1 < n; i += 2)
			if (!enulls[i] && !enulls[i + 1])
				*settings = lappend(*settings,
									list_make2(TextDatumGetCString(elems[i]),
											   TextDatumGetCString(elems[i + 1])));
	}

	/* chunks committed by an earlier run of a chunked job */
	if (req->opts.mode == CSV_LOAD_MODE_CHUNKED)
	{
		if (csv_load_set_skip_chunks(req, DatumGetArrayTypeP(CSV_ROW_VALUE(r, 0, 9))) > 0)
		{
			req->resume = true;
			file->size = CSV_ROW_ISNULL(r, 0, 5) ? -1 : DatumGetInt64(CSV_ROW_VALUE(r, 0, 5));
			file->dev = CSV_ROW_ISNULL(r, 0, 6) ? -1 : DatumGetInt64(CSV_ROW_VALUE(r, 0, 6));
			file->ino = CSV_ROW_ISNULL(r, 0, 7) ? -1 : DatumGetInt64(CSV_ROW_VALUE(r, 0, 7));
			file->mtime_ns = CSV_ROW_ISNULL(r, 0, 8) ? -1 : DatumGetInt64(CSV_ROW_VALUE(r, 0, 8));
		}
	}
	MemoryContextSwitchTo(old);
	return true;
}

/* The end of a job, when the load did not record it (errors, no workers) */
static void
record_end(int64 job_id, const char *state, const char *error)
{
	Oid			types[3] = {INT8OID, TEXTOID, TEXTOID};
	Datum		values[3];
	char		nulls[3] = {' ', ' ', ' '};
	const char *rolled_back;

	values[0] = Int64GetDatum(job_id);
	values[1] = CStringGetTextDatum(state);
	if (error)
		values[2] = CStringGetTextDatum(error);
	else
		nulls[2] = 'n';
	/*
	 * (1.1) A transaction-mode job's 'done' is written by a coordinator
	 * before this runner commits: when the runner's transaction aborted (its
	 * COMMIT failed), load_xid says so and the job failed after all.
	 */
	rolled_back = get_attnum(csv_extension_relid("job"), "load_xid") == InvalidAttrNumber ? "false" :
		"(state = 'done' AND coalesce(pg_catalog.pg_xact_status(load_xid), 'committed') "
		"  OPERATOR(pg_catalog.=) 'aborted')";
	(void) csv_internal_query(psprintf("UPDATE @extschema@.job SET "
									   "  state = CASE WHEN state = 'running' OR %s THEN $2 ELSE state END, "
									   "  error = coalesce($3, error), finished_at = coalesce(finished_at, pg_catalog.now()), "
									   "  leader_pid = NULL "
									   "WHERE job_id = $1 AND (state <> 'done' OR %s)",
									   rolled_back, rolled_back),
							  3, types, values, nulls);
}

void
csvpipe_runner_main(Datum main_arg)
{
	CsvRunnerArgs args;
	CsvLoadRequest req;
	CsvLoadResult res;
	List	   *settings = NIL;
	bool		claimed;
	CsvFileId	recorded;
	CsvFileId	now;
	MemoryContext runner_cxt;

	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();
	memcpy(&args, MyBgworkerEntry->bgw_extra, sizeof(args));

	if (args.connect_as_role)
	{
#ifdef BGWORKER_BYPASS_ROLELOGINCHECK
		BackgroundWorkerInitializeConnectionByOid(args.database_id, args.role_id,
												  BGWORKER_BYPASS_ROLELOGINCHECK);
#else
		BackgroundWorkerInitializeConnectionByOid(args.database_id, args.role_id, 0);
#endif
	}
	else
	{
		/* a role that may not log in: become it for good, as SECURITY DEFINER does */
		BackgroundWorkerInitializeConnectionByOid(args.database_id, InvalidOid, 0);
		/* not a role the database's owner named in ALTER DATABASE ... SET */
		csv_internal_reset_identity();
		SetUserIdAndSecContext(args.role_id, SECURITY_LOCAL_USERID_CHANGE);
	}
	pgstat_report_appname("csvpipe job runner");
	csv_progress_register(CSV_PROC_RUNNER, args.job_id, 0);
	runner_cxt = AllocSetContextCreate(TopMemoryContext, "csvpipe runner",
									   ALLOCSET_DEFAULT_SIZES);

	SetCurrentStatementStartTimestamp();
	PG_TRY();
	{
		StartTransactionCommand();
		PushActiveSnapshot(GetTransactionSnapshot());
		claimed = claim_job(&args, &req, &settings, &recorded);
		PopActiveSnapshot();
		CommitTransactionCommand();
	}
	PG_CATCH();
	{
		/* a job whose row cannot be read (say, bad options) fails */
		MemoryContext ecxt = MemoryContextSwitchTo(runner_cxt);
		ErrorData  *edata = CopyErrorData();

		MemoryContextSwitchTo(ecxt);
		HOLD_INTERRUPTS();
		EmitErrorReport();
		AbortOutOfAnyTransaction();
		FlushErrorState();
		RESUME_INTERRUPTS();
		StartTransactionCommand();
		PushActiveSnapshot(GetTransactionSnapshot());
		record_end(args.job_id, "failed",
				   psprintf("csvpipe runner could not start the job: %s", edata->message));
		PopActiveSnapshot();
		CommitTransactionCommand();
		csv_progress_set_state("failed");
		return;
	}
	PG_END_TRY();
	if (!claimed)
	{
		/* cancelled meanwhile, or re-queued by a newer launcher */
		csv_progress_set_state("not claimed");
		return;
	}

	/*
	 * The path only where pg_stat_activity shows this row to the job's role
	 * alone: connected as the bootstrap superuser, the row's user may be one
	 * a database setting (session_authorization) made it.
	 */
	if (args.connect_as_role)
		pgstat_report_activity(STATE_RUNNING, psprintf("csvpipe job " INT64_FORMAT ": %s",
													   args.job_id, req.opts.path));
	else
		pgstat_report_activity(STATE_RUNNING, psprintf("csvpipe job " INT64_FORMAT,
													   args.job_id));
	PG_TRY();
	{
		ListCell   *lc;
		bool		serial;

		SetCurrentStatementStartTimestamp();
		StartTransactionCommand();
		PushActiveSnapshot(GetTransactionSnapshot());
		foreach(lc, settings)
		{
			List	   *kv = (List *) lfirst(lc);

			(void) set_config_option((char *) linitial(kv), (char *) lsecond(kv),
									 PGC_USERSET, PGC_S_SESSION, GUC_ACTION_SET,
									 true, 0, false);
		}

		/* the ledger's chunks are only worth skipping in the file they came from */
		if (req.nskip > 0 &&
			(!csv_file_id_of_path(req.opts.path, &now) || !csv_file_id_equal(&now, &recorded)))
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("file \"%s\" changed since csvpipe job " INT64_FORMAT " started",
							req.opts.path, args.job_id),
					 errdetail("The job committed %d chunks of the file it started on; they cannot be completed from another file.",
							   req.nskip),
					 errhint("Load the new file as a new job.")));

		/*
		 * One chunk or less, nothing to skip, no bad rows to capture (that
		 * needs workers): load here, in this transaction, without workers.
		 * Not into foreign tables, in any mode: only workers use the shard
		 * ledgers, and in transaction mode only a load with a worker
		 * records its job outside this transaction, where a COMMIT that
		 * fails on one server after another committed leaves it in doubt
		 * (shards.c, csv_shards_check_txn_in_session).
		 */
		serial = (req.nskip == 0 && !req.opts.on_error_skip &&
				  !csv_shards_target_is_foreign(req.opts.relid) &&
				  csv_file_id_of_path(req.opts.path, &now) && now.size <= req.opts.chunk_size);
		if (serial)
			req.opts.nworkers = 0;

		csv_run_load(&req, &res);

		if (res.workers == 0)
		{
			Oid			types[7] = {INT8OID, INT8OID, INT8OID, INT8OID, INT8OID, INT8OID, INT8OID};
			Datum		values[7];
			char		nulls[7] = "       ";
			/*
			 * The identity of the file read (its descriptor's), not of
			 * whatever the path names now: a file moved into place right
			 * after the load must not be recorded as loaded.
			 */
			bool		have_stat = res.have_file;

			now = res.file;

			values[0] = Int64GetDatum(args.job_id);
			values[1] = Int64GetDatum(res.rows_loaded);
			values[2] = Int64GetDatum(res.rows_rejected);
			values[3] = Int64GetDatum(have_stat ? now.size : 0);
			values[4] = Int64GetDatum(have_stat ? now.dev : 0);
			values[5] = Int64GetDatum(have_stat ? now.ino : 0);
			values[6] = Int64GetDatum(have_stat ? now.mtime_ns : 0);
			if (!have_stat)
				nulls[3] = nulls[4] = nulls[5] = nulls[6] = 'n';
			(void) csv_internal_query("UPDATE @extschema@.job SET state = 'done', rows_loaded = $2, "
								   "  rows_rejected = $3, bytes = coalesce($4, bytes), workers = 0, "
								   "  file_size = coalesce($4, file_size), file_dev = coalesce($5, file_dev), "
								   "  file_ino = coalesce($6, file_ino), file_mtime_ns = coalesce($7, file_mtime_ns), "
								   "  finished_at = pg_catalog.clock_timestamp(), leader_pid = NULL "
								   "WHERE job_id = $1 AND state = 'running'",
								   7, types, values, nulls);
		}
		PopActiveSnapshot();
		CommitTransactionCommand();
		csv_progress_set_state("finished");
	}
	PG_CATCH();
	{
		MemoryContext ecxt = MemoryContextSwitchTo(runner_cxt);
		ErrorData  *edata = CopyErrorData();
		char	   *message;

		MemoryContextSwitchTo(ecxt);
		HOLD_INTERRUPTS();
		EmitErrorReport();
		AbortOutOfAnyTransaction();
		FlushErrorState();
		RESUME_INTERRUPTS();
		MemoryContextSwitchTo(runner_cxt);

		/* the error as psql shows it: with its hint (what to do) and context */
		message = psprintf("%s%s%s%s%s",
						   edata->message ? edata->message : "unknown error",
						   edata->hint ? "\nHINT: " : "",
						   edata->hint ? edata->hint : "",
						   edata->context && edata->context[0] ? "\nCONTEXT: " : "",
						   edata->context && edata->context[0] ? edata->context : "");
		StartTransactionCommand();
		PushActiveSnapshot(GetTransactionSnapshot());
		record_end(args.job_id, edata->sqlerrcode == ERRCODE_QUERY_CANCELED ?
				   "cancelled" : "failed", message);
		PopActiveSnapshot();
		CommitTransactionCommand();
		csv_progress_set_state(edata->sqlerrcode == ERRCODE_QUERY_CANCELED ?
							   "cancelled" : "failed");
	}
	PG_END_TRY();
}
