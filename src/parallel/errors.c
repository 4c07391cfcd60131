/*-------------------------------------------------------------------------
 *
 * errors.c
 *		Bad rows, transient errors, retry and backoff.
 *
 * With on_error => 'skip', a row that cannot be parsed, converted or
 * inserted is written (through csv_internal_query) to csvpipe.rejected (shown by the csvpipe.errors
 * view) with its job, chunk, line, byte offset, raw text (bounded), column,
 * message, SQLSTATE and detail, and the load goes on; max_errors bounds
 * how many a job may reject, counted across all its workers in the
 * parallel engine's segment (CsvParallelShared.rejected_total).  Skip mode
 * needs background workers: the workers (worker.c), or in transaction
 * mode the leader (load/run.c), are the ones that reject rows.
 *
 * Only a row's own errors become rejected rows; which errors those are is
 * decided in src/core/catch.c (csv_error_is_input_error,
 * csv_error_is_row_error).  "Raised by a trigger" is known from the fmgr hooks:
 * while a skip-mode batch is inserted (csv_row_errors_begin/end), every
 * trigger function is called through fmgr_security_definer, whose
 * FHET_ABORT event says that an error came out of it; the hook notes that
 * error's SQLSTATE and message, and the batch's error counts as a
 * trigger's only if it is that one (a trigger's error that a calling
 * function caught -- a "best effort" audit trigger's, say -- does not make
 * the next error of the batch, a table gone, a row's).  Outside those
 * batches the hooks ask for nothing (one boolean test per function
 * lookup), so other queries are not slowed.
 *
 * Transient errors (csv_error_is_transient, catch.c) are retried after an
 * exponential backoff: csvpipe.retry_delay, doubled at each attempt, at most
 * csvpipe.max_retries times.
 *
 * How one row's error is caught (with or without a subtransaction), and
 * what kind of error it is, is src/core/catch.c.
 *
 *-------------------------------------------------------------------------
 */
#include "errors.h"
#include "internal_sql.h"

#include "access/xact.h"
#include "catalog/pg_authid.h"
#include "catalog/pg_type.h"
#include "fmgr.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "storage/latch.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/resowner.h"
#include "utils/timestamp.h"
#include "utils/wait_event.h"

/* how much of a bad record csvpipe.rejected keeps */
#define REJECTED_RAW_MAX	4096

/* ---- errors raised by triggers (see the header comment) ---- */

static needs_fmgr_hook_type prev_needs_fmgr_hook = NULL;
static fmgr_hook_type prev_fmgr_hook = NULL;
static bool hooks_installed = false;
static bool tracking_triggers = false;
static bool trigger_failed = false;
static int	trigger_errcode = 0;	/* the last error out of a trigger */
static char *trigger_errmsg = NULL;	/* (TopMemoryContext) */
static List *trigger_functions = NIL;	/* hooked for us: trigger functions */

static bool
csv_needs_fmgr_hook(Oid fn_oid)
{
	bool		prev = prev_needs_fmgr_hook && prev_needs_fmgr_hook(fn_oid);

	if (tracking_triggers && get_func_rettype(fn_oid) == TRIGGEROID)
	{
		if (!list_member_oid(trigger_functions, fn_oid))
		{
			MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);

			trigger_functions = lappend_oid(trigger_functions, fn_oid);
			MemoryContextSwitchTo(old);
		}
		return true;
	}
	return prev;
}

static void
csv_fmgr_hook(FmgrHookEventType event, FmgrInfo *flinfo, Datum *private)
{
	if (prev_fmgr_hook)
		prev_fmgr_hook(event, flinfo, private);
	if (event == FHET_ABORT && tracking_triggers &&
		list_member_oid(trigger_functions, flinfo->fn_oid))
	{
		/* called while the error propagates: it is on the error stack */
		MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);
		ErrorData  *edata = CopyErrorData();

		if (trigger_errmsg)
			pfree(trigger_errmsg);
		trigger_errcode = edata->sqlerrcode;
		trigger_errmsg = edata->message ? pstrdup(edata->message) : NULL;
		FreeErrorData(edata);
		MemoryContextSwitchTo(old);
		trigger_failed = true;
	}
}

/* Before inserting a skip-mode batch (in the subtransaction's caller) */
void
csv_row_errors_begin(void)
{
	if (!hooks_installed)
	{
		prev_needs_fmgr_hook = needs_fmgr_hook;
		needs_fmgr_hook = csv_needs_fmgr_hook;
		prev_fmgr_hook = fmgr_hook;
		fmgr_hook = csv_fmgr_hook;
		hooks_installed = true;
	}
	tracking_triggers = true;
	trigger_failed = false;
}

/* After it: did its error (edata, NULL: none) come out of a trigger function? */
bool
csv_row_errors_end(ErrorData *edata)
{
	tracking_triggers = false;
	return edata != NULL && trigger_failed &&
		edata->sqlerrcode == trigger_errcode &&
		edata->message != NULL && trigger_errmsg != NULL &&
		strcmp(edata->message, trigger_errmsg) == 0;
}

void
csv_backoff_sleep(int attempt)
{
	long		delay = csvpipe_retry_delay;

	TimestampTz end;

	for (int i = 1; i < attempt && delay < 60000; i++)
		delay *= 2;
	if (delay <= 0)
		return;
	/* the whole delay: the latch is also set by queue traffic */
	end = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), delay);
	for (;;)
	{
		long		left = TimestampDifferenceMilliseconds(GetCurrentTimestamp(), end);

		if (left <= 0)
			break;
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 left, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
	}
}

/* the raw record as text: valid bytes as they are, others as \xNN */
static char *
raw_as_text(const char *raw, int64 rawlen)
{
	StringInfoData buf;
	int64		len = Min(rawlen, REJECTED_RAW_MAX);

	/* drop the record's line end */
	while (len > 0 && (raw[len - 1] == '\n' || raw[len - 1] == '\r'))
		len--;
	if (pg_verifymbstr(raw, (int) len, true) && memchr(raw, '\0', len) == NULL)
		return pnstrdup(raw, len);

	initStringInfo(&buf);
	for (int64 i = 0; i < len; i++)
	{
		unsigned char c = (unsigned char) raw[i];

		if (c == 0 || c >= 0x80)
			appendStringInfo(&buf, "\\x%02x", c);
		else
			appendStringInfoChar(&buf, (char) c);
	}
	return buf.data;
}

/*
 * Rejected rows are buffered and written to csvpipe.rejected in one INSERT
 * per batch (one statement per row costs more than the row's own load).
 * The caller flushes before its transaction or subtransaction ends, and
 * discards the buffer when that is rolled back.
 */
#define REJECT_BUFFER	1000

typedef struct RejectBuffer
{
	MemoryContext cxt;
	int			n;
	Datum		cols[9][REJECT_BUFFER];
	bool		nulls[9][REJECT_BUFFER];
} RejectBuffer;

static RejectBuffer *rejects = NULL;

void
csv_reject_discard(void)
{
	if (rejects)
	{
		rejects->n = 0;
		MemoryContextReset(rejects->cxt);
	}
}

void
csv_reject_flush(CsvParallelShared *shared)
{
	static const Oid elemtypes[9] = {INT8OID, INT8OID, INT8OID, INT8OID, TEXTOID,
	TEXTOID, TEXTOID, TEXTOID, TEXTOID};
	Oid			types[9];
	Datum		values[9];
	MemoryContext oldcxt;

	if (rejects == NULL || rejects->n == 0)
		return;
	/*
	 * The arrays go with the buffer: the caller's context may live as long
	 * as the worker's transaction (an atomic load's), and this runs per chunk.
	 */
	oldcxt = MemoryContextSwitchTo(rejects->cxt);
	for (int c = 0; c < 9; c++)
	{
		int			dims[1] = {rejects->n};
		int			lbs[1] = {1};
		int16		typlen;
		bool		typbyval;
		char		typalign;

		get_typlenbyvalalign(elemtypes[c], &typlen, &typbyval, &typalign);
		values[c] = PointerGetDatum(construct_md_array(rejects->cols[c], rejects->nulls[c],
													   1, dims, lbs, elemtypes[c],
													   typlen, typbyval, typalign));
		types[c] = get_array_type(elemtypes[c]);
	}
	MemoryContextSwitchTo(oldcxt);

	(void) csv_internal_query("INSERT INTO @extschema@.rejected (job_id, chunk_no, line_no, "
							  "byte_offset, raw_record, column_name, message, sqlstate, detail) "
							  "SELECT * FROM unnest($1, $2, $3, $4, $5, $6, $7, $8, $9)",	/* multi-argument: FROM-only syntax, cannot be qualified */
							  9, types, values, NULL);
	csv_reject_discard();
}

/*
 * Record one bad row for csvpipe.rejected (written with the chunk) and
 * enforce max_errors (the load's option, -1: no limit) on the rows that
 * all of the load's processes rejected.
 */
void
csv_reject_row(CsvParallelShared *shared, int64 max_errors,
			   int64 chunk_no, int64 line_no,
			   int64 byte_offset, const char *raw, int64 rawlen,
			   const char *column, ErrorData *edata)
{
	MemoryContext old;
	int			n;
	uint64		total;

	if (rejects == NULL)
	{
		rejects = MemoryContextAllocZero(TopMemoryContext, sizeof(RejectBuffer));
		rejects->cxt = AllocSetContextCreate(TopMemoryContext, "csvpipe rejected rows",
											 ALLOCSET_DEFAULT_SIZES);
	}
	if (rejects->n >= REJECT_BUFFER)
		csv_reject_flush(shared);

	old = MemoryContextSwitchTo(rejects->cxt);
	n = rejects->n++;
	for (int c = 0; c < 9; c++)
		rejects->nulls[c][n] = false;
	rejects->cols[0][n] = Int64GetDatum(shared->job_id);
	rejects->cols[1][n] = Int64GetDatum(chunk_no);
	rejects->cols[2][n] = Int64GetDatum(line_no);
	rejects->cols[3][n] = Int64GetDatum(byte_offset);
	rejects->cols[4][n] = CStringGetTextDatum(raw_as_text(raw, rawlen));
	if (edata->column_name)
		column = edata->column_name;
	if (column)
		rejects->cols[5][n] = CStringGetTextDatum(column);
	else
		rejects->nulls[5][n] = true;
	rejects->cols[6][n] = CStringGetTextDatum(edata->message ? edata->message : "");
	rejects->cols[7][n] = CStringGetTextDatum(unpack_sql_state(edata->sqlerrcode));
	if (edata->detail)
		rejects->cols[8][n] = CStringGetTextDatum(edata->detail);
	else
		rejects->nulls[8][n] = true;
	MemoryContextSwitchTo(old);

	total = pg_atomic_add_fetch_u64(&shared->rejected_total, 1);
	if (max_errors >= 0 && total > (uint64) max_errors)
		ereport(ERROR,
				(errcode(ERRCODE_BAD_COPY_FILE_FORMAT),
				 errmsg("too many bad rows: more than max_errors (" INT64_FORMAT ")",
						max_errors),
				 errdetail("Line " INT64_FORMAT ": %s", line_no,
						   edata->message ? edata->message : "")));
}
