/*-------------------------------------------------------------------------
 *
 * scan.c
 *		A streaming CustomScan for csvpipe.read / csvpipe.read_text in FROM.
 *
 * PostgreSQL runs a set-returning function in FROM through FunctionScan,
 * which collects every row in a tuplestore before returning the first: a
 * LIMIT 10 over a 2 GB file would read all of it.  This file adds a path
 * for such calls that reads the file as rows are pulled, so LIMIT stops
 * reading, memory stays at one block, and no tuplestore copy is made.
 *
 * The path is offered from set_rel_pathlist_hook.  The hook is installed in
 * _PG_init, and the functions' planner support function (csvpipe_read_support)
 * makes the planner load the library while estimating the call's rows, before
 * paths are built: so the streaming scan is used even without preloading.
 *
 * Calls that need FunctionScan features keep it: WITH ORDINALITY, ROWS FROM
 * with several functions, arguments that refer to other tables (LATERAL),
 * and whole-row references.
 *
 * read's typed form, read(path, NULL::t, ...), has no column definition
 * list: the scan's row is t's (resolved from the argument's type), a
 * dropped column of t a NULL placeholder; csv_read_begin maps the file's
 * columns onto t's.  A row type that is not composite is left to the
 * FunctionScan, whose call raises the error.
 *
 * Like file_fdw, only the columns the query uses are converted; when it uses
 * none (count(*)), all are converted, so such a count also validates.  When
 * the rows come from the result cache, only the used columns are deformed.
 *
 *-------------------------------------------------------------------------
 */
#include "csvfile.h"
#include "internal_sql.h"
#include "options.h"
#include "scan.h"
#include "srf.h"

#include <sys/stat.h>

#include "access/sysattr.h"
#include "catalog/pg_authid.h"
#include "catalog/pg_language.h"
#include "catalog/pg_proc.h"
#include "catalog/pg_type.h"
#include "executor/executor.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "nodes/extensible.h"
#include "nodes/makefuncs.h"
#include "nodes/nodeFuncs.h"
#include "nodes/supportnodes.h"
#include "optimizer/cost.h"
#include "optimizer/optimizer.h"
#include "optimizer/pathnode.h"
#include "optimizer/paths.h"
#include "optimizer/restrictinfo.h"
#include "parser/parsetree.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/syscache.h"

PG_FUNCTION_INFO_V1(csvpipe_read_support);

#define CSV_KIND_NONE	0
#define CSV_KIND_READ	1
#define CSV_KIND_TEXT	2
#define CSV_KIND_ROWTYPE 3		/* read(path, NULL::t, ...) */

typedef struct CsvScanState
{
	CustomScanState css;
	int			kind;
	Oid			funcid;			/* csvpipe.read or read_text */
	List	   *arg_states;		/* ExprStates of the function arguments */
	Oid		   *argtypes;		/* their types */
	bool	   *convert;		/* columns to convert, NULL = all */
	bool	   *used;			/* columns the query uses (all false: none) */
	MemoryContext read_cxt;		/* per-scan; reset on rescan */
	CsvReadState *rs;
} CsvScanState;

static set_rel_pathlist_hook_type prev_set_rel_pathlist_hook = NULL;

static Plan *csv_plan_path(PlannerInfo *root, RelOptInfo *rel,
						   CustomPath *best_path, List *tlist,
						   List *clauses, List *custom_plans);
static Node *csv_create_scan_state(CustomScan *cscan);
static void csv_begin_scan(CustomScanState *node, EState *estate, int eflags);
static TupleTableSlot *csv_exec_scan(CustomScanState *node);
static void csv_end_scan(CustomScanState *node);
static void csv_rescan(CustomScanState *node);
static void csv_explain_scan(CustomScanState *node, List *ancestors,
							 ExplainState *es);

static const CustomPathMethods csv_path_methods = {
	.CustomName = "CsvpipeRead",
	.PlanCustomPath = csv_plan_path,
};

static const CustomScanMethods csv_scan_methods = {
	.CustomName = "CsvpipeRead",
	.CreateCustomScanState = csv_create_scan_state,
};

static const CustomExecMethods csv_exec_methods = {
	.CustomName = "CsvpipeRead",
	.BeginCustomScan = csv_begin_scan,
	.ExecCustomScan = csv_exec_scan,
	.EndCustomScan = csv_end_scan,
	.ReScanCustomScan = csv_rescan,
	.ExplainCustomScan = csv_explain_scan,
};

/* Is funcid csvpipe.read or csvpipe.read_text? */
static int
csv_function_kind(Oid funcid)
{
	HeapTuple	tup;
	Form_pg_proc proc;
	int			kind = CSV_KIND_NONE;

	tup = SearchSysCache1(PROCOID, ObjectIdGetDatum(funcid));
	if (!HeapTupleIsValid(tup))
		return CSV_KIND_NONE;
	proc = (Form_pg_proc) GETSTRUCT(tup);
	if (proc->prolang == ClanguageId)
	{
		/* the extension's schema, whatever its name */
		if (proc->pronamespace == csv_extension_schema(true))
		{
			if (strcmp(NameStr(proc->proname), "read") == 0)
				kind = proc->prorettype == ANYELEMENTOID ?
					CSV_KIND_ROWTYPE : CSV_KIND_READ;
			else if (strcmp(NameStr(proc->proname), "read_text") == 0)
				kind = CSV_KIND_TEXT;
		}
	}
	ReleaseSysCache(tup);
	return kind;
}

static void
csv_set_rel_pathlist(PlannerInfo *root, RelOptInfo *rel, Index rti,
					 RangeTblEntry *rte)
{
	RangeTblFunction *rtfunc;
	FuncExpr   *fexpr;
	int			kind;
	Bitmapset  *attrs_used = NULL;
	ListCell   *lc;
	CustomPath *cpath;
	List	   *convert = NIL;
	int			attno;

	if (prev_set_rel_pathlist_hook)
		prev_set_rel_pathlist_hook(root, rel, rti, rte);

	if (rte->rtekind != RTE_FUNCTION || rel->reloptkind != RELOPT_BASEREL ||
		rte->funcordinality || list_length(rte->functions) != 1)
		return;
	rtfunc = (RangeTblFunction *) linitial(rte->functions);
	if (!IsA(rtfunc->funcexpr, FuncExpr))
		return;
	fexpr = (FuncExpr *) rtfunc->funcexpr;
	kind = csv_function_kind(fexpr->funcid);
	if (kind == CSV_KIND_NONE)
		return;
	if (!bms_is_empty(rel->lateral_relids) || contain_vars_of_level((Node *) fexpr->args, 0))
		return;
	if (kind == CSV_KIND_ROWTYPE)
	{
		TupleDesc	tupdesc;
		TypeFuncClass tfc = get_expr_result_type((Node *) fexpr, NULL, &tupdesc);

		/* not a named row type: the FunctionScan's call says what is wrong */
		if (rtfunc->funccolnames != NIL ||
			(tfc != TYPEFUNC_COMPOSITE && tfc != TYPEFUNC_COMPOSITE_DOMAIN))
			return;
	}

	/* which columns are used above the scan or by its quals */
	pull_varattnos((Node *) rel->reltarget->exprs, rel->relid, &attrs_used);
	foreach(lc, rel->baserestrictinfo)
	{
		RestrictInfo *rinfo = lfirst_node(RestrictInfo, lc);

		pull_varattnos((Node *) rinfo->clause, rel->relid, &attrs_used);
	}
	if (bms_is_member(0 - FirstLowInvalidHeapAttributeNumber, attrs_used))
		return;					/* whole-row reference */
	attno = -1;
	while ((attno = bms_next_member(attrs_used, attno)) >= 0)
	{
		int			col = attno + FirstLowInvalidHeapAttributeNumber;

		if (col > 0)
			convert = lappend_int(convert, col);
	}

	cpath = makeNode(CustomPath);
	cpath->path.pathtype = T_CustomScan;
	cpath->path.parent = rel;
	cpath->path.pathtarget = rel->reltarget;
	cpath->path.param_info = NULL;
	cpath->path.parallel_aware = false;
	cpath->path.parallel_safe = false;
	cpath->path.parallel_workers = 0;
	cpath->path.rows = rel->rows;
	/* rows come as they are parsed: no startup beyond the quals' own */
	cpath->path.startup_cost = rel->baserestrictcost.startup;
	/* and no tuplestore to fill and read back: cheaper than FunctionScan */
	cpath->path.total_cost = cpath->path.startup_cost +
		rel->rows * (0.5 * cpu_tuple_cost + rel->baserestrictcost.per_tuple);
	cpath->flags = 0;
	cpath->custom_paths = NIL;
	cpath->custom_private = list_make3(makeInteger(kind), convert,
									   makeInteger((int) fexpr->funcid));
	cpath->methods = &csv_path_methods;

	/* the FunctionScan path stays only if it is somehow cheaper */
	add_path(rel, &cpath->path);
}

static Plan *
csv_plan_path(PlannerInfo *root, RelOptInfo *rel, CustomPath *best_path,
			  List *tlist, List *clauses, List *custom_plans)
{
	CustomScan *cscan = makeNode(CustomScan);
	RangeTblEntry *rte = planner_rt_fetch(rel->relid, root);
	RangeTblFunction *rtfunc = (RangeTblFunction *) linitial(rte->functions);
	FuncExpr   *fexpr = (FuncExpr *) rtfunc->funcexpr;
	TupleDesc	tupdesc;
	List	   *scan_tlist = NIL;

	/* the scan's row type: the column definition list, or OUT parameters */
	if (rtfunc->funccolnames != NIL)
		tupdesc = BuildDescFromLists(rtfunc->funccolnames,
									 rtfunc->funccoltypes,
									 rtfunc->funccoltypmods,
									 rtfunc->funccolcollations);
	else
	{
		TypeFuncClass tfc = get_expr_result_type((Node *) fexpr, NULL, &tupdesc);

		/* read(path, NULL::t): t's columns, for a domain its base type's */
		if (tfc != TYPEFUNC_COMPOSITE && tfc != TYPEFUNC_COMPOSITE_DOMAIN)
			elog(ERROR, "csvpipe: function result is not a row type");
	}

	for (int i = 0; i < tupdesc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(tupdesc, i);
		Expr	   *expr;

		/* a row type's dropped column: no Var refers to it */
		if (att->attisdropped)
			expr = (Expr *) makeNullConst(INT4OID, -1, InvalidOid);
		else
			expr = (Expr *) makeVar(rel->relid, i + 1, att->atttypid,
									att->atttypmod, att->attcollation, 0);
		scan_tlist = lappend(scan_tlist,
							 makeTargetEntry(expr, i + 1,
											 pstrdup(NameStr(att->attname)),
											 false));
	}

	cscan->scan.plan.targetlist = tlist;
	cscan->scan.plan.qual = extract_actual_clauses(clauses, false);
	/* not a table: the scan tuple is described by custom_scan_tlist */
	cscan->scan.scanrelid = 0;
	cscan->flags = best_path->flags;
	cscan->custom_plans = NIL;
	cscan->custom_exprs = copyObject(fexpr->args);
	cscan->custom_private = best_path->custom_private;
	cscan->custom_scan_tlist = scan_tlist;
	cscan->methods = &csv_scan_methods;
	return &cscan->scan.plan;
}

static Node *
csv_create_scan_state(CustomScan *cscan)
{
	CsvScanState *state = (CsvScanState *) newNode(sizeof(CsvScanState),
												   T_CustomScanState);

	state->css.methods = &csv_exec_methods;
	state->kind = intVal(linitial(cscan->custom_private));
	state->funcid = (Oid) intVal(lthird(cscan->custom_private));
	return (Node *) state;
}

static void
csv_begin_scan(CustomScanState *node, EState *estate, int eflags)
{
	CsvScanState *state = (CsvScanState *) node;
	CustomScan *cscan = (CustomScan *) node->ss.ps.plan;
	List	   *convert = (List *) lsecond(cscan->custom_private);
	TupleDesc	scandesc = node->ss.ss_ScanTupleSlot->tts_tupleDescriptor;
	ListCell   *lc;

	state->arg_states = ExecInitExprList(cscan->custom_exprs, &node->ss.ps);
	state->argtypes = palloc(sizeof(Oid) * Max(list_length(cscan->custom_exprs), 1));
	foreach(lc, cscan->custom_exprs)
		state->argtypes[foreach_current_index(lc)] = exprType((Node *) lfirst(lc));
	if (convert != NIL)
	{
		state->convert = palloc0(sizeof(bool) * scandesc->natts);
		foreach(lc, convert)
		{
			int			col = lfirst_int(lc);

			if (col >= 1 && col <= scandesc->natts)
				state->convert[col - 1] = true;
		}
	}
	/* convert == NULL means no column is used (count(*)) */
	state->used = state->convert ? state->convert :
		palloc0(sizeof(bool) * Max(scandesc->natts, 1));
	state->read_cxt = AllocSetContextCreate(estate->es_query_cxt,
											"csvpipe scan",
											ALLOCSET_SMALL_SIZES);
}

/* Evaluate the arguments and open the file */
static void
csv_open(CsvScanState *state)
{
	ExprContext *econtext = state->css.ss.ps.ps_ExprContext;
	TupleDesc	scandesc = state->css.ss.ss_ScanTupleSlot->tts_tupleDescriptor;
	int			nargs = list_length(state->arg_states);
	Datum	   *args;
	bool	   *argnulls;
	CsvOptions	opts;
	const char *funcname = state->kind == CSV_KIND_TEXT ?
		"csvpipe.read_text" : "csvpipe.read";
	bool		text_mode = state->kind == CSV_KIND_TEXT;
	MemoryContext oldcxt;
	ListCell   *lc;
	int			i = 0;

	oldcxt = MemoryContextSwitchTo(econtext->ecxt_per_tuple_memory);
	args = palloc(sizeof(Datum) * Max(nargs, 1));
	argnulls = palloc(sizeof(bool) * Max(nargs, 1));
	foreach(lc, state->arg_states)
	{
		ExprState  *es = (ExprState *) lfirst(lc);

		args[i] = ExecEvalExpr(es, econtext, &argnulls[i]);
		i++;
	}
	MemoryContextSwitchTo(state->read_cxt);
	csv_options_from_args(&opts, state->funcid,
						  text_mode ? CSV_FN_READ_TEXT : CSV_FN_READ,
						  funcname, nargs, args, argnulls, state->argtypes);
	state->rs = csv_read_begin(&opts, text_mode,
							   scandesc, state->convert, state->used);
	MemoryContextSwitchTo(oldcxt);
}

static TupleTableSlot *
csv_scan_next(ScanState *ss)
{
	CsvScanState *state = (CsvScanState *) ss;
	TupleTableSlot *slot = ss->ss_ScanTupleSlot;
	ExprContext *econtext = ss->ps.ps_ExprContext;
	MemoryContext oldcxt;

	if (state->rs == NULL)
		csv_open(state);

	ExecClearTuple(slot);
	/* ExecScan resets the per-tuple context before each call */
	oldcxt = MemoryContextSwitchTo(econtext->ecxt_per_tuple_memory);
	if (csv_read_next(state->rs, slot->tts_values, slot->tts_isnull))
		ExecStoreVirtualTuple(slot);
	MemoryContextSwitchTo(oldcxt);
	return slot;
}

static bool
csv_scan_recheck(ScanState *ss, TupleTableSlot *slot)
{
	return true;
}

static TupleTableSlot *
csv_exec_scan(CustomScanState *node)
{
	return ExecScan(&node->ss, csv_scan_next, csv_scan_recheck);
}

static void
csv_close(CsvScanState *state)
{
	if (state->rs)
	{
		csv_read_end(state->rs);
		state->rs = NULL;
	}
	MemoryContextReset(state->read_cxt);
}

static void
csv_end_scan(CustomScanState *node)
{
	csv_close((CsvScanState *) node);
}

static void
csv_rescan(CustomScanState *node)
{
	/* read the file again from the start (the arguments may have changed) */
	csv_close((CsvScanState *) node);
}

static void
csv_explain_scan(CustomScanState *node, List *ancestors, ExplainState *es)
{
	CsvScanState *state = (CsvScanState *) node;
	CustomScan *cscan = (CustomScan *) node->ss.ps.plan;
	Node	   *path = (Node *) linitial(cscan->custom_exprs);

	ExplainPropertyText("Function",
						state->kind == CSV_KIND_TEXT ? "csvpipe.read_text" : "csvpipe.read",
						es);
	if (IsA(path, Const) && !((Const *) path)->constisnull)
		ExplainPropertyText("File", TextDatumGetCString(((Const *) path)->constvalue), es);
	if (state->convert)
	{
		TupleDesc	desc = node->ss.ss_ScanTupleSlot->tts_tupleDescriptor;
		StringInfoData buf;

		initStringInfo(&buf);
		for (int i = 0; i < desc->natts; i++)
		{
			if (!state->convert[i])
				continue;
			if (buf.len > 0)
				appendStringInfoString(&buf, ", ");
			appendStringInfoString(&buf, quote_identifier(NameStr(TupleDescAttr(desc, i)->attname)));
		}
		ExplainPropertyText("Converted Columns", buf.data, es);
	}
	if (es->analyze && state->rs)
		ExplainPropertyText("Cache", csv_read_cache_status(state->rs), es);
}

/*
 * Planner support: a row estimate from the file size, only for a file the
 * caller may read (privileges and csvpipe.allowed_dirs, checked by opening
 * it as a read does): a plan must not reveal anything about other files.
 */
Datum
csvpipe_read_support(PG_FUNCTION_ARGS)
{
	Node	   *rawreq = (Node *) PG_GETARG_POINTER(0);

	if (IsA(rawreq, SupportRequestRows))
	{
		SupportRequestRows *req = (SupportRequestRows *) rawreq;
		double		rows = 1000;

		if (is_funcclause(req->node))
		{
			FuncExpr   *fexpr = (FuncExpr *) req->node;
			Node	   *arg = list_length(fexpr->args) > 0 ? linitial(fexpr->args) : NULL;
			struct stat st;

			if (arg && IsA(arg, Const) && !((Const *) arg)->constisnull &&
				has_privs_of_role(GetUserId(), ROLE_PG_READ_SERVER_FILES))
			{
				char	   *path = TextDatumGetCString(((Const *) arg)->constvalue);

				/* ~64 bytes per CSV row is as good a guess as any */
				if (csv_stat_file(path, CSV_OPEN_QUIET, &st, NULL))
					rows = Max(1.0, (double) st.st_size / 64.0);
			}
		}
		req->rows = rows;
		PG_RETURN_POINTER(req);
	}
	PG_RETURN_POINTER(NULL);
}

void
csvpipe_scan_init(void)
{
	static bool done = false;

	if (done)
		return;
	done = true;
	prev_set_rel_pathlist_hook = set_rel_pathlist_hook;
	set_rel_pathlist_hook = csv_set_rel_pathlist;
	RegisterCustomScanMethods(&csv_scan_methods);
}
