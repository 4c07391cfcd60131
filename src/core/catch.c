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
