/*-------------------------------------------------------------------------
 *
 * leader.h
 *		The leader side of a parallel call (leader.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef CSVPIPE_LEADER_H
#define CSVPIPE_LEADER_H

#include "parallel.h"

typedef struct CsvLeader CsvLeader;

extern CsvLeader *csv_leader_begin(CsvParallelMode mode, const CsvOptions *opts,
								   TupleDesc desc, bool *convert, bool ordered,
								   CsvErrorPosition *errpos);
extern CsvPool *csv_leader_pool(CsvLeader *L);
extern void csv_leader_set_sent_columns(CsvLeader *L, const bool *used);
extern void csv_leader_set_skip(CsvLeader *L, int64 *chunks, int n);
extern void csv_leader_set_preparse(CsvLeader *L, Oid relid, List *attnames);
extern CsvRecord *csv_leader_header(CsvLeader *L);
extern int	csv_leader_launch(CsvLeader *L);
extern bool csv_leader_next_row(CsvLeader *L, Datum *values, bool *nulls);
extern void csv_leader_run(CsvLeader *L);
extern bool csv_leader_next_entry(CsvLeader *L, CsvRowHeader **hdr, char **payload);
extern int64 csv_leader_current_chunk(CsvLeader *L);
extern char *csv_leader_read_raw(CsvLeader *L, int64 offset, int64 length,
								 int64 maxlen, int64 *got);
extern int64 csv_leader_rows(CsvLeader *L);
extern int64 csv_leader_bytes(CsvLeader *L);
extern int64 csv_leader_rejected(CsvLeader *L);
extern int64 csv_leader_retries(CsvLeader *L);
extern bool csv_leader_all_prepared(CsvLeader *L);
extern void csv_leader_prepared_parts(CsvLeader *L, uint32 *parts);
extern int	csv_leader_nworkers(CsvLeader *L);
extern void csv_leader_end(CsvLeader *L);
extern void csv_leader_abort(CsvLeader *L);
extern bool csv_leader_all_committed(CsvLeader *L);

#endif							/* CSVPIPE_LEADER_H */
