/*-------------------------------------------------------------------------
 *
 * settings.c
 *		csvpipe's own settings (GUCs) that every layer reads.
 *
 * Settings owned by one layer are defined there (the cache's in
 * cache.c, submit's backoff in purge.c); _PG_init defines them all before
 * it reserves the "csvpipe." prefix, because reserving it drops any
 * csvpipe.* value from postgresql.conf not defined yet.
 *
 * Plain backend-local variables: no shared state, no locking.
 *
 *-------------------------------------------------------------------------
 */
#include "settings.h"

#include "miscadmin.h"
#include "utils/guc.h"
#include "utils/memutils.h"

char	   *csvpipe_allowed_dirs = NULL;
int			csvpipe_max_field_size = (int) (MaxAllocSize - VARHDRSZ - 1);
bool		csvpipe_preloaded = false;
int			csvpipe_max_workers = 4;
int			csvpipe_chunk_size = 2048;	/* kB */
int			csvpipe_queue_size = 4096;	/* kB */
char	   *csvpipe_database = NULL;
int			csvpipe_max_retries = 3;
int			csvpipe_retry_delay = 100;	/* ms */
int			csvpipe_max_jobs = 2;
bool		csvpipe_progress_notices = false;
int			csvpipe_debug_fault = CSV_FAULT_NONE;

static const struct config_enum_entry debug_fault_options[] = {
	{"none", CSV_FAULT_NONE, false},
	{"lose_worker_after_label", CSV_FAULT_LOSE_WORKER_AFTER_LABEL, false},
	{"lose_idle_worker", CSV_FAULT_LOSE_IDLE_WORKER, false},
	{NULL, 0, false}
};

/* the settings every backend has */
void
csv_settings_define(void)
{
	csvpipe_preloaded = process_shared_preload_libraries_in_progress;

	DefineCustomStringVariable("csvpipe.allowed_dirs",
							   "Directories csvpipe may read files from (comma-separated; empty = no restriction beyond pg_read_server_files).",
							   "Checked on the canonical path, after symlinks and \"..\" are resolved.",
							   &csvpipe_allowed_dirs,
							   "",
							   PGC_SUSET,
							   0,
							   NULL, NULL, NULL);

	DefineCustomIntVariable("csvpipe.max_field_size",
							"Largest CSV field csvpipe accepts.",
							"A longer field is an error naming its line; at most 1GB, a PostgreSQL value's limit.",
							&csvpipe_max_field_size,
							(int) (MaxAllocSize - VARHDRSZ - 1),
							1024,
							(int) (MaxAllocSize - VARHDRSZ - 1),
							PGC_USERSET,
							GUC_UNIT_BYTE,
							NULL, NULL, NULL);

	DefineCustomIntVariable("csvpipe.max_workers",
							"Most background workers one csvpipe call may use.",
							"Also bounded by free background worker slots (max_worker_processes).",
							&csvpipe_max_workers,
							4, 0, 64,
							PGC_SUSET,
							0,
							NULL, NULL, NULL);

	DefineCustomIntVariable("csvpipe.chunk_size",
							"Bytes of CSV per chunk handed to a worker.",
							"Chunks end at record boundaries, so they may be a little larger.",
							&csvpipe_chunk_size,
							2048, 1, 1024 * 1024,
							PGC_USERSET,
							GUC_UNIT_KB,
							NULL, NULL, NULL);

	DefineCustomIntVariable("csvpipe.queue_size",
							"Size of each worker's reply queue in a parallel read.",
							"Rows a worker has parsed wait there for the leader; memory of a parallel read is bounded by workers x queue size, hence a superuser setting.",
							&csvpipe_queue_size,
							4096, 64, 1024 * 1024,
							PGC_SUSET,
							GUC_UNIT_KB,
							NULL, NULL, NULL);

	DefineCustomIntVariable("csvpipe.max_retries",
							"Times a batch or chunk is retried after a transient error.",
							"Deadlocks, serialization failures and lock timeouts are retried with exponential backoff; so is a chunk whose worker was lost.",
							&csvpipe_max_retries,
							3, 0, 100,
							PGC_USERSET,
							0,
							NULL, NULL, NULL);

	DefineCustomIntVariable("csvpipe.retry_delay",
							"First backoff delay before a retry; doubles at each attempt.",
							NULL,
							&csvpipe_retry_delay,
							100, 0, 60000,
							PGC_USERSET,
							GUC_UNIT_MS,
							NULL, NULL, NULL);

	DefineCustomBoolVariable("csvpipe.progress_notices",
							 "Makes csvpipe.load report its progress in NOTICE messages.",
							 "At most one NOTICE a second; csvpipe.load(progress => ...) overrides it for one call.",
							 &csvpipe_progress_notices,
							 false,
							 PGC_USERSET,
							 0,
							 NULL, NULL, NULL);

	DefineCustomEnumVariable("csvpipe.debug_fault",
							 "Makes a fault happen at one moment of a load (csvpipe.load with workers), for tests only.",
							 "none; lose_worker_after_label: the leader stops the worker it has just sent the label of a chunk it converted, before the chunk's rows follow; lose_idle_worker: the leader stops a worker that holds no chunk just before it sends it one (once per load).",
							 &csvpipe_debug_fault,
							 CSV_FAULT_NONE,
							 debug_fault_options,
							 PGC_SUSET,
							 GUC_NOT_IN_SAMPLE,
							 NULL, NULL, NULL);
}

/* the launcher's settings */
void
csv_settings_define_launcher(void)
{
	/*
	 * The settings of the launcher exist only when preloading (a
	 * PGC_POSTMASTER setting cannot be defined later).  Every setting is
	 * defined before the prefix is reserved: reserving it drops any
	 * "csvpipe." value from postgresql.conf not defined yet.
	 */
	if (!process_shared_preload_libraries_in_progress)
		return;

	DefineCustomStringVariable("csvpipe.database",
							   "Database csvpipe's own background workers connect to.",
							   "The database where CREATE EXTENSION csvpipe was run.",
							   &csvpipe_database,
							   "postgres",
							   PGC_POSTMASTER,
							   0,
							   NULL, NULL, NULL);

	DefineCustomIntVariable("csvpipe.max_jobs",
							"Most queued jobs (csvpipe.submit) that run at the same time.",
							"Each running job uses one background worker for its runner plus its load's workers; 0 pauses the queue.",
							&csvpipe_max_jobs,
							2, 0, 1000,
							PGC_SIGHUP,
							0,
							NULL, NULL, NULL);
}
