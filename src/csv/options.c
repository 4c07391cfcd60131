/*-------------------------------------------------------------------------
 *
 * options.c
 *		The options of csvpipe's functions, defined once: the table, and
 *		what is derived from it -- matching a call's arguments to options by
 *		name, validation, the options recorded with a job and read back.
 *
 * csv_option_defs[] below is the one definition.  An entry says:
 *	- the SQL argument's name (and an alias: submit's path_or_glob);
 *	- its kind of value, SQL type and default, for validation and doc/reference.md;
 *	- which functions take it (CSV_FN_*);
 *	- CSV_OPTF_ROWS: it changes the rows (the result cache keys on it);
 *	- CSV_OPTF_JOB: it is recorded in csvpipe.job.options and restored by
 *	  a job's runner and by csvpipe.resume;
 *	- CSV_OPTF_WORKER: the workers get it, in the parallel engine's
 *	  segment: through csv_options_to_wire() below; columns as the
 *	  segment's column list (parallel.h).
 *
 * A call is matched to the table by the names of the function's arguments
 * in pg_proc, mapped once per function and backend (argmap, flushed when
 * pg_proc changes), so no code indexes arguments by position and older SQL
 * definitions (1.0's atomic boolean where 1.1 has mode) are read by what
 * they declare.  Values go through one setter per option, whether they come
 * from a call or from a job's recorded JSON, so a job restores exactly what
 * was validated when it was submitted.  Adding an option: an entry here, a
 * field in CsvOptions and its case in set_option(), and the SQL signature;
 * each flag it bears asks for its case in what is derived from that flag
 * (CSV_OPTF_JOB: csv_options_job_json; CSV_OPTF_ROWS: csv_dialect_rows_key;
 * CSV_OPTF_WORKER: csv_options_to_wire and csv_options_from_wire), which
 * otherwise fail at once.
 *
 * Backend-local state only (the argmap cache); no shared memory, no locks.
 *
 *-------------------------------------------------------------------------
 */
#include "options.h"

#include "access/htup_details.h"
#include "catalog/namespace.h"
#include "catalog/pg_proc.h"
#include "catalog/pg_type.h"
#include "funcapi.h"
#include "libpq/pqformat.h"
#include "mb/pg_wchar.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/hsearch.h"
#include "utils/inval.h"
#include "utils/json.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/numeric.h"
#include "utils/syscache.h"

/* ---- the table ---- */

static const CsvOptLabel header_labels[] = {
	{"true", CSV_HEADER_SKIP},
	{"false", CSV_HEADER_NONE},
	{"match", CSV_HEADER_MATCH},
	{NULL, 0}
};

static const CsvOptLabel mode_labels[] = {
	{"transaction", CSV_LOAD_MODE_TRANSACTION},
	{"prepared", CSV_LOAD_MODE_PREPARED},
	{"chunked", CSV_LOAD_MODE_CHUNKED},
	{NULL, 0}
};

static const CsvOptLabel on_error_labels[] = {
	{"stop", 0},
	{"skip", 1},
	{NULL, 0}
};

static const CsvOptLabel match_labels[] = {
	{"position", 0},
	{"name", 1},
	{NULL, 0}
};

static const CsvOptLabel extra_columns_labels[] = {
	{"error", 0},
	{"ignore", 1},
	{NULL, 0}
};

#define ALL_FN	(CSV_FN_ANY_READ | CSV_FN_ANY_LOAD)
#define DIALECT_FN (ALL_FN | CSV_FN_SNIFF)
#define DIALECT_FLAGS (CSV_OPTF_ROWS | CSV_OPTF_JOB | CSV_OPTF_WORKER)

const CsvOptionDef csv_option_defs[CSV_NUM_OPTS] = {
	[CSV_OPT_PATH] = {"path", "path_or_glob", CSV_OK_TEXT, "text", NULL,
		ALL_FN | CSV_FN_SNIFF, CSV_OPTF_ARG, NULL,
	"the file (submit: a file or a glob)"},
	[CSV_OPT_TARGET] = {"target", NULL, CSV_OK_REGCLASS, "regclass", NULL,
		CSV_FN_ANY_LOAD, CSV_OPTF_ARG, NULL,
	"the table to load (load and submit also take its name as text, resolved as regclass input resolves it)"},
	[CSV_OPT_ROWTYPE] = {"rowtype", NULL, CSV_OK_ROWTYPE, "anyelement", NULL,
		CSV_FN_READ, CSV_OPTF_ARG, NULL,
	"read's typed form, `read(path, NULL::t, ...)`: the rows are of t's type (a composite type, a table's row type, a domain over one); only the value's type counts"},
	[CSV_OPT_COLUMNS] = {"columns", NULL, CSV_OK_NAMES, "text[]", "NULL",
		CSV_FN_ANY_LOAD, CSV_OPTF_JOB | CSV_OPTF_WORKER, NULL,
	"load: the target columns the file's fields fill, in file order (NULL: all, in table order)"},
	[CSV_OPT_DELIMITER] = {"delimiter", NULL, CSV_OK_CHAR, "text", "','",
		DIALECT_FN, DIALECT_FLAGS, NULL,
	"one single-byte character; not CR, LF or the quote"},
	[CSV_OPT_QUOTE] = {"quote", NULL, CSV_OK_CHAR, "text", "'\"'",
		DIALECT_FN, DIALECT_FLAGS, NULL,
	"one single-byte character"},
	[CSV_OPT_ESCAPE] = {"escape", NULL, CSV_OK_CHAR, "text", "NULL",
		DIALECT_FN, DIALECT_FLAGS, NULL,
	"must equal quote (NULL: the quote): libcsv only knows doubled quotes (`\"\"`)"},
	[CSV_OPT_HEADER] = {"header", NULL, CSV_OK_HEADER, "csvpipe.header_mode", "true",
		DIALECT_FN, CSV_OPTF_ROWS | CSV_OPTF_JOB, header_labels,
	"`true` skips the first record; `false` reads it as data; `'match'` checks its names against the column list (or the target's columns) and errors on the first mismatch"},
	[CSV_OPT_NULL_STRING] = {"null_string", NULL, CSV_OK_TEXT, "text", "''",
		DIALECT_FN, DIALECT_FLAGS, NULL,
	"as COPY CSV: with `''`, an unquoted empty field is NULL and `\"\"` is an empty string; with another string, a field equal to it is NULL. Limitation: a *quoted* field equal to a non-empty null_string is NULL too, where COPY keeps the string"},
	[CSV_OPT_ENCODING] = {"encoding", NULL, CSV_OK_ENCODING, "text", "NULL",
		DIALECT_FN, DIALECT_FLAGS, NULL,
	"the file's encoding (NULL: the server's), converted to the server's"},
	[CSV_OPT_SKIP_ROWS] = {"skip_rows", NULL, CSV_OK_INT, "bigint", "0",
		DIALECT_FN, CSV_OPTF_ROWS | CSV_OPTF_JOB, NULL,
	"records skipped before the header (e.g. a preamble)"},
	[CSV_OPT_WORKERS] = {"workers", NULL, CSV_OK_INT, "int", "NULL",
		CSV_FN_ANY_READ | CSV_FN_LOAD | CSV_FN_SUBMIT, CSV_OPTF_JOB, NULL,
	"background workers to use (read: NULL = none; load, submit: NULL = `csvpipe.max_workers`), capped by `csvpipe.max_workers`, free slots and the file's chunks"},
	[CSV_OPT_ORDERED] = {"ordered", NULL, CSV_OK_BOOL, "boolean", "true",
		CSV_FN_ANY_READ, 0, NULL,
	"parallel read: file order, or `false` for arrival order"},
	[CSV_OPT_MODE] = {"mode", NULL, CSV_OK_LABEL, "text", "'transaction'",
		CSV_FN_LOAD | CSV_FN_SUBMIT, CSV_OPTF_JOB, mode_labels,
	"load, submit: `'transaction'`, `'prepared'` or `'chunked'` (see [Load modes](#csvpipeload))"},
	[CSV_OPT_ATOMIC] = {"atomic", NULL, CSV_OK_BOOL, "boolean", "NULL",
		CSV_FN_LOAD | CSV_FN_SUBMIT, CSV_OPTF_JOB, NULL,
	"load, submit: 1.0's spelling of mode (`true` = prepared, `false` = chunked)"},
	[CSV_OPT_FREEZE] = {"freeze", NULL, CSV_OK_BOOL, "boolean", "false",
		CSV_FN_LOAD, CSV_OPTF_JOB, NULL,
	"load, transaction mode: COPY FREEZE"},
	[CSV_OPT_CHUNK_SIZE] = {"chunk_size", NULL, CSV_OK_INT, "bigint", "NULL",
		CSV_FN_ANY_READ | CSV_FN_LOAD | CSV_FN_SUBMIT, CSV_OPTF_JOB, NULL,
	"bytes per chunk handed to a worker (ends at a record boundary), 1 to 1073741824 (NULL: `csvpipe.chunk_size`)"},
	[CSV_OPT_ON_ERROR] = {"on_error", NULL, CSV_OK_LABEL, "text", "'stop'",
		CSV_FN_ANY_READ | CSV_FN_LOAD | CSV_FN_SUBMIT, CSV_OPTF_JOB | CSV_OPTF_WORKER, on_error_labels,
	"`'stop'` at the first bad row, or `'skip'` it (load, submit: into `csvpipe.rejected`; read: a NOTICE)"},
	[CSV_OPT_MAX_ERRORS] = {"max_errors", NULL, CSV_OK_INT, "bigint", "NULL",
		CSV_FN_LOAD | CSV_FN_SUBMIT, CSV_OPTF_JOB | CSV_OPTF_WORKER, NULL,
	"load, submit: with `'skip'`, fail once more rows than this are rejected"},
	[CSV_OPT_PROGRESS] = {"progress", NULL, CSV_OK_BOOL, "boolean", "NULL",
		CSV_FN_LOAD, 0, NULL,
	"load: progress NOTICEs, at most one a second (NULL: `csvpipe.progress_notices`)"},
	[CSV_OPT_CACHE] = {"cache", NULL, CSV_OK_BOOL, "boolean", "true",
		CSV_FN_ANY_READ, 0, NULL,
	"read, read_text: use the result cache"},
	[CSV_OPT_PRIORITY] = {"priority", NULL, CSV_OK_INT, "int", "0",
		CSV_FN_SUBMIT, 0, NULL,
	"submit: higher runs first (see [csvpipe.submit](#csvpipesubmit))"},
	[CSV_OPT_FORCE] = {"force", NULL, CSV_OK_BOOL, "boolean", "false",
		CSV_FN_SUBMIT, 0, NULL,
	"submit: queue a file loaded or backing off anyway (see [csvpipe.submit](#csvpipesubmit))"},
	[CSV_OPT_MATCH] = {"match", NULL, CSV_OK_LABEL, "text", "'position'",
		CSV_FN_READ | CSV_FN_ANY_LOAD, CSV_OPTF_JOB, match_labels,
	"`'position'`: the file's fields fill the columns in order; `'name'`: the header's names pick the columns (see [Columns by name](#columns-by-name))"},
	[CSV_OPT_EXTRA_COLUMNS] = {"extra_columns", NULL, CSV_OK_LABEL, "text", "'error'",
		CSV_FN_READ | CSV_FN_ANY_LOAD, CSV_OPTF_JOB, extra_columns_labels,
	"with match => 'name': file columns the target lacks are an `'error'`, or `'ignore'`d"},
	[CSV_OPT_NAME] = {"name", NULL, CSV_OK_TEXT, "text", NULL,
		CSV_FN_SNIFF, CSV_OPTF_ARG, NULL,
	"create_table: the table to create, resolved as CREATE TABLE resolves it"},
	[CSV_OPT_CREATE_TARGET] = {"create_target", NULL, CSV_OK_BOOL, "boolean", "false",
		CSV_FN_LOAD | CSV_FN_SUBMIT, 0, NULL,
	"load, submit (target given by name): create the table from the file's header and types first, in the caller's transaction, as the caller (see [Sniffing a file](#sniffing-a-file))"},
	[CSV_OPT_SAMPLE_SIZE] = {"sample_size", NULL, CSV_OK_INT, "bigint", "NULL",
		CSV_FN_SNIFF, 0, NULL,
	"sniff, create_table: bytes of the file's start the detection reads, 1 to 1073741824 (NULL: 4MB); whole records only"},
};

/* ---- errors ---- */

/* "'stop' and 'skip'": booleans unquoted, as they are written */
static char *
labels_text(const CsvOptLabel *labels)
{
	StringInfoData buf;
	int			n = 0;

	while (labels[n].label)
		n++;
	initStringInfo(&buf);
	for (int i = 0; i < n; i++)
	{
		const char *l = labels[i].label;

		if (i > 0)
			appendStringInfoString(&buf, i == n - 1 ? " and " : ", ");
		if (strcmp(l, "true") == 0 || strcmp(l, "false") == 0)
			appendStringInfoString(&buf, l);
		else
			appendStringInfo(&buf, "'%s'", l);
	}
	return buf.data;
}

static void
invalid_value(const CsvOptionDef *def, const char *value, const char *hint)
	pg_attribute_noreturn();

static void
invalid_value(const CsvOptionDef *def, const char *value, const char *hint)
{
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("invalid value for option \"%s\": \"%s\"", def->name, value),
			 errhint("%s", hint)));
}

/* ---- the argument map: which option each argument of a function is ---- */

typedef struct CsvArgMap
{
	Oid			funcid;			/* hash key */
	int			nargs;
	int8		opt[FUNC_MAX_ARGS];
	Oid			type[FUNC_MAX_ARGS];	/* declared types */
} CsvArgMap;

static HTAB *argmap_cache = NULL;

static void
argmap_invalidate(Datum arg, int cacheid, uint32 hashvalue)
{
	HASH_SEQ_STATUS status;
	CsvArgMap  *m;

	if (argmap_cache == NULL)
		return;
	hash_seq_init(&status, argmap_cache);
	while ((m = hash_seq_search(&status)) != NULL)
		(void) hash_search(argmap_cache, &m->funcid, HASH_REMOVE, NULL);
}

static int
option_by_name(const char *name)
{
	for (int i = 0; i < CSV_NUM_OPTS; i++)
	{
		const CsvOptionDef *def = &csv_option_defs[i];

		if (strcmp(def->name, name) == 0 ||
			(def->alias && strcmp(def->alias, name) == 0))
			return i;
	}
	return -1;
}

static const CsvArgMap *
argmap_for(Oid funcid, uint32 fn)
{
	CsvArgMap  *m;
	bool		found;
	HeapTuple	tup;
	Oid		   *types;
	char	  **names;
	char	   *modes;
	int			nall;
	int			n = 0;

	if (argmap_cache == NULL)
	{
		HASHCTL		ctl;

		ctl.keysize = sizeof(Oid);
		ctl.entrysize = sizeof(CsvArgMap);
		argmap_cache = hash_create("csvpipe argument maps", 16, &ctl,
								   HASH_ELEM | HASH_BLOBS);
		CacheRegisterSyscacheCallback(PROCOID, argmap_invalidate, (Datum) 0);
	}
	m = hash_search(argmap_cache, &funcid, HASH_FIND, NULL);
	if (m != NULL)
		return m;

	tup = SearchSysCache1(PROCOID, ObjectIdGetDatum(funcid));
	if (!HeapTupleIsValid(tup))
		elog(ERROR, "cache lookup failed for function %u", funcid);
	nall = get_func_arg_info(tup, &types, &names, &modes);
	ReleaseSysCache(tup);

	m = hash_search(argmap_cache, &funcid, HASH_ENTER, &found);
	m->nargs = 0;
	for (int i = 0; i < nall; i++)
	{
		int			opt;

		if (modes && (modes[i] == PROARGMODE_OUT || modes[i] == PROARGMODE_TABLE))
			continue;
		opt = (names && names[i][0]) ? option_by_name(names[i]) : -1;
		if (opt < 0 || (csv_option_defs[opt].funcs & fn) == 0)
		{
			(void) hash_search(argmap_cache, &funcid, HASH_REMOVE, NULL);
			elog(ERROR, "csvpipe: argument %d (\"%s\") of function %u is not a known option of this function",
				 n + 1, names && names[i] ? names[i] : "", funcid);
		}
		m->opt[n] = (int8) opt;
		m->type[n] = types[i];
		n++;
	}
	m->nargs = n;
	return m;
}

/* ---- values ---- */

/*
 * csvpipe.header_mode's input and output: a 4-byte value, the label's
 * CsvHeaderMode.  The input accepts the labels of the table's header entry
 * (any case) and names the option and its valid values otherwise; the
 * implicit cast from boolean (SQL) covers header => true and false.
 */
PG_FUNCTION_INFO_V1(csvpipe_header_mode_in);
PG_FUNCTION_INFO_V1(csvpipe_header_mode_out);

static int	label_value(const CsvOptionDef *def, const char *s);
static const char *label_of(const CsvOptionDef *def, int value);

Datum
csvpipe_header_mode_in(PG_FUNCTION_ARGS)
{
	PG_RETURN_INT32(label_value(&csv_option_defs[CSV_OPT_HEADER],
								PG_GETARG_CSTRING(0)));
}

Datum
csvpipe_header_mode_out(PG_FUNCTION_ARGS)
{
	PG_RETURN_CSTRING(pstrdup(label_of(&csv_option_defs[CSV_OPT_HEADER],
									   PG_GETARG_INT32(0))));
}

static CsvHeaderMode header_from_datum(const CsvOptionDef *def, Datum v, Oid typid);

/* the text of a text-like value */
static char *
value_cstring(Datum v, Oid typid)
{
	if (typid == UNKNOWNOID || typid == CSTRINGOID)
		return pstrdup(DatumGetCString(v));
	return TextDatumGetCString(v);
}

static int
label_value(const CsvOptionDef *def, const char *s)
{
	for (const CsvOptLabel *l = def->labels; l->label; l++)
		if (pg_strcasecmp(l->label, s) == 0)
			return l->value;
	invalid_value(def, s, psprintf("Valid values are %s.", labels_text(def->labels)));
	return 0;					/* keep the compiler quiet */
}

static const char *
label_of(const CsvOptionDef *def, int value)
{
	for (const CsvOptLabel *l = def->labels; l->label; l++)
		if (l->value == value)
			return l->label;
	return "?";
}

static CsvHeaderMode
header_from_datum(const CsvOptionDef *def, Datum v, Oid typid)
{
	char	   *label;

	if (typid == BOOLOID)
		return DatumGetBool(v) ? CSV_HEADER_SKIP : CSV_HEADER_NONE;
	if (typid == TEXTOID || typid == UNKNOWNOID || typid == CSTRINGOID)
		label = value_cstring(v, typid);
	else if (type_is_enum(typid))
	{
		/* csvpipe.header_mode of 1.0 and 1.1, an enum of the labels */
		label = DatumGetCString(DirectFunctionCall1(enum_out, v));
	}
	else
	{
		/* csvpipe.header_mode from 1.2 (csvpipe_header_mode_in) */
		return (CsvHeaderMode) label_value(def, label_of(def, DatumGetInt32(v)));
	}
	return (CsvHeaderMode) label_value(def, label);
}

/* A header => value of any type it comes as (csvpipe.sniff, ...) */
CsvHeaderMode
csv_header_option(Datum v, Oid typid)
{
	return header_from_datum(&csv_option_defs[CSV_OPT_HEADER], v, typid);
}

static int64
value_int(Datum v, Oid typid)
{
	switch (typid)
	{
		case INT2OID:
			return DatumGetInt16(v);
		case INT4OID:
			return DatumGetInt32(v);
		case INT8OID:
			return DatumGetInt64(v);
		default:
			elog(ERROR, "csvpipe: unexpected integer type %u", typid);
	}
	return 0;
}

static char
char_option(const CsvOptionDef *def, const char *s)
{
	if (strlen(s) != 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("csvpipe option \"%s\" must be a single one-byte character", def->name),
				 errdetail("Got \"%s\".", s),
		/* '\t' in a standard string is two characters: E'\t' is a tab */
				 strcmp(s, "\\t") == 0 ?
				 errhint("For a tab, write E'\\t'.") : 0));
	if (s[0] == '\r' || s[0] == '\n')
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("csvpipe option \"%s\" cannot be newline or carriage return", def->name)));
	return s[0];
}

/* text[] of column names to a List of C strings */
static List *
names_option(const CsvOptions *o, Datum v)
{
	ArrayType  *arr = DatumGetArrayTypeP(v);
	Datum	   *elems;
	bool	   *elemnulls;
	int			nelems;
	List	   *names = NIL;

	if (ARR_NDIM(arr) > 1)
		ereport(ERROR,
				(errcode(ERRCODE_ARRAY_SUBSCRIPT_ERROR),
				 errmsg("%s: columns must be a one-dimensional array", o->funcname)));
	deconstruct_array(arr, TEXTOID, -1, false, TYPALIGN_INT,
					  &elems, &elemnulls, &nelems);
	if (nelems == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s: columns must not be empty", o->funcname),
				 errhint("Pass NULL (the default) to load every column.")));
	for (int i = 0; i < nelems; i++)
	{
		if (elemnulls[i])
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("%s: column names must not be NULL", o->funcname)));
		names = lappend(names, TextDatumGetCString(elems[i]));
	}
	return names;
}

int
csv_workers_for(int asked)
{
	return Min(Min(asked, csvpipe_max_workers), CSVPIPE_MAX_WORKERS);
}

/* The defaults: what a call gets for an argument its SQL signature lacks */
static void
options_init(CsvOptions *o, uint32 fn, const char *funcname)
{
	memset(o, 0, sizeof(*o));
	o->funcname = funcname;
	o->fn = fn;
	o->dialect.delimiter = ',';
	o->dialect.quote = '"';
	o->dialect.escape = '\0';	/* resolved: the quote */
	o->dialect.header = CSV_HEADER_SKIP;
	o->dialect.null_string = pstrdup("");
	o->dialect.file_encoding = GetDatabaseEncoding();
	o->dialect.skip_rows = 0;
	o->nworkers = (fn & CSV_FN_ANY_READ) ? 0 : csv_workers_for(csvpipe_max_workers);
	o->ordered = true;
	o->mode = CSV_LOAD_MODE_TRANSACTION;
	o->chunk_size = (int64) csvpipe_chunk_size * 1024;
	o->max_errors = -1;
	o->progress = csvpipe_progress_notices;
	o->cache = true;
}

/*
 * One option's value (isnull: passed as NULL, which means its default for
 * every option but delimiter and quote, and header => NULL, which is false).
 */
static void
set_option(CsvOptions *o, int id, Datum v, bool isnull, Oid typid)
{
	const CsvOptionDef *def = &csv_option_defs[id];

	o->has[id] = true;
	o->isnull[id] = isnull;
	/* the row type is the argument's type, whatever its value (NULL::t) */
	if (id == CSV_OPT_ROWTYPE)
	{
		o->rowtype = typid;
		return;
	}
	if (isnull)
	{
		switch (id)
		{
			case CSV_OPT_DELIMITER:
			case CSV_OPT_QUOTE:
				/* sniff: NULL is "detect it" */
				if (o->fn & CSV_FN_SNIFF)
					break;
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("csvpipe option \"%s\" must not be NULL", def->name)));
				break;
			case CSV_OPT_HEADER:
				o->dialect.header = CSV_HEADER_NONE;
				break;
			default:
				break;
		}
		return;
	}

	switch (id)
	{
		case CSV_OPT_PATH:
			o->path = value_cstring(v, typid);
			break;
		case CSV_OPT_TARGET:
			if (typid == REGCLASSOID || typid == OIDOID)
				o->relid = DatumGetObjectId(v);
			else
				o->target_name = value_cstring(v, typid);
			break;
		case CSV_OPT_COLUMNS:
			o->columns = names_option(o, v);
			break;
		case CSV_OPT_DELIMITER:
			o->dialect.delimiter = char_option(def, value_cstring(v, typid));
			break;
		case CSV_OPT_QUOTE:
			o->dialect.quote = char_option(def, value_cstring(v, typid));
			break;
		case CSV_OPT_ESCAPE:
			o->dialect.escape = char_option(def, value_cstring(v, typid));
			break;
		case CSV_OPT_HEADER:
			o->dialect.header = header_from_datum(def, v, typid);
			break;
		case CSV_OPT_NULL_STRING:
			o->dialect.null_string = value_cstring(v, typid);
			break;
		case CSV_OPT_ENCODING:
			{
				char	   *name = value_cstring(v, typid);

				o->dialect.file_encoding = pg_char_to_encoding(name);
				if (o->dialect.file_encoding < 0)
					invalid_value(def, name,
								  "Valid values are PostgreSQL's encoding names, such as UTF8, LATIN1 or WIN1252 (see \"Character Set Support\" in its documentation).");
				break;
			}
		case CSV_OPT_SKIP_ROWS:
			o->dialect.skip_rows = value_int(v, typid);
			if (o->dialect.skip_rows < 0)
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("csvpipe skip_rows must not be negative")));
			break;
		case CSV_OPT_WORKERS:
			{
				int64		n = value_int(v, typid);

				if (n < 0)
					ereport(ERROR,
							(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
							 errmsg("csvpipe workers must not be negative")));
				o->nworkers = csv_workers_for((int) Min(n, INT_MAX));
				break;
			}
		case CSV_OPT_ORDERED:
			o->ordered = DatumGetBool(v);
			break;
		case CSV_OPT_MODE:
			o->mode = (CsvLoadMode) label_value(def, value_cstring(v, typid));
			break;
		case CSV_OPT_ATOMIC:
			o->atomic = DatumGetBool(v);
			break;
		case CSV_OPT_FREEZE:
			o->freeze = DatumGetBool(v);
			break;
		case CSV_OPT_CHUNK_SIZE:
			o->chunk_size = csv_check_chunk_size(value_int(v, typid));
			break;
		case CSV_OPT_ON_ERROR:
			o->on_error_skip = label_value(def, value_cstring(v, typid)) == 1;
			break;
		case CSV_OPT_MAX_ERRORS:
			o->max_errors = value_int(v, typid);
			if (o->max_errors < -1)
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("csvpipe max_errors must not be negative")));
			break;
		case CSV_OPT_PROGRESS:
			o->progress = DatumGetBool(v);
			break;
		case CSV_OPT_CACHE:
			o->cache = DatumGetBool(v);
			break;
		case CSV_OPT_PRIORITY:
			o->priority = (int32) value_int(v, typid);
			break;
		case CSV_OPT_FORCE:
			o->force = DatumGetBool(v);
			break;
		case CSV_OPT_MATCH:
			o->match_name = label_value(def, value_cstring(v, typid)) == 1;
			break;
		case CSV_OPT_EXTRA_COLUMNS:
			o->extra_ignore = label_value(def, value_cstring(v, typid)) == 1;
			break;
		case CSV_OPT_NAME:
			o->name = value_cstring(v, typid);
			break;
		case CSV_OPT_CREATE_TARGET:
			o->create_target = DatumGetBool(v);
			break;
		case CSV_OPT_SAMPLE_SIZE:
			o->sample_size = value_int(v, typid);
			if (o->sample_size < 1 || o->sample_size > CSV_MAX_CHUNK_SIZE)
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("csvpipe sample_size must be between 1 and %lld bytes",
								(long long) CSV_MAX_CHUNK_SIZE),
						 errdetail("Got " INT64_FORMAT ".", o->sample_size)));
			break;
		default:
			elog(ERROR, "csvpipe: option %d has no setter", id);
	}
}

/* What holds between options, once all are set */
static void
options_check(CsvOptions *o)
{
	CsvDialect *d = &o->dialect;

	if (d->escape == '\0')
		d->escape = d->quote;
	if (d->delimiter == d->quote)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("csvpipe delimiter and quote must be different")));
	if (d->escape != d->quote)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("csvpipe escape character must be the same as the quote character"),
				 errdetail("The libcsv tokenizer only understands doubled quotes inside quoted fields.")));

	d->null_len = strlen(d->null_string);
	if (strchr(d->null_string, '\r') || strchr(d->null_string, '\n'))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("csvpipe null_string cannot contain newline or carriage return")));
	if (strchr(d->null_string, d->delimiter))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("csvpipe delimiter must not appear in null_string")));

	if (d->file_encoding != GetDatabaseEncoding() &&
		GetDatabaseEncoding() != PG_SQL_ASCII &&
		d->file_encoding != PG_SQL_ASCII &&
		!OidIsValid(FindDefaultConversionProc(d->file_encoding,
											  GetDatabaseEncoding())))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_FUNCTION),
				 errmsg("no conversion from encoding \"%s\" to \"%s\"",
						pg_encoding_to_char(d->file_encoding),
						GetDatabaseEncodingName())));

	/*
	 * mode and 1.0's atomic.  Under the 1.0 SQL signature atomic boolean
	 * (DEFAULT true) stands where mode is now.  From 1.1 mode's SQL default
	 * is 'transaction', so it cannot say whether it was given: atomic
	 * decides unless mode names another mode.
	 */
	if (o->has[CSV_OPT_ATOMIC] && !o->has[CSV_OPT_MODE])
	{
		bool		atomic = o->isnull[CSV_OPT_ATOMIC] ? true : o->atomic;

		o->mode = atomic ? CSV_LOAD_MODE_PREPARED : CSV_LOAD_MODE_CHUNKED;
	}
	else if (o->has[CSV_OPT_ATOMIC] && !o->isnull[CSV_OPT_ATOMIC])
	{
		CsvLoadMode m = o->atomic ? CSV_LOAD_MODE_PREPARED : CSV_LOAD_MODE_CHUNKED;

		if (o->mode != CSV_LOAD_MODE_TRANSACTION && o->mode != m)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("csvpipe: atomic => %s contradicts mode => '%s'",
							o->atomic ? "true" : "false",
							csv_load_mode_label(o->mode)),
					 errhint("atomic is the 1.0 spelling of mode: use mode alone.")));
		o->mode = m;
	}
	o->atomic = (o->mode == CSV_LOAD_MODE_PREPARED);

	if (o->max_errors >= 0 && !o->on_error_skip)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("csvpipe max_errors needs on_error => 'skip'")));

	/* columns by name */
	if (o->match_name && d->header == CSV_HEADER_NONE)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("csvpipe match => 'name' needs a header"),
				 errhint("The names in the file's header pick the columns: load with header => true.")));
	if (o->match_name && o->columns != NIL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("csvpipe columns and match => 'name' cannot be combined"),
				 errhint("With match => 'name' the file's header names the columns it fills.")));
	if (o->extra_ignore && !o->match_name)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("csvpipe extra_columns => 'ignore' needs match => 'name'")));
}

/*
 * match => 'name': map the header's names to columns (names, ncolumns of
 * them; what: "table \"t\"" for errors).  A name matches the column of
 * the same name; failing that, the one column whose name equals it with
 * ASCII letters compared case-insensitively (two such columns: an error).
 * A field that matches no column is an error, listing all of them, unless
 * extra_ignore; a column named by two fields is an error.  Sets the
 * dialect's field map (nfile_fields, field_column: the column's index, or
 * -1 for an ignored field; file_header: the names as read) and returns
 * which columns the file has.  A caller with no use for a missing column
 * raises its own error.
 */
bool *
csv_match_header(CsvDialect *dialect, const CsvRecord *header, int ncolumns,
				 char *const *names, bool extra_ignore, const char *what)
{
	int			nf = header->nfields;
	int		   *field_column = palloc(sizeof(int) * Max(nf, 1));
	int		   *field_of = palloc(sizeof(int) * Max(ncolumns, 1));
	bool	   *present = palloc0(sizeof(bool) * Max(ncolumns, 1));
	char	  **file_header = palloc(sizeof(char *) * Max(nf, 1));
	StringInfoData extra;
	int			nextra = 0;
	int			nkept = 0;

	initStringInfo(&extra);
	for (int c = 0; c < ncolumns; c++)
		field_of[c] = -1;
	for (int f = 0; f < nf; f++)
	{
		const char *name = header->values[f] ? header->values[f] : "";
		int			col = -1;

		file_header[f] = pstrdup(name);
		for (int c = 0; c < ncolumns && col < 0; c++)
			if (strcmp(names[c], name) == 0)
				col = c;
		if (col < 0)
		{
			for (int c = 0; c < ncolumns; c++)
			{
				if (pg_strcasecmp(names[c], name) != 0)
					continue;
				if (col >= 0)
					ereport(ERROR,
							(errcode(ERRCODE_AMBIGUOUS_COLUMN),
							 errmsg("header field %d \"%s\" matches both \"%s\" and \"%s\" of %s",
									f + 1, name, names[col], names[c], what),
							 errhint("Rename one of them in the header or in the table: names that differ only in case match exactly only.")));
				col = c;
			}
		}
		if (col >= 0 && field_of[col] >= 0)
			ereport(ERROR,
					(errcode(ERRCODE_DUPLICATE_COLUMN),
					 errmsg("column \"%s\" of %s is named twice in the file's header, fields %d and %d",
							names[col], what, field_of[col] + 1, f + 1)));
		field_column[f] = col;
		if (col >= 0)
		{
			field_of[col] = f;
			present[col] = true;
			nkept++;
		}
		else
		{
			if (nextra > 0)
				appendStringInfoString(&extra, ", ");
			appendStringInfo(&extra, "\"%s\"", name);
			nextra++;
		}
	}
	if (nextra > 0 && (!extra_ignore || nkept == 0))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_COLUMN),
				 nkept == 0 ?
				 errmsg("no field of the file's header names a column of %s", what) :
				 errmsg("the file has %s that %s does not have: %s",
						nextra == 1 ? "a column" : "columns", what, extra.data),
				 nkept == 0 ?
				 errdetail("The header's names: %s.", extra.data) : 0,
				 nkept == 0 ?
				 errhint("Is the first record a header?  match => 'name' needs one.") :
				 errhint("Leave them out with extra_columns => 'ignore', or add them to the table.")));
	dialect->nfile_fields = nf;
	dialect->field_column = field_column;
	dialect->file_header = file_header;
	return present;
}

/* ---- from a call ---- */

/* errors in options name the call and its file, as the reading errors do */
static void
options_error_context(void *arg)
{
	CsvOptions *o = (CsvOptions *) arg;

	if (o->path)
		errcontext("%s \"%s\"", o->funcname, o->path);
}

/*
 * The options of a call of a csvpipe function, its arguments given as
 * evaluated values (argtypes: their actual types; NULL: as declared).
 */
void
csv_options_from_args(CsvOptions *opts, Oid funcid, uint32 fn, const char *funcname,
					  int nargs, const Datum *args, const bool *argnulls,
					  const Oid *argtypes)
{
	const CsvArgMap *m = argmap_for(funcid, fn);
	ErrorContextCallback errcallback;

	if (nargs != m->nargs)
		elog(ERROR, "%s: expected %d arguments, got %d", funcname, m->nargs, nargs);
	options_init(opts, fn, funcname);
	errcallback.callback = options_error_context;
	errcallback.arg = opts;
	errcallback.previous = error_context_stack;
	error_context_stack = &errcallback;
	/* in the table's order, so that errors come in that order too */
	for (int id = 0; id < CSV_NUM_OPTS; id++)
	{
		for (int i = 0; i < m->nargs; i++)
		{
			Oid			typid;

			if (m->opt[i] != id)
				continue;
			typid = (argtypes && OidIsValid(argtypes[i])) ? argtypes[i] : m->type[i];
			set_option(opts, id, args[i], argnulls[i], typid);
		}
	}
	options_check(opts);
	error_context_stack = errcallback.previous;
}

void
csv_options_from_fcinfo(CsvOptions *opts, FunctionCallInfo fcinfo, uint32 fn,
						const char *funcname)
{
	int			nargs = PG_NARGS();
	Datum	   *args = palloc(sizeof(Datum) * Max(nargs, 1));
	bool	   *argnulls = palloc(sizeof(bool) * Max(nargs, 1));
	Oid		   *argtypes = palloc(sizeof(Oid) * Max(nargs, 1));

	for (int i = 0; i < nargs; i++)
	{
		argnulls[i] = PG_ARGISNULL(i);
		args[i] = argnulls[i] ? (Datum) 0 : PG_GETARG_DATUM(i);
		argtypes[i] = get_fn_expr_argtype(fcinfo->flinfo, i);
	}
	csv_options_from_args(opts, fcinfo->flinfo->fn_oid, fn, funcname,
						  nargs, args, argnulls, argtypes);
}

/* ---- recorded with a job ---- */

static void
json_key(StringInfo buf, const char *key)
{
	if (buf->len > 1)
		appendStringInfoString(buf, ", ");
	escape_json(buf, key);
	appendStringInfoString(buf, ": ");
}

/*
 * The options of a load as JSON, recorded with its job (csvpipe.job.options):
 * every CSV_OPTF_JOB option, resolved (the worker count, chunk size and
 * encoding as they were decided), so that the job runs as submitted whoever
 * runs it.  csv_options_from_job() reads it back.
 */
char *
csv_options_job_json(const CsvOptions *o)
{
	StringInfoData buf;
	char		c[2] = {0, 0};
	ListCell   *lc;

	initStringInfo(&buf);
	appendStringInfoChar(&buf, '{');
	for (int id = 0; id < CSV_NUM_OPTS; id++)
	{
		const CsvOptionDef *def = &csv_option_defs[id];

		if ((def->flags & CSV_OPTF_JOB) == 0)
			continue;
		switch (id)
		{
			case CSV_OPT_COLUMNS:
				if (o->columns == NIL)
					continue;
				json_key(&buf, def->name);
				appendStringInfoChar(&buf, '[');
				foreach(lc, o->columns)
				{
					if (lc != list_head(o->columns))
						appendStringInfoString(&buf, ", ");
					escape_json(&buf, (char *) lfirst(lc));
				}
				appendStringInfoChar(&buf, ']');
				break;
			case CSV_OPT_DELIMITER:
			case CSV_OPT_QUOTE:
			case CSV_OPT_ESCAPE:
				c[0] = id == CSV_OPT_DELIMITER ? o->dialect.delimiter :
					id == CSV_OPT_QUOTE ? o->dialect.quote : o->dialect.escape;
				json_key(&buf, def->name);
				escape_json(&buf, c);
				break;
			case CSV_OPT_HEADER:
				json_key(&buf, def->name);
				escape_json(&buf, label_of(def, o->dialect.header));
				break;
			case CSV_OPT_NULL_STRING:
				json_key(&buf, def->name);
				escape_json(&buf, o->dialect.null_string);
				break;
			case CSV_OPT_ENCODING:
				json_key(&buf, def->name);
				escape_json(&buf, pg_encoding_to_char(o->dialect.file_encoding));
				break;
			case CSV_OPT_SKIP_ROWS:
				json_key(&buf, def->name);
				appendStringInfo(&buf, INT64_FORMAT, o->dialect.skip_rows);
				break;
			case CSV_OPT_WORKERS:
				json_key(&buf, def->name);
				appendStringInfo(&buf, "%d", o->nworkers);
				break;
			case CSV_OPT_MODE:
				json_key(&buf, def->name);
				escape_json(&buf, csv_load_mode_label(o->mode));
				break;
			case CSV_OPT_ATOMIC:
			case CSV_OPT_FREEZE:
				json_key(&buf, def->name);
				appendStringInfoString(&buf, (id == CSV_OPT_ATOMIC ? o->atomic : o->freeze) ?
									   "true" : "false");
				break;
			case CSV_OPT_CHUNK_SIZE:
				json_key(&buf, def->name);
				appendStringInfo(&buf, INT64_FORMAT, o->chunk_size);
				break;
			case CSV_OPT_ON_ERROR:
				json_key(&buf, def->name);
				escape_json(&buf, o->on_error_skip ? "skip" : "stop");
				break;
			case CSV_OPT_MAX_ERRORS:
				json_key(&buf, def->name);
				appendStringInfo(&buf, INT64_FORMAT, o->max_errors);
				break;
			case CSV_OPT_MATCH:
				json_key(&buf, def->name);
				escape_json(&buf, label_of(def, o->match_name ? 1 : 0));
				break;
			case CSV_OPT_EXTRA_COLUMNS:
				json_key(&buf, def->name);
				escape_json(&buf, label_of(def, o->extra_ignore ? 1 : 0));
				break;
			default:
				elog(ERROR, "csvpipe: option \"%s\" has no JSON form", def->name);
		}
	}
	appendStringInfoChar(&buf, '}');
	return buf.data;
}

/* A recorded JSON value as the Datum its option takes */
static bool
json_to_datum(const CsvOptionDef *def, JsonbValue *jv, Datum *v, Oid *typid)
{
	switch (jv->type)
	{
		case jbvNull:
			return false;
		case jbvString:
			*v = PointerGetDatum(cstring_to_text_with_len(jv->val.string.val,
														  jv->val.string.len));
			*typid = TEXTOID;
			/* booleans were once recorded as strings ("true") */
			if (def->kind == CSV_OK_BOOL)
			{
				bool		b;

				if (!parse_bool(TextDatumGetCString(*v), &b))
					elog(ERROR, "csvpipe: recorded option \"%s\" is not a boolean", def->name);
				*v = BoolGetDatum(b);
				*typid = BOOLOID;
			}
			return true;
		case jbvNumeric:
			*v = DirectFunctionCall1(numeric_int8, NumericGetDatum(jv->val.numeric));
			*typid = INT8OID;
			return true;
		case jbvBool:
			*v = BoolGetDatum(jv->val.boolean);
			*typid = BOOLOID;
			return true;
		case jbvBinary:
			{
				/* an array of strings: column names */
				JsonbIterator *it = JsonbIteratorInit(jv->val.binary.data);
				JsonbValue	elem;
				JsonbIteratorToken tok;
				ArrayBuildState *astate = initArrayResult(TEXTOID, CurrentMemoryContext, false);

				while ((tok = JsonbIteratorNext(&it, &elem, true)) != WJB_DONE)
				{
					if (tok != WJB_ELEM)
						continue;
					if (elem.type == jbvString)
						accumArrayResult(astate,
										 PointerGetDatum(cstring_to_text_with_len(elem.val.string.val,
																				  elem.val.string.len)),
										 false, TEXTOID, CurrentMemoryContext);
					else
						accumArrayResult(astate, (Datum) 0, true, TEXTOID, CurrentMemoryContext);
				}
				*v = makeArrayResult(astate, CurrentMemoryContext);
				*typid = TEXTARRAYOID;
				return true;
			}
		default:
			elog(ERROR, "csvpipe: recorded option \"%s\" has an unexpected JSON type", def->name);
	}
	return false;
}

/*
 * The options recorded with a job (csv_options_job_json), through the same
 * validation as a call's.  atomic: the job row's column, which says the
 * mode of jobs recorded before mode existed.
 */
void
csv_options_from_job(CsvOptions *opts, Jsonb *options, bool atomic, const char *funcname)
{
	options_init(opts, CSV_FN_LOAD, funcname);
	for (int id = 0; id < CSV_NUM_OPTS; id++)
	{
		const CsvOptionDef *def = &csv_option_defs[id];
		JsonbValue	jv;
		Datum		v = (Datum) 0;
		Oid			typid = InvalidOid;
		bool		notnull;

		if ((def->flags & CSV_OPTF_JOB) == 0 || id == CSV_OPT_ATOMIC)
			continue;			/* atomic: written from mode, not read */
		if (options == NULL ||
			getKeyJsonValueFromContainer(&options->root, def->name,
										 strlen(def->name), &jv) == NULL)
			continue;
		notnull = json_to_datum(def, &jv, &v, &typid);
		set_option(opts, id, v, !notnull, typid);
	}
	/* jobs of 1.0 have no mode: their atomic flag says it */
	if (!opts->has[CSV_OPT_MODE] || opts->isnull[CSV_OPT_MODE])
	{
		opts->mode = atomic ? CSV_LOAD_MODE_PREPARED : CSV_LOAD_MODE_CHUNKED;
		opts->has[CSV_OPT_MODE] = true;
		opts->isnull[CSV_OPT_MODE] = false;
	}
	options_check(opts);
}

/*
 * What changes the rows of a read, for the result cache's key: the entries
 * marked CSV_OPTF_ROWS, in the table's order, exactly into sig and (when
 * describe is not NULL) readably into describe (the csvpipe.cache view);
 * and match => 'name''s field map, which picks the fields.
 */
void
csv_dialect_rows_key(const CsvDialect *d, StringInfo sig, StringInfo describe)
{
	for (int id = 0; id < CSV_NUM_OPTS; id++)
	{
		const CsvOptionDef *def = &csv_option_defs[id];
		char		c[2] = {0, 0};
		const char *text = NULL;	/* describe's value */

		if ((def->flags & CSV_OPTF_ROWS) == 0)
			continue;
		appendStringInfo(sig, "%s=", def->name);
		switch (id)
		{
			case CSV_OPT_DELIMITER:
			case CSV_OPT_QUOTE:
			case CSV_OPT_ESCAPE:
				c[0] = id == CSV_OPT_DELIMITER ? d->delimiter :
					id == CSV_OPT_QUOTE ? d->quote : d->escape;
				appendStringInfoChar(sig, c[0]);
				/* escape is the quote: not worth a word in the view */
				if (id != CSV_OPT_ESCAPE || d->escape != d->quote)
					text = quote_literal_cstr(c);
				break;
			case CSV_OPT_HEADER:
				appendStringInfo(sig, "%d", (int) d->header);
				text = label_of(def, d->header);
				break;
			case CSV_OPT_NULL_STRING:
				appendStringInfo(sig, "%d:", d->null_len);
				appendBinaryStringInfo(sig, d->null_string, d->null_len);
				text = quote_literal_cstr(d->null_string);
				break;
			case CSV_OPT_ENCODING:
				appendStringInfo(sig, "%d", d->file_encoding);
				text = pg_encoding_to_char(d->file_encoding);
				break;
			case CSV_OPT_SKIP_ROWS:
				appendStringInfo(sig, INT64_FORMAT, d->skip_rows);
				text = psprintf(INT64_FORMAT, d->skip_rows);
				break;
			default:
				elog(ERROR, "csvpipe: option \"%s\" has no cache key form", def->name);
		}
		appendStringInfoChar(sig, ';');
		if (describe && text)
			appendStringInfo(describe, "%s%s %s", describe->len > 0 ? ", " : "",
							 def->name, text);
	}
	if (d->nfile_fields > 0)
	{
		appendStringInfo(sig, "map=%d:", d->nfile_fields);
		for (int f = 0; f < d->nfile_fields; f++)
		{
			appendStringInfo(sig, "%d/%zu:", d->field_column[f],
							 d->file_header ? strlen(d->file_header[f]) : 0);
			if (d->file_header)
				appendStringInfoString(sig, d->file_header[f]);
		}
		appendStringInfoChar(sig, ';');
		if (describe)
			appendStringInfoString(describe, ", match name");
	}
}

/* ---- handed to the workers ---- */

/*
 * The options as the parallel workers get them (pool.c puts them in the
 * call's segment, worker.c reads them back): the CSV_OPTF_WORKER options,
 * in the table's order -- the dialect's, on_error and max_errors -- then
 * match => 'name''s field map.  columns is not on the wire: the segment's
 * column list (parallel.h) carries the columns it resolves to.  skip_rows
 * and the header are not handed on: the leader consumes them.  Leader and
 * workers run one library, so the form needs no version; it starts with
 * its length, which the reader checks it read exactly.
 */
void
csv_options_to_wire(const CsvOptions *o, StringInfo wire)
{
	const CsvDialect *d = &o->dialect;
	int			start = wire->len;
	uint32		len;

	pq_sendint32(wire, 0);		/* the length, set at the end */
	for (int id = 0; id < CSV_NUM_OPTS; id++)
	{
		const CsvOptionDef *def = &csv_option_defs[id];

		if ((def->flags & CSV_OPTF_WORKER) == 0)
			continue;
		switch (id)
		{
			case CSV_OPT_DELIMITER:
				pq_sendbyte(wire, (uint8) d->delimiter);
				break;
			case CSV_OPT_QUOTE:
				pq_sendbyte(wire, (uint8) d->quote);
				break;
			case CSV_OPT_ESCAPE:
				pq_sendbyte(wire, (uint8) d->escape);
				break;
			case CSV_OPT_NULL_STRING:
				pq_sendint32(wire, (uint32) d->null_len);
				pq_sendbytes(wire, d->null_string, d->null_len);
				break;
			case CSV_OPT_ENCODING:
				pq_sendint32(wire, (uint32) d->file_encoding);
				break;
			case CSV_OPT_ON_ERROR:
				pq_sendbyte(wire, o->on_error_skip ? 1 : 0);
				break;
			case CSV_OPT_MAX_ERRORS:
				pq_sendint64(wire, o->max_errors);
				break;
			case CSV_OPT_COLUMNS:
				break;			/* the segment's column list (see above) */
			default:
				elog(ERROR, "csvpipe: option \"%s\" has no form for the workers", def->name);
		}
	}
	pq_sendint32(wire, (uint32) d->nfile_fields);
	for (int f = 0; f < d->nfile_fields; f++)
		pq_sendint32(wire, (uint32) d->field_column[f]);
	len = pg_hton32((uint32) (wire->len - start));
	memcpy(wire->data + start, &len, sizeof(len));
}

/*
 * A worker's options from csv_options_to_wire()'s form (palloc'd copies):
 * the CSV_OPTF_WORKER options and the field map; the rest is zero.
 */
void
csv_options_from_wire(CsvOptions *o, const char *wire)
{
	CsvDialect *d = &o->dialect;
	StringInfoData buf;
	uint32		len;

	memcpy(&len, wire, sizeof(len));
	buf.data = (char *) wire;
	buf.len = (int) pg_ntoh32(len);
	buf.maxlen = buf.len;
	buf.cursor = sizeof(len);

	memset(o, 0, sizeof(CsvOptions));
	d->header = CSV_HEADER_NONE;	/* the leader consumed it */
	d->skip_rows = 0;
	for (int id = 0; id < CSV_NUM_OPTS; id++)
	{
		const CsvOptionDef *def = &csv_option_defs[id];

		if ((def->flags & CSV_OPTF_WORKER) == 0)
			continue;
		switch (id)
		{
			case CSV_OPT_DELIMITER:
				d->delimiter = (char) pq_getmsgbyte(&buf);
				break;
			case CSV_OPT_QUOTE:
				d->quote = (char) pq_getmsgbyte(&buf);
				break;
			case CSV_OPT_ESCAPE:
				d->escape = (char) pq_getmsgbyte(&buf);
				break;
			case CSV_OPT_NULL_STRING:
				d->null_len = (int) pq_getmsgint(&buf, 4);
				d->null_string = pnstrdup(pq_getmsgbytes(&buf, d->null_len), d->null_len);
				break;
			case CSV_OPT_ENCODING:
				d->file_encoding = (int) pq_getmsgint(&buf, 4);
				break;
			case CSV_OPT_ON_ERROR:
				o->on_error_skip = pq_getmsgbyte(&buf) != 0;
				break;
			case CSV_OPT_MAX_ERRORS:
				o->max_errors = pq_getmsgint64(&buf);
				break;
			case CSV_OPT_COLUMNS:
				break;			/* the segment's column list */
			default:
				elog(ERROR, "csvpipe: option \"%s\" has no form for the workers", def->name);
		}
	}
	d->nfile_fields = (int) pq_getmsgint(&buf, 4);
	if (d->nfile_fields > 0)
	{
		d->field_column = palloc(sizeof(int) * d->nfile_fields);
		for (int f = 0; f < d->nfile_fields; f++)
			d->field_column[f] = (int) pq_getmsgint(&buf, 4);
	}
	pq_getmsgend(&buf);
}

const char *
csv_load_mode_label(CsvLoadMode mode)
{
	switch (mode)
	{
		case CSV_LOAD_MODE_TRANSACTION:
			return "transaction";
		case CSV_LOAD_MODE_PREPARED:
			return "prepared";
		case CSV_LOAD_MODE_CHUNKED:
			return "chunked";
		default:
			return "unset";
	}
}
