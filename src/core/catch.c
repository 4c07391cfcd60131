/*-------------------------------------------------------------------------
 *
 * catch.c
 *		Catching the error of one row: in a subtransaction, or without one
 *		where that is safe.
 *
 * Errors raised by type input functions are caught without a
 * subtransaction only for built-in types whose input functions touch no
 * shared state (they are the ones PostgreSQL 16 made "soft-error safe");
 * anything else (domains, enums, arrays, user types) is converted inside a
 * subtransaction, which is correct but slower.  Inserting a row always runs
 * in a subtransaction: triggers, constraints and index insertion touch
 * shared state.
 *
 * What kind of error was caught decides what happens to it:
 *	- transient (deadlock_detected, serialization_failure,
 *	  lock_not_available -- what lock_timeout raises): retried, with a
 *	  backoff (parallel/errors.c);
 *	- a worker's loss (FATAL, shutdown 57, resources 53, connection 08,
 *	  system 58): its chunks are retried by other workers;
 *	- a row's own, which skip mode may reject: a parse or type input error
 *	  of its fields that is not one of the above nor internal (XX); an
 *	  insert error of data (SQLSTATE classes 22 and 23), or one raised by
 *	  its triggers (known from parallel/errors.c's fmgr hooks) that is not
 *	  one of the above nor internal.
 * Anything else -- a table renamed or dropped on a foreign server (42P01),
 * say -- fails the load or the read.
 *
 * No shared state of csvpipe's own; used by the csv, insert, parallel and
 * load layers.
 *
 *-------------------------------------------------------------------------
 */
#include "catch.h"

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "utils/resowner.h"

/* may typid's input function be called without a subtransaction? */
bool
csv_input_is_safe(Oid typid)
{
	switch (typid)
	{
		case BOOLOID:
		case CHAROID:
		case INT2OID:
		case INT4OID:
		case INT8OID:
		case OIDOID:
		case FLOAT4OID:
		case FLOAT8OID:
		case NUMERICOID:
		case MONEYOID:
		case TEXTOID:
		case VARCHAROID:
		case BPCHAROID:
		case NAMEOID:
		case BYTEAOID:
		case DATEOID:
		case TIMEOID:
		case TIMETZOID:
		case TIMESTAMPOID:
		case TIMESTAMPTZOID:
		case INTERVALOID:
		case UUIDOID:
		case JSONOID:
		case JSONBOID:
		case INETOID:
		case CIDROID:
		case MACADDROID:
			return true;
		default:
			return false;
	}
}

/*
 * In a PG_CATCH block: copy the error into errcxt, clear it, and go back to
 * resume, the memory context the PG_TRY block started in (after a longjmp
 * the current context is ErrorContext, which FlushErrorState resets).
 * Only for errors raised by code that leaves no shared state behind.
 */
ErrorData *
csv_catch_error(MemoryContext errcxt, MemoryContext resume)
{
	ErrorData  *edata;

	MemoryContextSwitchTo(errcxt);
	edata = CopyErrorData();
	FlushErrorState();
	MemoryContextSwitchTo(resume);
	return edata;
}

/*
 * Run fn(arg) in a subtransaction.  Returns NULL on success, or the error
 * (copied into errcxt) after rolling the subtransaction back; the caller's
 * memory context and resource owner are restored either way.
 */
ErrorData *
csv_try_in_subxact(CsvSubxactFn fn, void *arg, MemoryContext errcxt)
{
	MemoryContext oldcxt = CurrentMemoryContext;
	ResourceOwner oldowner = CurrentResourceOwner;
	ErrorData  *edata = NULL;

	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(oldcxt);
	PG_TRY();
	{
		fn(arg);
		ReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(oldcxt);
		CurrentResourceOwner = oldowner;
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(errcxt);
		edata = CopyErrorData();
		FlushErrorState();
		RollbackAndReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(oldcxt);
		CurrentResourceOwner = oldowner;
	}
	PG_END_TRY();
	return edata;
}

/* ---- what kind of error it is ---- */

bool
csv_error_is_transient(ErrorData *edata)
{
	switch (edata->sqlerrcode)
	{
		case ERRCODE_T_R_DEADLOCK_DETECTED:
		case ERRCODE_T_R_SERIALIZATION_FAILURE:
		case ERRCODE_LOCK_NOT_AVAILABLE:
			return true;
		default:
			return false;
	}
}

/*
 * Did a worker end for a reason of its own (terminated, out of resources,
 * crashed) rather than because of the data?  Then its chunks are retried.
 */
bool
csv_error_is_worker_loss(ErrorData *edata)
{
	int			class = ERRCODE_TO_CATEGORY(edata->sqlerrcode);

	if (edata->elevel >= FATAL)
		return true;
	return class == ERRCODE_TO_CATEGORY(ERRCODE_ADMIN_SHUTDOWN) ||	/* 57 */
		class == ERRCODE_TO_CATEGORY(ERRCODE_INSUFFICIENT_RESOURCES) ||	/* 53 */
		class == ERRCODE_TO_CATEGORY(ERRCODE_CONNECTION_EXCEPTION) ||	/* 08 */
		class == ERRCODE_TO_CATEGORY(ERRCODE_SYSTEM_ERROR);	/* 58 */
}

/*
 * May a record's parse or type input error be rejected (skip mode)?  Not
 * when it is the server's, or a transient one.
 */
bool
csv_error_is_input_error(ErrorData *edata)
{
	int			class = ERRCODE_TO_CATEGORY(edata->sqlerrcode);

	if (csv_error_is_transient(edata) || csv_error_is_worker_loss(edata))
		return false;
	return class != ERRCODE_TO_CATEGORY(ERRCODE_INTERNAL_ERROR);	/* XX */
}

/*
 * May an insert error be rejected as the row's own (skip mode)?  Data
 * errors, and errors that came out of a trigger (in_trigger, from
 * csv_row_errors_end) that are not the server's.
 */
bool
csv_error_is_row_error(ErrorData *edata, bool in_trigger)
{
	int			class = ERRCODE_TO_CATEGORY(edata->sqlerrcode);

	if (csv_error_is_transient(edata) || csv_error_is_worker_loss(edata))
		return false;
	if (class == ERRCODE_TO_CATEGORY(ERRCODE_DATA_EXCEPTION) ||	/* 22 */
		class == ERRCODE_TO_CATEGORY(ERRCODE_INTEGRITY_CONSTRAINT_VIOLATION))	/* 23 */
		return true;
	return in_trigger && class != ERRCODE_TO_CATEGORY(ERRCODE_INTERNAL_ERROR);
}
