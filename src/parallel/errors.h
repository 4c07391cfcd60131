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

extern void csv_row_errors_begin(void);
extern bool csv_row_errors_end(ErrorData *edata);
extern void csv_backoff_sleep(int attempt);
extern void csv_reject_row(CsvParallelShared *shared, int64 max_errors,
						   int64 chunk_no, int64 line_no,
						   int64 byte_offset, const char *raw, int64 rawlen,
						   const char *column, ErrorData *edata);
extern void csv_reject_flush(CsvParallelShared *shared);
extern void csv_reject_discard(void);

#endif							/* CSVPIPE_ERRORS_H */
