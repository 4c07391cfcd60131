/*-------------------------------------------------------------------------
 *
 * internal_sql.c
 *		The one path by which csvpipe runs SQL on its own behalf: the job,
 *		ledger and rejected-row bookkeeping of every process (backends,
 *		workers, runners, the launcher, coordinators), and the lookup of the
 *		extension's schema.
 *
 * csv_internal_query() runs one statement
 *	- as the bootstrap superuser, with SECURITY_LOCAL_USERID_CHANGE (as a
 *	  SECURITY DEFINER function does: SET ROLE cannot escape it), so users
 *	  need no privileges on csvpipe's tables;
 *	- with search_path = pg_catalog, pg_temp for the statement only (a GUC
 *	  nest level, undone on success and by transaction abort on error), so
 *	  neither the caller's search_path nor ALTER DATABASE/ROLE ... SET
 *	  search_path can substitute functions or operators: with pg_catalog
 *	  first and no other schema, every unqualified function and operator
 *	  resolves in pg_catalog (pg_temp is never searched for either);
 *	- with "@extschema@" replaced by the quoted name of the schema the
 *	  extension lives in, found through pg_extension.extnamespace, never by
 *	  the name "csvpipe"; a schema not owned by a superuser is refused (its
 *	  owner could swap the tables under csvpipe's feet).
 * The statements still qualify what they call (pg_catalog.now(), ...) where
 * it is cheap, as belt and braces.
 *
 * csv_user_query() is the same without the change of user, for the few
 * statements that must run as the loading user (the shard ledgers, reached
 * through that user's postgres_fdw user mapping: shards.c).
 *
 * Background processes that connect as the bootstrap superuser (launcher,
 * coordinators) call csv_internal_pin_session() right after connecting, so
 * no per-database or per-role setting reaches anything they run.
 *
 * No shared state; no locks beyond those of the statements run.
 *
 *-------------------------------------------------------------------------
 */
#include "internal_sql.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/skey.h"
#include "access/table.h"
#include "access/xact.h"
#include "catalog/indexing.h"
#include "catalog/pg_extension.h"
#include "catalog/pg_authid.h"
#include "catalog/pg_namespace.h"
#include "commands/extension.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/fmgroids.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/plancache.h"
#include "utils/syscache.h"

#define CSV_PINNED_SEARCH_PATH	"pg_catalog, pg_temp"

/* pg_extension.extnamespace of an extension (extension.c's is static in 15) */
static Oid
extension_namespace(Oid extoid)
{
	Relation	rel;
	SysScanDesc scan;
	ScanKeyData key;
	HeapTuple	tup;
	Oid			nsp = InvalidOid;

	rel = table_open(ExtensionRelationId, AccessShareLock);
	ScanKeyInit(&key, Anum_pg_extension_oid, BTEqualStrategyNumber, F_OIDEQ,
				ObjectIdGetDatum(extoid));
	scan = systable_beginscan(rel, ExtensionOidIndexId, true, NULL, 1, &key);
	tup = systable_getnext(scan);
	if (HeapTupleIsValid(tup))
		nsp = ((Form_pg_extension) GETSTRUCT(tup))->extnamespace;
	systable_endscan(scan);
	table_close(rel, AccessShareLock);
	return nsp;
}

/*
 * The extension's schema (pg_extension.extnamespace).  Refuses a schema
 * whose owner is not a superuser.  With missing_ok, InvalidOid when the
 * extension is not installed in this database.
 */
Oid
csv_extension_schema(bool missing_ok)
{
	Oid			extoid = get_extension_oid("csvpipe", missing_ok);
	Oid			nsp;
	HeapTuple	tup;
	Oid			owner;

	if (!OidIsValid(extoid))
		return InvalidOid;
	nsp = extension_namespace(extoid);
	tup = SearchSysCache1(NAMESPACEOID, ObjectIdGetDatum(nsp));
	if (!HeapTupleIsValid(tup))
	{
		if (missing_ok)
			return InvalidOid;
		elog(ERROR, "cache lookup failed for the schema of extension csvpipe");
	}
	owner = ((Form_pg_namespace) GETSTRUCT(tup))->nspowner;
	ReleaseSysCache(tup);
	if (!superuser_arg(owner))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("the schema of extension csvpipe is owned by a role that is not a superuser"),
				 errdetail("csvpipe runs its bookkeeping as a superuser on the tables of that schema."),
				 errhint("ALTER SCHEMA ... OWNER TO a superuser.")));
	return nsp;
}

bool
csv_extension_installed(void)
{
	return OidIsValid(get_extension_oid("csvpipe", true));
}

/* A relation of the extension's schema (its sequence, say) */
Oid
csv_extension_relid(const char *relname)
{
	Oid			relid = get_relname_relid(relname, csv_extension_schema(false));

	if (!OidIsValid(relid))
		elog(ERROR, "relation \"%s\" of extension csvpipe is missing", relname);
	return relid;
}

/* sql with every CSV_EXTSCHEMA_TOKEN replaced by the quoted schema name */
static char *
expand_schema(const char *sql)
{
	const char *p = strstr(sql, CSV_EXTSCHEMA_TOKEN);
	const char *schema;
	StringInfoData buf;

	if (p == NULL)
		return (char *) sql;
	schema = quote_identifier(get_namespace_name(csv_extension_schema(false)));
	initStringInfo(&buf);
	while (p != NULL)
	{
		appendBinaryStringInfo(&buf, sql, p - sql);
		appendStringInfoString(&buf, schema);
		sql = p + strlen(CSV_EXTSCHEMA_TOKEN);
		p = strstr(sql, CSV_EXTSCHEMA_TOKEN);
	}
	appendStringInfoString(&buf, sql);
	return buf.data;
}

/*
 * Run one internal statement (see the header comment) and return its rows,
 * if any, copied into the caller's memory context.  nulls as for
 * SPI_execute_with_args ('n' = NULL, or NULL for none).
 */
/*
 * The statement planned as plan uses relation only_rel and nothing else.
 * Its parse analysis locked what it names, kept to the end of the
 * transaction, and an unsaved SPI plan is not analyzed again: what this
 * sees is what runs.
 */
static void
check_plan_relations(SPIPlanPtr plan, Oid only_rel)
{
	ListCell   *lc;

	foreach(lc, SPI_plan_get_plan_sources(plan))
	{
		CachedPlanSource *ps = (CachedPlanSource *) lfirst(lc);
		ListCell   *lc2;

		if (ps->relationOids == NIL)
			elog(ERROR, "csvpipe: a statement on relation %u uses no relation", only_rel);
		foreach(lc2, ps->relationOids)
			if (lfirst_oid(lc2) != only_rel)
				ereport(ERROR,
						(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
						 errmsg("a relation csvpipe checked before the load was dropped or replaced during it"),
						 errdetail("Its name now leads to relation %u, not %u.", lfirst_oid(lc2), only_rel),
						 errhint("csvpipe.resume(job) checks it again.")));
	}
}

static CsvRows *
run_query(bool as_superuser, Oid only_rel, const char *sql, int nargs,
		  Oid *argtypes, Datum *values, const char *nulls)
{
	MemoryContext caller = CurrentMemoryContext;
	Oid			save_userid;
	int			save_sec;
	int			save_nestlevel;
	int			rc;
	CsvRows    *rows;
	char	   *query = expand_schema(sql);

	GetUserIdAndSecContext(&save_userid, &save_sec);
	if (as_superuser)
		SetUserIdAndSecContext(BOOTSTRAP_SUPERUSERID,
							   save_sec | SECURITY_LOCAL_USERID_CHANGE);
	save_nestlevel = NewGUCNestLevel();
	(void) set_config_option("search_path", CSV_PINNED_SEARCH_PATH,
							 PGC_SUSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, 0, false);

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (OidIsValid(only_rel))
	{
		SPIPlanPtr	plan = SPI_prepare(query, nargs, argtypes);

		if (plan == NULL)
			elog(ERROR, "csvpipe bookkeeping failed: %s", SPI_result_code_string(SPI_result));
		check_plan_relations(plan, only_rel);
		rc = SPI_execute_plan(plan, values, nulls, false, 0);
	}
	else
		rc = SPI_execute_with_args(query, nargs, argtypes, values, nulls, false, 0);
	if (rc < 0)
		elog(ERROR, "csvpipe bookkeeping failed: %s", SPI_result_code_string(rc));

	rows = MemoryContextAllocZero(caller, sizeof(CsvRows));
	rows->nrows = (int) SPI_processed;
	if (SPI_tuptable != NULL)
	{
		TupleDesc	desc = SPI_tuptable->tupdesc;
		int			n = Max(rows->nrows * desc->natts, 1);

		rows->natts = desc->natts;
		rows->values = MemoryContextAlloc(caller, sizeof(Datum) * n);
		rows->nulls = MemoryContextAlloc(caller, sizeof(bool) * n);
		for (int r = 0; r < rows->nrows; r++)
			for (int a = 0; a < desc->natts; a++)
			{
				Form_pg_attribute att = TupleDescAttr(desc, a);
				bool		isnull;
				Datum		d = SPI_getbinval(SPI_tuptable->vals[r], desc, a + 1, &isnull);
				MemoryContext old;

				CSV_ROW_ISNULL(rows, r, a) = isnull;
				if (isnull)
				{
					CSV_ROW_VALUE(rows, r, a) = (Datum) 0;
					continue;
				}
				old = MemoryContextSwitchTo(caller);
				CSV_ROW_VALUE(rows, r, a) = datumCopy(d, att->attbyval, att->attlen);
				MemoryContextSwitchTo(old);
			}
	}
	else
		rows->values = NULL;
	SPI_finish();
	AtEOXact_GUC(false, save_nestlevel);
	SetUserIdAndSecContext(save_userid, save_sec);
	return rows;
}

CsvRows *
csv_internal_query(const char *sql, int nargs, Oid *argtypes, Datum *values,
				   const char *nulls)
{
	return run_query(true, InvalidOid, sql, nargs, argtypes, values, nulls);
}

/*
 * The same, as the current user: for the statements that must go through
 * that user's postgres_fdw user mapping (the shard ledgers, shards.c), and
 * so need its privileges on what they touch.
 */
CsvRows *
csv_user_query(const char *sql, int nargs, Oid *argtypes, Datum *values,
			   const char *nulls)
{
	return run_query(false, InvalidOid, sql, nargs, argtypes, values, nulls);
}

/*
 * csv_user_query() of a statement on one relation, named in sql, that
 * must be relid: fails if the name resolves to another relation (one
 * dropped and made again by a schema's owner, a schema renamed), before
 * it runs.  The shard ledgers (shards.c) are checked once by oid, then
 * named in each statement.
 */
CsvRows *
csv_user_query_on(Oid relid, const char *sql, int nargs, Oid *argtypes,
				  Datum *values, const char *nulls)
{
	return run_query(false, relid, sql, nargs, argtypes, values, nulls);
}

/*
 * What csvpipe's own processes need, whatever ALTER DATABASE/ROLE ... SET
 * says: a database owner may set any user-settable parameter for its
 * database, and such settings reach every session that connects, the
 * bootstrap superuser's included.  session_authorization and role would make
 * the process a non-superuser (COMMIT PREPARED of another role's parts then
 * fails: rows reported loaded never appear); a read-only default, timeouts
 * or exit_on_error would abort its bookkeeping half way.
 */
static const struct
{
	const char *name;
	const char *value;
}			pinned_settings[] =
{
	{"search_path", CSV_PINNED_SEARCH_PATH},
	{"default_transaction_read_only", "off"},
	{"default_transaction_isolation", "read committed"},
	{"default_transaction_deferrable", "off"},
	{"statement_timeout", "0"},
	{"lock_timeout", "0"},
	{"idle_in_transaction_session_timeout", "0"},
	{"exit_on_error", "off"},
	{"transform_null_equals", "off"},
};

/*
 * A background process connected as the bootstrap superuser: undo any
 * ALTER DATABASE/ROLE ... SET session_authorization or role that the
 * connection applied, so the process is the bootstrap superuser again, and
 * pin both (PGC_S_OVERRIDE).  Outside a transaction.  A runner of a NOLOGIN
 * role calls this before it becomes that role.
 */
void
csv_internal_reset_identity(void)
{
	/* session_authorization's check looks the role up: needs a transaction */
	StartTransactionCommand();
	SetConfigOption("session_authorization",
					GetUserNameFromId(BOOTSTRAP_SUPERUSERID, false),
					PGC_SUSET, PGC_S_OVERRIDE);
	SetConfigOption("role", "none", PGC_SUSET, PGC_S_OVERRIDE);
	CommitTransactionCommand();

	if (GetSessionUserId() != BOOTSTRAP_SUPERUSERID ||
		GetUserId() != BOOTSTRAP_SUPERUSERID)
		ereport(FATAL,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("csvpipe background process could not run as the bootstrap superuser")));
}

/*
 * A background process that works as the bootstrap superuser (launcher,
 * coordinators): its identity reset (above), and the settings its
 * bookkeeping depends on pinned over any per-database or per-role setting,
 * so that nothing later changes them.  Call right after connecting, outside
 * a transaction.
 */
void
csv_internal_pin_session(void)
{
	csv_internal_reset_identity();
	for (int i = 0; i < lengthof(pinned_settings); i++)
		SetConfigOption(pinned_settings[i].name, pinned_settings[i].value,
						PGC_SUSET, PGC_S_OVERRIDE);
}
