/*-------------------------------------------------------------------------
 *
 * leader.c
 *		The leader's side of a parallel call: reading, cutting chunks,
 *		dispatching them to workers, and collecting rows and results.
 *
 * The leader reads the file in blocks, finds record boundaries with the
 * quote-aware splitter, consumes skip_rows and the header itself, and cuts
 * chunks of about chunk_size bytes, each numbered and labelled with its
 * byte offset and first line.  Only that label goes through the input
 * queue: the worker reads the chunk's bytes from the file itself (pread,
 * from the page cache the leader's read has just filled), so the leader
 * copies nothing, and a chunk to retry is just its label sent again.
 * Except in a chunked load, while every worker has a chunk: then the
 * leader converts the next chunk itself (preparse.c, a step per loop) and
 * streams its rows after the label (pump_streams), as far as the worker's
 * input queue takes them; a worker with a stream gets nothing else until
 * the stream is sent.
 *
 * Dispatch never blocks: a chunk goes to the least busy worker (at most two
 * chunks in flight per worker, so whichever worker is idle gets the next
 * one).  Memory is bounded whatever the file size: the leader holds one
 * read block, each worker one chunk, and read replies wait in reply queues
 * of csvpipe.queue_size.  Replies are polled the same way; when nothing
 * moves the leader sleeps on its latch, which shm_mq and worker start/stop
 * notifications set.
 *
 * Ordered reads take rows only from the worker holding the next chunk in
 * file order; the others block on their full reply queues meanwhile.
 *
 * A transaction-mode load is an ordered read whose replies are entries
 * (CSV_MSG_ROWS: a row with its line, or a rejected record) taken with
 * csv_leader_next_entry(); run.c inserts the rows in the caller's
 * transaction, in file order, as COPY would.
 *
 *-------------------------------------------------------------------------
 */
#include "parallel.h"
#include "leader.h"
#include "preparse.h"
#include "progress.h"

#include <unistd.h>

#include "access/htup_details.h"
#include "catch.h"
#include "executor/spi.h"
#include "txn.h"
#include "catalog/pg_type.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/fmgrprotos.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "storage/fd.h"
#include "storage/latch.h"
#include "storage/lock.h"
#include "utils/memutils.h"
#include "utils/wait_event.h"

#define LEADER_READ_BLOCK	(1024 * 1024)
#define MAX_IN_FLIGHT		2
#define RAMP_UP_CHUNKS		4
#define RAMP_UP_CHUNK_SIZE	(256 * 1024)
#define REPLY_HEADER		MAXALIGN(1)

typedef struct ChunkInfo
{
	CsvChunkHeader hdr;
	int			worker;			/* -1: not (or no longer) with a worker */
	int			attempts;
	bool		done;
	int64		rows;
	int64		rejected;
} ChunkInfo;

struct CsvLeader
{
	CsvPool    *pool;
	int			nworkers;
	CsvParallelMode mode;
	const CsvDialect *dialect;
	CsvErrorPosition *errpos;
	bool		ordered;
	int64		chunk_size;

	/* the file */
	int			fd;
	struct stat st;
	CsvFileId	id;
	int64		bytes_read;
	bool		eof;
	bool		first_read;

	/* buf[0..len) holds the file from offset buf_offset; buf_line is its line */
	char	   *buf;
	int64		len;
	int64		size;
	int64		scanned;
	int64		buf_offset;
	int64		buf_line;
	CsvSplitter sp;

	/* the chunk being dispatched */
	bool		have_chunk;
	CsvChunkHeader hdr;
	int			pending_worker;
	int64		next_chunk_no;
	int64		chunks_sent;
	bool		all_read;

	/* per worker */
	int			in_flight[CSVPIPE_MAX_SLOTS];
	bool		end_sent[CSVPIPE_MAX_SLOTS];
	bool		finished[CSVPIPE_MAX_SLOTS];
	bool		prepared[CSVPIPE_MAX_SLOTS];
	bool		first_done[CSVPIPE_MAX_SLOTS];
	bool		draining[CSVPIPE_MAX_SLOTS];	/* worker_lost is reading its queue */
	int			rr;				/* round-robin cursor */
	TimestampTz last_block_check;	/* load: check_workers_blocked() */
	pid_t		blocked_by[CSVPIPE_MAX_SLOTS];	/* blocker seen at the last check */
	int			blocked_checks[CSVPIPE_MAX_SLOTS];	/* checks in a row it was seen */
	int			last_worker;	/* sent the last tuple, or -1 */
	uint32		fast_rows;
	/* read: the tuple batch being returned (valid until the next receive) */
	char	   *batch_ptr;
	char	   *batch_end;

	/* every chunk cut so far, by number: where it went, how it ended */
	ChunkInfo  *chunks;
	int64		chunks_size;
	int64		next_emit;		/* ordered read: next chunk to return rows of */
	List	   *retry;			/* chunks to send again (their worker was lost) */
	int64	   *skip;			/* resume: chunks already in the ledger (sorted) */
	int			nskip;

	/* results */
	int64		rows;
	int64		rejected;
	int64		retries;
	int64		chunks_done;
	int64		chunks_skipped;
	TupleDesc	desc;			/* read: row type of the tuples */
	CsvRecord  *header;

	/* chunked load: chunks converted here ahead of the workers (preparse.c) */
	CsvPreparse *pre;
	CsvStream  *stream[CSVPIPE_MAX_SLOTS];	/* rows on their way to a worker */
	int64		chunks_preparsed;

	bool		fault_fired;	/* csvpipe.debug_fault: once per load */
};

/* ---- file input ---- */


/* Append the next block to buf; false at end of file */
static bool
fill_buffer(CsvLeader *L)
{
	ssize_t		n;

	if (L->eof)
		return false;
	if (L->size - L->len < LEADER_READ_BLOCK)
	{
		L->size = Max(L->size * 2, L->len + LEADER_READ_BLOCK);
		L->buf = repalloc_huge(L->buf, L->size);
	}
	CHECK_FOR_INTERRUPTS();
	do
	{
		n = read(L->fd, L->buf + L->len, LEADER_READ_BLOCK);
	} while (n < 0 && errno == EINTR);
	if (n < 0)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not read file \"%s\": %m", L->errpos->path)));
	L->bytes_read += n;
	if (n == 0)
	{
		L->eof = true;
		csv_check_file_unchanged(L->fd, L->errpos->path, &L->id, L->bytes_read);
		return false;
	}
	if (L->first_read)
	{
		L->first_read = false;
		if (L->dialect->file_encoding == PG_UTF8 && n >= 3 &&
			memcmp(L->buf, "\xEF\xBB\xBF", 3) == 0)
		{
			memmove(L->buf, L->buf + 3, n - 3);
			n -= 3;
			L->buf_offset = 3;
		}
		L->sp.newline = csv_splitter_newline(L->buf, n);
	}
	L->len += n;
	return true;
}

/* Forget buf[0..upto): it was sent or consumed */
static void
drop_bytes(CsvLeader *L, int64 upto, int64 next_line)
{
	if (upto < L->len)
		memmove(L->buf, L->buf + upto, L->len - upto);
	L->len -= upto;
	L->scanned = Max(L->scanned - upto, 0);
	L->buf_offset += upto;
	L->buf_line = next_line;
}

/*
 * Find the end of the next record (want = 0) or of the next chunk (want =
 * chunk_size) in buf.  Returns its length, 0 when the file holds no more
 * bytes; the last record may lack its line end.
 */
static int64
find_boundary(CsvLeader *L, int64 want, int64 *next_line)
{
	for (;;)
	{
		int64		b = csv_splitter_scan(&L->sp, L->buf, L->scanned, L->len,
										  want, next_line);

		if (b >= 0)
		{
			L->scanned = b;
			return b;
		}
		L->scanned = L->len;
		if (!fill_buffer(L))
		{
			*next_line = L->sp.line;
			return L->len;
		}
	}
}

/* Tokenize one record's bytes in the leader (the header) */
static CsvRecord *
tokenize_header(CsvLeader *L, int64 len)
{
	CsvTokenizer *tok;
	CsvRecord	rec;
	CsvRecord  *copy = NULL;
	bool		have;
	int64		slen;
	char	   *data = csv_buffer_to_server(L->dialect, L->buf, len, &slen,
											L->errpos, L->buf_line);

	tok = csv_tokenizer_create(L->dialect, L->errpos, L->buf_line);
	csv_tokenizer_set_prefix(tok, 1);	/* an empty line is a header too */
	csv_tokenizer_feed(tok, data, slen);
	/*
	 * Take the record before finishing: csv_tokenizer_finish() drops the
	 * records already queued (it starts a new block), and a lost header
	 * would make header => 'match' accept any file.
	 */
	have = csv_tokenizer_next(tok, &rec);
	if (!have)
	{
		/* the header is the whole file and lacks its line end */
		csv_tokenizer_finish(tok);
		have = csv_tokenizer_next(tok, &rec);
	}
	if (have)
	{
		if (rec.bad)
			csv_record_raise_bad(&rec, L->errpos);
		copy = palloc(sizeof(CsvRecord));
		copy->line_no = rec.line_no;
		copy->nfields = rec.nfields;
		copy->values = palloc(sizeof(char *) * Max(rec.nfields, 1));
		copy->lengths = palloc(sizeof(int) * Max(rec.nfields, 1));
		for (int i = 0; i < rec.nfields; i++)
		{
			copy->values[i] = rec.values[i] ? pstrdup(rec.values[i]) : NULL;
			copy->lengths[i] = rec.lengths[i];
		}
	}
	csv_tokenizer_destroy(tok);
	return copy;
}

/* skip_rows and the header: the leader consumes them before chunking */
static void
consume_prefix(CsvLeader *L)
{
	int64		need = L->dialect->skip_rows +
		(L->dialect->header != CSV_HEADER_NONE ? 1 : 0);

	while (need > 0)
	{
		int64		next_line;
		int64		b = find_boundary(L, 0, &next_line);

		if (b == 0)
			break;				/* end of file */
		/* empty lines count too: COPY's HEADER takes an empty first line */
		need--;
		if (need == 0 && L->dialect->header != CSV_HEADER_NONE)
			L->header = tokenize_header(L, b);
		drop_bytes(L, b, next_line);
	}
}

static bool
next_chunk(CsvLeader *L)
{
	int64		next_line;
	int64		want = L->chunk_size;
	int64		b;

	/*
	 * With large chunks, the first few are small, so every worker has rows
	 * to work on a few milliseconds after it starts.  By chunk number only,
	 * not by worker count: a resumed job must cut the file the same way.
	 */
	if (L->next_chunk_no < RAMP_UP_CHUNKS && want >= 4 * RAMP_UP_CHUNK_SIZE)
		want = RAMP_UP_CHUNK_SIZE;
	b = find_boundary(L, want, &next_line);
	if (b == 0)
		return false;
	memset(&L->hdr, 0, sizeof(L->hdr));
	L->hdr.chunk_no = L->next_chunk_no++;
	L->hdr.first_line = L->buf_line;
	L->hdr.start_offset = L->buf_offset;
	L->hdr.length = b;
	L->have_chunk = true;
	/* the worker reads the bytes from the file */
	drop_bytes(L, b, next_line);
	return true;
}

/* ---- chunks ---- */

static ChunkInfo *
chunk_info(CsvLeader *L, int64 chunk_no)
{
	if (chunk_no >= L->chunks_size)
	{
		int64		newsize = Max(L->chunks_size * 2, chunk_no + 256);

		L->chunks = repalloc_huge(L->chunks, sizeof(ChunkInfo) * newsize);
		memset(L->chunks + L->chunks_size, 0,
			   sizeof(ChunkInfo) * (newsize - L->chunks_size));
		L->chunks_size = newsize;
	}
	return &L->chunks[chunk_no];
}

static bool
in_skip_set(CsvLeader *L, int64 chunk_no)
{
	int			lo = 0,
				hi = L->nskip - 1;

	while (lo <= hi)
	{
		int			mid = (lo + hi) / 2;

		if (L->skip[mid] == chunk_no)
			return true;
		if (L->skip[mid] < chunk_no)
			lo = mid + 1;
		else
			hi = mid - 1;
	}
	return false;
}

/*
 * Have a chunk ready to send (L->hdr): a chunk to retry, or
 * the next one from the file.  False when there is none now.
 */
static bool
prepare_chunk(CsvLeader *L)
{
	while (!L->have_chunk)
	{
		ChunkInfo  *ci;

		if (L->retry != NIL)
		{
			int64		c = linitial_int(L->retry);

			L->retry = list_delete_first(L->retry);
			ci = chunk_info(L, c);
			L->hdr = ci->hdr;
			L->have_chunk = true;
			return true;
		}
		if (L->all_read)
			return false;
		if (!next_chunk(L))
		{
			L->all_read = true;
			return false;
		}
		ci = chunk_info(L, L->hdr.chunk_no);
		ci->hdr = L->hdr;
		ci->worker = -1;
		if (in_skip_set(L, L->hdr.chunk_no))
		{
			/* resume: this chunk is in the ledger already */
			ci->done = true;
			L->chunks_skipped++;
			L->have_chunk = false;
			continue;
		}
	}
	return true;
}

/* ---- workers ---- */

/*
 * A load worker's error that means the worker was lost (its chunks go to
 * another worker), unless the worker retried its chunk itself until
 * csvpipe.max_retries (a foreign server down: worker.c): then it fails the
 * load, and csvpipe.resume finishes it.
 */
static bool
is_worker_loss(CsvLeader *L, int w, ErrorData *edata)
{
	bool		retried_out;

	if (L->mode != CSV_MODE_LOAD || !csv_error_is_worker_loss(edata))
		return false;
	SpinLockAcquire(&L->pool->shared->mutex);
	retried_out = L->pool->shared->workers[w].retried_out;
	SpinLockRelease(&L->pool->shared->mutex);
	return !retried_out;
}

static bool handle_reply(CsvLeader *L, int w, char *data, Size nbytes,
						 MinimalTuple *tuple);

/*
 * Chunked load: worker w may have committed its last chunk and been lost
 * before the chunk-done message went out.  That chunk is in the ledger
 * already: count it as done rather than load it again.
 */
static void
chunk_committed_anyway(CsvLeader *L, int w)
{
	CsvWorkerSlot *slot = &L->pool->shared->workers[w];
	int64		c;
	int64		rows;
	int64		rejected;
	ChunkInfo  *ci;

	SpinLockAcquire(&L->pool->shared->mutex);
	c = slot->committed_chunk;
	rows = slot->committed_rows;
	rejected = slot->committed_rejected;
	SpinLockRelease(&L->pool->shared->mutex);
	if (c < 0 || c >= L->next_chunk_no)
		return;
	ci = &L->chunks[c];
	if (ci->worker != w || ci->done)
		return;
	ci->done = true;
	ci->rows = rows;
	ci->rejected = rejected;
	L->rows += rows;
	L->rejected += rejected;
	L->chunks_done++;
	csv_progress_chunk_done(L->rows, L->rejected);
}

/*
 * Worker w is gone or going: read everything it sent before it detached,
 * as parallel.c's HandleParallelMessages does for parallel query.  A
 * detached queue keeps its bytes readable, so once the worker is known to
 * have stopped, one more pass reads its last message.  Its own error is
 * re-raised here (a read: any error; a load: any error that is not a worker
 * loss), so the user sees the worker's message, detail, context and
 * SQLSTATE rather than "exited unexpectedly".  Chunk results and the
 * prepared/finished messages are recorded; a read's tuples are dropped
 * (the read fails).  Returns a worker-loss error the worker sent, or NULL.
 */
static ErrorData *
drain_replies(CsvLeader *L, int w)
{
	BackgroundWorkerHandle *h = L->pool->handles[w];
	ErrorData  *loss = NULL;

	for (;;)
	{
		pid_t		pid;
		bool		stopped = (h == NULL ||
							   GetBackgroundWorkerPid(h, &pid) == BGWH_STOPPED);

		for (;;)
		{
			Size		nbytes;
			void	   *data;
			char	   *msg;
			ErrorData	edata;
			char		msgtype;
			MinimalTuple tuple;

			if (shm_mq_receive(L->pool->reply[w], &nbytes, &data, true) != SHM_MQ_SUCCESS)
				break;
			msg = (char *) data;
			if (msg[0] == 'E' &&
				csv_pool_parse_message(msg, nbytes, &edata, &msgtype))
			{
				if (is_worker_loss(L, w, &edata))
				{
					if (loss == NULL)
					{
						loss = palloc(sizeof(ErrorData));
						memcpy(loss, &edata, sizeof(ErrorData));
					}
					continue;
				}
				csv_pool_rethrow(L->pool, w, msg, nbytes);	/* does not return */
			}
			if (msg[0] == CSV_MSG_TUPLE || msg[0] == CSV_MSG_BATCH ||
				msg[0] == CSV_MSG_ROWS)
				continue;
			(void) handle_reply(L, w, msg, nbytes, &tuple);
		}
		if (stopped)
			break;
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 10L, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
	}
	return loss;
}

/*
 * Worker w is gone without finishing.  A read cannot recover (rows may
 * have been returned already).  A load sends the chunks the worker had not
 * made durable to other workers (all its chunks in atomic mode, since its
 * transaction is lost with it), at most csvpipe.max_retries times per
 * chunk, and starts a replacement when no worker is left to take them.
 */
static void
worker_lost(CsvLeader *L, int w, ErrorData *cause)
{
	bool		atomic = L->pool->shared->atomic;
	int			redo = 0;
	bool		taker = false;
	ErrorData  *sent;

	if (!L->pool->alive[w] || L->draining[w])
		return;

	/*
	 * Whatever told us first (a detached input queue, a detached reply
	 * queue, a worker-loss error), the worker's own messages come first: it
	 * may have sent its error, chunk results or its end just before it went.
	 */
	L->draining[w] = true;
	sent = drain_replies(L, w);
	L->draining[w] = false;
	if (cause == NULL)
		cause = sent;
	L->pool->alive[w] = false;
	if (L->finished[w])
		return;
	if (L->mode == CSV_MODE_READ)
		ereport(ERROR,
				(errcode(ERRCODE_CONNECTION_FAILURE),
				 errmsg("csvpipe worker %d exited unexpectedly", w),
				 cause ? errdetail("%s", cause->message) : 0));

	L->finished[w] = true;
	if (L->pending_worker == w)
		L->pending_worker = -1;
	/* rows streamed to it: the chunk goes again as a label (attempts > 0) */
	csv_stream_free(L->stream[w]);
	L->stream[w] = NULL;
	/*
	 * Only the worker's own "prepared" message makes its part count: one
	 * lost before sending it may have prepared or not, and its chunks are
	 * loaded again elsewhere; the coordinator rolls back any such part.
	 */
	if (atomic && L->prepared[w])
		return;					/* its part is durable */
	if (!atomic)
		chunk_committed_anyway(L, w);

	/*
	 * The rows it rejected in what rolled back with it no longer count
	 * towards max_errors: the chunks' next attempts count their own.
	 */
	{
		uint64		open = pg_atomic_exchange_u64(&L->pool->shared->workers[w].rejected_open, 0);

		if (open > 0)
			(void) pg_atomic_sub_fetch_u64(&L->pool->shared->rejected_total, open);
	}

	for (int64 c = 0; c < L->next_chunk_no; c++)
	{
		ChunkInfo  *ci = &L->chunks[c];

		if (ci->worker != w || (ci->done && !atomic))
			continue;
		if (ci->done)
		{
			/* atomic: rolled back with the worker's transaction */
			ci->done = false;
			L->rows -= ci->rows;
			L->rejected -= ci->rejected;
			L->chunks_done--;
		}
		ci->worker = -1;
		if (ci->attempts > csvpipe_max_retries)
			ereport(ERROR,
					(errcode(ERRCODE_CONNECTION_FAILURE),
					 errmsg("csvpipe gave up on chunk " INT64_FORMAT " (line " INT64_FORMAT ", bytes " INT64_FORMAT "-" INT64_FORMAT ") after %d attempts",
							c, ci->hdr.first_line, ci->hdr.start_offset,
							ci->hdr.start_offset + ci->hdr.length, ci->attempts),
					 cause ? errdetail("The last worker to hold it ended with: %s", cause->message) : 0));
		L->retry = lappend_int(L->retry, (int) c);
		redo++;
	}
	L->in_flight[w] = 0;
	L->retries++;
	ereport(NOTICE,
			(errmsg("csvpipe worker %d was lost; %d chunk(s) will be loaded again", w, redo),
			 cause ? errdetail("%s", cause->message) : 0));

	/*
	 * Someone must take its chunks and those still to come: a live worker
	 * not yet told to end.  A worker lost while idle holds no chunk, but the
	 * rest of the file still needs one.
	 */
	for (int o = 0; o < L->nworkers; o++)
		if (L->pool->alive[o] && !L->end_sent[o])
			taker = true;
	if (!taker && (redo > 0 || L->have_chunk || L->retry != NIL || !L->all_read))
	{
		int			n = L->nworkers;

		/* each replacement takes a new slot of the load's segment */
		if (n >= L->pool->shared->capacity)
			ereport(ERROR,
					(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
					 errmsg("csvpipe lost its workers and has started as many replacements as one load may (%d)",
							L->pool->shared->capacity - L->pool->shared->nworkers),
					 cause ? errdetail("The last worker lost ended with: %s", cause->message) : 0,
					 errhint("What committed stays committed: csvpipe.resume finishes the job.")));
		if (!csv_pool_launch_one(L->pool, n))
			ereport(ERROR,
					(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
					 errmsg("csvpipe lost its workers and could not start another one: no background worker slot is free"),
					 cause ? errdetail("The last worker lost ended with: %s", cause->message) : 0,
					 errhint("Raise max_worker_processes, or run csvpipe.resume once slots are free.")));
		L->nworkers = n + 1;
	}
}

static int
pick_worker(CsvLeader *L)
{
	int			best = -1;

	for (int k = 0; k < L->nworkers; k++)
	{
		int			w = (L->rr + k) % L->nworkers;

		if (!L->pool->alive[w] || L->end_sent[w] || L->in_flight[w] >= MAX_IN_FLIGHT ||
			L->stream[w] != NULL)
			continue;
		if (best < 0 || L->in_flight[w] < L->in_flight[best])
			best = w;
	}
	if (best >= 0)
		L->rr = (best + 1) % L->nworkers;
	return best;
}

/*
 * Chunked load: send the converted rows streaming to each worker, as far
 * as its input queue takes them; true if anything moved.
 */
static bool
pump_streams(CsvLeader *L)
{
	bool		progress = false;

	for (int w = 0; w < L->nworkers; w++)
	{
		CsvStream  *s = L->stream[w];

		while (s != NULL && s->next < s->npieces)
		{
			shm_mq_result res = shm_mq_send(L->pool->input[w], s->lens[s->next],
											s->pieces[s->next], true, true);

			if (res == SHM_MQ_WOULD_BLOCK)
				break;
			if (res != SHM_MQ_SUCCESS)
			{
				worker_lost(L, w, NULL);	/* frees the stream */
				s = NULL;
				break;
			}
			s->next++;
			progress = true;
		}
		if (s != NULL && s->next >= s->npieces)
		{
			csv_stream_free(s);
			L->stream[w] = NULL;
		}
	}
	return progress;
}

/* a worker with nothing to do: no chunk in flight, no rows on their way */
static bool
worker_idle(CsvLeader *L)
{
	for (int w = 0; w < L->nworkers; w++)
		if (L->pool->alive[w] && !L->end_sent[w] && L->in_flight[w] == 0 &&
			L->stream[w] == NULL)
			return true;
	return false;
}

/*
 * Chunked load, the chunk in L->hdr, on its first attempt: convert it here
 * while every worker is busy, one step at a time (preparse.c).  Returns
 * true while it is being converted (it is not sent yet); false when it is
 * to be sent now: converted (L->hdr.preparsed says how many bytes of rows
 * follow the label) or as a plain label (a worker is idle, or the leader
 * could not convert it).
 */
static bool
preparse_chunk(CsvLeader *L)
{
	CsvPreparse *p = L->pre;
	CsvPreparseState st = csv_preparse_state(p);

	if (st == CSV_PREPARSE_IDLE || csv_preparse_chunk_no(p) != L->hdr.chunk_no)
	{
		if (worker_idle(L) || L->hdr.length > CSV_PREPARSE_MAX_CHUNK)
			return false;
		csv_preparse_start(p, &L->hdr);
		st = csv_preparse_state(p);
	}
	if (st == CSV_PREPARSE_RUNNING)
	{
		/* a worker waiting for work gets the chunk now, to convert itself */
		if (worker_idle(L))
		{
			csv_preparse_reset(p);
			return false;
		}
		st = csv_preparse_step(p);
		if (st == CSV_PREPARSE_RUNNING)
			return true;
	}
	if (st == CSV_PREPARSE_DONE)
	{
		return false;			/* its rows go with the label (dispatch) */
	}
	csv_preparse_reset(p);		/* failed: the worker converts it */
	return false;
}

/* Move chunks towards the workers; true if anything moved */
static bool
dispatch(CsvLeader *L)
{
	bool		progress = false;

	if (L->pre != NULL && pump_streams(L))
		progress = true;

	if (!L->have_chunk && prepare_chunk(L))
		progress = true;

	if (L->have_chunk && L->pre != NULL && L->pending_worker < 0)
	{
		L->hdr.preparsed = 0;
		if (chunk_info(L, L->hdr.chunk_no)->attempts == 0 && preparse_chunk(L))
			return true;		/* converting it: a step done */
	}

	if (L->have_chunk)
	{
		int			w = L->pending_worker >= 0 ? L->pending_worker : pick_worker(L);

		if (w >= 0)
		{
			shm_mq_result res;

			L->hdr.attempt = chunk_info(L, L->hdr.chunk_no)->attempts;
			/* converted here: its rows follow the label (pump_streams) */
			if (L->pre != NULL && L->hdr.attempt == 0 &&
				csv_preparse_state(L->pre) == CSV_PREPARSE_DONE &&
				csv_preparse_chunk_no(L->pre) == L->hdr.chunk_no)
				L->hdr.preparsed = csv_preparse_total(L->pre);
			else
				L->hdr.preparsed = 0;
			if (csvpipe_debug_fault == CSV_FAULT_LOSE_IDLE_WORKER &&
				L->mode == CSV_MODE_LOAD && !L->fault_fired &&
				L->hdr.chunk_no > 0 && L->in_flight[w] == 0)
			{
				L->fault_fired = true;
				csv_pool_stop_worker(L->pool, w);
			}
			res = shm_mq_send(L->pool->input[w], sizeof(CsvChunkHeader), &L->hdr,
							  true, true);
			if (res == SHM_MQ_SUCCESS)
			{
				ChunkInfo  *ci = chunk_info(L, L->hdr.chunk_no);

				/*
				 * The chunk is the worker's from here on, before anything
				 * can find the worker lost: worker_lost sends again the
				 * chunks it holds, and one it did not yet hold would be
				 * neither done nor sent again -- lost.
				 */
				ci->worker = w;
				ci->attempts++;
				L->in_flight[w]++;
				if (L->hdr.preparsed > 0)
				{
					L->stream[w] = csv_preparse_take(L->pre);
					L->chunks_preparsed++;
					if (csvpipe_debug_fault == CSV_FAULT_LOSE_WORKER_AFTER_LABEL &&
						L->mode == CSV_MODE_LOAD && !L->fault_fired)
					{
						L->fault_fired = true;
						csv_pool_stop_worker(L->pool, w);
					}
					(void) pump_streams(L);
				}
				csv_progress_dispatched(L->hdr.chunk_no, L->hdr.start_offset + L->hdr.length);
				L->chunks_sent++;
				L->have_chunk = false;
				L->pending_worker = -1;
				progress = true;
			}
			else if (res == SHM_MQ_WOULD_BLOCK)
				L->pending_worker = w;
			else
			{
				L->pending_worker = -1;
				worker_lost(L, w, NULL);
			}
		}
	}

	/*
	 * The end marker goes out once every chunk is dispatched -- and, for a
	 * load, done: until then a live worker is there to take the chunks of a
	 * worker that is lost.
	 */
	if (L->all_read && !L->have_chunk && L->retry == NIL &&
		(L->mode == CSV_MODE_READ ||
		 L->chunks_done + L->chunks_skipped == L->next_chunk_no))
	{
		CsvChunkHeader end;

		memset(&end, 0, sizeof(end));
		end.chunk_no = -1;
		for (int w = 0; w < L->nworkers; w++)
		{
			shm_mq_result res;

			if (!L->pool->alive[w] || L->end_sent[w] || L->stream[w] != NULL)
				continue;
			res = shm_mq_send(L->pool->input[w], sizeof(end), &end, true, true);
			if (res == SHM_MQ_SUCCESS)
			{
				L->end_sent[w] = true;
				progress = true;
			}
			else if (res == SHM_MQ_DETACHED)
				worker_lost(L, w, NULL);
		}
	}
	return progress;
}

/*
 * Handle one reply from worker w.  Returns true if it was a tuple, left in
 * *tuple (valid until the next receive from w).
 */
static bool
handle_reply(CsvLeader *L, int w, char *data, Size nbytes, MinimalTuple *tuple)
{
	CsvChunkDone done;
	ErrorData	edata;
	char		msgtype;

	switch (data[0])
	{
		case CSV_MSG_TUPLE:
			*tuple = (MinimalTuple) (data + REPLY_HEADER);
			return true;
		case CSV_MSG_BATCH:
			*tuple = (MinimalTuple) (data + REPLY_HEADER);
			L->batch_ptr = (char *) *tuple + MAXALIGN((*tuple)->t_len);
			L->batch_end = data + nbytes;
			return true;
		case CSV_MSG_ROWS:
			/* transaction mode: entries, taken by csv_leader_next_entry */
			*tuple = NULL;
			L->batch_ptr = data + REPLY_HEADER;
			L->batch_end = data + nbytes;
			return true;
		case CSV_MSG_CHUNK_DONE:
			memcpy(&done, data + REPLY_HEADER, sizeof(done));
			if (!L->first_done[w])
			{
				long		secs;
				int			usecs;

				/* worker start-up cost, for benchmarks (client_min_messages = debug1) */
				L->first_done[w] = true;
				TimestampDifference(L->pool->launched_at[w], GetCurrentTimestamp(),
									&secs, &usecs);
				elog(DEBUG1, "csvpipe worker %d: first chunk done %.3f ms after registration",
					 w, secs * 1000.0 + usecs / 1000.0);
			}
			L->in_flight[w]--;
			L->retries += done.retries;
			{
				ChunkInfo  *ci = chunk_info(L, done.chunk_no);

				/*
				 * Counted once: a second count would hide a chunk that is
				 * not done from all_finished's check.
				 */
				if (ci->done)
				{
					elog(LOG, "csvpipe worker %d reported chunk " INT64_FORMAT " done again",
						 w, done.chunk_no);
					break;
				}
				ci->done = true;
				ci->rows = done.rows;
				ci->rejected = done.rejected;
			}
			L->chunks_done++;
			L->rows += done.rows;
			L->rejected += done.rejected;
			csv_progress_chunk_done(L->rows, L->rejected);
			if (L->ordered && done.chunk_no == L->next_emit)
				L->next_emit++;
			break;
		case CSV_MSG_PREPARED:
			L->prepared[w] = true;
			break;
		case CSV_MSG_FINISHED:
			L->finished[w] = true;
			break;
		default:
			/* an error or notice the worker raised */
			if (L->mode == CSV_MODE_LOAD && data[0] == 'E' &&
				csv_pool_parse_message(data, nbytes, &edata, &msgtype) &&
				is_worker_loss(L, w, &edata))
				worker_lost(L, w, &edata);
			else
				csv_pool_rethrow(L->pool, w, data, nbytes);
			break;
	}
	return false;
}

/*
 * Poll the reply queues.  Returns 1 if something arrived, 2 if it was a
 * tuple (in *tuple), 0 if nothing did.
 */
static int
collect(CsvLeader *L, MinimalTuple *tuple)
{
	int			result = 0;

	for (int k = 0; k < L->nworkers; k++)
	{
		int			w;
		Size		nbytes;
		void	   *data;
		shm_mq_result res;

		if (L->ordered && L->mode == CSV_MODE_READ)
		{
			/* only the worker holding the next chunk in file order */
			if (L->next_emit >= L->chunks_sent)
			{
				/* all chunks emitted: drain the end messages */
				w = k;
			}
			else if (k > 0)
				break;
			else
				w = L->chunks[L->next_emit].worker;
		}
		else
			w = (L->rr + k) % L->nworkers;

		if (!L->pool->alive[w])
			continue;
		res = shm_mq_receive(L->pool->reply[w], &nbytes, &data, true);
		if (res == SHM_MQ_WOULD_BLOCK)
			continue;
		if (res == SHM_MQ_DETACHED)
		{
			worker_lost(L, w, NULL);
			result = 1;
			continue;
		}
		if (handle_reply(L, w, data, nbytes, tuple))
		{
			L->last_worker = w;
			return 2;
		}
		result = 1;
	}
	return result;
}

static bool
all_finished(CsvLeader *L)
{
	if (!L->all_read || L->have_chunk || L->retry != NIL)
		return false;
	for (int w = 0; w < L->nworkers; w++)
		if (L->pool->alive[w] && !L->finished[w])
			return false;

	/*
	 * Every worker is done, so every chunk must be: one that is not was
	 * lost track of.  Never report such a load as a success.
	 */
	if (L->chunks_done + L->chunks_skipped != L->next_chunk_no)
	{
		int64		c;

		for (c = 0; c < L->next_chunk_no; c++)
			if (!L->chunks[c].done)
				break;
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("csvpipe lost track of chunk " INT64_FORMAT " (line " INT64_FORMAT ") of the file: the load is stopped",
						c, c < L->next_chunk_no ? L->chunks[c].hdr.first_line : 0),
				 errdetail(INT64_FORMAT " of " INT64_FORMAT " chunks are done.",
						   L->chunks_done + L->chunks_skipped, L->next_chunk_no)));
	}
	return true;
}

/*
 * A worker that waits for a lock held by this very load waits forever:
 *
 *	- by the leader's own transaction (the caller inserted or locked a row
 *	  in the same transaction, then loads the same key): the leader waits
 *	  for the workers, which wait for the leader -- in every mode;
 *	- in an atomic load, by another worker of the same load or by one of
 *	  its prepared parts (pid 0): those only end when the whole load does,
 *	  which only happens when the file holds the same key twice.
 *
 * The lock manager does not see these as deadlocks (the leader waits on
 * its latch, not on a lock), so the leader looks, once a second, at what
 * blocks each worker (pg_blocking_pids) and reports it.
 */
/*
 * What a worker waits for, from the lock manager: its awaited lock's type,
 * or -1 if it waits for no heavyweight lock.
 */
static int
worker_wait_locktype(pid_t pid)
{
	LockData   *ld = GetLockStatusData();
	int			type = -1;

	for (int i = 0; i < ld->nelements; i++)
	{
		LockInstanceData *li = &ld->locks[i];

		if (li->pid == pid && li->waitLockMode != NoLock)
		{
			type = li->locktag.locktag_type;
			break;
		}
	}
	return type;
}

/*
 * A wait is a hang only if it lasts: relation extension and page locks are
 * held for microseconds (two workers extending a table block each other all
 * the time), and a trigger may hold a session lock for a while.  So a
 * blocker counts once it is seen at BLOCK_CHECKS_LEADER (the caller's own
 * transaction) or BLOCK_CHECKS_PART (another part of the load) checks in a
 * row, a second apart; the hangs these report last forever.
 */
#define BLOCK_CHECKS_LEADER 2
#define BLOCK_CHECKS_PART	5

static void
check_workers_blocked(CsvLeader *L)
{
	bool		atomic = L->pool->shared->atomic;
	TimestampTz now = GetCurrentTimestamp();

	if (!TimestampDifferenceExceeds(L->last_block_check, now, 1000))
		return;
	L->last_block_check = now;

	for (int w = 0; w < L->nworkers; w++)
	{
		pid_t		pid;
		ArrayType  *arr;
		Datum	   *elems;
		bool	   *nulls;
		int			n;
		pid_t		blocker = -1;
		bool		leader = false;
		bool		part = false;

		if (!L->pool->alive[w] || L->finished[w])
		{
			L->blocked_checks[w] = 0;
			continue;
		}
		SpinLockAcquire(&L->pool->shared->mutex);
		pid = L->pool->shared->workers[w].pid;
		SpinLockRelease(&L->pool->shared->mutex);
		if (pid == 0)
			continue;
		arr = DatumGetArrayTypeP(DirectFunctionCall1(pg_blocking_pids, Int32GetDatum(pid)));
		deconstruct_array(arr, INT4OID, 4, true, TYPALIGN_INT, &elems, &nulls, &n);
		for (int i = 0; i < n && !leader && !part; i++)
		{
			blocker = DatumGetInt32(elems[i]);
			if (blocker == MyProcPid)
				leader = true;
			else if (atomic)
			{
				/* 0: a prepared transaction (another part that is done) */
				part = (blocker == 0);
				for (int o = 0; o < L->nworkers && !part; o++)
					part = (o != w && L->pool->shared->workers[o].pid == blocker);
			}
		}
		pfree(elems);
		pfree(nulls);
		pfree(arr);

		if (leader || part)
		{
			int			type = worker_wait_locktype(pid);

			if (type == LOCKTAG_RELATION_EXTEND || type == LOCKTAG_PAGE || type < 0)
				leader = part = false;
		}
		if (!leader && !part)
		{
			L->blocked_checks[w] = 0;
			continue;
		}
		if (L->blocked_checks[w] > 0 && L->blocked_by[w] == blocker)
			L->blocked_checks[w]++;
		else
		{
			L->blocked_by[w] = blocker;
			L->blocked_checks[w] = 1;
		}

		if (leader && L->blocked_checks[w] >= BLOCK_CHECKS_LEADER)
			ereport(ERROR,
					(errcode(ERRCODE_LOCK_NOT_AVAILABLE),
					 errmsg("csvpipe worker %d waits for a lock held by this transaction", w),
					 errdetail("The transaction that called csvpipe.load inserted, updated or locked a row the load needs (the same unique key, say); the workers run in their own transactions and would wait for it forever."),
					 errhint("Commit the transaction first, or load with workers => 0.")));
		if (part && L->blocked_checks[w] >= BLOCK_CHECKS_PART)
			ereport(ERROR,
					(errcode(ERRCODE_UNIQUE_VIOLATION),
					 errmsg("csvpipe worker %d waits for a row that another part of the same atomic load inserted", w),
					 errdetail("This happens when the file holds the same unique key twice, in different chunks."),
					 errhint("Remove the duplicates, or load with mode => 'chunked' to get the unique violation with its line.")));
	}
}

static void
wait_for_progress(CsvLeader *L)
{
	(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
					 1000L, PG_WAIT_EXTENSION);
	ResetLatch(MyLatch);
	CHECK_FOR_INTERRUPTS();
}

/* ---- public ---- */

/*
 * Start a parallel call of opts (its path, dialect, workers, chunk_size and
 * the options the workers take; opts must outlive the call): open the file
 * (all checks), consume skip_rows and the header, create the pool for up to
 * opts->nworkers.  For load, the caller fills pool->shared's job fields
 * before csv_leader_launch(), which starts the workers.
 */
CsvLeader *
csv_leader_begin(CsvParallelMode mode, const CsvOptions *opts, TupleDesc desc,
				 bool *convert, bool ordered, CsvErrorPosition *errpos)
{
	CsvLeader  *L = palloc0(sizeof(CsvLeader));
	const char *path = opts->path;
	int			nworkers = opts->nworkers;

	L->mode = mode;
	L->dialect = &opts->dialect;
	L->errpos = errpos;
	L->ordered = ordered;
	L->chunk_size = Max(opts->chunk_size, 1);
	L->desc = desc;
	L->pending_worker = -1;
	L->last_worker = -1;
	L->first_read = true;
	L->last_block_check = GetCurrentTimestamp();
	L->fd = csv_open_checked(path, &L->st);
	csv_file_id(&L->st, &L->id);
	L->size = LEADER_READ_BLOCK;
	L->buf = palloc(L->size);
	L->buf_line = 1;
	L->chunks_size = 256;
	L->chunks = palloc0(sizeof(ChunkInfo) * L->chunks_size);
	csv_splitter_init(&L->sp, L->dialect, '\n');	/* fill_buffer sets newline */

	consume_prefix(L);

	/* no more workers than chunks */
	nworkers = Min(nworkers, (L->st.st_size + L->chunk_size - 1) / L->chunk_size);
	nworkers = Max(nworkers, 1);
	L->pool = csv_pool_create(mode, nworkers, opts, desc, convert);
	L->pool->shared->file = L->id;
	L->pool->shared->newline = L->sp.newline;
	return L;
}

/*
 * read: only these columns go back to the leader; the others, converted
 * all the same, are sent as NULL (count(*) needs no value at all).
 */
void
csv_leader_set_sent_columns(CsvLeader *L, const bool *used)
{
	for (int i = 0; i < L->pool->shared->natts; i++)
		L->pool->columns[i].send = L->pool->columns[i].convert && used[i];
}

/*
 * Chunked load into relid (the file's columns attnames, or all): convert
 * chunks here while the workers are busy (preparse.c).  Not for columns of
 * types whose input may have side effects.
 */
void
csv_leader_set_preparse(CsvLeader *L, Oid relid, List *attnames)
{
	L->pre = csv_preparse_create(relid, attnames, L->dialect, L->fd, L->pool->path,
								 &L->id);
}

/* resume: chunks already loaded, to be skipped (sorted ascending) */
void
csv_leader_set_skip(CsvLeader *L, int64 *chunks, int n)
{
	L->skip = chunks;
	L->nskip = n;
}

CsvPool *
csv_leader_pool(CsvLeader *L)
{
	return L->pool;
}

CsvRecord *
csv_leader_header(CsvLeader *L)
{
	return L->header;
}

/* Launch the workers; returns how many started (0: caller goes serial) */
int
csv_leader_launch(CsvLeader *L)
{
	L->nworkers = csv_pool_launch(L->pool);
	return L->nworkers;
}

static void
deform(CsvLeader *L, MinimalTuple tuple, Datum *values, bool *nulls)
{
	HeapTupleData htup;

	htup.t_len = tuple->t_len + MINIMAL_TUPLE_OFFSET;
	htup.t_data = (HeapTupleHeader) ((char *) tuple - MINIMAL_TUPLE_OFFSET);
	heap_deform_tuple(&htup, L->desc, values, nulls);
}

/* read: next row in values/nulls (valid until the next call); false at end */
bool
csv_leader_next_row(CsvLeader *L, Datum *values, bool *nulls)
{
	/*
	 * Fast path: the worker that sent the last row most likely has the next
	 * one waiting; dispatching is only needed when it does not.
	 */
	/* rows left in the current batch come first */
	if (L->batch_ptr != NULL && L->batch_ptr < L->batch_end)
	{
		MinimalTuple tuple = (MinimalTuple) L->batch_ptr;

		L->batch_ptr += MAXALIGN(tuple->t_len);
		deform(L, tuple, values, nulls);
		return true;
	}
	L->batch_ptr = L->batch_end = NULL;

	if (L->last_worker >= 0 && L->pool->alive[L->last_worker])
	{
		int			w = L->last_worker;
		Size		nbytes;
		void	   *data;
		MinimalTuple tuple = NULL;

		/* keep the workers fed while rows stream in */
		if ((++L->fast_rows & 255) == 0)
			(void) dispatch(L);
		if (shm_mq_receive(L->pool->reply[w], &nbytes, &data, true) == SHM_MQ_SUCCESS)
		{
			if (handle_reply(L, w, data, nbytes, &tuple))
			{
				deform(L, tuple, values, nulls);
				return true;
			}
		}
		L->last_worker = -1;
	}

	for (;;)
	{
		MinimalTuple tuple = NULL;
		bool		progress;
		int			got;

		CHECK_FOR_INTERRUPTS();
		progress = dispatch(L);
		got = collect(L, &tuple);
		if (got == 2)
		{
			deform(L, tuple, values, nulls);
			return true;
		}
		if (all_finished(L))
			return false;
		if (!progress && got == 0)
			wait_for_progress(L);
	}
}

/*
 * Transaction mode: the next entry (a row, or a rejected record) in file
 * order; *payload follows the header.  Both stay valid until the next
 * call.  False when every worker is done.
 */
bool
csv_leader_next_entry(CsvLeader *L, CsvRowHeader **hdr, char **payload)
{
	for (;;)
	{
		MinimalTuple tuple = NULL;
		bool		progress;
		int			got;

		if (L->batch_ptr != NULL && L->batch_ptr < L->batch_end)
		{
			CsvRowHeader *h = (CsvRowHeader *) L->batch_ptr;

			*hdr = h;
			*payload = L->batch_ptr + sizeof(CsvRowHeader);
			L->batch_ptr += sizeof(CsvRowHeader) + MAXALIGN(h->size);
			return true;
		}
		L->batch_ptr = L->batch_end = NULL;

		/* the worker that sent the last batch most likely has the next */
		if (L->last_worker >= 0 && L->pool->alive[L->last_worker])
		{
			int			w = L->last_worker;
			Size		nbytes;
			void	   *data;

			/* keep the workers fed while rows stream in */
			if ((++L->fast_rows & 15) == 0)
				(void) dispatch(L);
			if (shm_mq_receive(L->pool->reply[w], &nbytes, &data, true) == SHM_MQ_SUCCESS)
			{
				if (handle_reply(L, w, data, nbytes, &tuple))
					continue;
				/* a chunk's end: the next chunk may be another worker's */
			}
			L->last_worker = -1;
		}

		CHECK_FOR_INTERRUPTS();
		progress = dispatch(L);
		got = collect(L, &tuple);
		if (got == 2)
			continue;
		if (all_finished(L))
			return false;
		if (!progress && got == 0)
			wait_for_progress(L);
	}
}

/*
 * Transaction mode: a record's raw bytes, read back from the file (at most
 * maxlen of them), for csvpipe.rejected.
 */
char *
csv_leader_read_raw(CsvLeader *L, int64 offset, int64 length, int64 maxlen, int64 *got)
{
	int64		want = Min(length, maxlen);
	char	   *buf = palloc(want + 1);
	int64		done = 0;

	while (done < want)
	{
		ssize_t		n = pread(L->fd, buf + done, want - done, offset + done);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			ereport(ERROR,
					(errcode_for_file_access(),
					 errmsg("could not read file \"%s\": %m", L->errpos->path)));
		if (n == 0)
			break;
		done += n;
	}
	buf[done] = '\0';
	*got = done;
	return buf;
}

/* Transaction mode: the chunk whose entries are being returned */
int64
csv_leader_current_chunk(CsvLeader *L)
{
	return L->next_emit;
}

/* load: drive the whole file through the workers */
void
csv_leader_run(CsvLeader *L)
{
	for (;;)
	{
		MinimalTuple tuple = NULL;
		bool		progress;
		int			got;

		CHECK_FOR_INTERRUPTS();
		progress = dispatch(L);
		got = collect(L, &tuple);
		if (all_finished(L))
		{
			if (L->pre != NULL)
				elog(DEBUG1, "csvpipe leader: converted " INT64_FORMAT " of " INT64_FORMAT " chunks for the workers",
					 L->chunks_preparsed, L->next_chunk_no);
			break;
		}
		/* also while other workers keep the leader busy */
		check_workers_blocked(L);
		if (!progress && got == 0)
			wait_for_progress(L);
	}
}

int64
csv_leader_rows(CsvLeader *L)
{
	return L->rows;
}

int64
csv_leader_rejected(CsvLeader *L)
{
	return L->rejected;
}

int64
csv_leader_retries(CsvLeader *L)
{
	return L->retries;
}

int64
csv_leader_bytes(CsvLeader *L)
{
	return L->bytes_read;
}

bool
csv_leader_all_prepared(CsvLeader *L)
{
	for (int w = 0; w < L->nworkers; w++)
		if (!L->prepared[w])
			return false;
	return true;
}

/* The workers whose "prepared" message arrived, as a bitmap (txn.h) */
void
csv_leader_prepared_parts(CsvLeader *L, uint32 *parts)
{
	memset(parts, 0, sizeof(uint32) * ((CSVPIPE_MAX_SLOTS + 31) / 32));
	for (int w = 0; w < L->nworkers && w < CSVPIPE_MAX_SLOTS; w++)
		if (L->prepared[w])
			parts[w / 32] |= 1U << (w % 32);
}

int
csv_leader_nworkers(CsvLeader *L)
{
	return L->nworkers;
}

/* End: wait for the workers to exit (stopping them first if the caller
 * stopped early, as LIMIT does), free all */
void
csv_leader_end(CsvLeader *L)
{
	if (L->pool)
	{
		if (!all_finished(L))
			csv_pool_terminate(L->pool);
		csv_pool_wait_exit(L->pool);
		csv_pool_destroy(L->pool);
		L->pool = NULL;
	}
	if (L->fd >= 0)
	{
		csv_close_file(L->fd);
		L->fd = -1;
	}
}

/*
 * Error end: stop the workers now and wait for them.  Called with
 * interrupts held, so the wait must end by itself: a worker told to stop
 * while it waits on its full reply queue (a transaction-mode load's
 * entries, which the leader stopped taking) sends its FATAL report into
 * that very queue and waits for room; so the replies are drained while
 * waiting.  A chunked load's chunk results are taken as
 * csv_leader_all_committed() takes them (it reads the rest afterwards);
 * everything else is dropped: the load is failing.
 */
void
csv_leader_abort(CsvLeader *L)
{
	if (L->pool == NULL)
		return;
	csv_pool_terminate(L->pool);
	for (;;)
	{
		bool		running = false;

		for (int w = 0; w < L->pool->nworkers; w++)
		{
			pid_t		pid;

			if (L->pool->handles[w] == NULL)
				continue;
			if (GetBackgroundWorkerPid(L->pool->handles[w], &pid) == BGWH_STOPPED)
				continue;
			running = true;
			if (w >= L->nworkers || L->pool->reply[w] == NULL)
				continue;
			for (;;)
			{
				Size		nbytes;
				void	   *data;
				MinimalTuple tuple;

				if (shm_mq_receive(L->pool->reply[w], &nbytes, &data, true) != SHM_MQ_SUCCESS)
					break;
				if (!L->pool->shared->atomic && L->mode == CSV_MODE_LOAD &&
					nbytes > 0 &&
					(((char *) data)[0] == CSV_MSG_CHUNK_DONE ||
					 ((char *) data)[0] == CSV_MSG_FINISHED))
					(void) handle_reply(L, w, (char *) data, nbytes, &tuple);
			}
		}
		if (!running)
			break;
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 100L, WAIT_EVENT_BGWORKER_SHUTDOWN);
		ResetLatch(MyLatch);
	}
	csv_pool_wait_exit(L->pool);
}

/*
 * The leader was stopped before it cut the file to its end: cut the rest
 * now (no chunk is sent).  True if no chunk is left to cut -- the input
 * was all dispatched already -- false if there is one, or if reading
 * fails (the file changed, say).  Called with no error pending: an error
 * here is caught and forgotten.
 */
static bool
input_all_dispatched(CsvLeader *L)
{
	MemoryContext cxt = CurrentMemoryContext;
	uint32		holdoff = InterruptHoldoffCount;
	uint32		cancel_holdoff = QueryCancelHoldoffCount;
	volatile bool more = true;

	if (L->all_read)
		return !L->have_chunk && L->retry == NIL;
	if (L->have_chunk || L->retry != NIL)
		return false;
	PG_TRY();
	{
		more = prepare_chunk(L);
	}
	PG_CATCH();
	{
		/* errfinish zeroed the caller's hold counts */
		InterruptHoldoffCount = holdoff;
		QueryCancelHoldoffCount = cancel_holdoff;
		MemoryContextSwitchTo(cxt);
		FlushErrorState();
		more = true;
	}
	PG_END_TRY();
	return !more && L->all_read;
}

/*
 * Chunked load, after csv_leader_abort (every worker has exited, so what
 * they committed is final): is every chunk of the file committed?  Reads
 * what the workers sent before they went (chunk results only: their errors
 * do not matter any more) and counts the chunk each committed without
 * getting to send its result, so a cancel that came after the last commit
 * is seen as too late -- also when it stopped the leader before it had
 * looked for the end of the file, after sending the last chunk.  Called
 * with interrupts held and no error pending.
 */
bool
csv_leader_all_committed(CsvLeader *L)
{
	if (L->pool == NULL || L->pool->shared->atomic || L->mode != CSV_MODE_LOAD)
		return false;
	for (int w = 0; w < L->nworkers; w++)
	{
		if (L->pool->reply[w] == NULL)
			continue;
		for (;;)
		{
			Size		nbytes;
			void	   *data;
			MinimalTuple tuple;

			if (shm_mq_receive(L->pool->reply[w], &nbytes, &data, true) != SHM_MQ_SUCCESS)
				break;
			if (((char *) data)[0] == CSV_MSG_CHUNK_DONE ||
				((char *) data)[0] == CSV_MSG_FINISHED)
				(void) handle_reply(L, w, (char *) data, nbytes, &tuple);
		}
		chunk_committed_anyway(L, w);
	}
	return input_all_dispatched(L) &&
		L->chunks_done + L->chunks_skipped == L->next_chunk_no;
}
