/*-------------------------------------------------------------------------
 *
 * cache.h
 *		The shared result cache of csvpipe.read / csvpipe.read_text (cache.c).
 *
 * One CsvCacheRead accompanies one read (srf.c's CsvReadState) when the
 * cache is in use.  It either serves the read from a cached entry (a hit),
 * or records the rows the read produces and publishes them as an entry
 * when the read reaches the end of the file (a miss that builds), or does
 * nothing (a miss that does not build: someone else is building the same
 * entry, or the entry could not be stored).  It is released with the memory
 * context it was created in, so a read that stops early (LIMIT, error,
 * cancel) never publishes and never keeps an entry pinned.
 *
 *-------------------------------------------------------------------------
 */
#ifndef CSVPIPE_CACHE_H
#define CSVPIPE_CACHE_H

#include "csvfile.h"

typedef struct CsvCacheRead CsvCacheRead;

typedef enum CsvCacheStatus
{
	CSV_CACHE_HIT,				/* served from memory */
	CSV_CACHE_BUILD,			/* a miss; the rows are being recorded */
	CSV_CACHE_STORED,			/* a miss whose rows were stored at the end */
	CSV_CACHE_MISS				/* a miss that stores nothing */
} CsvCacheStatus;

/* the cache's GUCs, and its shared memory when preloading (from _PG_init) */
extern void csv_cache_init(void);

/* GUCs (cache.c) */
extern int	csvpipe_cache_size;
extern int	csvpipe_cache_ttl;
extern int	csvpipe_cache_max_entry_percent;
extern int	csvpipe_cache_version;

extern CsvCacheRead *csv_cache_lookup(const char *path, const CsvDialect *dialect,
									  bool text_mode, TupleDesc tupdesc,
									  const bool *convert, bool may_build);
extern CsvCacheStatus csv_cache_status(CsvCacheRead *cr);
extern void csv_cache_file_opened(CsvCacheRead *cr, const CsvFileId *file);
extern bool csv_cache_next(CsvCacheRead *cr, Datum *values, bool *nulls,
						   int upto);
extern void csv_cache_add(CsvCacheRead *cr, Datum *values, bool *nulls);
extern void csv_cache_finish(CsvCacheRead *cr);
extern void csv_cache_abandon(CsvCacheRead *cr);

#endif							/* CSVPIPE_CACHE_H */
