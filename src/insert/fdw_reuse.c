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
 * connection it was prepared on, for the table as it is now:
 *	- any transaction abort drops them all (postgres_fdw may then
 *	  DEALLOCATE ALL, or close the connection), and so does the end of a
 *	  transaction in which a subtransaction aborted (postgres_fdw then
 *	  runs DEALLOCATE ALL even at COMMIT); such a transaction uses none
 *	  from the abort on;
 *	- so does an invalidation of a kept foreign table, of its server or its
 *	  user mapping, or of any foreign-data wrapper (postgres_fdw closes
 *	  connections whose server or user mapping changed; a table's options
 *	  change what to insert where);
 *	- before every batch, the connection postgres_fdw now has for the
 *	  table's user mapping must be the kept one (the same PGconn and the
 *	  same remote backend pid): postgres_fdw reconnects silently when it
 *	  finds its connection broken at the start of a transaction;
 *	- and the remote table must still be the one the statements were
 *	  prepared for.  A prepared statement keeps the parameter types the
 *	  server inferred when it was prepared: after an ALTER TABLE there
 *	  between two chunks, the server plans it again but casts the old
 *	  types to the new ones (a boolean 't' stored in a text column as
 *	  'true', a numeric rounded into an integer), where a statement
 *	  prepared anew would read the text as the new type.  So once a chunk
 *	  has run a kept statement on a table -- from then on the chunk's
 *	  remote transaction holds the table's lock, and the table cannot
 *	  change until the chunk ends -- it asks the server for the table's
 *	  columns (names, types and typmods, as the server plans a query of
 *	  its row type now), once per chunk and table, and compares them with what they were when the statements were
 *	  prepared; when they differ the chunk fails with a serialization
 *	  failure (40001), which the worker retries, with statements prepared
 *	  anew.
 * Statements dropped after an abort are not DEALLOCATEd (they may be gone
 * already, and the remote transaction may be failed); the others are, when
 * the connection is still theirs, so a remote session holds one set of
 * them, and at most a few more per failure.
 *
 * Per-process state (a worker's); no shared memory, no locks of its own:
 * the chunk's routing holds the foreign table's lock whenever a kept
 * statement is used.
 *
 *-------------------------------------------------------------------------
 */
#include "fdw_reuse.h"
#include "fdw_calls.h"

#include "access/xact.h"
#include "commands/defrem.h"
#include "executor/executor.h"
#include "fmgr.h"
#include "foreign/fdwapi.h"
#include "foreign/foreign.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "utils/builtins.h"
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
	/* syscache hashes of its pg_foreign_table, server and user mapping rows */
	uint32		ft_hash;
	uint32		server_hash;
	uint32		um_hash;
	Relation	rel;			/* pinned by kept_owner */
	char	   *columns_query;	/* shows the remote table's columns */
	char	   *columns;		/* ... as they were when prepared, or NULL */
	uint64		checked_xact;	/* xact_count when they were last checked */
	void	   *conn;			/* the connection the statements are on */
	int			backend_pid;	/* ... and its remote backend */
	int			nkept;
	KeptStatement kept[MAX_KEPT_SIZES];
} KeptTable;

static const CsvFdwCalls *fdw = NULL;	/* fdw_calls.c */
static bool reuse_enabled = false;
static bool reuse_stale = false;	/* drop them all before the next use */
static bool reuse_gone = false;	/* ... and they may be gone: no DEALLOCATE */
static bool xact_tainted = false;	/* a subtransaction aborted: see above */
static uint64 xact_count = 1;	/* transactions ended so far, plus one */
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
			reuse_stale = reuse_gone = true;
			xact_tainted = false;
			xact_count++;
			break;
		case XACT_EVENT_COMMIT:
		case XACT_EVENT_PARALLEL_COMMIT:
		case XACT_EVENT_PREPARE:
			/* postgres_fdw's DEALLOCATE ALL at the end of such a transaction */
			if (xact_tainted)
				reuse_stale = reuse_gone = true;
			xact_tainted = false;
			xact_count++;
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

/* a kept foreign table changed (or every relation) */
static void
reuse_relcache_callback(Datum arg, Oid relid)
{
	ListCell   *lc;

	foreach(lc, kept_tables)
		if (!OidIsValid(relid) || ((KeptTable *) lfirst(lc))->relid == relid)
			reuse_stale = true;
}

/* a foreign table's options, a server or a user mapping changed: ours? */
static void
reuse_syscache_callback(Datum arg, int cacheid, uint32 hashvalue)
{
	ListCell   *lc;

	foreach(lc, kept_tables)
	{
		KeptTable  *kt = (KeptTable *) lfirst(lc);
		uint32		ours = cacheid == FOREIGNTABLEREL ? kt->ft_hash :
			cacheid == FOREIGNSERVEROID ? kt->server_hash : kt->um_hash;

		if (hashvalue == 0 || hashvalue == ours)
			reuse_stale = true;
	}
}

/* a foreign-data wrapper changed: rare, and it may be postgres_fdw */
static void
reuse_fdw_callback(Datum arg, int cacheid, uint32 hashvalue)
{
	if (kept_tables != NIL)
		reuse_stale = true;
}

void
csv_fdw_reuse_enable(void)
{
	if (reuse_enabled)
		return;
	fdw = csv_fdw_calls();
	kept_cxt = AllocSetContextCreate(TopMemoryContext, "csvpipe kept fdw batches",
									 ALLOCSET_DEFAULT_SIZES);
	kept_owner = ResourceOwnerCreate(NULL, "csvpipe kept fdw batches");
	RegisterXactCallback(reuse_xact_callback, NULL);
	RegisterSubXactCallback(reuse_subxact_callback, NULL);
	CacheRegisterRelcacheCallback(reuse_relcache_callback, (Datum) 0);
	CacheRegisterSyscacheCallback(FOREIGNTABLEREL, reuse_syscache_callback, (Datum) 0);
	CacheRegisterSyscacheCallback(FOREIGNSERVEROID, reuse_syscache_callback, (Datum) 0);
	CacheRegisterSyscacheCallback(USERMAPPINGOID, reuse_syscache_callback, (Datum) 0);
	CacheRegisterSyscacheCallback(FOREIGNDATAWRAPPEROID, reuse_fdw_callback, (Datum) 0);
	reuse_enabled = true;
}

/* the connection postgres_fdw has now for kt's user mapping, and its pid */
static void *
current_connection(KeptTable *kt, int *pid)
{
	UserMapping *um = GetUserMapping(kt->userid, kt->serverid);
	void	   *state = NULL;
	void	   *conn = fdw->get_connection(um, false, &state);

	*pid = fdw->backend_pid(conn);
	fdw->release_connection(conn);
	return conn;
}

/*
 * Forget every kept statement.  With deallocate, each is DEALLOCATEd first
 * (postgres_fdw's EndForeignInsert) when its table's connection is still
 * the one it was prepared on: see the header comment.
 */
static void
drop_kept(bool deallocate)
{
	ResourceOwner save = CurrentResourceOwner;
	List	   *tables = kept_tables;
	ListCell   *lc;

	/* whatever happens below, none of them is used again */
	kept_tables = NIL;
	reuse_stale = reuse_gone = false;
	foreach(lc, tables)
	{
		KeptTable  *kt = (KeptTable *) lfirst(lc);
		int			pid;

		if (deallocate && current_connection(kt, &pid) == kt->conn &&
			pid == kt->backend_pid)
		{
			for (int i = 0; i < kt->nkept; i++)
				kt->kept[i].rri->ri_FdwRoutine->EndForeignInsert(kt->kept[i].estate,
																 kt->kept[i].rri);
		}
		CurrentResourceOwner = kept_owner;
		RelationClose(kt->rel);
		CurrentResourceOwner = save;
	}
	MemoryContextReset(kept_cxt);
}

static bool
is_postgres_fdw_table(Oid relid, Oid *serverid)
{
	ForeignTable *ft = GetForeignTable(relid);
	ForeignServer *srv = GetForeignServer(ft->serverid);
	ForeignDataWrapper *wrapper = GetForeignDataWrapper(srv->fdwid);

	*serverid = ft->serverid;
	if (!OidIsValid(wrapper->fdwhandler))
		return false;
	if (OidIsValid(postgres_fdw_handler))
		return wrapper->fdwhandler == postgres_fdw_handler;
	if (strcmp(get_func_name(wrapper->fdwhandler), "postgres_fdw_handler") != 0)
		return false;
	postgres_fdw_handler = wrapper->fdwhandler;
	return true;
}

/*
 * The query that shows the remote table's columns, as postgres_fdw names
 * that table (its schema_name and table_name options, else the foreign
 * table's own): a row of the table's row type, whose result columns are
 * the table's as the server plans them now.  (Not a query of
 * pg_attribute: the remote transaction is REPEATABLE READ, and its
 * snapshot may be older than the ALTER that its INSERT just waited for.)
 */
static char *
columns_query(Oid relid)
{
	ForeignTable *ft = GetForeignTable(relid);
	const char *nspname = NULL;
	const char *relname = NULL;
	ListCell   *lc;

	foreach(lc, ft->options)
	{
		DefElem    *def = (DefElem *) lfirst(lc);

		if (strcmp(def->defname, "schema_name") == 0)
			nspname = defGetString(def);
		else if (strcmp(def->defname, "table_name") == 0)
			relname = defGetString(def);
	}
	if (nspname == NULL)
		nspname = get_namespace_name(get_rel_namespace(relid));
	if (relname == NULL)
		relname = get_rel_name(relid);
	return psprintf("SELECT (NULL::%s).*", quote_qualified_identifier(nspname, relname));
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
	UserMapping *um;
	int			pid;

	foreach(lc, kept_tables)
	{
		kt = (KeptTable *) lfirst(lc);
		if (kt->relid == relid && kt->userid == GetUserId())
			return kt;
	}
	if (!is_postgres_fdw_table(relid, &serverid))
		return NULL;
	save_cxt = MemoryContextSwitchTo(kept_cxt);
	kt = palloc0(sizeof(KeptTable));
	kt->relid = relid;
	kt->serverid = serverid;
	kt->userid = GetUserId();
	um = GetUserMapping(kt->userid, serverid);
	kt->ft_hash = GetSysCacheHashValue1(FOREIGNTABLEREL, ObjectIdGetDatum(relid));
	kt->server_hash = GetSysCacheHashValue1(FOREIGNSERVEROID, ObjectIdGetDatum(serverid));
	kt->um_hash = GetSysCacheHashValue1(USERMAPPINGOID, ObjectIdGetDatum(um->umid));
	kt->columns_query = columns_query(relid);
	/* the table is locked: the chunk's routing opened it */
	save = CurrentResourceOwner;
	CurrentResourceOwner = kept_owner;
	kt->rel = RelationIdGetRelation(relid);
	CurrentResourceOwner = save;
	kt->conn = current_connection(kt, &pid);
	kt->backend_pid = pid;
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

/*
 * After this chunk's first kept statement on kt (its remote transaction
 * now holds the table's lock): the remote table is still the one the
 * statements were prepared for, or this chunk fails, to be tried again.
 */
static void
check_remote_columns(KeptTable *kt)
{
	void	   *res;
	StringInfoData buf;
	char	   *columns;

	kt->checked_xact = xact_count;
	res = fdw->exec_query(kt->conn, kt->columns_query, NULL);
	if (fdw->result_status(res) != CSV_PGRES_TUPLES_OK)
		fdw->report_error(ERROR, res, kt->conn, true, kt->columns_query);
	initStringInfo(&buf);
	for (int i = 0; i < fdw->nfields(res); i++)
		appendStringInfo(&buf, "%s %u %d,", fdw->fname(res, i),
						 (Oid) fdw->ftype(res, i), fdw->fmod(res, i));
	fdw->clear(res);
	columns = buf.data;
	if (kt->columns == NULL)
		kt->columns = MemoryContextStrdup(kept_cxt, columns);
	else if (strcmp(kt->columns, columns) != 0)
	{
		/* drop them now: this chunk's next attempt prepares anew */
		reuse_stale = true;
		ereport(ERROR,
				(errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
				 errmsg("the table of foreign table \"%s\" on its server changed during the load",
						get_rel_name(kt->relid)),
				 errdetail("Its batch INSERT was prepared for the table as it was; the chunk is loaded again with a new one.")));
	}
	pfree(columns);
}

bool
csv_fdw_reuse_active(ResultRelInfo *rri, int capacity)
{
	if (!reuse_enabled || capacity <= 1 || rri->ri_FdwRoutine == NULL ||
		rri->ri_FdwRoutine->ExecForeignBatchInsert == NULL ||
		rri->ri_FdwRoutine->BeginForeignInsert == NULL ||
		rri->ri_FdwRoutine->EndForeignInsert == NULL ||
		rri->ri_WithCheckOptions != NIL || rri->ri_returningList != NIL ||
		(rri->ri_TrigDesc != NULL && rri->ri_TrigDesc->trig_insert_after_row) ||
		xact_tainted)
		return false;
	if (reuse_stale)
		drop_kept(!reuse_gone);
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
		drop_kept(!reuse_gone);
	kt = kept_table(rri);
	if (kt == NULL)
		elog(ERROR, "csvpipe: foreign table %u is not a postgres_fdw table",
			 RelationGetRelid(rri->ri_RelationDesc));
	/* a statement is only good on the session it was prepared in */
	conn = current_connection(kt, &pid);
	if (conn != kt->conn || pid != kt->backend_pid)
	{
		drop_kept(false);
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
	if (kt->checked_xact != xact_count)
		check_remote_columns(kt);
	return result;
}
