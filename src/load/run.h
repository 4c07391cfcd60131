/*-------------------------------------------------------------------------
 *
 * run.h
 *		Running one load as its leader (run.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef CSVPIPE_RUN_H
#define CSVPIPE_RUN_H

#include "csvpipe.h"
#include "options.h"

#include "utils/array.h"

typedef struct CsvLoadRequest
{
	char	   *path;
	Oid			relid;
	List	   *attnames;		/* target columns the file fills, or NIL */
	CsvDialect	dialect;
	int			nworkers;		/* 0: load in this session */
	bool		atomic;			/* mode == CSV_LOAD_MODE_PREPARED */
	CsvLoadMode mode;
	bool		freeze;			/* transaction mode: rows frozen, as COPY FREEZE */
	int64		chunk_size;
	int64		job_id;			/* 0: take a new id */
	bool		on_error_skip;	/* capture bad rows instead of failing */
	int64		max_errors;		/* -1: no limit */
	char	   *options_json;	/* the options, recorded with the job */
	bool		resume;			/* skip chunks already in the ledger */
	int64	   *skip_chunks;	/* those chunks, sorted */
	int			nskip;
	bool		progress;		/* NOTICE the progress (at most once a second) */
	bool		match_name;		/* match => 'name': columns from the header */
	bool		extra_ignore;	/* extra_columns => 'ignore' */
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
extern Datum csv_load_result_datum(TupleDesc resdesc, CsvLoadResult *res);

#endif							/* CSVPIPE_RUN_H */
