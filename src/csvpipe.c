/*-------------------------------------------------------------------------
 *
 * csvpipe.c
 *		Module entry point: _PG_init defines the settings (src/core/settings.c)
 *		and those of the layers that own them, then registers hooks, shared
 *		memory and the launcher.
 *
 * csvpipe works loaded on demand (the streaming readers) and preloaded
 * through shared_preload_libraries (needed by the features that use shared
 * memory and background workers; those check csvpipe_preloaded and say so).
 *
 *-------------------------------------------------------------------------
 */
#include "csvfile.h"
#include "settings.h"
#include "cache.h"
#include "jobs.h"
#include "progress.h"
#include "scan.h"
#include "sniff.h"

#include "miscadmin.h"
#include "postmaster/bgworker.h"
#include "utils/guc.h"
#include "utils/memutils.h"

PG_MODULE_MAGIC;

void		_PG_init(void);

void
_PG_init(void)
{
	csv_settings_define();
	csv_cache_init();			/* cache GUCs; shared memory when preloading */
	csv_purge_init();			/* submit's backoff settings (purge.c) */

	csv_settings_define_launcher();

	/* only now: reserving the prefix drops csvpipe.* values not defined yet */
#if PG_VERSION_NUM >= 150000
	MarkGUCPrefixReserved("csvpipe");
#else
	EmitWarningsOnPlaceholders("csvpipe");
#endif

	csvpipe_scan_init();
	csv_sniff_init();			/* the dialect hint of malformed records */

	if (!process_shared_preload_libraries_in_progress)
		return;

	/* status slots for the views, and the launcher's latch */
	csv_progress_shmem_init();

	/*
	 * The job launcher: serves the queue in csvpipe.database, and at each
	 * start resolves the prepared parts of atomic loads a crash left behind.
	 */
	csv_launcher_register();
}
