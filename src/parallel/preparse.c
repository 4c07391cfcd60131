/*-------------------------------------------------------------------------
 *
 * preparse.c
 *		The leader of a chunked load converts chunks ahead of its workers.
 *
 * In a chunked load the leader only cuts chunks, and each worker both
 * parses its chunk and inserts its rows, one after the other.  With few
 * workers the leader is idle while they parse.  So when every worker
 * already has a chunk to work on, the leader reads the next chunk from the
 * file, tokenizes and converts it exactly as a worker would (the same
 * tokenizer, encoding step and converter, for the target's input columns,
 * csv_load_file_desc), and the chunk goes to a worker as its rows: entries
 * of a CsvRowHeader (the row's line) and a MinimalTuple, in pieces of at
 * most CSV_TUPLE_BATCH bytes after the chunk's label (leader.c streams
 * them; worker.c inserts them).  The worker then only inserts, in the
 * chunk's transaction as before: which chunk, its ledger rows and its
 * commit do not change, so neither does exactly once.
 *
 * It is only a head start.  A chunk the leader could not convert -- a bad
 * record, a value its type refuses, bytes invalid in the encoding, any
 * error but a cancel -- is dropped here and sent as a plain label: the
 * worker reads and converts it itself and raises the error, with its line,
 * as it always did.  A chunk sent again (a retry, a lost worker, resume) is
 * a plain label too, and a worker whose attempt at a pre-converted chunk
 * fails reads the rest of the stream away and converts the chunk itself
 * when it tries again.
 *
 * The conversion runs in steps of PREPARSE_STEP input bytes, each in a
 * subtransaction of the leader's transaction (type input functions may
 * raise anything; a failed step must leave no trace), so the leader keeps
 * streaming rows to the workers and reading their replies in between.  A
 * failed step throws the converter away: an input function's cache may be
 * half made.
 *
 * Memory: the chunk's bytes and its converted rows, in a context of their
 * own per chunk, handed to leader.c when done and freed once sent: at
 * most one chunk per worker and the one being converted, and only chunks
 * up to CSV_PREPARSE_MAX_CHUNK bytes are converted here.
 *
 *-------------------------------------------------------------------------
 */
#include "parallel.h"
#include "preparse.h"
#include "catch.h"
#include "load.h"

#include <unistd.h>

#include "access/htup_details.h"
#include "miscadmin.h"
#include "utils/memutils.h"

/* input bytes converted per step (and per subtransaction) */
#define PREPARSE_STEP		(64 * 1024)

struct CsvPreparse
{
	int			fd;
	CsvFileId	file;			/* as the leader opened it */
	CsvDialect	dialect;		/* the leader's, with the column count */
	CsvErrorPosition errpos;	/* private: the leader's stays as it is */
	TupleDesc	desc;			/* the target's input columns */
	CsvConverter *conv;			/* NULL after a failure: made again */
	Datum	   *values;
	bool	   *nulls;
	MemoryContext cxt;			/* long-lived: desc, converter */
	MemoryContext row_cxt;
	MemoryContext err_cxt;

	/* the chunk being converted */
	CsvPreparseState state;
	CsvChunkHeader hdr;
	MemoryContext chunk_cxt;	/* its bytes and rows, per chunk */
	char	   *data;			/* NULL until the first step reads it */
	int64		off;			/* input consumed */
	CsvEncoder	enc;
	CsvTokenizer *tok;
	bool		finished;		/* tokenizer finished */
	CsvStream  *out;
};

/*
 * The leader's converter for a load into relid (the file's columns
 * attnames, or all); NULL when a column's type is not one of the built-in
 * types whose input functions have no side effects (csv_input_is_safe):
 * a domain's CHECK may call any function, and the leader's conversion
 * would run it once more.
 */
CsvPreparse *
csv_preparse_create(Oid relid, List *attnames, const CsvDialect *dialect,
					int fd, const char *path, const CsvFileId *file)
{
	MemoryContext cxt = AllocSetContextCreate(CurrentMemoryContext, "csvpipe preparse",
											  ALLOCSET_DEFAULT_SIZES);
	MemoryContext old = MemoryContextSwitchTo(cxt);
	CsvPreparse *p = palloc0(sizeof(CsvPreparse));

	p->cxt = cxt;
	p->fd = fd;
	p->file = *file;
	p->dialect = *dialect;
	p->errpos.path = pstrdup(path);
	p->errpos.funcname = "csvpipe.load";
	p->desc = csv_load_file_desc(relid, attnames);
	/* only types whose input has no side effect: it runs twice on a retry */
	for (int i = 0; i < p->desc->natts; i++)
		if (!csv_input_is_safe(TupleDescAttr(p->desc, i)->atttypid))
		{
			MemoryContextSwitchTo(old);
			MemoryContextDelete(cxt);
			return NULL;
		}
	csv_dialect_set_columns(&p->dialect, p->desc->natts);
	p->values = palloc(sizeof(Datum) * Max(p->desc->natts, 1));
	p->nulls = palloc(sizeof(bool) * Max(p->desc->natts, 1));
	p->row_cxt = AllocSetContextCreate(cxt, "csvpipe preparse row",
									   ALLOCSET_DEFAULT_SIZES);
	p->err_cxt = AllocSetContextCreate(cxt, "csvpipe preparse errors",
									   ALLOCSET_DEFAULT_SIZES);
	p->state = CSV_PREPARSE_IDLE;
	MemoryContextSwitchTo(old);
	return p;
}

CsvPreparseState
csv_preparse_state(CsvPreparse *p)
{
	return p->state;
}

int64
csv_preparse_chunk_no(CsvPreparse *p)
{
	return p->state == CSV_PREPARSE_IDLE ? -1 : p->hdr.chunk_no;
}

/* forget the chunk (and its rows, unless taken) */
void
csv_preparse_reset(CsvPreparse *p)
{
	if (p->tok != NULL)
	{
		csv_tokenizer_destroy(p->tok);
		p->tok = NULL;
	}
	if (p->chunk_cxt != NULL)
		MemoryContextDelete(p->chunk_cxt);
	p->chunk_cxt = NULL;
	p->data = NULL;
	p->out = NULL;
	p->state = CSV_PREPARSE_IDLE;
}

/* Start on a chunk (its first step reads it) */
void
csv_preparse_start(CsvPreparse *p, const CsvChunkHeader *hdr)
{
	MemoryContext old;

	csv_preparse_reset(p);
	p->hdr = *hdr;
	p->chunk_cxt = AllocSetContextCreate(p->cxt, "csvpipe preparse chunk",
										 ALLOCSET_DEFAULT_SIZES);
	old = MemoryContextSwitchTo(p->chunk_cxt);
	p->out = palloc0(sizeof(CsvStream));
	p->out->cxt = p->chunk_cxt;
	p->out->maxpieces = 16;
	p->out->pieces = palloc(sizeof(char *) * p->out->maxpieces);
	p->out->lens = palloc(sizeof(Size) * p->out->maxpieces);
	p->off = 0;
	p->finished = false;
	p->state = CSV_PREPARSE_RUNNING;
	MemoryContextSwitchTo(old);
}

/*
 * The chunk's bytes, as a worker reads them: pread, then the file must
 * still be the one the leader opened (else the error goes to the worker,
 * which reads the chunk itself and finds the same).
 */
static void
read_chunk_bytes(CsvPreparse *p)
{
	int64		done = 0;

	p->data = MemoryContextAllocHuge(p->chunk_cxt, Max(p->hdr.length, 1));
	while (done < p->hdr.length)
	{
		ssize_t		n;

		CHECK_FOR_INTERRUPTS();
		n = pread(p->fd, p->data + done, p->hdr.length - done, p->hdr.start_offset + done);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			elog(ERROR, "csvpipe: short read of chunk " INT64_FORMAT, p->hdr.chunk_no);
		done += n;
	}
	csv_check_file_unchanged(p->fd, p->errpos.path, &p->file, -1);
}

/* the piece the next entry of len bytes goes into */
static char *
piece_for(CsvStream *out, Size len)
{
	if (out->npieces == 0 || out->lens[out->npieces - 1] + len > CSV_TUPLE_BATCH)
	{
		if (out->npieces == out->maxpieces)
		{
			out->maxpieces *= 2;
			out->pieces = repalloc(out->pieces, sizeof(char *) * out->maxpieces);
			out->lens = repalloc(out->lens, sizeof(Size) * out->maxpieces);
		}
		/* a row bigger than a piece gets a piece of its own */
		out->pieces[out->npieces] = MemoryContextAllocHuge(out->cxt,
														   Max(len, CSV_TUPLE_BATCH));
		out->lens[out->npieces] = 0;
		out->npieces++;
	}
	return out->pieces[out->npieces - 1] + out->lens[out->npieces - 1];
}

static void
add_record(CsvPreparse *p, CsvRecord *rec)
{
	MemoryContext old;
	MinimalTuple tup;
	CsvRowHeader h;
	Size		len;
	char	   *dst;

	CHECK_FOR_INTERRUPTS();
	MemoryContextReset(p->row_cxt);
	old = MemoryContextSwitchTo(p->row_cxt);
	csv_converter_row(p->conv, rec, p->values, p->nulls);
	tup = heap_form_minimal_tuple(p->desc, p->values, p->nulls);
	MemoryContextSwitchTo(old);

	memset(&h, 0, sizeof(h));
	h.line_no = rec->line_no;
	h.kind = CSV_ENTRY_ROW;
	h.size = tup->t_len;
	len = sizeof(CsvRowHeader) + MAXALIGN(tup->t_len);
	dst = piece_for(p->out, len);
	memcpy(dst, &h, sizeof(h));
	memcpy(dst + sizeof(h), tup, tup->t_len);
	p->out->lens[p->out->npieces - 1] += len;
	p->out->total += len;
	p->out->rows++;
}

/* one step: up to PREPARSE_STEP bytes, in a subtransaction (see the header) */
static void
step_in_subxact(void *arg)
{
	CsvPreparse *p = (CsvPreparse *) arg;
	MemoryContext old = MemoryContextSwitchTo(p->chunk_cxt);
	CsvRecord	rec;

	if (p->conv == NULL)
	{
		MemoryContextSwitchTo(p->cxt);
		p->conv = csv_converter_create(p->desc, &p->dialect, &p->errpos, NULL);
		MemoryContextSwitchTo(p->chunk_cxt);
	}
	if (p->data == NULL)
		read_chunk_bytes(p);
	if (p->tok == NULL)
	{
		p->errpos.line_no = p->hdr.first_line;
		csv_encoder_init(&p->enc, &p->dialect);
		p->tok = csv_tokenizer_create(&p->dialect, &p->errpos, p->hdr.first_line);
	}
	if (p->off < p->hdr.length)
	{
		int64		n = Min(PREPARSE_STEP, p->hdr.length - p->off);
		bool		final = (p->off + n == p->hdr.length);
		int64		rest = csv_encoder_feed(&p->enc, p->tok, p->data + p->off, n, final);

		/* a character cut by the step's end goes with the next step */
		p->off += n - rest;
		while (csv_tokenizer_next(p->tok, &rec))
			add_record(p, &rec);
	}
	else if (!p->finished)
	{
		csv_tokenizer_finish(p->tok);
		p->finished = true;
		while (csv_tokenizer_next(p->tok, &rec))
			add_record(p, &rec);
	}
	MemoryContextSwitchTo(old);
}

CsvPreparseState
csv_preparse_step(CsvPreparse *p)
{
	ErrorData  *edata;

	if (p->state != CSV_PREPARSE_RUNNING)
		return p->state;
	edata = csv_try_in_subxact(step_in_subxact, p, p->err_cxt);
	if (edata != NULL)
	{
		CsvChunkHeader hdr = p->hdr;

		/* a cancel or a shutdown is the leader's, not the chunk's */
		if (edata->sqlerrcode == ERRCODE_QUERY_CANCELED ||
			ERRCODE_TO_CATEGORY(edata->sqlerrcode) == ERRCODE_TO_CATEGORY(ERRCODE_ADMIN_SHUTDOWN))
			ReThrowError(edata);
		MemoryContextReset(p->err_cxt);
		/* libcsv's state and the input functions' caches are suspect */
		p->tok = NULL;			/* its memory goes with the chunk's */
		p->conv = NULL;
		csv_preparse_reset(p);
		p->hdr = hdr;
		p->state = CSV_PREPARSE_FAILED;
		return p->state;
	}
	if (p->off >= p->hdr.length && p->finished)
	{
		csv_tokenizer_destroy(p->tok);
		p->tok = NULL;
		pfree(p->data);
		p->data = NULL;
		p->state = CSV_PREPARSE_DONE;
	}
	return p->state;
}

/* bytes of a finished chunk's rows */
int64
csv_preparse_total(CsvPreparse *p)
{
	Assert(p->state == CSV_PREPARSE_DONE);
	return p->out->total;
}

/* The converted rows of a finished chunk: the caller owns and frees them */
CsvStream *
csv_preparse_take(CsvPreparse *p)
{
	CsvStream  *out = p->out;

	Assert(p->state == CSV_PREPARSE_DONE);
	/* the chunk's context now belongs to the stream */
	MemoryContextSetParent(p->chunk_cxt, p->cxt);
	p->chunk_cxt = NULL;
	p->data = NULL;
	p->out = NULL;
	p->state = CSV_PREPARSE_IDLE;
	return out;
}

void
csv_stream_free(CsvStream *s)
{
	if (s != NULL)
		MemoryContextDelete(s->cxt);
}
