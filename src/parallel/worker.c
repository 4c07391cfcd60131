/*-------------------------------------------------------------------------
 *
 * worker.c
 *		The csvpipe background worker's main loop.
 *
 * A worker attaches to its call's DSM segment, redirects its errors and
 * notices to its reply queue (the leader re-raises them), connects as the
 * calling role with the caller's GUC state, opens the file (it must be the
 * very file the leader opened), and then takes chunk labels from its input
 * queue until the leader sends the end marker.  Each chunk is read from the
 * file with pread (the file must still be unchanged), converted to the
 * server encoding, tokenized by the same libcsv tokenizer
 * and converted by the same converter as the single-process reader, with
 * line numbers starting at the chunk's first line.
 *
 *	read:  every row goes back to the leader as a MinimalTuple, then a
 *		   chunk-done message; rows of a chunk stay in file order.
 *	transaction-mode load (a read with shared->txn_load): the same, but
 *		   each row goes as an entry carrying its line (CSV_MSG_ROWS) and
 *		   the leader inserts it in the caller's transaction.  The worker
 *		   never touches the target: it may be a table the caller's open
 *		   transaction created.  In skip mode the chunk is cut into records
 *		   as a load's is, and its rows and rejected records are staged
 *		   and sent once the chunk is done (a chunk redone record by
 *		   record must not have sent anything).
 *	load:  rows are inserted with load.c; txn.c decides when the
 *		   transaction ends (per chunk with its ledger row, or once for
 *		   the whole worker with PREPARE TRANSACTION in atomic mode).  In
 *		   a chunked load the leader may have converted a chunk already
 *		   (preparse.c): its rows follow the label, and the worker only
 *		   inserts them; an attempt that fails reads the rest of them
 *		   away, and the next one converts the chunk from the file.
 *
 * Every chunk of a load runs in a subtransaction of the worker's
 * transaction.  A transient error (deadlock, serialization failure, lock
 * timeout) rolls the chunk back and retries it after a backoff.  With
 * on_error => 'skip' the chunk is cut into records with the splitter, so
 * each record's byte offset and raw text are known; a record that cannot be
 * parsed or converted is written to csvpipe.rejected, and converted rows go
 * in batches of CSV_SKIP_BATCH, each in its own subtransaction: a batch that
 * fails (constraint, unique key, trigger, foreign key) is retried in halves
 * until the bad rows are alone and can be rejected, so good rows are loaded
 * exactly once and batching is kept for the rest.
 *
 * The worker blocks on its queues, so a full reply queue slows it down
 * (backpressure) and a detached queue (leader gone) ends it.  SIGTERM ends
 * it at the next CHECK_FOR_INTERRUPTS, rolling back what it had not
 * committed.
 *
 *-------------------------------------------------------------------------
 */
#include "parallel.h"
#include "fdw_reuse.h"
#include "errors.h"
#include "load.h"
#include "options.h"
#include "progress.h"
#include "shards.h"
#include "txn.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "access/htup_details.h"
#include "access/xact.h"
#include "access/xlog.h"
#include "libpq/pqmq.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "replication/syncrep.h"
#include "storage/fd.h"
#include "storage/ipc.h"
#include "storage/proc.h"
#include "tcop/tcopprot.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"

/* tokenizer feed size inside a chunk: bounds the per-chunk record buffer */
#define WORKER_FEED_SIZE	(256 * 1024)
/* on_error => 'skip': rows per insert batch (and subtransaction) */
#define CSV_SKIP_BATCH		4096

/* a converted row waiting in a skip-mode batch */
typedef struct BatchRow
{
	Datum	   *values;
	bool	   *nulls;
	int64		line_no;
	int64		offset;			/* in the chunk */
	int64		length;
} BatchRow;

typedef struct WorkerState
{
	int			worker_no;
	CsvParallelShared *shared;
	CsvColumnDesc *columns;
	shm_mq_handle *input;
	shm_mq_handle *reply;
	int			fd;				/* the file, read with pread */
	char	   *chunk_buf;		/* the chunk being processed */
	int64		chunk_buf_size;
	CsvOptions	opts;			/* the options workers take (options.c) */
	CsvErrorPosition errpos;
	TupleDesc	read_desc;		/* read: the caller's column list */
	bool	   *convert;
	bool	   *unsent;			/* read: columns the leader does not need */
	bool		any_unsent;
	List	   *attnames;		/* load: columns => list, or NIL */
	CsvLoadTarget *target;		/* load: open target */
	CsvConverter *conv;
	Datum	   *values;
	bool	   *nulls;
	MemoryContext chunk_cxt;
	MemoryContext row_cxt;
	MemoryContext batch_cxt;
	MemoryContext err_cxt;
	int64		rows_in_chunk;
	int64		rejected_in_chunk;
	int64		retries_in_chunk;
	int64		rows_total;
	/* skip mode */
	CsvTokenizer *rec_tok;
	BatchRow   *batch;
	int			nbatch;
	CsvChunkHeader *cur_hdr;
	char	   *cur_data;
	/* read: tuples batched into one message */
	char	   *tbuf;
	Size		tlen;
	/* transaction mode */
	bool		txn;			/* shared->txn_load */
	int			natts;			/* the file's columns */
	bool		staging;		/* entries go to pending, not to the queue */
	/* chunked load */
	bool		shards;			/* the target reaches foreign tables (shards.c) */
	int64		chunk_attempts; /* whole-chunk retries of the current chunk */
	int64		stream_left;	/* bytes of the chunk's rows the leader
								 * converted (preparse.c) not yet received */
	StringInfoData pending;		/* skip mode: the chunk's staged entries */
} WorkerState;

static void
send_reply(WorkerState *ws, char type, const void *data, Size len, bool flush)
{
	shm_mq_iovec iov[2];
	shm_mq_result res;
	char		header[MAXALIGN(1)];

	/* a MAXALIGN'd header keeps the payload aligned in the queue */
	memset(header, 0, sizeof(header));
	header[0] = type;
	iov[0].data = header;
	iov[0].len = sizeof(header);
	iov[1].data = data;
	iov[1].len = len;
	/* tuples are not flushed one by one: that would signal the leader per row */
	res = shm_mq_sendv(ws->reply, iov, len > 0 ? 2 : 1, false, flush);
	if (res != SHM_MQ_SUCCESS)
		ereport(ERROR,
				(errcode(ERRCODE_ADMIN_SHUTDOWN),
				 errmsg("csvpipe worker %d: the leader went away", ws->worker_no)));
}

/* read: send the batched tuples */
static void
flush_tuples(WorkerState *ws)
{
	if (ws->tlen > 0)
		send_reply(ws, ws->txn ? CSV_MSG_ROWS : CSV_MSG_BATCH, ws->tbuf, ws->tlen, false);
	ws->tlen = 0;
}

/*
 * Transaction mode: one entry for the leader (a row or a rejected record),
 * batched like a read's tuples, or staged while a skip-mode chunk runs.
 */
static void
queue_entry(WorkerState *ws, int kind, int64 line_no, int64 offset, int64 length,
			const void *payload, Size size)
{
	CsvRowHeader h;
	Size		len = sizeof(CsvRowHeader) + MAXALIGN(size);

	StaticAssertStmt(sizeof(CsvRowHeader) == MAXALIGN(sizeof(CsvRowHeader)),
					 "CsvRowHeader must keep its payload aligned");
	memset(&h, 0, sizeof(h));
	h.line_no = line_no;
	h.offset = offset;
	h.length = length;
	h.kind = kind;
	h.size = (uint32) size;
	if (ws->staging)
	{
		appendBinaryStringInfo(&ws->pending, (char *) &h, sizeof(h));
		appendBinaryStringInfo(&ws->pending, payload, size);
		while (ws->pending.len % MAXIMUM_ALIGNOF)
			appendStringInfoChar(&ws->pending, '\0');
		return;
	}
	if (ws->tlen + len > CSV_TUPLE_BATCH)
		flush_tuples(ws);
	if (len > CSV_TUPLE_BATCH)
	{
		/* one entry alone, as big as it is */
		char	   *one = palloc0(len);

		memcpy(one, &h, sizeof(h));
		memcpy(one + sizeof(h), payload, size);
		send_reply(ws, CSV_MSG_ROWS, one, len, false);
		pfree(one);
		return;
	}
	if (ws->tbuf == NULL)
		ws->tbuf = MemoryContextAllocZero(TopMemoryContext, CSV_TUPLE_BATCH);
	memcpy(ws->tbuf + ws->tlen, &h, sizeof(h));
	memcpy(ws->tbuf + ws->tlen + sizeof(h), payload, size);
	ws->tlen += len;
}

/* Transaction mode, skip mode: send a finished chunk's staged entries */
static void
send_staged(WorkerState *ws)
{
	char	   *p = ws->pending.data;
	char	   *end = ws->pending.data + ws->pending.len;

	ws->staging = false;
	while (p < end)
	{
		CsvRowHeader *h = (CsvRowHeader *) p;

		queue_entry(ws, h->kind, h->line_no, h->offset, h->length,
					p + sizeof(CsvRowHeader), h->size);
		p += sizeof(CsvRowHeader) + MAXALIGN(h->size);
	}
	resetStringInfo(&ws->pending);
}

/*
 * read: add a tuple to the batch.  Batching many rows per queue message
 * keeps the queue's per-message cost off both ends.
 */
static void
queue_tuple(WorkerState *ws, MinimalTuple tup)
{
	Size		len = MAXALIGN(tup->t_len);

	if (len > CSV_TUPLE_BATCH)
	{
		flush_tuples(ws);
		send_reply(ws, CSV_MSG_TUPLE, tup, tup->t_len, false);
		return;
	}
	if (ws->tlen + len > CSV_TUPLE_BATCH)
		flush_tuples(ws);
	if (ws->tbuf == NULL)
		ws->tbuf = MemoryContextAllocZero(TopMemoryContext, CSV_TUPLE_BATCH);
	memcpy(ws->tbuf + ws->tlen, tup, tup->t_len);
	ws->tlen += len;
}

static void
handle_record(WorkerState *ws, CsvRecord *rec)
{
	MemoryContext oldcxt;

	CHECK_FOR_INTERRUPTS();
	MemoryContextReset(ws->row_cxt);
	oldcxt = MemoryContextSwitchTo(ws->row_cxt);
	if (ws->shared->mode == CSV_MODE_READ && ws->opts.on_error_skip &&
		(rec->bad || !ws->shared->text_mode))
	{
		/* a skipped row is NOTICEd by number in the whole call */
		ErrorData  *edata = NULL;

		if (!ws->shared->text_mode)
			edata = csv_converter_row_catch(ws->conv, rec, ws->values, ws->nulls,
											CurrentMemoryContext);
		if (rec->bad || edata != NULL)
		{
			ws->rejected_in_chunk++;
			csv_skip_notice(&ws->errpos, rec->line_no,
							edata ? edata->message : rec->bad->message,
							(int64) pg_atomic_add_fetch_u64(&ws->shared->rejected_total, 1));
			ws->errpos.column = NULL;
			ws->errpos.value = NULL;
			MemoryContextSwitchTo(oldcxt);
			return;
		}
	}
	else if (ws->shared->text_mode)
		csv_text_row(&ws->opts.dialect, rec, ws->values, ws->nulls, &ws->errpos);
	else
		csv_converter_row(ws->conv, rec, ws->values, ws->nulls);
	if (ws->shared->mode == CSV_MODE_READ)
	{
		MinimalTuple tup;

		if (ws->any_unsent)
			for (int i = 0; i < ws->read_desc->natts; i++)
				if (ws->unsent[i])
					ws->nulls[i] = true;
		tup = heap_form_minimal_tuple(ws->read_desc, ws->values, ws->nulls);

		if (ws->txn)
			queue_entry(ws, CSV_ENTRY_ROW, rec->line_no, 0, 0, tup, tup->t_len);
		else
			queue_tuple(ws, tup);
	}
	else
	{
		/* rows are inserted in batches: load.c names the row's own line */
		ws->errpos.line_no = 0;
		csv_load_row(ws->target, ws->values, ws->nulls, rec->line_no);
	}
	MemoryContextSwitchTo(oldcxt);
	ws->rows_in_chunk++;
}

/*
 * Tokenize and convert one chunk, stopping at the first error.  Bytes
 * invalid in the encoding make their record bad (csv_encoder_feed), so the
 * rows before it come first and the first bad line of the file is the one
 * reported; a read with on_error => 'skip' skips that record only.
 */
static void
process_chunk(WorkerState *ws, CsvChunkHeader *hdr, char *data)
{
	MemoryContext oldcxt = MemoryContextSwitchTo(ws->chunk_cxt);
	CsvTokenizer *tok;
	CsvEncoder	enc;
	CsvRecord	rec;
	int64		off = 0;

	ws->errpos.line_no = hdr->first_line;
	csv_encoder_init(&enc, &ws->opts.dialect);
	tok = csv_tokenizer_create(&ws->opts.dialect, &ws->errpos, hdr->first_line);
	while (off < hdr->length)
	{
		int64		n = Min(WORKER_FEED_SIZE, hdr->length - off);
		bool		final = (off + n == hdr->length);
		int64		rest = csv_encoder_feed(&enc, tok, data + off, n, final);

		/* a character cut by the feed's end goes with the next feed */
		off += n - rest;
		while (csv_tokenizer_next(tok, &rec))
			handle_record(ws, &rec);
	}
	csv_tokenizer_finish(tok);
	while (csv_tokenizer_next(tok, &rec))
		handle_record(ws, &rec);
	csv_tokenizer_destroy(tok);
	MemoryContextSwitchTo(oldcxt);
}

/*
 * Chunked load, a chunk the leader converted (preparse.c): insert its rows
 * as they come, CsvRowHeader entries in messages after the label.  The
 * values point into the message, which stays valid for its rows' inserts
 * (a buffered row is copied).
 */
static void
process_preparsed(WorkerState *ws)
{
	TupleDesc	desc = csv_load_input_desc(ws->target);

	while (ws->stream_left > 0)
	{
		Size		nbytes;
		void	   *data;
		char	   *p;
		char	   *end;

		CHECK_FOR_INTERRUPTS();
		if (shm_mq_receive(ws->input, &nbytes, &data, false) != SHM_MQ_SUCCESS)
			ereport(ERROR,
					(errcode(ERRCODE_ADMIN_SHUTDOWN),
					 errmsg("csvpipe worker %d: the leader went away", ws->worker_no)));
		if ((int64) nbytes > ws->stream_left)
			elog(ERROR, "csvpipe worker got %zu bytes of rows, expected at most " INT64_FORMAT,
				 nbytes, ws->stream_left);
		ws->stream_left -= nbytes;
		p = (char *) data;
		end = p + nbytes;
		while (p < end)
		{
			CsvRowHeader *h = (CsvRowHeader *) p;
			MinimalTuple tup = (MinimalTuple) (p + sizeof(CsvRowHeader));
			HeapTupleData htup;
			MemoryContext oldcxt;

			if (p + sizeof(CsvRowHeader) + h->size > end ||
				HeapTupleHeaderGetNatts((HeapTupleHeader) ((char *) tup - MINIMAL_TUPLE_OFFSET)) != desc->natts)
				elog(ERROR, "csvpipe worker got a malformed row from the leader");
			CHECK_FOR_INTERRUPTS();
			MemoryContextReset(ws->row_cxt);
			oldcxt = MemoryContextSwitchTo(ws->row_cxt);
			htup.t_len = tup->t_len + MINIMAL_TUPLE_OFFSET;
			htup.t_data = (HeapTupleHeader) ((char *) tup - MINIMAL_TUPLE_OFFSET);
			heap_deform_tuple(&htup, desc, ws->values, ws->nulls);
			/* rows are inserted in batches: load.c names the row's own line */
			ws->errpos.line_no = 0;
			csv_load_row(ws->target, ws->values, ws->nulls, h->line_no);
			MemoryContextSwitchTo(oldcxt);
			ws->rows_in_chunk++;
			p += sizeof(CsvRowHeader) + MAXALIGN(h->size);
		}
	}
}

/*
 * The rest of a converted chunk's rows, read and dropped: its attempt
 * failed, and the next one converts the chunk itself.
 */
static void
drain_preparsed(WorkerState *ws)
{
	while (ws->stream_left > 0)
	{
		Size		nbytes;
		void	   *data;

		CHECK_FOR_INTERRUPTS();
		if (shm_mq_receive(ws->input, &nbytes, &data, false) != SHM_MQ_SUCCESS)
			ereport(ERROR,
					(errcode(ERRCODE_ADMIN_SHUTDOWN),
					 errmsg("csvpipe worker %d: the leader went away", ws->worker_no)));
		ws->stream_left -= Min((int64) nbytes, ws->stream_left);
	}
}

/* load: open the target and a converter for its column list (per chunk) */
static void
open_target(WorkerState *ws)
{
	TupleDesc	desc;

	ws->target = csv_load_begin(ws->shared->target_relid, ws->attnames);
	desc = csv_load_input_desc(ws->target);
	csv_dialect_set_columns(&ws->opts.dialect, desc->natts);
	ws->conv = csv_converter_create(desc, &ws->opts.dialect, &ws->errpos, NULL);
	ws->values = palloc(sizeof(Datum) * desc->natts);
	ws->nulls = palloc(sizeof(bool) * desc->natts);
	ws->natts = desc->natts;
}

/* ---- on_error => 'skip' ---- */

typedef struct InsertArgs
{
	WorkerState *ws;
	int			lo;
	int			hi;
	int64		inserted;
} InsertArgs;

static void
insert_rows(void *arg)
{
	InsertArgs *a = (InsertArgs *) arg;
	CsvLoadTarget *t = csv_load_begin(a->ws->shared->target_relid, a->ws->attnames);

	for (int i = a->lo; i < a->hi; i++)
		csv_load_row(t, a->ws->batch[i].values, a->ws->batch[i].nulls,
					 a->ws->batch[i].line_no);
	/* end fires the AFTER triggers, foreign key checks included, here */
	a->inserted = (int64) csv_load_end(t);
}

/* Insert batch rows [lo, hi) in a subtransaction; NULL or the error */
static ErrorData *
try_insert(WorkerState *ws, int lo, int hi, int64 *inserted, bool *in_trigger)
{
	InsertArgs	a = {ws, lo, hi, 0};
	ErrorData  *edata;

	csv_row_errors_begin();
	edata = csv_try_in_subxact(insert_rows, &a, ws->err_cxt);
	*in_trigger = csv_row_errors_end(edata);
	*inserted = a.inserted;
	return edata;
}


/*
 * A load's row that csv_reject_row counted in rejected_total: counted in
 * the worker's slot too until its chunk commits, so that a leader that
 * finds this worker lost takes it back (leader.c: worker_lost) -- its
 * chunk's next attempt counts the row again.
 */
static void
count_open_reject(WorkerState *ws)
{
	ws->rejected_in_chunk++;
	if (ws->shared->mode == CSV_MODE_LOAD)
		(void) pg_atomic_add_fetch_u64(&ws->shared->workers[ws->worker_no].rejected_open, 1);
}

/*
 * Capture a bad row.  Only the row's own errors may be captured (insert
 * errors are sorted by insert_batch): a transient error (lock timeout,
 * deadlock, serialization failure), a cancel, shutdown, connection,
 * resource or internal error caught on the way is raised again, for the
 * chunk's retry logic (or the leader) to handle.
 */
static void
reject(WorkerState *ws, int64 line_no, int64 offset, int64 length, ErrorData *edata)
{
	if (!csv_error_is_input_error(edata))
		ReThrowError(edata);
	if (ws->txn)
	{
		/* the leader records it, in the caller's transaction */
		StringInfoData buf;
		CsvRejectEntry re;
		const char *column = edata->column_name ? edata->column_name : ws->errpos.column;

		memset(&re, 0, sizeof(re));
		re.chunk_no = ws->cur_hdr->chunk_no;
		re.sqlerrcode = edata->sqlerrcode;
		re.has_detail = (edata->detail != NULL);
		re.has_column = (column != NULL);
		initStringInfo(&buf);
		appendBinaryStringInfo(&buf, (char *) &re, sizeof(re));
		appendStringInfoString(&buf, edata->message ? edata->message : "");
		appendStringInfoChar(&buf, '\0');
		if (edata->detail)
		{
			appendStringInfoString(&buf, edata->detail);
			appendStringInfoChar(&buf, '\0');
		}
		if (column)
		{
			appendStringInfoString(&buf, column);
			appendStringInfoChar(&buf, '\0');
		}
		queue_entry(ws, CSV_ENTRY_REJECT, line_no, ws->cur_hdr->start_offset + offset,
					length, buf.data, buf.len);
		pfree(buf.data);
		ws->rejected_in_chunk++;
		ws->errpos.column = NULL;
		ws->errpos.value = NULL;
		return;
	}
	csv_reject_row(ws->shared, ws->opts.max_errors, ws->cur_hdr->chunk_no, line_no,
				   ws->cur_hdr->start_offset + offset, ws->cur_data + offset, length,
				   ws->errpos.column, edata);
	count_open_reject(ws);
	ws->errpos.column = NULL;
	ws->errpos.value = NULL;
}

/* Insert rows [lo, hi), halving around failures down to single bad rows */
static void
insert_batch(WorkerState *ws, int lo, int hi)
{
	int			attempt = 0;

	for (;;)
	{
		int64		inserted = 0;
		bool		in_trigger;
		ErrorData  *edata;

		CHECK_FOR_INTERRUPTS();
		edata = try_insert(ws, lo, hi, &inserted, &in_trigger);
		if (edata == NULL)
		{
			ws->rows_in_chunk += inserted;
			return;
		}
		if (csv_error_is_transient(edata) && attempt < csvpipe_max_retries)
		{
			attempt++;
			ws->retries_in_chunk++;
			csv_backoff_sleep(attempt);
			continue;
		}
		/* not the rows' fault (a table gone on a shard, say): no halving */
		if (!csv_error_is_row_error(edata, in_trigger))
			ReThrowError(edata);
		if (hi - lo == 1)
		{
			BatchRow   *r = &ws->batch[lo];

			reject(ws, r->line_no, r->offset, r->length, edata);
			/* a row routed to a shard: its ledger keeps the line (shards.c) */
			if (ws->shards)
				csv_shards_row_rejected(r->line_no, edata->sqlerrcode);
			return;
		}
		insert_batch(ws, lo, lo + (hi - lo) / 2);
		insert_batch(ws, lo + (hi - lo) / 2, hi);
		return;
	}
}

static void
flush_batch(WorkerState *ws)
{
	if (ws->nbatch > 0 && ws->txn)
	{
		/* transaction mode: the rows go to the leader, which inserts them */
		MemoryContext old = MemoryContextSwitchTo(ws->batch_cxt);

		for (int i = 0; i < ws->nbatch; i++)
		{
			BatchRow   *r = &ws->batch[i];
			MinimalTuple tup = heap_form_minimal_tuple(ws->read_desc, r->values, r->nulls);

			queue_entry(ws, CSV_ENTRY_ROW, r->line_no, ws->cur_hdr->start_offset + r->offset,
						r->length, tup, tup->t_len);
		}
		MemoryContextSwitchTo(old);
		ws->rows_in_chunk += ws->nbatch;
	}
	else if (ws->nbatch > 0)
		insert_batch(ws, 0, ws->nbatch);
	ws->nbatch = 0;
	MemoryContextReset(ws->batch_cxt);
}

/*
 * A converted row into the batch.  flush_batch() empties it at
 * CSV_SKIP_BATCH rows; a full batch here means a flush was skipped (an
 * error escaped between the insert and the reset), and writing past the
 * array would corrupt memory, so it is an internal error.
 */
static void
batch_append(WorkerState *ws, Datum *values, bool *nulls, int64 line_no,
			 int64 offset, int64 length)
{
	BatchRow   *r;

	if (ws->nbatch < 0 || ws->nbatch >= CSV_SKIP_BATCH)
		elog(ERROR, "csvpipe worker %d: skip-mode batch overflow (%d rows)",
			 ws->worker_no, ws->nbatch);
	r = &ws->batch[ws->nbatch++];
	r->values = values;
	r->nulls = nulls;
	r->line_no = line_no;
	r->offset = offset;
	r->length = length;
}

/*
 * One raw record of a skip-mode chunk: to the server encoding, tokenized,
 * converted into the batch -- or rejected.
 */
static void
skip_mode_record(WorkerState *ws, int64 offset, int64 length, int64 line_no)
{
	MemoryContext oldcxt = MemoryContextSwitchTo(ws->batch_cxt);
	int			natts = ws->natts;
	ErrorData  *edata = NULL;
	CsvRecord	rec;
	bool		have = false;
	Datum	   *values = palloc(sizeof(Datum) * natts);
	bool	   *nulls = palloc(sizeof(bool) * natts);

	ws->errpos.column = NULL;
	ws->errpos.value = NULL;

	/* encoding and tokenizing: csvpipe's own code, no subxact */
	PG_TRY();
	{
		int64		slen;
		char	   *sdata = csv_buffer_to_server(&ws->opts.dialect, ws->cur_data + offset,
												 length, &slen, &ws->errpos, line_no);

		csv_tokenizer_set_line(ws->rec_tok, line_no);
		csv_tokenizer_feed(ws->rec_tok, sdata, slen);
		have = csv_tokenizer_next(ws->rec_tok, &rec);
		if (!have)
		{
			/* the last record may lack its line end */
			csv_tokenizer_finish(ws->rec_tok);
			have = csv_tokenizer_next(ws->rec_tok, &rec);
		}
	}
	PG_CATCH();
	{
		edata = csv_catch_error(ws->err_cxt, ws->chunk_cxt);
		/*
		 * libcsv's state is lost with the error: a fresh tokenizer, in the
		 * chunk's memory (the batch's is reset at every flush)
		 */
		csv_tokenizer_destroy(ws->rec_tok);
		ws->rec_tok = csv_tokenizer_create(&ws->opts.dialect, &ws->errpos, line_no);
		MemoryContextSwitchTo(ws->batch_cxt);
	}
	PG_END_TRY();

	if (edata == NULL && have)
		edata = csv_converter_row_catch(ws->conv, &rec, values, nulls, ws->err_cxt);

	if (edata != NULL)
		reject(ws, line_no, offset, length, edata);
	else if (have)
		batch_append(ws, values, nulls, line_no, offset, length);
	/* a CR-only line end can hide more records in the same "line": drop them */
	while (have && csv_tokenizer_next(ws->rec_tok, &rec))
		;
	/* the record ended with its line end: libcsv is between records again */
	MemoryContextSwitchTo(oldcxt);
	if (ws->nbatch >= CSV_SKIP_BATCH)
		flush_batch(ws);
}

/* A tokenized record of a skip-mode chunk: converted into the batch, or rejected */
static void
skip_add_record(WorkerState *ws, CsvRecord *rec, int64 offset, int64 length)
{
	MemoryContext oldcxt = MemoryContextSwitchTo(ws->batch_cxt);
	int			natts = ws->natts;
	ErrorData  *edata = NULL;
	Datum	   *values = palloc(sizeof(Datum) * natts);
	bool	   *nulls = palloc(sizeof(bool) * natts);

	ws->errpos.column = NULL;
	ws->errpos.value = NULL;
	edata = csv_converter_row_catch(ws->conv, rec, values, nulls, ws->err_cxt);

	if (edata != NULL)
		reject(ws, rec->line_no, offset, length, edata);
	else
		batch_append(ws, values, nulls, rec->line_no, offset, length);
	MemoryContextSwitchTo(oldcxt);
	if (ws->nbatch >= CSV_SKIP_BATCH)
		flush_batch(ws);
}

/* a skip-mode chunk's records, as the splitter sees them */
typedef struct SkipRecords
{
	int64	   *off;
	int64	   *len;
	int64	   *line;
	int			n;
} SkipRecords;

static void
split_records(CsvChunkHeader *hdr, char *data, const CsvDialect *dialect,
			  char newline, SkipRecords *recs)
{
	CsvSplitter sp;
	int64		pos = 0;
	int64		line = hdr->first_line;
	int			size = 1024;

	recs->n = 0;
	recs->off = palloc(sizeof(int64) * size);
	recs->len = palloc(sizeof(int64) * size);
	recs->line = palloc(sizeof(int64) * size);
	csv_splitter_init(&sp, dialect, newline);
	sp.each_record = true;		/* lone CRs end records too, as for libcsv */
	sp.line = line;
	while (pos < hdr->length)
	{
		int64		next_line;
		int64		end = csv_splitter_scan(&sp, data, pos, hdr->length, pos + 1, &next_line);

		if (end < 0)
		{
			end = hdr->length;
			next_line = sp.line;
		}
		/* empty lines are records where the tokenizer makes them so */
		if (dialect->empty_line_is_record ||
			!csv_splitter_record_is_empty(data, pos, end))
		{
			if (recs->n >= size)
			{
				size *= 2;
				recs->off = repalloc(recs->off, sizeof(int64) * size);
				recs->len = repalloc(recs->len, sizeof(int64) * size);
				recs->line = repalloc(recs->line, sizeof(int64) * size);
			}
			recs->off[recs->n] = pos;
			recs->len[recs->n] = end - pos;
			recs->line[recs->n] = line;
			recs->n++;
		}
		line = next_line;
		pos = end;
	}
}

/*
 * Skip mode, fast path: tokenize runs of records in one go, like the stop
 * path, and know each record's raw bytes from the splitter's cut.  When
 * libcsv stops on a malformed record, that record is rejected and a fresh
 * tokenizer resumes at the next one; bytes invalid in the encoding reject
 * the record that holds them.  If libcsv and the splitter ever disagree
 * about where records are (lone CR line ends, say), the chunk is done again
 * record by record.
 */
static bool
process_chunk_skip_fast(WorkerState *ws, CsvChunkHeader *hdr, char *data)
{
	MemoryContext oldcxt = MemoryContextSwitchTo(ws->chunk_cxt);
	SkipRecords recs;
	volatile int idx = 0;		/* advanced inside PG_TRY, read after */
	volatile bool tokenizing = false;	/* in libcsv, not in skip_add_record */
	int64		bad_at = -1;	/* offset of the next invalid byte (length: none) */

	ws->cur_hdr = hdr;
	ws->cur_data = data;
	ws->nbatch = 0;
	if (ws->batch == NULL)
		ws->batch = MemoryContextAlloc(TopMemoryContext, sizeof(BatchRow) * CSV_SKIP_BATCH);
	split_records(hdr, data, &ws->opts.dialect, ws->shared->newline, &recs);

	while (idx < recs.n)
	{
		int			first = idx;
		int			last;		/* records [first, last) are tokenized in one go */
		int64		valid;
		int64		seg_start = recs.off[first];
		int64		seg_end;
		int64		slen;
		char	   *sdata;
		CsvTokenizer *tok;
		CsvRecord	rec;
		ErrorData  *edata = NULL;

		CHECK_FOR_INTERRUPTS();
		/* up to the record holding the next invalid byte, if any */
		if (bad_at < seg_start)
		{
			valid = csv_valid_prefix(&ws->opts.dialect, data + seg_start, hdr->length - seg_start);
			bad_at = seg_start + valid;
		}
		last = first;
		while (last < recs.n && recs.off[last] + recs.len[last] <= bad_at)
			last++;
		seg_end = last > first ? recs.off[last - 1] + recs.len[last - 1] : seg_start;

		if (last > first)
		{
			sdata = csv_buffer_to_server(&ws->opts.dialect, data + seg_start, seg_end - seg_start,
										 &slen, &ws->errpos, recs.line[first]);
			tok = csv_tokenizer_create(&ws->opts.dialect, &ws->errpos, recs.line[first]);
			tokenizing = true;
			PG_TRY();
			{
				for (int64 off = 0; off < slen; off += WORKER_FEED_SIZE)
				{
					csv_tokenizer_feed(tok, sdata + off, Min(WORKER_FEED_SIZE, slen - off));
					while (idx < last && csv_tokenizer_next(tok, &rec))
					{
						if (rec.line_no != recs.line[idx])
							elog(ERROR, "csvpipe: tokenizer and splitter disagree");
						/* converting and inserting: not libcsv's errors */
						tokenizing = false;
						skip_add_record(ws, &rec, recs.off[idx], recs.len[idx]);
						tokenizing = true;
						idx++;
					}
				}
				csv_tokenizer_finish(tok);
			}
			PG_CATCH();
			{
				/*
				 * Only a malformed record may be caught here, without a
				 * subtransaction: an error of skip_add_record() comes from a
				 * batch insert (a lock timeout, a deadlock, a lost worker,
				 * already retried) or a cancel, and goes to the chunk's retry
				 * logic, which rolls the chunk back.
				 */
				if (!tokenizing)
					PG_RE_THROW();
				edata = csv_catch_error(ws->err_cxt, ws->chunk_cxt);
			}
			PG_END_TRY();
			if (edata && edata->sqlerrcode == ERRCODE_INTERNAL_ERROR)
			{
				MemoryContextSwitchTo(oldcxt);
				return false;	/* misaligned: the caller goes record by record */
			}
			if (edata == NULL)
			{
				/* the last record may lack its line end */
				while (idx < last && csv_tokenizer_next(tok, &rec))
				{
					if (rec.line_no != recs.line[idx])
					{
						MemoryContextSwitchTo(oldcxt);
						return false;
					}
					skip_add_record(ws, &rec, recs.off[idx], recs.len[idx]);
					idx++;
				}
				if (idx < last)
				{
					MemoryContextSwitchTo(oldcxt);
					return false;
				}
			}
			else
			{
				/* records completed before the error still count */
				while (idx < last && csv_tokenizer_next(tok, &rec))
				{
					if (rec.line_no != recs.line[idx])
					{
						MemoryContextSwitchTo(oldcxt);
						return false;
					}
					skip_add_record(ws, &rec, recs.off[idx], recs.len[idx]);
					idx++;
				}
				if (idx >= last)
				{
					MemoryContextSwitchTo(oldcxt);
					return false;
				}
				/* libcsv stopped inside record idx: reject it, go on after it */
				reject(ws, recs.line[idx], recs.off[idx], recs.len[idx], edata);
				idx++;
			}
			/* one tokenizer per run of records: a chunk may hold many runs */
			csv_tokenizer_destroy(tok);
		}
		else
		{
			/* record idx holds bytes invalid in the encoding */
			PG_TRY();
			{
				(void) csv_buffer_to_server(&ws->opts.dialect, data + recs.off[idx], recs.len[idx],
											&slen, &ws->errpos, recs.line[idx]);
			}
			PG_CATCH();
			{
				edata = csv_catch_error(ws->err_cxt, ws->chunk_cxt);
			}
			PG_END_TRY();
			if (edata == NULL)
			{
				MemoryContextSwitchTo(oldcxt);
				return false;
			}
			reject(ws, recs.line[idx], recs.off[idx], recs.len[idx], edata);
			idx++;
		}
	}
	flush_batch(ws);
	MemoryContextSwitchTo(oldcxt);
	return true;
}

/* A whole chunk in skip mode: record by record with the splitter */
static void
process_chunk_skip(WorkerState *ws, CsvChunkHeader *hdr, char *data)
{
	CsvSplitter sp;
	int64		pos = 0;
	int64		line = hdr->first_line;

	ws->cur_hdr = hdr;
	ws->cur_data = data;
	ws->nbatch = 0;
	if (ws->batch == NULL)
		ws->batch = MemoryContextAlloc(TopMemoryContext, sizeof(BatchRow) * CSV_SKIP_BATCH);
	ws->rec_tok = csv_tokenizer_create(&ws->opts.dialect, &ws->errpos, line);
	csv_splitter_init(&sp, &ws->opts.dialect, ws->shared->newline);
	sp.each_record = true;		/* lone CRs end records too, as for libcsv */
	sp.line = line;

	while (pos < hdr->length)
	{
		int64		next_line;
		int64		end = csv_splitter_scan(&sp, data, pos, hdr->length, pos + 1, &next_line);

		CHECK_FOR_INTERRUPTS();
		if (end < 0)
		{
			end = hdr->length;
			next_line = sp.line;
		}
		if (ws->opts.dialect.empty_line_is_record ||
			!csv_splitter_record_is_empty(data, pos, end))
			skip_mode_record(ws, pos, end - pos, line);
		line = next_line;
		pos = end;
	}
	flush_batch(ws);
}

/*
 * Skip mode, an attempt that skips a foreign server because the chunk is
 * committed there: the rows that server rejected then, kept in its ledger
 * (shards.c), are rejected again with their lines and raw records -- the
 * attempt that rejected them rolled back here, and this one does not send
 * them.
 */
static void
reject_earlier(WorkerState *ws, CsvChunkHeader *hdr, char *data)
{
	CsvShardReject *rej;
	int			n = csv_shards_earlier_rejects(&rej);
	SkipRecords recs;

	if (n == 0)
		return;
	split_records(hdr, data, &ws->opts.dialect, ws->shared->newline, &recs);
	for (int i = 0; i < n; i++)
	{
		int			lo = 0;
		int			hi = recs.n;
		ErrorData  *edata;

		/* the records are in line order */
		while (lo < hi)
		{
			int			mid = lo + (hi - lo) / 2;

			if (recs.line[mid] < rej[i].line_no)
				lo = mid + 1;
			else
				hi = mid;
		}
		if (lo >= recs.n || recs.line[lo] != rej[i].line_no)
			elog(ERROR, "csvpipe: line " INT64_FORMAT ", rejected by foreign server \"%s\" with chunk " INT64_FORMAT ", is not a record of that chunk",
				 rej[i].line_no, rej[i].server, hdr->chunk_no);
		edata = palloc0(sizeof(ErrorData));
		edata->elevel = ERROR;
		edata->sqlerrcode = rej[i].sqlerrcode;
		edata->message = psprintf("row rejected by foreign server \"%s\" (SQLSTATE %s) when chunk " INT64_FORMAT " committed there",
								  rej[i].server, unpack_sql_state(rej[i].sqlerrcode), hdr->chunk_no);
		edata->detail = psprintf("That attempt's COMMIT then failed on another server and its own record of the row rolled back; "
								 "the ledger of server \"%s\" kept the row's line and SQLSTATE, not the server's message.",
								 rej[i].server);
		csv_reject_row(ws->shared, ws->opts.max_errors, hdr->chunk_no, rej[i].line_no, hdr->start_offset + recs.off[lo],
					   data + recs.off[lo], recs.len[lo], NULL, edata);
		count_open_reject(ws);
	}
}

/*
 * A chunk attempt rolled back: its rejected rows no longer count towards
 * max_errors (csv_reject_row counted them); the next attempt counts its own.
 */
static void
forget_rejected(WorkerState *ws)
{
	if (ws->rejected_in_chunk > 0)
	{
		(void) pg_atomic_sub_fetch_u64(&ws->shared->rejected_total, (uint64) ws->rejected_in_chunk);
		if (ws->shared->mode == CSV_MODE_LOAD)
			(void) pg_atomic_sub_fetch_u64(&ws->shared->workers[ws->worker_no].rejected_open,
										   (uint64) ws->rejected_in_chunk);
	}
	ws->rejected_in_chunk = 0;
}

static char *read_chunk(WorkerState *ws, CsvChunkHeader *hdr);

typedef struct ChunkArgs
{
	WorkerState *ws;
	CsvChunkHeader *hdr;
	char	   *data;
	bool		per_record;		/* skip mode: the fast path could not do it */
	bool		fast_failed;
} ChunkArgs;

static void
load_chunk(void *arg)
{
	ChunkArgs  *a = (ChunkArgs *) arg;
	WorkerState *ws = a->ws;

	csv_reject_discard();		/* left by an attempt that was rolled back */
	if (ws->shards)
		csv_shards_chunk_reset();
	open_target(ws);
	if (ws->opts.on_error_skip)
	{
		if (a->per_record)
			process_chunk_skip(ws, a->hdr, a->data);
		else if (!process_chunk_skip_fast(ws, a->hdr, a->data))
		{
			/* redo the chunk record by record: roll back what the fast path did */
			a->per_record = true;
			a->fast_failed = true;
			ereport(ERROR,
					(errcode(ERRCODE_INTERNAL_ERROR),
					 errmsg("csvpipe: chunk " INT64_FORMAT " needs record-by-record parsing",
							a->hdr->chunk_no)));
		}
		if (ws->shards)
			reject_earlier(ws, a->hdr, a->data);
	}
	else
	{
		if (ws->stream_left > 0)
			process_preparsed(ws);
		else
			process_chunk(ws, a->hdr, a->data);
		ws->errpos.line_no = 0;
		csv_load_flush(ws->target);
	}
	(void) csv_load_end(ws->target);
	ws->target = NULL;
	/* the chunk's rejected rows commit (or roll back) with it */
	csv_reject_flush(ws->shared);
}

/*
 * One chunk of a load, in a subtransaction: retried after transient
 * errors, and in skip mode processed record by record.
 */
static void
run_load_chunk(WorkerState *ws, CsvChunkHeader *hdr, char *data)
{
	ChunkArgs	a = {ws, hdr, data, false, false};
	int			attempt = 0;

	ws->retries_in_chunk = 0;
	for (;;)
	{
		ErrorData  *edata;

		ws->rows_in_chunk = 0;
		ws->rejected_in_chunk = 0;
		edata = csv_try_in_subxact(load_chunk, &a, ws->err_cxt);
		if (edata == NULL)
			return;
		ws->target = NULL;
		ws->nbatch = 0;
		MemoryContextReset(ws->batch_cxt);
		if (a.fast_failed)
		{
			a.fast_failed = false;
			forget_rejected(ws);
			continue;			/* again, record by record */
		}
		if (csv_error_is_transient(edata) && attempt < csvpipe_max_retries)
		{
			attempt++;
			ws->retries_in_chunk++;
			forget_rejected(ws);
			/* a converted chunk's next attempt converts it itself */
			if (a.data == NULL)
			{
				drain_preparsed(ws);
				a.data = read_chunk(ws, hdr);
			}
			csv_backoff_sleep(attempt);
			continue;
		}
		ReThrowError(edata);
	}
}

/*
 * Chunked mode: may a chunk whose transaction failed with this error be
 * tried again, from the start of a new transaction, after a backoff?
 * Transient errors raised once its rows were in (at COMMIT, say), and errors
 * of a foreign server or of the machine that this worker survived: a
 * server unreachable or gone (08), shutting down or terminating the
 * connection (57, not a cancel), out of resources (53).  Data errors never.
 */
static void forget_position(WorkerState *ws);

static bool
chunk_error_retryable(ErrorData *edata, bool rows_done)
{
	int			class = ERRCODE_TO_CATEGORY(edata->sqlerrcode);

	/* while the rows went in, run_load_chunk retried those itself */
	if (csv_error_is_transient(edata))
		return rows_done;
	if (edata->elevel != ERROR || edata->sqlerrcode == ERRCODE_QUERY_CANCELED)
		return false;
	return class == ERRCODE_TO_CATEGORY(ERRCODE_CONNECTION_EXCEPTION) ||
		class == ERRCODE_TO_CATEGORY(ERRCODE_ADMIN_SHUTDOWN) ||
		class == ERRCODE_TO_CATEGORY(ERRCODE_INSUFFICIENT_RESOURCES);
}

/*
 * Chunked mode: one chunk in a transaction of its own, committed with its
 * ledger row (and, for foreign tables, a ledger row on each server:
 * shards.c).  A failure anywhere in it -- a server unreachable at the
 * first statement, gone mid-chunk, or a COMMIT that failed on one server
 * after another committed -- rolls the local transaction back; the chunk
 * is tried again here after csvpipe.retry_delay, doubled each time, at
 * most csvpipe.max_retries times, and each attempt first asks every
 * server's ledger whether it has the chunk already.  So a server that is
 * down costs a few backoffs, not a lost worker.  When the retries are
 * spent the error goes to the leader, marked so that it fails the load
 * (csvpipe.resume takes it from there) rather than hand the chunk to
 * another worker.
 */
static void
run_chunk_transaction(WorkerState *ws, CsvChunkHeader *hdr)
{
	int			attempt = 0;
	int64		retries = 0;

	for (;;)
	{
		MemoryContext oldcxt = CurrentMemoryContext;
		ErrorData  *edata = NULL;
		volatile bool rows_done = false;

		ws->rejected_in_chunk = 0;
		/* an error before the rows is no row's: not where the last attempt stopped */
		forget_position(ws);
		PG_TRY();
		{
			csv_txn_begin_chunk();
			/*
			 * A chunk's very first attempt in a job this run created is in
			 * no ledger: no attempt at it can have committed anywhere.
			 * Every other attempt -- a retry here, a chunk sent again after
			 * a lost worker, any chunk of a resumed or queued job -- reads
			 * the ledgers first.
			 */
			if (ws->shards)
				csv_shards_chunk_begin(hdr->chunk_no,
									   !(ws->shared->fresh_job && hdr->attempt == 0 &&
										 attempt == 0));
			run_load_chunk(ws, hdr, ws->stream_left > 0 ? NULL : read_chunk(ws, hdr));
			rows_done = true;
			/* a commit-time error is no row's: it names no line */
			forget_position(ws);
			if (ws->shards)
			{
				int64		earlier = csv_shards_chunk_end(hdr->chunk_no);

				/*
				 * Skip mode counts the rows inserted, not those sent to a
				 * server that had them: add them (stop mode counts every
				 * record converted, theirs included).
				 */
				if (ws->opts.on_error_skip)
					ws->rows_in_chunk += earlier;
			}
			csv_txn_commit_chunk(ws->shared, hdr, ws->rows_in_chunk);
		}
		PG_CATCH();
		{
			HOLD_INTERRUPTS();
			MemoryContextSwitchTo(ws->err_cxt);
			edata = CopyErrorData();
			MemoryContextSwitchTo(oldcxt);
			if (!chunk_error_retryable(edata, rows_done) || attempt >= csvpipe_max_retries)
			{
				if (chunk_error_retryable(edata, rows_done))
				{
					MemoryContext errcxt;

					/* retried here already: the leader must not retry it */
					SpinLockAcquire(&ws->shared->mutex);
					ws->shared->workers[ws->worker_no].retried_out = true;
					SpinLockRelease(&ws->shared->mutex);
					/* a server's message need not name it: say which they were */
					errcxt = MemoryContextSwitchTo(ws->err_cxt);
					edata->context = psprintf("%s%scsvpipe chunk " INT64_FORMAT " (line " INT64_FORMAT "), tried %d times%s%s",
											  edata->context ? edata->context : "",
											  edata->context ? "\n" : "",
											  hdr->chunk_no, hdr->first_line, attempt + 1,
											  ws->shards ? ", into foreign servers " : "",
											  ws->shards ? csv_shards_names() : "");
					MemoryContextSwitchTo(errcxt);
					FlushErrorState();
					RESUME_INTERRUPTS();
					ReThrowError(edata);
				}
				RESUME_INTERRUPTS();
				PG_RE_THROW();
			}
			FlushErrorState();
			AbortCurrentTransaction();
			RESUME_INTERRUPTS();
			/* a converted chunk's next attempt converts it itself */
			drain_preparsed(ws);
		}
		PG_END_TRY();
		if (edata == NULL)
			break;
		ws->target = NULL;
		ws->nbatch = 0;
		MemoryContextReset(ws->batch_cxt);
		MemoryContextReset(ws->chunk_cxt);
		forget_rejected(ws);
		attempt++;
		retries += ws->retries_in_chunk + 1;
		ereport(NOTICE,
				(errmsg("csvpipe worker %d: chunk " INT64_FORMAT " (line " INT64_FORMAT ") failed, retrying (attempt %d of %d): %s",
						ws->worker_no, hdr->chunk_no, hdr->first_line, attempt + 1,
						csvpipe_max_retries + 1, edata->message),
				 ws->shards ? errdetail("Its foreign servers: %s.", csv_shards_names()) : 0));
		csv_backoff_sleep(attempt);
	}
	ws->retries_in_chunk += retries;
}

/*
 * Transaction mode, skip mode: a chunk's rows and rejected records, staged
 * and sent when the chunk is done.  Nothing is inserted here, so nothing
 * needs a subtransaction: the leader isolates insert errors.
 */
static void
txn_skip_chunk(WorkerState *ws, CsvChunkHeader *hdr, char *data)
{
	ws->rows_in_chunk = 0;
	ws->rejected_in_chunk = 0;
	ws->nbatch = 0;
	MemoryContextReset(ws->batch_cxt);
	resetStringInfo(&ws->pending);
	ws->staging = true;
	if (!process_chunk_skip_fast(ws, hdr, data))
	{
		/* again, record by record: forget what the fast path staged */
		ws->rows_in_chunk = 0;
		ws->rejected_in_chunk = 0;
		ws->nbatch = 0;
		MemoryContextReset(ws->batch_cxt);
		resetStringInfo(&ws->pending);
		process_chunk_skip(ws, hdr, data);
	}
	send_staged(ws);
	flush_tuples(ws);
}

/*
 * Open the file as the leader did (csv_open_file: privileges of the job's
 * role, csvpipe.allowed_dirs, no symbolic link followed, regular files
 * only, fstat of the fd), then check it is the very file the leader opened:
 * the path may have been replaced meanwhile.  Never a plain open of the
 * path, which would follow links and could open a FIFO or a device (and
 * block or act) before the identity check.  The checks need a transaction;
 * the fd belongs to TopMemoryContext, for the worker's whole life.
 */
static void
open_file(WorkerState *ws)
{
	struct stat st;
	MemoryContext old;

	StartTransactionCommand();
	old = MemoryContextSwitchTo(TopMemoryContext);
	ws->fd = csv_open_file(ws->errpos.path, 0, &st, NULL);
	MemoryContextSwitchTo(old);
	CommitTransactionCommand();
	csv_check_file_unchanged(ws->fd, ws->errpos.path, &ws->shared->file, -1);
}

/* The chunk's bytes, from the file; valid until the next chunk */
static char *
read_chunk(WorkerState *ws, CsvChunkHeader *hdr)
{
	int64		done = 0;

	if (hdr->length > ws->chunk_buf_size)
	{
		if (ws->chunk_buf)
			pfree(ws->chunk_buf);
		ws->chunk_buf_size = hdr->length;
		ws->chunk_buf = MemoryContextAllocHuge(TopMemoryContext, ws->chunk_buf_size);
	}
	while (done < hdr->length)
	{
		ssize_t		n;

		CHECK_FOR_INTERRUPTS();
		n = pread(ws->fd, ws->chunk_buf + done, hdr->length - done,
				  hdr->start_offset + done);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			ereport(ERROR,
					(errcode_for_file_access(),
					 errmsg("could not read file \"%s\": %m", ws->errpos.path)));
		if (n == 0)
			break;				/* shorter than when the leader read it */
		done += n;
	}
	/* the bytes are the leader's only if the file is unchanged after the read */
	csv_check_file_unchanged(ws->fd, ws->errpos.path, &ws->shared->file, -1);
	if (done < hdr->length)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("file \"%s\" changed while it was being read", ws->errpos.path),
				 errdetail("Chunk " INT64_FORMAT " (line " INT64_FORMAT ", bytes " INT64_FORMAT "-" INT64_FORMAT ") ends past the end of the file.",
						   hdr->chunk_no, hdr->first_line, hdr->start_offset,
						   hdr->start_offset + hdr->length)));
	return ws->chunk_buf;
}

static void
setup_options(WorkerState *ws, dsm_segment *seg, shm_toc *toc)
{
	CsvParallelShared *shared = ws->shared;

	/*
	 * The options as the leader resolved them (options.c): the dialect
	 * (header and skip_rows consumed), on_error, max_errors
	 */
	csv_options_from_wire(&ws->opts, shm_toc_lookup(toc, CSV_KEY_OPTIONS, false));

	ws->errpos.path = pstrdup(shm_toc_lookup(toc, CSV_KEY_PATH, false));
	ws->errpos.funcname = (shared->mode == CSV_MODE_READ && !shared->txn_load) ?
		"csvpipe.read" : "csvpipe.load";
}

/*
 * Past a chunk's rows (its commit, PREPARE): the error context names the
 * file only, not the line the tokenizer saw last (skip mode leaves it).
 */
static void
forget_position(WorkerState *ws)
{
	ws->errpos.line_no = 0;
	ws->errpos.field_no = 0;
	ws->errpos.column = NULL;
	ws->errpos.value = NULL;
}

/* chunked load: the caller's synchronous_commit, applied at the end */
static char *chunked_sync_commit = NULL;

void
csvpipe_worker_main(Datum main_arg)
{
	dsm_segment *seg;
	shm_toc    *toc;
	WorkerState ws;
	ErrorContextCallback errcallback;
	CsvParallelShared *shared;
	char	   *gucspace;

	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();

	memset(&ws, 0, sizeof(ws));
	memcpy(&ws.worker_no, MyBgworkerEntry->bgw_extra, sizeof(int));

	CurrentResourceOwner = ResourceOwnerCreate(NULL, "csvpipe worker");
	seg = dsm_attach(DatumGetUInt32(main_arg));
	if (seg == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("csvpipe worker could not map its dynamic shared memory segment")));
	toc = shm_toc_attach(CSVPIPE_DSM_MAGIC, dsm_segment_address(seg));
	if (toc == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("csvpipe worker found a bad magic number in its shared memory")));

	shared = shm_toc_lookup(toc, CSV_KEY_SHARED, false);
	ws.shared = shared;
	ws.txn = shared->txn_load;
	ws.input = shm_mq_attach(shm_toc_lookup(toc, CSV_KEY_QUEUES + 2 * ws.worker_no, false), seg, NULL);
	shm_mq_set_receiver(shm_mq_get_queue(ws.input), MyProc);
	{
		shm_mq	   *reply = shm_toc_lookup(toc, CSV_KEY_QUEUES + 2 * ws.worker_no + 1, false);

		shm_mq_set_sender(reply, MyProc);
		ws.reply = shm_mq_attach(reply, seg, NULL);
	}
	/* from here on, errors and notices go to the leader */
	pq_redirect_to_shm_mq(seg, ws.reply);

	SpinLockAcquire(&shared->mutex);
	shared->workers[ws.worker_no].pid = MyProcPid;
	SpinLockRelease(&shared->mutex);

	BackgroundWorkerInitializeConnectionByOid(shared->database_id,
											  shared->authenticated_user_id, 0);
	csv_progress_register(CSV_PROC_WORKER, shared->job_id, shared->leader_pid);

	/* the leader's settings decide how values are read (TimeZone, DateStyle...) */
	gucspace = shm_toc_lookup(toc, CSV_KEY_GUC, false);
	StartTransactionCommand();
	RestoreGUCState(gucspace);
	CommitTransactionCommand();

	/*
	 * The leader's user last: restoring its "role" setting resets the current
	 * user, which is not the leader's inside a SECURITY DEFINER function or a
	 * job runner of a NOLOGIN role (parallel query does the same).
	 */
	SetUserIdAndSecContext(shared->current_user_id, shared->sec_context);

	/*
	 * Chunked load: a chunk's commit does not wait for its WAL flush.  Its
	 * rows and its ledger row commit together, so a crash loses both and
	 * resume loads the chunk again; the worker waits once, at its end, for
	 * all its commits, as the caller's synchronous_commit asks.
	 */
	if (shared->mode == CSV_MODE_LOAD && !shared->atomic)
	{
		chunked_sync_commit = MemoryContextStrdup(TopMemoryContext,
												  GetConfigOption("synchronous_commit", false, false));
		/* PGC_S_SESSION: the caller's own SET, restored above, has that source */
		SetConfigOption("synchronous_commit", "off", PGC_USERSET, PGC_S_SESSION);
	}

	setup_options(&ws, seg, toc);
	open_file(&ws);
	ws.columns = shm_toc_lookup(toc, CSV_KEY_COLUMNS, false);
	ws.chunk_cxt = AllocSetContextCreate(TopMemoryContext, "csvpipe chunk",
										 ALLOCSET_DEFAULT_SIZES);
	ws.row_cxt = AllocSetContextCreate(TopMemoryContext, "csvpipe row",
									   ALLOCSET_DEFAULT_SIZES);
	ws.batch_cxt = AllocSetContextCreate(TopMemoryContext, "csvpipe batch",
										 ALLOCSET_DEFAULT_SIZES);
	ws.err_cxt = AllocSetContextCreate(TopMemoryContext, "csvpipe errors",
									   ALLOCSET_DEFAULT_SIZES);

	errcallback.callback = csv_error_context_callback;
	errcallback.arg = &ws.errpos;
	errcallback.previous = error_context_stack;
	error_context_stack = &errcallback;

	/* transaction mode: the job row, before this worker's first chunk (txn.c) */
	if (ws.txn && shared->job_id > 0)
		csv_txn_record_job_start(shared, ws.errpos.path);

	if (shared->mode == CSV_MODE_READ)
	{
		MemoryContext oldcxt;

		/* type input may look up catalogs: one transaction for the worker */
		StartTransactionCommand();
		PushActiveSnapshot(GetTransactionSnapshot());
		oldcxt = MemoryContextSwitchTo(TopMemoryContext);
		ws.read_desc = CreateTemplateTupleDesc(shared->natts);
		ws.convert = palloc(sizeof(bool) * shared->natts);
		ws.unsent = palloc(sizeof(bool) * shared->natts);
		for (int i = 0; i < shared->natts; i++)
		{
			TupleDescInitEntry(ws.read_desc, i + 1, NameStr(ws.columns[i].name),
							   ws.columns[i].typid, ws.columns[i].typmod, 0);
			ws.convert[i] = ws.columns[i].convert;
			ws.unsent[i] = !ws.columns[i].send;
			ws.any_unsent |= ws.unsent[i];
		}
		ws.values = palloc(sizeof(Datum) * Max(shared->natts, 1));
		ws.nulls = palloc(sizeof(bool) * Max(shared->natts, 1));
		ws.natts = shared->natts;
		if (ws.txn)
			initStringInfo(&ws.pending);
		MemoryContextSwitchTo(oldcxt);
		csv_dialect_set_columns(&ws.opts.dialect, shared->text_mode ? 0 : shared->natts);
		if (!shared->text_mode)
		{
			ws.conv = csv_converter_create(ws.read_desc, &ws.opts.dialect, &ws.errpos, ws.convert);
			if (OidIsValid(shared->rowtype))
				csv_converter_set_rowtype(ws.conv, shared->rowtype);
		}
	}
	else
	{
		MemoryContext oldcxt = MemoryContextSwitchTo(TopMemoryContext);

		if (shared->columns_given)
			for (int i = 0; i < shared->natts; i++)
				ws.attnames = lappend(ws.attnames, pstrdup(NameStr(ws.columns[i].name)));
		MemoryContextSwitchTo(oldcxt);
		/* see load.c: each worker fills pages of its own */
		csv_load_append_only = true;
		/* the job row is committed before this worker's first chunk (txn.c) */
		csv_txn_record_job_start(shared, ws.errpos.path);
		/* chunked: the target's foreign servers and their ledgers */
		if (!shared->atomic)
		{
			StartTransactionCommand();
			PushActiveSnapshot(GetTransactionSnapshot());
			ws.shards = csv_shards_init(shared->target_relid, shared->job_id);
			/* chunk after chunk, the same batch INSERTs on each server */
			if (ws.shards)
				csv_fdw_reuse_enable();
			PopActiveSnapshot();
			CommitTransactionCommand();
		}
		if (shared->atomic)
			csv_txn_begin_atomic();
	}

	for (;;)
	{
		Size		nbytes;
		void	   *data;
		shm_mq_result res;
		CsvChunkHeader hdr;
		CsvChunkDone done;

		CHECK_FOR_INTERRUPTS();
		pgstat_report_activity(STATE_IDLE, NULL);
		res = shm_mq_receive(ws.input, &nbytes, &data, false);
		if (res != SHM_MQ_SUCCESS)
			ereport(ERROR,
					(errcode(ERRCODE_ADMIN_SHUTDOWN),
					 errmsg("csvpipe worker %d: the leader went away", ws.worker_no)));
		if (nbytes != sizeof(CsvChunkHeader))
			elog(ERROR, "csvpipe worker got a malformed message of %zu bytes", nbytes);
		memcpy(&hdr, data, sizeof(hdr));
		if (hdr.chunk_no < 0)
			break;
		if (hdr.preparsed < 0 ||
			(hdr.preparsed > 0 && (shared->mode != CSV_MODE_LOAD || shared->atomic ||
								   ws.opts.on_error_skip)))
			elog(ERROR, "csvpipe worker got a malformed chunk label");
		ws.stream_left = hdr.preparsed;

		pgstat_report_activity(STATE_RUNNING, "csvpipe chunk");
		csv_progress_worker("chunk", hdr.chunk_no, ws.rows_total);

		if (shared->mode == CSV_MODE_LOAD)
		{
			if (shared->atomic)
			{
				run_load_chunk(&ws, &hdr, read_chunk(&ws, &hdr));
				/* a commit-time error is no row's: it names no line */
				forget_position(&ws);
				csv_txn_ledger_insert(shared, &hdr, ws.rows_in_chunk);
			}
			else
			{
				run_chunk_transaction(&ws, &hdr);
				/* no interrupt is served between the commit and this */
				SpinLockAcquire(&shared->mutex);
				shared->workers[ws.worker_no].committed_chunk = hdr.chunk_no;
				shared->workers[ws.worker_no].committed_rows = ws.rows_in_chunk;
				shared->workers[ws.worker_no].committed_rejected = ws.rejected_in_chunk;
				/* its rejected rows are final now */
				pg_atomic_write_u64(&shared->workers[ws.worker_no].rejected_open, 0);
				SpinLockRelease(&shared->mutex);
			}
		}
		else if (ws.txn && ws.opts.on_error_skip)
			txn_skip_chunk(&ws, &hdr, read_chunk(&ws, &hdr));
		else
		{
			ws.rows_in_chunk = 0;
			ws.rejected_in_chunk = 0;
			process_chunk(&ws, &hdr, read_chunk(&ws, &hdr));
			flush_tuples(&ws);
		}
		MemoryContextReset(ws.chunk_cxt);
		/* the chunk's caught errors: rejected rows keep copies of their own */
		MemoryContextReset(ws.err_cxt);
		ws.errpos.column_names = NULL;
		ws.errpos.field_no = 0;

		ws.rows_total += ws.rows_in_chunk;
		csv_progress_worker("idle", hdr.chunk_no, ws.rows_total);

		done.chunk_no = hdr.chunk_no;
		done.rows = ws.rows_in_chunk;
		done.rejected = ws.rejected_in_chunk;
		done.retries = ws.retries_in_chunk;
		send_reply(&ws, CSV_MSG_CHUNK_DONE, &done, sizeof(done), true);
	}

	if (shared->mode == CSV_MODE_READ)
	{
		PopActiveSnapshot();
		CommitTransactionCommand();
	}
	else if (!shared->atomic)
	{
		/* the chunks' commits made durable, before the leader counts them so */
		SetConfigOption("synchronous_commit", chunked_sync_commit,
						PGC_USERSET, PGC_S_SESSION);
		if (synchronous_commit > SYNCHRONOUS_COMMIT_OFF && XactLastCommitEnd != InvalidXLogRecPtr)
		{
			XLogFlush(XactLastCommitEnd);
			SyncRepWaitForLSN(XactLastCommitEnd, true);
		}
	}
	else if (shared->atomic)
	{
		CsvChunkDone done;

		memset(&done, 0, sizeof(done));
		forget_position(&ws);
		csv_txn_prepare(shared, ws.worker_no);
		done.chunk_no = -1;
		done.rows = ws.rows_total;
		send_reply(&ws, CSV_MSG_PREPARED, &done, sizeof(done), true);
	}

	error_context_stack = errcallback.previous;
	send_reply(&ws, CSV_MSG_FINISHED, NULL, 0, true);
	pgstat_report_activity(STATE_IDLE, NULL);
}
