/*-------------------------------------------------------------------------
 *
 * splitter.c
 *		Quote-aware record boundaries, for cutting a file into chunks.
 *
 * The leader scans the raw bytes once, keeping only one bit of state: are
 * we inside a quoted field?  With escape = quote (the only escaping libcsv
 * knows), a doubled quote toggles twice and so leaves the state unchanged,
 * which makes the scan exact.  A newline outside quotes ends a record.  All
 * newlines, quoted or not, advance the physical line count, so each chunk
 * knows the line its first record starts on and workers report the same
 * line numbers as the single-process reader.
 *
 * The scan runs on the file's own bytes: in every encoding PostgreSQL can
 * convert from, '\n', '\r' and '"' never occur inside a multibyte character.
 *
 * Line ends are LF (or CRLF) unless the file's first line ends with a lone
 * CR: then CR is the line end for the whole file, as old Mac files have it.
 * (A file mixing the two is cut at its LFs only; its chunks are still whole
 * records, but line numbers after lone CRs may be off.)
 *
 *-------------------------------------------------------------------------
 */
#include "parallel.h"

void
csv_splitter_init(CsvSplitter *sp, char quote, char newline)
{
	sp->quote = quote;
	sp->newline = newline;
	sp->in_quotes = false;
	sp->line = 1;
	sp->record_start = 0;
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
	bool		inq = sp->in_quotes;
	int64		line = sp->line;

	/*
	 * Jump from quote to quote with memchr (quotes are rare in most files);
	 * between two quotes every newline is either a record end (outside
	 * quotes) or just counted (inside).
	 */
	while (p < end)
	{
		const char *q = memchr(p, sp->quote, end - p);
		const char *stop = q ? q : end;
		const char *nl;

		while ((nl = memchr(p, sp->newline, stop - p)) != NULL)
		{
			line++;
			p = nl + 1;
			if (!inq && p - buf >= want)
			{
				sp->in_quotes = inq;
				sp->line = line;
				*boundary_line = line;
				return p - buf;
			}
		}
		if (q == NULL)
			break;
		p = q + 1;
		inq = !inq;
	}
	sp->in_quotes = inq;
	sp->line = line;
	return -1;
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
