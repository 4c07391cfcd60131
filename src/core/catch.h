/*-------------------------------------------------------------------------
 *
 * catch.h
 *		Catching the error of one row (catch.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef CSVPIPE_CATCH_H
#define CSVPIPE_CATCH_H

#include "postgres.h"

extern bool csv_input_is_safe(Oid typid);
extern ErrorData *csv_catch_error(MemoryContext errcxt, MemoryContext resume);

typedef void (*CsvSubxactFn) (void *arg);
extern ErrorData *csv_try_in_subxact(CsvSubxactFn fn, void *arg, MemoryContext errcxt);

#endif							/* CSVPIPE_CATCH_H */
