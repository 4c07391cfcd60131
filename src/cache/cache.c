/*-------------------------------------------------------------------------
 *
 * cache.c
 *		The shared result cache of csvpipe.read and csvpipe.read_text.
 *
 * Owns the cache's shared memory, its GUCs (csvpipe.cache_size, cache_ttl,
 * cache_max_entry_percent, cache_version), the shmem_request/startup hooks
 * that create it, the csvpipe.cache / csvpipe.cache_stats views' functions,
 * csvpipe.cache_invalidate() and csvpipe.cache_reset_stats().
 *
 * What is cached.  The rows of one complete read of one file: every row the
 * read returned, as MinimalTuples in the read's row type, appended to a
 * chain of DSA chunks as the read produces them.  An entry is identified by
 *
 *	  - the file: canonical path (realpath), st_dev, st_ino, st_size,
 *		st_mtime and st_ctime in nanoseconds, as fstat() reports them for
 *		the file opened when the read starts (csv_open_file: privileges,
 *		csvpipe.allowed_dirs, no symbolic link followed), on a hit as on a
 *		miss: a hit is refused whatever a miss would refuse, and a change
 *		of permissions or owner (ctime) is a miss;
 *	  - a signature of everything else the rows depend on: database, read or
 *		read_text, the dialect (delimiter, quote, header, null_string,
 *		encoding, skip_rows), the output columns' types, typmods and
 *		collations and which of them were converted (the scan converts only
 *		the columns a query uses), the column names when header => 'match',
 *		and for typed reads the settings type input depends on (TimeZone,
 *		DateStyle, IntervalStyle, lc_monetary);
 *	  - csvpipe.cache_version.
 *
 * The dshash key is (hash of the path, hash of the signature): there is at
 * most one entry per file and signature.  The entry's body holds the rest of
 * the identity (stat fields, version, and the path and signature themselves,
 * compared byte for byte), so a lookup that finds an entry for an older
 * state of the file replaces it at once rather than leaving it to age out.
 * A read whose columns were only partly converted is also served by a fully
 * converted entry of the same file.
 *
 * Only reads whose columns are all of types with fixed input (those of the
 * bootstrap catalogs) are cached: a domain's constraints, an enum's labels
 * or a user type's input function can change, and rows converted before
 * would then be served although a read now would reject them.
 *
 * An entry belongs to its database: the csvpipe.cache view shows only this
 * database's entries.
 *
 * A file modified within the second before the read started is read but not
 * stored: a write in the same clock tick as the stat could otherwise leave
 * the size and mtime unchanged (the "racily clean" problem of make and git).
 *
 * Memory.  The entries live in a DSA area created in place in a small piece
 * of fixed shared memory at startup (by the postmaster, which cannot create
 * DSM segments; the area grows with DSM segments when backends allocate).
 * csvpipe.cache_size bounds the bytes the entries take (bodies and chunks,
 * as allocated); a builder reserves each chunk before allocating it and
 * evicts least recently used entries to make room.  An entry larger than
 * csvpipe.cache_max_entry_percent of the cache is abandoned as soon as it
 * would cross that size.  Freed entries return their memory to the area
 * (dsa_free), where later entries reuse it.
 *
 * Entry life cycle (CacheBody.state):
 *
 *	  BUILDING	created by the reader that missed; only that reader writes
 *				its chunks.  Other readers of the same entry do not wait:
 *				they read the file themselves and store nothing.
 *	  READY		published at the end of a complete read; immutable from now
 *				on except for its statistics; in the LRU list.
 *	  DYING		picked by an evictor, which owns it: it removes the hash
 *				entry that points to it (if any still does) and frees it.
 *	  DEAD		no longer reachable from the hash table; freed by whoever
 *				drops its refcount to zero.
 *
 * Readers pin a READY body (refcount) for as long as they stream it, so an
 * entry invalidated meanwhile is freed only after its last reader is done;
 * eviction skips pinned entries.  A builder holds one reference to its own
 * body.  A backend's references are dropped by a memory context callback on
 * the read's context, which runs at the end of the read, on error or cancel
 * (transaction abort deletes the executor's memory), and at backend exit
 * (which aborts the open transaction first).
 *
 * Locking protocol:
 *
 *	  - A dshash partition lock protects a hash entry and its body pointer.
 *		A body pointed to by a hash entry is never freed: bodies are unlinked
 *		from the hash table (under the partition lock) before they can be
 *		freed.  Partition locks are held only around a lookup, an insert or
 *		a delete, never across row output, and never two at a time.
 *	  - CacheShared.lock (the "csvpipe_cache" LWLock) protects the counters,
 *		bytes_used, the LRU list, and every body's state, refcount, bytes,
 *		hits and times.  It is taken after a partition lock, never before
 *		one, and held only for a few field updates.
 *	  - A body's identity, path and signature are immutable; its chunks are
 *		written only by its builder while BUILDING, and read only after it
 *		was made READY under CacheShared.lock (the lock's barriers publish
 *		the writes).  dsa_allocate/dsa_free take the area's own locks, which
 *		are innermost.
 *
 * Without shared_preload_libraries there is no cache: reads run uncached and
 * the SQL functions of this file raise an error saying so.
 *
 *-------------------------------------------------------------------------
 */
#include "csvfile.h"
#include "cache.h"
#include "options.h"

#include <sys/stat.h>
#include <time.h>

#include "access/htup_details.h"
#include "access/transam.h"
#include "catalog/pg_authid.h"
#include "common/hashfn.h"
#include "funcapi.h"
#include "lib/dshash.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "storage/ipc.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/dsa.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"
#include "utils/tuplestore.h"

PG_FUNCTION_INFO_V1(csvpipe_cache_1_0);
PG_FUNCTION_INFO_V1(csvpipe_cache_stats_1_0);
PG_FUNCTION_INFO_V1(csvpipe_cache_reset_stats);
PG_FUNCTION_INFO_V1(csvpipe_cache_invalidate);

int			csvpipe_cache_size = 64;	/* MB; 0 disables */
int			csvpipe_cache_ttl = 0;	/* seconds; 0 = no expiry */
int			csvpipe_cache_max_entry_percent = 25;
int			csvpipe_cache_version = 1;

/* fixed shared memory holding the start of the DSA area (and the dshash) */
#define CACHE_DSA_INIT_SIZE		(256 * 1024)
/*
 * Chunk sizes: an eighth of what the entry has so far, between these bounds,
 * so that a small file takes little memory and the reservation made ahead
 * of the rows (which can evict other entries) exceeds the entry's final
 * size by at most an eighth.  The last chunk is trimmed at the end.
 */
#define CHUNK_MIN_SIZE			(16 * 1024)
#define CHUNK_MAX_SIZE			(1024 * 1024)
/* unused tail of the last chunk worth giving back at the end of a build */
#define CHUNK_TRIM_SLACK		(4 * 1024)
/* files modified this recently before a read starts are not stored */
#define RACY_WINDOW_NS			INT64CONST(1000000000)

typedef struct CacheKey
{
	uint64		path_hash;
	uint64		sig_hash;
} CacheKey;

typedef struct CacheHashEntry
{
	CacheKey	key;
	dsa_pointer body;			/* never InvalidDsaPointer once released */
} CacheHashEntry;

typedef enum BodyState
{
	BODY_BUILDING,
	BODY_READY,
	BODY_DYING,
	BODY_DEAD
} BodyState;

/* A chunk of rows: header, then MAXALIGNed MinimalTuples */
typedef struct CacheChunk
{
	dsa_pointer next;
	Size		used;			/* bytes of tuples after the header */
} CacheChunk;

#define CHUNK_HDR	MAXALIGN(sizeof(CacheChunk))

typedef struct CacheBody
{
	CacheKey	key;			/* of the hash entry that points here */
	/* protected by CacheShared.lock */
	BodyState	state;
	bool		too_large;		/* READY marker: the read is too large to store */
	int			refcount;
	dsa_pointer lru_prev;		/* towards the most recently used */
	dsa_pointer lru_next;
	Size		bytes;			/* this body + its chunks, as allocated */
	Size		header_bytes;	/* this body alone */
	int64		hits;
	TimestampTz created_at;
	TimestampTz last_used_at;
	/* identity: immutable */
	CsvFileId	file;
	int			version;
	Oid			dbid;
	bool		text_mode;
	int			path_len;
	int			sig_len;
	int			options_len;
	int			columns_len;
	/* contents: written by the builder, immutable once READY */
	dsa_pointer first_chunk;
	int64		rows;
	/* path \0 options \0 columns \0 signature */
	char		data[FLEXIBLE_ARRAY_MEMBER];
} CacheBody;

#define BODY_PATH(b)	((b)->data)
#define BODY_OPTIONS(b) ((b)->data + (b)->path_len + 1)
#define BODY_COLUMNS(b) (BODY_OPTIONS(b) + (b)->options_len + 1)
#define BODY_SIG(b)		(BODY_COLUMNS(b) + (b)->columns_len + 1)

typedef struct CacheShared
{
	LWLock	   *lock;
	int			dsa_tranche;
	int			hash_tranche;
	dshash_table_handle hash_handle;
	/* protected by lock */
	int			version;		/* csvpipe.cache_version of the entries */
	Size		bytes_used;
	int64		entries;		/* READY bodies */
	dsa_pointer lru_head;		/* most recently used */
	dsa_pointer lru_tail;		/* least recently used */
	int64		hits;
	int64		misses;
	int64		evictions;
	int64		invalidations;
	int64		too_large;
	TimestampTz stats_reset;
	/* the DSA area's first segment, created in place */
	char		area[FLEXIBLE_ARRAY_MEMBER];
} CacheShared;

/* What one read's file and signature are */
typedef struct CacheIdentity
{
	CacheKey	key;
	char	   *sig;
	int			sig_len;
} CacheIdentity;

struct CsvCacheRead
{
	CsvCacheStatus status;
	MemoryContextCallback cb;
	TupleDesc	tupdesc;
	char	   *path;			/* canonical */
	CsvFileId	file;
	int64		start_ns;		/* wall clock when the read started */
	bool		text_mode;
	CacheIdentity id;			/* as asked */
	CacheIdentity full_id;		/* all columns converted (if id is partial) */
	char	   *options;
	char	   *columns;

	dsa_pointer body_dp;		/* the pinned (hit) or built body */
	CacheBody  *body;

	/* hit: position */
	CacheChunk *chunk;
	Size		off;

	/* build: the chunk being filled */
	dsa_pointer cur_dp;
	dsa_pointer prev_dp;
	CacheChunk *cur;
	Size		cur_size;
	Size		cur_used;
	Size		chunk_bytes;	/* all chunks so far */
	int64		rows;
};

static CacheShared *cache_shared = NULL;
static dsa_area *cache_area = NULL;
static dshash_table *cache_hash = NULL;

static shmem_request_hook_type prev_shmem_request_hook = NULL;
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;

static dshash_parameters cache_hash_params = {
	.key_size = sizeof(CacheKey),
	.entry_size = sizeof(CacheHashEntry),
	.compare_function = dshash_memcmp,
	.hash_function = dshash_memhash,
#if PG_VERSION_NUM >= 170000
	.copy_function = dshash_memcpy,
#endif
	.tranche_id = 0				/* set at startup */
};

/* ---- shared memory setup ---- */

static Size
cache_shmem_size(void)
{
	return add_size(MAXALIGN(offsetof(CacheShared, area)), CACHE_DSA_INIT_SIZE);
}

static void
cache_shmem_request(void)
{
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
	RequestAddinShmemSpace(cache_shmem_size());
	RequestNamedLWLockTranche("csvpipe_cache", 1);
}

static void
cache_shmem_startup(void)
{
	bool		found;

	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();

	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	cache_shared = ShmemInitStruct("csvpipe cache", cache_shmem_size(), &found);
	if (!found)
	{
		dsa_area   *dsa;
		dshash_table *dsh;

		memset(cache_shared, 0, offsetof(CacheShared, area));
		cache_shared->lock = &(GetNamedLWLockTranche("csvpipe_cache"))->lock;
		cache_shared->dsa_tranche = LWLockNewTrancheId();
		cache_shared->hash_tranche = LWLockNewTrancheId();
		cache_shared->version = csvpipe_cache_version;
		cache_shared->lru_head = InvalidDsaPointer;
		cache_shared->lru_tail = InvalidDsaPointer;
		cache_shared->stats_reset = GetCurrentTimestamp();

		/*
		 * As the cumulative statistics do: the postmaster creates the area in
		 * place and the hash table inside the in-place part (it cannot create
		 * DSM segments), then forgets both; backends attach on first use.
		 */
		dsa = dsa_create_in_place(cache_shared->area, CACHE_DSA_INIT_SIZE,
								  cache_shared->dsa_tranche, NULL);
		dsa_pin(dsa);
		dsa_set_size_limit(dsa, CACHE_DSA_INIT_SIZE);
		cache_hash_params.tranche_id = cache_shared->hash_tranche;
		dsh = dshash_create(dsa, &cache_hash_params, NULL);
		cache_shared->hash_handle = dshash_get_hash_table_handle(dsh);
		dsa_set_size_limit(dsa, (size_t) -1);
		dshash_detach(dsh);
		dsa_detach(dsa);
	}
	LWLockRelease(AddinShmemInitLock);
}

/*
 * _PG_init's part: the GUCs always (so SET/SHOW work when loaded on demand),
 * the shared memory only when preloading.
 */
void
csv_cache_init(void)
{
	DefineCustomIntVariable("csvpipe.cache_size",
							"Memory for csvpipe's shared result cache; 0 disables it.",
							"Bounds the cached rows and entry headers; least recently used entries are evicted to make room. Needs shared_preload_libraries.",
							&csvpipe_cache_size,
							64, 0, INT_MAX / 2,
							PGC_SIGHUP,
							GUC_UNIT_MB,
							NULL, NULL, NULL);

	DefineCustomIntVariable("csvpipe.cache_ttl",
							"Age after which a cached read result is no longer served; 0 = no expiry.",
							NULL,
							&csvpipe_cache_ttl,
							0, 0, INT_MAX,
							PGC_SIGHUP,
							GUC_UNIT_S,
							NULL, NULL, NULL);

	DefineCustomIntVariable("csvpipe.cache_max_entry_percent",
							"Largest share of csvpipe.cache_size one cached read result may take.",
							"A read whose rows would take more is not cached.",
							&csvpipe_cache_max_entry_percent,
							25, 1, 100,
							PGC_SIGHUP,
							0,
							NULL, NULL, NULL);

	DefineCustomIntVariable("csvpipe.cache_version",
							"Version of csvpipe's result cache; changing it invalidates every entry.",
							NULL,
							&csvpipe_cache_version,
							1, 0, INT_MAX,
							PGC_SIGHUP,
							0,
							NULL, NULL, NULL);

	if (!process_shared_preload_libraries_in_progress)
		return;

	prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = cache_shmem_request;
	prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = cache_shmem_startup;
}

/* Attach to the area and the hash table on first use; false: no cache */
static bool
cache_attach(void)
{
	MemoryContext oldcxt;

	if (cache_hash != NULL)
		return true;
	if (cache_shared == NULL)
		return false;

	oldcxt = MemoryContextSwitchTo(TopMemoryContext);
	LWLockRegisterTranche(cache_shared->dsa_tranche, "csvpipe_cache_dsa");
	LWLockRegisterTranche(cache_shared->hash_tranche, "csvpipe_cache_hash");
	cache_area = dsa_attach_in_place(cache_shared->area, NULL);
	/* new segments stay mapped for the life of the backend */
	dsa_pin_mapping(cache_area);
	on_shmem_exit(dsa_on_shmem_exit_release_in_place,
				  PointerGetDatum(cache_shared->area));
	cache_hash_params.tranche_id = cache_shared->hash_tranche;
	cache_hash = dshash_attach(cache_area, &cache_hash_params,
							   cache_shared->hash_handle, NULL);
	MemoryContextSwitchTo(oldcxt);
	return true;
}

/* For the SQL functions: the cache, or an error saying why there is none */
static void
cache_require(const char *funcname)
{
	if (!cache_attach())
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("%s needs shared_preload_libraries to include csvpipe", funcname),
				 errdetail("Without it there is no shared memory for the result cache; csvpipe.read and csvpipe.read_text still work, uncached."),
				 errhint("Add csvpipe to shared_preload_libraries in postgresql.conf and restart the server.")));
}

static Size
cache_limit(void)
{
	return (Size) csvpipe_cache_size * 1024 * 1024;
}

static inline CacheBody *
body_at(dsa_pointer dp)
{
	return (CacheBody *) dsa_get_address(cache_area, dp);
}

/* A stored result (not a marker of a read too large to store) */
static inline bool
body_is_entry(CacheBody *b)
{
	return b->state == BODY_READY && !b->too_large;
}

/* ---- LRU list (CacheShared.lock held exclusively) ---- */

static void
lru_unlink(CacheBody *b)
{
	if (DsaPointerIsValid(b->lru_prev))
		body_at(b->lru_prev)->lru_next = b->lru_next;
	else
		cache_shared->lru_head = b->lru_next;
	if (DsaPointerIsValid(b->lru_next))
		body_at(b->lru_next)->lru_prev = b->lru_prev;
	else
		cache_shared->lru_tail = b->lru_prev;
	b->lru_prev = b->lru_next = InvalidDsaPointer;
}

static void
lru_push_head(CacheBody *b, dsa_pointer dp)
{
	b->lru_prev = InvalidDsaPointer;
	b->lru_next = cache_shared->lru_head;
	if (DsaPointerIsValid(cache_shared->lru_head))
		body_at(cache_shared->lru_head)->lru_prev = dp;
	else
		cache_shared->lru_tail = dp;
	cache_shared->lru_head = dp;
}

/* ---- freeing ---- */

/*
 * Free a body and its chunks.  The caller owns it: it is unreachable from
 * the hash table and nobody holds a reference.  No lock held.
 */
static void
body_free(dsa_pointer dp)
{
	CacheBody  *b = body_at(dp);
	Size		bytes = b->bytes;
	dsa_pointer c = b->first_chunk;

	while (DsaPointerIsValid(c))
	{
		dsa_pointer next = ((CacheChunk *) dsa_get_address(cache_area, c))->next;

		dsa_free(cache_area, c);
		c = next;
	}
	dsa_free(cache_area, dp);

	LWLockAcquire(cache_shared->lock, LW_EXCLUSIVE);
	Assert(cache_shared->bytes_used >= bytes);
	cache_shared->bytes_used -= bytes;
	LWLockRelease(cache_shared->lock);
}

/*
 * A body was just unlinked from the hash table: make it DEAD.  Lock held.
 * Returns true when the caller must free it (nobody references it).  A
 * DYING body belongs to its evictor, which frees it.
 */
static bool
body_kill_locked(CacheBody *b, bool count_invalidation)
{
	if (b->state == BODY_DYING)
		return false;
	if (body_is_entry(b))
	{
		cache_shared->entries--;
		if (count_invalidation)
			cache_shared->invalidations++;
		else
			cache_shared->evictions++;
	}
	if (b->state == BODY_READY)
		lru_unlink(b);
	b->state = BODY_DEAD;
	return b->refcount == 0;
}

/* Remove the hash entry of key if it still points to dp.  No lock held. */
static void
unlink_from_hash(const CacheKey *key, dsa_pointer dp)
{
	CacheHashEntry *entry = dshash_find(cache_hash, key, true);

	if (entry == NULL)
		return;
	if (entry->body == dp)
		dshash_delete_entry(cache_hash, entry);
	else
		dshash_release_lock(cache_hash, entry);
}

typedef enum ReserveResult
{
	RESERVE_OK,
	RESERVE_TOO_LARGE,			/* b would exceed the entry limit */
	RESERVE_FAILED				/* b was invalidated, or nothing to evict */
} ReserveResult;

/*
 * Reserve need bytes for the body b being built (NULL: only bring the cache
 * back under its limit), evicting unpinned entries from the cold end of the
 * LRU list.
 */
static ReserveResult
cache_reserve(CacheBody *b, Size need)
{
	Size		limit = cache_limit();
	Size		max_entry = (Size) ((uint64) limit * csvpipe_cache_max_entry_percent / 100);

	for (;;)
	{
		dsa_pointer vp;
		CacheBody  *v = NULL;
		CacheKey	vkey;

		LWLockAcquire(cache_shared->lock, LW_EXCLUSIVE);
		if (b != NULL && b->state != BODY_BUILDING)
		{
			LWLockRelease(cache_shared->lock);
			return RESERVE_FAILED;
		}
		if (b != NULL && b->bytes + need > max_entry)
		{
			LWLockRelease(cache_shared->lock);
			return RESERVE_TOO_LARGE;
		}
		if (cache_shared->bytes_used + need <= limit)
		{
			cache_shared->bytes_used += need;
			if (b != NULL)
				b->bytes += need;
			LWLockRelease(cache_shared->lock);
			return RESERVE_OK;
		}
		for (vp = cache_shared->lru_tail; DsaPointerIsValid(vp); vp = v->lru_prev)
		{
			v = body_at(vp);
			if (v->refcount == 0)
				break;
		}
		if (!DsaPointerIsValid(vp))
		{
			LWLockRelease(cache_shared->lock);
			return RESERVE_FAILED;
		}
		if (body_is_entry(v))
		{
			cache_shared->entries--;
			cache_shared->evictions++;
		}
		lru_unlink(v);
		v->state = BODY_DYING;
		vkey = v->key;
		LWLockRelease(cache_shared->lock);

		/* as the evictor we own v: unlink it, then free it */
		unlink_from_hash(&vkey, vp);
		LWLockAcquire(cache_shared->lock, LW_EXCLUSIVE);
		v->state = BODY_DEAD;
		LWLockRelease(cache_shared->lock);
		body_free(vp);
	}
}

static void
cache_unreserve(CacheBody *b, Size bytes)
{
	LWLockAcquire(cache_shared->lock, LW_EXCLUSIVE);
	cache_shared->bytes_used -= bytes;
	b->bytes -= bytes;
	LWLockRelease(cache_shared->lock);
}

/*
 * Remove entries: all, those of path or of files under it (a directory), or
 * those not made under version.  Counts the stored ones as invalidations
 * (or evictions) and returns how many.  Entries being built are removed too:
 * their builders will not publish them.
 */
typedef enum RemoveWhat
{
	REMOVE_ALL,
	REMOVE_PATH,
	REMOVE_OTHER_VERSIONS
} RemoveWhat;

static int64
cache_remove(RemoveWhat what, const char *path, int version, bool as_eviction)
{
	dshash_seq_status status;
	CacheHashEntry *entry;
	dsa_pointer *to_free;
	int			nfree = 0;
	int			maxfree = 64;
	int64		removed = 0;
	size_t		plen = path ? strlen(path) : 0;

	to_free = palloc(sizeof(dsa_pointer) * maxfree);
	dshash_seq_init(&status, cache_hash, true);
	while ((entry = dshash_seq_next(&status)) != NULL)
	{
		CacheBody  *b;
		bool		match;

		if (!DsaPointerIsValid(entry->body))
		{
			/* cannot happen (see csv_cache_lookup); never dereference it */
			dshash_delete_current(&status);
			continue;
		}
		b = body_at(entry->body);

		switch (what)
		{
			case REMOVE_PATH:
				match = (strncmp(BODY_PATH(b), path, plen) == 0 &&
						 (BODY_PATH(b)[plen] == '\0' || BODY_PATH(b)[plen] == '/' ||
						  (plen > 0 && path[plen - 1] == '/')));
				break;
			case REMOVE_OTHER_VERSIONS:
				match = (b->version != version);
				break;
			default:
				match = true;
				break;
		}
		if (!match)
			continue;

		if (nfree == maxfree)
		{
			maxfree *= 2;
			to_free = repalloc(to_free, sizeof(dsa_pointer) * maxfree);
		}
		LWLockAcquire(cache_shared->lock, LW_EXCLUSIVE);
		if (body_is_entry(b))
			removed++;
		if (body_kill_locked(b, !as_eviction))
			to_free[nfree++] = entry->body;
		LWLockRelease(cache_shared->lock);
		dshash_delete_current(&status);
	}
	dshash_seq_term(&status);

	for (int i = 0; i < nfree; i++)
		body_free(to_free[i]);
	pfree(to_free);
	return removed;
}

/* csvpipe.cache_version changed (in this backend's view): drop the others */
static void
cache_check_version(void)
{
	bool		changed;

	LWLockAcquire(cache_shared->lock, LW_SHARED);
	changed = (cache_shared->version != csvpipe_cache_version);
	LWLockRelease(cache_shared->lock);
	if (!changed)
		return;
	(void) cache_remove(REMOVE_OTHER_VERSIONS, NULL, csvpipe_cache_version, false);
	LWLockAcquire(cache_shared->lock, LW_EXCLUSIVE);
	cache_shared->version = csvpipe_cache_version;
	LWLockRelease(cache_shared->lock);
}

/* Version, size limit: called before any use of the entries */
static void
cache_maintain(void)
{
	bool		over;

	cache_check_version();
	LWLockAcquire(cache_shared->lock, LW_SHARED);
	over = cache_shared->bytes_used > cache_limit();
	LWLockRelease(cache_shared->lock);
	if (over)
	{
		if (csvpipe_cache_size == 0)
			(void) cache_remove(REMOVE_ALL, NULL, 0, true);
		else
			(void) cache_reserve(NULL, 0);
	}
}

/* ---- building the identity of a read ---- */

static int64
now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64) ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void
append_setting(StringInfo sig, const char *name)
{
	const char *value = GetConfigOption(name, true, false);

	appendStringInfo(sig, "%s=%s;", name, value ? value : "");
}

/*
 * The signature (exact, binary) of what the rows depend on besides the
 * file, and its readable parts for the csvpipe.cache view.
 */
static void
make_signature(CsvCacheRead *cr, const CsvDialect *d, TupleDesc tupdesc,
			   const bool *convert, CacheIdentity *id, bool describe)
{
	StringInfoData sig;
	StringInfoData described;
	Oid			dbid = MyDatabaseId;
	int			natts = tupdesc->natts;

	initStringInfo(&sig);
	appendBinaryStringInfo(&sig, (char *) &dbid, sizeof(dbid));
	appendStringInfo(&sig, "%s;", cr->text_mode ? "text" : "read");
	/* the options that change the rows, as the options table says */
	initStringInfo(&described);
	csv_dialect_rows_key(d, &sig, &described);
	appendStringInfo(&sig, "server=%d;", GetDatabaseEncoding());
	if (!cr->text_mode)
	{
		append_setting(&sig, "TimeZone");
		append_setting(&sig, "DateStyle");
		append_setting(&sig, "IntervalStyle");
		append_setting(&sig, "lc_monetary");
	}
	appendStringInfo(&sig, "natts=%d;", natts);
	for (int i = 0; i < natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(tupdesc, i);
		bool		conv = cr->text_mode || convert == NULL || convert[i];

		appendStringInfo(&sig, "%u/%d/%u/%d", att->atttypid, att->atttypmod,
						 att->attcollation, (int) conv);
		if (d->header == CSV_HEADER_MATCH)
			appendStringInfo(&sig, "/%s", NameStr(att->attname));
		appendStringInfoChar(&sig, ';');
	}
	id->sig = sig.data;
	id->sig_len = sig.len;
	id->key.path_hash = hash_bytes_extended((const unsigned char *) cr->path,
											strlen(cr->path), 0);
	id->key.sig_hash = hash_bytes_extended((const unsigned char *) sig.data,
										   sig.len, 0);

	if (describe)
	{
		StringInfoData buf;

		cr->options = described.data;

		initStringInfo(&buf);
		for (int i = 0; i < natts; i++)
		{
			Form_pg_attribute att = TupleDescAttr(tupdesc, i);

			if (i > 0)
				appendStringInfoString(&buf, ", ");
			if (!cr->text_mode && convert != NULL && !convert[i])
				appendStringInfoChar(&buf, '-');
			else
				appendStringInfoString(&buf, format_type_with_typemod(att->atttypid,
																	   att->atttypmod));
		}
		cr->columns = buf.data;
	}
}

static bool
body_matches(CacheBody *b, CsvCacheRead *cr, CacheIdentity *id)
{
	return csv_file_id_equal(&b->file, &cr->file) &&
		b->file.ctime_ns == cr->file.ctime_ns &&
		b->version == csvpipe_cache_version &&
		b->sig_len == id->sig_len &&
		b->path_len == (int) strlen(cr->path) &&
		memcmp(BODY_SIG(b), id->sig, id->sig_len) == 0 &&
		strcmp(BODY_PATH(b), cr->path) == 0;
}

static bool
body_expired(CacheBody *b, TimestampTz now)
{
	return csvpipe_cache_ttl > 0 &&
		now - b->created_at >= (int64) csvpipe_cache_ttl * USECS_PER_SEC;
}

/* Pin b for reading if it is a fresh entry for this read.  Lock held. */
static bool
pin_if_fresh(CacheBody *b, dsa_pointer dp, CsvCacheRead *cr,
			 CacheIdentity *id, TimestampTz now)
{
	if (!body_is_entry(b) || !body_matches(b, cr, id) || body_expired(b, now))
		return false;
	b->refcount++;
	b->hits++;
	b->last_used_at = now;
	lru_unlink(b);
	lru_push_head(b, dp);
	cache_shared->hits++;
	return true;
}

static void
start_hit(CsvCacheRead *cr, dsa_pointer dp)
{
	cr->status = CSV_CACHE_HIT;
	cr->body_dp = dp;
	cr->body = body_at(dp);
	cr->chunk = DsaPointerIsValid(cr->body->first_chunk) ?
		(CacheChunk *) dsa_get_address(cache_area, cr->body->first_chunk) : NULL;
	cr->off = 0;
}

/* A new BUILDING body for this read, counted in bytes_used; or Invalid */
static dsa_pointer
body_create(CsvCacheRead *cr)
{
	int			path_len = strlen(cr->path);
	int			options_len = strlen(cr->options);
	int			columns_len = strlen(cr->columns);
	Size		size = offsetof(CacheBody, data) + path_len + 1 + options_len + 1 +
		columns_len + 1 + cr->id.sig_len;
	dsa_pointer dp;
	CacheBody  *b;

	dp = dsa_allocate_extended(cache_area, size, DSA_ALLOC_NO_OOM | DSA_ALLOC_ZERO);
	if (!DsaPointerIsValid(dp))
		return InvalidDsaPointer;
	b = body_at(dp);
	b->key = cr->id.key;
	b->state = BODY_BUILDING;
	b->refcount = 1;			/* the builder's */
	b->lru_prev = b->lru_next = InvalidDsaPointer;
	b->bytes = size;
	b->header_bytes = size;
	b->file = cr->file;
	b->version = csvpipe_cache_version;
	b->dbid = MyDatabaseId;
	b->text_mode = cr->text_mode;
	b->path_len = path_len;
	b->options_len = options_len;
	b->columns_len = columns_len;
	b->sig_len = cr->id.sig_len;
	b->first_chunk = InvalidDsaPointer;
	memcpy(BODY_PATH(b), cr->path, path_len + 1);
	memcpy(BODY_OPTIONS(b), cr->options, options_len + 1);
	memcpy(BODY_COLUMNS(b), cr->columns, columns_len + 1);
	memcpy(BODY_SIG(b), cr->id.sig, cr->id.sig_len);

	LWLockAcquire(cache_shared->lock, LW_EXCLUSIVE);
	cache_shared->bytes_used += size;
	LWLockRelease(cache_shared->lock);
	return dp;
}

/* ---- releasing a read's reference ---- */

/*
 * The rows of a read outgrew csvpipe.cache_max_entry_percent: free them but
 * keep the body as a marker, so that later reads of the same file do not
 * build (and evict for) it again.  The marker is in the LRU list and is
 * evicted, expired and invalidated like an entry; it is not shown or
 * counted as one.  No lock held.
 */
static void
build_mark_too_large(CsvCacheRead *cr)
{
	CacheBody  *b = cr->body;
	dsa_pointer c = b->first_chunk;
	bool		free_it = false;
	TimestampTz now = GetCurrentTimestamp();

	Assert(cr->status == CSV_CACHE_BUILD);
	cr->status = CSV_CACHE_MISS;
	/* the chunks are the builder's own until the body is READY */
	b->first_chunk = InvalidDsaPointer;
	while (DsaPointerIsValid(c))
	{
		dsa_pointer next = (c == cr->cur_dp) ? InvalidDsaPointer :
		((CacheChunk *) dsa_get_address(cache_area, c))->next;

		dsa_free(cache_area, c);
		c = next;
	}

	LWLockAcquire(cache_shared->lock, LW_EXCLUSIVE);
	cache_shared->bytes_used -= b->bytes - b->header_bytes;
	b->bytes = b->header_bytes;
	cache_shared->too_large++;
	if (b->state == BODY_BUILDING)
	{
		b->state = BODY_READY;
		b->too_large = true;
		b->rows = 0;
		b->created_at = now;
		b->last_used_at = now;
		lru_push_head(b, cr->body_dp);
		b->refcount--;
	}
	else
		free_it = (--b->refcount == 0);
	LWLockRelease(cache_shared->lock);
	if (free_it)
		body_free(cr->body_dp);
	cr->body = NULL;
	cr->body_dp = InvalidDsaPointer;
	cr->cur_dp = InvalidDsaPointer;
}

/* The builder gives up: the entry is not stored.  No lock held. */
static void
build_abandon(CsvCacheRead *cr)
{
	CacheBody  *b = cr->body;
	bool		free_it;

	Assert(cr->status == CSV_CACHE_BUILD);
	cr->status = CSV_CACHE_MISS;
	if (DsaPointerIsValid(cr->cur_dp))
		cr->cur->used = cr->cur_used;
	unlink_from_hash(&b->key, cr->body_dp);
	LWLockAcquire(cache_shared->lock, LW_EXCLUSIVE);
	b->state = BODY_DEAD;
	free_it = (--b->refcount == 0);
	LWLockRelease(cache_shared->lock);
	if (free_it)
		body_free(cr->body_dp);
	cr->body = NULL;
	cr->body_dp = InvalidDsaPointer;
}

static void
hit_release(CsvCacheRead *cr)
{
	CacheBody  *b = cr->body;
	bool		free_it;

	LWLockAcquire(cache_shared->lock, LW_EXCLUSIVE);
	free_it = (--b->refcount == 0 && b->state == BODY_DEAD);
	LWLockRelease(cache_shared->lock);
	if (free_it)
		body_free(cr->body_dp);
	cr->body = NULL;
	cr->body_dp = InvalidDsaPointer;
	cr->chunk = NULL;
}

/*
 * Memory context callback of the read's context: drop whatever this read
 * still holds.  Runs at the end of the read, and on error or cancel when
 * the transaction's memory is deleted (after LWLockReleaseAll).
 */
static void
cache_read_release(void *arg)
{
	CsvCacheRead *cr = (CsvCacheRead *) arg;

	if (cr->status == CSV_CACHE_HIT && cr->body != NULL)
		hit_release(cr);
	else if (cr->status == CSV_CACHE_BUILD)
		build_abandon(cr);
}

/* ---- the read's interface (srf.c) ---- */

/* Serve the read from a fresh entry of id, if there is one */
static bool
try_hit(CsvCacheRead *cr, CacheIdentity *id, TimestampTz now)
{
	CacheHashEntry *entry = dshash_find(cache_hash, &id->key, false);
	dsa_pointer dp;
	bool		hit;

	if (entry == NULL)
		return false;
	dp = entry->body;
	LWLockAcquire(cache_shared->lock, LW_EXCLUSIVE);
	hit = DsaPointerIsValid(dp) && pin_if_fresh(body_at(dp), dp, cr, id, now);
	LWLockRelease(cache_shared->lock);
	dshash_release_lock(cache_hash, entry);
	if (hit)
		start_hit(cr, dp);
	return hit;
}

/*
 * May rows of this type be served from memory?  Only types whose input
 * cannot change while the server runs: those of the bootstrap catalogs
 * (built-in base types, their arrays and ranges, the catalogs' row types).
 * A domain can gain a constraint, an enum a label or lose one, a user type
 * a new input function: rows converted before such a change are not rows
 * the read would return after it, so a read of such a type is not cached.
 */
static bool
cacheable_type(Oid typid)
{
	return typid < FirstGenbkiObjectId;
}

/*
 * Look the read up.  Returns NULL when the cache is not in use (not
 * preloaded, csvpipe.cache_size = 0, or a column of a type whose input can
 * change, see cacheable_type).  Otherwise a CsvCacheRead that lives in, and
 * is released with, CurrentMemoryContext.
 *
 * The file is checked and opened here exactly as an uncached read opens it
 * (privileges, csvpipe.allowed_dirs, an open that follows no link, fstat),
 * on a hit as on a miss; its identity is the fstat of what was opened,
 * ctime included, so a change of permissions or owner is a miss.
 * convert: the columns the read converts (NULL = all).  may_build: false
 * when the read's rows would not be in file order.
 */
CsvCacheRead *
csv_cache_lookup(const char *path, const CsvDialect *dialect, bool text_mode,
				 TupleDesc tupdesc, const bool *convert, bool may_build)
{
	CsvCacheRead *cr;
	char	   *canonical;
	struct stat st;
	bool		partial = false;
	TimestampTz now;
	CacheHashEntry *entry;
	bool		found;
	dsa_pointer old_dp;
	dsa_pointer new_dp = InvalidDsaPointer;
	bool		free_old = false;
	bool		build;

	if (csvpipe_cache_size == 0)
	{
		/* disabled: give back what an earlier setting cached */
		if (cache_attach())
			cache_maintain();
		return NULL;
	}
	if (!cache_attach())
		return NULL;
	for (int i = 0; i < tupdesc->natts; i++)
		if (!cacheable_type(TupleDescAttr(tupdesc, i)->atttypid))
			return NULL;

	(void) csv_stat_file(path, 0, &st, &canonical);

	cr = palloc0(sizeof(CsvCacheRead));
	cr->tupdesc = tupdesc;
	cr->path = canonical;
	cr->text_mode = text_mode;
	csv_file_id(&st, &cr->file);
	cr->start_ns = now_ns();
	cr->body_dp = InvalidDsaPointer;
	cr->cur_dp = InvalidDsaPointer;
	cr->prev_dp = InvalidDsaPointer;
	cr->status = CSV_CACHE_MISS;
	cr->cb.func = cache_read_release;
	cr->cb.arg = cr;
	MemoryContextRegisterResetCallback(CurrentMemoryContext, &cr->cb);

	if (text_mode)
		convert = NULL;
	if (convert != NULL)
		for (int i = 0; i < tupdesc->natts; i++)
			if (!convert[i])
				partial = true;
	if (!partial)
		convert = NULL;
	make_signature(cr, dialect, tupdesc, convert, &cr->id, true);

	cache_maintain();
	now = GetCurrentTimestamp();

	/* a read that converts some columns is served by a complete entry too */
	if (partial)
	{
		make_signature(cr, dialect, tupdesc, NULL, &cr->full_id, false);
		if (try_hit(cr, &cr->full_id, now))
			return cr;
	}

	/*
	 * A hit needs no allocation.  A miss that builds allocates its body
	 * before an entry is inserted for it: an error there (dsm_create
	 * failing as the area grows) must not leave a hash entry without a
	 * valid body, and nothing between the insert and the store below can
	 * fail.
	 */
	if (try_hit(cr, &cr->id, now))
		return cr;
	if (may_build)
		new_dp = body_create(cr);
	build = DsaPointerIsValid(new_dp);

	entry = dshash_find_or_insert(cache_hash, &cr->id.key, &found);
	if (!found)
		entry->body = InvalidDsaPointer;
	old_dp = entry->body;

	LWLockAcquire(cache_shared->lock, LW_EXCLUSIVE);
	if (DsaPointerIsValid(old_dp))
	{
		CacheBody  *old = body_at(old_dp);

		if (pin_if_fresh(old, old_dp, cr, &cr->id, now))
		{
			/* stored meanwhile */
			LWLockRelease(cache_shared->lock);
			dshash_release_lock(cache_hash, entry);
			if (build)
				body_free(new_dp);
			start_hit(cr, old_dp);
			return cr;
		}
		if (old->state == BODY_BUILDING)
			build = false;		/* someone else builds: read without storing */
		else if (old->state == BODY_READY && old->too_large &&
				 body_matches(old, cr, &cr->id) && !body_expired(old, now))
			build = false;		/* known to be too large */
		else
		{
			/* an older state of the file, another version, or expired */
			free_old = body_kill_locked(old, true);
			entry->body = InvalidDsaPointer;
		}
	}
	cache_shared->misses++;
	LWLockRelease(cache_shared->lock);

	if (build)
	{
		entry->body = new_dp;
		cr->status = CSV_CACHE_BUILD;
		cr->body_dp = new_dp;
		cr->body = body_at(new_dp);
	}
	if (DsaPointerIsValid(entry->body))
		dshash_release_lock(cache_hash, entry);
	else
		dshash_delete_entry(cache_hash, entry);

	if (DsaPointerIsValid(new_dp) && !build)
		body_free(new_dp);
	if (free_old)
		body_free(old_dp);
	return cr;
}

CsvCacheStatus
csv_cache_status(CsvCacheRead *cr)
{
	return cr->status;
}

/*
 * The builder opened the file: the file it reads must be the one the entry
 * is keyed by (the path may have been replaced between stat and open).
 */
void
csv_cache_file_opened(CsvCacheRead *cr, const CsvFileId *file)
{
	if (cr->status != CSV_CACHE_BUILD)
		return;
	if (!csv_file_id_equal(file, &cr->file) || file->ctime_ns != cr->file.ctime_ns)
		build_abandon(cr);
}

/* Deform a cached tuple's first upto columns; the rest are NULL */
static void
cache_deform(MinimalTuple mt, TupleDesc desc, int upto, Datum *values,
			 bool *nulls)
{
	bool		hasnulls = (mt->t_infomask & HEAP_HASNULL) != 0;
	int			natts = Min(Min((int) HeapTupleHeaderGetNatts(mt), desc->natts), upto);
	char	   *tp = (char *) mt + mt->t_hoff - MINIMAL_TUPLE_OFFSET;
	bits8	   *bp = mt->t_bits;
	uint32		off = 0;
	int			attnum;

	for (attnum = 0; attnum < natts; attnum++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, attnum);

		if (hasnulls && att_isnull(attnum, bp))
		{
			values[attnum] = (Datum) 0;
			nulls[attnum] = true;
			continue;
		}
		nulls[attnum] = false;
		if (att->attlen == -1)
			off = att_align_pointer(off, att->attalign, -1, tp + off);
		else
			off = att_align_nominal(off, att->attalign);
		values[attnum] = fetchatt(att, tp + off);
		off = att_addlength_pointer(off, att->attlen, tp + off);
	}
	for (; attnum < desc->natts; attnum++)
	{
		values[attnum] = (Datum) 0;
		nulls[attnum] = true;
	}
}

/*
 * Next cached row (hit).  Only the first upto columns are deformed; the
 * others are NULL.  By-reference values point into the pinned entry, which
 * stays until the read is released.
 */
bool
csv_cache_next(CsvCacheRead *cr, Datum *values, bool *nulls, int upto)
{
	MinimalTuple mt;

	Assert(cr->status == CSV_CACHE_HIT);
	CHECK_FOR_INTERRUPTS();
	while (cr->chunk != NULL && cr->off >= cr->chunk->used)
	{
		cr->chunk = DsaPointerIsValid(cr->chunk->next) ?
			(CacheChunk *) dsa_get_address(cache_area, cr->chunk->next) : NULL;
		cr->off = 0;
	}
	if (cr->chunk == NULL)
		return false;
	mt = (MinimalTuple) ((char *) cr->chunk + CHUNK_HDR + cr->off);
	cr->off += MAXALIGN(mt->t_len);
	if (upto > 0)
		cache_deform(mt, cr->tupdesc, upto, values, nulls);
	else
		memset(nulls, true, sizeof(bool) * cr->tupdesc->natts);
	return true;
}

/* Start a new chunk with room for at least need bytes */
static ReserveResult
build_new_chunk(CsvCacheRead *cr, Size need)
{
	Size		size = Max(Min(cr->chunk_bytes / 8, CHUNK_MAX_SIZE), CHUNK_MIN_SIZE);
	dsa_pointer dp;
	CacheChunk *chunk;
	ReserveResult res;

	size = Max(size, CHUNK_HDR + need);
	res = cache_reserve(cr->body, size);
	if (res != RESERVE_OK)
		return res;
	dp = dsa_allocate_extended(cache_area, size, DSA_ALLOC_NO_OOM);
	if (!DsaPointerIsValid(dp))
	{
		cache_unreserve(cr->body, size);
		return RESERVE_FAILED;
	}
	chunk = (CacheChunk *) dsa_get_address(cache_area, dp);
	chunk->next = InvalidDsaPointer;
	chunk->used = 0;
	if (DsaPointerIsValid(cr->cur_dp))
	{
		cr->cur->used = cr->cur_used;
		cr->cur->next = dp;
	}
	else
		cr->body->first_chunk = dp;
	cr->prev_dp = cr->cur_dp;
	cr->cur_dp = dp;
	cr->cur = chunk;
	cr->cur_size = size;
	cr->cur_used = 0;
	cr->chunk_bytes += size;
	return RESERVE_OK;
}

/* Record one row of a read that builds an entry */
void
csv_cache_add(CsvCacheRead *cr, Datum *values, bool *nulls)
{
	TupleDesc	desc = cr->tupdesc;
	int			natts = desc->natts;
	bool		hasnull = false;
	Size		hoff;
	Size		data_len;
	Size		len;
	MinimalTuple mt;

	if (cr->status != CSV_CACHE_BUILD)
		return;

	/* heap_form_minimal_tuple, written straight into the chunk */
	for (int i = 0; i < natts; i++)
		if (nulls[i])
		{
			hasnull = true;
			break;
		}
	len = SizeofMinimalTupleHeader;
	if (hasnull)
		len += BITMAPLEN(natts);
	hoff = len = MAXALIGN(len);
	data_len = heap_compute_data_size(desc, values, nulls);
	len += data_len;

	if (!DsaPointerIsValid(cr->cur_dp) ||
		cr->cur_used + MAXALIGN(len) > cr->cur_size - CHUNK_HDR)
	{
		ReserveResult res = build_new_chunk(cr, MAXALIGN(len));

		if (res == RESERVE_TOO_LARGE)
		{
			build_mark_too_large(cr);
			return;
		}
		if (res != RESERVE_OK)
		{
			build_abandon(cr);
			return;
		}
	}
	mt = (MinimalTuple) ((char *) cr->cur + CHUNK_HDR + cr->cur_used);
	memset(mt, 0, len);
	mt->t_len = len;
	HeapTupleHeaderSetNatts(mt, natts);
	mt->t_hoff = hoff + MINIMAL_TUPLE_OFFSET;
	heap_fill_tuple(desc, values, nulls, (char *) mt + hoff, data_len,
					&mt->t_infomask, hasnull ? mt->t_bits : NULL);
	cr->cur_used += MAXALIGN(len);
	cr->rows++;
}

/* Give back the unused tail of the last chunk (a copy of the right size) */
static void
build_trim_last_chunk(CsvCacheRead *cr)
{
	Size		size = CHUNK_HDR + cr->cur_used;
	dsa_pointer dp;
	CacheChunk *chunk;

	if (cr->cur_size - size < CHUNK_TRIM_SLACK)
		return;
	dp = dsa_allocate_extended(cache_area, size, DSA_ALLOC_NO_OOM);
	if (!DsaPointerIsValid(dp))
		return;
	chunk = (CacheChunk *) dsa_get_address(cache_area, dp);
	memcpy(chunk, cr->cur, size);
	if (DsaPointerIsValid(cr->prev_dp))
		((CacheChunk *) dsa_get_address(cache_area, cr->prev_dp))->next = dp;
	else
		cr->body->first_chunk = dp;
	dsa_free(cache_area, cr->cur_dp);
	cache_unreserve(cr->body, cr->cur_size - size);
	cr->cur_dp = dp;
	cr->cur = chunk;
	cr->cur_size = size;
}

/* The read reached the end of the file: publish the entry */
void
csv_cache_finish(CsvCacheRead *cr)
{
	CacheBody  *b = cr->body;
	bool		free_it = false;
	TimestampTz now;

	if (cr->status != CSV_CACHE_BUILD)
		return;
	if (DsaPointerIsValid(cr->cur_dp))
	{
		cr->cur->used = cr->cur_used;
		build_trim_last_chunk(cr);
	}
	/* modified too recently to trust size and mtime: do not store */
	if (cr->file.mtime_ns + RACY_WINDOW_NS > cr->start_ns)
	{
		build_abandon(cr);
		return;
	}

	now = GetCurrentTimestamp();
	b->rows = cr->rows;
	LWLockAcquire(cache_shared->lock, LW_EXCLUSIVE);
	if (b->state == BODY_BUILDING)
	{
		b->state = BODY_READY;
		b->created_at = now;
		b->last_used_at = now;
		lru_push_head(b, cr->body_dp);
		cache_shared->entries++;
		b->refcount--;
		cr->status = CSV_CACHE_STORED;
	}
	else
	{
		/* invalidated while it was built */
		free_it = (--b->refcount == 0);
		cr->status = CSV_CACHE_MISS;
	}
	LWLockRelease(cache_shared->lock);
	if (free_it)
		body_free(cr->body_dp);
	cr->body = NULL;
	cr->body_dp = InvalidDsaPointer;
}

/* The read reached the end but its rows must not be stored */
void
csv_cache_abandon(CsvCacheRead *cr)
{
	if (cr->status == CSV_CACHE_BUILD)
		build_abandon(cr);
}

/* ---- SQL functions ---- */

/* the row shapes of version 1.0 of the functions under the views */
#define CACHE_COLS			11
#define CACHE_STATS_COLS	10

/*
 * csvpipe.cache_1_0(): one row per stored entry of this database (another
 * database's entries, like its tables, are not this session's business).
 * The path, bytes, rows, options and columns are shown only to roles that
 * may read the file now: with privileges of pg_read_server_files, and
 * inside csvpipe.allowed_dirs.
 */
Datum
csvpipe_cache_1_0(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	bool		may_see = has_privs_of_role(GetUserId(), ROLE_PG_READ_SERVER_FILES);
	dshash_seq_status status;
	CacheHashEntry *entry;

	cache_require("csvpipe.cache");
	InitMaterializedSRF(fcinfo, 0);
	if (rsinfo->setDesc->natts != CACHE_COLS)
		elog(ERROR, "csvpipe.cache_1_0 must return %d columns; run ALTER EXTENSION csvpipe UPDATE",
			 CACHE_COLS);
	cache_maintain();

	dshash_seq_init(&status, cache_hash, false);
	while ((entry = dshash_seq_next(&status)) != NULL)
	{
		CacheBody  *b;
		Datum		values[CACHE_COLS];
		bool		nulls[CACHE_COLS] = {0};
		CacheBody	copy;

		if (!DsaPointerIsValid(entry->body))
			continue;
		b = body_at(entry->body);
		LWLockAcquire(cache_shared->lock, LW_SHARED);
		copy = *b;
		LWLockRelease(cache_shared->lock);
		if (!body_is_entry(&copy) || copy.dbid != MyDatabaseId)
			continue;

		/*
		 * What the entry holds of the file -- its path, size, row count, the
		 * read's options (null_string...) and columns -- only to roles that
		 * may read the file now; others see that an entry exists.
		 */
		if (may_see && csv_path_is_allowed(BODY_PATH(b)))
			values[0] = CStringGetTextDatum(BODY_PATH(b));
		else
			nulls[0] = nulls[2] = nulls[3] = nulls[9] = nulls[10] = true;
		values[1] = Int32GetDatum(copy.version);
		values[2] = Int64GetDatum((int64) copy.bytes);
		values[3] = Int64GetDatum(copy.rows);
		values[4] = Int64GetDatum(copy.hits);
		values[5] = TimestampTzGetDatum(copy.created_at);
		values[6] = TimestampTzGetDatum(copy.last_used_at);
		if (csvpipe_cache_ttl > 0)
			values[7] = TimestampTzGetDatum(copy.created_at +
											(int64) csvpipe_cache_ttl * USECS_PER_SEC);
		else
			nulls[7] = true;
		values[8] = CStringGetTextDatum(copy.text_mode ? "read_text" : "read");
		if (!nulls[9])
			values[9] = CStringGetTextDatum(BODY_OPTIONS(b));
		if (!nulls[10])
			values[10] = CStringGetTextDatum(BODY_COLUMNS(b));
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	dshash_seq_term(&status);
	return (Datum) 0;
}

/* csvpipe.cache_stats_1_0(): the counters */
Datum
csvpipe_cache_stats_1_0(PG_FUNCTION_ARGS)
{
	TupleDesc	tupdesc;
	Datum		values[CACHE_STATS_COLS];
	bool		nulls[CACHE_STATS_COLS] = {0};
	int64		hits,
				misses;

	cache_require("csvpipe.cache_stats");
	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE ||
		tupdesc->natts != CACHE_STATS_COLS)
		elog(ERROR, "csvpipe.cache_stats_1_0 must return %d columns; run ALTER EXTENSION csvpipe UPDATE",
			 CACHE_STATS_COLS);
	cache_maintain();

	LWLockAcquire(cache_shared->lock, LW_SHARED);
	hits = cache_shared->hits;
	misses = cache_shared->misses;
	values[0] = Int64GetDatum(hits);
	values[1] = Int64GetDatum(misses);
	values[2] = Int64GetDatum(cache_shared->evictions);
	values[3] = Int64GetDatum(cache_shared->invalidations);
	values[4] = Int64GetDatum((int64) cache_shared->bytes_used);
	values[7] = Int64GetDatum(cache_shared->entries);
	values[8] = Int64GetDatum(cache_shared->too_large);
	values[9] = TimestampTzGetDatum(cache_shared->stats_reset);
	LWLockRelease(cache_shared->lock);
	values[5] = Int64GetDatum((int64) cache_limit());
	if (hits + misses > 0)
		values[6] = Float8GetDatum((double) hits / (double) (hits + misses));
	else
		nulls[6] = true;

	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(BlessTupleDesc(tupdesc),
													  values, nulls)));
}

/* csvpipe.cache_reset_stats(): zero the counters (not the entries' hits) */
Datum
csvpipe_cache_reset_stats(PG_FUNCTION_ARGS)
{
	cache_require("csvpipe.cache_reset_stats");
	LWLockAcquire(cache_shared->lock, LW_EXCLUSIVE);
	cache_shared->hits = 0;
	cache_shared->misses = 0;
	cache_shared->evictions = 0;
	cache_shared->invalidations = 0;
	cache_shared->too_large = 0;
	cache_shared->stats_reset = GetCurrentTimestamp();
	LWLockRelease(cache_shared->lock);
	PG_RETURN_VOID();
}

/*
 * csvpipe.cache_invalidate(path text DEFAULT NULL): remove the entries of a
 * file (any options), of every file under a directory, or all (NULL).
 * Returns the number of entries removed.  Entries being read are freed when
 * their last reader finishes.
 */
Datum
csvpipe_cache_invalidate(PG_FUNCTION_ARGS)
{
	int64		removed;

	cache_require("csvpipe.cache_invalidate");
	if (!has_privs_of_role(GetUserId(), ROLE_PG_READ_SERVER_FILES))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied for csvpipe.cache_invalidate"),
				 errdetail("Only roles with privileges of the \"pg_read_server_files\" role may invalidate csvpipe's cache.")));
	cache_check_version();

	if (PG_ARGISNULL(0))
		removed = cache_remove(REMOVE_ALL, NULL, 0, false);
	else
	{
		char	   *path = text_to_cstring(PG_GETARG_TEXT_PP(0));
		char	   *real;

		/*
		 * csvpipe.allowed_dirs first, with the error every entry point
		 * gives: the count removed would tell whether a path outside is
		 * cached, and realpath() whether it exists.
		 */
		real = csv_resolve_allowed(path);
		/* a file that is gone is matched by the path as given */
		removed = cache_remove(REMOVE_PATH, real ? real : path, 0, false);
	}
	PG_RETURN_INT64(removed);
}
