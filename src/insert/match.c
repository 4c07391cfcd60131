/*-------------------------------------------------------------------------
 *
 * match.c
 *		Columns by name (match => 'name') for loads: the file's header
 *		mapped to the target table's columns.
 *
 * Before a load starts, its file's header is read (skip_rows, then one
 * record) and its names are matched to the target's columns
 * (csv_match_header, options.c: exact name first, then ASCII
 * case-insensitively when one column fits).  The result is what a caller
 * could have written by hand: a column list in file order -- so target
 * columns the file lacks get their defaults, as with COPY's column list --
 * plus, in the dialect, which file fields are left out (extra_columns =>
 * 'ignore').  Every load path (this session, the workers of every mode, a
 * job's runner, csvpipe.resume) then runs with that list; the load reads
 * the header again and checks it is the one that was matched
 * (header => 'match' against the mapped names), so a file replaced in
 * between cannot fill the wrong columns.
 *
 * A target column the file lacks that is NOT NULL and has no default (nor
 * identity) is an error before anything is loaded.
 *
 * No shared state.
 *
 *-------------------------------------------------------------------------
 */
#include "csvfile.h"
#include "match.h"
#include "options.h"

#include "access/table.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"

/*
 * The column list (file order) that match => 'name' makes of the file's
 * header, for a load of path into relid; sets the dialect's field map and
 * header check.  NIL for an empty file (nothing to map: no rows either).
 */
List *
csv_match_target(Oid relid, const char *path, const char *funcname,
				 CsvDialect *dialect, bool extra_ignore)
{
	CsvErrorPosition errpos = {0};
	ErrorContextCallback errcallback;
	CsvDialect hdialect = *dialect;
	CsvReader  *reader;
	CsvRecord  *header;
	Relation	rel;
	TupleDesc	desc;
	char	  **names;
	int		   *attidx;
	int			n = 0;
	bool	   *present;
	char	   *what;
	List	   *attnames = NIL;

	errpos.funcname = funcname;
	errpos.path = path;
	errcallback.callback = csv_error_context_callback;
	errcallback.arg = &errpos;
	errcallback.previous = error_context_stack;
	error_context_stack = &errcallback;

	/* the header: after skip_rows, the first record */
	hdialect.header = CSV_HEADER_SKIP;
	hdialect.nfile_fields = 0;
	reader = csv_reader_open(path, &hdialect, &errpos);
	header = csv_reader_header(reader);
	errpos.line_no = header ? header->line_no : 0;

	rel = table_open(relid, AccessShareLock);
	desc = RelationGetDescr(rel);
	what = psprintf("table \"%s\"", RelationGetRelationName(rel));
	names = palloc(sizeof(char *) * Max(desc->natts, 1));
	attidx = palloc(sizeof(int) * Max(desc->natts, 1));
	for (int i = 0; i < desc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, i);

		if (att->attisdropped || att->attgenerated)
			continue;
		attidx[n] = i;
		names[n++] = pstrdup(NameStr(att->attname));
	}

	if (header == NULL)
	{
		/* an empty file: no rows, nothing to map */
		table_close(rel, AccessShareLock);
		csv_reader_close(reader);
		error_context_stack = errcallback.previous;
		return NIL;
	}

	present = csv_match_header(dialect, header, n, names, extra_ignore, what);

	/* what the file lacks must have a default */
	for (int c = 0; c < n; c++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, attidx[c]);

		if (!present[c] && att->attnotnull && !att->atthasdef && !att->attidentity)
			ereport(ERROR,
					(errcode(ERRCODE_NOT_NULL_VIOLATION),
					 errmsg("column \"%s\" of %s is not in the file, and is NOT NULL without a default",
							names[c], what),
					 errhint("Add the column to the file, or give it a default.")));
	}
	for (int f = 0; f < dialect->nfile_fields; f++)
		if (dialect->field_column[f] >= 0)
		{
			/* the column list is in file order: renumber the map to it */
			attnames = lappend(attnames, names[dialect->field_column[f]]);
			dialect->field_column[f] = list_length(attnames) - 1;
		}

	/* the load reads the header again: it must be the one mapped here */
	dialect->header = CSV_HEADER_MATCH;

	table_close(rel, AccessShareLock);
	csv_reader_close(reader);
	error_context_stack = errcallback.previous;
	return attnames;
}
