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

#include "utils/array.h"

/* how a load commits (README, "Load modes") */
typedef enum CsvLoadMode
{
	CSV_LOAD_MODE_UNSET = 0,	/* from atomic: prepared if true, else chunked */
	CSV_LOAD_MODE_TRANSACTION,	/* the caller's transaction (default from 1.1) */
	CSV_LOAD_MODE_PREPARED,		/* two-phase, 1.0's atomic => true */
	CSV_LOAD_MODE_CHUNKED		/* a commit per chunk, 1.0's atomic => false */
} CsvLoadMode;

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
extern List *csv_column_list(ArrayType *arr);
extern bool csv_on_error_option(const char *value);
extern void csv_check_error_options(CsvLoadRequest *req);
extern char *csv_load_options_json(CsvLoadRequest *req);
extern void csv_mode_from_fcinfo(FunctionCallInfo fcinfo, int mode_arg,
								 int atomic_arg, CsvLoadRequest *req);
extern CsvLoadMode csv_load_mode_option(const char *value, bool atomic);
extern const char *csv_load_mode_label(CsvLoadMode mode);

#endif							/* CSVPIPE_RUN_H */
