/*-------------------------------------------------------------------------
 *
 * catch.h
 *		Catching the error of one row, and what kind of error it is
 *		(catch.c).
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

extern bool csv_error_is_transient(ErrorData *edata);
extern bool csv_error_is_worker_loss(ErrorData *edata);
extern bool csv_error_is_input_error(ErrorData *edata);
extern bool csv_error_is_row_error(ErrorData *edata, bool in_trigger);

#endif							/* CSVPIPE_CATCH_H */
