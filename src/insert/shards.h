/*-------------------------------------------------------------------------
 *
 * shards.h
 *		Chunked loads into foreign tables: the shard ledgers that keep each
 *		chunk exactly once on every server (shards.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef CSVPIPE_SHARDS_H
#define CSVPIPE_SHARDS_H

#include "csvfile.h"

#include "nodes/execnodes.h"

/* the ledger's table on each shard, and its DDL (doc/sharded.md) */
#define CSV_SHARD_LEDGER_NAME	"csvpipe_ledger"
#define CSV_SHARD_LEDGER_DDL \
	"CREATE TABLE public.csvpipe_ledger (job text, chunk_no bigint, rows bigint NOT NULL, " \
	"committed_at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (job, chunk_no))"

/* leader: before a chunked load, refuse a target whose servers have no ledger */
extern void csv_shards_check_chunked(Oid relid);

/* does a load into relid insert into a foreign table (itself or a partition)? */
extern bool csv_shards_target_is_foreign(Oid relid);
/* for messages: "\"t_r1\" is a foreign table on server \"r1\"", or NULL */
extern char *csv_shards_foreign_example(Oid relid);

/*
 * leader of a chunked load that would insert in its own transaction (no
 * background worker): refuse a target with foreign tables.
 */
extern void csv_shards_check_in_session(Oid relid, const char *funcname);

/*
 * the same for a transaction-mode load without a worker: its job row would
 * roll back with a COMMIT that failed on one server after another
 * committed, and no job would be left in doubt.
 */
extern void csv_shards_check_txn_in_session(Oid relid, const char *funcname);

/*
 * Worker of a chunked load, inside a transaction: find the target's foreign
 * servers and their ledgers.  false when the target reaches no foreign
 * table (then nothing else here is needed).
 */
extern bool csv_shards_init(Oid relid, int64 job_id);

/*
 * In the chunk's transaction, before its rows: with check, read every
 * server's ledger (an attempt at a chunk that may have been attempted
 * before, in this run or an earlier one, must check: shards.c).  After
 * them: write a ledger row on every server the chunk was not already
 * committed on; returns the rows committed earlier on the others (to count
 * with the rows inserted now).
 */
extern void csv_shards_chunk_begin(int64 chunk_no, bool check);
extern int64 csv_shards_chunk_end(int64 chunk_no);
extern void csv_shards_chunk_reset(void);

/*
 * Skip mode.  A row of the chunk rejected in a one-row batch: if the batch
 * had routed it to a foreign server (after which the row's fate is tied to
 * that server's commit), that server's ledger gets its line and SQLSTATE
 * with the chunk's ledger row.  And an attempt that skips a server (it
 * has the chunk): the rows that server rejected when it committed the
 * chunk, to reject again (palloc'd array; returns how many).
 */
typedef struct CsvShardReject
{
	int64		line_no;
	int			sqlerrcode;
	const char *server;
} CsvShardReject;

extern void csv_shards_row_rejected(int64 line_no, int sqlerrcode);
extern int	csv_shards_earlier_rejects(CsvShardReject **rejects);
/* "r1, r2": the chunk's servers, for messages */
extern const char *csv_shards_names(void);

/*
 * load.c, per CsvLoadTarget: which rows go to their foreign table (false:
 * already committed on its server by an earlier attempt at this chunk) and
 * how many went to each server; counted once the target ended well.
 */
typedef struct CsvShardTally CsvShardTally;

extern CsvShardTally *csv_shards_tally_begin(void);
extern bool csv_shards_tally_row(CsvShardTally *t, ResultRelInfo *rri);
extern void csv_shards_tally_end(CsvShardTally *t);

#endif							/* CSVPIPE_SHARDS_H */
