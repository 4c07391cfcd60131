/*-------------------------------------------------------------------------
 *
 * progress.h
 *		Status slots in shared memory behind csvpipe.progress,
 *		csvpipe.workers and csvpipe.jobs, and the launcher's latch
 *		(progress.c).
 *
 * Every function here is a no-op when csvpipe was not preloaded (no shared
 * memory), except that csvpipe.load's progress NOTICEs still work: they come
 * from process-local counters.
 *
 *-------------------------------------------------------------------------
 */
#ifndef CSVPIPE_PROGRESS_H
#define CSVPIPE_PROGRESS_H

#include "postgres.h"
#include "settings.h"

/* What kind of process a slot describes (csvpipe.workers.kind) */
typedef enum CsvProcKind
{
	CSV_PROC_NONE = 0,
	CSV_PROC_LEADER,			/* a backend running csvpipe.load */
	CSV_PROC_LAUNCHER,			/* the job launcher */
	CSV_PROC_RUNNER,			/* a job runner (leader of a queued job) */
	CSV_PROC_WORKER,			/* a parallel engine worker */
	CSV_PROC_COORDINATOR		/* an atomic load's commit coordinator */
} CsvProcKind;

/* _PG_init, preloading only: request shared memory, install the hooks */
extern void csv_progress_shmem_init(void);
extern bool csv_progress_available(void);

/* background processes: take this process's slot until it exits */
extern void csv_progress_register(CsvProcKind kind, int64 job_id, int leader_pid);
extern void csv_progress_set_state(const char *state);
extern void csv_progress_set_job(int64 job_id);
extern void csv_progress_set_user(Oid userid);	/* whose counters the slot holds */
extern void csv_progress_count(int64 n);	/* launcher: jobs started */

/* the leader of a load (csvpipe.load's backend, or a job runner) */
extern void csv_progress_load_begin(int64 job_id, bool notices);
extern void csv_progress_load_started(int64 bytes_total, int workers);
extern void csv_progress_dispatched(int64 chunk_no, int64 end_offset);
extern void csv_progress_chunk_done(int64 rows_total, int64 rejected_total);
extern void csv_progress_rows(int64 rows_total, int64 bytes_done);
extern void csv_progress_phase(const char *phase);
extern void csv_progress_load_end(void);

/* a parallel engine worker, around each chunk */
extern void csv_progress_worker(const char *state, int64 chunk_no, int64 rows_total);

/* the launcher: advertise this process's latch; wake it from elsewhere */
extern void csv_progress_set_launcher(bool running);
extern void csv_progress_wake_launcher(void);
extern int	csv_progress_launcher_pid(void);

/*
 * Is a csvpipe process (of kind, or any kind for CSV_PROC_NONE) working on
 * job_id of this database (or of datid)?  Returns its pid (the first found), 0 if none.
 */
extern int	csv_progress_job_pid(int64 job_id, CsvProcKind kind);
extern int	csv_progress_db_job_pid(Oid datid, int64 job_id, CsvProcKind kind);

#endif							/* CSVPIPE_PROGRESS_H */
