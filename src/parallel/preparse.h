/*-------------------------------------------------------------------------
 *
 * preparse.h
 *		The leader of a chunked load converts chunks ahead of its workers
 *		(preparse.c); leader.c streams the rows, worker.c inserts them.
 *
 *-------------------------------------------------------------------------
 */
#ifndef CSVPIPE_PREPARSE_H
#define CSVPIPE_PREPARSE_H

#include "parallel.h"

/*
 * Bigger chunks (csvpipe.chunk_size) go as labels: the leader keeps a
 * converted chunk until it is sent, one per worker and the one it works on.
 */
#define CSV_PREPARSE_MAX_CHUNK	(8 * 1024 * 1024)

typedef enum CsvPreparseState
{
	CSV_PREPARSE_IDLE,			/* no chunk */
	CSV_PREPARSE_RUNNING,		/* converting hdr's chunk, step by step */
	CSV_PREPARSE_DONE,			/* its rows are ready: csv_preparse_take */
	CSV_PREPARSE_FAILED			/* it goes as a plain label */
} CsvPreparseState;

/*
 * A converted chunk's rows: entries (CsvRowHeader + MinimalTuple, each
 * MAXALIGN'd) in pieces of at most CSV_TUPLE_BATCH bytes (a bigger row has
 * a piece of its own), all in cxt.
 */
typedef struct CsvStream
{
	MemoryContext cxt;
	char	  **pieces;
	Size	   *lens;
	int			npieces;
	int			maxpieces;
	int64		total;			/* bytes in all pieces */
	int64		rows;
	int			next;			/* leader.c: the next piece to send */
} CsvStream;

typedef struct CsvPreparse CsvPreparse;

extern CsvPreparse *csv_preparse_create(Oid relid, List *attnames,
										const CsvDialect *dialect, int fd,
										const char *path, const CsvFileId *file);
extern void csv_preparse_start(CsvPreparse *p, const CsvChunkHeader *hdr);
extern CsvPreparseState csv_preparse_step(CsvPreparse *p);
extern CsvPreparseState csv_preparse_state(CsvPreparse *p);
extern int64 csv_preparse_chunk_no(CsvPreparse *p);
extern int64 csv_preparse_total(CsvPreparse *p);
extern CsvStream *csv_preparse_take(CsvPreparse *p);
extern void csv_preparse_reset(CsvPreparse *p);
extern void csv_stream_free(CsvStream *s);

#endif							/* CSVPIPE_PREPARSE_H */
