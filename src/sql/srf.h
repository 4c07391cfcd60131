/*-------------------------------------------------------------------------
 *
 * srf.h
 *		One streaming read of a file (srf.c), shared by the SRFs
 *		csvpipe.read / csvpipe.read_text and the streaming scan (scan.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef CSVPIPE_SRF_H
#define CSVPIPE_SRF_H

#include "csvfile.h"
#include "options.h"

typedef struct CsvReadState CsvReadState;

extern CsvReadState *csv_read_begin(const CsvOptions *opts, bool text_mode,
									TupleDesc tupdesc,
									bool *convert_columns,
									const bool *used_columns);
extern bool csv_read_next(CsvReadState *rs, Datum *values, bool *nulls);
extern void csv_read_end(CsvReadState *rs);
extern const char *csv_read_cache_status(CsvReadState *rs);
extern TupleDesc csv_read_text_tupdesc(void);

#endif							/* CSVPIPE_SRF_H */
