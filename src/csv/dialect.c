/*-------------------------------------------------------------------------
 *
 * dialect.c
 *		The CSV dialect's own helpers: header labels, the empty-line rule,
 *		the chunk size's bounds.
 *
 * The options that make up a dialect are parsed and validated in
 * options.c, with the other options of every entry point.
 *
 *-------------------------------------------------------------------------
 */
#include "csvfile.h"

#include "mb/pg_wchar.h"
#include "catalog/namespace.h"
#include "utils/builtins.h"

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
 * skipped (README "Record boundaries and bad records").
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
 * The dialect as the parallel workers get it: the options the options
 * table marks CSV_OPTF_WORKER (delimiter, quote, escape, null_string,
 * encoding) and match => 'name''s field map, flat, in the call's segment.
 * skip_rows and the header are not in it: the leader consumes them.
 */
typedef struct CsvDialectWire
{
	char		delimiter;
	char		quote;
	char		escape;
	int			file_encoding;
	int			null_len;
	int			nfile_fields;
	/* then null_string (null_len + 1 bytes), then nfile_fields ints */
} CsvDialectWire;

Size
csv_dialect_wire_size(const CsvDialect *dialect)
{
	return MAXALIGN(sizeof(CsvDialectWire) + dialect->null_len + 1) +
		sizeof(int) * dialect->nfile_fields;
}

void
csv_dialect_to_wire(const CsvDialect *dialect, char *buf)
{
	CsvDialectWire *w = (CsvDialectWire *) buf;
	char	   *p = buf + sizeof(CsvDialectWire);

	w->delimiter = dialect->delimiter;
	w->quote = dialect->quote;
	w->escape = dialect->escape;
	w->file_encoding = dialect->file_encoding;
	w->null_len = dialect->null_len;
	w->nfile_fields = dialect->nfile_fields;
	memcpy(p, dialect->null_string, dialect->null_len + 1);
	if (dialect->nfile_fields > 0)
		memcpy(buf + MAXALIGN(sizeof(CsvDialectWire) + dialect->null_len + 1),
			   dialect->field_column, sizeof(int) * dialect->nfile_fields);
}

/* A worker's dialect from the wire (palloc'd copies) */
void
csv_dialect_from_wire(CsvDialect *dialect, const char *buf)
{
	const CsvDialectWire *w = (const CsvDialectWire *) buf;

	memset(dialect, 0, sizeof(CsvDialect));
	dialect->delimiter = w->delimiter;
	dialect->quote = w->quote;
	dialect->escape = w->escape;
	dialect->header = CSV_HEADER_NONE;	/* the leader consumed it */
	dialect->skip_rows = 0;
	dialect->file_encoding = w->file_encoding;
	dialect->null_len = w->null_len;
	dialect->null_string = pnstrdup(buf + sizeof(CsvDialectWire), w->null_len);
	dialect->nfile_fields = w->nfile_fields;
	if (w->nfile_fields > 0)
	{
		dialect->field_column = palloc(sizeof(int) * w->nfile_fields);
		memcpy(dialect->field_column,
			   buf + MAXALIGN(sizeof(CsvDialectWire) + w->null_len + 1),
			   sizeof(int) * w->nfile_fields);
	}
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
