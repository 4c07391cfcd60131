/*-------------------------------------------------------------------------
 *
 * load.c
 *		Inserting converted CSV rows into a target table, as COPY FROM does,
 *		and csvpipe.load_serial, the single-process load built on it.
 *
 * Owns the insert path every csvpipe load uses (the serial load here and
 * the parallel workers): target column mapping and INSERT privilege checks,
 * column defaults (identity columns, sequences), stored generated columns,
 * NOT NULL/CHECK constraints, index maintenance, row and statement
 * triggers (including INSTEAD OF INSERT on views and transition tables),
 * tuple routing into partitions, foreign tables through their FDW, and the
 * multi-insert buffers with a bulk-insert ring.
 *
 * It follows PostgreSQL's own COPY FROM (src/backend/commands/copyfrom.c,
 * CopyFrom): the same executor calls in the same order and the same rules
 * for when rows may be buffered and written with table_multi_insert()
 * ("multi-insert") or must be inserted one at a time:
 *
 *	- one at a time when the target has BEFORE ROW or INSTEAD OF INSERT
 *	  triggers (they may look at the rows inserted so far), is a foreign
 *	  table whose FDW does not batch (see below), is partitioned and has
 *	  transition-table triggers, or has a volatile default expression
 *	  (nextval() excepted) for a column not in the file;
 *	- for a partitioned target, per partition: buffered unless the
 *	  partition has BEFORE ROW/INSTEAD OF triggers or is a foreign table
 *	  that does not batch (pending buffers are flushed before such a
 *	  partition gets a row);
 *	- buffers of local tables are flushed at 1000 rows or 64 kB of tuple
 *	  data in all, and at most 32 partition buffers are kept.
 *
 * Foreign tables (a foreign target, or foreign partitions such as
 * postgres_fdw shards) are batched as PostgreSQL 16's COPY FROM does: when
 * the FDW has ExecForeignBatchInsert and GetForeignModifyBatchSize says more
 * than 1 (postgres_fdw: the table's or server's batch_size, 1 when the
 * foreign table has AFTER ROW or BEFORE ROW triggers or WITH CHECK OPTIONs),
 * its rows are buffered and sent batch_size at a time (at most 1000), in one
 * round trip each.  A foreign buffer is sent when it holds a full batch, not
 * with the local buffers: postgres_fdw prepares its INSERT for a number of
 * rows and prepares it again whenever that number changes, so only the
 * last batch of a flush point (the end of a chunk or statement, or a row
 * for a partition whose triggers must see the rows before it) is short.  A
 * batch the remote server refuses fails as a whole; its error context names
 * the batch's line range.  Callers that must pin an error on one row (skip
 * mode) insert in subtransactions and halve a failing batch down to the
 * row (parallel/worker.c, load/run.c), which then fails on its own.
 *
 * Per row (csv_load_row) defaults, BEFORE ROW triggers, generated columns,
 * constraint and partition checks run at once; buffered rows get their
 * heap insert, index entries and AFTER ROW trigger events at flush time.
 * Each buffered row keeps its line number, and an error context callback
 * names the row being worked on ("csvpipe.load "t", line 12"), or the
 * batch's line range when table_multi_insert itself fails.  AFTER ROW and
 * AFTER STATEMENT triggers (and foreign key checks) run at csv_load_end,
 * as they do at the end of a COPY statement; their errors name no line.
 *
 * Memory: the executor state and buffers live in the target's context;
 * per-row work uses the executor's per-tuple context, reset for every row;
 * table_multi_insert runs in a batch context reset after every flush.  The
 * buffered tuples themselves are bounded by the flush limits.
 *
 * All rows get one command id (GetCurrentCommandId(true)), as a COPY
 * statement's do; csv_load_end() increments the command counter afterwards,
 * as the end of a statement would.
 *
 * Parallel workers append (csv_load_append_only): every worker writes into
 * new pages of its own, as COPY does into a table created in the same
 * transaction.  With the free space map, workers contending for the
 * relation extension lock pick up the pages the other workers added in
 * bulk, so their bulk-insert rings drift through all of shared_buffers:
 * slower, and each worker's memory grows with the file.
 *
 * Row-level security: like COPY FROM, loading into a table where RLS
 * applies to the current user is refused.
 *
 *-------------------------------------------------------------------------
 */
#include "csvfile.h"
#include "fdw_reuse.h"
#include "load.h"
#include "match.h"
#include "options.h"
#include "shards.h"
#include "target.h"

#include "access/heapam.h"
#include "access/hio.h"
#include "storage/bufmgr.h"
#include "access/htup_details.h"
#include "access/sysattr.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/tupconvert.h"
#include "access/xact.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "executor/execPartition.h"
#include "executor/executor.h"
#include "executor/nodeModifyTable.h"
#include "foreign/fdwapi.h"
#include "miscadmin.h"
#include "port/pg_bitutils.h"
#include "nodes/makefuncs.h"
#include "optimizer/optimizer.h"
#include "rewrite/rewriteHandler.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/rls.h"
#include "utils/snapmgr.h"
#include "utils/portal.h"

PG_FUNCTION_INFO_V1(csvpipe_load_serial);

/* flush limits, as COPY's */
#define LOAD_MAX_BUFFERED_TUPLES	1000
#define LOAD_MAX_BUFFERED_BYTES		65535
/* partition buffers kept after a flush */
#define LOAD_MAX_PARTITION_BUFFERS	32

typedef enum LoadInsertMethod
{
	LOAD_SINGLE,				/* one row at a time */
	LOAD_MULTI,					/* multi-insert into the (plain) target */
	LOAD_MULTI_CONDITIONAL		/* partitioned: multi-insert where allowed */
} LoadInsertMethod;

/* Buffered rows for one result relation (the target or a partition) */
typedef struct LoadBuffer
{
	ResultRelInfo *rri;
	BulkInsertState bistate;	/* local tables only */
	bool		foreign;		/* rows go by ExecForeignBatchInsert */
	int			capacity;		/* foreign: rows per batch (<= the array) */
	int			nused;
	struct SlotPool *pool;		/* slots borrowed from a pool, or NULL */
	TupleTableSlot *slots[LOAD_MAX_BUFFERED_TUPLES];	/* made on demand */
	int64		lines[LOAD_MAX_BUFFERED_TUPLES];
} LoadBuffer;

struct CsvLoadTarget
{
	MemoryContext cxt;			/* owns everything here */
	MemoryContextCallback pool_cb;	/* gives the slot pool back */
	MemoryContext batch_cxt;	/* table_multi_insert scratch, per flush */
	Relation	rel;			/* the target, opened and locked by us */
	char	   *relname;

	/* file columns -> target columns */
	int			nfields;
	AttrNumber *attnums;		/* target attnum of each file column */
	TupleDesc	input_desc;
	int			ndefaults;
	AttrNumber *defattnums;		/* columns filled from a default */
	ExprState **defexprs;
	bool		volatile_defexprs;

	/* executor state */
	EState	   *estate;
	ModifyTableState *mtstate;
	ResultRelInfo *target_rri;
	PartitionTupleRouting *proute;
	TransitionCaptureState *transition_capture;
	CommandId	mycid;
	int			ti_options;
	bool		stmt_triggers;	/* fire BEFORE/AFTER STATEMENT triggers */
	LoadInsertMethod method;
	TupleTableSlot *singleslot; /* rows in the target's format */
	BulkInsertState bistate;	/* one-at-a-time inserts */

	/* the result relation the previous row went to, and its properties */
	ResultRelInfo *prev_rri;
	bool		has_br_trig;
	bool		has_ir_trig;
	bool		use_multi;		/* its rows are buffered */
	LoadBuffer *cur_buffer;		/* its buffer */

	/* multi-insert buffers */
	List	   *buffers;
	int			buffered_tuples;	/* in local tables' buffers */
	Size		buffered_bytes;
	int			foreign_pending;	/* in foreign tables' buffers */

	uint64		processed;

	/*
	 * csv_load_collect_new_rows: each row this target puts in its own
	 * transition table (root format) is also appended to *collect, in
	 * collect_cxt, for csv_load_add_new_rows on another target.
	 */
	List	  **collect;
	MemoryContext collect_cxt;
	TupleTableSlot *collect_slot;	/* partition rows converted to the root's */

	/* error context: the line (range) being worked on, 0 = none */
	int64		err_first;
	int64		err_last;

	/* a chunk of a chunked load into foreign tables: shards.c, or NULL */
	CsvShardTally *shards;
};

static void
load_error_callback(void *arg)
{
	CsvLoadTarget *t = (CsvLoadTarget *) arg;

	if (t->err_first > 0 && t->err_last > t->err_first)
		errcontext("csvpipe.load \"%s\", lines %lld-%lld", t->relname,
				   (long long) t->err_first, (long long) t->err_last);
	else if (t->err_first > 0)
		errcontext("csvpipe.load \"%s\", line %lld", t->relname,
				   (long long) t->err_first);
	else
		errcontext("csvpipe.load \"%s\"", t->relname);
}

#define PUSH_LOAD_CONTEXT(t, cb) \
	do { \
		(cb).callback = load_error_callback; \
		(cb).arg = (t); \
		(cb).previous = error_context_stack; \
		error_context_stack = &(cb); \
	} while (0)
#define POP_LOAD_CONTEXT(cb) (error_context_stack = (cb).previous)

/* ---- version differences ---- */

static inline List *
insert_index_tuples(ResultRelInfo *rri, TupleTableSlot *slot, EState *estate)
{
#if PG_VERSION_NUM >= 160000
	return ExecInsertIndexTuples(rri, slot, estate, false, false, NULL, NIL,
								 false);
#else
	return ExecInsertIndexTuples(rri, slot, estate, false, false, NULL, NIL);
#endif
}

static inline TupleConversionMap *
root_to_partition_map(ResultRelInfo *rri, EState *estate)
{
#if PG_VERSION_NUM >= 160000
	return ExecGetRootToChildMap(rri, estate);
#else
	return rri->ri_RootToPartitionMap;
#endif
}

/*
 * Rows per ExecForeignBatchInsert call for a foreign result relation, as
 * PostgreSQL 16's COPY FROM finds it: 1 unless the FDW batches.  A routed
 * partition got it from ExecInitRoutingInfo (it may be asked once only);
 * the target itself is asked here.  No batching for a foreign table
 * without columns (PostgreSQL 15's postgres_fdw would build a multi-row
 * INSERT with nothing in VALUES).
 */
static int
foreign_batch_size(ResultRelInfo *rri)
{
	TupleDesc	desc = RelationGetDescr(rri->ri_RelationDesc);
	bool		has_columns = false;

	if (rri->ri_BatchSize == 0)
	{
		if (rri->ri_FdwRoutine->GetForeignModifyBatchSize &&
			rri->ri_FdwRoutine->ExecForeignBatchInsert)
			rri->ri_BatchSize = rri->ri_FdwRoutine->GetForeignModifyBatchSize(rri);
		else
			rri->ri_BatchSize = 1;
	}
	if (rri->ri_FdwRoutine->ExecForeignBatchInsert == NULL)
		return 1;
	for (int i = 0; i < desc->natts && !has_columns; i++)
		has_columns = !TupleDescAttr(desc, i)->attisdropped;
	if (!has_columns)
		return 1;
	return Max(rri->ri_BatchSize, 1);
}

/* ---- target columns ---- */

/*
 * Target attnums of the file's columns, with COPY's rules and messages
 * (CopyGetAttnums).
 */
static AttrNumber *
target_attnums(Relation rel, List *attnames, int *nfields)
{
	TupleDesc	tupdesc = RelationGetDescr(rel);
	AttrNumber *attnums;
	int			n = 0;
	ListCell   *lc;

	attnums = palloc(sizeof(AttrNumber) *
					 Max(Max(tupdesc->natts, list_length(attnames)), 1));

	if (attnames == NIL)
	{
		for (int i = 0; i < tupdesc->natts; i++)
		{
			Form_pg_attribute att = TupleDescAttr(tupdesc, i);

			if (att->attisdropped || att->attgenerated)
				continue;
			attnums[n++] = att->attnum;
		}
		*nfields = n;
		return attnums;
	}

	foreach(lc, attnames)
	{
		const char *name = (const char *) lfirst(lc);
		AttrNumber	attnum = InvalidAttrNumber;

		for (int i = 0; i < tupdesc->natts; i++)
		{
			Form_pg_attribute att = TupleDescAttr(tupdesc, i);

			if (att->attisdropped || namestrcmp(&att->attname, name) != 0)
				continue;
			if (att->attgenerated)
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_COLUMN_REFERENCE),
						 errmsg("column \"%s\" is a generated column", name),
						 errdetail("Generated columns cannot be loaded into; their values are computed.")));
			attnum = att->attnum;
			break;
		}
		if (attnum == InvalidAttrNumber)
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_COLUMN),
					 errmsg("column \"%s\" of relation \"%s\" does not exist",
							name, RelationGetRelationName(rel))));
		for (int i = 0; i < n; i++)
			if (attnums[i] == attnum)
				ereport(ERROR,
						(errcode(ERRCODE_DUPLICATE_COLUMN),
						 errmsg("column \"%s\" specified more than once", name)));
		attnums[n++] = attnum;
	}
	*nfields = n;
	return attnums;
}

/*
 * The range table entry COPY FROM builds for its target (DoCopy), and the
 * INSERT privilege check on the target columns: as COPY, INSERT on the
 * table or on every column the file maps to (attnums; every column that is
 * neither generated nor dropped when the load names none), so column-level
 * grants work as they do for COPY.  ereports COPY's error.
 */
static List *
check_insert_perms(Relation rel, const char *relname, AttrNumber *attnums,
				   int nfields, List **perminfos)
{
	RangeTblEntry *rte = makeNode(RangeTblEntry);
	Bitmapset  *cols = NULL;

	for (int i = 0; i < nfields; i++)
		cols = bms_add_member(cols, attnums[i] - FirstLowInvalidHeapAttributeNumber);

	rte->rtekind = RTE_RELATION;
	rte->relid = RelationGetRelid(rel);
	rte->relkind = rel->rd_rel->relkind;
	rte->rellockmode = RowExclusiveLock;
	rte->inh = false;
	rte->inFromCl = false;
	rte->alias = NULL;
	rte->eref = makeAlias(relname, NIL);
#if PG_VERSION_NUM >= 160000
	{
		RTEPermissionInfo *perminfo = makeNode(RTEPermissionInfo);

		perminfo->relid = rte->relid;
		perminfo->inh = false;
		perminfo->requiredPerms = ACL_INSERT;
		perminfo->insertedCols = cols;
		rte->perminfoindex = 1;
		*perminfos = list_make1(perminfo);
		ExecCheckPermissions(list_make1(rte), *perminfos, true);
	}
#else
	rte->requiredPerms = ACL_INSERT;
	rte->insertedCols = cols;
	*perminfos = NIL;
	ExecCheckRTPerms(list_make1(rte), true);
#endif
	return list_make1(rte);
}

static List *
make_range_table(CsvLoadTarget *t, List **perminfos)
{
	return check_insert_perms(t->rel, t->relname, t->attnums, t->nfields,
							  perminfos);
}

/*
 * The privilege check of csv_load_begin() alone, for the entry points that
 * check before they start anything (csvpipe.load, resume, submit, runners):
 * the columns as COPY resolves them (its errors for unknown, generated or
 * repeated columns), then INSERT on them as COPY checks it.
 */
void
csv_load_check_privileges(Oid relid, List *attnames)
{
	Relation	rel = table_open(relid, AccessShareLock);
	AttrNumber *attnums;
	int			nfields;
	List	   *perminfos;

	attnums = target_attnums(rel, attnames, &nfields);
	(void) check_insert_perms(rel, RelationGetRelationName(rel), attnums,
							  nfields, &perminfos);
	pfree(attnums);
	table_close(rel, NoLock);	/* locked until transaction end, as COPY */
}

/* COPY's rule: a plain, foreign or partitioned table, or INSTEAD OF INSERT */
static void
check_relkind(Relation rel)
{
	char		relkind = rel->rd_rel->relkind;

	if (relkind == RELKIND_RELATION || relkind == RELKIND_FOREIGN_TABLE ||
		relkind == RELKIND_PARTITIONED_TABLE ||
		(rel->trigdesc && rel->trigdesc->trig_insert_instead_row))
		return;
	if (relkind == RELKIND_VIEW)
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("cannot load into view \"%s\"", RelationGetRelationName(rel)),
				 errhint("To enable loading into a view, provide an INSTEAD OF INSERT trigger.")));
	if (relkind == RELKIND_MATVIEW)
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("cannot load into materialized view \"%s\"",
						RelationGetRelationName(rel))));
	if (relkind == RELKIND_SEQUENCE)
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("cannot load into sequence \"%s\"",
						RelationGetRelationName(rel))));
	ereport(ERROR,
			(errcode(ERRCODE_WRONG_OBJECT_TYPE),
			 errmsg("cannot load into non-table relation \"%s\"",
					RelationGetRelationName(rel))));
}

/*
 * Defaults for the target columns not in the file (BeginCopyFrom): the
 * column default, identity sequence or the type's default.  Generated
 * columns are computed later instead.
 */
static void
prepare_defaults(CsvLoadTarget *t)
{
	TupleDesc	tupdesc = RelationGetDescr(t->rel);

	t->defattnums = palloc(sizeof(AttrNumber) * Max(tupdesc->natts, 1));
	t->defexprs = palloc(sizeof(ExprState *) * Max(tupdesc->natts, 1));
	for (int i = 0; i < tupdesc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(tupdesc, i);
		bool		in_file = false;
		Expr	   *defexpr;

		if (att->attisdropped || att->attgenerated)
			continue;
		for (int j = 0; j < t->nfields && !in_file; j++)
			in_file = (t->attnums[j] == att->attnum);
		if (in_file)
			continue;
		defexpr = (Expr *) build_column_default(t->rel, att->attnum);
		if (defexpr == NULL)
			continue;
		defexpr = expression_planner(defexpr);
		t->defattnums[t->ndefaults] = att->attnum;
		t->defexprs[t->ndefaults] = ExecInitExpr(defexpr, NULL);
		t->ndefaults++;
		/* as COPY: nextval() is safe with multi-insert, other volatiles not */
		if (!t->volatile_defexprs)
			t->volatile_defexprs = contain_volatile_functions_not_nextval((Node *) defexpr);
	}
}

static TupleDesc
make_input_desc(CsvLoadTarget *t)
{
	TupleDesc	reldesc = RelationGetDescr(t->rel);
	TupleDesc	desc = CreateTemplateTupleDesc(t->nfields);

	for (int i = 0; i < t->nfields; i++)
	{
		Form_pg_attribute att = TupleDescAttr(reldesc, t->attnums[i] - 1);

		TupleDescInitEntry(desc, (AttrNumber) (i + 1), NameStr(att->attname),
						   att->atttypid, att->atttypmod, att->attndims);
		TupleDescInitEntryCollation(desc, (AttrNumber) (i + 1), att->attcollation);
	}
	return desc;
}

/*
 * The file's columns of a load into relid (csv_load_input_desc's desc),
 * looked up under AccessShareLock only: a caller that starts workers before
 * it waits for its RowExclusiveLock (csv_load_begin) uses it.
 */
TupleDesc
csv_load_file_desc(Oid relid, List *attnames)
{
	CsvLoadTarget t;
	TupleDesc	desc;

	memset(&t, 0, sizeof(t));
	t.rel = table_open(relid, AccessShareLock);
	t.relname = RelationGetRelationName(t.rel);
	t.attnums = target_attnums(t.rel, attnames, &t.nfields);
	desc = make_input_desc(&t);
	table_close(t.rel, NoLock);
	return desc;
}

/* ---- the bulk-insert ring ---- */

/*
 * One BULKWRITE ring per process, reused by every load target it opens.  A
 * worker opens a target per chunk; a fresh 16 MB ring each time would walk
 * the whole table through shared_buffers (and its memory with it), where
 * COPY keeps to one ring.
 */
static BufferAccessStrategy process_ring = NULL;

/* set by parallel workers: skip the free space map, always extend */
bool		csv_load_append_only = false;

static BulkInsertState
bulk_insert_state_create(void)
{
	BulkInsertState bis = GetBulkInsertState();

	if (process_ring == NULL)
	{
		MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);

		process_ring = GetAccessStrategy(BAS_BULKWRITE);
		MemoryContextSwitchTo(old);
	}
	FreeAccessStrategy(bis->strategy);
	bis->strategy = process_ring;
	return bis;
}

/* FreeBulkInsertState, keeping the process's ring */
static void
bulk_insert_state_free(BulkInsertState bis)
{
	if (bis->current_buf != InvalidBuffer)
		ReleaseBuffer(bis->current_buf);
	pfree(bis);
}

/* ---- the slot pools ---- */

/*
 * Buffers' worth of slots per process, kept across targets.  A worker
 * opens a target per chunk, and making and dropping a thousand slots per
 * buffer each time pins the row type in the resource owner once per slot:
 * PostgreSQL 15's resource owner hashes the same pointer to the same place
 * every time, so remembering thousands of pins of one row type costs time
 * quadratic in their number (a third of a sharded load's worker, with one
 * buffer per partition).  Pooled slots carry a private copy of the row
 * type that no resource owner tracks; a pool serves any buffer whose row
 * type and slot kind are the same, one buffer at a time, and there are as
 * many pools as a target keeps buffers.
 */
typedef struct SlotPool
{
	TupleTableSlot *slots[LOAD_MAX_BUFFERED_TUPLES];
	TupleDesc	desc;
	const TupleTableSlotOps *ops;
	CsvLoadTarget *owner;		/* NULL: free */
} SlotPool;

static SlotPool slot_pools[LOAD_MAX_PARTITION_BUFFERS + 1];

/* the owner's memory is going away (end, or error cleanup): free its pools */
static void
slot_pool_release(void *arg)
{
	for (int p = 0; p < lengthof(slot_pools); p++)
		if (slot_pools[p].owner == (CsvLoadTarget *) arg)
			slot_pools[p].owner = NULL;
}

/* A pool for rel's rows (made or remade as needed); NULL when all are in use */
static SlotPool *
slot_pool_take(CsvLoadTarget *t, Relation rel)
{
	TupleDesc	desc = RelationGetDescr(rel);
	const TupleTableSlotOps *ops = table_slot_callbacks(rel);
	SlotPool   *pool = NULL;

	/* a free pool of the same row type, else an unused one, else any free one */
	for (int p = 0; p < lengthof(slot_pools) && pool == NULL; p++)
		if (slot_pools[p].owner == NULL && slot_pools[p].desc != NULL &&
			slot_pools[p].ops == ops && equalTupleDescs(slot_pools[p].desc, desc))
			pool = &slot_pools[p];
	for (int p = 0; p < lengthof(slot_pools) && pool == NULL; p++)
		if (slot_pools[p].owner == NULL && slot_pools[p].desc == NULL)
			pool = &slot_pools[p];
	for (int p = 0; p < lengthof(slot_pools) && pool == NULL; p++)
		if (slot_pools[p].owner == NULL)
			pool = &slot_pools[p];
	if (pool == NULL)
		return NULL;
	if (pool->desc == NULL || pool->ops != ops || !equalTupleDescs(pool->desc, desc))
	{
		MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);

		for (int i = 0; i < LOAD_MAX_BUFFERED_TUPLES && pool->slots[i] != NULL; i++)
		{
			ExecDropSingleTupleTableSlot(pool->slots[i]);
			pool->slots[i] = NULL;
		}
		if (pool->desc != NULL)
			FreeTupleDesc(pool->desc);
		pool->desc = CreateTupleDescCopyConstr(desc);
		pool->ops = ops;
		MemoryContextSwitchTo(old);
	}
	/* a load that failed may have left rows in them */
	for (int i = 0; i < LOAD_MAX_BUFFERED_TUPLES && pool->slots[i] != NULL; i++)
		ExecClearTuple(pool->slots[i]);
	pool->owner = t;
	return pool;
}

static TupleTableSlot *
slot_pool_get(SlotPool *pool, int n)
{
	if (pool->slots[n] == NULL)
	{
		MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);

		pool->slots[n] = MakeSingleTupleTableSlot(pool->desc, pool->ops);
		MemoryContextSwitchTo(old);
	}
	return pool->slots[n];
}

/* ---- multi-insert buffers ---- */

static LoadBuffer *
buffer_create(CsvLoadTarget *t, ResultRelInfo *rri)
{
	LoadBuffer *buf = MemoryContextAllocZero(t->cxt, sizeof(LoadBuffer));

	buf->rri = rri;
	buf->foreign = (rri->ri_FdwRoutine != NULL);
	if (buf->foreign)
		buf->capacity = Min(foreign_batch_size(rri), LOAD_MAX_BUFFERED_TUPLES);
	else
		buf->bistate = bulk_insert_state_create();
	t->buffers = lappend(t->buffers, buf);
	return buf;
}

static LoadBuffer *
buffer_for(CsvLoadTarget *t, ResultRelInfo *rri)
{
	ListCell   *lc;

	foreach(lc, t->buffers)
	{
		LoadBuffer *buf = (LoadBuffer *) lfirst(lc);

		if (buf->rri == rri)
			return buf;
	}
	return buffer_create(t, rri);
}

/* The slot the next row of buf goes into; the caller fills and stores it */
static TupleTableSlot *
buffer_next_slot(CsvLoadTarget *t, LoadBuffer *buf)
{
	Assert(buf->nused < LOAD_MAX_BUFFERED_TUPLES);
	if (buf->slots[buf->nused] == NULL)
	{
		MemoryContext oldcxt;

		/*
		 * A buffer takes a pool with its first row: a target that never
		 * inserts (skip mode's, which only describes the input) must not
		 * hold one.
		 */
		if (buf->nused == 0 && buf->pool == NULL)
			buf->pool = slot_pool_take(t, buf->rri->ri_RelationDesc);
		oldcxt = MemoryContextSwitchTo(t->cxt);

		buf->slots[buf->nused] = buf->pool ? slot_pool_get(buf->pool, buf->nused) :
			table_slot_create(buf->rri->ri_RelationDesc, NULL);
		MemoryContextSwitchTo(oldcxt);
	}
	return buf->slots[buf->nused];
}

/* Bytes of tuple data in a materialized slot (COPY counts input bytes) */
static Size
slot_data_size(TupleTableSlot *slot)
{
	if (TTS_IS_BUFFERTUPLE(slot) || TTS_IS_HEAPTUPLE(slot))
	{
		HeapTuple	tuple = ((HeapTupleTableSlot *) slot)->tuple;

		if (tuple != NULL)
			return tuple->t_len;
	}
	slot_getallattrs(slot);
	return heap_compute_data_size(slot->tts_tupleDescriptor, slot->tts_values,
								  slot->tts_isnull);
}

static void
buffer_store(CsvLoadTarget *t, LoadBuffer *buf, TupleTableSlot *slot,
			 int64 line_no)
{
	Assert(slot == buf->slots[buf->nused]);
	buf->lines[buf->nused++] = line_no;
	if (buf->foreign)
		t->foreign_pending++;
	else
	{
		t->buffered_tuples++;
		t->buffered_bytes += slot_data_size(slot);
	}
}

/*
 * A row that went into this target's transition table: copied into the
 * caller's collect list too, in the root table's format (as
 * TransitionTableAddTuple stores it).
 */
static void
collect_new_row(CsvLoadTarget *t, ResultRelInfo *rri, TupleTableSlot *slot)
{
	TupleTableSlot *src = slot;
	MemoryContext oldcxt;

	if (t->collect == NULL)
		return;
	if (t->transition_capture->tcs_original_insert_tuple != NULL)
		src = t->transition_capture->tcs_original_insert_tuple;
	else if (rri != t->target_rri)
	{
		TupleConversionMap *map = ExecGetChildToRootMap(rri);

		if (map != NULL)
		{
			if (t->collect_slot == NULL)
				t->collect_slot = table_slot_create(t->rel, &t->estate->es_tupleTable);
			src = execute_attr_map_slot(map->attrMap, slot, t->collect_slot);
		}
	}
	oldcxt = MemoryContextSwitchTo(t->collect_cxt);
	*t->collect = lappend(*t->collect, ExecCopySlotMinimalTuple(src));
	MemoryContextSwitchTo(oldcxt);
}

/*
 * Send a foreign buffer's rows, capacity rows per ExecForeignBatchInsert
 * call (one round trip each), then the AFTER ROW trigger events of the rows
 * the FDW inserted (CopyMultiInsertBufferFlush, PostgreSQL 16).  Runs in the
 * query context: postgres_fdw keeps its rebuilt statement there.
 */
static void
buffer_flush_foreign(CsvLoadTarget *t, LoadBuffer *buf)
{
	EState	   *estate = t->estate;
	ResultRelInfo *rri = buf->rri;
	TriggerDesc *trigdesc = rri->ri_TrigDesc;
	Oid			relid = RelationGetRelid(rri->ri_RelationDesc);
	int			nused = buf->nused;
	int			sent = 0;
	bool		kept = csv_fdw_reuse_active(rri, buf->capacity);

	while (sent < nused)
	{
		int			size = Min(buf->capacity, nused - sent);
		int			inserted;
		TupleTableSlot **rslots;

		CHECK_FOR_INTERRUPTS();
		/* kept statements: a full batch or a power of two rows (fdw_reuse.c) */
		if (kept && size < buf->capacity)
			size = 1 << pg_leftmost_one_pos32((uint32) size);
		inserted = size;
		t->err_first = buf->lines[sent];
		t->err_last = buf->lines[sent + size - 1];
		if (kept)
			rslots = csv_fdw_reuse_insert(rri, &buf->slots[sent], size, &inserted);
		else
			rslots = rri->ri_FdwRoutine->ExecForeignBatchInsert(estate, rri,
																&buf->slots[sent],
																NULL, &inserted);
		for (int i = 0; i < inserted; i++)
		{
			/* AFTER ROW triggers may look at tableoid */
			rslots[i]->tts_tableOid = relid;
			if (trigdesc != NULL && trigdesc->trig_insert_after_row)
				ExecARInsertTriggers(estate, rri, rslots[i], NIL,
									 t->transition_capture);
			collect_new_row(t, rri, rslots[i]);
		}
		t->processed += Max(inserted, 0);
		sent += size;
	}
	for (int i = 0; i < nused; i++)
		ExecClearTuple(buf->slots[i]);
	t->foreign_pending -= nused;
	buf->nused = 0;
}

/*
 * Write one buffer's rows: table_multi_insert, then per row the index
 * entries and the AFTER ROW trigger events (CopyMultiInsertBufferFlush).
 */
static void
buffer_flush(CsvLoadTarget *t, LoadBuffer *buf)
{
	EState	   *estate = t->estate;
	ResultRelInfo *rri = buf->rri;
	TriggerDesc *trigdesc = rri->ri_TrigDesc;
	int			nused = buf->nused;
	MemoryContext oldcxt;

	if (nused == 0)
		return;
	if (buf->foreign)
	{
		buffer_flush_foreign(t, buf);
		return;
	}

	t->err_first = buf->lines[0];
	t->err_last = buf->lines[nused - 1];
	oldcxt = MemoryContextSwitchTo(t->batch_cxt);
	table_multi_insert(rri->ri_RelationDesc, buf->slots, nused, t->mycid,
					   t->ti_options, buf->bistate);
	MemoryContextSwitchTo(oldcxt);

	for (int i = 0; i < nused; i++)
	{
		CHECK_FOR_INTERRUPTS();
		t->err_first = t->err_last = buf->lines[i];
		if (rri->ri_NumIndices > 0)
		{
			List	   *recheck;

			recheck = insert_index_tuples(rri, buf->slots[i], estate);
			ExecARInsertTriggers(estate, rri, buf->slots[i], recheck,
								 t->transition_capture);
			list_free(recheck);
		}
		else if (trigdesc != NULL &&
				 (trigdesc->trig_insert_after_row ||
				  trigdesc->trig_insert_new_table))
			ExecARInsertTriggers(estate, rri, buf->slots[i], NIL,
								 t->transition_capture);
		collect_new_row(t, rri, buf->slots[i]);
		ExecClearTuple(buf->slots[i]);
	}
	t->processed += nused;
	buf->nused = 0;
	MemoryContextReset(t->batch_cxt);
}

static void
buffer_cleanup(CsvLoadTarget *t, LoadBuffer *buf)
{
	Assert(buf->nused == 0);
	if (buf->bistate != NULL)
		bulk_insert_state_free(buf->bistate);
	if (buf->pool)
		buf->pool->owner = NULL;	/* the slots stay, empty, for the next target */
	else
		for (int i = 0; i < LOAD_MAX_BUFFERED_TUPLES && buf->slots[i] != NULL; i++)
			ExecDropSingleTupleTableSlot(buf->slots[i]);
	if (!buf->foreign)
		table_finish_bulk_insert(buf->rri->ri_RelationDesc, t->ti_options);
	if (t->cur_buffer == buf)
		t->cur_buffer = NULL;
	pfree(buf);
}

/*
 * Write the local tables' buffers -- and with foreign, the foreign tables'
 * too, full or not --, then trim the partition buffers to the limit, oldest
 * first (a foreign one with rows is sent first), never the one of keep_rri
 * (the partition now in use).
 */
static void
flush_all(CsvLoadTarget *t, ResultRelInfo *keep_rri, bool foreign)
{
	int64		save_first = t->err_first;
	int64		save_last = t->err_last;
	ListCell   *lc;

	foreach(lc, t->buffers)
	{
		LoadBuffer *buf = (LoadBuffer *) lfirst(lc);

		if (!buf->foreign || foreign)
			buffer_flush(t, buf);
	}
	t->buffered_tuples = 0;
	t->buffered_bytes = 0;

	while (list_length(t->buffers) > LOAD_MAX_PARTITION_BUFFERS)
	{
		LoadBuffer *buf = (LoadBuffer *) linitial(t->buffers);

		if (buf->rri == keep_rri)
		{
			t->buffers = list_delete_first(t->buffers);
			t->buffers = lappend(t->buffers, buf);
			buf = (LoadBuffer *) linitial(t->buffers);
		}
		t->buffers = list_delete_first(t->buffers);
		buffer_flush(t, buf);
		buffer_cleanup(t, buf);
	}
	t->err_first = save_first;
	t->err_last = save_last;
}

/* ---- the API ---- */

CsvLoadTarget *
csv_load_begin(Oid relid, List *attnames)
{
	return csv_load_begin_ext(relid, attnames, 0);
}

/*
 * COPY FREEZE's rules and errors (copyfrom.c): not a partitioned table, no
 * earlier snapshot or open cursor of this transaction that could see the
 * table's old contents, and the table created or truncated in the current
 * subtransaction.
 */
static void
check_freeze(Relation rel)
{
	if (rel->rd_rel->relkind == RELKIND_PARTITIONED_TABLE)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("cannot perform COPY FREEZE on a partitioned table")));
	/* as copyfrom.c: the catalog snapshot does not count */
	InvalidateCatalogSnapshot();
	if (!ThereAreNoPriorRegisteredSnapshots() || !ThereAreNoReadyPortals())
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_TRANSACTION_STATE),
				 errmsg("cannot perform COPY FREEZE because of prior transaction activity")));
	if (rel->rd_createSubid != GetCurrentSubTransactionId() &&
#if PG_VERSION_NUM >= 160000
		rel->rd_newRelfilelocatorSubid != GetCurrentSubTransactionId())
#else
		rel->rd_newRelfilenodeSubid != GetCurrentSubTransactionId())
#endif
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("cannot perform COPY FREEZE because the table was not created or truncated in the current subtransaction")));
}

CsvLoadTarget *
csv_load_begin_ext(Oid relid, List *attnames, int flags)
{
	MemoryContext cxt;
	MemoryContext oldcxt;
	CsvLoadTarget *t;
	Relation	rel;
	List	   *rtable;
	List	   *perminfos;
	EState	   *estate;
	ResultRelInfo *rri;
	ModifyTableState *mtstate;
	TriggerDesc *trigdesc;
	ErrorContextCallback errcallback;

	cxt = AllocSetContextCreate(CurrentMemoryContext, "csvpipe load",
								ALLOCSET_DEFAULT_SIZES);
	oldcxt = MemoryContextSwitchTo(cxt);
	t = palloc0(sizeof(CsvLoadTarget));
	t->cxt = cxt;
	t->pool_cb.func = slot_pool_release;
	t->pool_cb.arg = t;
	MemoryContextRegisterResetCallback(cxt, &t->pool_cb);
	t->stmt_triggers = (flags & CSV_LOAD_NO_STMT_TRIGGERS) == 0;
	t->shards = csv_shards_tally_begin();

	/* as DoCopy: lock, columns, privileges, row-level security */
	rel = table_open(relid, RowExclusiveLock);
	t->rel = rel;
	t->relname = pstrdup(RelationGetRelationName(rel));
	PUSH_LOAD_CONTEXT(t, errcallback);

	if (XactReadOnly && !rel->rd_islocaltemp)
		PreventCommandIfReadOnly("csvpipe load");
	PreventCommandIfParallelMode("csvpipe load");

	t->attnums = target_attnums(rel, attnames, &t->nfields);
	rtable = make_range_table(t, &perminfos);
	if (check_enable_rls(relid, InvalidOid, false) == RLS_ENABLED)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("csvpipe load not supported with row-level security"),
				 errdetail("Row-level security applies to table \"%s\" for the current user.",
						   t->relname),
				 errhint("Use INSERT ... SELECT FROM csvpipe.read(...) instead.")));
	check_relkind(rel);

	t->input_desc = make_input_desc(t);
	prepare_defaults(t);

	/* as CopyFrom */
	t->mycid = GetCurrentCommandId(true);
	if (RELKIND_HAS_STORAGE(rel->rd_rel->relkind) &&
		(rel->rd_createSubid != InvalidSubTransactionId ||
#if PG_VERSION_NUM >= 160000
		 rel->rd_firstRelfilelocatorSubid != InvalidSubTransactionId))
#else
		 rel->rd_firstRelfilenodeSubid != InvalidSubTransactionId))
#endif
		t->ti_options |= TABLE_INSERT_SKIP_FSM;
	if (csv_load_append_only)
		t->ti_options |= TABLE_INSERT_SKIP_FSM;
	if (flags & CSV_LOAD_FREEZE)
	{
		check_freeze(rel);
		t->ti_options |= TABLE_INSERT_FROZEN;
	}

	estate = t->estate = CreateExecutorState();
	estate->es_output_cid = t->mycid;
#if PG_VERSION_NUM >= 160000
	ExecInitRangeTable(estate, rtable, perminfos);
#else
	ExecInitRangeTable(estate, rtable);
#endif
	rri = t->target_rri = makeNode(ResultRelInfo);
	ExecInitResultRelation(estate, rri, 1);
#if PG_VERSION_NUM >= 170000
	CheckValidResultRel(rri, CMD_INSERT, NIL);
#else
	CheckValidResultRel(rri, CMD_INSERT);
#endif
	ExecOpenIndices(rri, false);

	/* a ModifyTableState for FDWs and tuple routing */
	mtstate = t->mtstate = makeNode(ModifyTableState);
	mtstate->ps.plan = NULL;
	mtstate->ps.state = estate;
	mtstate->operation = CMD_INSERT;
	mtstate->mt_nrels = 1;
	mtstate->resultRelInfo = rri;
	mtstate->rootResultRelInfo = rri;

	if (rri->ri_FdwRoutine != NULL &&
		rri->ri_FdwRoutine->BeginForeignInsert != NULL)
		rri->ri_FdwRoutine->BeginForeignInsert(mtstate, rri);

	AfterTriggerBeginQuery();

	t->transition_capture = mtstate->mt_transition_capture =
		MakeTransitionCaptureState(rel->trigdesc, relid, CMD_INSERT);

	if (rel->rd_rel->relkind == RELKIND_PARTITIONED_TABLE)
		t->proute = ExecSetupPartitionTupleRouting(estate, rel);

	trigdesc = rri->ri_TrigDesc;
	t->has_br_trig = (trigdesc && trigdesc->trig_insert_before_row);
	t->has_ir_trig = (trigdesc && trigdesc->trig_insert_instead_row);
	if (t->has_br_trig || t->has_ir_trig)
		t->method = LOAD_SINGLE;
	else if (t->proute != NULL && trigdesc && trigdesc->trig_insert_new_table)
		t->method = LOAD_SINGLE;
	else if (t->volatile_defexprs)
		t->method = LOAD_SINGLE;
	else if (rri->ri_FdwRoutine != NULL && foreign_batch_size(rri) <= 1)
		t->method = LOAD_SINGLE;
	else if (t->proute != NULL)
		t->method = LOAD_MULTI_CONDITIONAL;
	else
	{
		t->method = LOAD_MULTI;
		t->use_multi = true;
		t->cur_buffer = buffer_create(t, rri);
	}
	t->prev_rri = (t->proute == NULL) ? rri : NULL;

	/* rows are read into the target's format first (and routed from it) */
	if (t->method != LOAD_MULTI)
	{
		t->singleslot = table_slot_create(rel, &estate->es_tupleTable);
		t->bistate = bulk_insert_state_create();
	}
	t->batch_cxt = AllocSetContextCreate(cxt, "csvpipe load batch",
										 ALLOCSET_DEFAULT_SIZES);

	/* BEFORE STATEMENT triggers, once, as COPY fires them */
	MemoryContextSwitchTo(estate->es_query_cxt);
	if (t->stmt_triggers)
		ExecBSInsertTriggers(estate, rri);

	POP_LOAD_CONTEXT(errcallback);
	MemoryContextSwitchTo(oldcxt);
	return t;
}

TupleDesc
csv_load_input_desc(CsvLoadTarget *t)
{
	return t->input_desc;
}

/*
 * The row in values/nulls (file columns) plus defaults, as a virtual tuple
 * in the target's format.
 */
static void
fill_slot(CsvLoadTarget *t, TupleTableSlot *slot, Datum *values, bool *nulls)
{
	ExprContext *econtext = GetPerTupleExprContext(t->estate);
	int			natts = slot->tts_tupleDescriptor->natts;
	Datum	   *v = slot->tts_values;
	bool	   *n = slot->tts_isnull;

	ExecClearTuple(slot);
	memset(n, true, sizeof(bool) * natts);
	for (int i = 0; i < t->nfields; i++)
	{
		int			a = t->attnums[i] - 1;

		v[a] = values[i];
		n[a] = nulls[i];
	}
	for (int i = 0; i < t->ndefaults; i++)
	{
		int			a = t->defattnums[i] - 1;

		v[a] = ExecEvalExpr(t->defexprs[i], econtext, &n[a]);
	}
	ExecStoreVirtualTuple(slot);
}

void
csv_load_row(CsvLoadTarget *t, Datum *values, bool *nulls, int64 line_no)
{
	EState	   *estate = t->estate;
	ResultRelInfo *rri = t->target_rri;
	TupleTableSlot *myslot;
	MemoryContext oldcxt;
	ErrorContextCallback errcallback;

	CHECK_FOR_INTERRUPTS();

	t->err_first = t->err_last = line_no;
	PUSH_LOAD_CONTEXT(t, errcallback);
	oldcxt = MemoryContextSwitchTo(estate->es_query_cxt);

	ResetPerTupleExprContext(estate);
	if (t->method == LOAD_MULTI)
		myslot = buffer_next_slot(t, t->cur_buffer);
	else
		myslot = t->singleslot;

	/* defaults are evaluated in per-tuple memory */
	MemoryContextSwitchTo(GetPerTupleMemoryContext(estate));
	fill_slot(t, myslot, values, nulls);
	MemoryContextSwitchTo(estate->es_query_cxt);
	/* constraints may refer to tableoid */
	myslot->tts_tableOid = RelationGetRelid(rri->ri_RelationDesc);

	if (t->proute != NULL)
	{
		TupleConversionMap *map;

		rri = ExecFindPartition(t->mtstate, t->target_rri, t->proute,
								myslot, estate);
		if (rri != t->prev_rri)
		{
			TriggerDesc *trigdesc = rri->ri_TrigDesc;

			t->has_br_trig = (trigdesc && trigdesc->trig_insert_before_row);
			t->has_ir_trig = (trigdesc && trigdesc->trig_insert_instead_row);
			t->use_multi = (t->method == LOAD_MULTI_CONDITIONAL &&
							!t->has_br_trig && !t->has_ir_trig &&
							(rri->ri_FdwRoutine == NULL ||
							 foreign_batch_size(rri) > 1));
			if (t->use_multi)
				t->cur_buffer = buffer_for(t, rri);
			else
			{
				t->cur_buffer = NULL;
				/* rows before this one must be visible to its triggers */
				if (t->buffered_tuples > 0 || t->foreign_pending > 0)
					flush_all(t, rri, true);
			}
			ReleaseBulkInsertStatePin(t->bistate);
			t->prev_rri = rri;
		}

		/* a BEFORE trigger may change the row: capture what is inserted */
		if (t->transition_capture != NULL)
			t->transition_capture->tcs_original_insert_tuple =
				!t->has_br_trig ? myslot : NULL;

		map = root_to_partition_map(rri, estate);
		if (!t->use_multi)
		{
			if (map != NULL)
				myslot = execute_attr_map_slot(map->attrMap, myslot,
											   rri->ri_PartitionTupleSlot);
		}
		else
		{
			TupleTableSlot *batchslot = buffer_next_slot(t, t->cur_buffer);

			if (map != NULL)
				myslot = execute_attr_map_slot(map->attrMap, myslot, batchslot);
			else
			{
				ExecCopySlot(batchslot, myslot);
				myslot = batchslot;
			}
		}
		myslot->tts_tableOid = RelationGetRelid(rri->ri_RelationDesc);
	}

	if (t->has_br_trig && !ExecBRInsertTriggers(estate, rri, myslot))
		goto done;				/* skipped by the trigger */

	if (t->has_ir_trig)
	{
		ExecIRInsertTriggers(estate, rri, myslot);
		t->processed++;
		goto done;
	}

	if (rri->ri_RelationDesc->rd_att->constr &&
		rri->ri_RelationDesc->rd_att->constr->has_generated_stored)
		ExecComputeStoredGenerated(rri, estate, myslot, CMD_INSERT);
	if (rri->ri_FdwRoutine == NULL && rri->ri_RelationDesc->rd_att->constr)
		ExecConstraints(rri, myslot, estate);
	/* routed rows fit their partition unless a BEFORE trigger changed them */
	if (rri->ri_RelationDesc->rd_rel->relispartition &&
		(t->proute == NULL || t->has_br_trig))
		ExecPartitionCheck(rri, myslot, estate, true);

	/* chunked load: never again to a server that has this chunk (shards.c) */
	if (t->shards != NULL && rri->ri_FdwRoutine != NULL &&
		!csv_shards_tally_row(t->shards, rri))
		goto done;

	if (t->use_multi)
	{
		/* the slot may point into per-tuple and caller memory: copy */
		ExecMaterializeSlot(myslot);
		buffer_store(t, t->cur_buffer, myslot, line_no);
		if (t->cur_buffer->foreign)
		{
			/* a full batch goes at once, in one round trip */
			if (t->cur_buffer->nused >= t->cur_buffer->capacity)
				buffer_flush(t, t->cur_buffer);
		}
		else if (t->buffered_tuples >= LOAD_MAX_BUFFERED_TUPLES ||
				 t->buffered_bytes >= LOAD_MAX_BUFFERED_BYTES)
			flush_all(t, rri, false);
	}
	else
	{
		List	   *recheck = NIL;

		if (rri->ri_FdwRoutine != NULL)
		{
			myslot = rri->ri_FdwRoutine->ExecForeignInsert(estate, rri,
														   myslot, NULL);
			if (myslot == NULL)
				goto done;		/* "do nothing" */
			myslot->tts_tableOid = RelationGetRelid(rri->ri_RelationDesc);
		}
		else
		{
			table_tuple_insert(rri->ri_RelationDesc, myslot, t->mycid,
							   t->ti_options, t->bistate);
			if (rri->ri_NumIndices > 0)
				recheck = insert_index_tuples(rri, myslot, estate);
		}
		ExecARInsertTriggers(estate, rri, myslot, recheck,
							 t->transition_capture);
		collect_new_row(t, rri, myslot);
		list_free(recheck);
		t->processed++;
	}

done:
	MemoryContextSwitchTo(oldcxt);
	POP_LOAD_CONTEXT(errcallback);
	t->err_first = t->err_last = 0;
}

void
csv_load_flush(CsvLoadTarget *t)
{
	ErrorContextCallback errcallback;
	MemoryContext oldcxt;

	if (t->buffered_tuples == 0 && t->foreign_pending == 0)
		return;
	PUSH_LOAD_CONTEXT(t, errcallback);
	oldcxt = MemoryContextSwitchTo(t->estate->es_query_cxt);
	flush_all(t, t->prev_rri, true);
	MemoryContextSwitchTo(oldcxt);
	POP_LOAD_CONTEXT(errcallback);
}

bool
csv_load_has_new_table(CsvLoadTarget *t)
{
	return t->transition_capture != NULL &&
		t->transition_capture->tcs_insert_new_table;
}

void
csv_load_collect_new_rows(CsvLoadTarget *t, List **collect, MemoryContext cxt)
{
	if (!csv_load_has_new_table(t))
		return;
	t->collect = collect;
	t->collect_cxt = cxt;
}

/*
 * Rows inserted through another target (a skip-mode batch, committed in its
 * subtransaction) join this target's transition table, so its AFTER
 * STATEMENT triggers see them as they would see rows inserted here.  A
 * ResultRelInfo without triggers: only the transition table gets the row,
 * no AFTER ROW event is queued a second time.
 */
void
csv_load_add_new_rows(CsvLoadTarget *t, List *rows)
{
	ResultRelInfo rri;
	TupleTableSlot *slot;
	MemoryContext oldcxt;
	ListCell   *lc;

	if (rows == NIL || !csv_load_has_new_table(t))
		return;
	oldcxt = MemoryContextSwitchTo(t->estate->es_query_cxt);
	rri = *t->target_rri;
	rri.ri_TrigDesc = NULL;
	rri.ri_RootResultRelInfo = NULL;
	rri.ri_ChildToRootMap = NULL;
	rri.ri_ChildToRootMapValid = true;
	slot = MakeSingleTupleTableSlot(RelationGetDescr(t->rel), &TTSOpsMinimalTuple);
	t->transition_capture->tcs_original_insert_tuple = NULL;
	foreach(lc, rows)
	{
		ExecStoreMinimalTuple((MinimalTuple) lfirst(lc), slot, false);
		ExecARInsertTriggers(t->estate, &rri, slot, NIL, t->transition_capture);
		ExecClearTuple(slot);
	}
	ExecDropSingleTupleTableSlot(slot);
	MemoryContextSwitchTo(oldcxt);
}

uint64
csv_load_end(CsvLoadTarget *t)
{
	EState	   *estate = t->estate;
	ResultRelInfo *rri = t->target_rri;
	ErrorContextCallback errcallback;
	MemoryContext oldcxt;
	ListCell   *lc;
	uint64		processed;

	csv_load_flush(t);

	t->err_first = t->err_last = 0;
	PUSH_LOAD_CONTEXT(t, errcallback);
	oldcxt = MemoryContextSwitchTo(estate->es_query_cxt);

	if (t->bistate != NULL)
		bulk_insert_state_free(t->bistate);
	t->bistate = NULL;

	/* AFTER STATEMENT triggers, then every queued AFTER trigger */
	if (t->stmt_triggers)
		ExecASInsertTriggers(estate, rri, t->transition_capture);
	AfterTriggerEndQuery(estate);

	ExecResetTupleTable(estate->es_tupleTable, false);
	if (rri->ri_FdwRoutine != NULL &&
		rri->ri_FdwRoutine->EndForeignInsert != NULL)
		rri->ri_FdwRoutine->EndForeignInsert(estate, rri);
	foreach(lc, t->buffers)
		buffer_cleanup(t, (LoadBuffer *) lfirst(lc));
	list_free(t->buffers);
	t->buffers = NIL;
	if (t->proute != NULL)
		ExecCleanupTupleRouting(t->mtstate, t->proute);
	ExecCloseResultRelations(estate);
	ExecCloseRangeTableRelations(estate);

	POP_LOAD_CONTEXT(errcallback);
	MemoryContextSwitchTo(oldcxt);

	FreeExecutorState(estate);
	table_close(t->rel, NoLock);	/* the lock is kept until commit */
	processed = t->processed;
	csv_shards_tally_end(t->shards);
	MemoryContextDelete(t->cxt);

	/* as after a COPY statement, later commands see the rows */
	CommandCounterIncrement();
	return processed;
}

/* ---- csvpipe.load_serial ---- */

/*
 * csvpipe.load_serial(path, target, columns, <CSV options>) RETURNS bigint
 *
 * Loads the file into target in the caller's transaction, in this process.
 */
Datum
csvpipe_load_serial(PG_FUNCTION_ARGS)
{
	const char *funcname = "csvpipe.load_serial";
	CsvOptions	opts;
	CsvDialect	dialect;
	CsvErrorPosition errpos = {0};
	ErrorContextCallback errcallback;
	CsvReader  *reader;
	CsvLoadTarget *target;
	CsvConverter *conv;
	TupleDesc	desc;
	List	   *attnames;
	Datum	   *values;
	bool	   *nulls;
	MemoryContext row_cxt;
	MemoryContext oldcxt;
	uint64		nrows;

	csv_options_from_fcinfo(&opts, fcinfo, CSV_FN_LOAD_SERIAL, funcname);
	if (opts.path == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("%s: path must not be NULL", funcname)));
	if (!OidIsValid(opts.relid))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("%s: target must not be NULL", funcname)));
	attnames = opts.columns;
	dialect = opts.dialect;
	/* match => 'name': the header names the columns (match.c) */
	if (opts.match_name)
		attnames = csv_match_target(opts.relid, opts.path, funcname, &dialect,
									opts.extra_ignore);

	errpos.funcname = funcname;
	errpos.path = opts.path;

	/* the file first: reading it is the privilege COPY checks first, too */
	errcallback.callback = csv_error_context_callback;
	errcallback.arg = &errpos;
	errcallback.previous = error_context_stack;
	error_context_stack = &errcallback;
	reader = csv_reader_open(errpos.path, &dialect, &errpos);
	error_context_stack = errcallback.previous;

	/* a Citus table is refused before anything is inserted (target.c) */
	csv_target_check(opts.relid, false, funcname);
	target = csv_load_begin(opts.relid, attnames);
	desc = csv_load_input_desc(target);

	error_context_stack = &errcallback;
	csv_dialect_set_columns(&dialect, desc->natts);
	conv = csv_converter_create(desc, &dialect, &errpos, NULL);
	if (dialect.header == CSV_HEADER_MATCH)
		csv_converter_check_header(conv, csv_reader_header(reader));
	error_context_stack = errcallback.previous;

	values = palloc(sizeof(Datum) * Max(desc->natts, 1));
	nulls = palloc(sizeof(bool) * Max(desc->natts, 1));
	row_cxt = AllocSetContextCreate(CurrentMemoryContext, "csvpipe load row",
									ALLOCSET_DEFAULT_SIZES);
	for (;;)
	{
		CsvRecord	rec;
		bool		found;

		MemoryContextReset(row_cxt);
		oldcxt = MemoryContextSwitchTo(row_cxt);

		/* reading and converting: errors name the file, line and column */
		error_context_stack = &errcallback;
		found = csv_reader_next(reader, &rec);
		if (found)
			csv_converter_row(conv, &rec, values, nulls);
		error_context_stack = errcallback.previous;

		/* inserting: errors name the target and line (load.c) */
		if (found)
			csv_load_row(target, values, nulls, rec.line_no);
		MemoryContextSwitchTo(oldcxt);
		if (!found)
			break;
	}
	csv_reader_close(reader);
	MemoryContextDelete(row_cxt);

	nrows = csv_load_end(target);
	PG_RETURN_INT64((int64) nrows);
}
