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

typedef struct CsvLoadRequest
{
	char	   *path;
	Oid			relid;
	List	   *attnames;		/* target columns the file fills, or NIL */
	CsvDialect	dialect;
	int			nworkers;		/* 0: load in this session */
	bool		atomic;
	int64		chunk_size;
	int64		job_id;			/* 0: take a new id */
} CsvLoadRequest;

typedef struct CsvLoadResult
{
	int64		job_id;
	int64		rows_loaded;
	int64		rows_rejected;
	int64		bytes;
	double		seconds;
	int			workers;
} CsvLoadResult;

extern void csv_run_load(CsvLoadRequest *req, CsvLoadResult *res);
extern List *csv_column_list(ArrayType *arr);

#endif							/* CSVPIPE_RUN_H */
