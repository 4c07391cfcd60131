/*-------------------------------------------------------------------------
 *
 * sniff_sql.c
 *		The SQL-callable functions csvpipe.sniff and csvpipe.create_table,
 *		and the table creation that the create_target of csvpipe.load and
 *		csvpipe.submit shares.
 *
 * The detection itself is the csv layer's (src/csv/sniff.c); this file
 * takes the options from SQL arguments (options.c's table: NULL means
 * "detect"), turns the result into sniff's row (with a ready CREATE TABLE
 * statement and column definition list), creates tables from it, and is
 * the overloads of csvpipe.load and csvpipe.submit that take the target by
 * name (create_target).
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
#include "csvfile.h"
#include "jobs.h"
#include "options.h"
#include "run.h"
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
PG_FUNCTION_INFO_V1(csvpipe_load_by_name);
PG_FUNCTION_INFO_V1(csvpipe_submit_by_name);

/* An option the call gave (not NULL) */
#define GIVEN(o, id)	((o)->has[id] && !(o)->isnull[id])

/*
 * The sniff options from a call's options (options.c): what the call gave
 * is fixed, the rest (NULL) detected.
 */
static void
sniff_options_from(const CsvOptions *o, CsvSniffOptions *so)
{
	csv_sniff_options_init(so);
	if (GIVEN(o, CSV_OPT_DELIMITER))
		so->delimiter = (unsigned char) o->dialect.delimiter;
	if (GIVEN(o, CSV_OPT_QUOTE))
		so->quote = (unsigned char) o->dialect.quote;
	if (GIVEN(o, CSV_OPT_ESCAPE))
		so->escape = (unsigned char) o->dialect.escape;
	if (GIVEN(o, CSV_OPT_HEADER))
		so->header = o->dialect.header == CSV_HEADER_NONE ? 0 : 1;
	if (GIVEN(o, CSV_OPT_NULL_STRING))
		so->null_string = o->dialect.null_string;
	if (GIVEN(o, CSV_OPT_ENCODING))
		so->encoding = o->dialect.file_encoding;
	if (GIVEN(o, CSV_OPT_SKIP_ROWS))
		so->skip_rows = o->dialect.skip_rows;
	so->sample_size = o->sample_size;
}

/* A load's own dialect, every option fixed (create_target) */
static void
sniff_options_of_load(const CsvOptions *o, CsvSniffOptions *so)
{
	csv_sniff_options_init(so);
	so->delimiter = (unsigned char) o->dialect.delimiter;
	so->quote = (unsigned char) o->dialect.quote;
	so->escape = (unsigned char) o->dialect.escape;
	so->header = o->dialect.header == CSV_HEADER_NONE ? 0 : 1;
	so->null_string = o->dialect.null_string;
	so->encoding = o->dialect.file_encoding;
	so->skip_rows = o->dialect.skip_rows;
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
	CsvOptions	o;
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
	csv_options_from_fcinfo(&o, fcinfo, CSV_FN_SNIFF, "csvpipe.sniff");
	if (o.path == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("csvpipe.sniff: path must not be NULL")));
	path = o.path;
	sniff_options_from(&o, &opts);
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
				 errmsg("no columns found to create table \"%s\"", name),
				 res->notes ? errdetail("csvpipe.sniff says: %s.", (char *) linitial(res->notes)) : 0));
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
	CsvOptions	o;
	CsvSniffOptions opts;
	CsvSniffResult res;

	csv_options_from_fcinfo(&o, fcinfo, CSV_FN_SNIFF, "csvpipe.create_table");
	if (o.path == NULL || o.name == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("csvpipe.create_table: path and name must not be NULL")));
	sniff_options_from(&o, &opts);
	csv_sniff_file(o.path, "csvpipe.create_table", &opts, &res);
	PG_RETURN_OID(csv_create_table_from_sniff(o.name, &res));
}

/* A table's name as regclass input resolves it (it must exist) */
static Oid
resolve_table_name(const char *name)
{
	List	   *names;

#if PG_VERSION_NUM >= 160000
	names = stringToQualifiedNameList(name, NULL);
#else
	names = stringToQualifiedNameList(name);
#endif
	return RangeVarGetRelid(makeRangeVarFromNameList(names), NoLock, false);
}

/*
 * create_target => true: the table named by the call, created from the
 * file read with the call's own dialect (its defaults included: what the
 * load will read), in the caller's transaction and as the caller.
 */
static Oid
create_target(CsvOptions *opts, const char *funcname)
{
	CsvSniffOptions so;
	CsvSniffResult sr;

	if (opts->columns != NIL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s: create_target => true creates a column for every field: columns must be NULL",
						funcname)));
	sniff_options_of_load(opts, &so);
	csv_sniff_file(opts->path, funcname, &so, &sr);
	return csv_create_table_from_sniff(opts->target_name, &sr);
}

/*
 * csvpipe.load(path, target text, <options>, create_target): load's
 * overload that takes the target by name.  Without create_target it is
 * csvpipe.load with the name resolved as regclass input resolves it (calls
 * with a quoted literal, load(path, 'tbl'), come here: a literal prefers
 * text).  With create_target => true the table is created first from the
 * file, read with the load's own dialect (its defaults included: what the
 * load will read), in the caller's transaction and as the caller; then it
 * is loaded.  Only a transaction-mode load can: chunked and prepared loads
 * commit in their workers' own transactions, which cannot see a table this
 * transaction created.
 */
Datum
csvpipe_load_by_name(PG_FUNCTION_ARGS)
{
	CsvOptions	opts;
	CsvLoadRequest req;
	CsvLoadResult res;
	TupleDesc	resdesc;

	csv_options_from_fcinfo(&opts, fcinfo, CSV_FN_LOAD, "csvpipe.load");
	if (opts.path == NULL || opts.target_name == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("csvpipe.load: path and target must not be NULL")));
	if (get_call_result_type(fcinfo, NULL, &resdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "csvpipe.load must return a row");

	if (opts.create_target)
	{
		if (opts.mode != CSV_LOAD_MODE_TRANSACTION)
			ereport(ERROR,
					(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
					 errmsg("csvpipe.load: create_target => true needs mode => 'transaction'"),
					 errdetail("A %s load commits in its workers' own transactions, which cannot see a table created in the caller's transaction.",
							   csv_load_mode_label(opts.mode)),
					 errhint("Create the table with csvpipe.create_table() and commit, then load it with mode => '%s'.",
							 csv_load_mode_label(opts.mode))));
		opts.relid = create_target(&opts, "csvpipe.load");
	}
	else
		opts.relid = resolve_table_name(opts.target_name);

	csv_load_request_init(&req, &opts);
	csv_run_load(&req, &res);
	PG_RETURN_DATUM(csv_load_result_datum(resdesc, &res));
}

/*
 * csvpipe.submit(path, target text, <options>, create_target): submit's
 * overload that takes the target by name, as load's does.  With
 * create_target => true the table is created from the file, read with the
 * job's own dialect, in the submitting transaction and as the submitting
 * role (current_user: its owner, who the job runs as -- launcher.c), then
 * the job is queued for it.  Any mode: the job runs only once that
 * transaction has committed, table and job row together, so its workers
 * see the table.  One file, not a glob: the table is made from that file.
 */
Datum
csvpipe_submit_by_name(PG_FUNCTION_ARGS)
{
	CsvOptions	opts;

	csv_options_from_fcinfo(&opts, fcinfo, CSV_FN_SUBMIT, "csvpipe.submit");
	if (opts.path == NULL || opts.target_name == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("csvpipe.submit: path and target must not be NULL")));
	/* the preload and the database first: nothing is created for nothing */
	csv_submit_check_session();

	if (opts.create_target)
	{
		if (strpbrk(opts.path, "*?[") != NULL)
			ereport(ERROR,
					(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
					 errmsg("csvpipe.submit: create_target => true needs one file, not a glob"),
					 errdetail("The table is created from the file, in this transaction."),
					 errhint("Create the table from one of the files with csvpipe.create_table(), then submit the glob.")));
		opts.relid = create_target(&opts, "csvpipe.submit");
	}
	else
		opts.relid = resolve_table_name(opts.target_name);

	return csv_submit(fcinfo, &opts);
}
