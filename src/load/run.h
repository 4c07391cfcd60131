/*-------------------------------------------------------------------------
 *
 * run.h
 *		Running one load as its leader (run.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef CSVPIPE_RUN_H
#define CSVPIPE_RUN_H

#include "csvfile.h"
#include "options.h"

#include "utils/array.h"

/*
 * One load: its options (options.c), which the load may still settle
 * (nworkers => 0 to load in this session; with match => 'name', columns
 * and the dialect's field map from the file's header), and what is not an
 * option.
 */
typedef struct CsvLoadRequest
{
	CsvOptions	opts;
	int64		job_id;			/* 0: take a new id */
	char	   *options_json;	/* the options, recorded with the job */
	bool		resume;			/* skip chunks already in the ledger */
	int64	   *skip_chunks;	/* those chunks, sorted */
	int			nskip;
	bool		runner;			/* a queued job's runner: it records the
								 * job's end itself, in the transaction
								 * that loads without workers */
} CsvLoadRequest;

typedef struct CsvLoadResult
{
	int64		job_id;
	int64		rows_loaded;
	int64		rows_rejected;
	int64		bytes;
	double		seconds;
	int			workers;
	bool		have_file;		/* file: the identity of what was read */
	CsvFileId	file;			/* (fstat of the descriptor, not the path) */
} CsvLoadResult;

extern void csv_run_load(CsvLoadRequest *req, CsvLoadResult *res);
extern int	csv_load_set_skip_chunks(CsvLoadRequest *req, ArrayType *chunks);
extern void csv_load_request_init(CsvLoadRequest *req, const CsvOptions *opts);
extern void csv_resume_load(int64 job_id, CsvLoadResult *res);
/* resume (here or re-queued) of a transaction-mode job in doubt on foreign servers: ERROR */
extern void csv_resume_check_in_doubt(int64 job_id, Oid relid, bool in_doubt);
extern Datum csv_load_result_datum(TupleDesc resdesc, CsvLoadResult *res);

#endif							/* CSVPIPE_RUN_H */
