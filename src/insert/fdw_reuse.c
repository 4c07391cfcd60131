/*-------------------------------------------------------------------------
 *
 * fdw_reuse.c
 *		A chunked load's worker keeps postgres_fdw's prepared batch INSERTs
 *		from one chunk transaction to the next.
 *
 * Each chunk is a transaction of its own, with an executor state of its
 * own (load.c), so postgres_fdw prepares its batch INSERT of batch_size
 * rows anew on every server for every chunk, and a statement for the
 * chunk's last, shorter batch too; then the server parses and plans an
 * INSERT of batch_size times the columns of parameters -- about as much
 * remote work per chunk as ten batches' inserts.  INSERT ... SELECT
 * prepares once per statement.
 *
 * A prepared statement belongs to the remote session, not to its
 * transaction, and postgres_fdw keeps the session open across
 * transactions.  So the worker keeps, per foreign table and batch size, a
 * result relation of its own with postgres_fdw's modify state, opened
 * once (BeginForeignInsert, in a memory context and with a relcache pin
 * that outlive transactions), and sends the chunk's batches through it:
 * the statement is prepared on its first execution and executed again by
 * every later chunk.  Batches are full (batch_size rows) or a power of two
 * rows (a chunk's last rows go as 512 + 256 + ...), so a table has at most
 * a dozen statements, each prepared once.  The chunk's own result relation
 * still routes the rows and opens postgres_fdw's connection in the chunk's
 * (sub)transaction, which starts the remote transaction and its
 * savepoints: a kept statement runs in the chunk's remote transaction, so
 * its rows commit or roll back with the chunk, exactly as before.
 *
 * A kept statement is only used while it is certainly still there, on the
 * connection it was prepared on:
 *	- any transaction abort drops them all (postgres_fdw may then
 *	  DEALLOCATE ALL, or close the connection), and so does the end of a
 *	  transaction in which a subtransaction aborted (postgres_fdw then
 *	  runs DEALLOCATE ALL even at COMMIT); such a transaction uses none
 *	  from the abort on;
 *	- so does any invalidation of a kept foreign table, or of a foreign
 *	  server, user mapping or foreign table's options (postgres_fdw closes
 *	  connections whose server or user mapping changed; a table's options
 *	  change what to insert where);
 *	- and before every batch, the connection postgres_fdw now has for the
 *	  table's user mapping must be the kept one (the same PGconn and the
 *	  same remote backend pid): postgres_fdw reconnects silently when it
 *	  finds its connection broken at the start of a transaction.
 * A dropped statement is not DEALLOCATEd (it may be gone already, and the
 * remote transaction may be failed): it stays in the remote session until
 * the worker exits, a few at most per failure.
 *
 * Per-process state (a worker's); no shared memory, no locks of its own:
 * the chunk's routing holds the foreign table's lock whenever a kept
 * statement is used.
 *
 *-------------------------------------------------------------------------
 */
#include "fdw_reuse.h"

#include "access/xact.h"
#include "executor/executor.h"
#include "fmgr.h"
#include "foreign/fdwapi.h"
#include "foreign/foreign.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/relcache.h"
#include "utils/resowner.h"
#include "utils/syscache.h"

/* batch statements kept per foreign table: batch_size and powers of two */
#define MAX_KEPT_SIZES	16

typedef struct KeptStatement
{
	int			nrows;
	EState	   *estate;
	ResultRelInfo *rri;			/* its ri_FdwState: postgres_fdw's */
} KeptStatement;

typedef struct KeptTable
{
	Oid			relid;
	Oid			serverid;
	Oid			userid;
	uint32		ft_hash;		/* its pg_foreign_table syscache hash */
	Relation	rel;			/* pinned by kept_owner */
	void	   *conn;			/* the connection the statements are on */
	int			backend_pid;	/* ... and its remote backend */
	int			nkept;
	KeptStatement kept[MAX_KEPT_SIZES];
} KeptTable;

/* libpq and postgres_fdw functions, found in postgres_fdw's library */
typedef void *(*fdw_get_connection_fn) (UserMapping *user, bool will_prep_stmt,
										void **state);
typedef void (*fdw_release_connection_fn) (void *conn);
typedef int (*pq_backend_pid_fn) (const void *conn);

static fdw_get_connection_fn fdw_get_connection = NULL;
static fdw_release_connection_fn fdw_release_connection = NULL;
static pq_backend_pid_fn pq_backend_pid = NULL;

static bool reuse_enabled = false;
static bool reuse_stale = false;	/* drop them all before the next use */
static bool xact_tainted = false;	/* a subtransaction aborted: see above */
static MemoryContext kept_cxt = NULL;
static ResourceOwner kept_owner = NULL;
static List *kept_tables = NIL;	/* of KeptTable, in kept_cxt */
static Oid	postgres_fdw_handler = InvalidOid;

static void
reuse_xact_callback(XactEvent event, void *arg)
{
	switch (event)
	{
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PARALLEL_ABORT:
			reuse_stale = true;
			xact_tainted = false;
			break;
		case XACT_EVENT_COMMIT:
		case XACT_EVENT_PARALLEL_COMMIT:
		case XACT_EVENT_PREPARE:
			/* postgres_fdw's DEALLOCATE ALL at the end of such a transaction */
			if (xact_tainted)
				reuse_stale = true;
			xact_tainted = false;
			break;
		default:
			break;
	}
}

static void
reuse_subxact_callback(SubXactEvent event, SubTransactionId mySubid,
					   SubTransactionId parentSubid, void *arg)
{
	if (event == SUBXACT_EVENT_ABORT_SUB)
		xact_tainted = true;
}

static void
reuse_relcache_callback(Datum arg, Oid relid)
{
	ListCell   *lc;

	if (!OidIsValid(relid))
	{
		reuse_stale = true;
		return;
	}
	foreach(lc, kept_tables)
		if (((KeptTable *) lfirst(lc))->relid == relid)
			reuse_stale = true;
}

/* a foreign server, user mapping or wrapper changed: any may be ours */
static void
reuse_syscache_callback(Datum arg, int cacheid, uint32 hashvalue)
{
	reuse_stale = true;
}

/* a foreign table's options changed: ours? */
static void
reuse_foreign_table_callback(Datum arg, int cacheid, uint32 hashvalue)
{
	ListCell   *lc;

	foreach(lc, kept_tables)
		if (hashvalue == 0 || ((KeptTable *) lfirst(lc))->ft_hash == hashvalue)
			reuse_stale = true;
}

void
csv_fdw_reuse_enable(void)
{
	const char *lib = "$libdir/postgres_fdw";

	if (reuse_enabled)
		return;
	fdw_get_connection = (fdw_get_connection_fn)
		load_external_function(lib, "GetConnection", true, NULL);
	fdw_release_connection = (fdw_release_connection_fn)
		load_external_function(lib, "ReleaseConnection", true, NULL);
	/* libpq's, found through postgres_fdw's library, which links it */
	pq_backend_pid = (pq_backend_pid_fn)
		load_external_function(lib, "PQbackendPID", true, NULL);
	kept_cxt = AllocSetContextCreate(TopMemoryContext, "csvpipe kept fdw batches",
									 ALLOCSET_DEFAULT_SIZES);
	kept_owner = ResourceOwnerCreate(NULL, "csvpipe kept fdw batches");
	RegisterXactCallback(reuse_xact_callback, NULL);
	RegisterSubXactCallback(reuse_subxact_callback, NULL);
	CacheRegisterRelcacheCallback(reuse_relcache_callback, (Datum) 0);
	CacheRegisterSyscacheCallback(FOREIGNSERVEROID, reuse_syscache_callback, (Datum) 0);
	CacheRegisterSyscacheCallback(USERMAPPINGOID, reuse_syscache_callback, (Datum) 0);
	CacheRegisterSyscacheCallback(FOREIGNTABLEREL, reuse_foreign_table_callback, (Datum) 0);
	CacheRegisterSyscacheCallback(FOREIGNDATAWRAPPEROID, reuse_syscache_callback, (Datum) 0);
	reuse_enabled = true;
}

/* forget every kept statement (see the header comment: never DEALLOCATEd) */
static void
drop_kept(void)
{
	ResourceOwner save = CurrentResourceOwner;
	ListCell   *lc;

	CurrentResourceOwner = kept_owner;
	foreach(lc, kept_tables)
		RelationClose(((KeptTable *) lfirst(lc))->rel);
	CurrentResourceOwner = save;
	kept_tables = NIL;
	MemoryContextReset(kept_cxt);
	reuse_stale = false;
}

/* the connection postgres_fdw has now for kt's user mapping, and its pid */
static void *
current_connection(KeptTable *kt, int *pid)
{
	UserMapping *um = GetUserMapping(kt->userid, kt->serverid);
	void	   *state = NULL;
	void	   *conn = fdw_get_connection(um, false, &state);

	*pid = pq_backend_pid(conn);
	fdw_release_connection(conn);
	return conn;
}

static bool
is_postgres_fdw_table(Oid relid, Oid *serverid)
{
	ForeignTable *ft = GetForeignTable(relid);
	ForeignServer *srv = GetForeignServer(ft->serverid);
	ForeignDataWrapper *fdw = GetForeignDataWrapper(srv->fdwid);

	*serverid = ft->serverid;
	if (!OidIsValid(fdw->fdwhandler))
		return false;
	if (OidIsValid(postgres_fdw_handler))
		return fdw->fdwhandler == postgres_fdw_handler;
	if (strcmp(get_func_name(fdw->fdwhandler), "postgres_fdw_handler") != 0)
		return false;
	postgres_fdw_handler = fdw->fdwhandler;
	return true;
}

static KeptTable *
kept_table(ResultRelInfo *rri)
{
	Oid			relid = RelationGetRelid(rri->ri_RelationDesc);
	Oid			serverid;
	KeptTable  *kt;
	ListCell   *lc;
	ResourceOwner save;
	MemoryContext save_cxt;
	int			pid;

	foreach(lc, kept_tables)
	{
		kt = (KeptTable *) lfirst(lc);
		if (kt->relid == relid && kt->userid == GetUserId())
			return kt;
	}
	if (!is_postgres_fdw_table(relid, &serverid))
		return NULL;
	kt = MemoryContextAllocZero(kept_cxt, sizeof(KeptTable));
	kt->relid = relid;
	kt->serverid = serverid;
	kt->userid = GetUserId();
	kt->ft_hash = GetSysCacheHashValue1(FOREIGNTABLEREL, ObjectIdGetDatum(relid));
	/* the table is locked: the chunk's routing opened it */
	save = CurrentResourceOwner;
	CurrentResourceOwner = kept_owner;
	kt->rel = RelationIdGetRelation(relid);
	CurrentResourceOwner = save;
	kt->conn = current_connection(kt, &pid);
	kt->backend_pid = pid;
	save_cxt = MemoryContextSwitchTo(kept_cxt);
	kept_tables = lappend(kept_tables, kt);
	MemoryContextSwitchTo(save_cxt);
	return kt;
}

/* postgres_fdw's modify state for kt, prepared (on first use) for n rows */
static KeptStatement *
kept_statement(KeptTable *kt, int n)
{
	KeptStatement *ks;
	MemoryContext old;
	RangeTblEntry *rte;
	ModifyTableState *mtstate;

	for (int i = 0; i < kt->nkept; i++)
		if (kt->kept[i].nrows == n)
			return &kt->kept[i];
	if (kt->nkept >= MAX_KEPT_SIZES)
		return NULL;

	old = MemoryContextSwitchTo(kept_cxt);
	ks = &kt->kept[kt->nkept];
	ks->nrows = n;
	ks->estate = CreateExecutorState();
	MemoryContextSwitchTo(ks->estate->es_query_cxt);

	/* the foreign table itself as the statement's only relation */
	rte = makeNode(RangeTblEntry);
	rte->rtekind = RTE_RELATION;
	rte->relid = kt->relid;
	rte->relkind = RELKIND_FOREIGN_TABLE;
	rte->rellockmode = RowExclusiveLock;
	rte->requiredPerms = ACL_INSERT;
	ExecInitRangeTable(ks->estate, list_make1(rte));

	ks->rri = makeNode(ResultRelInfo);
	InitResultRelInfo(ks->rri, kt->rel, 1, NULL, 0);
	mtstate = makeNode(ModifyTableState);
	mtstate->ps.state = ks->estate;
	mtstate->operation = CMD_INSERT;
	mtstate->resultRelInfo = ks->rri;
	mtstate->rootResultRelInfo = ks->rri;
	mtstate->mt_nrels = 1;
	ks->rri->ri_FdwRoutine->BeginForeignInsert(mtstate, ks->rri);
	MemoryContextSwitchTo(old);
	kt->nkept++;
	return ks;
}

bool
csv_fdw_reuse_active(ResultRelInfo *rri, int capacity)
{
	if (!reuse_enabled || capacity <= 1 || rri->ri_FdwRoutine == NULL ||
		rri->ri_FdwRoutine->ExecForeignBatchInsert == NULL ||
		rri->ri_FdwRoutine->BeginForeignInsert == NULL ||
		rri->ri_WithCheckOptions != NIL || rri->ri_returningList != NIL ||
		(rri->ri_TrigDesc != NULL && rri->ri_TrigDesc->trig_insert_after_row) ||
		xact_tainted)
		return false;
	if (reuse_stale)
		drop_kept();
	return kept_table(rri) != NULL;
}

TupleTableSlot **
csv_fdw_reuse_insert(ResultRelInfo *rri, TupleTableSlot **slots, int n, int *inserted)
{
	KeptTable  *kt;
	KeptStatement *ks;
	MemoryContext old;
	TupleTableSlot **result;
	void	   *conn;
	int			pid;

	if (reuse_stale)
		drop_kept();
	kt = kept_table(rri);
	if (kt == NULL)
		elog(ERROR, "csvpipe: foreign table %u is not a postgres_fdw table", RelationGetRelid(rri->ri_RelationDesc));
	/* a statement is only good on the session it was prepared in */
	conn = current_connection(kt, &pid);
	if (conn != kt->conn || pid != kt->backend_pid)
	{
		drop_kept();
		kt = kept_table(rri);
	}
	ks = kept_statement(kt, n);
	if (ks == NULL)
		elog(ERROR, "csvpipe: too many batch sizes for foreign table %u", kt->relid);

	/* postgres_fdw keeps its statement's name and text: in the kept context */
	old = MemoryContextSwitchTo(ks->estate->es_query_cxt);
	*inserted = n;
	result = ks->rri->ri_FdwRoutine->ExecForeignBatchInsert(ks->estate, ks->rri, slots,
															NULL, inserted);
	MemoryContextSwitchTo(old);
	return result;
}
