/*-------------------------------------------------------------------------
 *
 * target.c
 *		Knowing a load target before loading: the foreign tables and Citus
 *		tables it is made of.
 *
 * A load's target may be a foreign table, or a partitioned table some of
 * whose partitions are foreign tables (postgres_fdw shards).  Every entry
 * point (csvpipe.load, csvpipe.resume, csvpipe.submit at submit time, the
 * job runner, csvpipe.load_serial) calls csv_target_check() before it reads
 * a row of the file or records a job, so a load that cannot work fails at
 * once:
 *
 *	- prepared mode with a foreign table anywhere in the target: PREPARE
 *	  TRANSACTION is refused for a transaction that wrote through a foreign
 *	  data wrapper (postgres_fdw: "cannot PREPARE a transaction that has
 *	  operated on postgres_fdw foreign tables"), which without this check
 *	  is found only when the whole file has been sent.  Chunked and
 *	  transaction mode work: their remote work commits with the local
 *	  transaction, as any postgres_fdw write does (doc/sharded.md).
 *
 *	- a Citus table (distributed, reference or Citus-local; the target or
 *	  one of its partitions): csvpipe's insert path writes into the
 *	  coordinator's shell table, where Citus does not look, and the load
 *	  would report success with the rows invisible.  Detected as Citus
 *	  itself records its tables: the extension "citus" is installed and the
 *	  relation is in pg_catalog.pg_dist_partition (logicalrelid).  Refused
 *	  in every mode, with a hint to INSERT ... SELECT FROM csvpipe.read(...),
 *	  which goes through Citus's planner.
 *
 * The partitions are listed with find_all_inheritors() under
 * AccessShareLock, kept to the end of the transaction (the insert takes
 * RowExclusiveLock later; a partition cannot be detached or replaced in
 * between).  pg_dist_partition is read through csv_internal_query().
 *
 * No shared state.
 *
 *-------------------------------------------------------------------------
 */
#include "csvfile.h"
#include "internal_sql.h"
#include "target.h"

#include "catalog/pg_class.h"
#include "catalog/pg_inherits.h"
#include "catalog/pg_namespace.h"
#include "catalog/pg_type.h"
#include "commands/extension.h"
#include "foreign/foreign.h"
#include "storage/lmgr.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"

/* The target and, when it is partitioned, every partition below it */
static List *
target_relations(Oid relid)
{
	if (get_rel_relkind(relid) == RELKIND_PARTITIONED_TABLE)
		return find_all_inheritors(relid, AccessShareLock, NULL);
	return list_make1_oid(relid);
}

/* The first Citus table among rels, or InvalidOid (also: no Citus) */
static Oid
find_citus_table(List *rels)
{
	Oid			types[1] = {OIDARRAYOID};
	Datum		values[1];
	Datum	   *elems;
	CsvRows    *r;
	ListCell   *lc;
	int			n = 0;

	if (!OidIsValid(get_extension_oid("citus", true)))
		return InvalidOid;
	/* Citus keeps its table metadata in pg_catalog.pg_dist_partition */
	if (!OidIsValid(get_relname_relid("pg_dist_partition", PG_CATALOG_NAMESPACE)))
		return InvalidOid;

	elems = palloc(sizeof(Datum) * list_length(rels));
	foreach(lc, rels)
		elems[n++] = ObjectIdGetDatum(lfirst_oid(lc));
	values[0] = PointerGetDatum(construct_array(elems, n, OIDOID, sizeof(Oid),
												true, TYPALIGN_INT));
	r = csv_internal_query("SELECT p.logicalrelid::pg_catalog.oid "
						   "FROM pg_catalog.pg_dist_partition p "
						   "WHERE p.logicalrelid::pg_catalog.oid OPERATOR(pg_catalog.=) ANY ($1) "
						   "ORDER BY 1 LIMIT 1",
						   1, types, values, NULL);
	if (r->nrows == 0 || CSV_ROW_ISNULL(r, 0, 0))
		return InvalidOid;
	return DatumGetObjectId(CSV_ROW_VALUE(r, 0, 0));
}

void
csv_target_check(Oid relid, bool prepared, const char *funcname)
{
	List	   *rels;
	Oid			citus;
	ListCell   *lc;
	char	   *relname;

	relname = get_rel_name(relid);
	if (relname == NULL)
		return;					/* gone: the insert path says so */
	rels = target_relations(relid);

	citus = find_citus_table(rels);
	if (OidIsValid(citus))
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 citus == relid ?
				 errmsg("%s cannot load into Citus table \"%s\"", funcname, relname) :
				 errmsg("%s cannot load into \"%s\": its partition \"%s\" is a Citus table",
						funcname, relname, get_rel_name(citus)),
				 errdetail("csvpipe inserts into the local table directly; Citus keeps the rows of its tables in shards, so they would not be seen."),
				 errhint("Load with INSERT INTO %s SELECT * FROM csvpipe.read(...) AS t(...): Citus routes those rows to its shards.",
						 quote_qualified_identifier(get_namespace_name(get_rel_namespace(relid)),
													relname))));

	if (!prepared)
		return;
	foreach(lc, rels)
	{
		Oid			rel = lfirst_oid(lc);
		ForeignServer *server;

		if (get_rel_relkind(rel) != RELKIND_FOREIGN_TABLE)
			continue;
		server = GetForeignServer(GetForeignTable(rel)->serverid);
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 rel == relid ?
				 errmsg("%s with mode => 'prepared' cannot load into foreign table \"%s\" on server \"%s\"",
						funcname, relname, server->servername) :
				 errmsg("%s with mode => 'prepared' cannot load into \"%s\": its partition \"%s\" is a foreign table on server \"%s\"",
						funcname, relname, get_rel_name(rel), server->servername),
				 errdetail("Prepared mode ends each worker's transaction with PREPARE TRANSACTION, which PostgreSQL refuses once a transaction has written to a foreign table."),
				 errhint("Use mode => 'chunked' (a commit per chunk, resumable) or mode => 'transaction' (the rows commit with your transaction).")));
	}
}
