/*-------------------------------------------------------------------------
 *
 * tokenizer.c
 *		libcsv behind a batch interface: bytes in, records out.
 *
 * The caller feeds blocks of server-encoded bytes; libcsv calls back once
 * per field and once per record terminator.  Fields of a block are copied
 * into one arena and records are queued as (first field, count, line), so
 * a whole block is tokenized in one csv_parse() call and handed out record
 * by record afterwards.  Before the next block is fed, handed-out records
 * are dropped and the fields of a record still open at the block's end are
 * moved to the front: memory is bounded by the block size plus the largest
 * field, never by the file size.
 *
 * Physical line numbers are tracked so every error can name a line: a
 * record starts on the line where its first field starts; newlines inside
 * quoted fields and record terminators advance the count.  libcsv runs with
 * CSV_REPALL_NL so that empty lines are reported (and counted) too; the LF
 * of a CRLF arrives as an empty "row" after the CR and is folded into it.
 * An empty line is handed out as a record of one NULL field when the
 * dialect says so (one-column files, read_text: COPY reads it that way),
 * and is skipped otherwise -- except among the first records the caller
 * consumes as skip_rows and the header (csv_tokenizer_set_prefix): COPY's
 * HEADER takes the first line even when it is empty, so those count every
 * line end, empty or not.
 *
 * Record boundaries and bad records (doc/reference.md, "Record boundaries
 * and bad records"; splitter.c follows the same rules on raw bytes): libcsv runs in
 * strict mode, so a quote inside an unquoted field and text after a closing
 * quote are errors.  They are not raised here: the record is malformed,
 * and its rest is scanned with the splitter's rules (such a quote is data;
 * a quote at a field's start still opens a quoted field, which may span
 * lines) up to its end, a line end (LF, CR or CRLF) outside quotes; it is
 * handed out in its place, in file order, with no fields and a
 * CsvBadRecord saying why, and libcsv starts afresh after it.
 * The consumer raises it (stop) or rejects that one record (skip).  The
 * same holds for a quoted field left open at the end of the input, and for
 * a record the caller marks bad (bytes invalid in the encoding).  Spaces
 * are data (COPY keeps them), so libcsv's space trimming is switched off.
 *
 *-------------------------------------------------------------------------
 */
#include "csvfile.h"

#include <csv.h>

#include "utils/memutils.h"

/* libcsv asks for its field buffer in steps of this many bytes */
#define ENTRY_BLOCK			128
#define ARENA_INITIAL		(64 * 1024)
#define FIELDS_INITIAL		1024
#define RECORDS_INITIAL		256
/* libcsv's parser states (libcsv.c), to tell strict errors apart */
#define LIBCSV_FIELD_MIGHT_HAVE_ENDED 3

/* skipping the rest of a malformed record, with splitter.c's rules */
#define TS_OFF			0
#define TS_FIELD_START	1
#define TS_UNQUOTED		2
#define TS_QUOTED		3
#define TS_QUOTE_SEEN	4

struct CsvTokenizer
{
	struct csv_parser parser;
	const CsvDialect *dialect;
	CsvErrorPosition *errpos;
	MemoryContext cxt;

	/* field bytes of buffered records, each NUL-terminated */
	char	   *arena;
	size_t		arena_used;
	size_t		arena_size;

	/* fields: arena offset (-1 = unquoted empty) and length */
	int64	   *field_off;
	int		   *field_len;
	int			nfields;
	int			fields_size;

	/* complete records, handed out from next_rec */
	int		   *rec_first;
	int		   *rec_nfields;
	int64	   *rec_line;
	int		   *rec_bad;		/* index in bad[], -1: a good record */
	bool	   *rec_empty;		/* an empty line */
	int64		prefix_left;	/* records of skip_rows + header still to queue */
	int			nrecs;
	int			recs_size;
	int			next_rec;

	/* why the queued bad records are bad; strings in bad_cxt */
	CsvBadRecord *bad;
	int			nbad;
	int			bad_size;
	MemoryContext bad_cxt;

	/* the record being tokenized is bad */
	bool		row_bad;
	int			skip_state;		/* TS_*: libcsv is reset, the record's rest is skipped */
	CsvBadRecord row_bad_info;
	int64		row_bad_line;	/* line the bad record starts on */

	/* the record being tokenized */
	int			row_first_field;
	size_t		row_arena_start;
	int64		row_line;
	int64		cur_line;		/* physical line of the next input byte */
	bool		pending_cr;

	/* libcsv's entry buffer grows geometrically behind its linear requests */
	size_t		entry_capacity;

	/* arrays of the CsvRecord handed out */
	char	  **out_values;
	int		   *out_lengths;
	int			out_size;
};

/* the dialect hint of malformed records' errors (sniff.c sets it) */
CsvDialectHintHook csv_dialect_hint_hook = NULL;

/* libcsv's allocator hooks carry no context pointer: the tokenizer at work */
static CsvTokenizer *active_tokenizer = NULL;

static int
no_space(unsigned char c)
{
	return 0;
}

static void *
entry_realloc(void *ptr, size_t size)
{
	CsvTokenizer *tok = active_tokenizer;
	size_t		newcap;

	Assert(tok != NULL);
	/* the field already holds size - ENTRY_BLOCK bytes and wants one more */
	if (size > ENTRY_BLOCK && size - ENTRY_BLOCK + 1 > (size_t) csvpipe_max_field_size)
	{
		tok->errpos->line_no = tok->cur_line;
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("CSV field larger than csvpipe.max_field_size (%d bytes)",
						csvpipe_max_field_size),
				 errhint("A field can hold at most 1GB; raise csvpipe.max_field_size up to that, or check the file's quoting.")));
	}
	if (ptr != NULL && size <= tok->entry_capacity)
		return ptr;

	newcap = Max(size, (size_t) 4096);
	if (ptr != NULL)
		newcap = Max(newcap, tok->entry_capacity * 2);
	newcap = Min(newcap, (size_t) csvpipe_max_field_size + 2 * ENTRY_BLOCK);
	newcap = Max(newcap, size);

	if (ptr == NULL)
		ptr = MemoryContextAllocHuge(tok->cxt, newcap);
	else
		ptr = repalloc_huge(ptr, newcap);
	tok->entry_capacity = newcap;
	return ptr;
}

static void
entry_free(void *ptr)
{
	if (ptr != NULL)
		pfree(ptr);
}

static void
arena_reserve(CsvTokenizer *tok, size_t len)
{
	if (tok->arena_used + len > tok->arena_size)
	{
		size_t		newsize = Max(tok->arena_size * 2, tok->arena_used + len);

		tok->arena = repalloc_huge(tok->arena, newsize);
		tok->arena_size = newsize;
	}
}

static void
count_newlines(CsvTokenizer *tok, const char *s, size_t len)
{
	const char *end = s + len;

	while ((s = memchr(s, '\n', end - s)) != NULL)
	{
		tok->cur_line++;
		s++;
	}
}

/* libcsv field callback */
static void
field_cb(void *s, size_t len, void *data)
{
	CsvTokenizer *tok = (CsvTokenizer *) data;
	int			n = tok->nfields;

	if (n == tok->row_first_field)
		tok->row_line = tok->cur_line;
	if (tok->row_bad)
	{
		/* a record marked bad: its fields are not kept, its lines counted */
		if (s != NULL && len > 0 && memchr(s, '\n', len) != NULL)
			count_newlines(tok, s, len);
		return;
	}

	if (n >= tok->fields_size)
	{
		tok->fields_size *= 2;
		tok->field_off = repalloc(tok->field_off, sizeof(int64) * tok->fields_size);
		tok->field_len = repalloc(tok->field_len, sizeof(int) * tok->fields_size);
	}

	if (s == NULL)
	{
		tok->field_off[n] = -1;
		tok->field_len[n] = 0;
	}
	else
	{
		arena_reserve(tok, len + 1);
		memcpy(tok->arena + tok->arena_used, s, len);
		tok->arena[tok->arena_used + len] = '\0';
		tok->field_off[n] = tok->arena_used;
		tok->field_len[n] = (int) len;
		tok->arena_used += len + 1;
		/* only quoted fields can hold newlines */
		if (len > 0 && memchr(s, '\n', len) != NULL)
			count_newlines(tok, s, len);
	}
	tok->nfields++;
}

static void
grow_records(CsvTokenizer *tok)
{
	if (tok->nrecs >= tok->recs_size)
	{
		tok->recs_size *= 2;
		tok->rec_first = repalloc(tok->rec_first, sizeof(int) * tok->recs_size);
		tok->rec_nfields = repalloc(tok->rec_nfields, sizeof(int) * tok->recs_size);
		tok->rec_line = repalloc(tok->rec_line, sizeof(int64) * tok->recs_size);
		tok->rec_bad = repalloc(tok->rec_bad, sizeof(int) * tok->recs_size);
		tok->rec_empty = repalloc(tok->rec_empty, sizeof(bool) * tok->recs_size);
	}
}

/* Queue the record made of fields [row_first_field, nfields) */
static void
queue_record(CsvTokenizer *tok, int64 line, int bad, bool empty)
{
	int			r;

	grow_records(tok);
	r = tok->nrecs++;
	tok->rec_first[r] = tok->row_first_field;
	tok->rec_nfields[r] = tok->nfields - tok->row_first_field;
	tok->rec_line[r] = line;
	tok->rec_bad[r] = bad;
	tok->rec_empty[r] = empty;
	if (tok->prefix_left > 0)
		tok->prefix_left--;
	tok->row_first_field = tok->nfields;
	tok->row_arena_start = tok->arena_used;
}

/* Line where the record being tokenized started */
static int64
row_start_line(CsvTokenizer *tok)
{
	/* no field of it yet: it starts where the last record ended */
	return tok->nfields > tok->row_first_field ? tok->row_line : tok->cur_line;
}

/*
 * The record being tokenized is bad (the first reason wins): its fields are
 * dropped now, and it is queued, without fields, at its end.
 */
static void
set_row_bad(CsvTokenizer *tok, int sqlerrcode, const char *message,
			const char *hint, int64 line_no, int field_no)
{
	if (tok->row_bad)
		return;
	tok->row_bad_line = row_start_line(tok);
	tok->row_bad = true;
	tok->row_bad_info.sqlerrcode = sqlerrcode;
	tok->row_bad_info.message = MemoryContextStrdup(tok->bad_cxt, message);
	tok->row_bad_info.detail = NULL;
	tok->row_bad_info.hint = hint ? MemoryContextStrdup(tok->bad_cxt, hint) : NULL;
	tok->row_bad_info.line_no = line_no;
	tok->row_bad_info.field_no = field_no;
	tok->nfields = tok->row_first_field;
	tok->arena_used = tok->row_arena_start;
}

/* The bad record ends here (c: its terminator, -1 at end of input) */
static void
end_bad_row(CsvTokenizer *tok, int c)
{
	int			b;

	if (tok->nbad >= tok->bad_size)
	{
		tok->bad_size *= 2;
		tok->bad = repalloc(tok->bad, sizeof(CsvBadRecord) * tok->bad_size);
	}
	b = tok->nbad++;
	tok->bad[b] = tok->row_bad_info;
	tok->nfields = tok->row_first_field;
	tok->arena_used = tok->row_arena_start;
	queue_record(tok, tok->row_bad_line, b, false);
	tok->row_bad = false;
	tok->skip_state = TS_OFF;
	tok->pending_cr = (c == '\r');
	if (c >= 0)
		tok->cur_line++;
}

/* libcsv record callback: c is the terminator, or -1 at end of input */
static void
row_cb(int c, void *data)
{
	CsvTokenizer *tok = (CsvTokenizer *) data;
	int			nf = tok->nfields - tok->row_first_field;

	/* the LF of a CRLF */
	if (nf == 0 && !tok->row_bad && c == '\n' && tok->pending_cr)
	{
		tok->pending_cr = false;
		return;
	}
	if (tok->row_bad)
	{
		end_bad_row(tok, c);
		return;
	}
	if (nf == 0)
	{
		/*
		 * an empty line: a NULL field in a one-column file or in the prefix
		 * (skip_rows, header), else nothing
		 */
		if (c >= 0 && (tok->dialect->empty_line_is_record || tok->prefix_left > 0))
		{
			tok->row_line = tok->cur_line;
			field_cb(NULL, 0, tok);
			queue_record(tok, tok->cur_line, -1, true);
		}
		tok->pending_cr = (c == '\r');
		if (c >= 0)
			tok->cur_line++;
		return;
	}

	queue_record(tok, tok->row_line, -1, false);
	tok->pending_cr = (c == '\r');
	if (c >= 0)
		tok->cur_line++;
}

CsvTokenizer *
csv_tokenizer_create(const CsvDialect *dialect, CsvErrorPosition *errpos,
					 int64 first_line)
{
	MemoryContext cxt;
	CsvTokenizer *tok;

	cxt = AllocSetContextCreate(CurrentMemoryContext, "csvpipe tokenizer",
								ALLOCSET_DEFAULT_SIZES);
	tok = MemoryContextAllocZero(cxt, sizeof(CsvTokenizer));
	tok->cxt = cxt;
	tok->dialect = dialect;
	tok->errpos = errpos;
	if (errpos->dialect == NULL)
		errpos->dialect = dialect;

	if (csv_init(&tok->parser, CSV_STRICT | CSV_STRICT_FINI | CSV_REPALL_NL |
				 CSV_EMPTY_IS_NULL) != 0)
		elog(ERROR, "could not initialize libcsv parser");
	csv_set_delim(&tok->parser, (unsigned char) dialect->delimiter);
	csv_set_quote(&tok->parser, (unsigned char) dialect->quote);
	csv_set_space_func(&tok->parser, no_space);
	csv_set_realloc_func(&tok->parser, entry_realloc);
	csv_set_free_func(&tok->parser, entry_free);
	csv_set_blk_size(&tok->parser, ENTRY_BLOCK);

	tok->arena_size = ARENA_INITIAL;
	tok->arena = MemoryContextAlloc(cxt, tok->arena_size);
	tok->fields_size = FIELDS_INITIAL;
	tok->field_off = MemoryContextAlloc(cxt, sizeof(int64) * tok->fields_size);
	tok->field_len = MemoryContextAlloc(cxt, sizeof(int) * tok->fields_size);
	tok->recs_size = RECORDS_INITIAL;
	tok->rec_first = MemoryContextAlloc(cxt, sizeof(int) * tok->recs_size);
	tok->rec_nfields = MemoryContextAlloc(cxt, sizeof(int) * tok->recs_size);
	tok->rec_line = MemoryContextAlloc(cxt, sizeof(int64) * tok->recs_size);
	tok->rec_bad = MemoryContextAlloc(cxt, sizeof(int) * tok->recs_size);
	tok->rec_empty = MemoryContextAlloc(cxt, sizeof(bool) * tok->recs_size);
	tok->bad_size = 16;
	tok->bad = MemoryContextAlloc(cxt, sizeof(CsvBadRecord) * tok->bad_size);
	tok->bad_cxt = AllocSetContextCreate(cxt, "csvpipe bad records",
										 ALLOCSET_SMALL_SIZES);
	tok->out_size = 16;
	tok->out_values = MemoryContextAlloc(cxt, sizeof(char *) * tok->out_size);
	tok->out_lengths = MemoryContextAlloc(cxt, sizeof(int) * tok->out_size);
	tok->cur_line = first_line;
	return tok;
}

/*
 * Drop the records already handed out and move the open record's fields to
 * the front of the arena.
 */
static void
compact(CsvTokenizer *tok)
{
	int			carry = tok->nfields - tok->row_first_field;
	size_t		bytes = tok->arena_used - tok->row_arena_start;

	/* records still queued (fed in several pieces): keep everything */
	if (tok->next_rec < tok->nrecs)
		return;
	if (carry > 0 && tok->row_first_field > 0)
	{
		for (int i = 0; i < carry; i++)
		{
			int64		off = tok->field_off[tok->row_first_field + i];

			tok->field_off[i] = off < 0 ? -1 : off - (int64) tok->row_arena_start;
			tok->field_len[i] = tok->field_len[tok->row_first_field + i];
		}
	}
	if (bytes > 0 && tok->row_arena_start > 0)
		memmove(tok->arena, tok->arena + tok->row_arena_start, bytes);
	tok->nfields = carry;
	tok->row_first_field = 0;
	tok->arena_used = bytes;
	tok->row_arena_start = 0;
	tok->nrecs = 0;
	tok->next_rec = 0;
	tok->nbad = 0;
	/* reasons of handed-out records (an open bad record keeps its own) */
	if (!tok->row_bad)
		MemoryContextReset(tok->bad_cxt);

	/* give back the room a huge field needed once it is gone */
	if (tok->arena_size > 64 * ARENA_INITIAL && bytes < ARENA_INITIAL)
	{
		char	   *arena = MemoryContextAlloc(tok->cxt, ARENA_INITIAL);

		memcpy(arena, tok->arena, bytes);
		pfree(tok->arena);
		tok->arena = arena;
		tok->arena_size = ARENA_INITIAL;
	}
}

/* Line where the (possibly partial) field being tokenized started */
int64
csv_tokenizer_pending_line(CsvTokenizer *tok)
{
	int64		line = tok->cur_line;
	size_t		len = tok->parser.entry_pos;

	if (tok->parser.entry_buf != NULL && len > 0)
	{
		const char *s = (const char *) tok->parser.entry_buf;
		const char *end = s + len;

		while ((s = memchr(s, '\n', end - s)) != NULL)
		{
			line++;
			s++;
		}
	}
	return line;
}

/*
 * libcsv stopped on a malformed byte: the record being tokenized is bad
 * from there to its line end.
 */
static void
parse_error_row(CsvTokenizer *tok)
{
	int			status = csv_error(&tok->parser);
	int			field = tok->nfields - tok->row_first_field + 1;
	int64		line = csv_tokenizer_pending_line(tok);

	if (status != CSV_EPARSE)
		ereport(ERROR,
				(errcode(ERRCODE_OUT_OF_MEMORY),
				 errmsg("libcsv could not grow its field buffer (status %d)", status)));
	if (tok->parser.pstate == LIBCSV_FIELD_MIGHT_HAVE_ENDED)
		set_row_bad(tok, ERRCODE_BAD_COPY_FILE_FORMAT,
					"malformed CSV: unexpected character after closing quote",
					"Quotes inside a quoted field must be doubled (\"\").",
					line, field);
	else
		set_row_bad(tok, ERRCODE_BAD_COPY_FILE_FORMAT,
					"malformed CSV: quote character inside an unquoted field",
					"A field containing the quote character must be quoted, with the inner quotes doubled.",
					line, field);
	/* the newlines of the partial field were not counted yet */
	tok->cur_line = line;
	/* libcsv starts afresh after the record */
	tok->parser.pstate = 0;		/* ROW_NOT_BEGUN */
	tok->parser.quoted = 0;
	tok->parser.spaces = 0;
	tok->parser.entry_pos = 0;
	tok->parser.status = 0;
	/* past the offending byte, the field goes on unquoted */
	tok->skip_state = TS_UNQUOTED;
}

/*
 * The rest of a malformed record, from data[pos]: a quote opens a quoted
 * field only at a field's start (and there, line ends are data); the record
 * ends at a line end outside quotes.  Returns where the scan stopped.
 */
static size_t
skip_bad_record(CsvTokenizer *tok, const char *data, size_t pos, size_t len)
{
	int			st = tok->skip_state;
	unsigned char quote = (unsigned char) tok->dialect->quote;
	unsigned char delim = (unsigned char) tok->dialect->delimiter;

	for (size_t i = pos; i < len; i++)
	{
		unsigned char c = (unsigned char) data[i];

		if (st == TS_QUOTED)
		{
			if (c == quote)
				st = TS_QUOTE_SEEN;
			else if (c == '\n')
				tok->cur_line++;
			continue;
		}
		if (st == TS_QUOTE_SEEN)
		{
			if (c == quote)
			{
				st = TS_QUOTED;
				continue;
			}
			st = TS_UNQUOTED;	/* closed: c is outside quotes */
		}
		if (c == '\n' || c == '\r')
		{
			end_bad_row(tok, c);
			return i + 1;
		}
		if (c == delim)
			st = TS_FIELD_START;
		else if (c == quote && st == TS_FIELD_START)
			st = TS_QUOTED;
		else
			st = TS_UNQUOTED;
	}
	tok->skip_state = st;
	return len;
}

/*
 * Tokenize one block.  Records queued before and not handed out yet stay
 * queued (the memory is then only given back once they are).
 */
void
csv_tokenizer_feed(CsvTokenizer *tok, const char *data, size_t len)
{
	size_t		pos = 0;

	compact(tok);
	active_tokenizer = tok;
	while (pos < len)
	{
		if (tok->skip_state != TS_OFF)
		{
			pos = skip_bad_record(tok, data, pos, len);
			continue;
		}
		pos += csv_parse(&tok->parser, data + pos, len - pos, field_cb, row_cb, tok);
		if (pos < len)
		{
			parse_error_row(tok);
			pos++;				/* the offending byte */
		}
	}
	active_tokenizer = NULL;
}

/* End of input: submit a last record without terminator */
void
csv_tokenizer_finish(CsvTokenizer *tok)
{
	int			rc;

	compact(tok);
	if (tok->skip_state != TS_OFF)
	{
		end_bad_row(tok, -1);
		return;
	}
	active_tokenizer = tok;
	rc = csv_fini(&tok->parser, field_cb, row_cb, tok);
	active_tokenizer = NULL;
	if (rc != 0)
	{
		/* the open quoted field runs to the end: its record is bad */
		set_row_bad(tok, ERRCODE_BAD_COPY_FILE_FORMAT,
					"unterminated quoted field at end of file",
					"A quoted field was opened and the file ended before its closing quote.",
					tok->cur_line, tok->nfields - tok->row_first_field + 1);
		end_bad_row(tok, -1);
	}
	else if (tok->row_bad)
		end_bad_row(tok, -1);
}

/*
 * The caller found bytes invalid in the encoding at the current position
 * (and drops them): the record they belong to is bad.
 */
void
csv_tokenizer_mark_bad(CsvTokenizer *tok, int sqlerrcode, const char *message,
					   int64 line_no)
{
	/*
	 * Bytes invalid in the encoding win over a malformed quote found
	 * earlier in the same record: skip mode checks a record's bytes before
	 * tokenizing it, so stop and skip report the same SQLSTATE.
	 */
	if (tok->row_bad && tok->row_bad_info.sqlerrcode == ERRCODE_BAD_COPY_FILE_FORMAT)
	{
		tok->row_bad_info.sqlerrcode = sqlerrcode;
		tok->row_bad_info.message = MemoryContextStrdup(tok->bad_cxt, message);
		tok->row_bad_info.hint = NULL;
		tok->row_bad_info.line_no = line_no;
		tok->row_bad_info.field_no = 0; /* its fields were dropped: unknown */
		return;
	}
	/* a previous record's CR may be followed by its LF: not this record */
	set_row_bad(tok, sqlerrcode, message, NULL, line_no,
				tok->nfields - tok->row_first_field + 1);
}

/* Hand out the next queued record; false when the caller must feed more */
bool
csv_tokenizer_next(CsvTokenizer *tok, CsvRecord *rec)
{
	int			r,
				first,
				nf;

	if (tok->next_rec >= tok->nrecs)
		return false;
	r = tok->next_rec++;
	first = tok->rec_first[r];
	nf = tok->rec_nfields[r];

	if (nf > tok->out_size)
	{
		while (tok->out_size < nf)
			tok->out_size *= 2;
		tok->out_values = repalloc(tok->out_values, sizeof(char *) * tok->out_size);
		tok->out_lengths = repalloc(tok->out_lengths, sizeof(int) * tok->out_size);
	}
	for (int i = 0; i < nf; i++)
	{
		int64		off = tok->field_off[first + i];

		tok->out_values[i] = off < 0 ? NULL : tok->arena + off;
		tok->out_lengths[i] = tok->field_len[first + i];
	}
	rec->line_no = tok->rec_line[r];
	rec->nfields = nf;
	rec->values = tok->out_values;
	rec->lengths = tok->out_lengths;
	rec->empty_line = tok->rec_empty[r];
	rec->bad = tok->rec_bad[r] >= 0 ? &tok->bad[tok->rec_bad[r]] : NULL;
	return true;
}

void
csv_tokenizer_destroy(CsvTokenizer *tok)
{
	/* the entry buffer lives in tok->cxt too */
	MemoryContextDelete(tok->cxt);
}

/*
 * The next n records are skip_rows and the header: empty lines among them
 * are records too (as COPY's HEADER takes an empty first line).  Call before
 * the first feed.
 */
void
csv_tokenizer_set_prefix(CsvTokenizer *tok, int64 n)
{
	tok->prefix_left = n;
}

/* Start the next record at this line (callers that feed record by record) */
void
csv_tokenizer_set_line(CsvTokenizer *tok, int64 line)
{
	tok->cur_line = line;
	tok->pending_cr = false;
}

/*
 * Raise the error of a bad record (stop mode, or to be caught by skip
 * mode), naming its line and field.
 */
void
csv_record_raise_bad(const CsvRecord *rec, CsvErrorPosition *errpos)
{
	const CsvBadRecord *bad = rec->bad;
	const char *hint = bad->hint;

	/*
	 * A malformed quote is most often a wrong delimiter or quote: name the
	 * likely ones (sniff.c; the encoding's errors are not about them).
	 */
	if (bad->sqlerrcode == ERRCODE_BAD_COPY_FILE_FORMAT && csv_dialect_hint_hook)
	{
		const char *sniffed = csv_dialect_hint_hook(errpos, errpos->ncolumns);

		if (sniffed)
			hint = sniffed;
	}

	/*
	 * The record's first line, the line skip mode rejects; a record that
	 * spans lines says where in it the error is.
	 */
	errpos->line_no = rec->line_no;
	errpos->field_no = bad->field_no;
	errpos->column = NULL;
	errpos->value = NULL;
	if (bad->line_no != rec->line_no && bad->detail == NULL)
		ereport(ERROR,
				(errcode(bad->sqlerrcode),
				 errmsg_internal("%s", bad->message),
				 errdetail("The record starts on line " INT64_FORMAT "; the error is on line " INT64_FORMAT ".",
						   rec->line_no, bad->line_no),
				 hint ? errhint("%s", hint) : 0));
	ereport(ERROR,
			(errcode(bad->sqlerrcode),
			 errmsg_internal("%s", bad->message),
			 bad->detail ? errdetail_internal("%s", bad->detail) : 0,
			 hint ? errhint("%s", hint) : 0));
}
