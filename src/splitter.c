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
 * convert from, '\n' and '"' never occur inside a multibyte character.
 *
 *-------------------------------------------------------------------------
 */
#include "parallel.h"

void
csv_splitter_init(CsvSplitter *sp, char quote)
{
	sp->quote = quote;
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

		while ((nl = memchr(p, '\n', stop - p)) != NULL)
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

/* A record holding nothing but a line end (libcsv skips those) */
bool
csv_splitter_record_is_empty(const char *buf, int64 start, int64 end)
{
	for (int64 i = start; i < end; i++)
		if (buf[i] != '\r' && buf[i] != '\n')
			return false;
	return true;
}
