/*-------------------------------------------------------------------------
 *
 * settings.h
 *		csvpipe's own settings (settings.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef CSVPIPE_SETTINGS_H
#define CSVPIPE_SETTINGS_H

#include "postgres.h"

extern char *csvpipe_allowed_dirs;
extern int	csvpipe_max_field_size;
extern bool csvpipe_preloaded;
extern int	csvpipe_max_workers;

/* workers of one call at most, whatever csvpipe.max_workers says */
#define CSVPIPE_MAX_WORKERS		64

extern int	csvpipe_chunk_size;
extern int	csvpipe_queue_size;
extern char *csvpipe_database;
extern int	csvpipe_max_retries;
extern int	csvpipe_retry_delay;
extern int	csvpipe_max_jobs;
extern bool csvpipe_progress_notices;

/*
 * csvpipe.debug_fault: a fault the tests make happen at one precise moment
 * that no timing can hit reliably (superuser only; doc/hacking.md).
 */
typedef enum CsvDebugFault
{
	CSV_FAULT_NONE,
	CSV_FAULT_LOSE_WORKER_AFTER_LABEL,	/* stop the worker a converted chunk's
										 * label was just sent to */
	CSV_FAULT_LOSE_IDLE_WORKER	/* stop a worker that holds no chunk, just
								 * before sending it one */
} CsvDebugFault;

extern int	csvpipe_debug_fault;

extern void csv_settings_define(void);
extern void csv_settings_define_launcher(void);

#endif							/* CSVPIPE_SETTINGS_H */
