/*-------------------------------------------------------------------------
 *
 * options.h
 *		The options of csvpipe's functions, defined once (options.c).
 *
 * Every named argument of csvpipe.read, read_text, load, submit and
 * load_serial is an entry of one table (options.c): its SQL name, its kind
 * of value, its default, the functions that take it, whether it changes
 * the rows (the result cache's key), whether it is recorded with a job and
 * whether it reaches the workers.  A call's arguments are matched to the
 * table by their names in pg_proc (never by position), validated, and
 * resolved into a CsvOptions; a job's recorded options (csvpipe.job.options)
 * are written from a CsvOptions and read back into one through the same
 * validation.
 *
 *-------------------------------------------------------------------------
 */
#ifndef CSVPIPE_OPTIONS_H
#define CSVPIPE_OPTIONS_H

#include "csvfile.h"

#include "utils/jsonb.h"

/* the functions that take options (CsvOptionDef.funcs) */
#define CSV_FN_READ			0x01
#define CSV_FN_READ_TEXT	0x02
#define CSV_FN_LOAD			0x04
#define CSV_FN_SUBMIT		0x08
#define CSV_FN_LOAD_SERIAL	0x10
#define CSV_FN_SNIFF		0x20	/* csvpipe.sniff, csvpipe.create_table */
#define CSV_FN_ANY_READ		(CSV_FN_READ | CSV_FN_READ_TEXT)
#define CSV_FN_ANY_LOAD		(CSV_FN_LOAD | CSV_FN_SUBMIT | CSV_FN_LOAD_SERIAL)

/* what an option is (CsvOptionDef.flags) */
#define CSV_OPTF_ROWS		0x01	/* changes the rows: part of the cache key */
#define CSV_OPTF_JOB		0x02	/* recorded with a job, restored by its runner */
#define CSV_OPTF_WORKER		0x04	/* handed to the workers */
#define CSV_OPTF_ARG		0x08	/* an argument, not an option (path, target) */

/* how a load commits (doc/reference.md, "Load modes") */
typedef enum CsvLoadMode
{
	CSV_LOAD_MODE_UNSET = 0,	/* from atomic: prepared if true, else chunked */
	CSV_LOAD_MODE_TRANSACTION,	/* the caller's transaction (default from 1.1) */
	CSV_LOAD_MODE_PREPARED,		/* two-phase, 1.0's atomic => true */
	CSV_LOAD_MODE_CHUNKED		/* a commit per chunk, 1.0's atomic => false */
} CsvLoadMode;

/* the entries of the table, in the order they are validated */
typedef enum CsvOptId
{
	CSV_OPT_PATH,
	CSV_OPT_TARGET,
	CSV_OPT_ROWTYPE,
	CSV_OPT_COLUMNS,
	CSV_OPT_DELIMITER,
	CSV_OPT_QUOTE,
	CSV_OPT_ESCAPE,
	CSV_OPT_HEADER,
	CSV_OPT_NULL_STRING,
	CSV_OPT_ENCODING,
	CSV_OPT_SKIP_ROWS,
	CSV_OPT_WORKERS,
	CSV_OPT_ORDERED,
	CSV_OPT_MODE,
	CSV_OPT_ATOMIC,
	CSV_OPT_FREEZE,
	CSV_OPT_CHUNK_SIZE,
	CSV_OPT_ON_ERROR,
	CSV_OPT_MAX_ERRORS,
	CSV_OPT_PROGRESS,
	CSV_OPT_CACHE,
	CSV_OPT_PRIORITY,
	CSV_OPT_FORCE,
	CSV_OPT_MATCH,
	CSV_OPT_EXTRA_COLUMNS,
	CSV_OPT_NAME,
	CSV_OPT_CREATE_TARGET,
	CSV_OPT_SAMPLE_SIZE,
	CSV_NUM_OPTS
} CsvOptId;

/* kinds of values */
typedef enum CsvOptKind
{
	CSV_OK_TEXT,				/* text */
	CSV_OK_CHAR,				/* text: one single-byte character */
	CSV_OK_LABEL,				/* text: one of the entry's labels */
	CSV_OK_HEADER,				/* csvpipe.header_mode: labels, or boolean */
	CSV_OK_ENCODING,			/* text: an encoding name */
	CSV_OK_BOOL,
	CSV_OK_INT,					/* int or bigint */
	CSV_OK_NAMES,				/* text[] of column names */
	CSV_OK_REGCLASS,
	CSV_OK_ROWTYPE				/* anyelement: only its type counts */
} CsvOptKind;

typedef struct CsvOptLabel
{
	const char *label;
	int			value;
} CsvOptLabel;

typedef struct CsvOptionDef
{
	const char *name;			/* the SQL argument's name */
	const char *alias;			/* another name for it, or NULL */
	CsvOptKind	kind;
	const char *sql_type;		/* as in the SQL signatures (doc/reference.md) */
	const char *sql_default;	/* the SQL default, as doc/reference.md shows it */
	uint32		funcs;			/* CSV_FN_* that take it */
	uint32		flags;			/* CSV_OPTF_* */
	const CsvOptLabel *labels;	/* CSV_OK_LABEL/HEADER: the valid values */
	const char *doc;			/* one line for doc/reference.md */
} CsvOptionDef;

extern const CsvOptionDef csv_option_defs[CSV_NUM_OPTS];

/*
 * A call's options, resolved: what every entry point works from.  given[]
 * says which options the call passed (non-NULL); raw Datums are not kept.
 */
typedef struct CsvOptions
{
	const char *funcname;		/* "csvpipe.load" etc., for errors */
	uint32		fn;				/* the CSV_FN_* of the call */
	bool		has[CSV_NUM_OPTS];	/* the function has this argument */
	bool		isnull[CSV_NUM_OPTS];	/* it was NULL */

	char	   *path;
	Oid			relid;			/* target, or InvalidOid */
	char	   *target_name;	/* target given as text (load's other
								 * overload): resolved by the caller */
	Oid			rowtype;		/* read(path, NULL::t): t's type (a domain
								 * stays a domain), or InvalidOid */
	List	   *columns;		/* target columns the file fills, or NIL */
	CsvDialect	dialect;
	int			nworkers;		/* capped by csvpipe.max_workers */
	bool		ordered;
	CsvLoadMode mode;
	bool		atomic;			/* mode == CSV_LOAD_MODE_PREPARED */
	bool		freeze;
	int64		chunk_size;		/* bytes */
	bool		on_error_skip;
	int64		max_errors;		/* -1: no limit */
	bool		progress;
	bool		cache;
	int32		priority;
	bool		force;
	bool		match_name;		/* match => 'name' */
	bool		extra_ignore;	/* extra_columns => 'ignore' */
	char	   *name;			/* create_table: the table to create */
	bool		create_target;	/* load: create the target from the file */
	int64		sample_size;	/* sniff: bytes of the sample, 0 = default */
} CsvOptions;

extern void csv_options_from_fcinfo(CsvOptions *opts, FunctionCallInfo fcinfo,
									uint32 fn, const char *funcname);
extern void csv_options_from_args(CsvOptions *opts, Oid funcid, uint32 fn,
								  const char *funcname, int nargs,
								  const Datum *args, const bool *argnulls,
								  const Oid *argtypes);
extern void csv_options_from_job(CsvOptions *opts, Jsonb *options,
								 bool atomic, const char *funcname);
extern char *csv_options_job_json(const CsvOptions *opts);
extern void csv_dialect_rows_key(const CsvDialect *d, StringInfo sig,
								 StringInfo describe);
extern void csv_options_to_wire(const CsvOptions *o, StringInfo wire);
extern void csv_options_from_wire(CsvOptions *o, const char *wire);

extern int	csv_workers_for(int asked);
extern CsvHeaderMode csv_header_option(Datum v, Oid typid);

/* match => 'name': a header's names mapped to columns (options.c) */
extern bool *csv_match_header(CsvDialect *dialect, const CsvRecord *header,
							  int ncolumns, char *const *names,
							  bool extra_ignore, const char *what);
extern const char *csv_load_mode_label(CsvLoadMode mode);

#endif							/* CSVPIPE_OPTIONS_H */
