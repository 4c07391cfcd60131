/*-------------------------------------------------------------------------
 *
 * srf.c
 *		The SQL-callable functions csvpipe.read and csvpipe.read_text, and the
 *		read state they share with the streaming scan (scan.c).
 *
 * A CsvReadState is one pass over one file: dialect, reader, converter and
 * the error position that every error context line reports.  With the
 * result cache (cache.c, cache => true) it is also where a read is served
 * from memory instead of the file (a hit, then neither the file nor any
 * worker is opened), or records its rows to publish them when it reaches
 * the end of the file.  A parallel read is served by the leader on a hit,
 * and fills the cache like a single-process read (the leader sees every
 * row), except with ordered => false.  The
 * functions here run in value-per-call mode; when called in FROM, scan.c
 * normally replaces the FunctionScan (which would collect all rows in a
 * tuplestore before returning the first) by a scan that streams.
 *
 * read's typed form, read(path, NULL::t, ...), returns rows of t's type:
 * the file's fields fill t's columns in order, dropped and generated ones
 * excepted (they are not in the file, as with COPY t FROM, and come back
 * NULL).  The read itself -- converter, workers, result cache -- works on
 * the file's columns (convert.c's csv_rowtype_file_desc); csv_read_next
 * spreads each row over t's columns (out_field).  A domain over t is
 * checked by the converter, with each row.  So the cache's key is
 * what the rows depend on (the file's column types, and their names with
 * header => 'match'), and one entry serves every row type and column
 * definition list with those columns.
 *
 *-------------------------------------------------------------------------
 */
#include "csvfile.h"
#include "cache.h"
#include "leader.h"
#include "options.h"
#include "parallel.h"
#include "srf.h"

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
PG_FUNCTION_INFO_V1(csvpipe_read_rowtype);
PG_FUNCTION_INFO_V1(csvpipe_read_text);

struct CsvReadState
{
	CsvOptions	opts;			/* the call's, its dialect settled here */
	CsvErrorPosition errpos;
	CsvReader  *reader;			/* single process */
	CsvLeader  *leader;			/* parallel (workers => n) */
	CsvConverter *conv;			/* typed read only */
	bool		text_mode;
	int64		skipped;
	MemoryContext cxt;			/* owns the state; deleted at the end */
	bool		done;
	CsvCacheRead *cache;		/* NULL: the cache is not used */
	bool		cache_hit;		/* rows come from the cache */
	int			out_upto;		/* hit: columns to deform (the rest unused) */
	/* read(path, NULL::t): the file's columns spread over t's */
	int			out_natts;		/* t's columns, dropped ones included */
	int		   *out_field;		/* per column of t: its file column, or -1 */
	Datum	   *fvalues;		/* a row of the file's columns */
	bool	   *fnulls;
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
 * match => 'name' for read(path, NULL::t): the file's header (read here
 * through the same checked open as the read itself) picks which of the
 * columns t has for a file (file_desc) its fields fill -- options.c's
 * csv_match_header, as for a load.  Returns those columns, in t's order;
 * rs->out_field is renumbered to them, t's other columns come back NULL.
 * The dialect gets the field map (part of the cache key), and header =>
 * 'match' so that the read checks it meets the header that was mapped.
 */
static TupleDesc
rowtype_match_names(CsvReadState *rs, const CsvOptions *opts, TupleDesc file_desc)
{
	CsvDialect	hdialect = rs->opts.dialect;
	CsvReader  *reader;
	CsvRecord  *header;
	char	  **names = palloc(sizeof(char *) * file_desc->natts);
	int		   *newidx = palloc(sizeof(int) * file_desc->natts);
	bool	   *present;
	int			nkept = 0;
	TupleDesc	kept;

	/* the header: after skip_rows, the first record */
	hdialect.header = CSV_HEADER_SKIP;
	hdialect.nfile_fields = 0;
	reader = csv_reader_open(rs->errpos.path, &hdialect, &rs->errpos);
	header = csv_reader_header(reader);
	if (header == NULL)
	{
		/* an empty file: no rows, nothing to map */
		csv_reader_close(reader);
		return file_desc;
	}
	for (int c = 0; c < file_desc->natts; c++)
		names[c] = NameStr(TupleDescAttr(file_desc, c)->attname);
	rs->errpos.line_no = header->line_no;
	present = csv_match_header(&rs->opts.dialect, header, file_desc->natts, names,
							   opts->extra_ignore,
							   psprintf("row type %s", format_type_be(opts->rowtype)));
	rs->errpos.line_no = 0;
	csv_reader_close(reader);

	for (int c = 0; c < file_desc->natts; c++)
		newidx[c] = present[c] ? nkept++ : -1;
	kept = CreateTemplateTupleDesc(nkept);
	for (int c = 0; c < file_desc->natts; c++)
		if (present[c])
			TupleDescCopyEntry(kept, newidx[c] + 1, file_desc, c + 1);
	for (int i = 0; i < rs->out_natts; i++)
		if (rs->out_field[i] >= 0)
			rs->out_field[i] = newidx[rs->out_field[i]];
	for (int f = 0; f < rs->opts.dialect.nfile_fields; f++)
		if (rs->opts.dialect.field_column[f] >= 0)
			rs->opts.dialect.field_column[f] = newidx[rs->opts.dialect.field_column[f]];
	rs->opts.dialect.header = CSV_HEADER_MATCH;
	return kept;
}

/*
 * Open the file that opts names, with its options (options.c).  All state
 * lives in a child of the current memory context.
 *
 * convert_columns: the columns to convert (NULL = all; count(*) converts
 * all, so that a bad value fails as with file_fdw).  used_columns: the
 * columns the caller looks at (NULL = all); the others may come back as
 * NULL: parallel workers do not send them, and a cache hit does not deform
 * them.
 */
CsvReadState *
csv_read_begin(const CsvOptions *opts, bool text_mode, TupleDesc tupdesc,
			   bool *convert_columns, const bool *used_columns)
{
	const char *funcname = opts->funcname;
	MemoryContext cxt;
	MemoryContext oldcxt;
	CsvReadState *rs;
	ErrorContextCallback errcallback;
	int			nworkers;
	bool		ordered;
	bool		use_cache;
	bool	   *file_convert = convert_columns;
	const bool *file_used = used_columns;
	bool		uncached = false;

	if (opts->path == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("%s: path must not be NULL", funcname)));

	cxt = AllocSetContextCreate(CurrentMemoryContext, "csvpipe read",
								ALLOCSET_DEFAULT_SIZES);
	oldcxt = MemoryContextSwitchTo(cxt);
	rs = palloc0(sizeof(CsvReadState));
	rs->cxt = cxt;
	rs->text_mode = text_mode;
	rs->opts = *opts;
	rs->opts.path = pstrdup(opts->path);
	rs->opts.dialect.null_string = pstrdup(opts->dialect.null_string);
	rs->errpos.funcname = funcname;
	rs->errpos.path = rs->opts.path;

	errcallback.callback = csv_error_context_callback;
	errcallback.arg = &rs->errpos;
	errcallback.previous = error_context_stack;
	error_context_stack = &errcallback;

	/*
	 * read(path, NULL::t): the read works on the file's columns; the
	 * columns the caller converts and uses are said in t's positions.
	 */
	if (OidIsValid(opts->rowtype) && !text_mode)
	{
		TupleDesc	rowdesc = csv_rowtype_desc(opts->rowtype, funcname);
		int			nfile;

		if (rowdesc->natts != tupdesc->natts)
			elog(ERROR, "%s: the scan has %d columns, the row type %d",
				 funcname, tupdesc->natts, rowdesc->natts);
		rs->out_natts = rowdesc->natts;
		rs->out_field = palloc(sizeof(int) * rowdesc->natts);
		tupdesc = csv_rowtype_file_desc(opts->rowtype, rowdesc, rs->out_field, funcname);
		if (opts->match_name)
			tupdesc = rowtype_match_names(rs, opts, tupdesc);
		nfile = tupdesc->natts;
		rs->fvalues = palloc(sizeof(Datum) * nfile);
		rs->fnulls = palloc(sizeof(bool) * nfile);
		if (getBaseType(opts->rowtype) != opts->rowtype)
		{
			/*
			 * A domain's checks see every column (convert.c runs them with
			 * each row, where the line is known): convert them all.  Its
			 * constraints can change, so its rows are not cached.
			 */
			convert_columns = NULL;
			used_columns = NULL;
			uncached = true;
		}
		file_convert = NULL;
		file_used = NULL;
		if (convert_columns != NULL)
		{
			bool		any = false;

			file_convert = palloc0(sizeof(bool) * nfile);
			for (int i = 0; i < rs->out_natts; i++)
				if (rs->out_field[i] >= 0 && convert_columns[i])
					any = file_convert[rs->out_field[i]] = true;
			/* only dropped or generated columns used: convert all, as count(*) */
			if (!any)
				file_convert = NULL;
		}
		if (used_columns != NULL)
		{
			bool	   *u = palloc0(sizeof(bool) * nfile);

			for (int i = 0; i < rs->out_natts; i++)
				if (rs->out_field[i] >= 0 && used_columns[i])
					u[rs->out_field[i]] = true;
			file_used = u;
		}
	}

	if (text_mode && rs->opts.dialect.header == CSV_HEADER_MATCH)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s: header => 'match' needs a column list to match; use csvpipe.read", funcname)));
	csv_dialect_set_columns(&rs->opts.dialect, text_mode ? 0 : tupdesc->natts);
	if (!text_mode)
	{
		rs->conv = csv_converter_create(tupdesc, &rs->opts.dialect, &rs->errpos,
										file_convert);
		/* hints that name t's columns, t's domain checks */
		if (rs->out_field)
			csv_converter_set_rowtype(rs->conv, opts->rowtype);
	}

	nworkers = opts->nworkers;
	ordered = opts->ordered;
	rs->out_upto = tupdesc->natts;

	/* the result cache: a hit opens neither the file nor any worker */
	use_cache = opts->cache && !uncached;
	if (use_cache)
	{
		rs->cache = csv_cache_lookup(rs->errpos.path, &rs->opts.dialect, text_mode,
									 tupdesc, file_convert,
									 nworkers == 0 || ordered);
		if (rs->cache && csv_cache_status(rs->cache) == CSV_CACHE_HIT)
		{
			rs->cache_hit = true;
			if (file_used != NULL)
			{
				rs->out_upto = 0;
				for (int i = 0; i < tupdesc->natts; i++)
					if (file_used[i])
						rs->out_upto = i + 1;
			}
			error_context_stack = errcallback.previous;
			MemoryContextSwitchTo(oldcxt);
			return rs;
		}
	}

	if (nworkers > 0)
	{
		rs->leader = csv_leader_begin(CSV_MODE_READ, &rs->opts, tupdesc,
									  file_convert, ordered, &rs->errpos);
		csv_leader_pool(rs->leader)->shared->text_mode = text_mode;
		csv_leader_pool(rs->leader)->shared->rowtype = rs->out_field ? opts->rowtype : InvalidOid;
		/* an entry being built needs every converted column */
		if (rs->cache == NULL && file_used != NULL)
			csv_leader_set_sent_columns(rs->leader, file_used);
		pg_atomic_init_u64(&csv_leader_pool(rs->leader)->shared->rejected_total, 0);
		if (rs->conv && rs->opts.dialect.header == CSV_HEADER_MATCH)
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
		rs->reader = csv_reader_open(rs->errpos.path, &rs->opts.dialect, &rs->errpos);
		if (rs->conv && rs->opts.dialect.header == CSV_HEADER_MATCH)
			csv_converter_check_header(rs->conv, csv_reader_header(rs->reader));
	}

	/* an entry is built only from the file its key describes */
	if (rs->cache)
		csv_cache_file_opened(rs->cache, rs->reader ? csv_reader_file_id(rs->reader) :
							  &csv_leader_pool(rs->leader)->shared->file);

	error_context_stack = errcallback.previous;
	MemoryContextSwitchTo(oldcxt);
	return rs;
}

/* The next row of the file's columns; false at end of file */
static bool
read_next_row(CsvReadState *rs, Datum *values, bool *nulls)
{
	ErrorContextCallback errcallback;
	CsvRecord	rec;
	bool		found;

	if (rs->done)
		return false;

	if (rs->cache_hit)
	{
		found = csv_cache_next(rs->cache, values, nulls, rs->out_upto);
		if (!found)
			rs->done = true;
		return found;
	}

	errcallback.callback = csv_error_context_callback;
	errcallback.arg = &rs->errpos;
	errcallback.previous = error_context_stack;
	error_context_stack = &errcallback;

	if (rs->leader)
	{
		found = csv_leader_next_row(rs->leader, values, nulls);
		if (!found)
			rs->done = true;
	}
	else
	{
		for (;;)
		{
			found = csv_reader_next(rs->reader, &rec);
			if (!found)
			{
				rs->done = true;
				if (rs->skipped > 0)
					ereport(NOTICE,
							(errmsg("%s: skipped " INT64_FORMAT " bad row(s)",
									rs->errpos.funcname, rs->skipped)));
			}
			else if (rs->text_mode && rec.bad && rs->opts.on_error_skip)
			{
				csv_record_skip_notice(&rs->errpos, &rec, &rs->skipped);
				continue;
			}
			else if (rs->text_mode)
				csv_text_row(&rs->opts.dialect, &rec, values, nulls, &rs->errpos);
			else if (!rs->opts.on_error_skip)
				csv_converter_row(rs->conv, &rec, values, nulls);
			else if (!csv_converter_row_or_skip(rs->conv, &rec, values, nulls, &rs->skipped))
				continue;
			break;
		}
	}

	/*
	 * Record the row, or publish the entry at the end of the file.  A read
	 * that skipped bad rows (on_error => 'skip') is not stored: a hit would
	 * not report them again.
	 */
	if (rs->cache)
	{
		if (found)
			csv_cache_add(rs->cache, values, nulls);
		else if (rs->skipped > 0 ||
				 (rs->leader && csv_leader_rejected(rs->leader) > 0))
			csv_cache_abandon(rs->cache);
		else
			csv_cache_finish(rs->cache);
	}

	error_context_stack = errcallback.previous;
	return found;
}

/*
 * Next row into values/nulls; false at end of file.  Datums are allocated in
 * the caller's current memory context.
 */
bool
csv_read_next(CsvReadState *rs, Datum *values, bool *nulls)
{
	if (rs->out_field == NULL)
		return read_next_row(rs, values, nulls);

	/* read(path, NULL::t): the file's columns into t's */
	if (!read_next_row(rs, rs->fvalues, rs->fnulls))
		return false;
	for (int i = 0; i < rs->out_natts; i++)
	{
		int			f = rs->out_field[i];

		values[i] = f >= 0 ? rs->fvalues[f] : (Datum) 0;
		nulls[i] = f >= 0 ? rs->fnulls[f] : true;
	}
	return true;
}

/* For EXPLAIN ANALYZE: what the cache did for this read */
const char *
csv_read_cache_status(CsvReadState *rs)
{
	if (rs->cache == NULL)
		return "off";
	switch (csv_cache_status(rs->cache))
	{
		case CSV_CACHE_HIT:
			return "hit";
		case CSV_CACHE_BUILD:
			return "miss, storing";
		case CSV_CACHE_STORED:
			return "miss, stored";
		case CSV_CACHE_MISS:
			break;
	}
	return "miss";
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
csv_srf(FunctionCallInfo fcinfo, const char *funcname, bool text_mode,
		bool typed)
{
	FuncCallContext *funcctx;
	SrfState   *st;
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;

	if (SRF_IS_FIRSTCALL())
	{
		MemoryContext oldcxt;
		TupleDesc	tupdesc;
		CsvOptions	opts;

		if (rsinfo == NULL || !IsA(rsinfo, ReturnSetInfo))
			ereport(ERROR,
					(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
					 errmsg("set-valued function called in context that cannot accept a set")));

		funcctx = SRF_FIRSTCALL_INIT();
		oldcxt = MemoryContextSwitchTo(funcctx->multi_call_memory_ctx);

		if (typed)
			csv_options_from_fcinfo(&opts, fcinfo, CSV_FN_READ, funcname);
		if (text_mode)
			tupdesc = csv_read_text_tupdesc();
		else if (typed)
			tupdesc = csv_rowtype_desc(opts.rowtype, funcname);
		else if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
			ereport(ERROR,
					(errcode(ERRCODE_SYNTAX_ERROR),
					 errmsg("%s needs a column definition list", funcname),
					 errhint("For example: SELECT * FROM %s('/path/file.csv') AS t(id int, name text), or %s('/path/file.csv', NULL::a_table).",
							 funcname, funcname)));
		tupdesc = BlessTupleDesc(CreateTupleDescCopy(tupdesc));
		if (!typed)
			csv_options_from_fcinfo(&opts, fcinfo,
									text_mode ? CSV_FN_READ_TEXT : CSV_FN_READ, funcname);

		st = palloc0(sizeof(SrfState));
		st->tupdesc = tupdesc;
		st->values = palloc(sizeof(Datum) * tupdesc->natts);
		st->nulls = palloc(sizeof(bool) * tupdesc->natts);
		st->row_cxt = AllocSetContextCreate(funcctx->multi_call_memory_ctx,
											"csvpipe row", ALLOCSET_DEFAULT_SIZES);
		st->rs = csv_read_begin(&opts, text_mode, tupdesc, NULL, NULL);
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

Datum
csvpipe_read(PG_FUNCTION_ARGS)
{
	return csv_srf(fcinfo, "csvpipe.read", false, false);
}

/* csvpipe.read(path, NULL::t, ...): rows of t's type */
Datum
csvpipe_read_rowtype(PG_FUNCTION_ARGS)
{
	return csv_srf(fcinfo, "csvpipe.read", false, true);
}

Datum
csvpipe_read_text(PG_FUNCTION_ARGS)
{
	return csv_srf(fcinfo, "csvpipe.read_text", true, false);
}

