/*-------------------------------------------------------------------------
 *
 * worker.c
 *		The csvpipe background worker's main loop.
 *
 * A worker attaches to its call's DSM segment, redirects its errors and
 * notices to its reply queue (the leader re-raises them), connects as the
 * calling role with the caller's GUC state, and then takes chunks from its
 * input queue until the leader sends the end marker.  Each chunk is
 * converted to the server encoding, tokenized by the same libcsv tokenizer
 * and converted by the same converter as the single-process reader, with
 * line numbers starting at the chunk's first line.
 *
 *	read:  every row goes back to the leader as a MinimalTuple, then a
 *		   chunk-done message; rows of a chunk stay in file order.
 *	load:  rows are inserted with load.c; txn.c decides when the
 *		   transaction ends (per chunk with its ledger row, or once for
 *		   the whole worker with PREPARE TRANSACTION in atomic mode).
 *
 * The worker blocks on its queues, so a full reply queue slows it down
 * (backpressure) and a detached queue (leader gone) ends it.  SIGTERM ends
 * it at the next CHECK_FOR_INTERRUPTS, rolling back what it had not
 * committed.
 *
 *-------------------------------------------------------------------------
 */
#include "parallel.h"
#include "load.h"
#include "txn.h"

#include "access/htup_details.h"
#include "access/xact.h"
#include "libpq/pqmq.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "storage/ipc.h"
#include "storage/proc.h"
#include "tcop/tcopprot.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"

/* tokenizer feed size inside a chunk: bounds the per-chunk record buffer */
#define WORKER_FEED_SIZE	(256 * 1024)

typedef struct WorkerState
{
	int			worker_no;
	CsvParallelShared *shared;
	CsvColumnDesc *columns;
	shm_mq_handle *input;
	shm_mq_handle *reply;
	CsvDialect	dialect;
	CsvErrorPosition errpos;
	TupleDesc	read_desc;		/* read: the caller's column list */
	bool	   *convert;
	List	   *attnames;		/* load: columns => list, or NIL */
	CsvLoadTarget *target;		/* load: open target */
	CsvConverter *conv;
	Datum	   *values;
	bool	   *nulls;
	MemoryContext chunk_cxt;
	MemoryContext row_cxt;
	int64		rows_in_chunk;
	int64		rows_total;
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

static void
handle_record(WorkerState *ws, CsvRecord *rec)
{
	MemoryContext oldcxt;

	CHECK_FOR_INTERRUPTS();
	MemoryContextReset(ws->row_cxt);
	oldcxt = MemoryContextSwitchTo(ws->row_cxt);
	if (ws->shared->text_mode)
		csv_text_row(&ws->dialect, rec, ws->values, ws->nulls);
	else
		csv_converter_row(ws->conv, rec, ws->values, ws->nulls);
	if (ws->shared->mode == CSV_MODE_READ)
	{
		MinimalTuple tup = heap_form_minimal_tuple(ws->read_desc, ws->values, ws->nulls);

		send_reply(ws, CSV_MSG_TUPLE, tup, tup->t_len, false);
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

/* Tokenize and convert one chunk (already in the server encoding) */
static void
process_chunk(WorkerState *ws, CsvChunkHeader *hdr, char *data)
{
	MemoryContext oldcxt = MemoryContextSwitchTo(ws->chunk_cxt);
	CsvTokenizer *tok;
	CsvRecord	rec;
	char	   *server_data;
	int64		len;

	ws->errpos.line_no = hdr->first_line;
	server_data = csv_buffer_to_server(&ws->dialect, data, hdr->length, &len,
									   &ws->errpos, hdr->first_line);
	tok = csv_tokenizer_create(&ws->dialect, &ws->errpos, hdr->first_line);
	for (int64 off = 0; off < len; off += WORKER_FEED_SIZE)
	{
		csv_tokenizer_feed(tok, server_data + off, Min(WORKER_FEED_SIZE, len - off));
		while (csv_tokenizer_next(tok, &rec))
			handle_record(ws, &rec);
	}
	csv_tokenizer_finish(tok);
	while (csv_tokenizer_next(tok, &rec))
		handle_record(ws, &rec);
	csv_tokenizer_destroy(tok);
	MemoryContextSwitchTo(oldcxt);
}

/* load: open the target and a converter for its column list */
static void
open_target(WorkerState *ws)
{
	MemoryContext oldcxt = MemoryContextSwitchTo(TopTransactionContext);
	TupleDesc	desc;

	ws->target = csv_load_begin(ws->shared->target_relid, ws->attnames);
	desc = csv_load_input_desc(ws->target);
	ws->conv = csv_converter_create(desc, &ws->dialect, &ws->errpos, NULL);
	ws->values = palloc(sizeof(Datum) * desc->natts);
	ws->nulls = palloc(sizeof(bool) * desc->natts);
	MemoryContextSwitchTo(oldcxt);
}

static void
setup_dialect(WorkerState *ws, dsm_segment *seg, shm_toc *toc)
{
	CsvParallelShared *shared = ws->shared;

	memset(&ws->dialect, 0, sizeof(CsvDialect));
	ws->dialect.delimiter = shared->delimiter;
	ws->dialect.quote = shared->quote;
	ws->dialect.escape = shared->quote;
	ws->dialect.header = CSV_HEADER_NONE;	/* the leader consumed it */
	ws->dialect.null_string = pstrdup(shm_toc_lookup(toc, CSV_KEY_NULLSTR, false));
	ws->dialect.null_len = shared->null_len;
	ws->dialect.file_encoding = shared->file_encoding;
	ws->dialect.skip_rows = 0;

	ws->errpos.path = pstrdup(shm_toc_lookup(toc, CSV_KEY_PATH, false));
	ws->errpos.funcname = shared->mode == CSV_MODE_READ ? "csvpipe.read" : "csvpipe.load";
}

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
	SetUserIdAndSecContext(shared->current_user_id, shared->sec_context);

	/* the leader's settings decide how values are read (TimeZone, DateStyle...) */
	gucspace = shm_toc_lookup(toc, CSV_KEY_GUC, false);
	StartTransactionCommand();
	RestoreGUCState(gucspace);
	CommitTransactionCommand();

	setup_dialect(&ws, seg, toc);
	ws.columns = shm_toc_lookup(toc, CSV_KEY_COLUMNS, false);
	ws.chunk_cxt = AllocSetContextCreate(TopMemoryContext, "csvpipe chunk",
										 ALLOCSET_DEFAULT_SIZES);
	ws.row_cxt = AllocSetContextCreate(TopMemoryContext, "csvpipe row",
									   ALLOCSET_DEFAULT_SIZES);

	errcallback.callback = csv_error_context_callback;
	errcallback.arg = &ws.errpos;
	errcallback.previous = error_context_stack;
	error_context_stack = &errcallback;

	if (shared->mode == CSV_MODE_READ)
	{
		MemoryContext oldcxt;

		/* type input may look up catalogs: one transaction for the worker */
		StartTransactionCommand();
		PushActiveSnapshot(GetTransactionSnapshot());
		oldcxt = MemoryContextSwitchTo(TopMemoryContext);
		ws.read_desc = CreateTemplateTupleDesc(shared->natts);
		ws.convert = palloc(sizeof(bool) * shared->natts);
		for (int i = 0; i < shared->natts; i++)
		{
			TupleDescInitEntry(ws.read_desc, i + 1, NameStr(ws.columns[i].name),
							   ws.columns[i].typid, ws.columns[i].typmod, 0);
			ws.convert[i] = ws.columns[i].convert;
		}
		ws.values = palloc(sizeof(Datum) * Max(shared->natts, 1));
		ws.nulls = palloc(sizeof(bool) * Max(shared->natts, 1));
		MemoryContextSwitchTo(oldcxt);
		if (!shared->text_mode)
			ws.conv = csv_converter_create(ws.read_desc, &ws.dialect, &ws.errpos, ws.convert);
	}
	else
	{
		MemoryContext oldcxt = MemoryContextSwitchTo(TopMemoryContext);

		if (shared->columns_given)
			for (int i = 0; i < shared->natts; i++)
				ws.attnames = lappend(ws.attnames, pstrdup(NameStr(ws.columns[i].name)));
		MemoryContextSwitchTo(oldcxt);
		if (ws.worker_no == 0)
			csv_txn_record_job_start(shared, ws.errpos.path);
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
		if (nbytes < sizeof(CsvChunkHeader))
			elog(ERROR, "csvpipe worker got a malformed message of %zu bytes", nbytes);
		memcpy(&hdr, data, sizeof(hdr));
		if (hdr.chunk_no < 0)
			break;

		pgstat_report_activity(STATE_RUNNING, "csvpipe chunk");
		SpinLockAcquire(&shared->mutex);
		shared->workers[ws.worker_no].current_chunk = hdr.chunk_no;
		SpinLockRelease(&shared->mutex);

		ws.rows_in_chunk = 0;
		if (shared->mode == CSV_MODE_LOAD)
		{
			if (!shared->atomic)
				csv_txn_begin_chunk();
			if (ws.target == NULL)
				open_target(&ws);
		}

		process_chunk(&ws, &hdr, (char *) data + sizeof(CsvChunkHeader));

		if (shared->mode == CSV_MODE_LOAD)
		{
			ws.errpos.line_no = 0;
			csv_load_flush(ws.target);
			if (!shared->atomic)
			{
				(void) csv_load_end(ws.target);
				ws.target = NULL;
				csv_txn_commit_chunk(shared, &hdr, ws.rows_in_chunk);
			}
			else
				csv_txn_ledger_insert(shared, &hdr, ws.rows_in_chunk);
		}
		MemoryContextReset(ws.chunk_cxt);
		ws.errpos.column_names = NULL;
		ws.errpos.field_no = 0;

		ws.rows_total += ws.rows_in_chunk;
		SpinLockAcquire(&shared->mutex);
		shared->workers[ws.worker_no].chunks_done++;
		shared->workers[ws.worker_no].rows_done = ws.rows_total;
		shared->workers[ws.worker_no].current_chunk = -1;
		SpinLockRelease(&shared->mutex);

		done.chunk_no = hdr.chunk_no;
		done.rows = ws.rows_in_chunk;
		send_reply(&ws, CSV_MSG_CHUNK_DONE, &done, sizeof(done), true);
	}

	if (shared->mode == CSV_MODE_READ)
	{
		PopActiveSnapshot();
		CommitTransactionCommand();
	}
	else if (shared->atomic)
	{
		CsvChunkDone done;

		if (ws.target != NULL)
			(void) csv_load_end(ws.target);
		ws.target = NULL;
		csv_txn_prepare(shared, ws.worker_no);
		done.chunk_no = -1;
		done.rows = ws.rows_total;
		send_reply(&ws, CSV_MSG_PREPARED, &done, sizeof(done), true);
	}

	error_context_stack = errcallback.previous;
	send_reply(&ws, CSV_MSG_FINISHED, NULL, 0, true);
	pgstat_report_activity(STATE_IDLE, NULL);
}
