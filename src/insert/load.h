/*-------------------------------------------------------------------------
 *
 * load.h
 *		Inserting parsed CSV rows into a target table the way COPY FROM does
 *		(src/load.c).
 *
 * Usage, inside a transaction, with an active snapshot (a SQL-callable
 * function has one; a background worker must PushActiveSnapshot()):
 *
 *		t = csv_load_begin(relid, attnames);		-- BEFORE STATEMENT triggers
 *		conv = csv_converter_create(csv_load_input_desc(t), ...);
 *		for each record:
 *			csv_converter_row(conv, rec, values, nulls);
 *			csv_load_row(t, values, nulls, rec->line_no);
 *		[csv_load_flush(t);]						-- e.g. at a chunk's end
 *		n = csv_load_end(t);						-- AFTER triggers fire here
 *
 * Everything is allocated in a child of the memory context that is current
 * at csv_load_begin(); it must live until csv_load_end().  On error the
 * transaction (or subtransaction) abort releases locks, buffer pins and
 * memory and unwinds the AFTER trigger query level: there is no separate
 * abort function.  A caller that catches errors must roll back to a
 * subtransaction started before csv_load_begin() and not use the target
 * again.
 *
 *-------------------------------------------------------------------------
 */
#ifndef CSVPIPE_LOAD_H
#define CSVPIPE_LOAD_H

#include "csvfile.h"

typedef struct CsvLoadTarget CsvLoadTarget;

/*
 * Open relid for INSERT in the current transaction as the current user
 * (RowExclusiveLock; INSERT privilege on the target columns checked as COPY
 * does), and fire BEFORE STATEMENT INSERT triggers.  attnames: List of C
 * strings (char *), the target columns the file's columns map to, in file
 * order; NIL = every column that is neither generated nor dropped, in
 * attribute order.  Columns not listed get their DEFAULT (identity,
 * sequences) as with COPY.
 */
extern CsvLoadTarget *csv_load_begin(Oid relid, List *attnames);

/*
 * csv_load_begin with flags:
 *	CSV_LOAD_FREEZE: rows inserted frozen, with COPY FREEZE's checks and
 *		errors (the table created or truncated in the current
 *		subtransaction, no prior snapshot or open cursor, not partitioned);
 *	CSV_LOAD_NO_STMT_TRIGGERS: no BEFORE/AFTER STATEMENT triggers (a batch
 *		of a load whose statement triggers another target fires once).
 */
#define CSV_LOAD_FREEZE				0x01
#define CSV_LOAD_NO_STMT_TRIGGERS	0x02
extern CsvLoadTarget *csv_load_begin_ext(Oid relid, List *attnames, int flags);

/*
 * csv_load_begin()'s column and privilege checks alone (COPY's rules and
 * errors: INSERT on the table or on every target column), for entry points
 * that check before they start the load.
 */
extern void csv_load_check_privileges(Oid relid, List *attnames);

/* parallel workers: write new pages only, ignoring the free space map */
extern bool csv_load_append_only;

/*
 * The file's columns: types and typmods of the mapped target columns, named
 * like them.  For csv_converter_create(); owned by the target.
 */
extern TupleDesc csv_load_input_desc(CsvLoadTarget *t);
extern TupleDesc csv_load_file_desc(Oid relid, List *attnames);

/*
 * Queue one row (values/nulls in file-column order, as the converter makes
 * them).  Defaults, BEFORE ROW triggers, generated columns, constraints and
 * partition routing are done now; the heap insert, index entries and AFTER
 * ROW trigger events happen in batches (~1000 rows or ~64 kB) when
 * multi-insert is possible, else at once.  line_no (0 = unknown) names the
 * row in error context lines, also when it is inserted later.  Copies what
 * it keeps: the caller may reset the memory of values after the call.
 */
extern void csv_load_row(CsvLoadTarget *t, Datum *values, bool *nulls,
						 int64 line_no);

/* Insert everything buffered now (indexes, AFTER ROW trigger events queued) */
extern void csv_load_flush(CsvLoadTarget *t);

/*
 * Flush, fire AFTER STATEMENT triggers and run the queued AFTER triggers
 * (AFTER ROW, deferred-to-end-of-statement constraint checks such as
 * foreign keys), close everything, CommandCounterIncrement() so later
 * commands see the rows (as after a COPY statement), free the target.
 * Returns the number of rows inserted (rows skipped by a BEFORE ROW trigger
 * are not counted).  Must be called before the transaction commits or
 * prepares.
 */
/*
 * Transition tables across targets (transaction mode's skip batches):
 * csv_load_collect_new_rows makes a target copy every row it puts in its
 * NEW TABLE into *collect (in cxt); csv_load_add_new_rows appends such rows
 * to another target's NEW TABLE, for its AFTER STATEMENT triggers.  Both
 * do nothing when the target has no NEW TABLE to fill.
 */
extern bool csv_load_has_new_table(CsvLoadTarget *t);
extern void csv_load_collect_new_rows(CsvLoadTarget *t, List **collect,
									  MemoryContext cxt);
extern void csv_load_add_new_rows(CsvLoadTarget *t, List *rows);

extern uint64 csv_load_end(CsvLoadTarget *t);

#endif							/* CSVPIPE_LOAD_H */
