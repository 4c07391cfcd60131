/*-------------------------------------------------------------------------
 *
 * dialect.c
 *		The CSV dialect's own helpers: header labels, the empty-line rule,
 *		the chunk size's bounds.
 *
 * The options that make up a dialect are parsed and validated in
 * options.c, with the other options of every entry point; what is derived
 * from the options table (the cache key, the job's record, the workers'
 * copy) is there too.
 *
 *-------------------------------------------------------------------------
 */
#include "csvfile.h"

/* header from its label ('true', 'false', 'match'), for stored options */
void
csv_dialect_set_header(CsvDialect *dialect, const char *label)
{
	if (label == NULL || strcmp(label, "false") == 0)
		dialect->header = CSV_HEADER_NONE;
	else if (strcmp(label, "match") == 0)
		dialect->header = CSV_HEADER_MATCH;
	else
		dialect->header = CSV_HEADER_SKIP;
}

const char *
csv_dialect_header_label(const CsvDialect *dialect)
{
	switch (dialect->header)
	{
		case CSV_HEADER_NONE:
			return "false";
		case CSV_HEADER_MATCH:
			return "match";
		default:
			return "true";
	}
}

/*
 * The column count is known (0: read_text, which has no column list).  An
 * empty line is a record of one NULL field in a one-column file, as COPY
 * reads it, and in read_text's raw view; in a file of more columns it is
 * skipped (doc/reference.md, "Record boundaries and bad records").
 */
void
csv_dialect_set_columns(CsvDialect *dialect, int ncolumns)
{
	/* match => 'name': the file's fields count, not the columns filled */
	if (dialect->nfile_fields > 0)
		ncolumns = dialect->nfile_fields;
	dialect->empty_line_is_record = (ncolumns <= 1);
}

/*
 * chunk_size of read, load and submit: the leader buffers one chunk and a
 * worker holds it (and its server-encoded copy), so it is capped as the
 * csvpipe.chunk_size setting is, at 1GB.
 */
int64
csv_check_chunk_size(int64 chunk_size)
{
	if (chunk_size < 1 || chunk_size > CSV_MAX_CHUNK_SIZE)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("csvpipe chunk_size must be between 1 and %lld bytes",
						(long long) CSV_MAX_CHUNK_SIZE),
				 errdetail("Got " INT64_FORMAT ".", chunk_size),
				 errhint("The leader buffers one chunk; csvpipe.chunk_size has the same limit (1GB).")));
	return chunk_size;
}
