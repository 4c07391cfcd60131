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

extern void csv_settings_define(void);
extern void csv_settings_define_launcher(void);

#endif							/* CSVPIPE_SETTINGS_H */
