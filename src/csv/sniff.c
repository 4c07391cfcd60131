/*-------------------------------------------------------------------------
 *
 * sniff.c
 *		Detect a CSV file's dialect, header, column names and column types
 *		from a sample of it (csvpipe.sniff, csvpipe.create_table, load's
 *		create_target).
 *
 * Owns the sniffing rules (doc/reference.md, "Sniffing a file", documents
 * them):
 *
 *  - The sample: the file's first sample_size bytes (4MB by default), read
 *    through csv_open_file() (privileges, csvpipe.allowed_dirs, no link
 *    followed, fstat of what was opened: exactly as a read), and used as
 *    whole records only: a record cut by the sample's end is dropped.
 *  - Encoding: a UTF-8 byte order mark, else UTF8 when the sample is valid
 *    UTF-8, else an East Asian encoding that converts the whole sample and
 *    whose characters look like text in its language (guess_cjk_encoding),
 *    else WIN1252 when bytes 0x80-0x9F occur that WIN1252 defines, else
 *    LATIN1.  The encoding the caller gives is taken as it is.
 *  - Dialect: every candidate (delimiters , ; TAB |, then space; quotes "
 *    and ') tokenizes the sample's first records with csvpipe's own
 *    tokenizer, so a candidate is judged by exactly the records a read
 *    would see.  Its score: records with the most common field count, less
 *    records with another count or malformed, less the preamble rows
 *    before the table.  Highest score wins, then more
 *    columns, then the order above.  Space is only tried when no other
 *    delimiter gives two columns or more.
 *  - Preamble (skip_rows): the records before the first one that has the
 *    table's field count, and sparse rows (one value in three fields or
 *    more) at the top when a dense row follows; leading empty lines count
 *    as records (as skip_rows counts them).
 *  - Types: every value of the sample is classified by its shape (a strict
 *    subset of what the type's input function accepts; numbers with a
 *    leading zero such as 00501 are never numbers); a column gets the
 *    narrowest type every value fits.  Date and time types are then checked
 *    with PostgreSQL's own input functions on every sampled value, under the
 *    session's DateStyle and TimeZone, so a proposed type accepts every
 *    value of the sample; a column with a value they refuse is text.  When
 *    the sample is not the whole file, integers are bigint and numeric has
 *    no typmod, so that rows further down are neither refused nor rounded.
 *  - Header: the first record is a header when its values do not fit the
 *    types of the columns below it (more misfits than fits); when every
 *    column is text, when its values are all present, distinct and appear
 *    nowhere else in their column.  A header of two or three rows
 *    (header_rows): skip_rows skips all but its last, names join them.
 *  - Null markers: without a null_string given, NA, N/A, \N... are counted
 *    apart; the one that, as null_string, types text columns and makes no
 *    typed one text is taken (a second typing pass), and said in notes.
 *
 * The csv layer does not call up: SQL-facing code (src/sql/sniff_sql.c)
 * turns the result into rows and DDL.  Nothing here holds shared state; the
 * input functions whose errors are caught here (date, time, timestamp,
 * timestamptz, jsonb) touch none either, so no subtransaction is needed.
 *
 *-------------------------------------------------------------------------
 */
#include "sniff.h"
#include "catch.h"

#include <unistd.h>

#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/date.h"
#include "utils/jsonb.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

/* the tokenizer is fed this much at a time */
#define SNIFF_PIECE			(64 * 1024)
/* dialect candidates are judged on at most this many records and bytes */
#define DETECT_MAX_RECORDS	2000
#define DETECT_MAX_BYTES	(512 * 1024)
/* a preamble is at most this many records */
#define MAX_PREAMBLE		100
/* a header is at most this many rows */
#define MAX_HEADER_ROWS		3
/* how many notes of one kind */
#define MAX_EXAMPLE			60

#define M(t)				(1u << (t))
#define NUMBER_BITS			(M(CSV_SNIFF_INT2) | M(CSV_SNIFF_INT4) | M(CSV_SNIFF_INT8) | \
							 M(CSV_SNIFF_NUMERIC) | M(CSV_SNIFF_FLOAT8))
#define ALL_BITS			((1u << CSV_SNIFF_NTYPES) - 1)

typedef struct Sniffer
{
	const char *path;
	CsvErrorPosition errpos;
	char	   *data;			/* the sample, after a byte order mark */
	int64		len;
	bool		whole;			/* data is the whole file */
} Sniffer;

/* ---- the sample ---- */

static void
read_sample(Sniffer *sn, int64 sample_size, CsvSniffResult *res)
{
	struct stat st;
	int			fd = csv_open_file(sn->path, 0, &st, NULL);
	int64		want = sample_size;
	int64		got = 0;
	char	   *buf;

	if (st.st_size < want)
		want = st.st_size;
	buf = palloc_extended(want + 1, MCXT_ALLOC_HUGE);
	while (got < want)
	{
		ssize_t		n;

		CHECK_FOR_INTERRUPTS();
		n = read(fd, buf + got, Min(want - got, (int64) (1024 * 1024)));
		if (n < 0)
		{
			if (errno == EINTR)
				continue;
			ereport(ERROR,
					(errcode_for_file_access(),
					 errmsg("could not read file \"%s\": %m", sn->path)));
		}
		if (n == 0)
			break;
		got += n;
	}
	/* the whole file, unless it has more than the sample */
	sn->whole = true;
	if (got == want && want == sample_size)
	{
		char		c;
		ssize_t		n;

		do
			n = read(fd, &c, 1);
		while (n < 0 && errno == EINTR);
		sn->whole = (n == 0);
	}
	csv_close_file(fd);
	buf[got] = '\0';
	sn->data = buf;
	sn->len = got;
	res->sample_bytes = got;
	res->whole_file = sn->whole;
}

/*
 * Is data[0..len) valid UTF-8 (a character cut by a partial sample's end
 * is)?  NUL bytes are passed over: they are in no encoding (a read refuses
 * them whatever the encoding), so they say nothing about which it is.
 */
static bool
valid_utf8(const char *data, int64 len, bool whole)
{
	int64		done = 0;

	while (done < len)
	{
		int			piece = (int) Min(len - done, (int64) (64 * 1024 * 1024));
		int			v = pg_encoding_verifymbstr(PG_UTF8, data + done, piece);

		done += v;
		if (v == piece)
			continue;
		if (data[done] == '\0')
		{
			done++;
			continue;
		}
		if (done + 4 <= len || whole)
			return false;
		/* a cut character at the sample's end */
		return pg_utf_mblen((const unsigned char *) data + done) > len - done;
	}
	return true;
}

/*
 * East Asian encodings (tried when the sample is not UTF-8), in their order
 * of preference among equals.  Where one is a superset of another that
 * PostgreSQL also knows, the superset is named: UHC reads EUC-KR files,
 * GBK reads GB2312 (EUC_CN) ones, and a read with it does not stop at a
 * character the subset lacks further down the file.
 */
static const int cjk_encodings[] = {
	PG_SJIS, PG_UHC, PG_GBK, PG_EUC_JP, PG_BIG5, PG_GB18030
};

/* the converted sample is checked in pieces of this size */
#define CJK_PIECE			(256 * 1024)

/*
 * Does data[0..len) convert from encoding enc to UTF-8, with PostgreSQL's
 * own conversion (its mapping tables: a code the encoding leaves
 * unassigned is invalid)?  As valid_utf8: NUL bytes are passed over, and a
 * character cut by a partial sample's end is fine.
 */
static bool
converts_from(int enc, const char *data, int64 len, bool whole)
{
	Oid			proc = FindDefaultConversionProc(enc, PG_UTF8);
	int			outsize = CJK_PIECE * MAX_CONVERSION_GROWTH + 1;
	unsigned char *out;
	int64		pos = 0;
	bool		ok = true;

	if (!OidIsValid(proc))
		return false;
	out = palloc(outsize);
	while (pos < len)
	{
		int			n = (int) Min(len - pos, (int64) CJK_PIECE);
		int64		piece_end = pos + n;
		int			c;

		CHECK_FOR_INTERRUPTS();
		c = pg_do_encoding_conversion_buf(proc, enc, PG_UTF8,
										  (unsigned char *) data + pos, n,
										  out, outsize, true);
		pos += c;
		if (pos == piece_end)
			continue;
		if (data[pos] == '\0')
		{
			pos++;
			continue;
		}
		/* a character cut by the piece's end, or by the sample's */
		if (piece_end - pos < MAX_MULTIBYTE_CHAR_LEN)
		{
			if (piece_end < len)
				continue;
			if (!whole)
				break;
		}
		ok = false;
		break;
	}
	pfree(out);
	return ok;
}

typedef enum CjkClass
{
	CJK_COMMON,					/* the language's usual characters */
	CJK_OTHER,					/* symbols, half-width kana, hanja... */
	CJK_RARE					/* user-defined areas, rare extensions */
} CjkClass;

/*
 * Where the multibyte character s (of length len, valid in enc) lies.  The
 * common regions: Shift_JIS and EUC-JP kana and JIS X 0208 kanji; UHC's
 * 2,350 Hangul syllables of KS X 1001; GBK's GB2312 hanzi; Big5's hanzi.
 * A two-byte character whose trail byte is ASCII (Shift_JIS, Big5) is
 * never common: text in a single-byte encoding with an accented letter
 * before a plain one would otherwise look like it.
 */
static CjkClass
cjk_class(int enc, const unsigned char *s, int len)
{
	unsigned char a = s[0];
	unsigned char b = len > 1 ? s[1] : 0;

	switch (enc)
	{
		case PG_SJIS:
			if (len == 1)
				return CJK_OTHER;	/* half-width katakana */
			if ((a >= 0x81 && a <= 0x84) || (a >= 0x88 && a <= 0x9F) ||
				(a >= 0xE0 && a <= 0xEA))
				return b >= 0x80 ? CJK_COMMON : CJK_OTHER;
			return CJK_RARE;	/* NEC and IBM extensions, user-defined */
		case PG_EUC_JP:
			if (a == 0x8E)
				return CJK_OTHER;	/* half-width katakana */
			if (a == 0x8F)
				return CJK_RARE;	/* JIS X 0212 */
			if ((a >= 0xA1 && a <= 0xA8) || (a >= 0xB0 && a <= 0xF4))
				return CJK_COMMON;
			return CJK_RARE;
		case PG_UHC:
			if (b < 0xA1)
				return CJK_RARE;	/* UHC's added Hangul syllables */
			if (a >= 0xB0 && a <= 0xC8)
				return CJK_COMMON;
			if ((a >= 0xA1 && a <= 0xAC) || (a >= 0xCA && a <= 0xFD))
				return CJK_OTHER;	/* symbols, jamo, hanja */
			return CJK_RARE;
		case PG_GBK:
		case PG_GB18030:
			if (len == 4)
				return CJK_OTHER;	/* GB18030's four-byte codes */
			if (b < 0xA1)
				return CJK_RARE;	/* GBK's added hanzi */
			if (a >= 0xB0 && a <= 0xF7)
				return CJK_COMMON;
			if (a >= 0xA1 && a <= 0xA9)
				return CJK_OTHER;	/* symbols, kana */
			return CJK_RARE;
		case PG_BIG5:
			if ((a >= 0xA4 && (a < 0xC6 || (a == 0xC6 && b < 0xA1))) ||
				(a >= 0xC9 && a <= 0xF9))
				return b >= 0xA1 ? CJK_COMMON : CJK_OTHER;
			if (a >= 0xA1 && a <= 0xA3)
				return CJK_OTHER;	/* symbols */
			return CJK_RARE;
	}
	return CJK_RARE;
}

/*
 * An East Asian multibyte encoding for a sample that is not UTF-8, or -1.
 * A candidate must convert the whole sample (its mapping tables: byte
 * sequences the encoding does not assign are refused), and its characters
 * must look like text in it: two common ones at least, a quarter of them
 * common, one in twenty rare at most.  The best is the one with the most
 * common characters, less eight per rare one; then the order of
 * cjk_encodings.  Samples with fewer than two pairs of bytes above 0x7F in
 * a row (accented letters in a single-byte encoding) are not tried.
 */
static int
guess_cjk_encoding(const char *data, int64 len, bool whole)
{
	int64		pairs = 0;
	int			best = -1;
	int64		best_score = 0;

	for (int64 i = 0; i + 1 < len && pairs < 2; i++)
		if (IS_HIGHBIT_SET(data[i]) && IS_HIGHBIT_SET(data[i + 1]))
		{
			pairs++;
			i++;
		}
	if (pairs < 2)
		return -1;

	for (int e = 0; e < lengthof(cjk_encodings); e++)
	{
		int			enc = cjk_encodings[e];
		int64		nmb = 0,
					common = 0,
					rare = 0;
		int64		score;

		if (!converts_from(enc, data, len, whole))
			continue;
		for (int64 i = 0; i < len;)
		{
			int			l;

			if (!IS_HIGHBIT_SET(data[i]))
			{
				i++;
				continue;
			}
			l = pg_encoding_mblen(enc, data + i);
			if (i + l > len)
				break;			/* cut by the sample's end */
			nmb++;
			switch (cjk_class(enc, (const unsigned char *) data + i, l))
			{
				case CJK_COMMON:
					common++;
					break;
				case CJK_RARE:
					rare++;
					break;
				case CJK_OTHER:
					break;
			}
			i += l;
		}
		if (common < 2 || common * 4 < nmb || rare * 20 > nmb)
			continue;
		score = common - 8 * rare;
		if (best < 0 || score > best_score)
		{
			best = enc;
			best_score = score;
		}
	}
	return best;
}

static int
guess_encoding(const char *data, int64 len, bool whole)
{
	bool		c1 = false;
	int			cjk;

	if (valid_utf8(data, len, whole))
		return PG_UTF8;
	if ((cjk = guess_cjk_encoding(data, len, whole)) >= 0)
		return cjk;
	for (int64 i = 0; i < len; i++)
	{
		unsigned char c = (unsigned char) data[i];

		if (c >= 0x80 && c <= 0x9F)
		{
			/* bytes WIN1252 leaves undefined: LATIN1 maps every byte */
			if (c == 0x81 || c == 0x8D || c == 0x8F || c == 0x90 || c == 0x9D)
				return PG_LATIN1;
			c1 = true;
		}
	}
	return c1 ? PG_WIN1252 : PG_LATIN1;
}

static const char *
guess_line_ending(const char *data, int64 len)
{
	int64		lf = 0,
				cr = 0,
				crlf = 0;

	for (int64 i = 0; i < len; i++)
	{
		if (data[i] == '\r')
		{
			if (i + 1 < len && data[i + 1] == '\n')
			{
				crlf++;
				i++;
			}
			else
				cr++;
		}
		else if (data[i] == '\n')
			lf++;
	}
	if (lf == 0 && cr == 0 && crlf == 0)
		return NULL;
	if (crlf >= lf && crlf >= cr)
		return "CRLF";
	return lf >= cr ? "LF" : "CR";
}

/* ---- tokenizing the sample ---- */

typedef bool (*SniffRecordFn) (void *arg, CsvRecord *rec);

static void
sniff_dialect_init(CsvDialect *d, char delimiter, char quote, int encoding,
				   const char *null_string, bool empty_line_is_record)
{
	memset(d, 0, sizeof(CsvDialect));
	d->delimiter = delimiter;
	d->quote = quote;
	d->escape = quote;
	d->header = CSV_HEADER_NONE;
	d->null_string = (char *) null_string;
	d->null_len = strlen(null_string);
	d->file_encoding = encoding;
	d->empty_line_is_record = empty_line_is_record;
}

/*
 * Tokenize the sample's first limit bytes with dialect d and hand each
 * record to fn until it returns false.  prefix: the first records are
 * skip_rows and header (empty lines among them are records, as for a read).
 * encode: validate or convert to the server encoding first, as a read does
 * (else raw bytes: enough to find delimiters).  Only whole records: the
 * end of the input is only final when the sample is the whole file.
 */
static void
scan_records(Sniffer *sn, const CsvDialect *d, int64 prefix, int64 limit,
			 bool encode, SniffRecordFn fn, void *arg)
{
	MemoryContext cxt = AllocSetContextCreate(CurrentMemoryContext,
											  "csvpipe sniff scan",
											  ALLOCSET_DEFAULT_SIZES);
	MemoryContext oldcxt = MemoryContextSwitchTo(cxt);
	CsvTokenizer *tok = csv_tokenizer_create(d, &sn->errpos, 1);
	CsvEncoder	enc;
	CsvRecord	rec;
	int64		end = Min(limit, sn->len);
	bool		final = (end == sn->len) && sn->whole;
	int64		pos = 0;
	bool		stop = false;

	if (encode)
		csv_encoder_init(&enc, d);
	csv_tokenizer_set_prefix(tok, prefix);
	while (pos < end && !stop)
	{
		int64		n = Min(end - pos, (int64) SNIFF_PIECE);
		bool		last = (pos + n == end);

		CHECK_FOR_INTERRUPTS();
		if (encode)
		{
			int64		carry = csv_encoder_feed(&enc, tok, sn->data + pos, n,
												 last && final);

			pos += n - carry;
			if (last && carry > 0)
				pos = end;		/* a character cut by the sample's end */
		}
		else
		{
			csv_tokenizer_feed(tok, sn->data + pos, n);
			pos += n;
		}
		while (!stop && csv_tokenizer_next(tok, &rec))
			stop = !fn(arg, &rec);
	}
	if (!stop && final)
	{
		csv_tokenizer_finish(tok);
		while (!stop && csv_tokenizer_next(tok, &rec))
			stop = !fn(arg, &rec);
	}
	MemoryContextSwitchTo(oldcxt);
	MemoryContextDelete(cxt);
}

/* ---- the dialect ---- */

typedef struct DetRecord
{
	int			nfields;
	int			nonnull;		/* fields with a value */
	bool		empty;			/* an empty line */
	bool		bad;			/* malformed with this dialect */
	bool		last_blank;		/* its last field is empty or blank */
} DetRecord;

typedef struct Candidate
{
	char		delimiter;
	char		quote;
	int			tier;			/* 1, or 2: only when tier 1 finds no table */
	int			order;			/* preference among equals */
	DetRecord  *recs;
	int			nrecs;
	int			ncolumns;		/* the most common field count */
	int			start;			/* record index of the table's first row */
	int			nbad;
	int64		score;
} Candidate;

static bool
detect_record(void *arg, CsvRecord *rec)
{
	Candidate  *c = (Candidate *) arg;
	DetRecord  *r = &c->recs[c->nrecs++];

	r->empty = rec->empty_line;
	r->bad = rec->bad != NULL;
	r->nfields = rec->nfields;
	r->nonnull = 0;
	for (int i = 0; i < rec->nfields; i++)
		if (rec->values[i] != NULL && rec->lengths[i] > 0)
			r->nonnull++;
	r->last_blank = true;
	if (rec->nfields > 0 && rec->values[rec->nfields - 1] != NULL)
	{
		const char *v = rec->values[rec->nfields - 1];

		for (int i = 0; i < rec->lengths[rec->nfields - 1] && r->last_blank; i++)
			r->last_blank = (v[i] == ' ' || v[i] == '\t' || v[i] == '\r' || v[i] == '\n');
	}
	return c->nrecs < DETECT_MAX_RECORDS;
}

static int
cmp_int(const void *a, const void *b)
{
	int			x = *(const int *) a;
	int			y = *(const int *) b;

	return (x > y) - (x < y);
}

/* The next record at or after i that is a row of the table, or -1 */
static int
next_table_row(Candidate *c, int i)
{
	for (; i < c->nrecs; i++)
		if (!c->recs[i].empty && !c->recs[i].bad &&
			c->recs[i].nfields == c->ncolumns)
			return i;
	return -1;
}

/* Field count, table start and score of a tokenized candidate */
static void
judge_candidate(Candidate *c, int64 fixed_skip)
{
	int		   *counts = palloc(sizeof(int) * Max(c->nrecs, 1));
	int			n = 0;
	int			best = 0,
				bestn = 0;
	int64		cons = 0,
				incons = 0,
				pre = 0;

	for (int i = 0; i < c->nrecs; i++)
		if (!c->recs[i].empty && !c->recs[i].bad &&
			(fixed_skip < 0 || i >= fixed_skip))
			counts[n++] = c->recs[i].nfields;
	qsort(counts, n, sizeof(int), cmp_int);
	for (int i = 0; i < n;)
	{
		int			j = i;

		while (j < n && counts[j] == counts[i])
			j++;
		/* ties: more fields */
		if (j - i >= bestn)
		{
			best = counts[i];
			bestn = j - i;
		}
		i = j;
	}
	pfree(counts);
	c->ncolumns = best;

	if (fixed_skip >= 0)
		c->start = (int) Min(fixed_skip, (int64) c->nrecs);
	else
	{
		int			s = next_table_row(c, 0);

		if (s < 0 || s > MAX_PREAMBLE)
			s = 0;
		/* sparse rows on top of a dense one: a preamble too */
		if (s >= 0 && c->ncolumns >= 3 && c->recs[s].nonnull <= 1)
		{
			int			t = s;

			while (t >= 0 && t <= MAX_PREAMBLE && c->recs[t].nonnull <= 1)
				t = next_table_row(c, t + 1);
			if (t >= 0 && t <= MAX_PREAMBLE)
				s = t;
		}
		/*
		 * A header one field short of rows that all end with an empty field
		 * (a delimiter at the end of each data line) is the table's header,
		 * not a preamble.
		 */
		if (s > 0)
		{
			int			h = s - 1;
			int			rows = 0,
						blank = 0;

			while (h > 0 && c->recs[h].empty)
				h--;
			for (int i = s; i < c->nrecs; i++)
				if (!c->recs[i].empty && !c->recs[i].bad &&
					c->recs[i].nfields == c->ncolumns)
				{
					rows++;
					if (c->recs[i].last_blank)
						blank++;
				}
			if (!c->recs[h].empty && !c->recs[h].bad &&
				c->recs[h].nfields == c->ncolumns - 1 &&
				c->recs[h].nonnull == c->recs[h].nfields &&
				rows > 0 && blank * 10 >= rows * 9)
				s = h;
		}
		/* leading empty lines are skipped too (a read's header would take one) */
		if (s <= 0)
		{
			s = 0;
			while (s < c->nrecs && c->recs[s].empty)
				s++;
		}
		c->start = s;
	}

	c->nbad = 0;
	for (int i = 0; i < c->nrecs; i++)
	{
		DetRecord  *r = &c->recs[i];

		if (r->empty)
			continue;
		if (i < c->start)
			pre++;
		else if (r->bad)
		{
			c->nbad++;
			incons++;
		}
		else if (r->nfields == c->ncolumns)
			cons++;
		else
			incons++;
	}
	/* a preamble row costs half an inconsistent one: small files have them */
	c->score = 2 * cons - 2 * incons - pre;
}

/* Is a better than b? */
static bool
candidate_better(const Candidate *a, const Candidate *b)
{
	bool		ta = a->ncolumns >= 2 && a->score > 0;
	bool		tb = b->ncolumns >= 2 && b->score > 0;

	if (ta != tb)
		return ta;
	if (a->score != b->score)
		return a->score > b->score;
	if (a->ncolumns != b->ncolumns)
		return a->ncolumns > b->ncolumns;
	return a->order < b->order;
}

/* Tokenize the sample's first limit bytes as candidate c and judge it */
static void
run_candidate(Sniffer *sn, Candidate *c, int64 limit, int64 fixed_skip, int encoding)
{
	CsvDialect	dialect;

	c->recs = palloc(sizeof(DetRecord) * DETECT_MAX_RECORDS);
	c->nrecs = 0;
	sniff_dialect_init(&dialect, c->delimiter, c->quote, encoding, "", true);

	/*
	 * Raw bytes are enough to find delimiters, except in the encodings
	 * whose trail bytes may be ASCII (Shift_JIS, Big5, GBK, UHC, GB18030:
	 * a trail byte 0x7C is no '|'): those are converted, as a read does.
	 */
	scan_records(sn, &dialect, 0, limit, !PG_VALID_BE_ENCODING(encoding),
				 detect_record, c);
	judge_candidate(c, fixed_skip);
}

static const char tier1_delims[] = {',', ';', '\t', '|'};

/* Does quote open a field somewhere in data[0..limit): at a line's start or after a delimiter? */
static bool
quote_opens_field(Sniffer *sn, char quote, int64 limit)
{
	int64		n = Min(limit, sn->len);

	for (int64 i = 0; i < n; i++)
	{
		char		prev;

		if (sn->data[i] != quote)
			continue;
		if (i == 0)
			return true;
		prev = sn->data[i - 1];
		if (prev == '\n' || prev == '\r' || prev == ',' || prev == ';' ||
			prev == '\t' || prev == '|' || prev == ' ')
			return true;
	}
	return false;
}

static const char tier2_delims[] = {' '};
static const char quotes[] = {'"', '\''};

static void
detect_dialect(Sniffer *sn, const CsvSniffOptions *opts, CsvSniffResult *res,
			   Candidate *chosen)
{
	Candidate  *cands = palloc0(sizeof(Candidate) * 16);
	int			ncands = 0;
	int			best = -1;
	int64		limit = Min(sn->len, (int64) DETECT_MAX_BYTES);
	int			order = 0;

	for (int tier = 1; tier <= 2; tier++)
	{
		const char *delims = tier == 1 ? tier1_delims : tier2_delims;
		int			ndelims = tier == 1 ? lengthof(tier1_delims) : lengthof(tier2_delims);

		/* space only when no other delimiter finds a table */
		if (tier == 2 && best >= 0 && cands[best].ncolumns >= 2 &&
			cands[best].score > 0)
			break;
		for (int d = 0; d < ndelims; d++)
			for (int q = 0; q < lengthof(quotes); q++)
			{
				Candidate  *c = &cands[ncands];

				/* ' is tried where it quotes something; " always */
				if (q > 0 && opts->quote < 0 && !quote_opens_field(sn, quotes[q], limit))
					continue;
				if (opts->delimiter >= 0 && delims[d] != (char) opts->delimiter)
					continue;
				if (opts->quote >= 0 && quotes[q] != (char) opts->quote)
					continue;
				c->delimiter = delims[d];
				c->quote = quotes[q];
				c->tier = tier;
				c->order = order++;
				run_candidate(sn, c, limit, opts->skip_rows, res->encoding);
				/* space: for a table of three columns or more */
				if (tier == 2 && opts->delimiter < 0 && c->ncolumns < 3)
				{
					ncands++;
					continue;
				}
				if (best < 0 || candidate_better(c, &cands[best]))
					best = ncands;
				ncands++;
			}
	}

	/* a delimiter or quote outside the candidates, given by the caller */
	if (best < 0)
	{
		Candidate  *c = &cands[0];

		c->delimiter = opts->delimiter >= 0 ? (char) opts->delimiter : ',';
		c->quote = opts->quote >= 0 ? (char) opts->quote : '"';
		run_candidate(sn, c, limit, opts->skip_rows, res->encoding);
		best = 0;
	}
	*chosen = cands[best];
	res->delimiter = chosen->delimiter;
	res->quote = chosen->quote;
	res->skip_rows = opts->skip_rows >= 0 ? opts->skip_rows : chosen->start;

	/* backslash escapes: what makes the chosen dialect's bad records bad? */
	res->escape = res->quote;
	if (opts->escape >= 0)
		res->escape = (char) opts->escape;
	else if (chosen->nbad > 0)
	{
		int64		nesc = 0;

		for (int64 i = 0; i + 1 < limit; i++)
			if (sn->data[i] == '\\' && sn->data[i + 1] == res->quote)
				nesc++;
		if (nesc >= chosen->nbad)
			res->escape = '\\';
	}
}

/* ---- values ---- */

/*
 * Values that stand for a missing one in files written by R, pandas,
 * spreadsheets, MySQL (\N)...: counted apart while typing, so that the
 * sniffer can tell whether one of them, as null_string, would type a
 * column that it leaves text.  None is a number, boolean, date...: each is
 * text only (fold_marker relies on it).
 */
static const char *const null_markers[] = {
	"NA", "N/A", "n/a", "#N/A", "NULL", "null", "Null", "\\N", "-", "--",
	".", "?", "None", "none", "nil", "(null)"
};
#define NMARKERS			16
StaticAssertDecl(lengthof(null_markers) == NMARKERS, "NMARKERS");
#define MAX_MARKER_LEN		6

typedef struct ColStats
{
	uint32		mask;			/* types every value so far fits */
	int64		nvalues;		/* non-NULL values */
	int64		nnull;
	bool		bool_word;		/* a boolean written as a word (not 0/1) */
	bool		real_number;	/* a number that is not NaN or Infinity */
	bool		exponent;		/* a number with an exponent */
	bool		special;		/* NaN or Infinity */
	int			max_scale;
	int			max_intdigits;
	bool		day_first;		/* a date D/M/Y with D > 12 */
	bool		month_first;	/* a date M/D/Y with D > 12 */
	bool		slash_date;		/* a numeric date with the year last */
	int64		nleadzero;		/* numbers with a leading zero */
	int64		nnonnumber;		/* values that are no number at all */
	char	   *leadzero_example;
	int64		ncomma;			/* numbers with commas: 1,5 1.234,56 1,234.5 */
	char	   *comma_example;
	bool		r0_repeated;	/* the first record's value occurs again */
	int64		nmarker[NMARKERS];	/* null_markers[] seen, not yet classified */
} ColStats;

static void
colstats_init(ColStats *cs)
{
	memset(cs, 0, sizeof(ColStats));
	cs->mask = ALL_BITS;
}

static void
colstats_merge(ColStats *into, const ColStats *from)
{
	into->mask &= from->mask;
	into->nvalues += from->nvalues;
	into->nnull += from->nnull;
	into->bool_word |= from->bool_word;
	into->real_number |= from->real_number;
	into->exponent |= from->exponent;
	into->special |= from->special;
	into->max_scale = Max(into->max_scale, from->max_scale);
	into->max_intdigits = Max(into->max_intdigits, from->max_intdigits);
	into->day_first |= from->day_first;
	into->month_first |= from->month_first;
	into->slash_date |= from->slash_date;
	into->nleadzero += from->nleadzero;
	into->nnonnumber += from->nnonnumber;
	if (into->leadzero_example == NULL)
		into->leadzero_example = from->leadzero_example;
	into->ncomma += from->ncomma;
	if (into->comma_example == NULL)
		into->comma_example = from->comma_example;
	for (int k = 0; k < NMARKERS; k++)
		into->nmarker[k] += from->nmarker[k];
	into->r0_repeated |= from->r0_repeated;
}

#define IS_DIGIT(c)		((c) >= '0' && (c) <= '9')
#define IS_SPACE(c)		((c) == ' ' || (c) == '\t' || (c) == '\n' || (c) == '\r' || \
						 (c) == '\v' || (c) == '\f')
#define IS_ALPHA(c)		(((c) >= 'a' && (c) <= 'z') || ((c) >= 'A' && (c) <= 'Z'))
#define IS_HEX(c)		(IS_DIGIT(c) || ((c) >= 'a' && (c) <= 'f') || ((c) >= 'A' && (c) <= 'F'))

/*
 * Numbers: [ws][+-]digits[.digits][(e|E)[+-]digits][ws], as int2/4/8in,
 * numeric_in and float8in all accept (digits on at least one side of the
 * point).  Returns the mask of the number types the value fits, or 0 when
 * it is no number; *leadzero when it has an integer part of two digits or
 * more that starts with 0 (a code: 00501).
 */
static uint32
classify_number(const char *s, ColStats *cs, bool *leadzero)
{
	const char *p = s;
	bool		neg = false;
	const char *int_start;
	int			nint,
				nfrac = 0,
				lead = 0,
				sig;
	bool		point = false;
	int			exp = 0;
	bool		has_exp = false;
	uint32		mask;

	*leadzero = false;
	while (IS_SPACE(*p))
		p++;
	if (*p == '+' || *p == '-')
		neg = (*p++ == '-');
	int_start = p;
	while (IS_DIGIT(*p))
		p++;
	nint = p - int_start;
	if (*p == '.')
	{
		const char *f = ++p;

		point = true;
		while (IS_DIGIT(*p))
			p++;
		nfrac = p - f;
	}
	if (nint + nfrac == 0)
		return 0;
	if (*p == 'e' || *p == 'E')
	{
		const char *e = p + 1;
		int			nexp = 0;
		bool		eneg = false;

		if (*e == '+' || *e == '-')
			eneg = (*e++ == '-');
		while (IS_DIGIT(*e))
		{
			if (exp < 100000)
				exp = exp * 10 + (*e - '0');
			e++;
			nexp++;
		}
		if (nexp == 0)
			return 0;
		if (eneg)
			exp = -exp;
		has_exp = true;
		p = e;
	}
	while (IS_SPACE(*p))
		p++;
	if (*p != '\0')
		return 0;

	if (nint >= 2 && int_start[0] == '0')
	{
		*leadzero = true;
		return 0;
	}

	/* significant digits (leading zeros of the integer part and fraction) */
	while (lead < nint && int_start[lead] == '0')
		lead++;
	if (lead == nint)
	{
		const char *f = int_start + nint + (point ? 1 : 0);
		int			z = 0;

		while (z < nfrac && f[z] == '0')
			z++;
		sig = nfrac - z;
	}
	else
		sig = nint - lead + nfrac;

	cs->real_number = true;
	if (has_exp)
	{
		cs->exponent = true;
		/* well inside double precision's range, and numeric's */
		if (exp > 300 || exp < -300)
			return 0;
		return M(CSV_SNIFF_NUMERIC) | (sig <= 15 ? M(CSV_SNIFF_FLOAT8) : 0);
	}
	cs->max_scale = Max(cs->max_scale, nfrac);
	cs->max_intdigits = Max(cs->max_intdigits, nint - lead);
	mask = M(CSV_SNIFF_NUMERIC) | (sig <= 15 ? M(CSV_SNIFF_FLOAT8) : 0);
	if (!point && nint <= 19)
	{
		uint64		v = 0;
		bool		overflow = false;

		for (int i = 0; i < nint; i++)
		{
			uint64		d = int_start[i] - '0';

			if (v > (PG_UINT64_MAX - d) / 10)
			{
				overflow = true;
				break;
			}
			v = v * 10 + d;
		}
		if (!overflow)
		{
			if (v <= (uint64) PG_INT64_MAX || (neg && v == (uint64) PG_INT64_MAX + 1))
				mask |= M(CSV_SNIFF_INT8);
			if (v <= (uint64) PG_INT32_MAX || (neg && v == (uint64) PG_INT32_MAX + 1))
				mask |= M(CSV_SNIFF_INT4);
			if (v <= (uint64) PG_INT16_MAX || (neg && v == (uint64) PG_INT16_MAX + 1))
				mask |= M(CSV_SNIFF_INT2);
		}
		/* 0 and 1 are booleans too (boolin reads them) */
		if (s[0] == '0' && s[1] == '\0')
			mask |= M(CSV_SNIFF_BOOL);
		if (s[0] == '1' && s[1] == '\0')
			mask |= M(CSV_SNIFF_BOOL);
	}
	return mask;
}

/*
 * A number written with a decimal comma, [ws][+-]digits[.ddd...],digits[ws]
 * (1,5  -0,25  1.234,56), or with thousands commas (123,000  1,234.5):
 * numeric_in takes neither (and which 123,000 is, the sniffer cannot tell).
 */
static bool
is_comma_number(const char *s)
{
	const char *p = s;
	int			n;

	while (IS_SPACE(*p))
		p++;
	if (*p == '+' || *p == '-')
		p++;
	for (n = 0; IS_DIGIT(*p); p++)
		n++;
	if (n == 0)
		return false;
	if (n <= 3 && *p == ',')
	{
		/* 1,234,567.89 */
		const char *q = p;

		while (*q == ',')
		{
			for (n = 0, q++; IS_DIGIT(*q); q++)
				n++;
			if (n != 3)
				break;
		}
		if (n == 3 && *q == '.')
			for (n = 0, q++; IS_DIGIT(*q); q++)
				n++;
		while (n > 0 && IS_SPACE(*q))
			q++;
		if (n > 0 && *q == '\0')
			return true;
	}
	if (*p == '.')
	{
		if (n > 3)
			return false;
		while (*p == '.')
		{
			p++;
			for (n = 0; IS_DIGIT(*p); p++)
				n++;
			if (n != 3)
				return false;
		}
	}
	if (*p++ != ',')
		return false;
	for (n = 0; IS_DIGIT(*p); p++)
		n++;
	if (n == 0)
		return false;
	while (IS_SPACE(*p))
		p++;
	return *p == '\0';
}

/* NaN, Infinity, +Infinity, -Infinity: numeric_in and float8in read them */
static bool
is_special_number(const char *s)
{
	if (pg_strcasecmp(s, "nan") == 0)
		return true;
	if (*s == '+' || *s == '-')
		s++;
	return pg_strcasecmp(s, "infinity") == 0;
}

/* boolin's words (whitespace around them is boolin's too, not here) */
static bool
is_bool_word(const char *s)
{
	static const char *const words[] = {
		"t", "f", "true", "false", "y", "n", "yes", "no", "on", "off"
	};

	for (int i = 0; i < lengthof(words); i++)
		if (pg_strcasecmp(s, words[i]) == 0)
			return true;
	return false;
}

static bool
is_uuid(const char *s)
{
	static const int groups[] = {8, 4, 4, 4, 12};

	for (int g = 0; g < 5; g++)
	{
		for (int i = 0; i < groups[g]; i++, s++)
			if (!IS_HEX(*s))
				return false;
		if (g < 4 && *s++ != '-')
			return false;
	}
	return *s == '\0';
}

static bool
is_month_name(const char *s, int len)
{
	static const char *const months[] = {
		"jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct",
		"nov", "dec", "january", "february", "march", "april", "june", "july",
		"august", "september", "sept", "october", "november", "december"
	};

	for (int i = 0; i < lengthof(months); i++)
		if ((int) strlen(months[i]) == len && pg_strncasecmp(s, months[i], len) == 0)
			return true;
	return false;
}

/*
 * A date: three parts, numbers with the same separator (- / .) and a year
 * of four digits first or last, or a month name, a day and a year of four
 * digits separated by - / space or comma.  Only the shape: date_in decides.
 */
static bool
is_date_shape(const char *s, int len, ColStats *cs)
{
	int			start[3],
				plen[3];
	bool		alpha[3];
	char		seps[2] = {0, 0};
	int			nparts = 0;
	int			i = 0;
	int			nmonth = 0,
				nyear = 0;

	while (i < len)
	{
		int			b = i;

		if (nparts == 3)
			return false;
		if (IS_DIGIT(s[i]))
		{
			while (i < len && IS_DIGIT(s[i]))
				i++;
			alpha[nparts] = false;
		}
		else if (IS_ALPHA(s[i]))
		{
			while (i < len && IS_ALPHA(s[i]))
				i++;
			alpha[nparts] = true;
		}
		else
			return false;
		start[nparts] = b;
		plen[nparts] = i - b;
		nparts++;
		if (i == len)
			break;
		if (nparts == 3)
			return false;
		/* the separator: one of - / . or a space, or a comma and a space */
		if (s[i] == ',' && i + 1 < len && s[i + 1] == ' ')
		{
			seps[nparts - 1] = ',';
			i += 2;
		}
		else if (s[i] == '-' || s[i] == '/' || s[i] == '.' || s[i] == ' ')
			seps[nparts - 1] = s[i++];
		else
			return false;
		if (i == len)
			return false;
	}
	if (nparts != 3)
		return false;
	for (int p = 0; p < 3; p++)
	{
		if (alpha[p])
		{
			if (!is_month_name(s + start[p], plen[p]))
				return false;
			nmonth++;
		}
		else if (plen[p] == 4)
			nyear++;
		else if (plen[p] > 2)
			return false;
	}
	if (nyear != 1 || nmonth > 1 || plen[1] == 4)
		return false;
	if (nmonth == 0)
	{
		int			a,
					b;

		/* numbers: one separator, - / or . */
		if (seps[0] != seps[1] || seps[0] == ' ' || seps[0] == ',')
			return false;
		if (plen[0] == 4)
			return true;		/* Y-M-D: DateStyle does not matter */
		/* D/M/Y or M/D/Y: the evidence for the order */
		a = atoi(s + start[0]);
		b = atoi(s + start[1]);
		cs->slash_date = true;
		if (a > 12)
			cs->day_first = true;
		if (b > 12)
			cs->month_first = true;
	}
	return true;
}

/* H:MM[:SS[.f]][ ][AM|PM] */
static bool
is_time_shape(const char *s, int len)
{
	int			i = 0,
				n;

	for (n = 0; i < len && IS_DIGIT(s[i]); i++)
		n++;
	if (n < 1 || n > 2 || i >= len || s[i] != ':')
		return false;
	i++;
	for (n = 0; i < len && IS_DIGIT(s[i]); i++)
		n++;
	if (n != 2)
		return false;
	if (i < len && s[i] == ':')
	{
		i++;
		for (n = 0; i < len && IS_DIGIT(s[i]); i++)
			n++;
		if (n != 2)
			return false;
		if (i < len && s[i] == '.')
		{
			i++;
			for (n = 0; i < len && IS_DIGIT(s[i]); i++)
				n++;
			if (n < 1)
				return false;
		}
	}
	if (i < len && s[i] == ' ')
		i++;
	if (i + 2 == len && (s[i] == 'A' || s[i] == 'a' || s[i] == 'P' || s[i] == 'p') &&
		(s[i + 1] == 'M' || s[i + 1] == 'm'))
		return true;
	return i == len && s[len - 1] != ' ';
}

/* Z, UTC, GMT, or an offset (+|-)H[H][[:]MM] */
static bool
is_zone_shape(const char *s, int len)
{
	int			n = 0,
				i = 1;

	if (len == 1 && (s[0] == 'Z' || s[0] == 'z'))
		return true;
	if (len == 3 && (pg_strncasecmp(s, "utc", 3) == 0 || pg_strncasecmp(s, "gmt", 3) == 0))
		return true;
	if (len < 2 || (s[0] != '+' && s[0] != '-'))
		return false;
	while (i < len && IS_DIGIT(s[i]) && n < 2)
		i++, n++;
	if (n == 0)
		return false;
	if (i == len)
		return true;
	if (s[i] == ':')
		i++;
	return len - i == 2 && IS_DIGIT(s[i]) && IS_DIGIT(s[i + 1]);
}

/*
 * A timestamp: a date shape, 'T' or a space, a time shape, then optionally
 * a zone.  Returns 0, or the types: with a zone timestamptz only.
 */
static uint32
classify_timestamp(const char *s, int len, ColStats *cs)
{
	const char *colon = memchr(s, ':', len);
	int			tstart,
				tend;
	ColStats	tmp;

	if (colon == NULL)
		return 0;
	tstart = colon - s;
	while (tstart > 0 && IS_DIGIT(s[tstart - 1]))
		tstart--;
	if (tstart < 2 || (s[tstart - 1] != ' ' && s[tstart - 1] != 'T'))
		return 0;
	/* the time's end: its last digit, or AM/PM */
	tend = colon - s + 1;
	while (tend < len && (IS_DIGIT(s[tend]) || s[tend] == ':' || s[tend] == '.'))
		tend++;
	if (tend + 1 < len && s[tend] == ' ' &&
		(s[tend + 1] == 'A' || s[tend + 1] == 'a' || s[tend + 1] == 'P' || s[tend + 1] == 'p'))
		tend += 3;
	else if (tend + 1 < len &&
			 (s[tend] == 'A' || s[tend] == 'a' || s[tend] == 'P' || s[tend] == 'p') &&
			 (s[tend + 1] == 'M' || s[tend + 1] == 'm'))
		tend += 2;
	if (tend > len || !is_time_shape(s + tstart, tend - tstart))
		return 0;
	memset(&tmp, 0, sizeof(tmp));
	if (!is_date_shape(s, tstart - 1, &tmp))
		return 0;
	cs->slash_date |= tmp.slash_date;
	cs->day_first |= tmp.day_first;
	cs->month_first |= tmp.month_first;
	if (tend == len)
		return M(CSV_SNIFF_TIMESTAMP) | M(CSV_SNIFF_TIMESTAMPTZ);
	if (s[tend] == ' ')
		tend++;
	if (is_zone_shape(s + tend, len - tend))
		return M(CSV_SNIFF_TIMESTAMPTZ);
	return 0;
}

/*
 * Catch a data error (SQLSTATE class 22) of a built-in input function that
 * touches no shared state; anything else is re-thrown.
 */
static bool
input_accepts(PGFunction fn, const char *s, Oid typioparam)
{
	MemoryContext oldcxt = CurrentMemoryContext;
	bool		ok = true;

	PG_TRY();
	{
		(void) DirectFunctionCall3(fn, CStringGetDatum(s),
								   ObjectIdGetDatum(typioparam),
								   Int32GetDatum(-1));
	}
	PG_CATCH();
	{
		if (ERRCODE_TO_CATEGORY(geterrcode()) != ERRCODE_DATA_EXCEPTION)
			PG_RE_THROW();
		MemoryContextSwitchTo(oldcxt);
		FlushErrorState();
		ok = false;
	}
	PG_END_TRY();
	return ok;
}

static bool
jsonb_accepts(const char *s)
{
	MemoryContext oldcxt = CurrentMemoryContext;
	bool		ok = true;

	PG_TRY();
	{
		(void) DirectFunctionCall1(jsonb_in, CStringGetDatum(s));
	}
	PG_CATCH();
	{
		if (ERRCODE_TO_CATEGORY(geterrcode()) != ERRCODE_DATA_EXCEPTION)
			PG_RE_THROW();
		MemoryContextSwitchTo(oldcxt);
		FlushErrorState();
		ok = false;
	}
	PG_END_TRY();
	return ok;
}

/* The types value s (not NULL) fits, recorded in cs */
static void
classify_value(const char *s, int len, ColStats *cs, MemoryContext keep)
{
	uint32		mask = M(CSV_SNIFF_TEXT);
	bool		leadzero = false;
	uint32		num;

	cs->nvalues++;
	num = classify_number(s, cs, &leadzero);
	if (num != 0)
		mask |= num;
	else if (leadzero)
	{
		cs->nleadzero++;
		if (cs->leadzero_example == NULL)
		{
			cs->leadzero_example = MemoryContextAlloc(keep, Min(len, MAX_EXAMPLE) + 1);
			memcpy(cs->leadzero_example, s, Min(len, MAX_EXAMPLE));
			cs->leadzero_example[Min(len, MAX_EXAMPLE)] = '\0';
		}
	}
	else
	{
		cs->nnonnumber++;
		if (is_special_number(s))
		{
			cs->special = true;
			mask |= M(CSV_SNIFF_NUMERIC) | M(CSV_SNIFF_FLOAT8);
		}
		else if (is_bool_word(s))
		{
			cs->bool_word = true;
			mask |= M(CSV_SNIFF_BOOL);
		}
		else if (len == 36 && is_uuid(s))
			mask |= M(CSV_SNIFF_UUID);
		else if (len >= 2 && (s[0] == '{' || s[0] == '[') &&
				 (s[len - 1] == '}' || s[len - 1] == ']'))
		{
			if (jsonb_accepts(s))
				mask |= M(CSV_SNIFF_JSONB);
		}
		else if (len >= 6 && len <= 64)
		{
			if (is_date_shape(s, len, cs))
				mask |= M(CSV_SNIFF_DATE) | M(CSV_SNIFF_TIMESTAMP) |
					M(CSV_SNIFF_TIMESTAMPTZ);
			else if (is_time_shape(s, len))
				mask |= M(CSV_SNIFF_TIME);
			else
				mask |= classify_timestamp(s, len, cs);
		}
		else if (len >= 4 && is_time_shape(s, len))
			mask |= M(CSV_SNIFF_TIME);
		if (mask == M(CSV_SNIFF_TEXT) && len >= 3 && is_comma_number(s))
		{
			cs->ncomma++;
			if (cs->comma_example == NULL)
			{
				cs->comma_example = MemoryContextAlloc(keep, Min(len, MAX_EXAMPLE) + 1);
				memcpy(cs->comma_example, s, Min(len, MAX_EXAMPLE));
				cs->comma_example[Min(len, MAX_EXAMPLE)] = '\0';
			}
		}
	}
	cs->mask &= mask;
}

/* ---- types ---- */

static const char *const type_names[CSV_SNIFF_NTYPES] = {
	"text", "boolean", "smallint", "integer", "bigint", "numeric",
	"double precision", "date", "time", "timestamp", "timestamptz", "uuid",
	"jsonb"
};

static const Oid type_oids[CSV_SNIFF_NTYPES] = {
	TEXTOID, BOOLOID, INT2OID, INT4OID, INT8OID, NUMERICOID, FLOAT8OID,
	DATEOID, TIMEOID, TIMESTAMPOID, TIMESTAMPTZOID, UUIDOID, JSONBOID
};

const char *
csv_sniff_type_name(CsvSniffType type)
{
	return type_names[type];
}

/*
 * The narrowest type every value of the column fits.  A partial sample
 * widens: integers are bigint (ids and counters grow further down a file),
 * and numeric has no typmod (csv_sniff_file), unless the sample is the
 * whole file.
 */
static CsvSniffType
choose_type(const ColStats *cs, bool whole)
{
	uint32		m = cs->mask;

	if (cs->nvalues == 0)
		return CSV_SNIFF_TEXT;
	if ((m & M(CSV_SNIFF_BOOL)) && cs->bool_word)
		return CSV_SNIFF_BOOL;
	if ((m & NUMBER_BITS) && cs->real_number)
	{
		if ((m & M(CSV_SNIFF_INT2)) && whole)
			return CSV_SNIFF_INT2;
		if ((m & M(CSV_SNIFF_INT4)) && whole)
			return CSV_SNIFF_INT4;
		if (m & M(CSV_SNIFF_INT8))
			return CSV_SNIFF_INT8;
		if (cs->exponent && (m & M(CSV_SNIFF_FLOAT8)))
			return CSV_SNIFF_FLOAT8;
		if (m & M(CSV_SNIFF_NUMERIC))
			return CSV_SNIFF_NUMERIC;
		return CSV_SNIFF_FLOAT8;
	}
	if (m & M(CSV_SNIFF_DATE))
		return CSV_SNIFF_DATE;
	if (m & M(CSV_SNIFF_TIMESTAMP))
		return CSV_SNIFF_TIMESTAMP;
	if (m & M(CSV_SNIFF_TIMESTAMPTZ))
		return CSV_SNIFF_TIMESTAMPTZ;
	if (m & M(CSV_SNIFF_TIME))
		return CSV_SNIFF_TIME;
	if (m & M(CSV_SNIFF_UUID))
		return CSV_SNIFF_UUID;
	if (m & M(CSV_SNIFF_JSONB))
		return CSV_SNIFF_JSONB;
	return CSV_SNIFF_TEXT;
}

/* Types whose shape check is not the whole story: checked by the input function */
static bool
type_needs_check(CsvSniffType t)
{
	return t == CSV_SNIFF_DATE || t == CSV_SNIFF_TIME ||
		t == CSV_SNIFF_TIMESTAMP || t == CSV_SNIFF_TIMESTAMPTZ;
}

static bool
type_accepts(CsvSniffType t, const char *s)
{
	Datum		d;

	switch (t)
	{
		case CSV_SNIFF_DATE:
			return csv_fast_input(CSV_FAST_DATE, s, &d) ||
				input_accepts(date_in, s, InvalidOid);
		case CSV_SNIFF_TIME:
			return input_accepts(time_in, s, InvalidOid);
		case CSV_SNIFF_TIMESTAMP:
			return csv_fast_input(CSV_FAST_TIMESTAMP, s, &d) ||
				input_accepts(timestamp_in, s, InvalidOid);
		case CSV_SNIFF_TIMESTAMPTZ:
			return csv_fast_input(CSV_FAST_TIMESTAMPTZ, s, &d) ||
				input_accepts(timestamptz_in, s, InvalidOid);
		default:
			return true;
	}
}

/* ---- the typing pass ---- */

typedef struct TypePass
{
	Sniffer    *sn;
	const CsvDialect *dialect;
	int			ncols;
	int64		skip;			/* records before the first record */
	int64		seen;			/* records handed out */
	/* the first record after skip_rows: the header, or data */
	bool		have_r0;
	int			r0_nfields;
	char	  **r0_values;
	int64		r0_line;
	ColStats   *r0;
	ColStats   *rest;			/* the records after it */
	int64		nrest;
	int64		nbad;
	int64		bad_line;
	char	   *bad_message;
	int64		nwrong;
	int64		wrong_line;
	int			wrong_count;
	bool		any_marker;		/* a null marker was seen in rest */
	ColStats   *unmarked;		/* rest before the markers were folded in */
	/*
	 * The records right after r0, one a line, kept apart too (merged into
	 * rest by run_types): header rows, maybe.
	 */
	int			nfollow;
	bool		follow_done;
	char	  **follow_values[MAX_HEADER_ROWS - 1];
	bool		follow_marker[MAX_HEADER_ROWS - 1];	/* holds a null marker */
	ColStats   *follow[MAX_HEADER_ROWS - 1];
	ColStats   *tail;			/* rest without them (markers unfolded) */
	/* checking pass */
	CsvSniffType *check;		/* type to check per column, or TEXT: none */
	bool		check_r0;
	int64	   *failed_line;	/* first value the type refused, per column */
	char	  **failed_value;
	/* the outcome */
	bool		header;
	CsvSniffType *type;			/* per column: choose_type, or TEXT if refused */
	MemoryContext result_cxt;
	MemoryContext value_cxt;
} TypePass;

/* Index of s (of length len) in null_markers[], or -1 */
static inline int
marker_index(const char *s, int len)
{
	if (len == 0 || len > MAX_MARKER_LEN || IS_DIGIT(s[0]))
		return -1;
	for (int k = 0; k < NMARKERS; k++)
		if (null_markers[k][0] == s[0] && strlen(null_markers[k]) == len &&
			memcmp(null_markers[k], s, len) == 0)
			return k;
	return -1;
}

/*
 * Classify the null markers counted in cs as the values they are (text:
 * one call does what n calls would, but for the counts).
 */
static void
fold_marker(ColStats *cs, int k, int64 n, MemoryContext keep)
{
	const char *m = null_markers[k];

	if (n <= 0)
		return;
	classify_value(m, strlen(m), cs, keep);
	cs->nvalues += n - 1;
	cs->nnonnumber += n - 1;
}

/* the field after COPY's NULL rules (convert.c's apply_null_rule) */
static inline const char *
field_value(const CsvDialect *d, CsvRecord *rec, int i)
{
	const char *s = rec->values[i];

	if (d->null_len > 0)
	{
		if (s == NULL)
			return "";
		if (rec->lengths[i] == d->null_len && memcmp(s, d->null_string, d->null_len) == 0)
			return NULL;
	}
	return s;
}

static bool
type_record(void *arg, CsvRecord *rec)
{
	TypePass   *tp = (TypePass *) arg;
	int64		n = tp->seen++;
	MemoryContext oldcxt;
	int			k;
	ColStats   *follow = NULL;

	if (n < tp->skip)
		return true;
	if (!tp->have_r0)
	{
		/* the first record: kept aside until the header is decided */
		tp->have_r0 = true;
		tp->r0_line = rec->line_no;
		if (rec->bad)
		{
			tp->r0_nfields = 0;
			tp->nbad++;
			tp->bad_line = rec->line_no;
			tp->bad_message = MemoryContextStrdup(tp->result_cxt, rec->bad->message);
			return true;
		}
		oldcxt = MemoryContextSwitchTo(tp->result_cxt);
		tp->r0_nfields = rec->nfields;
		tp->r0_values = palloc0(sizeof(char *) * Max(Max(rec->nfields, tp->ncols), 1));
		for (int i = 0; i < rec->nfields; i++)
		{
			const char *s = field_value(tp->dialect, rec, i);

			if (s != NULL)
				tp->r0_values[i] = pstrdup(s);
		}
		MemoryContextSwitchTo(oldcxt);
		/* a header may be one field short (data lines end with a delimiter) */
		if (rec->nfields == tp->ncols || rec->nfields == tp->ncols - 1)
			for (int i = 0; i < tp->ncols; i++)
			{
				if (tp->r0_values[i] == NULL)
					tp->r0[i].nnull++;
				else
					classify_value(tp->r0_values[i], strlen(tp->r0_values[i]),
								   &tp->r0[i], tp->result_cxt);
			}
		return true;
	}
	if (rec->bad)
	{
		if (tp->nbad++ == 0)
		{
			tp->bad_line = rec->line_no;
			tp->bad_message = MemoryContextStrdup(tp->result_cxt, rec->bad->message);
		}
		return true;
	}
	if (rec->nfields != tp->ncols)
	{
		/* an empty line in a file of several columns is skipped by reads */
		if (tp->nwrong++ == 0)
		{
			tp->wrong_line = rec->line_no;
			tp->wrong_count = rec->nfields;
		}
		return true;
	}
	tp->nrest++;

	/* the records right after the first, one a line: header rows, maybe */
	if (!tp->follow_done)
	{
		int			j = tp->nfollow;

		if (j < MAX_HEADER_ROWS - 1 && tp->r0_values &&
			n == tp->skip + 1 + j && rec->line_no == tp->r0_line + 1 + j)
		{
			follow = tp->follow[j];
			tp->follow_values[j] = MemoryContextAllocZero(tp->result_cxt,
														  sizeof(char *) * Max(tp->ncols, 1));
			tp->nfollow++;
		}
		else
			tp->follow_done = true;
	}
	oldcxt = MemoryContextSwitchTo(tp->value_cxt);
	for (int i = 0; i < tp->ncols; i++)
	{
		const char *s = field_value(tp->dialect, rec, i);
		ColStats   *cs = follow ? &follow[i] : &tp->rest[i];

		if (follow && s != NULL)
			tp->follow_values[tp->nfollow - 1][i] = MemoryContextStrdup(tp->result_cxt, s);
		if (s == NULL)
		{
			cs->nnull++;
			continue;
		}
		if ((k = marker_index(s, rec->lengths[i])) >= 0)
		{
			cs->nmarker[k]++;
			tp->any_marker = true;
			if (follow)
				tp->follow_marker[tp->nfollow - 1] = true;
		}
		else
			classify_value(s, rec->lengths[i], cs, tp->result_cxt);
		if (!cs->r0_repeated && i < tp->r0_nfields && tp->r0_values &&
			tp->r0_values[i] && strcmp(tp->r0_values[i], s) == 0)
			cs->r0_repeated = true;
	}
	MemoryContextSwitchTo(oldcxt);
	MemoryContextReset(tp->value_cxt);
	return true;
}

/* The checking pass: each checked column's type must accept each value */
static bool
check_record(void *arg, CsvRecord *rec)
{
	TypePass   *tp = (TypePass *) arg;
	int64		n = tp->seen++;
	MemoryContext oldcxt;

	if (n < tp->skip || rec->bad || rec->nfields != tp->ncols)
		return true;
	if (n == tp->skip && !tp->check_r0)
		return true;
	oldcxt = MemoryContextSwitchTo(tp->value_cxt);
	for (int i = 0; i < tp->ncols; i++)
	{
		const char *s;

		if (tp->check[i] == CSV_SNIFF_TEXT || tp->failed_line[i] > 0)
			continue;
		s = field_value(tp->dialect, rec, i);
		if (s != NULL && !type_accepts(tp->check[i], s))
		{
			tp->failed_line[i] = rec->line_no;
			tp->failed_value[i] = MemoryContextStrdup(tp->result_cxt,
													  pnstrdup(s, Min(strlen(s), MAX_EXAMPLE)));
		}
	}
	MemoryContextSwitchTo(oldcxt);
	MemoryContextReset(tp->value_cxt);
	return true;
}

/* ---- the header and the names ---- */

/* Does the first record's value (its stats) fit type t's family? */
static bool
value_fits(const ColStats *v, CsvSniffType t)
{
	switch (t)
	{
		case CSV_SNIFF_INT2:
		case CSV_SNIFF_INT4:
		case CSV_SNIFF_INT8:
		case CSV_SNIFF_NUMERIC:
		case CSV_SNIFF_FLOAT8:
			return (v->mask & NUMBER_BITS) != 0;
		case CSV_SNIFF_DATE:
		case CSV_SNIFF_TIMESTAMP:
		case CSV_SNIFF_TIMESTAMPTZ:
			return (v->mask & (M(CSV_SNIFF_DATE) | M(CSV_SNIFF_TIMESTAMP) |
							   M(CSV_SNIFF_TIMESTAMPTZ))) != 0;
		default:
			return (v->mask & M(t)) != 0;
	}
}

static bool
decide_header(TypePass *tp, bool whole)
{
	int			fit = 0,
				misfit = 0;

	if (!tp->have_r0 || tp->r0_values == NULL || tp->r0_nfields == 0)
		return false;
	if (tp->nrest == 0)
	{
		/* one record: a header when every value is there and is no number, date... */
		if (tp->r0_nfields != tp->ncols)
			return false;
		for (int i = 0; i < tp->ncols; i++)
			if (tp->r0_values[i] == NULL || tp->r0_values[i][0] == '\0' ||
				tp->r0[i].mask != M(CSV_SNIFF_TEXT))
				return false;
		return true;
	}
	if (tp->r0_nfields != tp->ncols && tp->r0_nfields != tp->ncols - 1)
		return false;
	for (int i = 0; i < tp->ncols; i++)
	{
		CsvSniffType t = choose_type(&tp->rest[i], whole);

		if (t == CSV_SNIFF_TEXT || tp->r0_values[i] == NULL)
			continue;
		if (value_fits(&tp->r0[i], t))
			fit++;
		else
			misfit++;
	}
	if (misfit != fit)
		return misfit > fit;
	/* no evidence from types: names are there, distinct, not data again */
	for (int i = 0; i < tp->r0_nfields; i++)
	{
		if (tp->r0_values[i] == NULL || tp->r0_values[i][0] == '\0' ||
			tp->rest[i].r0_repeated)
			return false;
		for (int j = 0; j < i; j++)
			if (strcmp(tp->r0_values[i], tp->r0_values[j]) == 0)
				return false;
	}
	return true;
}

/* *v without its leading white space, and the length without the trailing */
static int
trimmed(const char **v)
{
	int			len;

	if (*v == NULL)
		return 0;
	while (IS_SPACE(**v))
		(*v)++;
	len = strlen(*v);
	while (len > 0 && IS_SPACE((*v)[len - 1]))
		len--;
	return len;
}

/*
 * Trim, fill in, shorten to NAMEDATALEN - 1 bytes and make unique.  above:
 * the values of the header rows above the header (nabove of them, ncols
 * values each): a column's name joins the distinct values of its column
 * in them and the header, top down, with spaces; an empty value above
 * takes the one on its left (a group's name over several columns).
 */
static char **
make_names(TypePass *tp, bool header, char ***above, int nabove)
{
	char	  **names = palloc0(sizeof(char *) * Max(tp->ncols, 1));

	for (int i = 0; i < tp->ncols; i++)
	{
		char	   *name = NULL;
		StringInfoData buf;
		char	   *parts[MAX_HEADER_ROWS];

		initStringInfo(&buf);
		for (int r = 0; r <= nabove && header; r++)
		{
			const char *v = NULL;
			int			len = 0;
			bool		seen = false;

			parts[r] = NULL;
			/* a value above, or the nearest one on its left */
			for (int j = i; r < nabove && j >= 0 && len == 0; j--)
			{
				v = above[r][j];
				len = trimmed(&v);
			}
			if (r == nabove && i < tp->r0_nfields && tp->r0_values &&
				(v = tp->r0_values[i]) != NULL)
				len = trimmed(&v);
			if (len == 0)
				continue;
			parts[r] = pnstrdup(v, len);
			for (int r2 = 0; r2 < r && !seen; r2++)
				seen = parts[r2] && strcmp(parts[r2], parts[r]) == 0;
			if (seen)
				continue;
			if (buf.len > 0)
				appendStringInfoChar(&buf, ' ');
			appendStringInfoString(&buf, parts[r]);
		}
		if (buf.len > 0)
			name = pnstrdup(buf.data, pg_mbcliplen(buf.data, buf.len, NAMEDATALEN - 1));
		pfree(buf.data);
		if (name == NULL)
			name = psprintf("c%d", i + 1);
		/* unique, also when letter case is ignored: name_2, name_3... */
		{
			char	   *base = name;

			for (int suffix = 2;; suffix++)
			{
				bool		clash = false;
				char		sfx[16];
				int			slen;

				for (int j = 0; j < i && !clash; j++)
					clash = pg_strcasecmp(names[j], name) == 0;
				if (!clash)
					break;
				slen = snprintf(sfx, sizeof(sfx), "_%d", suffix);
				name = psprintf("%.*s%s",
								pg_mbcliplen(base, strlen(base), NAMEDATALEN - 1 - slen),
								base, sfx);
			}
		}
		names[i] = name;
	}
	return names;
}

/* ---- the whole sniff ---- */

void
csv_sniff_options_init(CsvSniffOptions *opts)
{
	opts->delimiter = -1;
	opts->quote = -1;
	opts->escape = -1;
	opts->header = -1;
	opts->null_string = NULL;
	opts->encoding = -1;
	opts->skip_rows = -1;
	opts->sample_size = 0;
}

static void
note(CsvSniffResult *res, const char *fmt,...) pg_attribute_printf(2, 3);

static void
note(CsvSniffResult *res, const char *fmt,...)
{
	StringInfoData buf;

	initStringInfo(&buf);
	for (;;)
	{
		va_list		args;
		int			needed;

		va_start(args, fmt);
		needed = appendStringInfoVA(&buf, fmt, args);
		va_end(args);
		if (needed == 0)
			break;
		enlargeStringInfo(&buf, needed);
	}
	res->notes = lappend(res->notes, buf.data);
}

static const char *
date_order_name(void)
{
	switch (DateOrder)
	{
		case DATEORDER_DMY:
			return "DMY";
		case DATEORDER_MDY:
			return "MDY";
		default:
			return "YMD";
	}
}

/*
 * The typing pass over the records after skip_rows, with the dialect found
 * and null_string: the columns' stats, the header (opt_header: -1 detect),
 * the check of date and time types by their input functions, and each
 * column's type.  tp->ncols is 0 when there is nothing to type.  Allocates
 * in the current memory context (work).
 */
static void
run_types(Sniffer *sn, TypePass *tp, const CsvSniffResult *res, int ncols,
		  const char *null_string, int opt_header, MemoryContext work)
{
	CsvDialect *dialect = palloc(sizeof(CsvDialect));
	bool		any_check = false;

	memset(tp, 0, sizeof(TypePass));
	tp->sn = sn;
	tp->ncols = ncols;
	sniff_dialect_init(dialect, res->delimiter, res->quote, res->encoding,
					   null_string, ncols <= 1);
	tp->dialect = dialect;
	tp->skip = res->skip_rows;
	tp->r0 = palloc(sizeof(ColStats) * Max(ncols, 1));
	tp->rest = palloc(sizeof(ColStats) * Max(ncols, 1));
	for (int j = 0; j < MAX_HEADER_ROWS - 1; j++)
		tp->follow[j] = palloc(sizeof(ColStats) * Max(ncols, 1));
	for (int i = 0; i < ncols; i++)
	{
		colstats_init(&tp->r0[i]);
		colstats_init(&tp->rest[i]);
		for (int j = 0; j < MAX_HEADER_ROWS - 1; j++)
			colstats_init(&tp->follow[j][i]);
	}
	tp->result_cxt = work;
	tp->value_cxt = AllocSetContextCreate(work, "csvpipe sniff value",
										  ALLOCSET_DEFAULT_SIZES);
	scan_records(sn, dialect, tp->skip + 1, sn->len, true, type_record, tp);

	/* the records after the first back in rest, first (examples: in order) */
	if (tp->nfollow > 0)
	{
		tp->tail = palloc(sizeof(ColStats) * Max(ncols, 1));
		memcpy(tp->tail, tp->rest, sizeof(ColStats) * ncols);
		for (int i = 0; i < ncols; i++)
			for (int j = tp->nfollow - 1; j >= 0; j--)
			{
				ColStats	m = tp->follow[j][i];

				colstats_merge(&m, &tp->rest[i]);
				tp->rest[i] = m;
			}
	}

	/* the null markers are values like any other, as far as types go */
	if (tp->any_marker)
	{
		tp->unmarked = palloc(sizeof(ColStats) * Max(ncols, 1));
		memcpy(tp->unmarked, tp->rest, sizeof(ColStats) * ncols);
		for (int i = 0; i < ncols; i++)
			for (int k = 0; k < NMARKERS; k++)
			{
				fold_marker(&tp->rest[i], k, tp->rest[i].nmarker[k], work);
				tp->rest[i].nmarker[k] = 0;
			}
	}

	if (!tp->have_r0 || ncols == 0)
		tp->ncols = 0;
	if (opt_header >= 0)
		tp->header = opt_header > 0;
	else
		tp->header = tp->ncols > 0 && decide_header(tp, sn->whole);
	if (!tp->header && tp->r0_nfields == tp->ncols && tp->r0_values)
	{
		for (int i = 0; i < tp->ncols; i++)
			colstats_merge(&tp->rest[i], &tp->r0[i]);
		tp->nrest++;
	}

	/* the types, checked by the input functions */
	tp->check = palloc(sizeof(CsvSniffType) * Max(tp->ncols, 1));
	tp->failed_line = palloc0(sizeof(int64) * Max(tp->ncols, 1));
	tp->failed_value = palloc0(sizeof(char *) * Max(tp->ncols, 1));
	for (int i = 0; i < tp->ncols; i++)
	{
		tp->check[i] = choose_type(&tp->rest[i], sn->whole);
		if (type_needs_check(tp->check[i]))
			any_check = true;
		else
			tp->check[i] = CSV_SNIFF_TEXT;
	}
	if (any_check)
	{
		tp->seen = 0;
		tp->check_r0 = !tp->header;
		scan_records(sn, dialect, tp->skip + 1, sn->len, true, check_record, tp);
	}
	tp->type = palloc(sizeof(CsvSniffType) * Max(tp->ncols, 1));
	for (int i = 0; i < tp->ncols; i++)
		tp->type[i] = tp->failed_line[i] > 0 ? CSV_SNIFF_TEXT :
			choose_type(&tp->rest[i], sn->whole);
}

/*
 * Would null marker k, as null_string, type column i of tp (a pass with
 * null_string '')?  Judged on the column's stats without the markers:
 * marker k's values become NULL, the other markers stay text, and the
 * empty fields, NULL so far, become empty strings (a null_string other
 * than '' makes them so, as COPY does), which only text takes.
 */
static CsvSniffType
type_with_marker(TypePass *tp, int i, int k, bool whole)
{
	const ColStats *u = &tp->unmarked[i];
	ColStats	v = *u;

	for (int k2 = 0; k2 < NMARKERS; k2++)
		if (k2 != k)
			fold_marker(&v, k2, u->nmarker[k2], tp->value_cxt);
	if (u->nnull > 0)
	{
		classify_value("", 0, &v, tp->value_cxt);
		v.nvalues += u->nnull - 1;
		v.nnonnumber += u->nnull - 1;
	}
	v.nnull = u->nmarker[k];
	return choose_type(&v, whole);
}

/*
 * The null marker that would type the most text columns as null_string
 * and make no typed column text (typed), else the one that would type the
 * most (*lost: how many typed columns it would make text), or -1.
 */
static int
pick_null_marker(TypePass *tp, bool whole, int *lost)
{
	int			best_ok = -1,
				best_any = -1,
				gain_ok = 0,
				gain_any = 0,
				loss_any = 0;

	*lost = 0;
	if (!tp->any_marker || tp->ncols == 0)
		return -1;
	for (int k = 0; k < NMARKERS; k++)
	{
		int			gain = 0,
					loss = 0;

		/* a read refuses a null_string holding the delimiter */
		if (strchr(null_markers[k], tp->dialect->delimiter) ||
			strchr(null_markers[k], tp->dialect->quote))
			continue;
		for (int i = 0; i < tp->ncols; i++)
		{
			bool		typed = tp->type[i] != CSV_SNIFF_TEXT;

			if (!typed && tp->unmarked[i].nmarker[k] == 0)
				continue;
			if ((type_with_marker(tp, i, k, whole) != CSV_SNIFF_TEXT) != typed)
			{
				if (typed)
					loss++;
				else
					gain++;
			}
		}
		if (gain > gain_ok && loss == 0)
		{
			best_ok = k;
			gain_ok = gain;
		}
		if (gain > gain_any)
		{
			best_any = k;
			gain_any = gain;
			loss_any = loss;
		}
	}
	if (best_ok >= 0)
		return best_ok;
	*lost = loss_any;
	return best_any;
}

/*
 * How many rows the header has: the largest h (3, then 2) such that the
 * first record and the h - 1 after it (one a line) all fit none of the
 * typed columns of the records below them, two at least, and have a name
 * in half of them at least (a value of no type: no number, date, boolean,
 * null marker, 1,5...), and those types type more columns than tp's do;
 * else 1.  Rows of data in a row that look so are not expected.
 */
static int
header_rows(TypePass *tp, bool whole)
{
	if (tp->r0_nfields != tp->ncols || tp->r0_values == NULL)
		return 1;
	for (int h = tp->nfollow + 1; h >= 2; h--)
	{
		int			typed = 0,
					typed_now = 0;
		int			fit[MAX_HEADER_ROWS] = {0},
					misfit[MAX_HEADER_ROWS] = {0};
		bool		ok = true;

		for (int j = 0; j < h - 1; j++)
			ok &= !tp->follow_marker[j];
		for (int i = 0; i < tp->ncols && ok; i++)
		{
			ColStats	v = tp->tail[i];
			CsvSniffType t;

			/* the records below: the tail, and the followers below h */
			for (int j = tp->nfollow - 1; j >= h - 1; j--)
			{
				ColStats	m = tp->follow[j][i];

				colstats_merge(&m, &v);
				v = m;
			}
			for (int k = 0; k < NMARKERS; k++)
				fold_marker(&v, k, v.nmarker[k], tp->value_cxt);
			t = choose_type(&v, whole);
			if (tp->type[i] != CSV_SNIFF_TEXT)
				typed_now++;
			if (t == CSV_SNIFF_TEXT)
				continue;
			typed++;
			for (int r = 0; r < h; r++)
			{
				const char *value = r == 0 ? tp->r0_values[i] : tp->follow_values[r - 1][i];
				const ColStats *cs = r == 0 ? &tp->r0[i] : &tp->follow[r - 1][i];

				if (value == NULL)
					continue;
				if (value_fits(cs, t))
					fit[r]++;
				else if (cs->mask == M(CSV_SNIFF_TEXT) && cs->ncomma == 0 &&
						 cs->nleadzero == 0)
					misfit[r]++;
			}
		}
		if (!ok || typed < 2 || typed <= typed_now)
			continue;
		for (int r = 0; r < h && ok; r++)
			ok = fit[r] == 0 && misfit[r] > 0 && misfit[r] * 2 >= typed;
		if (ok)
			return h;
	}
	return 1;
}

/* "a, b, c" of the columns flagged, the first five, and "(n in all)" */
static char *
column_names_list(char **names, const bool *flags, int ncols)
{
	StringInfoData buf;
	int			n = 0;

	initStringInfo(&buf);
	for (int i = 0; i < ncols; i++)
	{
		if (!flags[i])
			continue;
		if (n < 5)
			appendStringInfo(&buf, "%s%s", n > 0 ? ", " : "", names[i]);
		n++;
	}
	if (n > 5)
		appendStringInfo(&buf, "... (%d in all)", n);
	return buf.data;
}

void
csv_sniff_file(const char *path, const char *funcname,
			   const CsvSniffOptions *opts, CsvSniffResult *res)
{
	MemoryContext result_cxt = CurrentMemoryContext;
	MemoryContext work = AllocSetContextCreate(CurrentMemoryContext,
											   "csvpipe sniff",
											   ALLOCSET_DEFAULT_SIZES);
	Sniffer		sn;
	Candidate	chosen;
	TypePass	tp;
	TypePass	plain;			/* the pass with null_string '', if replaced */
	int			marker = -1;	/* null_markers[] chosen as null_string */
	int			conflict = -1;	/* one that would type columns, but... */
	char	  **above[MAX_HEADER_ROWS];	/* header rows above the last */
	int			nabove = 0;
	int64		sample_size = opts->sample_size > 0 ? opts->sample_size :
		CSV_SNIFF_DEFAULT_SAMPLE;

	memset(res, 0, sizeof(CsvSniffResult));
	memset(&sn, 0, sizeof(sn));
	sn.path = path;
	sn.errpos.path = path;
	sn.errpos.funcname = funcname;

	MemoryContextSwitchTo(work);
	read_sample(&sn, sample_size, res);

	/* byte order marks */
	if (sn.len >= 2 && ((unsigned char) sn.data[0] == 0xFF && (unsigned char) sn.data[1] == 0xFE))
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("file \"%s\" starts with a UTF-16 byte order mark", path),
				 errdetail("PostgreSQL reads no UTF-16 files."),
				 errhint("Convert it first, for example with iconv -f UTF-16 -t UTF-8.")));
	if (sn.len >= 2 && ((unsigned char) sn.data[0] == 0xFE && (unsigned char) sn.data[1] == 0xFF))
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("file \"%s\" starts with a UTF-16 byte order mark", path),
				 errdetail("PostgreSQL reads no UTF-16 files."),
				 errhint("Convert it first, for example with iconv -f UTF-16BE -t UTF-8.")));
	res->bom = sn.len >= 3 && memcmp(sn.data, "\xEF\xBB\xBF", 3) == 0;
	if (opts->encoding >= 0)
		res->encoding = opts->encoding;
	else if (res->bom)
		res->encoding = PG_UTF8;
	else
		res->encoding = guess_encoding(sn.data, sn.len, sn.whole);
	/* a read drops the mark in UTF8 only (reader.c) */
	if (res->bom && res->encoding == PG_UTF8)
	{
		sn.data += 3;
		sn.len -= 3;
	}
	res->line_ending = guess_line_ending(sn.data, sn.len);

	/* the dialect */
	detect_dialect(&sn, opts, res, &chosen);
	if (res->escape != res->quote)
		note(res, "escape '%c': csvpipe.read reads only quotes doubled inside quoted fields (escape = quote); COPY reads this file with ESCAPE '%c'",
			 res->escape, res->escape);

	/* the types, with the dialect a read would use */
	run_types(&sn, &tp, res, chosen.ncolumns,
			  opts->null_string ? opts->null_string : "", opts->header, work);

	/*
	 * A header of several rows: a pass with skip_rows past all but the last
	 * (a read's header is one record); taken when it finds a header and
	 * types more columns.
	 */
	if (opts->header < 0 && opts->skip_rows < 0 && tp.ncols > 0)
	{
		int			h = header_rows(&tp, sn.whole);

		if (h > 1)
		{
			TypePass	below;
			CsvSniffResult r = *res;
			int			typed = 0;

			r.skip_rows += h - 1;
			run_types(&sn, &below, &r, chosen.ncolumns,
					  opts->null_string ? opts->null_string : "", -1, work);
			for (int i = 0; i < below.ncols; i++)
				typed += (below.type[i] != CSV_SNIFF_TEXT) - (tp.type[i] != CSV_SNIFF_TEXT);
			if (below.header && below.ncols == tp.ncols && typed > 0)
			{
				above[nabove++] = tp.r0_values;
				for (int j = 0; j < h - 2; j++)
					above[nabove++] = tp.follow_values[j];
				res->skip_rows = r.skip_rows;
				tp = below;
			}
		}
	}
	if (nabove > 0)
		note(res, "the header has %d rows (lines %lld to %lld): skip_rows skips all but the last, and the column names join their values",
			 nabove + 1, (long long) tp.r0_line - nabove, (long long) tp.r0_line);

	/*
	 * A null marker: when the caller did not give null_string, and one of
	 * null_markers[] would type columns that are text (NA in a column of
	 * numbers), a second pass with it as null_string; taken when it does
	 * type columns, makes none text and decides the header the same way.
	 */
	if (opts->null_string == NULL)
	{
		int			lost;
		int			k = pick_null_marker(&tp, sn.whole, &lost);

		if (k >= 0 && lost > 0)
			conflict = k;
		else if (k >= 0)
		{
			TypePass	with;
			bool		gain = false,
						loss = false;

			run_types(&sn, &with, res, chosen.ncolumns, null_markers[k],
					  opts->header, work);
			if (with.ncols == tp.ncols && with.header == tp.header)
				for (int i = 0; i < tp.ncols; i++)
				{
					gain |= tp.type[i] == CSV_SNIFF_TEXT && with.type[i] != CSV_SNIFF_TEXT;
					loss |= tp.type[i] != CSV_SNIFF_TEXT && with.type[i] == CSV_SNIFF_TEXT;
				}
			if (gain && !loss)
			{
				marker = k;
				plain = tp;
				tp = with;
			}
		}
	}
	res->null_string = MemoryContextStrdup(result_cxt,
										   marker >= 0 ? null_markers[marker] :
										   opts->null_string ? opts->null_string : "");

	/* nothing to type: no columns, and the notes say why */
	if (tp.ncols == 0)
	{
		if (sn.len == 0)
			note(res, "the file is empty");
		else if (!tp.have_r0 && !sn.whole)
			note(res, "no complete record in the first %lld bytes: raise sample_size (a record must fit in the sample)",
				 (long long) res->sample_bytes);
		else
			note(res, "no well-formed record in the sample with any dialect tried: no columns");
	}
	res->header = tp.header;
	res->sample_records = tp.nrest;

	/* the result, in the caller's memory */
	MemoryContextSwitchTo(result_cxt);
	{
		char	  **names = make_names(&tp, res->header, above, nabove);
		bool	   *comma = palloc0(sizeof(bool) * Max(tp.ncols, 1));
		const char *comma_example = NULL;

		res->ncolumns = tp.ncols;
		res->columns = palloc0(sizeof(CsvSniffColumn) * Max(tp.ncols, 1));
		if (marker >= 0 || conflict >= 0)
		{
			int			k = marker >= 0 ? marker : conflict;
			TypePass   *before = marker >= 0 ? &plain : &tp;
			bool	   *typed = palloc0(sizeof(bool) * Max(tp.ncols, 1));
			bool	   *empties = palloc0(sizeof(bool) * Max(tp.ncols, 1));
			bool	   *also = palloc0(sizeof(bool) * Max(tp.ncols, 1));
			bool		any_empties = false;
			const char *lit = quote_literal_cstr(null_markers[k]);

			for (int i = 0; i < tp.ncols; i++)
			{
				const ColStats *u = &before->unmarked[i];

				if (before->type[i] == CSV_SNIFF_TEXT &&
					(marker >= 0 ? tp.type[i] != CSV_SNIFF_TEXT :
					 type_with_marker(&tp, i, k, sn.whole) != CSV_SNIFF_TEXT))
					typed[i] = true;
				else if (marker >= 0 && u->nmarker[k] > 0 && tp.rest[i].nvalues > 0)
					also[i] = true;
				if (u->nnull > 0 && (marker >= 0 || before->type[i] != CSV_SNIFF_TEXT))
					empties[i] = any_empties = true;
			}
			if (marker >= 0)
			{
				note(res, "missing values are written %s: null_string is %s, which types column(s) %s; read and load with null_string => %s",
					 null_markers[k], lit, column_names_list(names, typed, tp.ncols), lit);
				/* never silently: a text column's own NA becomes NULL too */
				for (int i = 0; i < tp.ncols; i++)
					if (also[i])
						note(res, "column %s: its value \"%s\" (%lld in the sample) is read as NULL too",
							 names[i], null_markers[k],
							 (long long) before->unmarked[i].nmarker[k]);
				if (any_empties)
					note(res, "with null_string %s, empty fields are empty strings, not NULL: column(s) %s",
						 lit, column_names_list(names, empties, tp.ncols));
			}
			else
				note(res, "missing values are written %s in column(s) %s, but column(s) %s have empty fields, which null_string %s would make empty strings (a null_string is one marker): typed text",
					 null_markers[k], column_names_list(names, typed, tp.ncols),
					 column_names_list(names, empties, tp.ncols), lit);
		}
		for (int i = 0; i < tp.ncols; i++)
		{
			CsvSniffColumn *col = &res->columns[i];
			ColStats   *cs = &tp.rest[i];
			CsvSniffType t = choose_type(cs, sn.whole);

			col->name = names[i];
			col->nullable = cs->nnull > 0 || cs->nvalues == 0;
			if (tp.failed_line[i] > 0)
			{
				if (cs->slash_date &&
					((cs->day_first && DateOrder == DATEORDER_MDY) ||
					 (cs->month_first && DateOrder == DATEORDER_DMY)))
					note(res, "column %s: the dates put the %s first (\"%s\", line %lld) but DateStyle's order is %s: typed text; SET DateStyle TO 'ISO, %s' before sniffing and reading to get %s",
						 col->name, cs->day_first ? "day" : "month",
						 tp.failed_value[i], (long long) tp.failed_line[i],
						 date_order_name(), cs->day_first ? "DMY" : "MDY",
						 type_names[t]);
				else
					note(res, "column %s: \"%s\" (line %lld) is not a valid %s: typed text",
						 col->name, tp.failed_value[i],
						 (long long) tp.failed_line[i], type_names[t]);
			}
			else if (type_needs_check(t) && cs->slash_date &&
					 !cs->day_first && !cs->month_first)
				note(res, "column %s: dates such as 01/02/2020 are read in DateStyle's order (%s)",
					 col->name, date_order_name());
			t = tp.type[i];
			if (t == CSV_SNIFF_TEXT && cs->nleadzero > 0 && cs->nnonnumber == 0)
				note(res, "column %s: numbers with leading zeros (\"%s\") are typed text, so the zeros are kept",
					 col->name, cs->leadzero_example);
			if (t == CSV_SNIFF_TEXT && cs->ncomma > 0 && cs->ncomma == cs->nnonnumber &&
				cs->nleadzero == 0)
			{
				comma[i] = true;
				if (comma_example == NULL)
					comma_example = cs->comma_example;
			}
			col->type = t;
			col->typid = type_oids[t];
			col->typmod = -1;
			col->type_name = pstrdup(type_names[t]);
			if (t == CSV_SNIFF_NUMERIC && sn.whole && !cs->exponent && !cs->special)
			{
				int			scale = cs->max_scale;
				int			precision = scale + Max(cs->max_intdigits, 18);

				if (precision <= 1000)
				{
					col->typmod = ((precision << 16) | scale) + VARHDRSZ;
					col->type_name = psprintf("numeric(%d,%d)", precision, scale);
				}
			}
		}
		if (comma_example != NULL)
			note(res, "numbers with a comma (\"%s\": a decimal comma, or thousands separators) are typed text, numeric input takes neither: column(s) %s",
				 comma_example, column_names_list(names, comma, tp.ncols));
		if (tp.nbad > 0)
			note(res, "%lld record(s) of the sample are malformed with this dialect (first on line %lld: %s)",
				 (long long) tp.nbad, (long long) tp.bad_line, tp.bad_message);
		if (tp.nwrong > 0)
			note(res, "%lld record(s) of the sample do not have %d fields (first on line %lld: %d)",
				 (long long) tp.nwrong, tp.ncols, (long long) tp.wrong_line,
				 tp.wrong_count);
	}
	MemoryContextDelete(work);
}

/* ---- the hint of a read's field-count and quoting errors ---- */

/* How an option's character is written in SQL */
static const char *
char_literal(char c)
{
	if (c == '\t')
		return "E'\\t'";
	if (c == '\'')
		return "''''";
	return psprintf("'%c'", c);
}

/* Is the read's own dialect fine on the sample's first records? */
static bool
candidate_fits(const Candidate *c, int ncolumns)
{
	for (int i = c->start; i < c->nrecs; i++)
	{
		const DetRecord *r = &c->recs[i];

		if (r->empty)
			continue;
		if (r->bad || r->nfields != c->ncolumns)
			return false;
	}
	return ncolumns <= 0 || c->ncolumns == ncolumns;
}

/* csv_sniff_dialect_hint's work, in its subtransaction */
typedef struct HintArgs
{
	CsvErrorPosition *errpos;
	int			ncolumns;
	MemoryContext work;			/* the sample, the file's descriptor */
	bool		found;			/* errpos->hint is set */
} HintArgs;

static void
dialect_hint(void *arg)
{
	HintArgs   *a = (HintArgs *) arg;
	CsvErrorPosition *errpos = a->errpos;
	const CsvDialect *given = errpos->dialect;
	int			ncolumns = a->ncolumns;
	Sniffer		sn;
	CsvSniffResult res;
	Candidate	mine;
	Candidate	best;
	bool		have_best = false;
	int64		skip = given->skip_rows > 0 ? given->skip_rows : -1;

	MemoryContextSwitchTo(a->work);
	memset(&sn, 0, sizeof(sn));
	memset(&res, 0, sizeof(res));
	sn.path = errpos->path;
	sn.errpos.path = errpos->path;
	sn.errpos.funcname = errpos->funcname;
	read_sample(&sn, DETECT_MAX_BYTES, &res);
	if (given->file_encoding == PG_UTF8 && sn.len >= 3 &&
		memcmp(sn.data, "\xEF\xBB\xBF", 3) == 0)
	{
		sn.data += 3;
		sn.len -= 3;
	}

	memset(&mine, 0, sizeof(mine));
	mine.delimiter = given->delimiter;
	mine.quote = given->quote;
	mine.order = -1;
	run_candidate(&sn, &mine, sn.len, skip, given->file_encoding);

	/* every delimiter with the read's quote, then with the other quote */
	for (int q = -1; q < (int) lengthof(quotes) && !candidate_fits(&mine, ncolumns); q++)
	{
		char		quote = q < 0 ? given->quote : quotes[q];

		if (q >= 0 && quote == given->quote)
			continue;
		for (int t = 1; t <= 2; t++)
		{
			const char *delims = t == 1 ? tier1_delims : tier2_delims;
			int			ndelims = t == 1 ? lengthof(tier1_delims) : lengthof(tier2_delims);

			for (int d = 0; d < ndelims; d++)
			{
				Candidate	c;

				if (delims[d] == quote ||
					(delims[d] == given->delimiter && quote == given->quote))
					continue;
				memset(&c, 0, sizeof(c));
				c.delimiter = delims[d];
				c.quote = quote;
				c.order = (q + 1) * 16 + (t - 1) * 8 + d;
				run_candidate(&sn, &c, sn.len, skip, given->file_encoding);
				if (c.ncolumns < 2 || c.score <= 0 || !candidate_fits(&c, ncolumns))
					continue;
				if (!have_best || candidate_better(&c, &best))
				{
					best = c;
					have_best = true;
				}
			}
		}
	}
	if (have_best && candidate_better(&best, &mine))
	{
		StringInfoData buf;

		initStringInfo(&buf);
		if (best.delimiter != given->delimiter)
			appendStringInfo(&buf, "The file looks delimited by %s (%d fields in each of its first records): try delimiter => %s",
							 best.delimiter == '\t' ? "tabs" :
							 best.delimiter == ' ' ? "spaces" :
							 psprintf("'%c'", best.delimiter),
							 best.ncolumns, char_literal(best.delimiter));
		else
			appendStringInfo(&buf, "The file looks quoted with %c (%d fields in each of its first records): try",
							 best.quote, best.ncolumns);
		if (best.quote != given->quote)
			appendStringInfo(&buf, "%s quote => %s",
							 best.delimiter != given->delimiter ? "," : "",
							 char_literal(best.quote));
		appendStringInfoString(&buf, " (csvpipe.sniff shows what it detects).");
		strlcpy(errpos->hint, buf.data, sizeof(errpos->hint));
		a->found = true;
	}
}

/*
 * The dialect the start of the file suggests, when the read's own does not
 * fit it (item 6 of issue 13): for a read that failed with a wrong number
 * of fields or a malformed quote.  ncolumns: the fields a record must have
 * (0: any).  The read's dialect fits when the sample's records (its first
 * 512kB, as the sniffer judges dialects) are all well-formed with one field
 * count, ncolumns if that is known; then the error is not the dialect's
 * fault and there is no hint.  Otherwise the best other candidate (another
 * delimiter, or the other quote) whose records are all well-formed with
 * ncolumns fields (when known) is named, if it scores better.  Computed on
 * the error path only, once per read (cached in errpos); any error while
 * computing it (the file gone, ...) just means no hint, but a cancel is
 * raised.  It runs in a subtransaction, the only safe way to go on after
 * an error of code that opens files and reads catalogs (without a
 * transaction, or in parallel mode, there is no hint), and its memory,
 * which holds the sample file's descriptor (csv_open_file), is deleted on
 * every path, so the file is closed before this returns or raises.
 * Returns the hint, or NULL.
 */
const char *
csv_sniff_dialect_hint(CsvErrorPosition *errpos, int ncolumns)
{
	MemoryContext oldcxt = CurrentMemoryContext;
	HintArgs	a;
	ErrorData  *edata;

	if (errpos->hint_state != 0)
		return errpos->hint_state == 2 ? errpos->hint : NULL;
	errpos->hint_state = 1;
	if (errpos->dialect == NULL || errpos->path == NULL)
		return NULL;
	if (!IsTransactionState() || IsInParallelMode())
		return NULL;

	a.errpos = errpos;
	a.ncolumns = ncolumns;
	a.found = false;
	a.work = AllocSetContextCreate(oldcxt, "csvpipe sniff hint",
								   ALLOCSET_DEFAULT_SIZES);
	edata = csv_try_in_subxact(dialect_hint, &a, oldcxt);
	MemoryContextDelete(a.work);	/* closes the sample's file */
	if (edata != NULL)
	{
		/* no hint; but a cancel is a cancel */
		if (edata->sqlerrcode == ERRCODE_QUERY_CANCELED ||
			edata->sqlerrcode == ERRCODE_ADMIN_SHUTDOWN)
			ReThrowError(edata);
		FreeErrorData(edata);
		return NULL;
	}
	if (a.found)
		errpos->hint_state = 2;
	return a.found ? errpos->hint : NULL;
}

/* Install the dialect hint of malformed records' errors (_PG_init) */
void
csv_sniff_init(void)
{
	csv_dialect_hint_hook = csv_sniff_dialect_hint;
}
