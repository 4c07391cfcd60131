/*-------------------------------------------------------------------------
 *
 * txn.h
 *		Transaction modes of a load, the chunk ledger, job bookkeeping and
 *		the coordinator worker (txn.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef CSVPIPE_TXN_H
#define CSVPIPE_TXN_H

#include "parallel.h"

typedef enum CsvCoordAction
{
	CSV_COORD_NONE,				/* only record the job's end */
	CSV_COORD_COMMIT,			/* record "commit", then COMMIT PREPARED all */
	CSV_COORD_ROLLBACK,			/* record "rollback", then ROLLBACK PREPARED all */
	CSV_COORD_SETTLE			/* a job whose leader is gone: follow its recorded
								 * decision (none: record "rollback") */
} CsvCoordAction;

/* bits of the worker numbers whose "prepared" message the leader received */
#define CSV_GID_TAG_LEN		16	/* hex digits of a gid's tag */
#define CSV_PARTS_WORDS		((CSVPIPE_MAX_SLOTS + 31) / 32)

/* Arguments of the coordinator worker, passed in bgw_extra (128 bytes) */
typedef struct CsvCoordArgs
{
	Oid			database_id;
	int32		action;			/* CsvCoordAction */
	int64		job_id;
	int64		rows_loaded;
	int64		rows_rejected;
	int64		bytes;
	int32		retries;
	uint32		parts[CSV_PARTS_WORDS];	/* commit: the parts to commit */
	char		state[12];		/* done, failed, cancelled */
	uint32		dsm;			/* a failed load's segment (the leader waits), or 0 */
	char		error[56];		/* first part of the error, if any (fills bgw_extra) */
} CsvCoordArgs;

StaticAssertDecl(sizeof(CsvCoordArgs) <= BGW_EXTRALEN, "CsvCoordArgs must fit in bgw_extra");

extern void csv_txn_record_job_start(CsvParallelShared *shared, const char *path);
extern void csv_txn_begin_atomic(void);
extern void csv_txn_begin_chunk(void);
extern void csv_txn_ledger_insert(CsvParallelShared *shared, CsvChunkHeader *hdr, int64 rows);
extern void csv_txn_commit_chunk(CsvParallelShared *shared, CsvChunkHeader *hdr, int64 rows);
extern void csv_txn_prepare(CsvParallelShared *shared, int worker_no);
extern void csv_txn_new_nonce(char *nonce);
extern char *csv_txn_gid(int64 job_id, const char *nonce, int worker_no);
extern bool csv_txn_parse_gid(const char *gid, Oid *dbid, int64 *job_id, int *worker_no);

/* a prepared transaction named after a job (csv_txn_prepared_jobs) */
typedef struct CsvPreparedJob
{
	Oid			db;
	int64		job_id;
} CsvPreparedJob;

extern List *csv_txn_prepared_jobs(Oid dbid);
extern bool csv_txn_job_has_parts(int64 job_id);
extern char *csv_txn_job_state_sql(const char *alias);
/* a transaction-mode load whose transaction aborted after it was done */
extern char *csv_txn_job_in_doubt_sql(const char *alias);
extern bool csv_txn_settle_job(int64 job_id);
extern void csv_txn_finish_parts(int64 job_id, bool commit, const uint32 *parts);
extern int	max_prepared_transactions_setting(void);

extern bool csv_txn_run_coordinator(CsvCoordArgs *args, bool wait);
extern PGDLLEXPORT void csvpipe_coordinator_main(Datum main_arg);

#endif							/* CSVPIPE_TXN_H */
