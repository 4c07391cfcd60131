/*-------------------------------------------------------------------------
 *
 * srf.c
 *		The SQL-callable functions csvpipe.read and csvpipe.read_text, and the
 *		read state they share with the streaming scan (scan.c).
 *
 * A CsvReadState is one pass over one file: dialect, reader, converter and
 * the error position that every error context line reports.  The
 * functions here run in value-per-call mode; when called in FROM, scan.c
 * normally replaces the FunctionScan (which would collect all rows in a
 * tuplestore before returning the first) by a scan that streams.
 *
 *-------------------------------------------------------------------------
 */
#include "csvpipe.h"
#include "leader.h"
#include "parallel.h"

#include "access/table.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "commands/sequence.h"
#include "funcapi.h"
#include "load.h"
#include "miscadmin.h"
#include "storage/lmgr.h"
#include "txn.h"
#include "utils/acl.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/timestamp.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/memutils.h"

PG_FUNCTION_INFO_V1(csvpipe_read);
PG_FUNCTION_INFO_V1(csvpipe_read_text);

struct CsvReadState
{
	CsvDialect	dialect;
	CsvErrorPosition errpos;
	CsvReader  *reader;			/* single process */
	CsvLeader  *leader;			/* parallel (workers => n) */
	CsvConverter *conv;			/* typed read only */
	bool		text_mode;
	MemoryContext cxt;			/* owns the state; deleted at the end */
	bool		done;
};

TupleDesc
csv_read_text_tupdesc(void)
{
	TupleDesc	tupdesc = CreateTemplateTupleDesc(2);

	TupleDescInitEntry(tupdesc, (AttrNumber) 1, "line_no", INT8OID, -1, 0);
	TupleDescInitEntry(tupdesc, (AttrNumber) 2, "fields", TEXTARRAYOID, -1, 0);
	return tupdesc;
}

/*
 * Open the file named by args[CSV_ARG_PATH] with the options in args.  All
 * state lives in a child of the current memory context.
 */
CsvReadState *
csv_read_begin(const char *funcname, bool text_mode, TupleDesc tupdesc,
			   int nargs, Datum *args, bool *argnulls, bool *convert_columns)
{
	MemoryContext cxt;
	MemoryContext oldcxt;
	CsvReadState *rs;
	ErrorContextCallback errcallback;
	int			nworkers;

	if (argnulls[CSV_ARG_PATH])
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("%s: path must not be NULL", funcname)));

	cxt = AllocSetContextCreate(CurrentMemoryContext, "csvpipe read",
								ALLOCSET_DEFAULT_SIZES);
	oldcxt = MemoryContextSwitchTo(cxt);
	rs = palloc0(sizeof(CsvReadState));
	rs->cxt = cxt;
	rs->text_mode = text_mode;
	rs->errpos.funcname = funcname;
	rs->errpos.path = TextDatumGetCString(args[CSV_ARG_PATH]);

	errcallback.callback = csv_error_context_callback;
	errcallback.arg = &rs->errpos;
	errcallback.previous = error_context_stack;
	error_context_stack = &errcallback;

	csv_dialect_from_args(&rs->dialect, nargs, args, argnulls);
	if (text_mode && rs->dialect.header == CSV_HEADER_MATCH)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s: header => 'match' needs a column list to match; use csvpipe.read", funcname)));
	if (!text_mode)
		rs->conv = csv_converter_create(tupdesc, &rs->dialect, &rs->errpos,
										convert_columns);

	nworkers = argnulls[CSV_ARG_WORKERS] ? 0 :
		csv_workers_for(DatumGetInt32(args[CSV_ARG_WORKERS]));
	if (nworkers > 0)
	{
		int64		chunk_size = argnulls[CSV_ARG_CHUNK_SIZE] ?
			(int64) csvpipe_chunk_size * 1024 : DatumGetInt64(args[CSV_ARG_CHUNK_SIZE]);
		bool		ordered = argnulls[CSV_ARG_ORDERED] ? true :
			DatumGetBool(args[CSV_ARG_ORDERED]);

		if (chunk_size < 1)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("csvpipe chunk_size must be positive")));
		rs->leader = csv_leader_begin(CSV_MODE_READ, rs->errpos.path, &rs->dialect,
									  tupdesc, convert_columns, nworkers,
									  chunk_size, ordered, &rs->errpos);
		csv_leader_pool(rs->leader)->shared->text_mode = text_mode;
		if (rs->conv && rs->dialect.header == CSV_HEADER_MATCH)
			csv_converter_check_header(rs->conv, csv_leader_header(rs->leader));
		if (csv_leader_launch(rs->leader) == 0)
		{
			ereport(NOTICE,
					(errmsg("%s: no background worker slot is free; reading in this session",
							funcname)));
			csv_leader_end(rs->leader);
			rs->leader = NULL;
		}
	}
	if (rs->leader == NULL)
	{
		rs->reader = csv_reader_open(rs->errpos.path, &rs->dialect, &rs->errpos);
		if (rs->conv && rs->dialect.header == CSV_HEADER_MATCH)
			csv_converter_check_header(rs->conv, csv_reader_header(rs->reader));
	}

	error_context_stack = errcallback.previous;
	MemoryContextSwitchTo(oldcxt);
	return rs;
}

/*
 * Next row into values/nulls; false at end of file.  Datums are allocated in
 * the caller's current memory context.
 */
bool
csv_read_next(CsvReadState *rs, Datum *values, bool *nulls)
{
	ErrorContextCallback errcallback;
	CsvRecord	rec;
	bool		found;

	if (rs->done)
		return false;

	errcallback.callback = csv_error_context_callback;
	errcallback.arg = &rs->errpos;
	errcallback.previous = error_context_stack;
	error_context_stack = &errcallback;

	if (rs->leader)
	{
		found = csv_leader_next_row(rs->leader, values, nulls);
		if (!found)
			rs->done = true;
		error_context_stack = errcallback.previous;
		return found;
	}
	found = csv_reader_next(rs->reader, &rec);
	if (!found)
		rs->done = true;
	else if (!rs->text_mode)
		csv_converter_row(rs->conv, &rec, values, nulls);
	else
		csv_text_row(&rs->dialect, &rec, values, nulls);

	error_context_stack = errcallback.previous;
	return found;
}

/* Close the file and free everything; safe to call twice */
void
csv_read_end(CsvReadState *rs)
{
	if (rs == NULL || rs->cxt == NULL)
		return;
	if (rs->reader)
		csv_reader_close(rs->reader);
	rs->reader = NULL;
	if (rs->leader)
		csv_leader_end(rs->leader);
	rs->leader = NULL;
	rs->done = true;
	MemoryContextDelete(rs->cxt);
}

/* ---- value-per-call SRF plumbing ---- */

typedef struct SrfState
{
	CsvReadState *rs;
	TupleDesc	tupdesc;
	Datum	   *values;
	bool	   *nulls;
	MemoryContext row_cxt;
} SrfState;

static void
srf_shutdown(Datum arg)
{
	SrfState   *st = (SrfState *) DatumGetPointer(arg);

	if (st->rs)
	{
		csv_read_end(st->rs);
		st->rs = NULL;
	}
}

static Datum
csv_srf(FunctionCallInfo fcinfo, const char *funcname, bool text_mode)
{
	FuncCallContext *funcctx;
	SrfState   *st;
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;

	if (SRF_IS_FIRSTCALL())
	{
		MemoryContext oldcxt;
		TupleDesc	tupdesc;
		Datum		args[CSV_NUM_READ_ARGS];
		bool		argnulls[CSV_NUM_READ_ARGS];

		if (PG_NARGS() != CSV_NUM_READ_ARGS)
			elog(ERROR, "%s: expected %d arguments, got %d",
				 funcname, CSV_NUM_READ_ARGS, PG_NARGS());
		if (rsinfo == NULL || !IsA(rsinfo, ReturnSetInfo))
			ereport(ERROR,
					(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
					 errmsg("set-valued function called in context that cannot accept a set")));

		funcctx = SRF_FIRSTCALL_INIT();
		oldcxt = MemoryContextSwitchTo(funcctx->multi_call_memory_ctx);

		if (text_mode)
			tupdesc = csv_read_text_tupdesc();
		else if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
			ereport(ERROR,
					(errcode(ERRCODE_SYNTAX_ERROR),
					 errmsg("%s needs a column definition list", funcname),
					 errhint("For example: SELECT * FROM %s('/path/file.csv') AS t(id int, name text).",
							 funcname)));
		tupdesc = BlessTupleDesc(CreateTupleDescCopy(tupdesc));

		for (int i = 0; i < CSV_NUM_READ_ARGS; i++)
		{
			argnulls[i] = PG_ARGISNULL(i);
			args[i] = argnulls[i] ? (Datum) 0 : PG_GETARG_DATUM(i);
		}

		st = palloc0(sizeof(SrfState));
		st->tupdesc = tupdesc;
		st->values = palloc(sizeof(Datum) * tupdesc->natts);
		st->nulls = palloc(sizeof(bool) * tupdesc->natts);
		st->row_cxt = AllocSetContextCreate(funcctx->multi_call_memory_ctx,
											"csvpipe row", ALLOCSET_DEFAULT_SIZES);
		st->rs = csv_read_begin(funcname, text_mode, tupdesc, CSV_NUM_READ_ARGS,
								args, argnulls, NULL);
		funcctx->user_fctx = st;
		/* close the file when the executor stops early (LIMIT, error) */
		RegisterExprContextCallback(rsinfo->econtext, srf_shutdown,
									PointerGetDatum(st));
		MemoryContextSwitchTo(oldcxt);
	}

	funcctx = SRF_PERCALL_SETUP();
	st = (SrfState *) funcctx->user_fctx;

	MemoryContextReset(st->row_cxt);
	if (st->rs)
	{
		MemoryContext oldcxt = MemoryContextSwitchTo(st->row_cxt);
		bool		found = csv_read_next(st->rs, st->values, st->nulls);
		HeapTuple	tuple = NULL;

		if (found)
			tuple = heap_form_tuple(st->tupdesc, st->values, st->nulls);
		MemoryContextSwitchTo(oldcxt);
		if (found)
			SRF_RETURN_NEXT(funcctx, HeapTupleGetDatum(tuple));
		csv_read_end(st->rs);
		st->rs = NULL;
	}
	/* st goes away with the SRF's memory: drop the callback that uses it */
	UnregisterExprContextCallback(rsinfo->econtext, srf_shutdown,
								  PointerGetDatum(st));
	SRF_RETURN_DONE(funcctx);
}

int
csv_workers_for(int asked)
{
	if (asked < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("csvpipe workers must not be negative")));
	return Min(Min(asked, csvpipe_max_workers), CSVPIPE_MAX_WORKERS);
}

Datum
csvpipe_read(PG_FUNCTION_ARGS)
{
	return csv_srf(fcinfo, "csvpipe.read", false);
}

Datum
csvpipe_read_text(PG_FUNCTION_ARGS)
{
	return csv_srf(fcinfo, "csvpipe.read_text", true);
}

/* ---- csvpipe.load ---- */

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

Datum
csvpipe_load(PG_FUNCTION_ARGS)
{
	Datum		dargs[CSV_NUM_READ_ARGS];
	bool		dnulls[CSV_NUM_READ_ARGS];
	CsvDialect	dialect;
	CsvErrorPosition errpos;
	ErrorContextCallback errcallback;
	Oid			relid;
	List	   *attnames = NIL;
	int			nworkers;
	int			launched = 0;
	bool		atomic;
	int64		chunk_size;
	int64		job_id;
	int64		rows;
	int64		bytes = 0;
	CsvLeader  *L;
	TimestampTz start = GetCurrentTimestamp();
	TupleDesc	resdesc;
	Datum		result[6];
	bool		resnulls[6] = {false, false, false, false, false, false};
	long		secs;
	int			usecs;

	if (PG_ARGISNULL(LOAD_ARG_PATH) || PG_ARGISNULL(LOAD_ARG_TARGET))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("csvpipe.load: path and target must not be NULL")));
	if (get_call_result_type(fcinfo, NULL, &resdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "csvpipe.load must return a row");

	memset(&errpos, 0, sizeof(errpos));
	errpos.funcname = "csvpipe.load";
	errpos.path = text_to_cstring(PG_GETARG_TEXT_PP(LOAD_ARG_PATH));
	relid = PG_GETARG_OID(LOAD_ARG_TARGET);

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

	errcallback.callback = csv_error_context_callback;
	errcallback.arg = &errpos;
	errcallback.previous = error_context_stack;
	error_context_stack = &errcallback;

	csv_dialect_from_args(&dialect, CSV_NUM_READ_ARGS, dargs, dnulls);

	if (!PG_ARGISNULL(LOAD_ARG_COLUMNS))
	{
		ArrayType  *arr = PG_GETARG_ARRAYTYPE_P(LOAD_ARG_COLUMNS);
		Datum	   *elems;
		bool	   *elemnulls;
		int			nelems;

		deconstruct_array(arr, TEXTOID, -1, false, TYPALIGN_INT,
						  &elems, &elemnulls, &nelems);
		for (int i = 0; i < nelems; i++)
		{
			if (elemnulls[i])
				ereport(ERROR,
						(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
						 errmsg("csvpipe.load: column names must not be NULL")));
			attnames = lappend(attnames, TextDatumGetCString(elems[i]));
		}
	}

	atomic = PG_ARGISNULL(LOAD_ARG_ATOMIC) ? true : PG_GETARG_BOOL(LOAD_ARG_ATOMIC);
	chunk_size = PG_ARGISNULL(LOAD_ARG_CHUNK_SIZE) ? (int64) csvpipe_chunk_size * 1024 :
		PG_GETARG_INT64(LOAD_ARG_CHUNK_SIZE);
	if (chunk_size < 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("csvpipe chunk_size must be positive")));
	nworkers = csv_workers_for(PG_ARGISNULL(LOAD_ARG_WORKERS) ? csvpipe_max_workers :
							   PG_GETARG_INT32(LOAD_ARG_WORKERS));

	check_load_target(relid);
	job_id = next_job_id();

	if (nworkers > 0 && atomic && max_prepared_transactions_setting() < nworkers)
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

		if (attnames != NIL)
			names = load_header_desc(relid, attnames);
		L = csv_leader_begin(CSV_MODE_LOAD, errpos.path, &dialect, names, NULL,
							 nworkers, chunk_size, true, &errpos);
		if (dialect.header == CSV_HEADER_MATCH)
		{
			CsvConverter *hconv = csv_converter_create(load_header_desc(relid, attnames),
													   &dialect, &errpos, NULL);

			csv_converter_check_header(hconv, csv_leader_header(L));
		}
		shared = csv_leader_pool(L)->shared;
		shared->job_id = job_id;
		shared->atomic = atomic;
		shared->target_relid = relid;
		shared->columns_given = (attnames != NIL);
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
		rows = load_in_leader(errpos.path, relid, attnames, &dialect, &errpos);
		launched = 0;
	}
	else
	{
		CsvCoordArgs args;

		memset(&args, 0, sizeof(args));
		args.database_id = MyDatabaseId;
		args.job_id = job_id;

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
	result[0] = Int64GetDatum(job_id);
	result[1] = Int64GetDatum(rows);
	result[2] = Int64GetDatum(0);
	result[3] = Int64GetDatum(bytes);
	result[4] = Float8GetDatum(secs + usecs / 1000000.0);
	result[5] = Int32GetDatum(launched);
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(BlessTupleDesc(resdesc), result, resnulls)));
}
