/*-------------------------------------------------------------------------
 *
 * dialect.c
 *		Option parsing and validation shared by every csvpipe entry point.
 *
 * csvpipe.read, csvpipe.read_text (and later load/submit) take the same CSV
 * options as named arguments with defaults.  This file turns the evaluated
 * arguments into a CsvDialect and rejects what the tokenizer cannot honour,
 * with COPY's wording where COPY has the same rule.
 *
 *-------------------------------------------------------------------------
 */
#include "csvpipe.h"

#include "mb/pg_wchar.h"
#include "catalog/namespace.h"
#include "utils/builtins.h"

static char
single_byte_option(const char *name, Datum arg, bool isnull)
{
	char	   *s;

	if (isnull)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("csvpipe option \"%s\" must not be NULL", name)));
	s = TextDatumGetCString(arg);
	if (strlen(s) != 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("csvpipe option \"%s\" must be a single one-byte character", name),
				 errdetail("Got \"%s\".", s)));
	if (s[0] == '\r' || s[0] == '\n')
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("csvpipe option \"%s\" cannot be newline or carriage return", name)));
	return s[0];
}

static CsvHeaderMode
header_option(Datum arg, bool isnull)
{
	char	   *label;

	if (isnull)
		return CSV_HEADER_NONE;
	/* csvpipe.header_mode is an enum: its labels are false, true, match */
	label = DatumGetCString(DirectFunctionCall1(enum_out, arg));
	if (strcmp(label, "true") == 0)
		return CSV_HEADER_SKIP;
	if (strcmp(label, "match") == 0)
		return CSV_HEADER_MATCH;
	return CSV_HEADER_NONE;
}

/*
 * Fill *dialect from csvpipe.read-style arguments (see CSV_ARG_* in
 * csvpipe.h).  args[CSV_ARG_PATH] is not looked at here.
 */
void
csv_dialect_from_args(CsvDialect *dialect, int nargs, Datum *args, bool *argnulls)
{
	Assert(nargs >= CSV_NUM_READ_ARGS);

	memset(dialect, 0, sizeof(CsvDialect));
	dialect->delimiter = single_byte_option("delimiter", args[CSV_ARG_DELIMITER],
											argnulls[CSV_ARG_DELIMITER]);
	dialect->quote = single_byte_option("quote", args[CSV_ARG_QUOTE],
										argnulls[CSV_ARG_QUOTE]);
	if (argnulls[CSV_ARG_ESCAPE])
		dialect->escape = dialect->quote;
	else
		dialect->escape = single_byte_option("escape", args[CSV_ARG_ESCAPE], false);

	if (dialect->delimiter == dialect->quote)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("csvpipe delimiter and quote must be different")));
	if (dialect->escape != dialect->quote)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("csvpipe escape character must be the same as the quote character"),
				 errdetail("The libcsv tokenizer only understands doubled quotes inside quoted fields.")));

	dialect->header = header_option(args[CSV_ARG_HEADER], argnulls[CSV_ARG_HEADER]);

	if (argnulls[CSV_ARG_NULL])
		dialect->null_string = pstrdup("");
	else
		dialect->null_string = TextDatumGetCString(args[CSV_ARG_NULL]);
	dialect->null_len = strlen(dialect->null_string);
	if (strchr(dialect->null_string, '\r') || strchr(dialect->null_string, '\n'))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("csvpipe null_string cannot contain newline or carriage return")));
	if (strchr(dialect->null_string, dialect->delimiter))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("csvpipe delimiter must not appear in null_string")));

	if (argnulls[CSV_ARG_ENCODING])
		dialect->file_encoding = GetDatabaseEncoding();
	else
	{
		char	   *name = TextDatumGetCString(args[CSV_ARG_ENCODING]);

		dialect->file_encoding = pg_char_to_encoding(name);
		if (dialect->file_encoding < 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("csvpipe encoding \"%s\" is not a valid encoding name", name)));
		if (dialect->file_encoding != GetDatabaseEncoding() &&
			GetDatabaseEncoding() != PG_SQL_ASCII &&
			dialect->file_encoding != PG_SQL_ASCII &&
			!OidIsValid(FindDefaultConversionProc(dialect->file_encoding,
												  GetDatabaseEncoding())))
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_FUNCTION),
					 errmsg("no conversion from encoding \"%s\" to \"%s\"",
							pg_encoding_to_char(dialect->file_encoding),
							GetDatabaseEncodingName())));
	}

	if (argnulls[CSV_ARG_SKIP_ROWS])
		dialect->skip_rows = 0;
	else
		dialect->skip_rows = DatumGetInt64(args[CSV_ARG_SKIP_ROWS]);
	if (dialect->skip_rows < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("csvpipe skip_rows must not be negative")));
}

/*
 * Fill *dialect from a load-like function's own arguments (csvpipe.load,
 * csvpipe.submit): its seven CSV options, delimiter to skip_rows, start at
 * first_arg, in csvpipe.read's order.
 */
void
csv_dialect_from_fcinfo(CsvDialect *dialect, FunctionCallInfo fcinfo, int first_arg)
{
	Datum		args[CSV_NUM_READ_ARGS];
	bool		argnulls[CSV_NUM_READ_ARGS];

	memset(argnulls, true, sizeof(argnulls));
	for (int i = CSV_ARG_DELIMITER; i <= CSV_ARG_SKIP_ROWS; i++)
	{
		int			arg = first_arg + i - CSV_ARG_DELIMITER;

		argnulls[i] = PG_ARGISNULL(arg);
		args[i] = argnulls[i] ? (Datum) 0 : PG_GETARG_DATUM(arg);
	}
	csv_dialect_from_args(dialect, CSV_NUM_READ_ARGS, args, argnulls);
}

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
