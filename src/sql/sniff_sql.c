/*-------------------------------------------------------------------------
 *
 * sniff_sql.c
 *		The SQL-callable functions csvpipe.sniff and csvpipe.create_table,
 *		and the table creation that csvpipe.load's create_target shares.
 *
 * The detection itself is the csv layer's (src/csv/sniff.c); this file
 * takes the options from SQL arguments, turns the result into sniff's row
 * (with a ready CREATE TABLE statement and column definition list) and
 * creates tables from it.
 *
 * A table is created in the caller's transaction, as the caller: one
 * CREATE TABLE statement run through SPI (the function is not SECURITY
 * DEFINER, so the current user's privileges apply, event triggers fire, as
 * if the caller had typed it).  Nothing in the statement depends on
 * search_path: the schema is the one the name resolves to (as regclass
 * input and CREATE TABLE resolve names: a qualified name, or the first
 * schema of search_path), written out, and every type is schema-qualified
 * by OID.  No shared state.
 *
 *-------------------------------------------------------------------------
 */
#include "csvpipe.h"
#include "options.h"
#include "sniff.h"
#include "sniff_sql.h"

#include "access/htup_details.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "funcapi.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/regproc.h"

PG_FUNCTION_INFO_V1(csvpipe_sniff);
PG_FUNCTION_INFO_V1(csvpipe_create_table);

/* a one-byte character option, as read's (dialect.c) */
static int
char_option(const char *name, FunctionCallInfo fcinfo, int arg)
{
	char	   *s;

	if (PG_ARGISNULL(arg))
		return -1;
	s = TextDatumGetCString(PG_GETARG_DATUM(arg));
	if (strlen(s) != 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("csvpipe option \"%s\" must be a single one-byte character", name),
				 errdetail("Got \"%s\".", s),
				 strcmp(s, "\\t") == 0 ?
				 errhint("For a tab, write E'\\t'.") : 0));
	if (s[0] == '\r' || s[0] == '\n')
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("csvpipe option \"%s\" cannot be newline or carriage return", name)));
	return (unsigned char) s[0];
}

/*
 * The sniff options from SQL arguments, first at arg: delimiter, quote,
 * escape, header, null_string, encoding, skip_rows, sample_size.  NULL:
 * detect.
 */
void
csv_sniff_options_from_args(FunctionCallInfo fcinfo, int arg, CsvSniffOptions *opts)
{
	csv_sniff_options_init(opts);
	opts->delimiter = char_option("delimiter", fcinfo, arg);
	opts->quote = char_option("quote", fcinfo, arg + 1);
	opts->escape = char_option("escape", fcinfo, arg + 2);
	if (opts->delimiter >= 0 && opts->delimiter == opts->quote)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("csvpipe delimiter and quote must be different")));
	if (!PG_ARGISNULL(arg + 3))
	{
		/* csvpipe.header_mode: an enum before 1.2 (options.c reads both) */
		opts->header = csv_header_option(PG_GETARG_DATUM(arg + 3),
										 get_fn_expr_argtype(fcinfo->flinfo, arg + 3)) != CSV_HEADER_NONE;
	}
	if (!PG_ARGISNULL(arg + 4))
	{
		opts->null_string = TextDatumGetCString(PG_GETARG_DATUM(arg + 4));
		if (strchr(opts->null_string, '\r') || strchr(opts->null_string, '\n'))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("csvpipe null_string cannot contain newline or carriage return")));
	}
	if (!PG_ARGISNULL(arg + 5))
	{
		char	   *name = TextDatumGetCString(PG_GETARG_DATUM(arg + 5));

		opts->encoding = pg_char_to_encoding(name);
		if (opts->encoding < 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("csvpipe encoding \"%s\" is not a valid encoding name", name)));
		if (opts->encoding != GetDatabaseEncoding() &&
			GetDatabaseEncoding() != PG_SQL_ASCII &&
			opts->encoding != PG_SQL_ASCII &&
			!OidIsValid(FindDefaultConversionProc(opts->encoding,
												  GetDatabaseEncoding())))
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_FUNCTION),
					 errmsg("no conversion from encoding \"%s\" to \"%s\"",
							pg_encoding_to_char(opts->encoding),
							GetDatabaseEncodingName())));
	}
	if (!PG_ARGISNULL(arg + 6))
	{
		opts->skip_rows = PG_GETARG_INT64(arg + 6);
		if (opts->skip_rows < 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("csvpipe skip_rows must not be negative")));
	}
	if (!PG_ARGISNULL(arg + 7))
	{
		opts->sample_size = PG_GETARG_INT64(arg + 7);
		if (opts->sample_size < 1 || opts->sample_size > CSV_SNIFF_MAX_SAMPLE)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("csvpipe sample_size must be between 1 and %lld bytes",
							(long long) CSV_SNIFF_MAX_SAMPLE),
					 errdetail("Got " INT64_FORMAT ".", opts->sample_size)));
	}
	if (opts->null_string && opts->delimiter >= 0 &&
		strchr(opts->null_string, opts->delimiter))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("csvpipe delimiter must not appear in null_string")));
}

/* "name type, ..." with the proposed types (qualified: for execution) */
static char *
column_list(const CsvSniffResult *res, bool qualified, const char *sep)
{
	StringInfoData buf;

	initStringInfo(&buf);
	for (int i = 0; i < res->ncolumns; i++)
	{
		const CsvSniffColumn *col = &res->columns[i];

		if (i > 0)
			appendStringInfoString(&buf, sep);
		appendStringInfo(&buf, "%s %s", quote_identifier(col->name),
						 qualified ?
						 format_type_extended(col->typid, col->typmod,
											  FORMAT_TYPE_TYPEMOD_GIVEN |
											  FORMAT_TYPE_FORCE_QUALIFY) :
						 col->type_name);
	}
	return buf.data;
}

/* The table name sniff's CREATE TABLE proposes: the file's base name */
static char *
table_name_for(const char *path)
{
	const char *base = strrchr(path, '/');
	char	   *name;
	char	   *dot;

	base = base ? base + 1 : path;
	name = pstrdup(base);
	/* drop the extensions: data.csv.gz -> data */
	if ((dot = strchr(name, '.')) != NULL && dot != name)
		*dot = '\0';
	if (name[0] == '\0')
		name = pstrdup("csv_table");
	name[pg_mbcliplen(name, strlen(name), NAMEDATALEN - 1)] = '\0';
	return name;
}

static Datum
text_array(List *items)
{
	int			n = list_length(items);
	Datum	   *elems = palloc(sizeof(Datum) * Max(n, 1));
	int			i = 0;
	ListCell   *lc;

	foreach(lc, items)
		elems[i++] = CStringGetTextDatum((char *) lfirst(lc));
	return PointerGetDatum(construct_array(elems, n, TEXTOID, -1, false, TYPALIGN_INT));
}

static Datum
sniff_char_text(char c)
{
	char		s[2] = {c, '\0'};

	return CStringGetTextDatum(s);
}

/* sniff's row: csvpipe.sniff_result, in its column order */
enum
{
	SR_DELIMITER,
	SR_QUOTE,
	SR_ESCAPE,
	SR_LINE_ENDING,
	SR_ENCODING,
	SR_BOM,
	SR_HEADER,
	SR_SKIP_ROWS,
	SR_NULL_STRING,
	SR_COLUMNS,
	SR_TYPES,
	SR_NULLABLE,
	SR_COLUMN_LIST,
	SR_CREATE_TABLE,
	SR_SAMPLE_BYTES,
	SR_SAMPLE_ROWS,
	SR_WHOLE_FILE,
	SR_NOTES,
	SR_NATTS
};

Datum
csvpipe_sniff(PG_FUNCTION_ARGS)
{
	TupleDesc	tupdesc;
	CsvSniffOptions opts;
	CsvSniffResult res;
	char	   *path;
	Datum		values[SR_NATTS];
	bool		nulls[SR_NATTS];
	List	   *names = NIL,
			   *types = NIL;
	Datum	   *nullable;

	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "csvpipe.sniff: return type must be a row type");
	if (tupdesc->natts != SR_NATTS)
		elog(ERROR, "csvpipe.sniff: expected %d result columns, got %d",
			 SR_NATTS, tupdesc->natts);
	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("csvpipe.sniff: path must not be NULL")));
	path = TextDatumGetCString(PG_GETARG_DATUM(0));
	csv_sniff_options_from_args(fcinfo, 1, &opts);
	csv_sniff_file(path, "csvpipe.sniff", &opts, &res);

	memset(nulls, false, sizeof(nulls));
	values[SR_DELIMITER] = sniff_char_text(res.delimiter);
	values[SR_QUOTE] = sniff_char_text(res.quote);
	values[SR_ESCAPE] = sniff_char_text(res.escape);
	if (res.line_ending)
		values[SR_LINE_ENDING] = CStringGetTextDatum(res.line_ending);
	else
		nulls[SR_LINE_ENDING] = true;
	values[SR_ENCODING] = CStringGetTextDatum(pg_encoding_to_char(res.encoding));
	values[SR_BOM] = BoolGetDatum(res.bom);
	values[SR_HEADER] = BoolGetDatum(res.header);
	values[SR_SKIP_ROWS] = Int64GetDatum(res.skip_rows);
	values[SR_NULL_STRING] = CStringGetTextDatum(res.null_string);
	nullable = palloc(sizeof(Datum) * Max(res.ncolumns, 1));
	for (int i = 0; i < res.ncolumns; i++)
	{
		names = lappend(names, res.columns[i].name);
		types = lappend(types, res.columns[i].type_name);
		nullable[i] = BoolGetDatum(res.columns[i].nullable);
	}
	values[SR_COLUMNS] = text_array(names);
	values[SR_TYPES] = text_array(types);
	values[SR_NULLABLE] = PointerGetDatum(construct_array(nullable, res.ncolumns,
														  BOOLOID, 1, true,
														  TYPALIGN_CHAR));
	values[SR_COLUMN_LIST] = CStringGetTextDatum(column_list(&res, false, ", "));
	values[SR_CREATE_TABLE] =
		CStringGetTextDatum(psprintf("CREATE TABLE %s (\n    %s\n)",
									 quote_identifier(table_name_for(path)),
									 column_list(&res, false, ",\n    ")));
	values[SR_SAMPLE_BYTES] = Int64GetDatum(res.sample_bytes);
	values[SR_SAMPLE_ROWS] = Int64GetDatum(res.sample_records);
	values[SR_WHOLE_FILE] = BoolGetDatum(res.whole_file);
	values[SR_NOTES] = text_array(res.notes);

	tupdesc = BlessTupleDesc(tupdesc);
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(tupdesc, values, nulls)));
}

/*
 * Create table "name" (resolved as regclass input resolves it; created
 * where CREATE TABLE would create it) with the columns sniff found, in the
 * caller's transaction and as the caller.  Returns its OID.
 */
Oid
csv_create_table_from_sniff(const char *name, const CsvSniffResult *res)
{
	List	   *names;
	RangeVar   *rv;
	Oid			nspid;
	char	   *sql;
	Oid			relid;
	int			rc;

#if PG_VERSION_NUM >= 160000
	names = stringToQualifiedNameList(name, NULL);
#else
	names = stringToQualifiedNameList(name);
#endif
	rv = makeRangeVarFromNameList(names);
	nspid = RangeVarGetCreationNamespace(rv);
	if (res->ncolumns == 0)
		ereport(ERROR,
				(errcode(ERRCODE_BAD_COPY_FILE_FORMAT),
				 errmsg("no columns found to create table \"%s\"", name)));
	sql = psprintf("CREATE TABLE %s (%s)",
				   quote_qualified_identifier(get_namespace_name(nspid), rv->relname),
				   column_list(res, true, ", "));
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	rc = SPI_execute(sql, false, 0);
	if (rc != SPI_OK_UTILITY)
		elog(ERROR, "CREATE TABLE failed: %s", SPI_result_code_string(rc));
	SPI_finish();
	CommandCounterIncrement();
	relid = get_relname_relid(rv->relname, nspid);
	if (!OidIsValid(relid))
		elog(ERROR, "table \"%s\" was created but is not found", name);
	return relid;
}

Datum
csvpipe_create_table(PG_FUNCTION_ARGS)
{
	CsvSniffOptions opts;
	CsvSniffResult res;
	char	   *path;
	char	   *name;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("csvpipe.create_table: path and name must not be NULL")));
	path = TextDatumGetCString(PG_GETARG_DATUM(0));
	name = TextDatumGetCString(PG_GETARG_DATUM(1));
	csv_sniff_options_from_args(fcinfo, 2, &opts);
	csv_sniff_file(path, "csvpipe.create_table", &opts, &res);
	PG_RETURN_OID(csv_create_table_from_sniff(name, &res));
}
