/*-------------------------------------------------------------------------
 *
 * jobs.c
 *		The job queue's SQL functions: csvpipe.submit, csvpipe.cancel and
 *		csvpipe.wait, and csvpipe.resume (a queued job goes back in the
 *		queue; a csvpipe.load job is finished by run.c's csv_resume_load).
 *
 * A queued job is a row of csvpipe.job with origin 'submit', state
 * 'queued', its options (jsonb), priority and the submitting role; the
 * launcher (launcher.c) starts it in a runner worker that loads as that
 * role.  A job's life:
 *
 *	 queued --launcher--> running --runner/coordinator--> done | failed | cancelled
 *	   |                    |
 *	   +--cancel--> cancelled  (running: the runner is sent a cancel and
 *	                             records 'cancelled' itself)
 *	 failed | cancelled --resume--> queued
 *	 running, runner gone --launcher--> queued again (a chunked job keeps its
 *	                             ledger: the next runner skips those chunks),
 *	                             or failed after CSV_JOB_MAX_RESTARTS
 *
 * A transaction-mode job's 'done' reads 'uncommitted' (csvpipe.jobs, wait,
 * cancel, resume alike: csv_txn_job_state_sql) until the transaction that
 * loaded it ends, then 'done' or 'rolled back'.
 *
 * submit expands a glob server-side (glob(3), sorted) and queues one job per
 * regular file.  A file already queued, running or loaded ('done') into the
 * same target with the same identity (canonical path, device, inode, size,
 * mtime) by the same role is skipped, so re-submitting a directory is
 * idempotent; so is one whose done job csvpipe.purge replaced by a
 * csvpipe.loaded_file record, and one whose jobs failed recently (backoff,
 * see purge.c).  force => true (1.1) queues a file loaded or backing off
 * anyway, never one already queued or running.  Two submits of the same
 * file serialize on a transaction-level advisory lock keyed by target and
 * path, so they cannot both queue it.
 *
 * The launcher is woken when the submitting transaction commits (a
 * transaction callback sets its latch), so a job on an idle server starts
 * at once, and never before the job row is visible.
 *
 * Bookkeeping statements run as the bootstrap superuser with search_path
 * pinned to pg_catalog (csv_internal_query): users need no privileges on
 * csvpipe's tables, and cannot redirect these statements to their own
 * functions or operators.
 *
 *-------------------------------------------------------------------------
 */
#include "jobs.h"
#include "load.h"
#include "options.h"
#include "parallel.h"
#include "progress.h"
#include "run.h"
#include "shards.h"
#include "target.h"

#include <glob.h>
#include <signal.h>
#include <sys/stat.h>

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/stratnum.h"
#include "access/table.h"
#include "access/xact.h"
#include "catalog/pg_authid.h"
#include "catalog/pg_class.h"
#include "catalog/pg_type.h"
#include "common/hashfn.h"
#include "storage/lmgr.h"
#include "storage/lock.h"
#include "storage/proc.h"
#include "storage/procarray.h"
#include "txn.h"
#include "commands/dbcommands.h"
#include "executor/spi.h"
#include "funcapi.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "storage/latch.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/guc.h"
#include "utils/json.h"
#include "utils/fmgroids.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/relcache.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"
#include "utils/xid8.h"

PG_FUNCTION_INFO_V1(csvpipe_submit);
PG_FUNCTION_INFO_V1(csvpipe_cancel);
PG_FUNCTION_INFO_V1(csvpipe_wait);
PG_FUNCTION_INFO_V1(csvpipe_resume);

static bool wake_callback_registered = false;
static bool wake_pending = false;

/* ---- helpers ---- */

static void
require_preload(const char *funcname)
{
	if (!csvpipe_preloaded || !csv_progress_available())
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("%s needs csvpipe in shared_preload_libraries", funcname),
				 errdetail("The job queue is served by a launcher background worker and shared memory, which exist only when csvpipe is preloaded."),
				 errhint("Add csvpipe to shared_preload_libraries and restart the server; csvpipe.load works without it.")));
}

static void
wake_xact_callback(XactEvent event, void *arg)
{
	if (!wake_pending)
		return;
	switch (event)
	{
		case XACT_EVENT_COMMIT:
		case XACT_EVENT_PARALLEL_COMMIT:
			wake_pending = false;
			csv_progress_wake_launcher();
			break;
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PARALLEL_ABORT:
		case XACT_EVENT_PREPARE:
			/* a prepared submit is found by the launcher's regular poll */
			wake_pending = false;
			break;
		default:
			break;
	}
}

/* Wake the launcher when the current transaction commits */
static void
wake_launcher_at_commit(void)
{
	if (!wake_callback_registered)
	{
		RegisterXactCallback(wake_xact_callback, NULL);
		wake_callback_registered = true;
	}
	wake_pending = true;
}

/* The launcher serves csvpipe.database only */
static void
require_launcher_database(const char *funcname)
{
	char	   *dbname = get_database_name(MyDatabaseId);

	if (dbname == NULL || strcmp(dbname, csvpipe_database) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("%s must be called in database \"%s\"", funcname, csvpipe_database),
				 errdetail("csvpipe's launcher serves the database named by csvpipe.database."),
				 errhint("Connect to \"%s\", or set csvpipe.database (needs a restart).",
						 csvpipe_database)));
}

/*
 * Serialize the submits of one file into one target, until the end of the
 * transaction.  An advisory lock tag whose last field (1 and 2 are what the
 * pg_advisory_* functions use) no SQL function can produce, so no other
 * role can take it and block or slip past a submit.
 */
#define CSV_SUBMIT_LOCK_KIND	0x4353	/* "CS" */

static void
lock_submit(Oid relid, const char *canonical)
{
	LOCKTAG		tag;
	uint32		h1 = hash_bytes((const unsigned char *) canonical, strlen(canonical));
	uint32		h2 = hash_bytes_uint32(relid);

	SET_LOCKTAG_ADVISORY(tag, MyDatabaseId, h1, h2, CSV_SUBMIT_LOCK_KIND);
	(void) LockAcquire(&tag, ExclusiveLock, false, false);
}

/* Superuser, or a member of the submitting role */
static void
check_job_owner(int64 job_id, Oid submitted_by, const char *action)
{
	if (superuser())
		return;
	if (OidIsValid(submitted_by) && has_privs_of_role(GetUserId(), submitted_by))
		return;
	ereport(ERROR,
			(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
			 errmsg("permission denied to %s csvpipe job " INT64_FORMAT, action, job_id),
			 errdetail("Only superusers and members of the role that submitted the job can %s it.",
					   action)));
}

/* ---- csvpipe.submit ---- */

/*
 * The files a path or glob names, sorted.  A path without glob
 * metacharacters names one file, which must exist.
 */
static List *
expand_paths(const char *pattern, bool *literal)
{
	List	   *paths = NIL;
	glob_t		g;
	int			rc;

	*literal = (strpbrk(pattern, "*?[") == NULL);
	if (*literal)
		return list_make1(pstrdup(pattern));

	/*
	 * The pattern's fixed directory part must be inside csvpipe.allowed_dirs
	 * before anything is listed; each match is checked again when opened.
	 */
	{
		char	   *fixed = pstrdup(pattern);
		char	   *slash;

		fixed[strpbrk(fixed, "*?[") - fixed] = '\0';
		slash = strrchr(fixed, '/');
		if (slash == NULL)
			strcpy(fixed, ".");
		else if (slash == fixed)
			fixed[1] = '\0';
		else
			*slash = '\0';
		if (!csv_path_inside(fixed))
			ereport(ERROR,
					(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
					 errmsg("file \"%s\" is outside csvpipe.allowed_dirs", pattern),
					 errdetail("csvpipe reads only files under csvpipe.allowed_dirs (\"%s\").",
							   csvpipe_allowed_dirs)));
		pfree(fixed);
	}

	memset(&g, 0, sizeof(g));
	rc = glob(pattern, 0, NULL, &g);
	if (rc == GLOB_NOMATCH)
		return NIL;
	if (rc != 0)
	{
		globfree(&g);
		ereport(ERROR,
				(errcode(rc == GLOB_NOSPACE ? ERRCODE_OUT_OF_MEMORY : ERRCODE_IO_ERROR),
				 errmsg("could not expand \"%s\": %s", pattern,
						rc == GLOB_NOSPACE ? "out of memory" : "read error")));
	}
	for (size_t i = 0; i < g.gl_pathc; i++)
		paths = lappend(paths, pstrdup(g.gl_pathv[i]));
	globfree(&g);
	return paths;
}

/*
 * What a submit needs of the session, checked before anything else (a
 * table created for it, say): the preload, csvpipe.database, and a
 * snapshot that is not the transaction's.
 */
void
csv_submit_check_session(void)
{
	require_preload("csvpipe.submit");
	require_launcher_database("csvpipe.submit");

	/*
	 * "Once per file" reads the jobs after taking the file's submit lock: a
	 * transaction snapshot older than another session's submit (or than
	 * that job's 'done') would not see it and queue the file again.
	 */
	if (IsolationUsesXactSnapshot())
		ereport(ERROR,
				(errcode(ERRCODE_ACTIVE_SQL_TRANSACTION),
				 errmsg("csvpipe.submit cannot run in a REPEATABLE READ or SERIALIZABLE transaction"),
				 errdetail("Its snapshot may predate another session's job for the same file, which would then be loaded twice."),
				 errhint("Call it in a READ COMMITTED transaction.")));
}

/*
 * csvpipe.submit(path_or_glob, target, columns, workers, <CSV options>,
 *				  atomic, chunk_size, on_error, max_errors, priority, force)
 * RETURNS SETOF bigint
 *
 * Under the 1.0 SQL definition (no force argument: the library was updated,
 * ALTER EXTENSION csvpipe UPDATE not run yet) csvpipe.loaded_file and
 * csvpipe.submit_backoff do not exist: submit skips as 1.0 did.  The
 * overload that takes the target by name (create_target) resolves or
 * creates it, then comes to csv_submit (sniff_sql.c).
 */
Datum
csvpipe_submit(PG_FUNCTION_ARGS)
{
	CsvOptions	opts;

	require_preload("csvpipe.submit");

	/*
	 * The options: validated now and stored resolved (as csvpipe.load records
	 * them), so the job runs as submitted whoever runs it.
	 */
	csv_options_from_fcinfo(&opts, fcinfo, CSV_FN_SUBMIT, "csvpipe.submit");
	if (opts.path == NULL || !OidIsValid(opts.relid))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("csvpipe.submit: path and target must not be NULL")));
	csv_submit_check_session();
	return csv_submit(fcinfo, &opts);
}

/* csvpipe.submit with its options parsed and opts->relid set */
Datum
csv_submit(FunctionCallInfo fcinfo, CsvOptions *optsp)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	CsvOptions	opts = *optsp;
	CsvLoadRequest req;
	char	   *pattern;
	List	   *paths;
	ListCell   *lc;
	bool		literal;
	int32		priority;
	Oid			types[13] = {TEXTOID, OIDOID, BOOLOID, INT4OID, OIDOID, INT8OID, INT8OID,
	INT8OID, INT8OID, INT4OID, TEXTOID, REGCLASSOID, BOOLOID};
	char	   *options;
	Oid			save_userid;
	bool		v1_1;
	bool		force;
	int			held = 0;		/* files skipped for their backoff */
	TimestampTz held_first = 0; /* the earliest end of those backoffs */
	char	   *foreign;		/* the target's foreign tables, for messages */
	int			in_doubt = 0;	/* files skipped: a job may have loaded them */

	/* the 1.0 SQL signature has no force */
	v1_1 = opts.has[CSV_OPT_FORCE];

	csv_load_request_init(&req, &opts);
	pattern = opts.path;

	/* who may submit: as for reading server files, and INSERT on the target */
	if (!has_privs_of_role(GetUserId(), ROLE_PG_READ_SERVER_FILES))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied to submit \"%s\"", pattern),
				 errdetail("Only roles with privileges of the \"pg_read_server_files\" role may load server files with csvpipe."),
				 errhint("A superuser can run GRANT pg_read_server_files TO <role>.")));
	csv_load_check_privileges(req.opts.relid, req.opts.columns);	/* as COPY */

	/* foreign and Citus tables: refused now, not when the job runs (target.c) */
	csv_target_check(req.opts.relid, req.opts.mode == CSV_LOAD_MODE_PREPARED, "csvpipe.submit");
	/* the job runs in a session of its own, which cannot reach this one's temporary tables */
	if (get_rel_persistence(req.opts.relid) == RELPERSISTENCE_TEMP)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("csvpipe.submit cannot queue a load into temporary table \"%s\"",
						get_rel_name(req.opts.relid)),
				 errdetail("The job runs in a session of its own, which cannot see this session's temporary tables."),
				 errhint("Load it in this session with csvpipe.load(..., mode => 'transaction').")));
	/* chunked into foreign tables: each server's ledger, now (shards.c) */
	if (req.opts.mode == CSV_LOAD_MODE_CHUNKED)
		csv_shards_check_chunked(req.opts.relid);
	priority = opts.priority;
	/* jumping ahead of other roles' jobs is acting on them, as a cancel is */
	if (priority > 0 && !superuser() &&
		!has_privs_of_role(GetUserId(), ROLE_PG_SIGNAL_BACKEND))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied to submit with priority %d", priority),
				 errdetail("Only superusers and roles with privileges of the \"pg_signal_backend\" role may submit jobs with a priority above 0; any role may use 0 or less.")));
	force = opts.force;
	foreign = csv_shards_foreign_example(req.opts.relid);

	/* ... with the settings that decide how values are read */
	{
		StringInfoData buf;
		char	   *json = req.options_json;
		const char *names[4] = {"DateStyle", "IntervalStyle", "TimeZone", "lc_monetary"};

		initStringInfo(&buf);
		appendBinaryStringInfo(&buf, json, strlen(json) - 1);	/* without the '}' */
		appendStringInfoString(&buf, ", \"settings\": {");
		for (int i = 0; i < 4; i++)
		{
			if (i > 0)
				appendStringInfoString(&buf, ", ");
			escape_json(&buf, names[i]);
			appendStringInfoString(&buf, ": ");
			escape_json(&buf, GetConfigOption(names[i], false, false));
		}
		appendStringInfoString(&buf, "}}");
		options = buf.data;
	}

	InitMaterializedSRF(fcinfo, MAT_SRF_USE_EXPECTED_DESC);
	paths = expand_paths(pattern, &literal);

	save_userid = GetUserId();

	foreach(lc, paths)
	{
		char	   *path = (char *) lfirst(lc);
		char	   *canonical;
		struct stat st;
		CsvFileId	file;
		Datum		values[13];
		char		nulls[13];
		CsvRows    *r;

		CHECK_FOR_INTERRUPTS();

		/*
		 * Opened and fstat'ed with every check of a read, as the caller: the
		 * identity recorded is the file's that was checked.  A glob's match
		 * that vanished, is not a regular file or leads outside
		 * csvpipe.allowed_dirs is left out, whatever it is.
		 */
		if (!csv_stat_file(path, literal ? 0 : CSV_OPEN_QUIET, &st, &canonical))
			continue;

		/*
		 * One submit at a time per (target, file).  A file counts as already
		 * loaded only by the caller's own jobs: another role's job would tell
		 * the caller that someone loaded the file, and could make its submit
		 * a silent no-op (a job with skip_rows past the end, say).
		 */
		lock_submit(req.opts.relid, canonical);

		csv_file_id(&st, &file);
		memset(nulls, ' ', sizeof(nulls));
		values[0] = CStringGetTextDatum(canonical);
		values[1] = ObjectIdGetDatum(req.opts.relid);
		values[2] = BoolGetDatum(req.opts.atomic);
		values[3] = Int32GetDatum(req.opts.nworkers);
		values[4] = ObjectIdGetDatum(save_userid);
		values[5] = Int64GetDatum(file.size);
		values[6] = Int64GetDatum(file.dev);
		values[7] = Int64GetDatum(file.ino);
		values[8] = Int64GetDatum(file.mtime_ns);
		values[9] = Int32GetDatum(priority);
		values[10] = CStringGetTextDatum(options);
		values[11] = ObjectIdGetDatum(csv_extension_relid("job_id_seq"));

		values[12] = BoolGetDatum(force);

		/*
		 * A transaction-mode job of this file into this target whose
		 * transaction ended after the load without committing: into foreign
		 * tables, a COMMIT that failed on one server may have left its rows
		 * on another (csv_txn_job_in_doubt_sql).  Not again unless forced.
		 */
		if (foreign != NULL && !force && v1_1)
		{
			r = csv_internal_query(psprintf("SELECT 1 FROM @extschema@.job j "
											" WHERE j.target OPERATOR(pg_catalog.=) $2 "
											"   AND j.path OPERATOR(pg_catalog.=) $1 "
											"   AND j.submitted_by OPERATOR(pg_catalog.=) $5 "
											"   AND j.file_size OPERATOR(pg_catalog.=) $6 "
											"   AND j.file_dev OPERATOR(pg_catalog.=) $7 "
											"   AND j.file_ino OPERATOR(pg_catalog.=) $8 "
											"   AND j.file_mtime_ns OPERATOR(pg_catalog.=) $9 "
											"   AND %s LIMIT 1",
											csv_txn_job_in_doubt_sql("j.")),
								   13, types, values, nulls);
			if (r->nrows > 0)
			{
				in_doubt++;
				continue;
			}
		}

		if (!v1_1)
			r = csv_internal_query("INSERT INTO @extschema@.job (job_id, path, target, state, origin, atomic, "
								   "  workers, submitted_by, file_size, file_dev, file_ino, file_mtime_ns, "
								   "  priority, options, submitted_at) "
								   "SELECT pg_catalog.nextval($12), "
								   "       $1, $2, 'queued', 'submit', $3, $4, $5, "
								   "       $6, $7, $8, $9, $10, $11::pg_catalog.jsonb, pg_catalog.now() "
								   " WHERE NOT EXISTS (SELECT 1 FROM @extschema@.job j "
								   "   WHERE j.target = $2 AND j.path = $1 AND j.submitted_by = $5 "
								   "     AND j.file_size = $6 "
								   "     AND j.file_dev = $7 AND j.file_ino = $8 AND j.file_mtime_ns = $9 "
								   "     AND j.state IN ('queued', 'running', 'done')) "
								   "RETURNING job_id",
								   12, types, values, nulls);
		else

			/*
			 * 1.1: also skipped when a loaded-file record (left by purge)
			 * matches, or while the file's failures back off; force ($13)
			 * overrides both and 'done', never 'queued' or 'running'.  A
			 * 'done' transaction-mode load whose (sub)transaction aborted
			 * (load_xid) loaded nothing and does not count.  The
			 * second column says until when a skipped file backs off.
			 */
			r = csv_internal_query("WITH b AS ("
								   "  SELECT pg_catalog.count(*)::pg_catalog.int4 AS n, "
								   "         pg_catalog.max(f.finished_at) AS last "
								   "    FROM @extschema@.job f "
								   "   WHERE f.target = $2 AND f.path = $1 AND f.submitted_by = $5 "
								   "     AND f.file_size = $6 AND f.file_dev = $7 AND f.file_ino = $8 "
								   "     AND f.file_mtime_ns = $9 AND f.state = 'failed'"
								   "), held AS ("
								   "  SELECT b.last + @extschema@.submit_backoff(b.n) AS until FROM b "
								   "   WHERE NOT $13 AND b.n > 0 "
								   "     AND pg_catalog.now() < b.last + @extschema@.submit_backoff(b.n)"
								   "), ins AS ("
								   "  INSERT INTO @extschema@.job (job_id, path, target, state, origin, atomic, "
								   "    workers, submitted_by, file_size, file_dev, file_ino, file_mtime_ns, "
								   "    priority, options, submitted_at) "
								   "  SELECT pg_catalog.nextval($12), "
								   "         $1, $2, 'queued', 'submit', $3, $4, $5, "
								   "         $6, $7, $8, $9, $10, $11::pg_catalog.jsonb, pg_catalog.now() "
								   "   WHERE NOT EXISTS (SELECT 1 FROM @extschema@.job j "
								   "     WHERE j.target = $2 AND j.path = $1 AND j.submitted_by = $5 "
								   "       AND j.file_size = $6 "
								   "       AND j.file_dev = $7 AND j.file_ino = $8 AND j.file_mtime_ns = $9 "
								   "       AND (j.state IN ('queued', 'running') OR (NOT $13 AND j.state = 'done' "
								   "         AND coalesce(pg_catalog.pg_xact_status(j.load_xid), 'committed') "
								   "             OPERATOR(pg_catalog.<>) 'aborted'))) "
								   "     AND ($13 OR NOT EXISTS (SELECT 1 FROM @extschema@.loaded_file l "
								   "       WHERE l.target = $2 AND l.path = $1 AND l.submitted_by = $5 "
								   "         AND l.file_size = $6 AND l.file_dev = $7 AND l.file_ino = $8 "
								   "         AND l.file_mtime_ns = $9)) "
								   "     AND NOT EXISTS (SELECT 1 FROM held) "
								   "  RETURNING job_id"
								   ") "
								   "SELECT ins.job_id, (SELECT held.until FROM held) FROM ins "
								   "UNION ALL "
								   "SELECT NULL, held.until FROM held",
								   13, types, values, nulls);
		if (v1_1 && r->nrows == 1 && CSV_ROW_ISNULL(r, 0, 0))
		{
			/* skipped while it backs off */
			TimestampTz until = DatumGetTimestampTz(CSV_ROW_VALUE(r, 0, 1));

			if (held == 0 || until < held_first)
				held_first = until;
			held++;
			continue;
		}
		if (r->nrows == 1)
		{
			Datum		out[1];
			bool		outnull[1] = {false};

			out[0] = CSV_ROW_VALUE(r, 0, 0);
			tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, out, outnull);
			wake_launcher_at_commit();
		}
	}

	if (in_doubt > 0)
		ereport(NOTICE,
				(errmsg("csvpipe.submit skipped %d file(s) that a transaction-mode job may have loaded into some of the foreign servers of \"%s\"",
						in_doubt, get_rel_name(req.opts.relid)),
				 errdetail("%s.  That job's transaction ended after the load without committing; if it was its COMMIT that failed on one server, another may have kept the rows, and loading the file again would double them there.",
						   foreign),
				 errhint("Check each server's rows from the file; force => true queues it anyway.")));
	if (held > 0)
		ereport(NOTICE,
				(errmsg("csvpipe.submit skipped %d file(s) whose jobs failed recently", held),
				 errdetail("A file whose jobs keep failing is queued again only after csvpipe.submit_backoff, doubled at each failure (at most csvpipe.submit_backoff_max); the first of these after %s.",
						   timestamptz_to_str(held_first)),
				 errhint("csvpipe.jobs shows failures and backoff_until; force => true queues them now.")));
	if (wake_pending && csv_progress_launcher_pid() == 0)
		ereport(NOTICE,
				(errmsg("the csvpipe launcher is not running at the moment"),
				 errdetail("Queued jobs start when it runs; see the server log.")));
	return (Datum) 0;
}

/* ---- csvpipe.cancel, csvpipe.wait, csvpipe.resume ---- */

typedef struct JobRow
{
	char	   *state;			/* as csvpipe.jobs says it: 'rolled back' and
								 * 'uncommitted' too */
	Oid			submitted_by;
	bool		submitted;		/* queued by submit (has options) */
	bool		atomic;
	int			leader_pid;		/* 0: none */
	bool		ours;			/* written by this (uncommitted) transaction */
	bool		loaded_here;	/* 'uncommitted': loaded by this transaction */
} JobRow;

static bool
fetch_job(int64 job_id, bool for_update, JobRow *row)
{
	Oid			types[1] = {INT8OID};
	Datum		values[1];
	CsvRows    *r;

	values[0] = Int64GetDatum(job_id);
	r = csv_internal_query(psprintf("SELECT state, submitted_by, origin = 'submit', atomic, leader_pid, xmin, "
									"  %s "
									"  FROM @extschema@.job WHERE job_id = $1%s",
									csv_txn_job_state_sql(""), for_update ? " FOR UPDATE" : ""),
						   1, types, values, NULL);
	if (r->nrows == 0)
		return false;
	row->state = TextDatumGetCString(CSV_ROW_VALUE(r, 0, 6));
	row->loaded_here = strcmp(row->state, "uncommitted") == 0 &&
		!CSV_ROW_ISNULL(r, 0, 8) &&
		TransactionIdIsCurrentTransactionId(XidFromFullTransactionId(
			DatumGetFullTransactionId(CSV_ROW_VALUE(r, 0, 8))));
	row->submitted_by = CSV_ROW_ISNULL(r, 0, 1) ? InvalidOid :
		DatumGetObjectId(CSV_ROW_VALUE(r, 0, 1));
	row->submitted = DatumGetBool(CSV_ROW_VALUE(r, 0, 2));
	row->atomic = DatumGetBool(CSV_ROW_VALUE(r, 0, 3));
	row->leader_pid = CSV_ROW_ISNULL(r, 0, 4) ? 0 : DatumGetInt32(CSV_ROW_VALUE(r, 0, 4));
	row->ours = TransactionIdIsCurrentTransactionId(DatumGetTransactionId(CSV_ROW_VALUE(r, 0, 5)));
	return true;
}

static void
job_not_found(int64 job_id)
{
	ereport(ERROR,
			(errcode(ERRCODE_UNDEFINED_OBJECT),
			 errmsg("csvpipe job " INT64_FORMAT " does not exist", job_id)));
}

static bool
state_is_final(const char *state)
{
	return strcmp(state, "done") == 0 || strcmp(state, "failed") == 0 ||
		strcmp(state, "cancelled") == 0 || strcmp(state, "rolled back") == 0;
}

/*
 * Another transaction that has inserted or updated the job's row and not
 * ended yet, or InvalidTransactionId.  csvpipe.jobs shows the row as it
 * was before (or not at all, for an insert): a load without workers
 * records its job in the caller's transaction (run.c), and so does its
 * resume, so until that transaction ends the row csvpipe.jobs shows is not
 * the one it will show.  Read with a dirty snapshot through the primary
 * key, as a unique check reads: a row only locked (FOR UPDATE, by cancel)
 * does not count; this transaction's own changes do not either.
 */
static TransactionId
job_row_writer(int64 job_id)
{
	Oid			relid = csv_extension_relid("job");
	Relation	rel = table_open(relid, AccessShareLock);
	Oid			pkey = RelationGetPrimaryKeyIndex(rel);
	SnapshotData dirty;
	ScanKeyData key;
	SysScanDesc scan;
	TransactionId writer = InvalidTransactionId;
	AttrNumber	owner_attnum = get_attnum(relid, "submitted_by");
	HeapTuple	tuple;

	InitDirtySnapshot(dirty);
	ScanKeyInit(&key, get_attnum(relid, "job_id"), BTEqualStrategyNumber,
				F_INT8EQ, Int64GetDatum(job_id));
	scan = systable_beginscan(rel, pkey, OidIsValid(pkey), &dirty, 1, &key);
	while ((tuple = systable_getnext(scan)) != NULL)
	{
		/*
		 * A row another transaction is inserting counts only for a role with
		 * the privileges of its owner: csvpipe.jobs shows no one else a job
		 * before it commits, and neither may wait.
		 */
		if (TransactionIdIsValid(dirty.xmin))
		{
			bool		isnull;
			Datum		owner = heap_getattr(tuple, owner_attnum,
											 RelationGetDescr(rel), &isnull);

			if (isnull || !has_privs_of_role(GetUserId(), DatumGetObjectId(owner)))
				continue;
		}
		/* set by the visibility check of the tuple just returned */
		if (TransactionIdIsValid(dirty.xmin))
			writer = dirty.xmin;
		else if (TransactionIdIsValid(dirty.xmax))
			writer = dirty.xmax;
		if (TransactionIdIsValid(writer))
			break;
	}
	systable_endscan(scan);
	table_close(rel, AccessShareLock);
	return writer;
}

/*
 * The leader of a csvpipe.load job is the caller's own backend: cancel it
 * only under pg_cancel_backend's rules (its role's privileges, or
 * pg_signal_backend; never a superuser's backend for a non-superuser).  A
 * runner is csvpipe's own process, running that one job only, as the job's
 * role: owning the job is enough.
 */
static void
check_cancel_backend(int pid, int64 job_id)
{
	PGPROC	   *proc = BackendPidGetProc(pid);
	Oid			roleid;

	if (proc == NULL)
		return;					/* gone: nothing to signal */
	roleid = proc->roleId;
	if (superuser())
		return;
	if (!OidIsValid(roleid) || superuser_arg(roleid))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied to cancel csvpipe job " INT64_FORMAT, job_id),
				 errdetail("Its leader is a backend of a superuser; only superusers can cancel it.")));
	if (!has_privs_of_role(GetUserId(), roleid) &&
		!has_privs_of_role(GetUserId(), ROLE_PG_SIGNAL_BACKEND))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied to cancel csvpipe job " INT64_FORMAT, job_id),
				 errdetail("Only roles with the privileges of the role whose backend leads the job, or of pg_signal_backend, can cancel it.")));
}

/*
 * csvpipe.cancel(job): a queued job is cancelled at once; a running one's
 * leader (runner, or the backend running csvpipe.load) is sent a cancel
 * request, stops its workers, rolls back what the mode requires and records
 * 'cancelled'.  Returns false when the job had already finished.
 */
Datum
csvpipe_cancel(PG_FUNCTION_ARGS)
{
	int64		job_id = PG_GETARG_INT64(0);
	JobRow		row;
	Oid			types[2] = {INT8OID, TEXTOID};
	Datum		values[2];
	CsvRows    *r;
	int			pid;

	require_preload("csvpipe.cancel");
	if (!fetch_job(job_id, true, &row))
		job_not_found(job_id);
	check_job_owner(job_id, row.submitted_by, "cancel");
	/* an 'uncommitted' load is over: its transaction decides, not a cancel */
	if (state_is_final(row.state) || strcmp(row.state, "uncommitted") == 0)
		PG_RETURN_BOOL(false);

	values[0] = Int64GetDatum(job_id);
	values[1] = CStringGetTextDatum("cancelled by csvpipe.cancel()");
	if (strcmp(row.state, "queued") == 0)
	{
		(void) csv_internal_query("UPDATE @extschema@.job SET state = 'cancelled', finished_at = pg_catalog.now(), "
							   "error = $2 WHERE job_id = $1",
							   2, types, values, NULL);
		PG_RETURN_BOOL(true);
	}

	/* running: its leader, if one has taken it (in this database) */
	pid = csv_progress_job_pid(job_id, CSV_PROC_RUNNER);
	if (pid == 0)
	{
		pid = csv_progress_job_pid(job_id, CSV_PROC_LEADER);
		if (pid != 0)
			check_cancel_backend(pid, job_id);
	}
	if (pid != 0)
	{
		if (kill(pid, SIGINT) != 0 && errno != ESRCH)
			ereport(WARNING,
					(errmsg("could not send a cancel request to PID %d: %m", pid)));
		PG_RETURN_BOOL(true);
	}

	/*
	 * Started by the launcher, but no runner has claimed it yet: cancel the
	 * row; the runner's claim (which needs leader_pid IS NULL and state
	 * 'running') then fails and it exits.  We hold the row lock, so the
	 * claim cannot slip in between.
	 */
	r = csv_internal_query("UPDATE @extschema@.job SET state = 'cancelled', finished_at = pg_catalog.now(), "
						"error = $2 WHERE job_id = $1 AND state = 'running' AND leader_pid IS NULL "
						"RETURNING job_id",
						2, types, values, NULL);
	PG_RETURN_BOOL(r->nrows > 0);
}

/*
 * csvpipe.wait(job, timeout DEFAULT NULL): sleep until the job is done,
 * failed, cancelled or rolled back, and return that state; after timeout,
 * return the state it is in -- never a state that the end of an open
 * transaction may still change, presented as final:
 *
 *	- a transaction-mode load is 'uncommitted' (as csvpipe.jobs says)
 *	  until the transaction that loaded it ends: then 'done' if it
 *	  committed, 'rolled back' if it (or the savepoint around the load)
 *	  aborted.  Waited for; in the loading transaction itself (which
 *	  cannot wait for its own end) 'uncommitted' is returned at once.
 *	- a job row that another transaction has written and not committed
 *	  (a load without workers, or its resume, records the job in the
 *	  caller's transaction: run.c) is waited for too; at the timeout it is
 *	  'uncommitted' if the row as csvpipe.jobs shows it looks final, or is
 *	  not there yet.
 *
 * Each poll (a bookkeeping query, the job's row copied out) allocates in a
 * context of its own, reset before the next poll, so a long wait runs in
 * constant memory; only the result is made in the caller's context.
 */
Datum
csvpipe_wait(PG_FUNCTION_ARGS)
{
	int64		job_id;
	TimestampTz deadline = 0;
	TimestampTz gone_since = 0;
	long		sleep_ms = 10;
	MemoryContext caller = CurrentMemoryContext;
	MemoryContext pollcxt;
	char	   *result = NULL;

	require_preload("csvpipe.wait");
	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	job_id = PG_GETARG_INT64(0);
	if (IsolationUsesXactSnapshot())
		ereport(ERROR,
				(errcode(ERRCODE_ACTIVE_SQL_TRANSACTION),
				 errmsg("csvpipe.wait cannot run in a REPEATABLE READ or SERIALIZABLE transaction"),
				 errdetail("Its snapshot would never show the job's progress.")));
	if (!PG_ARGISNULL(1))
	{
		Interval   *timeout = PG_GETARG_INTERVAL_P(1);
		int64		usecs = timeout->time +
			(int64) timeout->day * USECS_PER_DAY +
			(int64) timeout->month * DAYS_PER_MONTH * USECS_PER_DAY;

		deadline = GetCurrentTimestamp() + Max(usecs, 0);
	}

	pollcxt = AllocSetContextCreate(caller, "csvpipe wait poll",
									ALLOCSET_SMALL_SIZES);
	for (;;)
	{
		JobRow		row;
		bool		found;
		bool		pending;	/* the row shown is not the row to come */
		long		wait_ms = sleep_ms;

		CHECK_FOR_INTERRUPTS();
		MemoryContextReset(pollcxt);
		MemoryContextSwitchTo(pollcxt);
		found = fetch_job(job_id, false, &row);
		pending = TransactionIdIsValid(job_row_writer(job_id));
		MemoryContextSwitchTo(caller);
		if (!found && !pending)
			job_not_found(job_id);
		/* loaded by this very transaction: its end is the caller's to decide */
		if (found && row.loaded_here)
		{
			result = row.state;
			break;
		}
		if (found && !pending && state_is_final(row.state))
		{
			result = row.state;
			break;
		}

		/*
		 * A csvpipe.load job whose session died stays 'running' for good (the
		 * launcher only takes care of queued jobs).  Its leader holds a status
		 * slot from before the job row exists until after its end is
		 * recorded, so no slot for a while means it is gone.
		 */
		if (found && !row.submitted && strcmp(row.state, "running") == 0 &&
			csv_progress_job_pid(job_id, CSV_PROC_NONE) == 0 && !pending)
		{
			if (gone_since == 0)
				gone_since = GetCurrentTimestamp();
			else if (TimestampDifferenceExceeds(gone_since, GetCurrentTimestamp(), 1000))
				ereport(ERROR,
						(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
						 errmsg("csvpipe job " INT64_FORMAT " was interrupted: the session that ran csvpipe.load is gone", job_id),
						 errdetail("It stays 'running' in csvpipe.jobs, with leader_gone = true."),
						 errhint("SELECT csvpipe.resolve_prepared() rolls back what an atomic load left prepared.")));
		}
		else
			gone_since = 0;
		if (found && row.ours)
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("csvpipe job " INT64_FORMAT " was queued in this transaction", job_id),
					 errdetail("The launcher cannot see it before the transaction commits."),
					 errhint("Commit first, then call csvpipe.wait.")));
		if (deadline != 0)
		{
			TimestampTz now = GetCurrentTimestamp();

			if (now >= deadline)
			{
				result = (!found || (pending && state_is_final(row.state))) ?
					"uncommitted" : row.state;
				break;
			}
			wait_ms = Min(wait_ms, (deadline - now) / 1000 + 1);
		}
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 wait_ms, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		sleep_ms = Min(sleep_ms * 2, 200);
	}
	/* row.state lives in pollcxt: copy it out before freeing that */
	{
		text	   *state = cstring_to_text(result);

		MemoryContextDelete(pollcxt);
		PG_RETURN_TEXT_P(state);
	}
}

/* Was job_id queued by csvpipe.submit?  (false if it does not exist) */
static bool
csv_job_is_submitted(int64 job_id)
{
	JobRow		row;

	return fetch_job(job_id, false, &row) && row.submitted;
}

/*
 * csvpipe.resume(job) for a job queued by submit: put a failed or cancelled
 * job back in the queue.  An atomic job runs again from the start; a
 * chunked one loads only the chunks missing from the ledger, which needs
 * the file it started on.
 */
static void
csv_job_requeue(int64 job_id)
{
	JobRow		row;
	Oid			types[1] = {INT8OID};
	Datum		values[1];
	CsvRows    *r;

	require_preload("csvpipe.resume");
	require_launcher_database("csvpipe.resume");
	if (!fetch_job(job_id, true, &row))
		job_not_found(job_id);
	check_job_owner(job_id, row.submitted_by, "resume");
	if (strcmp(row.state, "failed") != 0 && strcmp(row.state, "cancelled") != 0 &&
		strcmp(row.state, "rolled back") != 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("csvpipe job " INT64_FORMAT " is %s; only failed, cancelled or rolled back jobs can be resumed",
						job_id, row.state),
				 strcmp(row.state, "running") == 0 ?
				 errhint("The launcher resumes a queued job whose runner is gone by itself.") : 0));

	values[0] = Int64GetDatum(job_id);
	/* a transaction-mode job whose COMMIT may have left rows on a server (run.c) */
	r = csv_internal_query(psprintf("SELECT j.target, %s FROM @extschema@.job j "
									"WHERE j.job_id OPERATOR(pg_catalog.=) $1",
									csv_txn_job_in_doubt_sql("j.")),
						   1, types, values, NULL);
	if (r->nrows == 1)
		csv_resume_check_in_doubt(job_id, DatumGetObjectId(CSV_ROW_VALUE(r, 0, 0)),
								  !CSV_ROW_ISNULL(r, 0, 1) && DatumGetBool(CSV_ROW_VALUE(r, 0, 1)));
	if (!row.atomic)
	{
		r = csv_internal_query("SELECT j.path, j.file_size, j.file_dev, j.file_ino, j.file_mtime_ns, "
							"  (SELECT count(*) FROM @extschema@.chunks c WHERE c.job_id = j.job_id) "
							"FROM @extschema@.job j WHERE j.job_id = $1",
							1, types, values, NULL);
		if (DatumGetInt64(CSV_ROW_VALUE(r, 0, 5)) > 0)
		{
			char	   *path = TextDatumGetCString(CSV_ROW_VALUE(r, 0, 0));
			CsvFileId	recorded = {-1, -1, -1, -1};

			if (!CSV_ROW_ISNULL(r, 0, 1))
			{
				recorded.size = DatumGetInt64(CSV_ROW_VALUE(r, 0, 1));
				recorded.dev = DatumGetInt64(CSV_ROW_VALUE(r, 0, 2));
				recorded.ino = DatumGetInt64(CSV_ROW_VALUE(r, 0, 3));
				recorded.mtime_ns = DatumGetInt64(CSV_ROW_VALUE(r, 0, 4));
			}
			csv_check_job_file(path, job_id, &recorded);
		}
	}
	if (csv_txn_job_has_parts(job_id))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("csvpipe job " INT64_FORMAT " still has prepared transactions", job_id),
				 errhint("Run SELECT csvpipe.resolve_prepared() first.")));

	(void) csv_internal_query("UPDATE @extschema@.job SET state = 'queued', retries = retries + 1, "
						   "started_at = NULL, finished_at = NULL, error = NULL, decision = NULL, "
						   "leader_pid = NULL "
						   "WHERE job_id = $1",
						   1, types, values, NULL);
	wake_launcher_at_commit();
}

/*
 * csvpipe.resume(job): a job queued by csvpipe.submit goes back in the
 * queue, and the call returns at once (its runner skips the ledger's
 * chunks); a job csvpipe.load started is finished here, in this session
 * (run.c).
 */
Datum
csvpipe_resume(PG_FUNCTION_ARGS)
{
	int64		job_id = PG_GETARG_INT64(0);
	TupleDesc	resdesc;
	CsvLoadResult res;

	if (get_call_result_type(fcinfo, NULL, &resdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "csvpipe.resume must return a row");

	if (csv_job_is_submitted(job_id))
	{
		Datum		result[6];
		bool		resnulls[6] = {false, true, true, true, true, true};

		csv_job_requeue(job_id);
		result[0] = Int64GetDatum(job_id);
		PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(BlessTupleDesc(resdesc), result, resnulls)));
	}
	csv_resume_load(job_id, &res);
	PG_RETURN_DATUM(csv_load_result_datum(resdesc, &res));
}
