/*-------------------------------------------------------------------------
 *
 * run.c
 *		Running one load as its leader: csvpipe.load, and csv_run_load()
 *		for callers such as the job runner.
 *
 * Owns the checks made before any worker starts (target usable from other
 * transactions, privileges, max_prepared_transactions), the job id, the
 * choice between the parallel engine and a load in this session when no
 * worker slot is free, and how the job ends: on success the coordinator
 * commits the prepared parts (atomic) and records the job as done; on any
 * error, cancel included, the workers are stopped and waited for, and the
 * coordinator rolls back what was prepared and records the job as failed or
 * cancelled, before the error goes on to the caller.
 *
 *-------------------------------------------------------------------------
 */
#include "csvpipe.h"
#include "internal_sql.h"
#include "jobs.h"
#include "leader.h"
#include "load.h"
#include "parallel.h"
#include "progress.h"
#include "run.h"
#include "txn.h"

#include "access/genam.h"
#include "access/table.h"
#include "access/stratnum.h"
#include "access/xact.h"
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

#include <sys/stat.h>


#define LOAD_ARG_PATH		0
#define LOAD_ARG_TARGET		1
#define LOAD_ARG_COLUMNS	2
#define LOAD_ARG_WORKERS	3
#define LOAD_ARG_DIALECT	4	/* delimiter .. skip_rows: 7 arguments */
#define LOAD_ARG_ATOMIC		11
#define LOAD_ARG_CHUNK_SIZE 12
#define LOAD_ARG_ON_ERROR	13
#define LOAD_ARG_MAX_ERRORS 14
#define LOAD_ARG_PROGRESS	15
#define LOAD_NUM_ARGS		16

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
				 errdetail("csvpipe.load inserts from background workers, which run in their own transactions and cannot see it yet."),
				 errhint("Commit the transaction first, or load with workers => 0.")));
	if (CheckRelationLockedByMe(rel, ShareLock, true))
		ereport(ERROR,
				(errcode(ERRCODE_LOCK_NOT_AVAILABLE),
				 errmsg("this transaction holds a lock on \"%s\" that would block csvpipe's workers",
						RelationGetRelationName(rel)),
				 errhint("Commit the transaction first, or load with workers => 0.")));
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

/* No worker slot: load in this session, in the caller's transaction */
static int64
load_in_leader(const char *path, Oid relid, List *attnames, CsvDialect *dialect,
			   CsvErrorPosition *errpos, CsvFileId *file)
{
	CsvReader  *reader = csv_reader_open(path, dialect, errpos);
	CsvLoadTarget *target = csv_load_begin(relid, attnames);
	TupleDesc	desc = csv_load_input_desc(target);
	CsvConverter *conv;
	Datum	   *values = palloc(sizeof(Datum) * desc->natts);
	bool	   *nulls = palloc(sizeof(bool) * desc->natts);
	MemoryContext row_cxt = AllocSetContextCreate(CurrentMemoryContext, "csvpipe row",
												  ALLOCSET_DEFAULT_SIZES);
	CsvRecord	rec;
	int64		nrows = 0;

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
 * Did the coordinator that just exited finish the job?  Its process can be
 * terminated like any other: before it recorded the job's end, or between
 * the recorded decision and the last COMMIT PREPARED.  Finished means: the
 * job row, read with the latest snapshot (the caller's may be older, in
 * REPEATABLE READ), is in the state asked for, and no transaction named
 * after the job is still prepared (pg_prepared_xacts is not MVCC).
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
	char	   *prefix;
	CsvRows    *r;
	Oid			types[1] = {TEXTOID};
	Datum		values[1];

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

	prefix = psprintf("csvpipe_%u_" INT64_FORMAT "_", MyDatabaseId, args->job_id);
	values[0] = CStringGetTextDatum(prefix);
	r = csv_internal_query("SELECT 1 FROM pg_catalog.pg_prepared_xacts "
						   "WHERE pg_catalog.starts_with(gid, $1)",
						   1, types, values, NULL);
	return r->nrows == 0;
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
		if (attempt >= 10)
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("csvpipe could not finish job " INT64_FORMAT ": its coordinator kept failing",
							args->job_id),
					 errhint("See the server log; csvpipe.jobs has the job's state.")));
		/* the earlier attempt counted them */
		args->retries = 0;
		pg_usleep(100000L);
	}
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
	int			nworkers = req->nworkers;
	int			launched = 0;
	int64		rows;
	int64		rejected = 0;
	int64		bytes = 0;
	CsvLeader  *L;
	TimestampTz start = GetCurrentTimestamp();

	res->have_file = false;
	long		secs;
	int			usecs;

	memset(&errpos, 0, sizeof(errpos));
	errpos.funcname = "csvpipe.load";
	errpos.path = req->path;
	errcallback.callback = csv_error_context_callback;
	errcallback.arg = &errpos;
	errcallback.previous = error_context_stack;
	error_context_stack = &errcallback;

	(void) csv_check_chunk_size(req->chunk_size);

	check_load_target(req->relid, req->attnames);
	if (req->job_id <= 0)
		req->job_id = next_job_id();
	csv_progress_load_begin(req->job_id, req->progress);

	if (nworkers > 0 && req->atomic && max_prepared_transactions_setting() < nworkers)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("csvpipe.load with atomic => true needs max_prepared_transactions >= workers (%d < %d)",
						max_prepared_transactions_setting(), nworkers),
				 errhint("Raise max_prepared_transactions (needs a restart), use fewer workers, or load with atomic => false.")));

	L = NULL;
	if (nworkers > 0)
	{
		CsvParallelShared *shared;
		TupleDesc	names = NULL;

		if (req->attnames != NIL)
			names = load_header_desc(req->relid, req->attnames);
		L = csv_leader_begin(CSV_MODE_LOAD, req->path, &req->dialect, names, NULL,
							 nworkers, req->chunk_size, true, &errpos);
		if (req->dialect.header == CSV_HEADER_MATCH)
		{
			CsvConverter *hconv = csv_converter_create(load_header_desc(req->relid, req->attnames),
													   &req->dialect, &errpos, NULL);

			csv_converter_check_header(hconv, csv_leader_header(L));
		}
		shared = csv_leader_pool(L)->shared;
		shared->job_id = req->job_id;
		shared->atomic = req->atomic;
		if (req->atomic)
			csv_txn_new_nonce(shared->gid_nonce);
		shared->target_relid = req->relid;
		shared->columns_given = (req->attnames != NIL);
		shared->on_error_skip = req->on_error_skip;
		if (req->options_json)
		{
			if (strlen(req->options_json) >= sizeof(shared->options_json))
				ereport(ERROR,
						(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
						 errmsg("csvpipe.load options are too long to record with the job")));
			strlcpy(shared->options_json, req->options_json, sizeof(shared->options_json));
		}
		if (req->skip_chunks)
			csv_leader_set_skip(L, req->skip_chunks, req->nskip);
		shared->max_errors = req->max_errors;
		pg_atomic_init_u64(&shared->rejected_total, 0);
		launched = csv_leader_launch(L);
		if (launched == 0)
		{
			csv_leader_end(L);
			L = NULL;
			ereport(NOTICE,
					(errmsg("csvpipe.load: no background worker slot is free; loading in this session"),
					 errdetail("The rows are inserted in the current transaction.")));
		}
		else if (launched < shared->nworkers || launched < nworkers)
			ereport(NOTICE,
					(errmsg("csvpipe.load: %d of %d workers could be started", launched, nworkers)));
		if (L != NULL)
			csv_progress_load_started(shared->file.size, launched);
	}

	if (L == NULL)
	{
		if (req->on_error_skip)
			ereport(ERROR,
					(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
					 errmsg("csvpipe.load with on_error => 'skip' needs a background worker, and none could be started"),
					 errhint("Raise max_worker_processes or csvpipe.max_workers, or retry when a slot is free.")));
		rows = load_in_leader(req->path, req->relid, req->attnames, &req->dialect, &errpos,
							  &res->file);
		res->have_file = true;
		launched = 0;
	}
	else
	{
		CsvCoordArgs args;
		bool		atomic = req->atomic;

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
			MemoryContext ecxt = MemoryContextSwitchTo(CurTransactionContext);

			edata = CopyErrorData();
			MemoryContextSwitchTo(ecxt);
			HOLD_INTERRUPTS();
			csv_leader_abort(L);
			args.action = atomic ? CSV_COORD_ROLLBACK : CSV_COORD_NONE;
			strlcpy(args.state, edata->sqlerrcode == ERRCODE_QUERY_CANCELED ?
					"cancelled" : "failed", sizeof(args.state));
			strlcpy(args.error, edata->message ? edata->message : "", sizeof(args.error));
			args.rows_loaded = atomic ? 0 : csv_leader_rows(L);
			args.rows_rejected = csv_leader_rejected(L);
			args.retries = (int32) csv_leader_retries(L);
			args.bytes = csv_leader_bytes(L);
			/*
			 * Wait for it: the job is recorded failed or cancelled (and its
			 * parts rolled back) before the caller sees the error, so a
			 * resume right after the error is not refused as "still
			 * running".
			 */
			(void) csv_txn_run_coordinator(&args, true);
			RESUME_INTERRUPTS();
			PG_RE_THROW();
		}
		PG_END_TRY();

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
		RESUME_INTERRUPTS();
	}

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
static Datum
load_result_datum(TupleDesc resdesc, CsvLoadResult *res)
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

/* csvpipe.load(path, target, columns, workers, <CSV options>, atomic, chunk_size, on_error, max_errors, progress) */
Datum
csvpipe_load(PG_FUNCTION_ARGS)
{
	CsvLoadRequest req;
	CsvLoadResult res;
	TupleDesc	resdesc;

	if (PG_ARGISNULL(LOAD_ARG_PATH) || PG_ARGISNULL(LOAD_ARG_TARGET))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("csvpipe.load: path and target must not be NULL")));
	if (get_call_result_type(fcinfo, NULL, &resdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "csvpipe.load must return a row");

	memset(&req, 0, sizeof(req));
	req.path = text_to_cstring(PG_GETARG_TEXT_PP(LOAD_ARG_PATH));
	req.relid = PG_GETARG_OID(LOAD_ARG_TARGET);

	csv_dialect_from_fcinfo(&req.dialect, fcinfo, LOAD_ARG_DIALECT);

	if (!PG_ARGISNULL(LOAD_ARG_COLUMNS))
		req.attnames = csv_column_list(PG_GETARG_ARRAYTYPE_P(LOAD_ARG_COLUMNS));

	req.atomic = PG_ARGISNULL(LOAD_ARG_ATOMIC) ? true : PG_GETARG_BOOL(LOAD_ARG_ATOMIC);
	req.chunk_size = PG_ARGISNULL(LOAD_ARG_CHUNK_SIZE) ? (int64) csvpipe_chunk_size * 1024 :
		PG_GETARG_INT64(LOAD_ARG_CHUNK_SIZE);
	req.nworkers = csv_workers_for(PG_ARGISNULL(LOAD_ARG_WORKERS) ? csvpipe_max_workers :
								   PG_GETARG_INT32(LOAD_ARG_WORKERS));
	req.on_error_skip = csv_on_error_option(PG_ARGISNULL(LOAD_ARG_ON_ERROR) ? NULL :
											text_to_cstring(PG_GETARG_TEXT_PP(LOAD_ARG_ON_ERROR)));
	req.max_errors = PG_ARGISNULL(LOAD_ARG_MAX_ERRORS) ? -1 : PG_GETARG_INT64(LOAD_ARG_MAX_ERRORS);
	csv_check_error_options(&req);
	req.progress = PG_ARGISNULL(LOAD_ARG_PROGRESS) ? csvpipe_progress_notices :
		PG_GETARG_BOOL(LOAD_ARG_PROGRESS);

	req.options_json = csv_load_options_json(&req);
	csv_run_load(&req, &res);

	PG_RETURN_DATUM(load_result_datum(resdesc, &res));
}

/* text[] of column names to a List of C strings */
List *
csv_column_list(ArrayType *arr)
{
	Datum	   *elems;
	bool	   *elemnulls;
	int			nelems;
	List	   *names = NIL;

	deconstruct_array(arr, TEXTOID, -1, false, TYPALIGN_INT,
					  &elems, &elemnulls, &nelems);
	for (int i = 0; i < nelems; i++)
	{
		if (elemnulls[i])
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("csvpipe.load: column names must not be NULL")));
		names = lappend(names, TextDatumGetCString(elems[i]));
	}
	return names;
}

/* on_error => 'stop' | 'skip' */
bool
csv_on_error_option(const char *value)
{
	if (value == NULL || pg_strcasecmp(value, "stop") == 0)
		return false;
	if (pg_strcasecmp(value, "skip") == 0)
		return true;
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("csvpipe on_error must be 'stop' or 'skip', not \"%s\"", value)));
	return false;				/* keep the compiler quiet */
}

static void
json_key_string(StringInfo buf, const char *key, const char *value)
{
	if (buf->len > 1)
		appendStringInfoString(buf, ", ");
	escape_json(buf, key);
	appendStringInfoString(buf, ": ");
	if (value)
		escape_json(buf, value);
	else
		appendStringInfoString(buf, "null");
}

static void
json_key_int(StringInfo buf, const char *key, int64 value)
{
	if (buf->len > 1)
		appendStringInfoString(buf, ", ");
	escape_json(buf, key);
	appendStringInfo(buf, ": " INT64_FORMAT, value);
}

/* The options of a load as JSON, recorded with its job (csvpipe.job.options) */
char *
csv_load_options_json(CsvLoadRequest *req)
{
	StringInfoData buf;
	char		c[2] = {0, 0};
	ListCell   *lc;

	initStringInfo(&buf);
	appendStringInfoChar(&buf, '{');
	if (req->attnames != NIL)
	{
		appendStringInfoString(&buf, "\"columns\": [");
		foreach(lc, req->attnames)
		{
			if (lc != list_head(req->attnames))
				appendStringInfoString(&buf, ", ");
			escape_json(&buf, (char *) lfirst(lc));
		}
		appendStringInfoChar(&buf, ']');
	}
	c[0] = req->dialect.delimiter;
	json_key_string(&buf, "delimiter", c);
	c[0] = req->dialect.quote;
	json_key_string(&buf, "quote", c);
	json_key_string(&buf, "header", csv_dialect_header_label(&req->dialect));
	json_key_string(&buf, "null_string", req->dialect.null_string);
	json_key_string(&buf, "encoding", pg_encoding_to_char(req->dialect.file_encoding));
	json_key_int(&buf, "skip_rows", req->dialect.skip_rows);
	json_key_int(&buf, "workers", req->nworkers);
	json_key_string(&buf, "atomic", req->atomic ? "true" : "false");
	json_key_int(&buf, "chunk_size", req->chunk_size);
	json_key_string(&buf, "on_error", req->on_error_skip ? "skip" : "stop");
	json_key_int(&buf, "max_errors", req->max_errors);
	appendStringInfoChar(&buf, '}');
	return buf.data;
}

PG_FUNCTION_INFO_V1(csvpipe_resume);

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
 * csvpipe.resume(job): finish a load whose leader died.  A chunked job
 * loads only the chunks absent from the ledger; an atomic one is loaded
 * again from the start once its prepared parts are settled.  The file must
 * be unchanged.  A job queued by csvpipe.submit is put back in the queue
 * instead, and the call returns at once (jobs.c); its runner skips the
 * ledger's chunks.
 *
 * The job's own role runs the load: a superuser (or a member of that role)
 * who resumes it inserts with that role's privileges, as the role would
 * have, never with its own.  The job row is read through csv_internal_query,
 * so the caller needs no privileges on csvpipe's tables.
 */
Datum
csvpipe_resume(PG_FUNCTION_ARGS)
{
	int64		job_id = PG_GETARG_INT64(0);
	CsvLoadRequest req;
	CsvLoadResult res;
	TupleDesc	resdesc;
	Oid			types[1] = {INT8OID};
	Datum		values[1];
	CsvRows    *r;
	char	   *state;
	Oid			submitted_by;
	bool		leader_alive;
	CsvFileId	recorded;
	Datum		dargs[CSV_NUM_READ_ARGS];
	bool		dnulls[CSV_NUM_READ_ARGS];
	char	   *header;
	Oid			save_userid;
	int			save_sec;

	if (get_call_result_type(fcinfo, NULL, &resdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "csvpipe.resume must return a row");

	/* a job queued by csvpipe.submit goes back in the queue (jobs.c) */
	if (csv_job_is_submitted(job_id))
	{
		Datum		result[6];
		bool		resnulls[6] = {false, true, true, true, true, true};

		csv_job_requeue(job_id);
		result[0] = Int64GetDatum(job_id);
		PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(BlessTupleDesc(resdesc), result, resnulls)));
	}

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

	memset(&req, 0, sizeof(req));
	values[0] = Int64GetDatum(job_id);
	r = csv_internal_query("SELECT j.path, j.target, j.state, j.atomic, j.submitted_by, "
						   "  EXISTS (SELECT 1 FROM pg_catalog.pg_stat_activity a "
						   "           WHERE a.pid OPERATOR(pg_catalog.=) j.leader_pid), "
						   "  j.file_size, j.file_dev, j.file_ino, j.file_mtime_ns, "
						   "  o->>'delimiter', o->>'quote', o->>'header', o->>'null_string', "
						   "  o->>'encoding', (o->>'skip_rows')::pg_catalog.int8, "
						   "  (o->>'workers')::pg_catalog.int4, (o->>'chunk_size')::pg_catalog.int8, "
						   "  o->>'on_error', (o->>'max_errors')::pg_catalog.int8, "
						   "  CASE WHEN o ? 'columns' "
						   "    THEN ARRAY(SELECT pg_catalog.jsonb_array_elements_text(o->'columns')) END, "
						   "  ARRAY(SELECT c.chunk_no FROM @extschema@.chunks c "
						   "         WHERE c.job_id OPERATOR(pg_catalog.=) j.job_id ORDER BY 1) "
						   "FROM @extschema@.job j, "
						   "     coalesce(j.options, '{}'::pg_catalog.jsonb) o "
						   "WHERE j.job_id OPERATOR(pg_catalog.=) $1",
						   1, types, values, NULL);
	if (r->nrows == 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("csvpipe job " INT64_FORMAT " does not exist", job_id)));

#define TEXT_OR_NULL(att) (CSV_ROW_ISNULL(r, 0, (att)) ? NULL : TextDatumGetCString(CSV_ROW_VALUE(r, 0, (att))))
	req.path = TEXT_OR_NULL(0);
	req.relid = DatumGetObjectId(CSV_ROW_VALUE(r, 0, 1));
	state = TEXT_OR_NULL(2);
	req.atomic = DatumGetBool(CSV_ROW_VALUE(r, 0, 3));
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
	if (strcmp(state, "done") == 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("csvpipe job " INT64_FORMAT " is already done", job_id)));
	if (strcmp(state, "running") == 0 &&
		(leader_alive || csv_progress_job_pid(job_id, CSV_PROC_NONE) != 0))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("csvpipe job " INT64_FORMAT " is still running", job_id)));

	/* the CSV options, in csvpipe.read's argument order */
	memset(dnulls, true, sizeof(dnulls));
	dargs[CSV_ARG_PATH] = CStringGetTextDatum(req.path);
	dnulls[CSV_ARG_PATH] = false;
	for (int i = 0; i < 2; i++)
	{
		char	   *v = TEXT_OR_NULL(10 + i);

		dnulls[CSV_ARG_DELIMITER + i] = (v == NULL);
		dargs[CSV_ARG_DELIMITER + i] = v ? CStringGetTextDatum(v) : (Datum) 0;
	}
	header = TEXT_OR_NULL(12);
	dnulls[CSV_ARG_NULL] = CSV_ROW_ISNULL(r, 0, 13);
	dargs[CSV_ARG_NULL] = CSV_ROW_VALUE(r, 0, 13);
	dnulls[CSV_ARG_ENCODING] = CSV_ROW_ISNULL(r, 0, 14);
	dargs[CSV_ARG_ENCODING] = CSV_ROW_VALUE(r, 0, 14);
	dnulls[CSV_ARG_SKIP_ROWS] = CSV_ROW_ISNULL(r, 0, 15);
	dargs[CSV_ARG_SKIP_ROWS] = CSV_ROW_VALUE(r, 0, 15);
	req.nworkers = csv_workers_for(CSV_ROW_ISNULL(r, 0, 16) ? csvpipe_max_workers :
								   DatumGetInt32(CSV_ROW_VALUE(r, 0, 16)));
	req.chunk_size = CSV_ROW_ISNULL(r, 0, 17) ? (int64) csvpipe_chunk_size * 1024 :
		DatumGetInt64(CSV_ROW_VALUE(r, 0, 17));
	req.on_error_skip = csv_on_error_option(TEXT_OR_NULL(18));
	req.max_errors = CSV_ROW_ISNULL(r, 0, 19) ? -1 : DatumGetInt64(CSV_ROW_VALUE(r, 0, 19));
	if (!CSV_ROW_ISNULL(r, 0, 20))
		req.attnames = csv_column_list(DatumGetArrayTypeP(CSV_ROW_VALUE(r, 0, 20)));
#undef TEXT_OR_NULL

	if (req.atomic)
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
		ArrayType  *arr = DatumGetArrayTypeP(CSV_ROW_VALUE(r, 0, 21));
		Datum	   *elems;
		bool	   *enulls;
		int			n;

		deconstruct_array(arr, INT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE,
						  &elems, &enulls, &n);
		req.nskip = n;
		req.skip_chunks = palloc(sizeof(int64) * Max(n, 1));
		for (int i = 0; i < n; i++)
			req.skip_chunks[i] = DatumGetInt64(elems[i]);
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
	csv_check_job_file(req.path, job_id, &recorded);

	csv_dialect_from_args(&req.dialect, CSV_NUM_READ_ARGS, dargs, dnulls);
	csv_dialect_set_header(&req.dialect, header);
	req.job_id = job_id;
	req.resume = true;
	req.options_json = csv_load_options_json(&req);
	csv_run_load(&req, &res);

	SetUserIdAndSecContext(save_userid, save_sec);
	PG_RETURN_DATUM(load_result_datum(resdesc, &res));
}

/* on_error and max_errors must agree (load and submit) */
void
csv_check_error_options(CsvLoadRequest *req)
{
	if (req->max_errors < -1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("csvpipe max_errors must not be negative")));
	if (req->max_errors >= 0 && !req->on_error_skip)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("csvpipe max_errors needs on_error => 'skip'")));
}
