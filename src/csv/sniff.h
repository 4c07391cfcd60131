/*-------------------------------------------------------------------------
 *
 * sniff.h
 *		What a CSV file says about itself: dialect, header, column names and
 *		types, detected from a sample (sniff.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef CSVPIPE_SNIFF_H
#define CSVPIPE_SNIFF_H

#include "csvfile.h"

/* the sample read when the caller does not say: whole records of 4MB */
#define CSV_SNIFF_DEFAULT_SAMPLE	((int64) 4 * 1024 * 1024)
/* and at most (memory is bounded by the sample) */
#define CSV_SNIFF_MAX_SAMPLE		((int64) 1024 * 1024 * 1024)

/* the types a sniff proposes, narrowest first within each family */
typedef enum CsvSniffType
{
	CSV_SNIFF_TEXT = 0,
	CSV_SNIFF_BOOL,
	CSV_SNIFF_INT2,
	CSV_SNIFF_INT4,
	CSV_SNIFF_INT8,
	CSV_SNIFF_NUMERIC,
	CSV_SNIFF_FLOAT8,
	CSV_SNIFF_DATE,
	CSV_SNIFF_TIME,
	CSV_SNIFF_TIMESTAMP,
	CSV_SNIFF_TIMESTAMPTZ,
	CSV_SNIFF_UUID,
	CSV_SNIFF_JSONB,
	CSV_SNIFF_NTYPES
} CsvSniffType;

/*
 * What the caller fixes; everything else is detected.  A char option of -1,
 * header -1, encoding -1, skip_rows -1, null_string NULL: detect.
 */
typedef struct CsvSniffOptions
{
	int			delimiter;
	int			quote;
	int			escape;
	int			header;			/* -1, 0 (false), 1 (true or 'match') */
	char	   *null_string;
	int			encoding;
	int64		skip_rows;
	int64		sample_size;	/* bytes; 0 = CSV_SNIFF_DEFAULT_SAMPLE */
} CsvSniffOptions;

typedef struct CsvSniffColumn
{
	char	   *name;			/* valid, unique column name */
	CsvSniffType type;
	Oid			typid;
	int32		typmod;			/* -1, or numeric(p,s)'s */
	char	   *type_name;		/* SQL spelling: "integer", "numeric(5,2)" */
	bool		nullable;		/* a NULL was seen in the sample */
} CsvSniffColumn;

typedef struct CsvSniffResult
{
	char		delimiter;
	char		quote;
	char		escape;
	const char *line_ending;	/* "LF", "CRLF", "CR", or NULL (none seen) */
	int			encoding;		/* the file's encoding (PG_* id) */
	bool		bom;			/* starts with a UTF-8 byte order mark */
	bool		header;
	int64		skip_rows;
	char	   *null_string;
	int			ncolumns;
	CsvSniffColumn *columns;
	int64		sample_bytes;	/* bytes read */
	int64		sample_records; /* data records the types were checked on */
	bool		whole_file;		/* the sample is the whole file */
	List	   *notes;			/* char *: what the caller should know */
} CsvSniffResult;

extern void csv_sniff_options_init(CsvSniffOptions *opts);
extern void csv_sniff_file(const char *path, const char *funcname,
						   const CsvSniffOptions *opts, CsvSniffResult *res);
extern const char *csv_sniff_type_name(CsvSniffType type);
extern const char *csv_sniff_dialect_hint(CsvErrorPosition *errpos, int ncolumns);
extern void csv_sniff_init(void);

#endif							/* CSVPIPE_SNIFF_H */
