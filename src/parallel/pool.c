/*-------------------------------------------------------------------------
 *
 * pool.c
 *		Dynamic worker registration, DSM and shm_mq setup, teardown.
 *
 * A pool lives for one parallel call.  Its DSM segment carries everything a
 * worker needs to reproduce the leader's view: database and roles, the
 * serialized GUC state (TimeZone, DateStyle, search_path... decide how
 * values are read), the workers' options (the dialect, on_error,
 * max_errors), the file's path and identity (workers read their chunks
 * from it), the column list, and one input and one reply queue per worker.
 * Workers are registered with bgw_notify_pid so the leader's latch is set
 * when they start and stop, and the queues are bound to the worker
 * handles, so a worker that dies before attaching shows up as a detached
 * queue rather than a hang.
 *
 * Teardown: on success the leader waits for every worker to exit.  On any
 * error, the segment's on_dsm_detach callback, run by transaction abort,
 * terminates the workers, so none outlives the statement that started it.
 * The pool struct is allocated in TopTransactionContext for that reason:
 * executor memory is already gone when resource owners release the DSM.
 *
 *-------------------------------------------------------------------------
 */
#include "parallel.h"
#include "options.h"

#include "libpq/pqformat.h"
#include "libpq/pqmq.h"
#include "miscadmin.h"
#include "storage/proc.h"
#include "utils/guc.h"
#include "utils/builtins.h"
#include "utils/memutils.h"

static void
pool_on_detach(dsm_segment *seg, Datum arg)
{
	CsvPool    *pool = (CsvPool *) DatumGetPointer(arg);

	/* error path (or normal end, where they are gone already) */
	for (int i = 0; i < pool->nworkers; i++)
		if (pool->handles[i] != NULL)
			TerminateBackgroundWorker(pool->handles[i]);
	pool->seg = NULL;
}

/*
 * Create the segment for up to nworkers workers, reading opts->path with
 * opts's worker options.  coldesc describes the file's columns (names,
 * types, typmods); convert marks the ones a read needs (NULL = all).
 */
CsvPool *
csv_pool_create(CsvParallelMode mode, int nworkers, const CsvOptions *opts,
				TupleDesc coldesc, bool *convert)
{
	const char *path = opts->path;
	MemoryContext oldcxt = MemoryContextSwitchTo(TopTransactionContext);
	CsvPool    *pool = palloc0(sizeof(CsvPool));
	shm_toc_estimator e;
	/* loads keep spare slots to replace lost workers (queues are touched only when used) */
	int			capacity = mode == CSV_MODE_LOAD ? nworkers + CSVPIPE_SPARE_SLOTS : nworkers;
	Size		shared_size = offsetof(CsvParallelShared, workers) +
		sizeof(CsvWorkerSlot) * capacity;
	Size		guc_size = EstimateGUCStateSpace();
	int			natts = coldesc ? coldesc->natts : 0;
	Size		queue_size = CSV_INPUT_QUEUE_SIZE;
	/* a load's workers may get converted rows from the leader (preparse.c) */
	Size		load_queue_size = mode == CSV_MODE_LOAD ?
		CSV_LOAD_INPUT_QUEUE_SIZE : CSV_INPUT_QUEUE_SIZE;
	/* a load's replies are chunk results; a read's are its rows */
	Size		reply_size = mode == CSV_MODE_READ ?
		(Size) csvpipe_queue_size * 1024 : 16384;
	Size		segsize;
	char	   *gucspace;
	StringInfoData wire;
	CsvParallelShared *shared;

	Assert(nworkers > 0 && nworkers <= CSVPIPE_MAX_WORKERS);

	/* the workers' options in the form the options table gives them (options.c) */
	initStringInfo(&wire);
	csv_options_to_wire(opts, &wire);

	shm_toc_initialize_estimator(&e);
	shm_toc_estimate_chunk(&e, shared_size);
	shm_toc_estimate_chunk(&e, guc_size);
	shm_toc_estimate_chunk(&e, sizeof(CsvColumnDesc) * Max(natts, 1));
	shm_toc_estimate_chunk(&e, strlen(path) + 1);
	shm_toc_estimate_chunk(&e, wire.len);
	for (int i = 0; i < capacity; i++)
	{
		shm_toc_estimate_chunk(&e, i < nworkers ? load_queue_size : queue_size);
		shm_toc_estimate_chunk(&e, reply_size);
	}
	shm_toc_estimate_keys(&e, 5 + 2 * capacity);
	segsize = shm_toc_estimate(&e);

	pool->seg = dsm_create(segsize, 0);
	pool->toc = shm_toc_create(CSVPIPE_DSM_MAGIC, dsm_segment_address(pool->seg), segsize);

	shared = shm_toc_allocate(pool->toc, shared_size);
	memset(shared, 0, shared_size);
	shared->mode = mode;
	shared->database_id = MyDatabaseId;
	shared->authenticated_user_id = GetAuthenticatedUserId();
	GetUserIdAndSecContext(&shared->current_user_id, &shared->sec_context);
	shared->nworkers = nworkers;
	shared->capacity = capacity;
	shared->leader_pid = MyProcPid;
	shared->natts = natts;
	SpinLockInit(&shared->mutex);
	for (int i = 0; i < capacity; i++)
	{
		shared->workers[i].committed_chunk = -1;
		pg_atomic_init_u64(&shared->workers[i].rejected_open, 0);
	}
	shm_toc_insert(pool->toc, CSV_KEY_SHARED, shared);
	pool->shared = shared;

	gucspace = shm_toc_allocate(pool->toc, guc_size);
	SerializeGUCState(guc_size, gucspace);
	shm_toc_insert(pool->toc, CSV_KEY_GUC, gucspace);

	pool->columns = shm_toc_allocate(pool->toc, sizeof(CsvColumnDesc) * Max(natts, 1));
	for (int i = 0; i < natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(coldesc, i);

		namestrcpy(&pool->columns[i].name, NameStr(att->attname));
		pool->columns[i].typid = att->atttypid;
		pool->columns[i].typmod = att->atttypmod;
		pool->columns[i].convert = convert ? convert[i] : true;
		pool->columns[i].send = pool->columns[i].convert;
	}
	shm_toc_insert(pool->toc, CSV_KEY_COLUMNS, pool->columns);

	pool->path = shm_toc_allocate(pool->toc, strlen(path) + 1);
	strcpy(pool->path, path);
	shm_toc_insert(pool->toc, CSV_KEY_PATH, pool->path);
	{
		char	   *options_space = shm_toc_allocate(pool->toc, wire.len);

		memcpy(options_space, wire.data, wire.len);
		shm_toc_insert(pool->toc, CSV_KEY_OPTIONS, options_space);
	}
	pfree(wire.data);

	for (int i = 0; i < capacity; i++)
	{
		Size		in_size = i < nworkers ? load_queue_size : queue_size;
		shm_mq	   *in = shm_mq_create(shm_toc_allocate(pool->toc, in_size), in_size);
		shm_mq	   *reply = shm_mq_create(shm_toc_allocate(pool->toc, reply_size), reply_size);

		shm_toc_insert(pool->toc, CSV_KEY_QUEUES + 2 * i, in);
		shm_toc_insert(pool->toc, CSV_KEY_QUEUES + 2 * i + 1, reply);
	}

	on_dsm_detach(pool->seg, pool_on_detach, PointerGetDatum(pool));
	MemoryContextSwitchTo(oldcxt);
	return pool;
}

/* Register the worker for slot n; false when no background worker slot is free */
bool
csv_pool_launch_one(CsvPool *pool, int n)
{
	MemoryContext oldcxt = MemoryContextSwitchTo(TopTransactionContext);
	BackgroundWorker bgw;
	shm_mq	   *in = shm_toc_lookup(pool->toc, CSV_KEY_QUEUES + 2 * n, false);
	shm_mq	   *reply = shm_toc_lookup(pool->toc, CSV_KEY_QUEUES + 2 * n + 1, false);
	bool		ok;

	Assert(n < pool->shared->capacity);
	memset(&bgw, 0, sizeof(bgw));
	bgw.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	bgw.bgw_start_time = BgWorkerStart_ConsistentState;
	bgw.bgw_restart_time = BGW_NEVER_RESTART;
	snprintf(bgw.bgw_library_name, BGW_MAXLEN, "csvpipe");
	snprintf(bgw.bgw_function_name, BGW_MAXLEN, "csvpipe_worker_main");
	snprintf(bgw.bgw_type, BGW_MAXLEN, "csvpipe worker");
	snprintf(bgw.bgw_name, BGW_MAXLEN, "csvpipe worker %d for PID %d", n, MyProcPid);
	bgw.bgw_main_arg = UInt32GetDatum(dsm_segment_handle(pool->seg));
	bgw.bgw_notify_pid = MyProcPid;
	memcpy(bgw.bgw_extra, &n, sizeof(int));

	shm_mq_set_sender(in, MyProc);
	shm_mq_set_receiver(reply, MyProc);
	pool->launched_at[n] = GetCurrentTimestamp();
	ok = RegisterDynamicBackgroundWorker(&bgw, &pool->handles[n]);
	if (ok)
	{
		pool->input[n] = shm_mq_attach(in, pool->seg, pool->handles[n]);
		pool->reply[n] = shm_mq_attach(reply, pool->seg, pool->handles[n]);
		pool->alive[n] = true;
		pool->nworkers = Max(pool->nworkers, n + 1);
	}
	MemoryContextSwitchTo(oldcxt);
	return ok;
}

/*
 * Register up to shared->nworkers workers.  Returns how many were started;
 * fewer than asked when background worker slots run short.
 */
int
csv_pool_launch(CsvPool *pool)
{
	int			n;

	for (n = 0; n < pool->shared->nworkers; n++)
		if (!csv_pool_launch_one(pool, n))
			break;
	pool->shared->nworkers = n;
	return n;
}

void
csv_pool_terminate(CsvPool *pool)
{
	for (int i = 0; i < pool->nworkers; i++)
		if (pool->handles[i] != NULL)
			TerminateBackgroundWorker(pool->handles[i]);
}

/*
 * Stop worker n and wait until it has exited (csvpipe.debug_fault); its
 * handle stays, so the leader finds it lost as it would any other.
 */
void
csv_pool_stop_worker(CsvPool *pool, int n)
{
	if (pool->handles[n] == NULL)
		return;
	TerminateBackgroundWorker(pool->handles[n]);
	(void) WaitForBackgroundWorkerShutdown(pool->handles[n]);
}

/* Wait until every worker has exited (they have been told to finish) */
void
csv_pool_wait_exit(CsvPool *pool)
{
	for (int i = 0; i < pool->nworkers; i++)
	{
		if (pool->handles[i] == NULL)
			continue;
		(void) WaitForBackgroundWorkerShutdown(pool->handles[i]);
		pfree(pool->handles[i]);
		pool->handles[i] = NULL;
		pool->alive[i] = false;
	}
}

void
csv_pool_destroy(CsvPool *pool)
{
	if (pool->seg != NULL)
	{
		dsm_segment *seg = pool->seg;

		cancel_on_dsm_detach(seg, pool_on_detach, PointerGetDatum(pool));
		pool->seg = NULL;
		dsm_detach(seg);
	}
}

/* Adds which worker an error or notice came from */
static void
worker_error_context(void *arg)
{
	errcontext("csvpipe worker %d", *(int *) arg);
}

/*
 * Parse a protocol message ('E' error, 'N' notice) from a worker's reply
 * queue.  Returns false for other messages (NotifyResponse...).
 */
bool
csv_pool_parse_message(char *msg, Size len, ErrorData *edata, char *msgtype)
{
	StringInfoData buf;

	buf.data = msg;
	buf.len = (int) len;
	buf.maxlen = (int) len;
	buf.cursor = 0;
	*msgtype = pq_getmsgbyte(&buf);
	if (*msgtype != 'E' && *msgtype != 'N')
		return false;
	pq_parse_errornotice(&buf, edata);
	return true;
}

/*
 * Raise an error or notice a worker sent in the leader, errors as ERROR
 * whatever their level was.
 */
void
csv_pool_rethrow(CsvPool *pool, int worker, char *msg, Size len)
{
	ErrorData	edata;
	ErrorContextCallback errcallback;
	char		msgtype;

	if (!csv_pool_parse_message(msg, len, &edata, &msgtype))
		return;
	if (msgtype == 'E')
		edata.elevel = ERROR;
	else if (edata.elevel > NOTICE)
		edata.elevel = NOTICE;

	errcallback.callback = worker_error_context;
	errcallback.arg = &worker;
	errcallback.previous = error_context_stack;
	error_context_stack = &errcallback;
	ThrowErrorData(&edata);
	error_context_stack = errcallback.previous;
}
