/*-------------------------------------------------------------------------
 *
 * run.c
 *		Running one load as its leader: csvpipe.load, and csv_run_load()
 *		for callers such as the job runner.
 *
 * Owns the load modes (option mode):
 *
 *	transaction (default): the workers read, tokenize and convert their
 *		chunks and send the rows to this process (an ordered parallel read,
 *		leader.c), which inserts them in the caller's own transaction
 *		through load.c -- one target for the whole statement, so statement
 *		triggers fire once, as with COPY.  ROLLBACK undoes it; tables the
 *		transaction created or truncated work; freeze => true follows COPY
 *		FREEZE.  In skip mode the workers catch parse and convert errors and
 *		send the rejected records along with the rows; this process inserts
 *		rows in batches, each in a subtransaction, halving a failing batch
 *		down to its bad rows, and records rejected rows in csvpipe.rejected
 *		in the caller's transaction (they roll back with it).
 *	prepared (1.0's atomic): the workers insert and PREPARE; txn.c.
 *	chunked (1.0's atomic => false): a commit per chunk; txn.c.
 *
 * Also the checks made before any worker starts (target usable from other
 * transactions in the modes that insert from workers, privileges,
 * max_prepared_transactions), the job id, what happens when no worker can
 * start (a transaction-mode load runs in this session and writes its job
 * row in the caller's transaction; a chunked or prepared one is refused,
 * but for a queued job's runner with nothing in the ledger, which loads in
 * its own transaction: refuse_without_workers), and how the job ends: on
 * success the coordinator commits the prepared parts (prepared) and
 * records the job as done; on any error, cancel included, the workers are
 * stopped and waited for, and the coordinator rolls back what was prepared
 * and records the job as failed or cancelled, before the error goes on to
 * the caller.  The job row is csvpipe's own bookkeeping, written in its
 * own transactions: in transaction mode "done" means the rows are in the
 * caller's transaction, which may still roll back; the job row's load_xid
 * names that (sub)transaction, so that submit, purge and csvpipe.jobs can
 * tell a load that rolled back ('rolled back') from one whose transaction
 * is still open ('uncommitted').
 *
 *-------------------------------------------------------------------------
 */
#include "csvfile.h"
#include "errors.h"
#include "internal_sql.h"
#include "leader.h"
#include "load.h"
#include "match.h"
#include "options.h"
#include "parallel.h"
#include "progress.h"
#include "run.h"
#include "shards.h"
#include "target.h"
#include "txn.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/stratnum.h"
#include "access/xact.h"
#include "access/xlog.h"
#include "replication/syncrep.h"
#include "replication/walsender.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "commands/sequence.h"
#include "funcapi.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "storage/lmgr.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/syscache.h"
#include "utils/fmgroids.h"
#include "utils/snapmgr.h"
#include "catalog/pg_authid.h"
#include "utils/json.h"
#include "utils/timestamp.h"
#include "catalog/pg_language.h"
#include "catalog/pg_proc.h"
#include "executor/execdesc.h"
#include "nodes/nodeFuncs.h"
#include "nodes/plannodes.h"
#include "tcop/pquery.h"
#include "utils/xid8.h"

#include <sys/stat.h>


/* transaction mode, skip mode: rows per insert batch (and subtransaction) */
#define TXN_SKIP_BATCH		4096
/* raw bytes of a rejected record read back (csvpipe.rejected keeps 4 kB) */
#define TXN_RAW_MAX			8192

PG_FUNCTION_INFO_V1(csvpipe_load);

/*
 * Refuse targets the workers cannot use: they run in their own
 * transactions, so they cannot see a table created (or truncated) in the
 * caller's open transaction, and would wait forever for a strong lock the
 * caller holds.
 */
static void
check_load_target(Oid relid, List *attnames)
{
	Relation	rel = table_open(relid, AccessShareLock);

	if (rel->rd_createSubid != InvalidSubTransactionId ||
		rel->rd_firstRelfilenodeSubid != InvalidSubTransactionId)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("table \"%s\" was created or truncated in the current transaction",
						RelationGetRelationName(rel)),
				 errdetail("In prepared and chunked mode csvpipe.load inserts from background workers, which run in their own transactions and cannot see it yet."),
				 errhint("Load with mode => 'transaction', or commit the transaction first.")));
	if (rel->rd_rel->relpersistence == RELPERSISTENCE_TEMP)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("table \"%s\" is a temporary table of this session",
						RelationGetRelationName(rel)),
				 errdetail("In prepared and chunked mode csvpipe.load inserts from background workers, which cannot see it."),
				 errhint("Load with mode => 'transaction'.")));
	if (CheckRelationLockedByMe(rel, ShareLock, true))
		ereport(ERROR,
				(errcode(ERRCODE_LOCK_NOT_AVAILABLE),
				 errmsg("this transaction holds a lock on \"%s\" that would block csvpipe's workers",
						RelationGetRelationName(rel)),
				 errhint("Load with mode => 'transaction', or commit the transaction first.")));
	/* as COPY: INSERT on the table or on each target column */
	csv_load_check_privileges(relid, attnames);
	table_close(rel, NoLock);
}

/* Names the header must carry for header => 'match' on a load */
static TupleDesc
load_header_desc(Oid relid, List *attnames)
{
	TupleDesc	desc;
	int			n = 0;

	if (attnames != NIL)
	{
		ListCell   *lc;

		desc = CreateTemplateTupleDesc(list_length(attnames));
		foreach(lc, attnames)
			TupleDescInitEntry(desc, ++n, (char *) lfirst(lc), TEXTOID, -1, 0);
	}
	else
	{
		Relation	rel = table_open(relid, AccessShareLock);
		TupleDesc	rd = RelationGetDescr(rel);

		desc = CreateTemplateTupleDesc(rd->natts);
		for (int i = 0; i < rd->natts; i++)
		{
			Form_pg_attribute att = TupleDescAttr(rd, i);

			if (att->attisdropped || att->attgenerated)
				continue;
			TupleDescInitEntry(desc, ++n, NameStr(att->attname), TEXTOID, -1, 0);
		}
		desc->natts = n;
		table_close(rel, NoLock);
	}
	return desc;
}

/*
 * No worker slot: load in this session, in the caller's transaction, into
 * target if the caller opened it already.
 */
static int64
load_in_leader(const char *path, Oid relid, List *attnames, CsvDialect *dialect,
			   CsvErrorPosition *errpos, CsvFileId *file, CsvLoadTarget *target)
{
	CsvReader  *reader = csv_reader_open(path, dialect, errpos);
	TupleDesc	desc;
	CsvConverter *conv;
	Datum	   *values;
	bool	   *nulls;
	MemoryContext row_cxt = AllocSetContextCreate(CurrentMemoryContext, "csvpipe row",
												  ALLOCSET_DEFAULT_SIZES);
	CsvRecord	rec;
	int64		nrows = 0;

	if (target == NULL)
		target = csv_load_begin(relid, attnames);
	desc = csv_load_input_desc(target);
	values = palloc(sizeof(Datum) * desc->natts);
	nulls = palloc(sizeof(bool) * desc->natts);
	/* before the first record is read: an empty line may be a row */
	csv_dialect_set_columns(dialect, desc->natts);
	conv = csv_converter_create(desc, dialect, errpos, NULL);

	csv_progress_load_started(csv_reader_file_size(reader), 0);
	if (dialect->header == CSV_HEADER_MATCH)
		csv_converter_check_header(conv, csv_reader_header(reader));
	while (csv_reader_next(reader, &rec))
	{
		MemoryContext old = MemoryContextSwitchTo(row_cxt);

		csv_converter_row(conv, &rec, values, nulls);
		errpos->line_no = 0;	/* load.c names the row's line */
		csv_load_row(target, values, nulls, rec.line_no);
		MemoryContextSwitchTo(old);
		MemoryContextReset(row_cxt);
		if ((++nrows & 8191) == 0)
			csv_progress_rows(nrows, csv_reader_bytes_read(reader));
	}
	errpos->line_no = 0;
	*file = *csv_reader_file_id(reader);
	csv_reader_close(reader);
	return (int64) csv_load_end(target);
}

/* A new job id (the sequence is csvpipe's own: no role has USAGE on it) */
static int64
next_job_id(void)
{
	Oid			types[1] = {REGCLASSOID};
	Datum		values[1];
	CsvRows    *r;

	values[0] = ObjectIdGetDatum(csv_extension_relid("job_id_seq"));
	r = csv_internal_query("SELECT pg_catalog.nextval($1)", 1, types, values, NULL);
	return DatumGetInt64(CSV_ROW_VALUE(r, 0, 0));
}

static void
finish_job(CsvCoordArgs *args, bool wait)
{
	/* the workers are gone, so a slot frees up soon; wait a little for one */
	for (int i = 0; i < 100; i++)
	{
		if (csv_txn_run_coordinator(args, wait))
			return;
		pg_usleep(100000L);
		CHECK_FOR_INTERRUPTS();
	}
	ereport(ERROR,
			(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
			 errmsg("no background worker slot free to finish csvpipe job " INT64_FORMAT, args->job_id),
			 errhint("Run SELECT csvpipe.resolve_prepared() once a slot is free.")));
}

/*
 * The load failed (interrupts held, the workers gone): record the job's
 * end -- failed or cancelled, with the error; what was prepared rolled
 * back -- and wait for it, so it is recorded when the client sees the
 * error.  The coordinator writes the job row too if no worker got to it
 * (it reads the leader's segment, mapped until it is done), and says in
 * that segment when it is done: a coordinator terminated before (by
 * pg_terminate_backend, say) is started again, as on the success path --
 * else the job stayed 'running' with a live leader_pid, which resume
 * refuses, for as long as the session lived.  The workers just freed their
 * slots; without one for 10 s, the job stays 'running' with leader_gone
 * once this call ends: the launcher settles an atomic one (rolled back,
 * 'failed'), a chunked one waits for csvpipe.resume.
 */
static void
record_failed_job(CsvCoordArgs *args, CsvParallelShared *shared)
{
	for (int attempt = 0; attempt <= 10; attempt++)
	{
		bool		started = false;
		bool		recorded;

		for (int i = 0; i < 100 && !started; i++)
		{
			started = csv_txn_run_coordinator(args, true);
			if (!started)
				pg_usleep(100000L);
		}
		if (!started)
		{
			ereport(WARNING,
					(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
					 errmsg("no background worker slot free to record the end of csvpipe job " INT64_FORMAT,
							args->job_id),
					 errdetail("The job stays running until it is resumed or settled.")));
			return;
		}
		SpinLockAcquire(&shared->mutex);
		recorded = shared->job_end_recorded;
		SpinLockRelease(&shared->mutex);
		if (recorded)
			return;
		/* terminated; if this process is being terminated too, it goes */
		pg_usleep(200000L);
		if (ProcDiePending)
			return;
		/* the earlier attempt may have counted them */
		args->retries = 0;
	}
	ereport(WARNING,
			(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
			 errmsg("csvpipe could not record the end of job " INT64_FORMAT ": its coordinator kept failing",
					args->job_id),
			 errdetail("The job stays running until it is resumed or settled.")));
}

/*
 * A chunked load cancelled once every chunk was committed: it succeeds.
 * The workers were stopped before their last wait for their commits (the
 * chunks commit without waiting for their WAL): flush it here, as the
 * caller's synchronous_commit asks.  A synchronous standby is not waited
 * for -- the cancel asked not to wait -- and a WARNING says so, as for a
 * COMMIT cancelled while it waits for one.
 */
static void
cancelled_after_commit(void)
{
	if (synchronous_commit > SYNCHRONOUS_COMMIT_OFF)
		XLogFlush(GetXLogInsertRecPtr());
	if (SyncRepRequested() && SyncRepStandbyNames != NULL && SyncRepStandbyNames[0] != '\0')
		ereport(WARNING,
				(errmsg("csvpipe.load was cancelled after every chunk had committed; the load is complete"),
				 errdetail("The rows are committed locally, but might not have been replicated to the standby.")));
}

/*
 * Did the coordinator that just exited finish the job?  Its process can be
 * terminated like any other: before it recorded the job's end, or between
 * the recorded decision and the last COMMIT PREPARED.  Finished means: the
 * job row, read with the latest snapshot (the caller's may be older, in
 * REPEATABLE READ), is in the state asked for, and no verified part of the
 * job is still prepared (pg_prepared_xacts is not MVCC; a name someone
 * else prepared, here or in another database, is not a part).
 */
static bool
job_finished(CsvCoordArgs *args)
{
	Oid			relid = csv_extension_relid("job");
	Relation	rel;
	SysScanDesc scan;
	ScanKeyData key;
	HeapTuple	tup;
	bool		done = false;

	rel = table_open(relid, AccessShareLock);
	ScanKeyInit(&key, get_attnum(relid, "job_id"), BTEqualStrategyNumber,
				F_INT8EQ, Int64GetDatum(args->job_id));
	scan = systable_beginscan(rel, InvalidOid, false, GetLatestSnapshot(), 1, &key);
	if ((tup = systable_getnext(scan)) != NULL)
	{
		bool		isnull;
		Datum		d = heap_getattr(tup, get_attnum(relid, "state"),
									 RelationGetDescr(rel), &isnull);

		done = !isnull && strcmp(TextDatumGetCString(d), args->state) == 0;
		if (done && args->action == CSV_COORD_COMMIT)
		{
			d = heap_getattr(tup, get_attnum(relid, "decision"),
							 RelationGetDescr(rel), &isnull);
			done = !isnull && strcmp(TextDatumGetCString(d), "commit") == 0;
		}
	}
	systable_endscan(scan);
	table_close(rel, AccessShareLock);
	if (!done)
		return false;

	/* a verified part of this run, in this database (not a squatted name) */
	return !csv_txn_job_has_parts(args->job_id);
}

/*
 * End a job that loaded: run the coordinator until the job is recorded as
 * done and its parts committed.  A coordinator that was terminated on the
 * way left it half done; the next one finishes it (recording the job's end
 * again is harmless, committing goes by the recorded parts).  Returning
 * success before that would let the caller see a load that returned
 * without its rows, or a job that stays 'running'.
 */
static void
finish_job_done(CsvCoordArgs *args)
{
	for (int attempt = 0;; attempt++)
	{
		finish_job(args, true);
		if (job_finished(args))
			return;
		/*
		 * The coordinator was terminated.  If the leader is being
		 * terminated too (give its signal a moment to arrive), it goes: the
		 * launcher settles the job from what is recorded.
		 */
		pg_usleep(200000L);
		if (ProcDiePending)
			return;
		if (attempt >= 10)
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("csvpipe could not finish job " INT64_FORMAT ": its coordinator kept failing",
							args->job_id),
					 errhint("See the server log; csvpipe.jobs has the job's state.")));
		/* the earlier attempt counted them */
		args->retries = 0;
	}
}


/*
 * The rest of the statement after a chunked or prepared load committed.
 *
 * Interrupts are held through the commit, and a cancel that came meanwhile
 * is dropped; but the executor checks for interrupts again after the
 * function returns (the next row of its scan), so a cancel (or
 * statement_timeout) arriving in those last microseconds would still turn
 * the statement into an ERROR with every row committed and the job 'done'
 * -- and a client that retries after an error loads the file twice
 * (082's cancel sweep hit it now and then).  So when csvpipe.load (or
 * resume) is the client's whole statement -- the query of the client's
 * unnamed portal, with nothing to run once the load returns but its
 * result's columns (statement_is_only_the_load) -- cancels stay held until
 * that query ends (its executor state is freed) or, at the latest, until
 * the client's message is done (MessageContext is reset); then a cancel
 * that came meanwhile is dropped: it came too late, the statement
 * succeeded.  Not for a statement that goes on (pg_sleep beside the load,
 * a lock wait, a join), a cursor, a function or a DO block: holding cancels
 * through work of the caller's choosing would let any loading role run
 * statements that statement_timeout, lock_timeout and pg_cancel_backend
 * cannot stop (086).  An ERROR there leaves the load committed and done.  An ERROR in the meantime
 * resets the hold count itself (errfinish), and nothing is left to undo.
 * A later load in the same statement ends the hold first and keeps a
 * pending cancel, which then cancels that load.
 */
typedef struct CancelHoldCallback
{
	MemoryContextCallback cb;
	uint64		generation;
} CancelHoldCallback;

static bool cancel_hold_active = false;
static uint64 cancel_hold_generation = 0;
static uint32 cancel_hold_count;	/* QueryCancelHoldoffCount with our hold */

static void
cancel_hold_end(bool drop_pending)
{
	if (!cancel_hold_active)
		return;
	cancel_hold_active = false;
	if (QueryCancelHoldoffCount == cancel_hold_count && cancel_hold_count > 0)
	{
		RESUME_CANCEL_INTERRUPTS();
		if (drop_pending)
			QueryCancelPending = false;
	}
}

static void
cancel_hold_callback(void *arg)
{
	CancelHoldCallback *c = (CancelHoldCallback *) arg;

	if (c->generation == cancel_hold_generation)
		cancel_hold_end(true);
}

static void
cancel_hold_register(MemoryContext cxt)
{
	CancelHoldCallback *c = MemoryContextAlloc(cxt, sizeof(CancelHoldCallback));

	c->generation = cancel_hold_generation;
	c->cb.func = cancel_hold_callback;
	c->cb.arg = c;
	MemoryContextRegisterResetCallback(cxt, &c->cb);
}

/* Hold cancels until the query that owns query_cxt ends (see above) */
static void
cancel_hold_begin(MemoryContext query_cxt)
{
	cancel_hold_end(false);
	HOLD_CANCEL_INTERRUPTS();
	cancel_hold_active = true;
	cancel_hold_count = QueryCancelHoldoffCount;
	cancel_hold_generation++;
	cancel_hold_register(query_cxt);
	if (MessageContext != NULL && MessageContext != query_cxt)
		cancel_hold_register(MessageContext);
}

/*
 * The executor state's memory of the client's own query, if the function
 * being run (csvpipe.load, csvpipe.resume) is called by it directly: the
 * active portal runs one SELECT, and the function's per-tuple memory is a
 * child of that query's memory (a function called from PL/pgSQL, a SQL
 * function or a DO block runs in a query of its own).  NULL otherwise, and
 * in background workers (no portal).
 */
static bool
load_entry_function(Oid funcid)
{
	HeapTuple	tup = SearchSysCache1(PROCOID, ObjectIdGetDatum(funcid));
	bool		result = false;

	if (!HeapTupleIsValid(tup))
		return false;
	if (((Form_pg_proc) GETSTRUCT(tup))->prolang == ClanguageId)
	{
		bool		isnull;
		Datum		d = SysCacheGetAttr(PROCOID, tup, Anum_pg_proc_prosrc, &isnull);

		if (!isnull)
		{
			char	   *src = TextDatumGetCString(d);

			result = (strcmp(src, "csvpipe_load") == 0 ||
					  strcmp(src, "csvpipe_load_by_name") == 0 ||
					  strcmp(src, "csvpipe_resume") == 0);
			pfree(src);
		}
	}
	ReleaseSysCache(tup);
	return result;
}

/*
 * true if evaluating node runs anything after a load call returns: only
 * load calls (their arguments run before them), the columns of their
 * result, constants, parameters and I/O casts between built-in types are
 * let through; *nloads counts the load calls.
 */
static bool
work_after_load_walker(Node *node, int *nloads)
{
	if (node == NULL)
		return false;
	switch (nodeTag(node))
	{
		case T_FuncExpr:
			if (!load_entry_function(((FuncExpr *) node)->funcid))
				return true;
			(*nloads)++;
			return false;
		case T_CoerceViaIO:
			{
				CoerceViaIO *c = (CoerceViaIO *) node;

				if (c->resulttype >= FirstGenbkiObjectId ||
					exprType((Node *) c->arg) >= FirstGenbkiObjectId)
					return true;
				break;
			}
		case T_Param:
			if (((Param *) node)->paramkind != PARAM_EXTERN)
				return true;
			break;
		case T_List:
		case T_TargetEntry:
		case T_Var:
		case T_Const:
		case T_FieldSelect:
		case T_RelabelType:
			break;
		default:
			return true;
	}
	return expression_tree_walker(node, work_after_load_walker, (void *) nloads);
}

/*
 * Is the statement only the load: SELECT load(...), or SELECT <its
 * columns> FROM load(...), with nothing else to run once it returns?
 * Only then are cancels held to the statement's end: a statement that
 * goes on (pg_sleep, a lock wait, a join, a sort) must stay cancellable
 * by statement_timeout, lock_timeout and pg_cancel_backend -- holding
 * them would let any loading role run uncancellable statements.
 */
static bool
statement_is_only_the_load(PlannedStmt *stmt)
{
	Plan	   *plan = stmt ? stmt->planTree : NULL;
	int			nloads = 0;

	if (plan == NULL || stmt->commandType != CMD_SELECT || stmt->subplans != NIL ||
		stmt->rowMarks != NIL || plan->initPlan != NIL || plan->qual != NIL ||
		plan->lefttree != NULL || plan->righttree != NULL)
		return false;
	if (IsA(plan, Result))
	{
		if (((Result *) plan)->resconstantqual != NULL)
			return false;
	}
	else if (IsA(plan, FunctionScan))
	{
		FunctionScan *fs = (FunctionScan *) plan;

		if (list_length(fs->functions) != 1 ||
			!IsA(((RangeTblFunction *) linitial(fs->functions))->funcexpr, FuncExpr) ||
			work_after_load_walker(((RangeTblFunction *) linitial(fs->functions))->funcexpr,
								   &nloads))
			return false;
	}
	else
		return false;
	if (work_after_load_walker((Node *) plan->targetlist, &nloads))
		return false;
	return nloads == 1;
}

static MemoryContext
client_query_context(void)
{
	Portal		portal = ActivePortal;

	/*
	 * The client's own portal (unnamed: a cursor's, or one PL/pgSQL opened,
	 * may live on while other work runs), running only the load.
	 */
	if (portal == NULL || portal->strategy != PORTAL_ONE_SELECT ||
		portal->name == NULL || portal->name[0] != '\0' ||
		portal->queryDesc == NULL || portal->queryDesc->estate == NULL ||
		!statement_is_only_the_load(portal->queryDesc->plannedstmt))
		return NULL;
	if (CurrentMemoryContext == NULL ||
		CurrentMemoryContext->parent != portal->queryDesc->estate->es_query_cxt)
		return NULL;
	return portal->queryDesc->estate->es_query_cxt;
}


/* ---- transaction mode ---- */

typedef struct TxnLoad
{
	CsvLoadRequest *req;
	CsvLeader  *L;
	CsvLoadTarget *target;		/* the statement's target */
	TupleDesc	desc;			/* the file's columns, in the target's types */
	Datum	   *values;
	bool	   *nulls;
	bool		isolate;		/* skip mode: insert in batches, in subtransactions */
	/* skip mode: the batch, copied out of the reply queues */
	MinimalTuple *btup;
	CsvRowHeader *bhdr;
	int64	   *bchunk;			/* the chunk each row came in */
	int			nbatch;
	MemoryContext batch_cxt;
	MemoryContext err_cxt;
	/* skip mode: rows of a batch for the statement's transition table */
	bool		new_table;
	MemoryContext collect_cxt;
	int64		inserted;
	int64		rejected;
} TxnLoad;

static void
txn_deform(TxnLoad *T, MinimalTuple tuple)
{
	HeapTupleData htup;

	htup.t_len = tuple->t_len + MINIMAL_TUPLE_OFFSET;
	htup.t_data = (HeapTupleHeader) ((char *) tuple - MINIMAL_TUPLE_OFFSET);
	heap_deform_tuple(&htup, T->desc, T->values, T->nulls);
}

/* A bad row into csvpipe.rejected (buffered; in the caller's transaction) */
static void
txn_reject(TxnLoad *T, int64 chunk_no, int64 line_no, int64 offset, int64 length,
		   const char *column, ErrorData *edata)
{
	int64		got;
	char	   *raw = csv_leader_read_raw(T->L, offset, length, TXN_RAW_MAX, &got);

	csv_reject_row(csv_leader_pool(T->L)->shared, T->req->opts.max_errors,
				   chunk_no, line_no, offset, raw, got, column, edata);
	pfree(raw);
	T->rejected++;
}

/* A record a worker could not parse or convert */
static void
txn_worker_reject(TxnLoad *T, CsvRowHeader *h, char *payload)
{
	CsvRejectEntry re;
	ErrorData	edata;
	char	   *p = payload + sizeof(CsvRejectEntry);
	char	   *column = NULL;

	memcpy(&re, payload, sizeof(re));
	memset(&edata, 0, sizeof(edata));
	edata.elevel = ERROR;
	edata.sqlerrcode = re.sqlerrcode;
	edata.message = p;
	p += strlen(p) + 1;
	if (re.has_detail)
	{
		edata.detail = p;
		p += strlen(p) + 1;
	}
	if (re.has_column)
		column = p;
	txn_reject(T, re.chunk_no, h->line_no, h->offset, h->length, column, &edata);
}

typedef struct TxnInsertArgs
{
	TxnLoad    *T;
	int			lo;
	int			hi;
	int64		inserted;
	List	   *collected;		/* rows for T->target's NEW TABLE */
} TxnInsertArgs;

/* batch rows [lo, hi) through a target of their own (no statement triggers) */
static void
txn_insert_rows(void *arg)
{
	TxnInsertArgs *a = (TxnInsertArgs *) arg;
	TxnLoad    *T = a->T;
	CsvLoadTarget *t = csv_load_begin_ext(T->req->opts.relid, T->req->opts.columns,
										  CSV_LOAD_NO_STMT_TRIGGERS);

	if (T->new_table)
		csv_load_collect_new_rows(t, &a->collected, T->collect_cxt);
	for (int i = a->lo; i < a->hi; i++)
	{
		txn_deform(T, T->btup[i]);
		csv_load_row(t, T->values, T->nulls, T->bhdr[i].line_no);
	}
	/* AFTER ROW triggers and foreign key checks run here, inside */
	a->inserted = (int64) csv_load_end(t);
}

/* Insert batch rows [lo, hi), halving around failures down to single bad rows */
static void
txn_insert_batch(TxnLoad *T, int lo, int hi)
{
	int			attempt = 0;

	for (;;)
	{
		TxnInsertArgs a = {T, lo, hi, 0, NIL};
		ErrorData  *edata;
		bool		in_trigger;

		CHECK_FOR_INTERRUPTS();
		csv_row_errors_begin();
		edata = csv_try_in_subxact(txn_insert_rows, &a, T->err_cxt);
		in_trigger = csv_row_errors_end(edata);
		if (edata == NULL)
		{
			T->inserted += a.inserted;
			/*
			 * The batch's rows stay: they join the statement's transition
			 * table (its own went with its target), so AFTER STATEMENT
			 * triggers see every row inserted, and only those, as COPY's do.
			 */
			csv_load_add_new_rows(T->target, a.collected);
			MemoryContextReset(T->collect_cxt);
			return;
		}
		MemoryContextReset(T->collect_cxt);
		if (csv_error_is_transient(edata) && attempt < csvpipe_max_retries)
		{
			attempt++;
			csv_backoff_sleep(attempt);
			continue;
		}
		/* not a row's fault (a table gone on a shard, say): the load fails */
		if (!csv_error_is_row_error(edata, in_trigger))
			ReThrowError(edata);
		if (hi - lo == 1)
		{
			txn_reject(T, T->bchunk[lo], T->bhdr[lo].line_no, T->bhdr[lo].offset,
					   T->bhdr[lo].length, NULL, edata);
			return;
		}
		txn_insert_batch(T, lo, lo + (hi - lo) / 2);
		txn_insert_batch(T, lo + (hi - lo) / 2, hi);
		return;
	}
}

static void
txn_flush_batch(TxnLoad *T)
{
	if (T->nbatch > 0)
		txn_insert_batch(T, 0, T->nbatch);
	T->nbatch = 0;
	MemoryContextReset(T->batch_cxt);
	MemoryContextReset(T->err_cxt);
}

/*
 * The leader's loop: every row the workers send, in file order, into the
 * target.  This process's CPU bounds a transaction-mode load, so a row
 * costs one deform (the workers send tuples already in the target's types)
 * and load.c's multi-insert.
 */
static void
txn_consume(TxnLoad *T)
{
	CsvRowHeader *h;
	char	   *payload;

	while (csv_leader_next_entry(T->L, &h, &payload))
	{
		if (h->kind == CSV_ENTRY_REJECT)
		{
			txn_worker_reject(T, h, payload);
			continue;
		}
		if (!T->isolate)
		{
			txn_deform(T, (MinimalTuple) payload);
			csv_load_row(T->target, T->values, T->nulls, h->line_no);
			continue;
		}
		/* skip mode: copied into the batch, inserted in a subtransaction */
		{
			MinimalTuple src = (MinimalTuple) payload;
			MinimalTuple copy = MemoryContextAlloc(T->batch_cxt, src->t_len);

			memcpy(copy, src, src->t_len);
			T->btup[T->nbatch] = copy;
			T->bhdr[T->nbatch] = *h;
			T->bchunk[T->nbatch] = csv_leader_current_chunk(T->L);
			if (++T->nbatch >= TXN_SKIP_BATCH)
				txn_flush_batch(T);
		}
	}
	if (T->isolate)
		txn_flush_batch(T);
	/* the rejected rows go in with the rows, in this transaction */
	csv_reject_flush(csv_leader_pool(T->L)->shared);
}

/* The load's options, for the worker that records the job; NULL: none */
static void
shared_set_options(CsvParallelShared *shared, const char *options_json)
{
	if (options_json == NULL)
		return;
	if (strlen(options_json) >= sizeof(shared->options_json))
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("csvpipe.load options are too long to record with the job")));
	strlcpy(shared->options_json, options_json, sizeof(shared->options_json));
}

/*
 * In a PG_CATCH around a leader (interrupts held): stop the leader and
 * record the error being thrown in the coordinator's args -- "cancelled" or
 * "failed", its message (the whole of it in the segment, with the handle
 * for the coordinator), the bytes read so far; returns the error.  The
 * caller fills in the rest and re-throws.
 */
static ErrorData *
leader_error_to_args(CsvLeader *L, CsvCoordArgs *args)
{
	ErrorData  *edata;
	MemoryContext ecxt = MemoryContextSwitchTo(CurTransactionContext);
	CsvPool    *pool = csv_leader_pool(L);
	char	   *message;

	edata = CopyErrorData();
	MemoryContextSwitchTo(ecxt);
	csv_leader_abort(L);
	strlcpy(args->state, edata->sqlerrcode == ERRCODE_QUERY_CANCELED ?
			"cancelled" : "failed", sizeof(args->state));
	/*
	 * The message, as the client gets it (with its hint, which the client
	 * sees too).  A submitted job's runner records the hint as well
	 * (launcher.c): nobody else sees its error.
	 */
	message = edata->message ? edata->message : "";
	strlcpy(args->error, message, sizeof(args->error));
	/* the whole error, and the job row if no worker wrote it (txn.c) */
	strlcpy(pool->shared->error, message, sizeof(pool->shared->error));
	pool->shared->error_dsm = 0;
	if (strlen(message) >= sizeof(pool->shared->error))
	{
		/* longer: all of it in a segment of its own, until the leader aborts */
		Size		len = strlen(message) + 1;
		dsm_segment *eseg = dsm_create(len, DSM_CREATE_NULL_IF_MAXSEGMENTS);

		if (eseg != NULL)
		{
			memcpy(dsm_segment_address(eseg), message, len);
			pool->shared->error_dsm = dsm_segment_handle(eseg);
		}
	}
	args->dsm = dsm_segment_handle(pool->seg);
	args->bytes = csv_leader_bytes(L);
	return edata;
}

/*
 * Transaction mode without workers (workers => 0, or no slot free; never
 * into foreign tables: csv_shards_check_txn_in_session): the job row,
 * written in the caller's transaction, with the rows -- there is no
 * worker to write it in a transaction of its own, and no coordinator to
 * record the end.  So csvpipe.jobs shows the job once that transaction
 * commits ('uncommitted' to the loading transaction itself, and csvpipe.wait
 * waits for it from other sessions), and nothing of it, rows or job, once
 * it rolls back; submit counts the file as loaded, as for a load with
 * workers.  A resumed job's row is updated the same way: it stays as it
 * was if the resume rolls back.  load_xid is set too, so the job reads as
 * every transaction-mode job reads.  A queued job's runner records its
 * job's end itself (launcher.c).
 */
static void
record_session_job(CsvLoadRequest *req, int64 rows, const CsvFileId *file,
				   TimestampTz started)
{
	Oid			types[11] = {INT8OID, TEXTOID, OIDOID, OIDOID, INT8OID, INT8OID, INT8OID,
	INT8OID, TEXTOID, TIMESTAMPTZOID, INT8OID};
	Datum		values[11];

	values[0] = Int64GetDatum(req->job_id);
	values[1] = CStringGetTextDatum(req->opts.path);
	values[2] = ObjectIdGetDatum(req->opts.relid);
	values[3] = ObjectIdGetDatum(GetUserId());
	values[4] = Int64GetDatum(file->size);
	values[5] = Int64GetDatum(file->dev);
	values[6] = Int64GetDatum(file->ino);
	values[7] = Int64GetDatum(file->mtime_ns);
	values[8] = CStringGetTextDatum(req->options_json ? req->options_json : "{}");
	values[9] = TimestampTzGetDatum(started);
	values[10] = Int64GetDatum(rows);
	(void) csv_internal_query("INSERT INTO @extschema@.job AS j (job_id, path, target, state, atomic, "
							  "  workers, leader_pid, submitted_by, file_size, file_dev, file_ino, "
							  "  file_mtime_ns, options, submitted_at, started_at, finished_at, "
							  "  rows_loaded, rows_rejected, bytes) "
							  "VALUES ($1, $2, $3, 'done', false, 0, NULL, $4, $5, $6, $7, $8, "
							  "        $9::pg_catalog.jsonb, $10, $10, pg_catalog.clock_timestamp(), $11, 0, $5) "
							  "ON CONFLICT (job_id) DO UPDATE SET state = 'done', workers = 0, "
							  "  leader_pid = NULL, started_at = excluded.started_at, "
							  "  finished_at = excluded.finished_at, file_size = excluded.file_size, "
							  "  file_dev = excluded.file_dev, file_ino = excluded.file_ino, "
							  "  file_mtime_ns = excluded.file_mtime_ns, rows_loaded = excluded.rows_loaded, "
							  "  rows_rejected = 0, bytes = excluded.bytes, error = NULL, decision = NULL, "
							  "  commit_parts = NULL, options = coalesce(j.options, excluded.options)",
							  11, types, values, NULL);

	/* (1.1) the (sub)transaction that inserted the rows */
	if (get_attnum(csv_extension_relid("job"), "load_xid") != InvalidAttrNumber)
	{
		Oid			xtypes[2] = {INT8OID, XID8OID};
		Datum		xvalues[2];

		xvalues[0] = Int64GetDatum(req->job_id);
		xvalues[1] = FullTransactionIdGetDatum(GetCurrentFullTransactionId());
		(void) csv_internal_query("UPDATE @extschema@.job SET load_xid = $2 "
								  "WHERE job_id OPERATOR(pg_catalog.=) $1",
								  2, xtypes, xvalues, NULL);
	}
}

/*
 * Transaction mode: returns the rows inserted; *launched, *rejected and
 * *bytes as csv_run_load reports them.
 */
static int64
load_transaction(CsvLoadRequest *req, CsvErrorPosition *errpos, int *launched,
				 int64 *rejected, int64 *bytes, CsvLoadResult *res)
{
	TxnLoad		T;
	CsvParallelShared *shared;
	CsvCoordArgs args;
	int			flags = req->opts.freeze ? CSV_LOAD_FREEZE : 0;
	int			wanted;
	TimestampTz started = GetCurrentTimestamp();

	memset(&T, 0, sizeof(T));
	T.req = req;
	*launched = 0;
	*rejected = 0;
	*bytes = 0;

	/*
	 * The workers start (and the job row is written) before this process
	 * takes its RowExclusiveLock, so a load waiting for a lock is visible
	 * in csvpipe.jobs and csvpipe.progress, and can be cancelled.
	 */
	T.desc = csv_load_file_desc(req->opts.relid, req->opts.columns);

	if (req->opts.nworkers > 0)
	{
		T.L = csv_leader_begin(CSV_MODE_READ, &req->opts, T.desc, NULL, true, errpos);
		if (req->opts.dialect.header == CSV_HEADER_MATCH)
		{
			CsvConverter *hconv = csv_converter_create(load_header_desc(req->opts.relid, req->opts.columns),
													   &req->opts.dialect, errpos, NULL);

			csv_converter_check_header(hconv, csv_leader_header(T.L));
		}
		shared = csv_leader_pool(T.L)->shared;
		shared->txn_load = true;

		/*
		 * The rows are inserted by this (sub)transaction (or by
		 * subtransactions committed into it), while the job's 'done' is
		 * written by a coordinator that commits on its own: recorded so
		 * that submit, purge and csvpipe.jobs do not count a load whose
		 * transaction, or savepoint, rolled back (pg_xact_status says
		 * 'aborted' for an aborted subtransaction and for every
		 * subtransaction of an aborted top-level one).
		 */
		shared->load_xid = U64FromFullTransactionId(GetCurrentFullTransactionId());
		shared->job_id = req->job_id;
		shared->target_relid = req->opts.relid;
		shared->columns_given = (req->opts.columns != NIL);
		pg_atomic_init_u64(&shared->rejected_total, 0);
		shared_set_options(shared, req->options_json);
		wanted = shared->nworkers;	/* capped at the file's chunks */
		*launched = csv_leader_launch(T.L);
		if (*launched > 0 && *launched < wanted)
			ereport(NOTICE,
					(errmsg("csvpipe.load: %d of %d workers could be started", *launched, wanted)));
		if (*launched == 0)
		{
			csv_leader_end(T.L);
			T.L = NULL;
			ereport(NOTICE,
					(errmsg("csvpipe.load: no background worker slot is free; loading in this session")));
		}
		else
			csv_progress_load_started(shared->file.size, *launched);
	}

	if (T.L == NULL)
	{
		/*
		 * Into foreign tables only with a worker: the job row written here
		 * would roll back with a COMMIT that failed on one server after
		 * another committed, and leave no job in doubt (shards.c).
		 */
		csv_shards_check_txn_in_session(req->opts.relid,
										req->resume ? "csvpipe.resume" : "csvpipe.load");
		/* BEFORE STATEMENT triggers fire here, once */
		T.target = csv_load_begin_ext(req->opts.relid, req->opts.columns, flags);
		if (req->opts.on_error_skip)
			ereport(ERROR,
					(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
					 errmsg("csvpipe.load with on_error => 'skip' needs a background worker, and none could be started"),
					 errhint("Raise max_worker_processes or csvpipe.max_workers, or retry when a slot is free.")));
		{
			int64		n = load_in_leader(req->opts.path, req->opts.relid, req->opts.columns,
										   &req->opts.dialect, errpos, &res->file, T.target);

			res->have_file = true;
			*bytes = res->file.size;
			if (!req->runner)
				record_session_job(req, n, &res->file, started);
			return n;
		}
	}

	T.values = palloc(sizeof(Datum) * Max(T.desc->natts, 1));
	T.nulls = palloc(sizeof(bool) * Max(T.desc->natts, 1));
	/* frozen rows cannot be rolled back by a subtransaction: no isolation */
	T.isolate = req->opts.on_error_skip && !req->opts.freeze;
	T.batch_cxt = AllocSetContextCreate(CurrentMemoryContext, "csvpipe load batch",
										ALLOCSET_DEFAULT_SIZES);
	T.err_cxt = AllocSetContextCreate(CurrentMemoryContext, "csvpipe load errors",
									  ALLOCSET_DEFAULT_SIZES);
	T.collect_cxt = AllocSetContextCreate(CurrentMemoryContext, "csvpipe load transition rows",
										  ALLOCSET_DEFAULT_SIZES);
	if (T.isolate)
	{
		T.btup = palloc(sizeof(MinimalTuple) * TXN_SKIP_BATCH);
		T.bhdr = palloc(sizeof(CsvRowHeader) * TXN_SKIP_BATCH);
		T.bchunk = palloc(sizeof(int64) * TXN_SKIP_BATCH);
	}

	memset(&args, 0, sizeof(args));
	args.database_id = MyDatabaseId;
	args.job_id = req->job_id;
	args.action = CSV_COORD_NONE;

	PG_TRY();
	{
		uint64		n;

		/* the lock (waited for in sight), BEFORE STATEMENT triggers, once */
		T.target = csv_load_begin_ext(req->opts.relid, req->opts.columns, flags);
		T.new_table = T.isolate && csv_load_has_new_table(T.target);
		txn_consume(&T);
		/* AFTER STATEMENT triggers and the queued AFTER triggers, once */
		n = csv_load_end(T.target);
		T.target = NULL;
		if (!T.isolate)
			T.inserted = (int64) n;
		/*
		 * The workers' exits, waited for here: a cancel that comes
		 * meanwhile fails the load like any other, with its job recorded
		 * (it used to leave the job 'running' with the ERROR).
		 */
		csv_pool_wait_exit(csv_leader_pool(T.L));
	}
	PG_CATCH();
	{
		HOLD_INTERRUPTS();
		leader_error_to_args(T.L, &args);
		args.rows_rejected = T.rejected;
		record_failed_job(&args, csv_leader_pool(T.L)->shared);
		RESUME_INTERRUPTS();
		PG_RE_THROW();
	}
	PG_END_TRY();

	/*
	 * 'done' is recorded before any error can reach the client.  A cancel
	 * that comes meanwhile is served once this returns: it aborts the
	 * caller's transaction, and the job's load_xid says 'rolled back'.
	 */
	HOLD_INTERRUPTS();
	*rejected = T.rejected;
	*bytes = csv_leader_bytes(T.L);
	args.rows_loaded = T.inserted;
	args.rows_rejected = T.rejected;
	args.bytes = *bytes;
	args.retries = (int32) csv_leader_retries(T.L);
	csv_leader_end(T.L);
	strlcpy(args.state, "done", sizeof(args.state));
	finish_job(&args, true);
	RESUME_INTERRUPTS();
	return T.inserted;
}

/*
 * Resume: the chunks an earlier run committed (the ledger's chunk numbers,
 * an int8[] sorted ascending) become req's skip set.  Returns how many.
 */
int
csv_load_set_skip_chunks(CsvLoadRequest *req, ArrayType *chunks)
{
	Datum	   *elems;
	bool	   *enulls;
	int			n;

	deconstruct_array(chunks, INT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE,
					  &elems, &enulls, &n);
	req->nskip = n;
	req->skip_chunks = palloc(sizeof(int64) * Max(n, 1));
	for (int i = 0; i < n; i++)
		req->skip_chunks[i] = DatumGetInt64(elems[i]);
	return n;
}

/*
 * A chunked or prepared load that could start no worker.  Those modes
 * commit in their workers, outside the caller's transaction, and record
 * the job there; loaded in this session instead, the rows would commit or
 * roll back with the caller's transaction (a ROLLBACK after a chunked load
 * would undo it, a crash would leave nothing to resume), and the job would
 * have no row in csvpipe.jobs -- the caller got a job id nobody could see,
 * wait for or resume.  A resumed chunked job would load the ledger's chunks
 * again: the serial reader knows no chunks.  So refused, with SQLSTATE
 * 53400 (as a load into foreign tables, shards.c, and skip mode).  A
 * queued job's runner still loads a job with nothing in its ledger itself,
 * in its own transaction, which also records the job's end (launcher.c);
 * one with chunks in the ledger fails, and is resumed once a slot is free.
 * none_asked: workers => 0 (or csvpipe.max_workers = 0), not a lack of
 * slots.
 */
static void
refuse_without_workers(CsvLoadRequest *req, bool none_asked)
{
	const char *fn = req->resume ? "csvpipe.resume" : "csvpipe.load";
	const char *mode = csv_load_mode_label(req->opts.mode);

	if (req->runner)
		ereport(ERROR,
				(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
				 errmsg("csvpipe job " INT64_FORMAT " needs a background worker to load the chunks missing from its ledger, and %s",
						req->job_id, none_asked ? "workers is 0" : "no slot is free"),
				 errdetail("Its ledger lists %d chunks; loaded without workers, they would be loaded again.",
						   req->nskip),
				 errhint("Resume it with csvpipe.resume(" INT64_FORMAT ") once a slot is free, or raise max_worker_processes.",
						 req->job_id)));
	if (none_asked)
		ereport(ERROR,
				(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
				 errmsg("%s with mode => '%s' needs at least one background worker", fn, mode),
				 errdetail("Chunked and prepared loads commit in their workers, outside the caller's transaction."),
				 req->resume ?
				 errhint("Resume it once csvpipe.max_workers (now %d) allows a worker.", csvpipe_max_workers) :
				 errhint("Load with workers => 1 or more (csvpipe.max_workers, now %d, caps it), or with mode => 'transaction' (it inserts in this session).",
						 csvpipe_max_workers)));
	ereport(ERROR,
			(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
			 errmsg("%s with mode => '%s' needs a background worker, and no slot is free", fn, mode),
			 errdetail("Chunked and prepared loads commit in their workers, outside the caller's transaction."),
			 req->resume ?
			 errhint("Resume it once a slot is free, or raise max_worker_processes.") :
			 errhint("Retry when a slot is free, raise max_worker_processes, or load with mode => 'transaction' (it inserts in this session).")));
}

/*
 * Run one load.  req->job_id = 0 takes a new job id.  Errors propagate
 * after the job has been recorded as failed or cancelled.
 */
void
csv_run_load(CsvLoadRequest *req, CsvLoadResult *res)
{
	CsvErrorPosition errpos;
	ErrorContextCallback errcallback;
	int			nworkers = req->opts.nworkers;
	int			launched = 0;
	int64		rows;
	int64		rejected = 0;
	int64		bytes = 0;
	CsvLeader  *L;
	bool		fresh_job;
	TimestampTz start = GetCurrentTimestamp();
	long		secs;
	int			usecs;
	MemoryContext client_query = client_query_context();

	/* an earlier load of this statement held cancels: this one can be cancelled */
	cancel_hold_end(false);
	res->have_file = false;

	memset(&errpos, 0, sizeof(errpos));
	errpos.funcname = "csvpipe.load";
	errpos.path = req->opts.path;
	errcallback.callback = csv_error_context_callback;
	errcallback.arg = &errpos;
	errcallback.previous = error_context_stack;
	error_context_stack = &errcallback;

	(void) csv_check_chunk_size(req->opts.chunk_size);

	/* match => 'name': the header names the columns (match.c) */
	if (req->opts.match_name)
		req->opts.columns = csv_match_target(req->opts.relid, req->opts.path,
										 req->resume ? "csvpipe.resume" : "csvpipe.load",
										 &req->opts.dialect, req->opts.extra_ignore);

	if (req->opts.mode == CSV_LOAD_MODE_UNSET)
		req->opts.mode = req->opts.atomic ? CSV_LOAD_MODE_PREPARED : CSV_LOAD_MODE_CHUNKED;
	req->opts.atomic = (req->opts.mode == CSV_LOAD_MODE_PREPARED);
	if (req->opts.freeze && req->opts.mode != CSV_LOAD_MODE_TRANSACTION)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("csvpipe.load with freeze => true needs mode => 'transaction'"),
				 errdetail("Rows are frozen only when they are inserted in the transaction that created or truncated the table.")));

	if (req->opts.mode == CSV_LOAD_MODE_TRANSACTION)
	{
		/* the caller's transaction inserts: its own tables and locks are fine */
		csv_load_check_privileges(req->opts.relid, req->opts.columns);
		csv_target_check(req->opts.relid, false, req->resume ? "csvpipe.resume" : "csvpipe.load");
		if (req->job_id <= 0)
			req->job_id = next_job_id();
		csv_progress_load_begin(req->job_id, req->opts.progress);
		rows = load_transaction(req, &errpos, &launched, &rejected, &bytes, res);
		goto done;
	}

	check_load_target(req->opts.relid, req->opts.columns);
	/* foreign and Citus tables: before the file is read or a job recorded */
	csv_target_check(req->opts.relid, req->opts.atomic, req->resume ? "csvpipe.resume" : "csvpipe.load");
	/* chunked into foreign tables: every server needs its ledger (shards.c) */
	if (req->opts.mode == CSV_LOAD_MODE_CHUNKED)
		csv_shards_check_chunked(req->opts.relid);

	/*
	 * Prepared mode: every worker prepares a transaction.  Checked before
	 * anything else happens, with a hint that works when followed.
	 */
	if (nworkers > 0 && req->opts.atomic && max_prepared_transactions_setting() < nworkers)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("csvpipe.load with mode => 'prepared' needs max_prepared_transactions >= workers (%d < %d)",
						max_prepared_transactions_setting(), nworkers),
				 errdetail("Each worker of a prepared-mode load ends with PREPARE TRANSACTION."),
				 max_prepared_transactions_setting() > 0 ?
				 errhint("Set max_prepared_transactions = %d or more in postgresql.conf and restart the server, load with workers => %d, or use mode => 'transaction' (the default) or mode => 'chunked'.",
						 nworkers, max_prepared_transactions_setting()) :
				 errhint("Set max_prepared_transactions = %d or more in postgresql.conf and restart the server, or use mode => 'transaction' (the default) or mode => 'chunked'.",
						 nworkers)));

	fresh_job = (req->job_id <= 0 && !req->resume);
	if (req->job_id <= 0)
		req->job_id = next_job_id();
	csv_progress_load_begin(req->job_id, req->opts.progress);

	L = NULL;
	if (nworkers > 0)
	{
		CsvParallelShared *shared;
		TupleDesc	names = NULL;
		int			wanted;

		if (req->opts.columns != NIL)
			names = load_header_desc(req->opts.relid, req->opts.columns);
		L = csv_leader_begin(CSV_MODE_LOAD, &req->opts, names, NULL, true, &errpos);
		if (req->opts.dialect.header == CSV_HEADER_MATCH)
		{
			CsvConverter *hconv = csv_converter_create(load_header_desc(req->opts.relid, req->opts.columns),
													   &req->opts.dialect, &errpos, NULL);

			csv_converter_check_header(hconv, csv_leader_header(L));
		}
		shared = csv_leader_pool(L)->shared;
		shared->job_id = req->job_id;
		shared->fresh_job = fresh_job;
		shared->atomic = req->opts.atomic;
		if (req->opts.atomic)
			csv_txn_new_nonce(shared->gid_nonce);
		shared->target_relid = req->opts.relid;
		shared->columns_given = (req->opts.columns != NIL);
		shared_set_options(shared, req->options_json);
		if (req->skip_chunks)
			csv_leader_set_skip(L, req->skip_chunks, req->nskip);
		/* chunked: the leader converts chunks while the workers are busy */
		if (!req->opts.atomic && !req->opts.on_error_skip)
			csv_leader_set_preparse(L, req->opts.relid, req->opts.columns);
		pg_atomic_init_u64(&shared->rejected_total, 0);
		wanted = shared->nworkers;	/* capped at the file's chunks */
		launched = csv_leader_launch(L);
		if (launched == 0)
		{
			csv_leader_end(L);
			L = NULL;
			ereport(NOTICE,
					(errmsg("csvpipe.load: no background worker slot is free; loading in this session"),
					 errdetail("The rows are inserted in the current transaction.")));
		}
		else if (launched < wanted)
			ereport(NOTICE,
					(errmsg("csvpipe.load: %d of %d workers could be started", launched, nworkers)));
		if (L != NULL)
			csv_progress_load_started(shared->file.size, launched);
	}

	if (L == NULL)
	{
		/* chunked into foreign tables: only workers use the shard ledgers */
		if (req->opts.mode == CSV_LOAD_MODE_CHUNKED)
			csv_shards_check_in_session(req->opts.relid, req->resume ? "csvpipe.resume" : "csvpipe.load");
		/* only a runner loads a chunked or prepared job without workers */
		if (!req->runner || req->nskip > 0)
			refuse_without_workers(req, nworkers == 0);
		if (req->opts.on_error_skip)
			ereport(ERROR,
					(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
					 errmsg("csvpipe.load with on_error => 'skip' needs a background worker, and none could be started"),
					 errhint("Raise max_worker_processes or csvpipe.max_workers, or retry when a slot is free.")));
		rows = load_in_leader(req->opts.path, req->opts.relid, req->opts.columns, &req->opts.dialect, &errpos,
							  &res->file, NULL);
		res->have_file = true;
		bytes = res->file.size;
		launched = 0;
	}
	else
	{
		CsvCoordArgs args;
		bool		atomic = req->opts.atomic;
		volatile bool cancelled_late = false;
		MemoryContext cxt = CurrentMemoryContext;

		memset(&args, 0, sizeof(args));
		args.database_id = MyDatabaseId;
		args.job_id = req->job_id;

		PG_TRY();
		{
			csv_leader_run(L);
		}
		PG_CATCH();
		{
			ErrorData  *edata;

			/*
			 * The outcome is decided from final state: the workers are
			 * stopped and waited for first, so what they committed (the
			 * ledger, their slots) can no longer change.
			 */
			HOLD_INTERRUPTS();
			edata = leader_error_to_args(L, &args);
			MemoryContextSwitchTo(cxt);
			FlushErrorState();

			/*
			 * A cancel that came once every chunk was committed (the leader
			 * was waiting for the workers to finish) is too late: the load
			 * is complete, so it succeeds, as a cancel during the commit
			 * phase of an atomic load does.  An ERROR here would have a
			 * client load the file twice.  Otherwise the ERROR goes on, and
			 * the job row says what is committed: the ledger's chunks
			 * (chunked, resumable), nothing (prepared: rolled back).
			 */
			if (!atomic && edata->sqlerrcode == ERRCODE_QUERY_CANCELED &&
				csv_leader_all_committed(L))
			{
				cancelled_late = true;
				args.error[0] = '\0';
				args.dsm = DSM_HANDLE_INVALID;
			}
			else
			{
				args.action = atomic ? CSV_COORD_ROLLBACK : CSV_COORD_NONE;
				args.rows_loaded = atomic ? 0 : csv_leader_rows(L);
				args.rows_rejected = csv_leader_rejected(L);
				args.retries = (int32) csv_leader_retries(L);
				record_failed_job(&args, csv_leader_pool(L)->shared);
				RESUME_INTERRUPTS();
				ReThrowError(edata);
			}
			RESUME_INTERRUPTS();
		}
		PG_END_TRY();

		if (cancelled_late)
			cancelled_after_commit();

		/*
		 * Every part is prepared (atomic) or every chunk committed (chunked):
		 * the load commits.  A cancel from here on must not turn it into an
		 * error -- a client retrying after an error would load twice -- so
		 * interrupts are held through the commit, and a cancel that came
		 * meanwhile is dropped: it came too late, the statement succeeded.
		 */
		HOLD_INTERRUPTS();
		rows = csv_leader_rows(L);
		rejected = csv_leader_rejected(L);
		bytes = csv_leader_bytes(L);
		args.retries = (int32) csv_leader_retries(L);
		args.rows_rejected = rejected;
		/* commit exactly the parts whose workers said "prepared" */
		if (atomic)
			csv_leader_prepared_parts(L, args.parts);
		csv_leader_end(L);

		args.action = atomic ? CSV_COORD_COMMIT : CSV_COORD_NONE;
		strlcpy(args.state, "done", sizeof(args.state));
		args.rows_loaded = rows;
		args.bytes = bytes;
		csv_progress_phase("committing");
		finish_job_done(&args);
		QueryCancelPending = false;
		/* and through the rest of the client's statement (see cancel_hold_begin) */
		if (client_query != NULL)
			cancel_hold_begin(client_query);
		RESUME_INTERRUPTS();
	}

done:
	error_context_stack = errcallback.previous;
	csv_progress_load_end();

	TimestampDifference(start, GetCurrentTimestamp(), &secs, &usecs);
	res->job_id = req->job_id;
	res->rows_loaded = rows;
	res->rows_rejected = rejected;
	res->bytes = bytes;
	res->seconds = secs + usecs / 1000000.0;
	res->workers = launched;
}

/* A csvpipe.load_result row */
Datum
csv_load_result_datum(TupleDesc resdesc, CsvLoadResult *res)
{
	Datum		result[6];
	bool		resnulls[6] = {false, false, false, false, false, false};

	result[0] = Int64GetDatum(res->job_id);
	result[1] = Int64GetDatum(res->rows_loaded);
	result[2] = Int64GetDatum(res->rows_rejected);
	result[3] = Int64GetDatum(res->bytes);
	result[4] = Float8GetDatum(res->seconds);
	result[5] = Int32GetDatum(res->workers);
	return HeapTupleGetDatum(heap_form_tuple(BlessTupleDesc(resdesc), result, resnulls));
}

/*
 * A load's request from its options (options.c), with the options as they
 * are recorded with its job.
 */
void
csv_load_request_init(CsvLoadRequest *req, const CsvOptions *opts)
{
	memset(req, 0, sizeof(*req));
	req->opts = *opts;
	req->options_json = csv_options_job_json(opts);
}

/* csvpipe.load(path, target, <options>): see the options table (options.c) */
Datum
csvpipe_load(PG_FUNCTION_ARGS)
{
	CsvOptions	opts;
	CsvLoadRequest req;
	CsvLoadResult res;
	TupleDesc	resdesc;

	csv_options_from_fcinfo(&opts, fcinfo, CSV_FN_LOAD, "csvpipe.load");
	if (opts.path == NULL || !OidIsValid(opts.relid))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("csvpipe.load: path and target must not be NULL")));
	if (get_call_result_type(fcinfo, NULL, &resdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "csvpipe.load must return a row");

	csv_load_request_init(&req, &opts);
	csv_run_load(&req, &res);

	PG_RETURN_DATUM(csv_load_result_datum(resdesc, &res));
}

/*
 * csvpipe.resume of a transaction-mode job (here, or re-queued by jobs.c):
 * not when its transaction aborted after the load was done (in_doubt:
 * csv_txn_job_in_doubt_sql) and its target has foreign tables -- if it was
 * the COMMIT that failed, a server may have kept the rows, and running the
 * load again would double them there.
 */
void
csv_resume_check_in_doubt(int64 job_id, Oid relid, bool in_doubt)
{
	char	   *foreign;

	if (!in_doubt || (foreign = csv_shards_foreign_example(relid)) == NULL)
		return;
	ereport(ERROR,
			(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
			 errmsg("csvpipe job " INT64_FORMAT " cannot be resumed: its transaction ended after the load without committing, and its target \"%s\" has foreign tables",
					job_id, get_rel_name(relid)),
			 errdetail("%s.  A transaction-mode load commits on each foreign server in turn at COMMIT, without two-phase commit: "
					   "if its COMMIT failed on one server, another may have kept the job's rows, and loading the file again would double them there.",
					   foreign),
			 errhint("Check each server's rows from the file, then load it as a new job (csvpipe.load, or csvpipe.submit with force => true); mode => 'chunked' loads exactly once across servers.")));
}

/*
 * Serialize the resumes of one load job: a transaction-level lock, taken
 * without waiting, before the job row is read.  Two sessions that both read
 * the job as failed would both load the file, and the loser would then
 * record the winner's job as failed.  Not a row lock on the job row: worker
 * 0 and the coordinator update that row in their own transactions while
 * the resuming one waits for them.  An advisory tag whose last field no SQL
 * function can produce (the pg_advisory_* functions use 1 and 2, submit
 * 0x4353), so no role can take it to block a resume.  Kept until the
 * transaction ends: by then the job's end is committed, and the next resume
 * reads it.
 */
#define CSV_RESUME_LOCK_KIND	0x4352	/* "CR" */

static bool
resume_lock(int64 job_id)
{
	LOCKTAG		tag;

	SET_LOCKTAG_ADVISORY(tag, MyDatabaseId, (uint32) ((uint64) job_id >> 32),
						 (uint32) job_id, CSV_RESUME_LOCK_KIND);
	return LockAcquire(&tag, ExclusiveLock, false, true) != LOCKACQUIRE_NOT_AVAIL;
}

/*
 * csvpipe.resume(job) of a job csvpipe.load started (jobs.c owns the SQL
 * function, and puts a job queued by csvpipe.submit back in the queue
 * instead): finish a load whose leader died.  A chunked job loads only the
 * chunks absent from the ledger; an atomic one is loaded again from the
 * start once its prepared parts are settled.  The file must be unchanged.
 *
 * The job's own role runs the load: a superuser (or a member of that role)
 * who resumes it inserts with that role's privileges, as the role would
 * have, never with its own.  The job row is read through csv_internal_query,
 * so the caller needs no privileges on csvpipe's tables.
 */
void
csv_resume_load(int64 job_id, CsvLoadResult *res)
{
	CsvOptions	opts;
	CsvLoadRequest req;
	Oid			types[1] = {INT8OID};
	Datum		values[1];
	CsvRows    *r;
	char	   *state;
	bool		atomic;
	Oid			submitted_by;
	bool		leader_alive;
	CsvFileId	recorded;
	Oid			save_userid;
	int			save_sec;

	/*
	 * It decides from the job row, so it must see the latest one: a snapshot
	 * older than another session's resume would load the file again.
	 */
	if (IsolationUsesXactSnapshot())
		ereport(ERROR,
				(errcode(ERRCODE_ACTIVE_SQL_TRANSACTION),
				 errmsg("csvpipe.resume cannot run in a REPEATABLE READ or SERIALIZABLE transaction"),
				 errdetail("Its snapshot may not show another session's resume of the job.")));

	/* one session at a time, before the job row is read (see resume_lock) */
	if (!resume_lock(job_id))
		ereport(ERROR,
				(errcode(ERRCODE_LOCK_NOT_AVAILABLE),
				 errmsg("csvpipe job " INT64_FORMAT " is being resumed by another session", job_id),
				 errdetail("Only one session at a time can resume a job.")));

	values[0] = Int64GetDatum(job_id);
	r = csv_internal_query(psprintf("SELECT j.path, j.target, j.state, j.atomic, j.submitted_by, "
						   "  EXISTS (SELECT 1 FROM pg_catalog.pg_stat_activity a "
						   "           WHERE a.pid OPERATOR(pg_catalog.=) j.leader_pid), "
						   "  j.file_size, j.file_dev, j.file_ino, j.file_mtime_ns, "
						   "  j.options, "
						   "  ARRAY(SELECT c.chunk_no FROM @extschema@.chunks c "
						   "         WHERE c.job_id OPERATOR(pg_catalog.=) j.job_id ORDER BY 1), %s, %s "
						   "FROM @extschema@.job j "
						   "WHERE j.job_id OPERATOR(pg_catalog.=) $1",
						   csv_txn_job_state_sql("j."), csv_txn_job_in_doubt_sql("j.")),
						   1, types, values, NULL);
	if (r->nrows == 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("csvpipe job " INT64_FORMAT " does not exist", job_id)));

	/* as csvpipe.jobs says it: a transaction-mode load may be 'rolled back' */
	state = TextDatumGetCString(CSV_ROW_VALUE(r, 0, 12));
	atomic = DatumGetBool(CSV_ROW_VALUE(r, 0, 3));
	submitted_by = CSV_ROW_ISNULL(r, 0, 4) ? InvalidOid : DatumGetObjectId(CSV_ROW_VALUE(r, 0, 4));
	leader_alive = DatumGetBool(CSV_ROW_VALUE(r, 0, 5));
	recorded.size = CSV_ROW_ISNULL(r, 0, 6) ? -1 : DatumGetInt64(CSV_ROW_VALUE(r, 0, 6));
	recorded.dev = CSV_ROW_ISNULL(r, 0, 7) ? -1 : DatumGetInt64(CSV_ROW_VALUE(r, 0, 7));
	recorded.ino = CSV_ROW_ISNULL(r, 0, 8) ? -1 : DatumGetInt64(CSV_ROW_VALUE(r, 0, 8));
	recorded.mtime_ns = CSV_ROW_ISNULL(r, 0, 9) ? -1 : DatumGetInt64(CSV_ROW_VALUE(r, 0, 9));

	/* who may resume: a superuser, or a role with the job role's privileges */
	if (!OidIsValid(submitted_by) || !SearchSysCacheExists1(AUTHOID, ObjectIdGetDatum(submitted_by)))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("csvpipe job " INT64_FORMAT " cannot be resumed: the role that started it no longer exists",
						job_id)));
	if (!superuser() && !has_privs_of_role(GetUserId(), submitted_by))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied to resume csvpipe job " INT64_FORMAT, job_id),
				 errdetail("Only superusers and members of the role that started the job can resume it.")));
	/* 'uncommitted': done in a transaction still open, this one or another */
	if (strcmp(state, "uncommitted") == 0 && !CSV_ROW_ISNULL(r, 0, 14) &&
		!TransactionIdIsCurrentTransactionId(XidFromFullTransactionId(
			DatumGetFullTransactionId(CSV_ROW_VALUE(r, 0, 14)))))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("csvpipe job " INT64_FORMAT " is done in a transaction that has not ended yet", job_id),
				 errhint("Resume it if that transaction rolls back.")));
	if (strcmp(state, "done") == 0 || strcmp(state, "uncommitted") == 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("csvpipe job " INT64_FORMAT " is already done", job_id)));
	if (strcmp(state, "running") == 0 &&
		(leader_alive || csv_progress_job_pid(job_id, CSV_PROC_NONE) != 0))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("csvpipe job " INT64_FORMAT " is still running", job_id)));

	/* the options as the job recorded them, validated again (options.c) */
	csv_options_from_job(&opts, CSV_ROW_ISNULL(r, 0, 10) ? NULL :
						 DatumGetJsonbP(CSV_ROW_VALUE(r, 0, 10)),
						 atomic, "csvpipe.resume");
	opts.path = TextDatumGetCString(CSV_ROW_VALUE(r, 0, 0));
	opts.relid = DatumGetObjectId(CSV_ROW_VALUE(r, 0, 1));
	opts.progress = false;
	csv_load_request_init(&req, &opts);

	if (req.opts.mode == CSV_LOAD_MODE_TRANSACTION)
	{
		/* its rows went with its transaction: it runs again from the start */
		csv_resume_check_in_doubt(job_id, opts.relid,
								  !CSV_ROW_ISNULL(r, 0, 15) && DatumGetBool(CSV_ROW_VALUE(r, 0, 15)));
	}
	else if (req.opts.atomic)
	{
		/* its prepared parts must be settled first (the launcher does it) */
		if (csv_txn_job_has_parts(job_id))
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("csvpipe job " INT64_FORMAT " still has prepared transactions", job_id),
					 errhint("The csvpipe launcher settles them within seconds; without it, a superuser runs SELECT csvpipe.resolve_prepared().")));
	}
	else
	{
		/* chunked: the chunks in the ledger are done */
		(void) csv_load_set_skip_chunks(&req, DatumGetArrayTypeP(CSV_ROW_VALUE(r, 0, 11)));
	}

	/*
	 * From here on, the job's role: the file checks, the target's
	 * privileges, the inserts, triggers and the workers (which take the
	 * current user) are all as that role.  SECURITY_LOCAL_USERID_CHANGE:
	 * SET ROLE cannot escape it; the transaction's abort restores it.
	 */
	GetUserIdAndSecContext(&save_userid, &save_sec);
	SetUserIdAndSecContext(submitted_by, save_sec | SECURITY_LOCAL_USERID_CHANGE);

	/* the file must be the one the job started on */
	csv_check_job_file(req.opts.path, job_id, &recorded);

	req.job_id = job_id;
	req.resume = true;
	csv_run_load(&req, res);

	SetUserIdAndSecContext(save_userid, save_sec);
}
