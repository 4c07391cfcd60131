/*-------------------------------------------------------------------------
 *
 * splitter.c
 *		Record boundaries on raw bytes, for cutting a file into chunks and
 *		chunks into records.
 *
 * The leader scans the raw bytes once, and a skip-mode worker its chunk,
 * following the rules the tokenizer follows (tokenizer.c; doc/reference.md
 * "Record boundaries and bad records"), so that both always agree on where a
 * record starts and ends:
 *
 *	- a quote opens a quoted field only at the start of a field (after a
 *	  delimiter or a line end, or at the start of the record); inside it,
 *	  a doubled quote is data and a single quote closes it;
 *	- a quote anywhere else in an unquoted field, or any byte other than
 *	  the delimiter or a line end after a closing quote, makes the record
 *	  malformed (the tokenizer's business); for the record's extent that
 *	  quote or byte is data of an unquoted field;
 *	- a line end outside quotes ends a record.  A line end inside a quoted
 *	  field is data; an unterminated quoted field runs to the end of the file.
 *
 * All newlines, quoted or not, advance the physical line count, so each
 * chunk knows the line its first record starts on and workers report the
 * same line numbers as the single-process reader.
 *
 * The scan runs on the file's own bytes.  In every server encoding (and
 * UTF-8, LATIN*, EUC_*...), '\n', '\r', the quote and the delimiter never
 * occur inside a multibyte character, and the scan jumps from quote to
 * quote with memchr.  In SJIS, BIG5, GBK, UHC, GB18030 and JOHAB a trail
 * byte may be an ASCII byte (0x40-0x7E: '|' is the second byte of 'ポ' in
 * SJIS): for those, when the quote or the delimiter is such a byte, the
 * scan steps character by character (csv_bad_char_length's rule for
 * invalid ones), never cutting one, and never stepping over a line end.
 *
 * Line ends are LF (or CRLF) unless the file's first line ends with a lone
 * CR: then CR is the line end for the whole file, as old Mac files have it.
 * (A file mixing the two is cut into chunks at its LFs only; its chunks are
 * still whole records, but line numbers after lone CRs may be off.)
 *
 * A skip-mode worker cutting its chunk into records sets each_record: then
 * the other line end (a lone CR in an LF file, a lone LF in a CR file) ends
 * a record too, as it does for libcsv, so a malformed record never swallows
 * the record after such a line end.  That scan steps byte by byte (with
 * the character rule above where needed); it only runs on skip-mode chunks.
 *
 *-------------------------------------------------------------------------
 */
#include "parallel.h"

#include "mb/pg_wchar.h"

/* states between bytes */
#define SP_FIELD_START	0		/* start of a record or after a delimiter */
#define SP_UNQUOTED		1		/* inside an unquoted field */
#define SP_QUOTED		2		/* inside a quoted field */
#define SP_QUOTE_SEEN	3		/* a quote inside a quoted field: closes it, or doubled */

void
csv_splitter_init(CsvSplitter *sp, const CsvDialect *dialect, char newline)
{
	int			enc = dialect->file_encoding;

	sp->quote = dialect->quote;
	sp->delimiter = dialect->delimiter;
	sp->newline = newline;
	sp->state = SP_FIELD_START;
	sp->in_quotes = false;
	sp->each_record = false;
	sp->line = 1;
	sp->record_start = 0;
	sp->mb_skip = 0;
	/* character by character only where a trail byte can be mistaken */
	sp->mb_encoding = -1;
	if (!PG_VALID_BE_ENCODING(enc) &&
		((unsigned char) sp->quote >= 0x30 || (unsigned char) sp->delimiter >= 0x30))
		sp->mb_encoding = enc;
}

/* One byte c in state st (not a line end, not in a quoted field) */
static inline int
step_unquoted(const CsvSplitter *sp, int st, unsigned char c)
{
	if (c == (unsigned char) sp->delimiter)
		return SP_FIELD_START;
	if (c == '\r' || c == '\n')
		return SP_FIELD_START;	/* the other line end: a record end to libcsv */
	if (c == (unsigned char) sp->quote)
		return st == SP_FIELD_START ? SP_QUOTED : SP_UNQUOTED;
	return SP_UNQUOTED;
}

/*
 * The character-by-character scan (see the header comment), also the
 * byte-by-byte scan of each_record (mb_encoding < 0)
 */
static int64
scan_multibyte(CsvSplitter *sp, const char *buf, int64 from, int64 to,
			   int64 want, int64 *boundary_line)
{
	int64		i = from;
	int			st = sp->state;
	int64		line = sp->line;

	/* the rest of a character cut by the previous range's end */
	while (sp->mb_skip > 0 && i < to && (unsigned char) buf[i] >= 0x30)
	{
		i++;
		sp->mb_skip--;
	}
	if (i < to)
		sp->mb_skip = 0;
	while (i < to)
	{
		unsigned char c = (unsigned char) buf[i];

		if (IS_HIGHBIT_SET(c) && sp->mb_encoding >= 0)
		{
			/* a multibyte character: never a quote, delimiter or line end */
			int			n = csv_bad_char_length(sp->mb_encoding, buf + i, to - i);
			int			want_n = pg_encoding_mblen(sp->mb_encoding, buf + i);

			/* cut by the range's end: its trail bytes come with the next range */
			if (i + n == to && n < want_n)
				sp->mb_skip = want_n - n;
			i += n;
			if (st != SP_QUOTED)
				st = SP_UNQUOTED;
			continue;
		}
		i++;
		if (c == (unsigned char) sp->newline)
			line++;
		if (st == SP_QUOTED)
		{
			if (c == (unsigned char) sp->quote)
				st = SP_QUOTE_SEEN;
			continue;
		}
		if (st == SP_QUOTE_SEEN)
		{
			if (c == (unsigned char) sp->quote)
			{
				st = SP_QUOTED;
				continue;
			}
			st = SP_UNQUOTED;	/* closed: c is outside quotes */
		}
		if (c == (unsigned char) sp->newline ||
			(sp->each_record && (c == '\r' || c == '\n')))
		{
			/*
			 * each_record: the other line end ends a record as well, except
			 * the CR of a CRLF in an LF file (its LF does); the LF of a CRLF
			 * in a CR file goes with the CR (libcsv folds it in)
			 */
			if (c == '\r' && sp->newline == '\n')
			{
				if (i < to && buf[i] == '\n')
					continue;
			}
			else if (c == '\r' && sp->each_record && i < to && buf[i] == '\n')
				i++;
			st = SP_FIELD_START;
			if (i >= want)
			{
				sp->state = st;
				sp->in_quotes = false;
				sp->line = line;
				*boundary_line = line;
				return i;
			}
			continue;
		}
		st = step_unquoted(sp, st, c);
	}
	sp->state = st;
	sp->in_quotes = (st == SP_QUOTED || st == SP_QUOTE_SEEN);
	sp->line = line;
	return -1;
}

/*
 * Scan buf[from, to).  Returns the offset just past the first record
 * boundary at or after offset "want" (the chunk is long enough), or -1 when
 * there is none yet; in that case the whole range was consumed and the scan
 * continues from "to" next time.  *boundary_line gets the line number of
 * the byte after the boundary.
 */
int64
csv_splitter_scan(CsvSplitter *sp, const char *buf, int64 from, int64 to,
				  int64 want, int64 *boundary_line)
{
	const char *p = buf + from;
	const char *end = buf + to;
	int			st = sp->state;
	int64		line = sp->line;

	if (sp->mb_encoding >= 0 || sp->each_record)
		return scan_multibyte(sp, buf, from, to, want, boundary_line);

	/*
	 * Only quotes change the state between line ends, so jump from quote to
	 * quote with memchr (quotes are rare in most files); a quote's meaning
	 * depends on the byte before it, or after it inside a quoted field.
	 */
	while (p < end)
	{
		const char *q;
		const char *stop;
		const char *nl;
		const char *seg;

		if (st == SP_QUOTED)
		{
			q = memchr(p, sp->quote, end - p);
			stop = q ? q : end;
			/* line ends in a quoted field are data, counted */
			while ((nl = memchr(p, sp->newline, stop - p)) != NULL)
			{
				line++;
				p = nl + 1;
			}
			if (q == NULL)
				break;
			p = q + 1;
			st = SP_QUOTE_SEEN;
			continue;
		}
		if (st == SP_QUOTE_SEEN)
		{
			unsigned char c = (unsigned char) *p;

			if (c == (unsigned char) sp->quote)
			{
				st = SP_QUOTED; /* a doubled quote */
				p++;
				continue;
			}
			st = SP_UNQUOTED;	/* closed; c is handled below */
		}

		/* outside quotes, up to the next quote: line ends are boundaries */
		q = memchr(p, sp->quote, end - p);
		stop = q ? q : end;
		seg = p;
		while ((nl = memchr(p, sp->newline, stop - p)) != NULL)
		{
			line++;
			p = nl + 1;
			st = SP_FIELD_START;
			seg = p;
			if (p - buf >= want)
				goto boundary;
		}
		/* no quote between: the last byte before stop sets the state */
		if (stop > seg)
			st = step_unquoted(sp, st, (unsigned char) stop[-1]);
		if (q == NULL)
			break;
		/* a quote opens a field only at its start; elsewhere it is data */
		st = step_unquoted(sp, st, (unsigned char) *q);
		p = q + 1;
	}
	sp->state = st;
	sp->in_quotes = (st == SP_QUOTED || st == SP_QUOTE_SEEN);
	sp->line = line;
	return -1;

boundary:
	sp->state = st;
	sp->in_quotes = false;
	sp->line = line;
	*boundary_line = line;
	return p - buf;
}

/* The line end of a file that starts with buf[0..len) (see above) */
char
csv_splitter_newline(const char *buf, int64 len)
{
	const char *cr = memchr(buf, '\r', len);
	const char *lf = memchr(buf, '\n', len);

	if (cr != NULL && (lf == NULL || cr < lf) && cr + 1 < buf + len && cr[1] != '\n')
		return '\r';
	return '\n';
}

/* A record holding nothing but a line end (libcsv skips those) */
bool
csv_splitter_record_is_empty(const char *buf, int64 start, int64 end)
{
	for (int64 i = start; i < end; i++)
		if (buf[i] != '\r' && buf[i] != '\n')
			return false;
	return true;
}
