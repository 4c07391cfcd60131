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
#include "leader.h"
#include "load.h"
#include "parallel.h"
#include "run.h"
#include "txn.h"

#include "access/table.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "commands/sequence.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "storage/lmgr.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/timestamp.h"


#define LOAD_ARG_PATH		0
#define LOAD_ARG_TARGET		1
#define LOAD_ARG_COLUMNS	2
#define LOAD_ARG_WORKERS	3
#define LOAD_ARG_DIALECT	4	/* delimiter .. skip_rows: 7 arguments */
#define LOAD_ARG_ATOMIC		11
#define LOAD_ARG_CHUNK_SIZE 12
#define LOAD_NUM_ARGS		13

PG_FUNCTION_INFO_V1(csvpipe_load);

/*
 * Refuse targets the workers cannot use: they run in their own
 * transactions, so they cannot see a table created (or truncated) in the
 * caller's open transaction, and would wait forever for a strong lock the
 * caller holds.
 */
static void
check_load_target(Oid relid)
{
	Relation	rel = table_open(relid, AccessShareLock);
	AclResult	aclresult;

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
	aclresult = pg_class_aclcheck(relid, GetUserId(), ACL_INSERT);
	if (aclresult != ACLCHECK_OK)
		aclcheck_error(aclresult, get_relkind_objtype(rel->rd_rel->relkind),
					   RelationGetRelationName(rel));
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
			   CsvErrorPosition *errpos)
{
	CsvReader  *reader = csv_reader_open(path, dialect, errpos);
	CsvLoadTarget *target = csv_load_begin(relid, attnames);
	TupleDesc	desc = csv_load_input_desc(target);
	CsvConverter *conv = csv_converter_create(desc, dialect, errpos, NULL);
	Datum	   *values = palloc(sizeof(Datum) * desc->natts);
	bool	   *nulls = palloc(sizeof(bool) * desc->natts);
	MemoryContext row_cxt = AllocSetContextCreate(CurrentMemoryContext, "csvpipe row",
												  ALLOCSET_DEFAULT_SIZES);
	CsvRecord	rec;

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
	}
	errpos->line_no = 0;
	csv_reader_close(reader);
	return (int64) csv_load_end(target);
}

static int64
next_job_id(void)
{
	Oid			nsp = get_namespace_oid("csvpipe", false);
	Oid			seq = get_relname_relid("job_id_seq", nsp);

	if (!OidIsValid(seq))
		elog(ERROR, "sequence csvpipe.job_id_seq is missing");
	return DatumGetInt64(DirectFunctionCall1(nextval_oid, ObjectIdGetDatum(seq)));
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
	int64		bytes = 0;
	CsvLeader  *L;
	TimestampTz start = GetCurrentTimestamp();
	long		secs;
	int			usecs;

	memset(&errpos, 0, sizeof(errpos));
	errpos.funcname = "csvpipe.load";
	errpos.path = req->path;
	errcallback.callback = csv_error_context_callback;
	errcallback.arg = &errpos;
	errcallback.previous = error_context_stack;
	error_context_stack = &errcallback;

	if (req->chunk_size < 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("csvpipe chunk_size must be positive")));

	check_load_target(req->relid);
	if (req->job_id <= 0)
		req->job_id = next_job_id();

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
		shared->target_relid = req->relid;
		shared->columns_given = (req->attnames != NIL);
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
	}

	if (L == NULL)
	{
		rows = load_in_leader(req->path, req->relid, req->attnames, &req->dialect, &errpos);
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
			args.bytes = csv_leader_bytes(L);
			(void) csv_txn_run_coordinator(&args, false);
			RESUME_INTERRUPTS();
			PG_RE_THROW();
		}
		PG_END_TRY();

		rows = csv_leader_rows(L);
		bytes = csv_leader_bytes(L);
		csv_leader_end(L);

		args.action = atomic ? CSV_COORD_COMMIT : CSV_COORD_NONE;
		strlcpy(args.state, "done", sizeof(args.state));
		args.rows_loaded = rows;
		args.bytes = bytes;
		finish_job(&args, true);
	}

	error_context_stack = errcallback.previous;

	TimestampDifference(start, GetCurrentTimestamp(), &secs, &usecs);
	res->job_id = req->job_id;
	res->rows_loaded = rows;
	res->rows_rejected = 0;
	res->bytes = bytes;
	res->seconds = secs + usecs / 1000000.0;
	res->workers = launched;
}

/* csvpipe.load(path, target, columns, workers, <CSV options>, atomic, chunk_size) */
Datum
csvpipe_load(PG_FUNCTION_ARGS)
{
	Datum		dargs[CSV_NUM_READ_ARGS];
	bool		dnulls[CSV_NUM_READ_ARGS];
	CsvLoadRequest req;
	CsvLoadResult res;
	TupleDesc	resdesc;
	Datum		result[6];
	bool		resnulls[6] = {false, false, false, false, false, false};

	if (PG_ARGISNULL(LOAD_ARG_PATH) || PG_ARGISNULL(LOAD_ARG_TARGET))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("csvpipe.load: path and target must not be NULL")));
	if (get_call_result_type(fcinfo, NULL, &resdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "csvpipe.load must return a row");

	memset(&req, 0, sizeof(req));
	req.path = text_to_cstring(PG_GETARG_TEXT_PP(LOAD_ARG_PATH));
	req.relid = PG_GETARG_OID(LOAD_ARG_TARGET);

	/* the CSV options, in csvpipe.read's argument order */
	memset(dnulls, true, sizeof(dnulls));
	dargs[CSV_ARG_PATH] = PG_GETARG_DATUM(LOAD_ARG_PATH);
	dnulls[CSV_ARG_PATH] = false;
	for (int i = 0; i < 7; i++)
	{
		dnulls[CSV_ARG_DELIMITER + i] = PG_ARGISNULL(LOAD_ARG_DIALECT + i);
		dargs[CSV_ARG_DELIMITER + i] = dnulls[CSV_ARG_DELIMITER + i] ? (Datum) 0 :
			PG_GETARG_DATUM(LOAD_ARG_DIALECT + i);
	}
	csv_dialect_from_args(&req.dialect, CSV_NUM_READ_ARGS, dargs, dnulls);

	if (!PG_ARGISNULL(LOAD_ARG_COLUMNS))
		req.attnames = csv_column_list(PG_GETARG_ARRAYTYPE_P(LOAD_ARG_COLUMNS));

	req.atomic = PG_ARGISNULL(LOAD_ARG_ATOMIC) ? true : PG_GETARG_BOOL(LOAD_ARG_ATOMIC);
	req.chunk_size = PG_ARGISNULL(LOAD_ARG_CHUNK_SIZE) ? (int64) csvpipe_chunk_size * 1024 :
		PG_GETARG_INT64(LOAD_ARG_CHUNK_SIZE);
	req.nworkers = csv_workers_for(PG_ARGISNULL(LOAD_ARG_WORKERS) ? csvpipe_max_workers :
								   PG_GETARG_INT32(LOAD_ARG_WORKERS));

	csv_run_load(&req, &res);

	result[0] = Int64GetDatum(res.job_id);
	result[1] = Int64GetDatum(res.rows_loaded);
	result[2] = Int64GetDatum(res.rows_rejected);
	result[3] = Int64GetDatum(res.bytes);
	result[4] = Float8GetDatum(res.seconds);
	result[5] = Int32GetDatum(res.workers);
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(BlessTupleDesc(resdesc), result, resnulls)));
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
