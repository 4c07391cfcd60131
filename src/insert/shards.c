/*-------------------------------------------------------------------------
 *
 * shards.c
 *		Chunked loads into foreign tables (postgres_fdw partitions on other
 *		servers): the shard ledgers that put each chunk on every server
 *		exactly once, and the check that a target can be loaded that way.
 *
 * postgres_fdw commits the remote transactions of a local transaction one
 * after the other, at the local pre-commit, with no two-phase commit.  When
 * one server's COMMIT fails after another's succeeded, the local
 * transaction -- the chunk's local rows and its csvpipe.chunks row -- rolls
 * back, but the server that committed keeps its share: sending the chunk
 * again would double it there.
 *
 * So a chunk also writes, on every foreign server it loads into, a row of
 * that server's ledger (public.csvpipe_ledger there: job, chunk_no, rows),
 * through a foreign table of this database over the same server, as the
 * same user as the rows: through the same user mapping, hence the same
 * postgres_fdw connection and the same remote transaction.  On each server
 * the chunk's rows and its ledger row commit or roll back together.  Every
 * attempt at a chunk that may have been attempted before -- a retry in the
 * worker, the chunk sent again after its worker was lost, every chunk of
 * csvpipe.resume or of a queued job's run -- first reads each server's
 * ledger in that same remote transaction: a server that has the chunk gets
 * none of its rows again (they count from the ledger row); the others get
 * their rows and a ledger row.  After any failure a chunk is thus either
 * committed on a server, and known there, or absent from it.
 *
 * The first attempt at a chunk of a job that this very csvpipe.load call
 * created (CsvParallelShared.fresh_job, the chunk label's attempt 0, the
 * worker's attempt 0) reads no ledger: no attempt at that chunk exists
 * before it, so none can have committed anywhere, and no other process can
 * have written its ledger row (its tag needs the cluster's secret, below).
 * Any later attempt, whoever makes it, is not a first one and reads them;
 * a job run again (resume, a queued job) is never fresh.  That saves every
 * fresh chunk a remote query per server.
 *
 * An attempt may read a server's ledger while an earlier attempt's remote
 * transaction there is still committing: its COMMIT failed on this side
 * (the connection broke, or another server's COMMIT failed first with
 * postgres_fdw's parallel_commit) but goes on there.  The ledger shows
 * nothing yet, the chunk's rows are sent again, and the ledger row's
 * INSERT waits for the earlier one and fails on the primary key (23505)
 * once it has committed: this attempt rolls back (its rows with it) and
 * the error is raised as a serialization failure (40001, transient), so
 * the worker tries the chunk again, and that attempt finds the chunk in
 * the ledger and skips the server.
 *
 * Skip mode: the rows a server rejects (its constraints, its triggers; and
 * a row routed to it that a trigger on the coordinator's foreign table
 * rejects) are rejected rows of the chunk, recorded in csvpipe.rejected in
 * the local transaction.  When the chunk commits on that server and the
 * local transaction then rolls back, an attempt that skips the server
 * sends none of its rows, so it would never see them again: each is also
 * written in the server's ledger, with the chunk's ledger row and in the
 * same remote transaction, as a row of its own, job
 * "<job>/<tag>/<line>/<SQLSTATE>" (the tag an HMAC as below, over the line
 * and SQLSTATE too), rows 0.  An attempt that skips the server reads them
 * and rejects those lines again, with their SQLSTATE (the message is not
 * kept: every loading role can read the ledgers, and csvpipe.errors shows
 * a job's messages only to its role).
 *
 * The job is named on the shards by the coordinator's system identifier,
 * database oid, job id and job submission time (microseconds), so a job id
 * used again (the extension created anew) is another job.  All of that is
 * public (csvpipe.jobs, pg_control_system()), and every role that loads
 * may write the ledgers: so each ledger row's job also carries a tag, an
 * HMAC-SHA256 of that name, the chunk number and the foreign server's name
 * keyed with this cluster's secret (pg_control's mock authentication
 * nonce, which no SQL function shows).  A role that reads a ledger sees
 * the tags of chunks committed there, and can compute no other: it cannot
 * write a row that makes a later attempt skip a server (its rows silently
 * missing there) nor squat the row csvpipe is about to write.  (Renaming a
 * foreign server between a failed run and csvpipe.resume makes the resume
 * send that server's rows again.)
 *
 * The ledger statements run as the loading user with a pinned search_path
 * (csv_user_query): the user mapping is chosen by the user, so they must
 * not run as csvpipe's superuser.  The coordinator's ledger foreign table
 * must be owned by a superuser or by the server's owner, and the loading
 * role needs SELECT and INSERT on it (checked before the load starts).
 *
 * Remote plans: a worker keeps postgres_fdw's batch INSERTs prepared from
 * one chunk to the next (fdw_reuse.c), and the remote server would plan
 * the first five executions of a prepared statement as custom plans, each
 * planning batch_size times the columns of parameters: more remote time
 * than the inserts themselves.  So each chunk's remote transaction
 * first runs SET LOCAL plan_cache_mode = force_generic_plan (servers of
 * PostgreSQL 12 or later), through postgres_fdw's own connection
 * (GetConnection, do_sql_command: fdw_calls.c), which ends with that remote transaction.  It also applies to
 * what the remote INSERT fires there (triggers' queries get generic plans).
 *
 * Per-process state only (a worker's servers and the current chunk's
 * counts); no shared memory, no locks of its own.  The ledger's primary
 * key makes a second concurrent attempt at a chunk fail, never load twice.
 *
 *-------------------------------------------------------------------------
 */
#include "shards.h"
#include "fdw_calls.h"
#include "internal_sql.h"

#include "access/xlog.h"
#include "catalog/pg_control.h"
#include "catalog/pg_class.h"
#include "catalog/pg_inherits.h"
#include "catalog/pg_type.h"
#include "common/hmac.h"
#include "common/sha2.h"
#include "foreign/foreign.h"
#include "miscadmin.h"
#include "storage/lmgr.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"

typedef struct ShardServer
{
	Oid			serverid;
	char	   *name;			/* the foreign server's name */
	char	   *via;			/* a foreign table of the target on it */
	Oid			ledger;			/* the ledger's foreign table here */
	char	   *ledger_name;	/* schema-qualified, quoted */
	/* the current chunk */
	bool		skip;			/* committed there already */
	int64		skipped_rows;	/* rows its ledger row counts */
	int64		rows;			/* rows sent there by this attempt */
	/* skip mode (chunk_cxt): rows the server rejected */
	CsvShardReject *rejected;	/* by this attempt (not skip) */
	int			nrejected;
	int			maxrejected;
	CsvShardReject *earlier;	/* by the attempt that committed (skip) */
	int			nearlier;
} ShardServer;

/* a worker's servers, for its whole life (TopMemoryContext) */
static ShardServer *servers = NULL;
static int	nservers = 0;
static char *job_key = NULL;
static bool chunk_active = false;
static char *server_names = NULL;
/* the current chunk's rejected rows (ShardServer.rejected, .earlier) */
static MemoryContext chunk_cxt = NULL;
/* the server of the row the current target routed last, or -1 */
static int	routed_server = -1;

struct CsvShardTally
{
	int			ncache;
	int			maxcache;
	ResultRelInfo **rri;		/* result relations seen, and their server */
	int		   *idx;
	int64	   *rows;			/* per server */
};

/* the foreign tables a load into relid inserts into (itself or partitions) */
static List *
target_foreign_tables(Oid relid)
{
	List	   *result = NIL;
	List	   *rels;
	ListCell   *lc;
	char		relkind = get_rel_relkind(relid);

	if (relkind == RELKIND_FOREIGN_TABLE)
		return list_make1_oid(relid);
	if (relkind != RELKIND_PARTITIONED_TABLE)
		return NIL;
	rels = find_all_inheritors(relid, AccessShareLock, NULL);
	foreach(lc, rels)
		if (get_rel_relkind(lfirst_oid(lc)) == RELKIND_FOREIGN_TABLE)
			result = lappend_oid(result, lfirst_oid(lc));
	return result;
}

static char *
qualified_name(Oid relid)
{
	return quote_qualified_identifier(get_namespace_name(get_rel_namespace(relid)),
									  get_rel_name(relid));
}

/* the hint every missing or unusable ledger gets */
static int
ledger_hint(const char *server)
{
	const char *ledger = quote_identifier(psprintf("csvpipe_ledger_%s", server));

	return errhint("On server \"%s\", once: %s; GRANT SELECT, INSERT ON public.csvpipe_ledger "
				   "to the user its user mappings name.  Here, once: CREATE FOREIGN TABLE "
				   "%s (job text, chunk_no bigint, rows bigint) SERVER %s "
				   "OPTIONS (schema_name 'public', table_name 'csvpipe_ledger'); "
				   "GRANT SELECT, INSERT ON %s TO the loading roles.  "
				   "Or load with mode => 'transaction'.",
				   server, CSV_SHARD_LEDGER_DDL, ledger, quote_identifier(server), ledger);
}

/*
 * The ledger's foreign table on a server: a foreign table over it whose
 * remote name (table_name, else its own name) is csvpipe_ledger, owned by
 * a superuser or the server's owner (any other role could point it at a
 * table of its own).
 */
static Oid
find_ledger(ForeignServer *srv, const char *via)
{
	Oid			types[1] = {OIDOID};
	Datum		values[1];
	CsvRows    *r;
	Oid			found = InvalidOid;
	Oid			untrusted = InvalidOid;

	values[0] = ObjectIdGetDatum(srv->serverid);
	r = csv_internal_query("SELECT c.oid, c.relowner FROM pg_catalog.pg_foreign_table f "
						   "JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) f.ftrelid "
						   "WHERE f.ftserver OPERATOR(pg_catalog.=) $1 AND NOT c.relispartition "
						   "AND coalesce((SELECT o.option_value "
						   "                FROM pg_catalog.pg_options_to_table(f.ftoptions) o "
						   "               WHERE o.option_name OPERATOR(pg_catalog.=) 'table_name'), "
						   "             c.relname::pg_catalog.text) "
						   "    OPERATOR(pg_catalog.=) '" CSV_SHARD_LEDGER_NAME "' "
						   "ORDER BY c.oid",
						   1, types, values, NULL);
	for (int i = 0; i < r->nrows; i++)
	{
		Oid			relid = DatumGetObjectId(CSV_ROW_VALUE(r, i, 0));
		Oid			owner = DatumGetObjectId(CSV_ROW_VALUE(r, i, 1));

		if (!superuser_arg(owner) && owner != srv->owner)
		{
			if (!OidIsValid(untrusted))
				untrusted = relid;
			continue;
		}
		if (OidIsValid(found))
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("foreign server \"%s\" has more than one csvpipe ledger table: %s and %s",
							srv->servername, qualified_name(found), qualified_name(relid)),
					 errhint("Drop all but one of them.")));
		found = relid;
	}
	/* one made by a role the ledger cannot trust: say so, not "none" */
	if (!OidIsValid(found) && OidIsValid(untrusted))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("csvpipe.load with mode => 'chunked' cannot use %s as the ledger of foreign server \"%s\": its owner is neither a superuser nor the server's owner",
						qualified_name(untrusted), srv->servername),
				 errdetail("A role that owns the ledger's foreign table could point it at a table of its own and make loads skip that server."),
				 errhint("ALTER FOREIGN TABLE %s OWNER TO %s; or load with mode => 'transaction'.",
						 qualified_name(untrusted),
						 quote_identifier(GetUserNameFromId(srv->owner, false)))));
	if (!OidIsValid(found))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("csvpipe.load with mode => 'chunked' needs a ledger table on foreign server \"%s\"",
						srv->servername),
				 errdetail("\"%s\" is a foreign table on server \"%s\".  Each chunk records itself "
						   "on every server it loads into, in the same remote transaction as its "
						   "rows, so that a chunk committed there is never sent there again.",
						   via, srv->servername),
				 ledger_hint(srv->servername)));
	return found;
}

/*
 * The target's foreign servers, each with its ledger; errors for a server
 * that is not postgres_fdw's or has no usable ledger.  check_privileges:
 * the current user must be able to read and write each ledger.
 */
static List *
discover(Oid relid, bool check_privileges)
{
	List	   *result = NIL;
	ListCell   *lc;

	foreach(lc, target_foreign_tables(relid))
	{
		Oid			ftoid = lfirst_oid(lc);
		ForeignTable *ft = GetForeignTable(ftoid);
		ForeignServer *srv;
		ForeignDataWrapper *fdw;
		ShardServer *s;
		ListCell   *lc2;
		bool		seen = false;
		char	   *handler;

		foreach(lc2, result)
			if (((ShardServer *) lfirst(lc2))->serverid == ft->serverid)
				seen = true;
		if (seen)
			continue;
		srv = GetForeignServer(ft->serverid);
		fdw = GetForeignDataWrapper(srv->fdwid);
		handler = OidIsValid(fdw->fdwhandler) ? get_func_name(fdw->fdwhandler) : NULL;
		if (handler == NULL || strcmp(handler, "postgres_fdw_handler") != 0)
			ereport(ERROR,
					(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
					 errmsg("csvpipe.load with mode => 'chunked' cannot load foreign table \"%s\": server \"%s\" is not a postgres_fdw server",
							get_rel_name(ftoid), srv->servername),
					 errdetail("A chunk is committed exactly once on a foreign server only through postgres_fdw, with a ledger table on that server."),
					 errhint("Load with mode => 'transaction'.")));
		s = palloc0(sizeof(ShardServer));
		s->serverid = srv->serverid;
		s->name = pstrdup(srv->servername);
		s->via = get_rel_name(ftoid);
		s->ledger = find_ledger(srv, s->via);
		s->ledger_name = qualified_name(s->ledger);
		if (get_attnum(s->ledger, "job") == InvalidAttrNumber ||
			get_attnum(s->ledger, "chunk_no") == InvalidAttrNumber ||
			get_attnum(s->ledger, "rows") == InvalidAttrNumber)
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("csvpipe ledger table %s of foreign server \"%s\" needs columns job, chunk_no and rows",
							s->ledger_name, s->name),
					 ledger_hint(s->name)));
		if (check_privileges &&
			(pg_class_aclcheck(s->ledger, GetUserId(), ACL_SELECT) != ACLCHECK_OK ||
			 pg_class_aclcheck(s->ledger, GetUserId(), ACL_INSERT) != ACLCHECK_OK))
			ereport(ERROR,
					(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
					 errmsg("csvpipe.load with mode => 'chunked' needs SELECT and INSERT on %s, the ledger of foreign server \"%s\"",
							s->ledger_name, s->name),
					 errdetail("\"%s\" is a foreign table on server \"%s\"; each chunk records itself in that server's ledger, through the loading role's user mapping.",
							   s->via, s->name),
					 errhint("GRANT SELECT, INSERT ON %s TO %s; or load with mode => 'transaction'.",
							 s->ledger_name,
							 quote_identifier(GetUserNameFromId(GetUserId(), false)))));
		result = lappend(result, s);
	}
	return result;
}

void
csv_shards_check_chunked(Oid relid)
{
	(void) discover(relid, true);
}

bool
csv_shards_target_is_foreign(Oid relid)
{
	return target_foreign_tables(relid) != NIL;
}

char *
csv_shards_foreign_example(Oid relid)
{
	List	   *fts = target_foreign_tables(relid);
	Oid			ft;

	if (fts == NIL)
		return NULL;
	ft = linitial_oid(fts);
	return psprintf("\"%s\" is a foreign table on server \"%s\"", get_rel_name(ft),
					GetForeignServer(GetForeignTable(ft)->serverid)->servername);
}

/*
 * Only workers commit chunks with the ledgers.  A chunked load without one
 * (workers => 0, no free slot, a queued job's small file) would insert in
 * the leader's transaction, whose COMMIT postgres_fdw sends to each server
 * in turn: a server that committed before another failed keeps its rows,
 * the job fails with none counted, and csvpipe.resume sends them again.
 */
void
csv_shards_check_in_session(Oid relid, const char *funcname)
{
	char	   *example = csv_shards_foreign_example(relid);

	if (example == NULL)
		return;
	ereport(ERROR,
			(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
			 errmsg("%s with mode => 'chunked' into \"%s\" needs a background worker, and has none",
					funcname, get_rel_name(relid)),
			 errdetail("%s: only workers commit chunks with the shard ledgers.  "
					   "Loaded in this session, the rows would commit with the transaction, server by server.",
					   example),
			 errhint("Load with workers => 1 or more (raise max_worker_processes or csvpipe.max_workers if no slot is free).")));
}

/*
 * Transaction mode without a worker (workers => 0, no free slot, a queued
 * job's file of one chunk): the job row would be written in the caller's
 * transaction, with the rows.  A COMMIT that fails on one server after
 * another server committed leaves the rows there, and the job row rolls
 * back with the rest: no job is left in doubt (csv_txn_job_in_doubt_sql),
 * so csvpipe.submit would queue the file again and csvpipe.resume run it
 * again, doubling the rows on the server that committed.  With a worker,
 * the job row is written in the worker's own transaction and the job's
 * end by a coordinator, and both survive that rollback.  So a target with
 * foreign tables needs one.
 */
void
csv_shards_check_txn_in_session(Oid relid, const char *funcname)
{
	char	   *example = csv_shards_foreign_example(relid);

	if (example == NULL)
		return;
	ereport(ERROR,
			(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
			 errmsg("%s with mode => 'transaction' into \"%s\" needs a background worker, and has none",
					funcname, get_rel_name(relid)),
			 errdetail("%s: only a load with a worker records its job outside this transaction.  "
					   "Loaded in this session, a COMMIT that failed on one server after another committed would leave the rows there "
					   "and no job that csvpipe.resume and csvpipe.submit know to be in doubt.",
					   example),
			 errhint("Load with workers => 1 or more (raise max_worker_processes or csvpipe.max_workers if no slot is free), "
					 "or, without a job, INSERT INTO %s SELECT * FROM csvpipe.read(...).",
					 quote_qualified_identifier(get_namespace_name(get_rel_namespace(relid)),
												get_rel_name(relid)))));
}

bool
csv_shards_init(Oid relid, int64 job_id)
{
	MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);
	List	   *found = discover(relid, true);
	ListCell   *lc;
	int			i = 0;
	StringInfoData names;
	Oid			types[1] = {INT8OID};
	Datum		values[1];
	CsvRows    *r;

	nservers = list_length(found);
	servers = palloc0(sizeof(ShardServer) * Max(nservers, 1));
	initStringInfo(&names);
	foreach(lc, found)
	{
		servers[i] = *(ShardServer *) lfirst(lc);
		appendStringInfo(&names, "%s%s", i > 0 ? ", " : "", servers[i].name);
		i++;
	}
	server_names = names.data;
	MemoryContextSwitchTo(old);
	if (nservers == 0)
		return false;

	/* the job's name on the shards: see the header comment */
	values[0] = Int64GetDatum(job_id);
	r = csv_internal_query("SELECT (EXTRACT(epoch FROM submitted_at) OPERATOR(pg_catalog.*) 1000000)::pg_catalog.int8 "
						   "FROM @extschema@.job WHERE job_id OPERATOR(pg_catalog.=) $1",
						   1, types, values, NULL);
	if (r->nrows != 1 || CSV_ROW_ISNULL(r, 0, 0))
		elog(ERROR, "csvpipe job " INT64_FORMAT " has no job row", job_id);
	job_key = MemoryContextStrdup(TopMemoryContext,
								  psprintf(UINT64_FORMAT "/%u/" INT64_FORMAT "/" INT64_FORMAT,
										   GetSystemIdentifier(), MyDatabaseId, job_id,
										   DatumGetInt64(CSV_ROW_VALUE(r, 0, 0))));
	return true;
}

const char *
csv_shards_names(void)
{
	return server_names ? server_names : "";
}

/* errors of a ledger statement name the server */
static void
ledger_error_callback(void *arg)
{
	ShardServer *s = (ShardServer *) arg;

	errcontext("csvpipe ledger %s of foreign server \"%s\"", s->ledger_name, s->name);
}

static CsvRows *
ledger_query(ShardServer *s, const char *fmt, int nargs, Oid *types, Datum *values)
{
	ErrorContextCallback cb;
	CsvRows    *r;

	cb.callback = ledger_error_callback;
	cb.arg = s;
	cb.previous = error_context_stack;
	error_context_stack = &cb;
	/* the ledger found and checked, not whatever has its name now */
	r = csv_user_query_on(s->ledger, psprintf(fmt, s->ledger_name), nargs, types, values, NULL);
	error_context_stack = cb.previous;
	return r;
}

/* the first 16 bytes (hex) of HMAC-SHA256(cluster secret, msg) */
static char *
ledger_tag(const char *msg, int64 chunk_no)
{
	uint8		mac[PG_SHA256_DIGEST_LENGTH];
	char		hex[32 + 1];
	pg_hmac_ctx *ctx = pg_hmac_create(PG_SHA256);

	if (ctx == NULL ||
		pg_hmac_init(ctx, (const uint8 *) GetMockAuthenticationNonce(), MOCK_AUTH_NONCE_LEN) < 0 ||
		pg_hmac_update(ctx, (const uint8 *) msg, strlen(msg)) < 0 ||
		pg_hmac_final(ctx, mac, sizeof(mac)) < 0)
	{
		pg_hmac_free(ctx);
		elog(ERROR, "could not compute the csvpipe ledger key of chunk " INT64_FORMAT, chunk_no);
	}
	pg_hmac_free(ctx);
	hex_encode((const char *) mac, 16, hex);
	hex[32] = '\0';
	return pstrdup(hex);
}

/*
 * The ledger's job of a chunk on a server: "<job_key>/<tag>", the tag the
 * first 16 bytes (hex) of HMAC-SHA256(cluster secret, "csvpipe ledger"
 * job_key chunk_no server): see the header comment.  The server's name is
 * in it because two foreign servers may lead to the same database, hence
 * the same ledger table: each writes its own row there, in its own remote
 * transaction (with one row for both, the second INSERT would wait for the
 * first server's uncommitted row, which waits for the local commit: a
 * deadlock no server sees).
 */
static char *
chunk_key(const ShardServer *s, int64 chunk_no)
{
	return psprintf("%s/%s", job_key,
					ledger_tag(psprintf("csvpipe ledger:%s:" INT64_FORMAT ":%s",
										job_key, chunk_no, s->name), chunk_no));
}

/*
 * A row of the chunk that the server rejected (skip mode):
 * "<job_key>/<tag>/<line>/<SQLSTATE>", the tag over all of it and the
 * server's name, so no role can add one (a line both loaded and rejected).
 */
static char *
reject_key(const ShardServer *s, int64 chunk_no, int64 line_no, const char *sqlstate)
{
	return psprintf("%s/%s/" INT64_FORMAT "/%s", job_key,
					ledger_tag(psprintf("csvpipe ledger rejected:%s:" INT64_FORMAT ":%s:" INT64_FORMAT ":%s",
										job_key, chunk_no, s->name, line_no, sqlstate),
							   chunk_no),
					line_no, sqlstate);
}

/*
 * Skip mode, a server that has the chunk: the rows it rejected when the
 * chunk committed there, each checked against its tag (a row of another
 * server leading to the same ledger, or one no attempt wrote, is not one).
 */
static void
read_earlier_rejects(ShardServer *s, int64 chunk_no)
{
	Oid			types[2] = {TEXTOID, INT8OID};
	Datum		values[2];
	char	   *prefix = psprintf("%s/", job_key);
	size_t		plen = strlen(prefix);
	CsvRows    *r;

	values[0] = CStringGetTextDatum(prefix);
	values[1] = Int64GetDatum(chunk_no);
	r = ledger_query(s, "SELECT job FROM %s WHERE chunk_no OPERATOR(pg_catalog.=) $2 "
					 "AND pg_catalog.starts_with(job, $1)",
					 2, types, values);
	for (int i = 0; i < r->nrows; i++)
	{
		char	   *job = TextDatumGetCString(CSV_ROW_VALUE(r, i, 0));
		char	   *p = job + plen;
		char	   *end;
		int64		line_no;
		char		sqlstate[6];

		/* "<tag>/<line>/<SQLSTATE>" after the prefix; the chunk's row has no line */
		if (strlen(job) < plen + 33 || p[32] != '/')
			continue;
		p += 33;
		errno = 0;
		line_no = strtoi64(p, &end, 10);
		if (errno != 0 || end == p || *end != '/' || strlen(end + 1) != 5)
			continue;
		memcpy(sqlstate, end + 1, 6);
		for (int c = 0; c < 5; c++)
			if (!((sqlstate[c] >= '0' && sqlstate[c] <= '9') ||
				  (sqlstate[c] >= 'A' && sqlstate[c] <= 'Z')))
				line_no = -1;
		if (line_no <= 0 || strcmp(job, reject_key(s, chunk_no, line_no, sqlstate)) != 0)
			continue;
		if (s->earlier == NULL)
			s->earlier = MemoryContextAlloc(chunk_cxt, sizeof(CsvShardReject) * r->nrows);
		s->earlier[s->nearlier].line_no = line_no;
		s->earlier[s->nearlier].sqlerrcode = MAKE_SQLSTATE(sqlstate[0], sqlstate[1], sqlstate[2],
														   sqlstate[3], sqlstate[4]);
		s->earlier[s->nearlier].server = s->name;
		s->nearlier++;
	}
}

/*
 * An INSERT into a server's ledger.  A unique violation there means that
 * an earlier attempt at the chunk committed on that server after this one
 * read the ledger (see the header comment): a transient error, the chunk
 * is tried again.
 */
static void
ledger_insert(ShardServer *s, int64 chunk_no, const char *fmt, int nargs,
			  Oid *types, Datum *values)
{
	MemoryContext cxt = CurrentMemoryContext;

	PG_TRY();
	{
		(void) ledger_query(s, fmt, nargs, types, values);
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		MemoryContextSwitchTo(cxt);
		edata = CopyErrorData();
		if (edata->sqlerrcode != ERRCODE_UNIQUE_VIOLATION)
			PG_RE_THROW();
		FlushErrorState();
		ereport(ERROR,
				(errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
				 errmsg("chunk " INT64_FORMAT " was committed on foreign server \"%s\" by an earlier attempt",
						chunk_no, s->name),
				 errdetail("That attempt's remote transaction committed after this attempt had read the server's ledger %s "
						   "(its COMMIT had failed on this side, or was still under way there): %s",
						   s->ledger_name, edata->message),
				 errhint("The chunk is tried again; it skips that server.")));
	}
	PG_END_TRY();
}

/*
 * The chunk's remote transaction on server s plans postgres_fdw's prepared
 * INSERT generically from its first execution: see the header comment.
 * SET LOCAL: it ends with that remote transaction.  Servers before
 * PostgreSQL 12 have no plan_cache_mode and are left as they are.
 */
static void
remote_generic_plans(ShardServer *s)
{
	const CsvFdwCalls *fdw = csv_fdw_calls();
	UserMapping *um = GetUserMapping(GetUserId(), s->serverid);
	void	   *state = NULL;
	void	   *conn = fdw->get_connection(um, false, &state);

	/* the very connection and remote transaction of the chunk's rows */
	if (fdw->server_version(conn) >= 120000)
		fdw->do_sql_command(conn, "SET LOCAL plan_cache_mode = force_generic_plan");
	fdw->release_connection(conn);
}

void
csv_shards_chunk_begin(int64 chunk_no, bool check)
{
	Oid			types[2] = {TEXTOID, INT8OID};
	Datum		values[2];

	if (chunk_cxt == NULL)
		chunk_cxt = AllocSetContextCreate(TopMemoryContext, "csvpipe shard ledgers",
										  ALLOCSET_SMALL_SIZES);
	MemoryContextReset(chunk_cxt);
	values[1] = Int64GetDatum(chunk_no);
	for (int i = 0; i < nservers; i++)
	{
		ShardServer *s = &servers[i];
		CsvRows    *r;

		s->rejected = NULL;
		s->nrejected = s->maxrejected = 0;
		s->earlier = NULL;
		s->nearlier = 0;
		CHECK_FOR_INTERRUPTS();
		s->skip = false;
		s->skipped_rows = 0;
		s->rows = 0;

		/*
		 * The ledger found and checked stays what it is until the chunk's
		 * ledger row is in (its foreign table cannot be dropped or replaced
		 * meanwhile), read or not.
		 */
		LockRelationOid(s->ledger, AccessShareLock);
		if (check)
		{
			values[0] = CStringGetTextDatum(chunk_key(s, chunk_no));
			r = ledger_query(s, "SELECT rows FROM %s WHERE job OPERATOR(pg_catalog.=) $1 "
							 "AND chunk_no OPERATOR(pg_catalog.=) $2",
							 2, types, values);
			s->skip = (r->nrows > 0);
			s->skipped_rows = (r->nrows > 0 && !CSV_ROW_ISNULL(r, 0, 0)) ?
				DatumGetInt64(CSV_ROW_VALUE(r, 0, 0)) : 0;
			if (s->skip)
				read_earlier_rejects(s, chunk_no);
		}
		if (!s->skip)
			remote_generic_plans(s);
	}
	chunk_active = true;
}

void
csv_shards_chunk_reset(void)
{
	for (int i = 0; i < nservers; i++)
	{
		servers[i].rows = 0;
		servers[i].nrejected = 0;
	}
}

int64
csv_shards_chunk_end(int64 chunk_no)
{
	Oid			types[3] = {TEXTOID, INT8OID, INT8OID};
	Datum		values[3];
	int64		earlier = 0;

	chunk_active = false;
	values[1] = Int64GetDatum(chunk_no);
	for (int i = 0; i < nservers; i++)
	{
		ShardServer *s = &servers[i];

		CHECK_FOR_INTERRUPTS();
		if (s->skip)
		{
			earlier += s->skipped_rows;
			continue;
		}
		values[0] = CStringGetTextDatum(chunk_key(s, chunk_no));
		values[2] = Int64GetDatum(s->rows);
		ledger_insert(s, chunk_no, "INSERT INTO %s (job, chunk_no, rows) VALUES ($1, $2, $3)",
					  3, types, values);
		if (s->nrejected > 0)
		{
			Oid			rtypes[2] = {TEXTARRAYOID, INT8OID};
			Datum		rvalues[2];
			Datum	   *keys = palloc(sizeof(Datum) * s->nrejected);

			for (int j = 0; j < s->nrejected; j++)
				keys[j] = CStringGetTextDatum(reject_key(s, chunk_no, s->rejected[j].line_no,
														 unpack_sql_state(s->rejected[j].sqlerrcode)));
			rvalues[0] = PointerGetDatum(construct_array(keys, s->nrejected, TEXTOID, -1, false,
														 TYPALIGN_INT));
			rvalues[1] = Int64GetDatum(chunk_no);
			ledger_insert(s, chunk_no, "INSERT INTO %s (job, chunk_no, rows) "
						  "SELECT u.j, $2, 0 FROM pg_catalog.unnest($1) AS u(j)",
						  2, rtypes, rvalues);
		}
	}
	return earlier;
}

void
csv_shards_row_rejected(int64 line_no, int sqlerrcode)
{
	ShardServer *s;

	if (!chunk_active || routed_server < 0)
		return;
	s = &servers[routed_server];
	if (s->nrejected == s->maxrejected)
	{
		s->maxrejected = Max(16, s->maxrejected * 2);
		s->rejected = s->rejected == NULL ?
			MemoryContextAlloc(chunk_cxt, sizeof(CsvShardReject) * s->maxrejected) :
			repalloc(s->rejected, sizeof(CsvShardReject) * s->maxrejected);
	}
	s->rejected[s->nrejected].line_no = line_no;
	s->rejected[s->nrejected].sqlerrcode = sqlerrcode;
	s->rejected[s->nrejected].server = s->name;
	s->nrejected++;
	routed_server = -1;
}

int
csv_shards_earlier_rejects(CsvShardReject **rejects)
{
	int			n = 0;
	CsvShardReject *all;

	for (int i = 0; i < nservers; i++)
		if (servers[i].skip)
			n += servers[i].nearlier;
	*rejects = NULL;
	if (n == 0)
		return 0;
	all = palloc(sizeof(CsvShardReject) * n);
	n = 0;
	for (int i = 0; i < nservers; i++)
		if (servers[i].skip)
			for (int j = 0; j < servers[i].nearlier; j++)
				all[n++] = servers[i].earlier[j];
	*rejects = all;
	return n;
}

CsvShardTally *
csv_shards_tally_begin(void)
{
	CsvShardTally *t;

	routed_server = -1;
	if (!chunk_active)
		return NULL;
	t = palloc0(sizeof(CsvShardTally));
	t->maxcache = 8;
	t->rri = palloc(sizeof(ResultRelInfo *) * t->maxcache);
	t->idx = palloc(sizeof(int) * t->maxcache);
	t->rows = palloc0(sizeof(int64) * nservers);
	return t;
}

/*
 * A row for foreign result relation rri: false when its server has the
 * chunk already (the row is not sent), else counted for the server.
 */
bool
csv_shards_tally_row(CsvShardTally *t, ResultRelInfo *rri)
{
	int			idx = -1;

	for (int i = 0; i < t->ncache; i++)
		if (t->rri[i] == rri)
		{
			idx = t->idx[i];
			break;
		}
	if (idx < 0)
	{
		Oid			relid = RelationGetRelid(rri->ri_RelationDesc);
		Oid			serverid = GetForeignTable(relid)->serverid;

		for (int i = 0; i < nservers; i++)
			if (servers[i].serverid == serverid)
				idx = i;
		if (idx < 0)
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("foreign table \"%s\" became a partition of the target during the load",
							RelationGetRelationName(rri->ri_RelationDesc)),
					 errhint("csvpipe.resume(job) loads the rest with the new partition.")));
		if (t->ncache == t->maxcache)
		{
			t->maxcache *= 2;
			t->rri = repalloc(t->rri, sizeof(ResultRelInfo *) * t->maxcache);
			t->idx = repalloc(t->idx, sizeof(int) * t->maxcache);
		}
		t->rri[t->ncache] = rri;
		t->idx[t->ncache] = idx;
		t->ncache++;
	}
	if (servers[idx].skip)
	{
		routed_server = -1;
		return false;
	}
	t->rows[idx]++;
	routed_server = idx;
	return true;
}

void
csv_shards_tally_end(CsvShardTally *t)
{
	if (t == NULL || !chunk_active)
		return;
	for (int i = 0; i < nservers; i++)
		servers[i].rows += t->rows[i];
}
