/*-------------------------------------------------------------------------
 *
 * convert.c
 *		CSV fields to Datums, with the column types' input functions.
 *
 * Owns the per-column input function lookup, COPY's CSV NULL rules, the
 * header => 'match' check, the field-count check, the columns a file fills
 * in read(path, NULL::t) and t's domain check, and the error context line
 * ("csvpipe.read "/path", line 12, column amount: "12,5"") that every error
 * raised while reading a file carries.
 *
 * NULL rules (as COPY ... CSV): with the default null_string '', an empty
 * unquoted field is NULL and a quoted empty field ("") is an empty string.
 * With another null_string, a field equal to it is NULL and an empty
 * unquoted field is an empty string.  (libcsv does not report whether a
 * non-empty field was quoted, so a quoted field equal to a non-empty
 * null_string is NULL too; doc/reference.md documents this.)
 *
 *-------------------------------------------------------------------------
 */
#include "csvfile.h"
#include "sniff.h"

#include "catch.h"
#include "access/htup_details.h"
#include "access/xact.h"
#include "catalog/pg_type.h"
#include "funcapi.h"
#include "utils/memutils.h"
#include "utils/resowner.h"
#include "mb/pg_wchar.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/typcache.h"

/* how much of a bad value an error context line shows (as COPY) */
#define MAX_VALUE_DISPLAY 100

struct CsvConverter
{
	int			natts;
	FmgrInfo   *in_functions;
	Oid		   *typids;
	Oid		   *typioparams;
	int32	   *typmods;
	CsvFastInput *fast;			/* fastinput.c's shape for the type, if any */
	bool	   *convert;		/* false: column not needed, left NULL */
	char	  **names;
	int		   *field_of;		/* match => 'name': the file field of each
								 * column; NULL: field i is column i */
	int			nfields;		/* fields a record must have */
	bool		safe_input;		/* errors of every converted column can be caught cheaply */
	bool		hint_columns;	/* a wrong field count names the columns */
	/* read(path, NULL::t) with t a domain: its check, with each row */
	Oid			domain;
	TupleDesc	rowdesc;		/* t's columns, to form the value checked */
	int		   *out_field;		/* per column of t: its column here, or -1 */
	Datum	   *out_values;
	bool	   *out_nulls;
	void	   *domain_extra;	/* domain_check()'s cache */
	MemoryContext cxt;			/* where that lives */
	const CsvDialect *dialect;
	CsvErrorPosition *errpos;
};

void
csv_error_context_callback(void *arg)
{
	CsvErrorPosition *pos = (CsvErrorPosition *) arg;
	const char *column = pos->column;
	char		fieldbuf[32];

	if (pos->line_no <= 0)
	{
		errcontext("%s \"%s\"", pos->funcname, pos->path);
		return;
	}
	if (column == NULL && pos->field_no > 0)
	{
		if (pos->column_names && pos->field_no <= pos->ncolumns)
			column = pos->column_names[pos->field_no - 1];
		else
		{
			snprintf(fieldbuf, sizeof(fieldbuf), "field %d", pos->field_no);
			errcontext("%s \"%s\", line %lld, %s", pos->funcname, pos->path,
					   (long long) pos->line_no, fieldbuf);
			return;
		}
	}
	if (column == NULL)
		errcontext("%s \"%s\", line %lld", pos->funcname, pos->path,
				   (long long) pos->line_no);
	else if (pos->value == NULL)
		errcontext("%s \"%s\", line %lld, column %s", pos->funcname, pos->path,
				   (long long) pos->line_no, column);
	else
	{
		int			len = strlen(pos->value);

		if (len > MAX_VALUE_DISPLAY)
		{
			len = pg_mbcliplen(pos->value, len, MAX_VALUE_DISPLAY);
			errcontext("%s \"%s\", line %lld, column %s: \"%.*s...\"",
					   pos->funcname, pos->path, (long long) pos->line_no,
					   column, len, pos->value);
		}
		else
			errcontext("%s \"%s\", line %lld, column %s: \"%s\"",
					   pos->funcname, pos->path, (long long) pos->line_no,
					   column, pos->value);
	}
}

/* The NULL rules above, for one field (len: its length) */
static inline char *
apply_null_rule(const CsvDialect *dialect, char *s, int len)
{
	if (dialect->null_len > 0)
	{
		if (s == NULL)
			return (char *) "";
		if (len == dialect->null_len &&
			memcmp(s, dialect->null_string, len) == 0)
			return NULL;
	}
	return s;
}

/*
 * convert_columns: which columns the query needs (NULL = all).  Columns not
 * needed are returned as NULL without running their input function, as
 * file_fdw does.
 */
CsvConverter *
csv_converter_create(TupleDesc tupdesc, const CsvDialect *dialect,
					 CsvErrorPosition *errpos, bool *convert_columns)
{
	CsvConverter *conv = palloc0(sizeof(CsvConverter));
	int			natts = tupdesc->natts;

	conv->natts = natts;
	conv->dialect = dialect;
	conv->errpos = errpos;
	errpos->dialect = dialect;
	conv->in_functions = palloc(sizeof(FmgrInfo) * natts);
	conv->typids = palloc(sizeof(Oid) * natts);
	conv->typioparams = palloc(sizeof(Oid) * natts);
	conv->typmods = palloc(sizeof(int32) * natts);
	conv->fast = palloc0(sizeof(CsvFastInput) * natts);
	conv->convert = palloc(sizeof(bool) * natts);
	conv->names = palloc(sizeof(char *) * natts);
	conv->safe_input = true;

	for (int i = 0; i < natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(tupdesc, i);
		Oid			infunc;

		conv->names[i] = pstrdup(NameStr(att->attname));
		conv->typids[i] = att->atttypid;
		conv->convert[i] = convert_columns ? convert_columns[i] : true;
		if (att->attisdropped)
		{
			conv->convert[i] = false;
			continue;
		}
		if (conv->convert[i] && !csv_input_is_safe(att->atttypid))
			conv->safe_input = false;
		getTypeInputInfo(att->atttypid, &infunc, &conv->typioparams[i]);
		fmgr_info(infunc, &conv->in_functions[i]);
		conv->typmods[i] = att->atttypmod;
		conv->fast[i] = csv_fast_input_kind(att->atttypid, att->atttypmod);
	}
	/* match => 'name' (insert/match.c): the fields that fill the columns */
	conv->nfields = natts;
	if (dialect->nfile_fields > 0)
	{
		conv->nfields = dialect->nfile_fields;
		conv->field_of = palloc(sizeof(int) * Max(natts, 1));
		for (int i = 0; i < natts; i++)
			conv->field_of[i] = -1;
		for (int f = 0; f < dialect->nfile_fields; f++)
			if (dialect->field_column[f] >= 0 && dialect->field_column[f] < natts)
				conv->field_of[dialect->field_column[f]] = f;
		for (int i = 0; i < natts; i++)
			if (conv->field_of[i] < 0)
				elog(ERROR, "csvpipe: column \"%s\" has no field in the file's map", conv->names[i]);
	}
	errpos->column_names = conv->field_of ? NULL : conv->names;
	errpos->ncolumns = natts;
	return conv;
}

/*
 * The hint of a record with the wrong number of fields: when the whole file
 * has that many, the column list does not fit it.
 */
static int
field_count_hint(CsvConverter *conv, int found)
{
	if (conv->field_of != NULL)
		return 0;
	if (found < conv->natts)
		return errhint("If every record of the file has %d fields: name the columns they fill with columns => ARRAY[...] (the others get their defaults), or, when the file's header names them, load with match => 'name'.",
					   found);
	return errhint("If every record of the file has %d fields: with a header naming them, match => 'name' maps them to columns by name, and extra_columns => 'ignore' leaves out those the target lacks.",
				   found);
}

/*
 * The columns of read(path, NULL::t)'s rows: t's, or its base type's for a
 * domain.  Anything but a named composite type is refused (for both the
 * FunctionScan and the CustomScan), with the way to say what was meant.
 */
TupleDesc
csv_rowtype_desc(Oid rowtype, const char *funcname)
{
	Oid			base;

	if (!OidIsValid(rowtype) || IsPolymorphicType(rowtype))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s: could not determine the row type", funcname)));
	base = getBaseType(rowtype);
	if (base == RECORDOID)
		ereport(ERROR,
				(errcode(ERRCODE_DATATYPE_MISMATCH),
				 errmsg("%s: the row type must be a named composite type, not record", funcname),
				 errhint("Pass NULL::a_table or NULL::a_composite_type, or use %s(path) with a column definition list.",
						 funcname)));
	if (!type_is_rowtype(base))
		ereport(ERROR,
				(errcode(ERRCODE_DATATYPE_MISMATCH),
				 errmsg("%s: the row type must be a composite type, not %s",
						funcname, format_type_be(rowtype)),
				 errhint("Pass NULL::a_table or NULL::a_composite_type, or use %s(path) with a column definition list.",
						 funcname)));
	return lookup_rowtype_tupdesc_copy(base, -1);
}

/*
 * The file's columns of read(path, NULL::t): t's columns (rowdesc) but
 * the dropped ones and a table's generated ones, in t's order -- what COPY
 * t FROM reads.  out_field[i]: column i's position in the file, or -1.
 */
TupleDesc
csv_rowtype_file_desc(Oid rowtype, TupleDesc rowdesc, int *out_field,
					  const char *funcname)
{
	Oid			relid = get_typ_typrelid(getBaseType(rowtype));
	int			nfile = 0;
	TupleDesc	file_desc;

	for (int i = 0; i < rowdesc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(rowdesc, i);

		out_field[i] = -1;
		if (att->attisdropped)
			continue;
		/* the tuple descriptor a type lookup returns has no attgenerated */
		if (OidIsValid(relid) && get_attgenerated(relid, att->attnum) != '\0')
			continue;
		out_field[i] = nfile++;
	}
	if (nfile == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s: the row type %s has no column a file can fill",
						funcname, format_type_be(rowtype))));
	file_desc = CreateTemplateTupleDesc(nfile);
	for (int i = 0; i < rowdesc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(rowdesc, i);

		if (out_field[i] < 0)
			continue;
		TupleDescInitEntry(file_desc, (AttrNumber) (out_field[i] + 1),
						   NameStr(att->attname), att->atttypid,
						   att->atttypmod, 0);
		TupleDescInitEntryCollation(file_desc, (AttrNumber) (out_field[i] + 1),
									att->attcollation);
	}
	return file_desc;
}

/*
 * The converter of read(path, NULL::t) (its columns: the file's, from
 * csv_rowtype_file_desc), in the leader and in each worker: a wrong number
 * of fields hints at the columns the fields fill, as the caller wrote no
 * column list to compare with; a domain over t is checked with each row,
 * where the line is known and on_error => 'skip' can skip it.
 */
void
csv_converter_set_rowtype(CsvConverter *conv, Oid rowtype)
{
	const char *funcname = conv->errpos->funcname;
	TupleDesc	rowdesc;
	int		   *out_field;
	int			nfound = 0;

	conv->hint_columns = true;
	if (getBaseType(rowtype) == rowtype)
		return;

	/*
	 * The converter's columns are t's that the file fills (all, or with
	 * match => 'name' those its header names), by name: a worker looks the
	 * type up again, and it must be what the leader saw.
	 */
	rowdesc = csv_rowtype_desc(rowtype, funcname);
	out_field = palloc(sizeof(int) * rowdesc->natts);
	for (int i = 0; i < rowdesc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(rowdesc, i);

		out_field[i] = -1;
		if (att->attisdropped)
			continue;
		for (int c = 0; c < conv->natts; c++)
		{
			if (strcmp(conv->names[c], NameStr(att->attname)) != 0)
				continue;
			if (conv->typids[c] != att->atttypid)
				elog(ERROR, "%s: the row type %s changed during the read",
					 funcname, format_type_be(rowtype));
			out_field[i] = c;
			nfound++;
			break;
		}
	}
	if (nfound != conv->natts)
		elog(ERROR, "%s: the row type %s changed during the read",
			 funcname, format_type_be(rowtype));
	conv->domain = rowtype;
	conv->rowdesc = BlessTupleDesc(rowdesc);
	conv->out_field = out_field;
	conv->out_values = palloc(sizeof(Datum) * rowdesc->natts);
	conv->out_nulls = palloc(sizeof(bool) * rowdesc->natts);
	conv->cxt = CurrentMemoryContext;
	/* a CHECK can run anything: its errors are caught in a subtransaction */
	conv->safe_input = false;
}

/* t's domain check on a converted row (the error context names its line) */
static void
check_domain(CsvConverter *conv, Datum *values, bool *nulls)
{
	HeapTuple	tuple;

	for (int i = 0; i < conv->rowdesc->natts; i++)
	{
		int			f = conv->out_field[i];

		conv->out_values[i] = f >= 0 ? values[f] : (Datum) 0;
		conv->out_nulls[i] = f >= 0 ? nulls[f] : true;
	}
	tuple = heap_form_tuple(conv->rowdesc, conv->out_values, conv->out_nulls);
	domain_check(HeapTupleGetDatum(tuple), false, conv->domain,
				 &conv->domain_extra, conv->cxt);
}

/* errhint() for a wrong field count, or 0 */
static int
count_hint(CsvConverter *conv)
{
	StringInfoData buf;
	int			shown = Min(conv->natts, 30);

	if (!conv->hint_columns)
		return 0;
	if (conv->field_of != NULL)
		return errhint("With match => 'name', every record has as many fields as the header (%d).",
					   conv->nfields);
	initStringInfo(&buf);
	for (int i = 0; i < shown; i++)
	{
		if (i > 0)
			appendStringInfoString(&buf, ", ");
		appendStringInfoString(&buf, quote_identifier(conv->names[i]));
	}
	if (shown < conv->natts)
		appendStringInfo(&buf, " and %d more", conv->natts - shown);
	return errhint("The file's fields fill the row type's columns in order: %s (generated and dropped columns are not in the file).",
				   buf.data);
}

/* header => 'match': names and count must equal the column list */
void
csv_converter_check_header(CsvConverter *conv, CsvRecord *header)
{
	if (header == NULL)
		return;					/* empty file */

	conv->errpos->line_no = header->line_no;
	if (conv->field_of != NULL)
	{
		/* match => 'name': the header must be the one that was mapped */
		const CsvDialect *d = conv->dialect;

		if (header->nfields != d->nfile_fields)
			ereport(ERROR,
					(errcode(ERRCODE_BAD_COPY_FILE_FORMAT),
					 errmsg("wrong number of fields in header line: expected %d, found %d",
							d->nfile_fields, header->nfields),
					 errdetail("The file's header changed after its names were matched to the columns.")));
		for (int f = 0; f < d->nfile_fields; f++)
		{
			const char *got = header->values[f] ? header->values[f] : "";

			if (strcmp(got, d->file_header[f]) != 0)
				ereport(ERROR,
						(errcode(ERRCODE_BAD_COPY_FILE_FORMAT),
						 errmsg("column name mismatch in header line field %d: got \"%s\", expected \"%s\"",
								f + 1, got, d->file_header[f]),
						 errdetail("The file's header changed after its names were matched to the columns.")));
		}
		return;
	}
	if (header->nfields != conv->natts)
	{
		const char *hint = csv_sniff_dialect_hint(conv->errpos, conv->natts);

		ereport(ERROR,
				(errcode(ERRCODE_BAD_COPY_FILE_FORMAT),
				 errmsg("wrong number of fields in header line: expected %d, found %d",
						conv->natts, header->nfields),
				 hint ? errhint("%s", hint) : count_hint(conv)));
	}
	for (int i = 0; i < conv->natts; i++)
	{
		const char *got = header->values[i];

		if (got == NULL)
			ereport(ERROR,
					(errcode(ERRCODE_BAD_COPY_FILE_FORMAT),
					 errmsg("column name mismatch in header line field %d: got null value, expected \"%s\"",
							i + 1, conv->names[i])));
		if (strcmp(got, conv->names[i]) != 0)
			ereport(ERROR,
					(errcode(ERRCODE_BAD_COPY_FILE_FORMAT),
					 errmsg("column name mismatch in header line field %d: got \"%s\", expected \"%s\"",
							i + 1, got, conv->names[i])));
	}
}

/*
 * Convert one record into values/nulls.  Allocations (the Datums) go to the
 * caller's current memory context, which the caller resets per row or batch.
 */
void
csv_converter_row(CsvConverter *conv, CsvRecord *rec, Datum *values, bool *nulls)
{
	CsvErrorPosition *errpos = conv->errpos;

	if (rec->bad)
		csv_record_raise_bad(rec, errpos);
	errpos->line_no = rec->line_no;
	if (rec->nfields != conv->nfields)
	{
		/* a wrong delimiter or quote, most often: name the likely one */
		const char *hint = csv_sniff_dialect_hint(errpos, conv->nfields);

		errpos->field_no = 0;
		ereport(ERROR,
				(errcode(ERRCODE_BAD_COPY_FILE_FORMAT),
				 errmsg("wrong number of fields: expected %d, found %d",
						conv->nfields, rec->nfields),
				 hint ? errhint("%s", hint) :
				 conv->hint_columns ? count_hint(conv) :
				 field_count_hint(conv, rec->nfields)));
	}

	for (int i = 0; i < conv->natts; i++)
	{
		char	   *s;
		int			f = conv->field_of ? conv->field_of[i] : i;

		if (!conv->convert[i])
		{
			values[i] = (Datum) 0;
			nulls[i] = true;
			continue;
		}
		s = apply_null_rule(conv->dialect, rec->values[f], rec->lengths[f]);
		/* the common shapes of some types are read here, exactly */
		if (s != NULL && conv->fast[i] != CSV_FAST_NONE &&
			csv_fast_input(conv->fast[i], s, &values[i]))
		{
			nulls[i] = false;
			continue;
		}
		errpos->column = conv->names[i];
		errpos->value = s;
		values[i] = InputFunctionCall(&conv->in_functions[i], s,
									  conv->typioparams[i], conv->typmods[i]);
		nulls[i] = (s == NULL);
	}
	errpos->column = NULL;
	errpos->value = NULL;
	if (OidIsValid(conv->domain))
		check_domain(conv, values, nulls);
}

/*
 * read_text's row: (line_no bigint, fields text[]), with the same NULL rules.
 * Allocations go to the caller's current memory context.
 */
void
csv_text_row(const CsvDialect *dialect, CsvRecord *rec, Datum *values, bool *nulls,
			 CsvErrorPosition *errpos)
{
	Datum	   *elems = palloc(sizeof(Datum) * Max(rec->nfields, 1));
	bool	   *elemnulls = palloc(sizeof(bool) * Max(rec->nfields, 1));
	int			dims[1];
	int			lbs[1] = {1};

	if (rec->bad)
		csv_record_raise_bad(rec, errpos);
	for (int i = 0; i < rec->nfields; i++)
	{
		int			len = rec->lengths[i];
		char	   *s = apply_null_rule(dialect, rec->values[i], len);

		elemnulls[i] = (s == NULL);
		elems[i] = s ? PointerGetDatum(cstring_to_text_with_len(s, len)) : (Datum) 0;
	}
	dims[0] = rec->nfields;
	values[0] = Int64GetDatum(rec->line_no);
	nulls[0] = false;
	values[1] = PointerGetDatum(construct_md_array(elems, elemnulls, 1, dims, lbs,
												   TEXTOID, -1, false, TYPALIGN_INT));
	nulls[1] = false;
}

/*
 * Catching conversion errors (on_error => 'skip'): errors of input functions
 * known to touch no shared state are caught directly; others need a
 * subtransaction.
 */
typedef struct ConvertArgs
{
	CsvConverter *conv;
	CsvRecord  *rec;
	Datum	   *values;
	bool	   *nulls;
} ConvertArgs;

static void
convert_row(void *arg)
{
	ConvertArgs *a = (ConvertArgs *) arg;

	csv_converter_row(a->conv, a->rec, a->values, a->nulls);
}

/*
 * Convert one record, catching its error: NULL, or the error copied into
 * errcxt (the caller's memory context is current again either way).
 */
ErrorData *
csv_converter_row_catch(CsvConverter *conv, CsvRecord *rec, Datum *values,
						bool *nulls, MemoryContext errcxt)
{
	MemoryContext oldcxt = CurrentMemoryContext;
	ErrorData  *edata = NULL;
	ConvertArgs a = {conv, rec, values, nulls};

	if (!conv->safe_input)
		edata = csv_try_in_subxact(convert_row, &a, errcxt);
	else
	{
		PG_TRY();
		{
			csv_converter_row(conv, rec, values, nulls);
		}
		PG_CATCH();
		{
			edata = csv_catch_error(errcxt, oldcxt);
		}
		PG_END_TRY();
	}
	/* a cancel, or the server's own trouble, is not the row's error */
	if (edata != NULL && !csv_error_is_input_error(edata))
		ReThrowError(edata);
	return edata;
}

/*
 * The NOTICE for the nth row a read skipped (on_error => 'skip'): the first
 * 10 of the read are named, the rest only counted.  Parallel workers number
 * them with a counter shared by the call, so the cap holds for the call.
 */
void
csv_skip_notice(CsvErrorPosition *errpos, int64 line_no, const char *message,
				int64 nth)
{
	if (nth <= 10)
		ereport(NOTICE,
				(errmsg("%s: skipped line " INT64_FORMAT ": %s",
						errpos->funcname, line_no, message),
				 nth == 10 ? errdetail("Further skipped lines are only counted.") : 0));
}

/* on_error => 'skip' for read_text: a bad record is skipped and reported */
void
csv_record_skip_notice(CsvErrorPosition *errpos, CsvRecord *rec, int64 *nskipped)
{
	(*nskipped)++;
	csv_skip_notice(errpos, rec->line_no, rec->bad->message, *nskipped);
}

/*
 * on_error => 'skip' for reads: convert, or report the row (a NOTICE for
 * the first few) and return false.
 */
bool
csv_converter_row_or_skip(CsvConverter *conv, CsvRecord *rec, Datum *values,
						  bool *nulls, int64 *nskipped)
{
	ErrorData  *edata = csv_converter_row_catch(conv, rec, values, nulls,
												CurrentMemoryContext);

	if (edata == NULL)
		return true;
	(*nskipped)++;
	csv_skip_notice(conv->errpos, rec->line_no, edata->message, *nskipped);
	conv->errpos->column = NULL;
	conv->errpos->value = NULL;
	return false;
}
