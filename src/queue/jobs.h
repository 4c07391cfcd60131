/*-------------------------------------------------------------------------
 *
 * jobs.h
 *		The job queue (jobs.c: submit, cancel, wait, resume) and its
 *		launcher and runner background workers (launcher.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef CSVPIPE_JOBS_H
#define CSVPIPE_JOBS_H

#include "csvfile.h"
#include "internal_sql.h"
#include "options.h"

#include "fmgr.h"

#include "postmaster/bgworker.h"

/* a job interrupted this many times (runner gone) is failed, not re-queued */
#define CSV_JOB_MAX_RESTARTS	3

/* Arguments of a job runner, passed in bgw_extra */
typedef struct CsvRunnerArgs
{
	Oid			database_id;
	Oid			role_id;		/* the submitting role */
	bool		connect_as_role;	/* else: superuser, then switch to role */
	int32		attempt;		/* csvpipe.job.attempt this runner was started for */
	int64		job_id;
} CsvRunnerArgs;

StaticAssertDecl(sizeof(CsvRunnerArgs) <= BGW_EXTRALEN, "CsvRunnerArgs must fit in bgw_extra");

/* purge.c: csvpipe.purge, submit's backoff and its settings */
extern int	csv_backoff_secs;
extern int	csv_backoff_max_secs;
extern void csv_purge_init(void);

/* jobs.c: csvpipe.submit, for its overload that takes the target by name */
extern void csv_submit_check_session(void);
extern Datum csv_submit(FunctionCallInfo fcinfo, CsvOptions *opts);

/* launcher.c */
extern void csv_launcher_register(void);
extern PGDLLEXPORT void csvpipe_launcher_main(Datum main_arg);
extern PGDLLEXPORT void csvpipe_runner_main(Datum main_arg);

#endif							/* CSVPIPE_JOBS_H */
