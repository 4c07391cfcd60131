/*-------------------------------------------------------------------------
 *
 * parallel.h
 *		Shared structures of the parallel engine (pool.c, leader.c,
 *		worker.c, txn.c, splitter.c, errors.c, preparse.c).
 *
 * One DSM segment per parallel call holds a CsvParallelShared header, the
 * serialized GUC state of the leader, the column list, the file's path, the
 * options the workers take (the dialect, on_error, max_errors: in the form
 * options.c derives from the options table), and per worker an input queue
 * (leader -> worker: chunk labels; the worker reads the bytes from the
 * file, unless the leader of a chunked load converted the chunk and sends
 * its rows after the label: preparse.c) and a reply queue (worker ->
 * leader: tuples, per-chunk results, and the worker's errors and notices,
 * redirected there with pq_redirect_to_shm_mq).
 *
 *-------------------------------------------------------------------------
 */
#ifndef CSVPIPE_PARALLEL_H
#define CSVPIPE_PARALLEL_H

#include "csvfile.h"
#include "options.h"

#include "postmaster/bgworker.h"
#include "storage/dsm.h"
#include "storage/shm_mq.h"
#include "storage/shm_toc.h"
#include "port/atomics.h"
#include "storage/spin.h"
#include "utils/timestamp.h"

#define CSVPIPE_DSM_MAGIC		0x43535650	/* "CSVP" */
/* CSVPIPE_MAX_WORKERS: settings.h */
/* worker slots of one call: its workers plus spares that replace lost ones */
#define CSVPIPE_SPARE_SLOTS		32
#define CSVPIPE_MAX_SLOTS		(CSVPIPE_MAX_WORKERS + CSVPIPE_SPARE_SLOTS)
/* hex digits of the random secret behind an atomic run's gids (txn.c) */
#define CSV_GID_NONCE_LEN		32

/* shm_toc keys */
#define CSV_KEY_SHARED			1
#define CSV_KEY_GUC				2
#define CSV_KEY_COLUMNS			3
#define CSV_KEY_PATH			4
#define CSV_KEY_OPTIONS			5	/* csv_options_to_wire() (options.c) */
#define CSV_KEY_QUEUES			100 /* + 2*worker (+1 for the reply queue) */

typedef enum CsvParallelMode
{
	CSV_MODE_LOAD,
	CSV_MODE_READ
} CsvParallelMode;

/*
 * One worker slot, for the leader (the views use progress.c): the pid, and
 * in a chunked load the last chunk the worker committed, set right after
 * the commit: a worker lost before its chunk-done message got through must
 * not have that chunk loaded again.
 */
typedef struct CsvWorkerSlot
{
	pid_t		pid;
	int64		committed_chunk;	/* -1: none */
	int64		committed_rows;
	int64		committed_rejected;
	pg_atomic_uint64 rejected_open; /* a load: rows it added to
									 * rejected_total that its rollback or
									 * loss takes back (worker.c) */
	bool		retried_out;	/* its error came after retries of its own:
								 * not a lost worker (worker.c) */
} CsvWorkerSlot;

typedef struct CsvParallelShared
{
	CsvParallelMode mode;
	Oid			database_id;
	Oid			authenticated_user_id;
	Oid			current_user_id;
	int			sec_context;
	int64		job_id;
	bool		fresh_job;		/* load: the job was created by this very
								 * call, so no chunk of it was attempted
								 * before this run (shards.c) */
	bool		atomic;
	bool		txn_load;		/* transaction mode: a read whose rows the
								 * leader inserts (CSV_MSG_ROWS) */
	uint64		load_xid;		/* transaction mode: the leader's current
								 * (sub)transaction, recorded with the job */
	Oid			target_relid;
	int			nworkers;
	int			capacity;		/* worker slots, spares included */
	pid_t		leader_pid;
	char		options_json[4096];	/* load options, recorded with the job */
	char		gid_nonce[CSV_GID_NONCE_LEN + 1];	/* atomic: this run's secret (txn.c) */
	char		newline;		/* the splitter's line end (splitter.c) */
	/* the file as the leader opened it, recorded with the job */
	CsvFileId	file;
	/* column list: natts entries of CsvColumnDesc after CSV_KEY_COLUMNS */
	int			natts;
	bool		columns_given;	/* load: columns => names were passed */
	bool		text_mode;		/* read_text: rows are (line_no, fields[]) */
	Oid			rowtype;		/* read(path, NULL::t): t (csv_converter_set_rowtype) */
	pg_atomic_uint64 rejected_total;	/* bad rows captured so far, all workers */
	bool		job_row_written;	/* load: the job row is committed (mutex) */
	char		error[1024];	/* load: the leader's error, for its coordinator */
	uint32		error_dsm;		/* ... all of it, when longer (a segment of its
								 * own, mapped by the leader meanwhile), or 0 */
	bool		job_end_recorded;	/* load: the coordinator of a failed load
									 * finished (mutex) */
	slock_t		mutex;
	CsvWorkerSlot workers[FLEXIBLE_ARRAY_MEMBER];
} CsvParallelShared;

typedef struct CsvColumnDesc
{
	NameData	name;
	Oid			typid;
	int32		typmod;
	bool		convert;		/* read: converted (and checked) */
	bool		send;			/* read: returned to the leader; else NULL */
} CsvColumnDesc;

/*
 * input queue: room for many labels; a load's workers (not the spare
 * slots) get more, for the rows the leader converted (preparse.c), so a
 * worker does not wait for the leader's next conversion step
 */
#define CSV_INPUT_QUEUE_SIZE	16384
#define CSV_LOAD_INPUT_QUEUE_SIZE	(1024 * 1024)

/* leader -> worker message: which bytes of the file to process */
typedef struct CsvChunkHeader
{
	int64		chunk_no;		/* -1: no more chunks */
	int64		first_line;
	int64		start_offset;
	int64		length;
	int32		attempt;		/* load: earlier dispatches of this chunk in
								 * this run (0: its first) */
	int64		preparsed;		/* chunked load: bytes of the chunk's rows,
								 * converted by the leader, that follow in
								 * messages of CsvRowHeader entries
								 * (preparse.c); 0: the worker reads the
								 * file */
} CsvChunkHeader;

/* worker -> leader messages start with one of these bytes */
#define CSV_MSG_TUPLE		'T'		/* + MinimalTuple (read) */
#define CSV_MSG_BATCH		'B'		/* + MinimalTuples, each MAXALIGN'd (read) */
#define CSV_TUPLE_BATCH		(64 * 1024)
#define CSV_MSG_ROWS		'L'		/* + entries: CsvRowHeader, payload (transaction mode) */
#define CSV_MSG_CHUNK_DONE	'D'		/* + CsvChunkDone */
#define CSV_MSG_PREPARED	'P'		/* + CsvChunkDone with chunk_no -1 (atomic load) */
#define CSV_MSG_FINISHED	'F'		/* worker done, about to exit */
/* 'E', 'N', 'A' ... are protocol messages from pq_redirect_to_shm_mq */

/*
 * Transaction mode: one entry of a CSV_MSG_ROWS message, followed by size
 * bytes of payload, the next entry MAXALIGN'd after it.  A row's payload is
 * a MinimalTuple of the file's columns in the target's types; a rejected
 * record's is a CsvRejectEntry.  offset and length (absolute byte offset
 * and raw length of the record in the file) are set in skip mode only:
 * the leader reads a record's raw bytes back when its insert fails.
 */
#define CSV_ENTRY_ROW		0
#define CSV_ENTRY_REJECT	1
typedef struct CsvRowHeader
{
	int64		line_no;
	int64		offset;
	int64		length;
	int32		kind;			/* CSV_ENTRY_* */
	uint32		size;			/* payload bytes */
} CsvRowHeader;

/* payload of a CSV_ENTRY_REJECT: then message, detail, column (NUL-ended) */
typedef struct CsvRejectEntry
{
	int64		chunk_no;
	int32		sqlerrcode;
	bool		has_detail;
	bool		has_column;
} CsvRejectEntry;

typedef struct CsvChunkDone
{
	int64		chunk_no;
	int64		rows;
	int64		rejected;		/* bad rows captured in csvpipe.rejected */
	int64		retries;		/* transient errors retried */
} CsvChunkDone;

/* splitter.c: quote-aware record boundaries */
typedef struct CsvSplitter
{
	char		quote;
	char		delimiter;
	char		newline;		/* '\n', or '\r' in a file of lone-CR line ends */
	int			state;			/* splitter.c's SP_* between two scans */
	int			mb_encoding;	/* step by characters of this encoding, or -1 */
	int			mb_skip;		/* trail bytes of a character cut by the last scan */
	bool		in_quotes;
	bool		each_record;	/* cut at every record end (see splitter.c) */
	int64		line;			/* physical line of the next byte */
	int64		record_start;	/* buffer offset where the current record began */
} CsvSplitter;

extern void csv_splitter_init(CsvSplitter *sp, const CsvDialect *dialect,
							  char newline);
extern char csv_splitter_newline(const char *buf, int64 len);
extern int64 csv_splitter_scan(CsvSplitter *sp, const char *buf, int64 from,
							   int64 to, int64 want, int64 *boundary_line);
extern bool csv_splitter_record_is_empty(const char *buf, int64 start, int64 end);

/* pool.c */
typedef struct CsvPool
{
	dsm_segment *seg;
	shm_toc    *toc;
	CsvParallelShared *shared;
	int			nworkers;		/* launched */
	BackgroundWorkerHandle *handles[CSVPIPE_MAX_SLOTS];
	shm_mq_handle *input[CSVPIPE_MAX_SLOTS];
	shm_mq_handle *reply[CSVPIPE_MAX_SLOTS];
	bool		alive[CSVPIPE_MAX_SLOTS];
	TimestampTz launched_at[CSVPIPE_MAX_SLOTS];
	CsvColumnDesc *columns;
	char	   *path;
} CsvPool;

extern CsvPool *csv_pool_create(CsvParallelMode mode, int nworkers,
								const CsvOptions *opts,
								TupleDesc coldesc, bool *convert);
extern int	csv_pool_launch(CsvPool *pool);
extern bool csv_pool_launch_one(CsvPool *pool, int n);
extern bool csv_pool_parse_message(char *msg, Size len, ErrorData *edata, char *msgtype);
extern void csv_pool_terminate(CsvPool *pool);
extern void csv_pool_stop_worker(CsvPool *pool, int n);
extern void csv_pool_wait_exit(CsvPool *pool);
extern void csv_pool_destroy(CsvPool *pool);
extern void csv_pool_rethrow(CsvPool *pool, int worker, char *msg, Size len);

/* worker.c */
extern PGDLLEXPORT void csvpipe_worker_main(Datum main_arg);

#endif							/* CSVPIPE_PARALLEL_H */
