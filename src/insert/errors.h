/*-------------------------------------------------------------------------
 *
 * errors.h
 *		Bad rows, transient errors, retry and backoff (errors.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef CSVPIPE_ERRORS_H
#define CSVPIPE_ERRORS_H

#include "catch.h"
#include "parallel.h"

extern bool csv_error_is_transient(ErrorData *edata);
extern bool csv_error_is_worker_loss(ErrorData *edata);
extern bool csv_error_is_input_error(ErrorData *edata);
extern bool csv_error_is_row_error(ErrorData *edata, bool in_trigger);
extern void csv_row_errors_begin(void);
extern bool csv_row_errors_end(ErrorData *edata);
extern void csv_backoff_sleep(int attempt);
extern void csv_reject_row(CsvParallelShared *shared, int64 chunk_no, int64 line_no,
						   int64 byte_offset, const char *raw, int64 rawlen,
						   const char *column, ErrorData *edata);
extern void csv_reject_flush(CsvParallelShared *shared);
extern void csv_reject_discard(void);

#endif							/* CSVPIPE_ERRORS_H */
