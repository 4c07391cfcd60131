/*-------------------------------------------------------------------------
 *
 * csvfile.h
 *		The csv layer's declarations: the dialect, records, the tokenizer,
 *		file access and the reader, encoding, type conversion.
 *
 * Each .c file owns one responsibility; this header only carries the types
 * that cross file boundaries (and, through settings.h, the GUC variables).
 * It declares only what the csv layer defines: the entry points of higher
 * layers are in their own headers (src/sql/srf.h, src/sql/scan.h,
 * src/cache/cache.h, src/parallel/parallel.h).  The module's entry,
 * _PG_init, is src/csvpipe.c.
 *
 *-------------------------------------------------------------------------
 */
#ifndef CSVPIPE_CSVFILE_H
#define CSVPIPE_CSVFILE_H

#include "postgres.h"

#include <sys/stat.h>

#include "access/tupdesc.h"
#include "fmgr.h"
#include "lib/stringinfo.h"
#include "nodes/pg_list.h"

#include "settings.h"

/* header => ... */
typedef enum CsvHeaderMode
{
	CSV_HEADER_NONE,
	CSV_HEADER_SKIP,
	CSV_HEADER_MATCH
} CsvHeaderMode;

/*
 * The CSV dialect: the options that say how the file is written,
 * validated once (options.c) and shared by every entry point.
 */
typedef struct CsvDialect
{
	char		delimiter;
	char		quote;
	char		escape;
	CsvHeaderMode header;
	char	   *null_string;	/* NULL marker; "" = unquoted empty field */
	int			null_len;
	int			file_encoding;	/* encoding of the file */
	int64		skip_rows;		/* records skipped before the header */

	/*
	 * Not an option: set once the column count is known
	 * (csv_dialect_set_columns).  An empty line is a record of one NULL
	 * field, as COPY reads it, when the file has one column (or for
	 * read_text); in files of more columns it is skipped.
	 */
	bool		empty_line_is_record;

	/*
	 * Not an option: match => 'name' (insert/match.c) resolved the file's
	 * header to columns.  The file has nfile_fields fields; field_column[f]
	 * is the column (0-based, in the column list) that field f fills, or -1
	 * when the field is ignored.  file_header: the header's names as they
	 * were mapped, so that the header the load reads is checked to be the
	 * same (leader only; not handed to workers).  nfile_fields == 0: fields
	 * are columns by position.
	 */
	int			nfile_fields;
	int		   *field_column;
	char	  **file_header;
} CsvDialect;

extern void csv_dialect_set_header(CsvDialect *dialect, const char *label);
extern const char *csv_dialect_header_label(const CsvDialect *dialect);
extern void csv_dialect_set_columns(CsvDialect *dialect, int ncolumns);

/* chunk_size's upper bound: csvpipe.chunk_size's (1GB) */
#define CSV_MAX_CHUNK_SIZE	((int64) 1024 * 1024 * 1024)
extern int64 csv_check_chunk_size(int64 chunk_size);

/*
 * Why a record is bad (malformed quoting, bytes invalid in the encoding).
 * The tokenizer does not raise these errors: it hands the record out with
 * this attached, and whoever consumes the record raises it (stop) or
 * rejects the record (skip), in file order.
 */
typedef struct CsvBadRecord
{
	int			sqlerrcode;
	const char *message;
	const char *detail;			/* or NULL */
	const char *hint;			/* or NULL */
	int64		line_no;		/* line of the offending byte */
	int			field_no;		/* 1-based field, 0 = none */
} CsvBadRecord;

/*
 * One parsed record, valid until the next call that feeds the tokenizer.
 * values[i] is NUL-terminated, in the server encoding; NULL when the field
 * was empty and unquoted (COPY's default NULL for CSV).
 */
typedef struct CsvRecord
{
	int64		line_no;		/* physical line where the record starts */
	int			nfields;
	char	  **values;
	int		   *lengths;
	bool		empty_line;		/* an empty line: one NULL field */
	const CsvBadRecord *bad;	/* NULL, or why the record is bad (no fields) */
} CsvRecord;


/* Where in the input we are, for error context lines (reader.c) */
typedef struct CsvErrorPosition
{
	const char *path;
	const char *funcname;		/* "csvpipe.read" etc. */
	int64		line_no;		/* 0 = unknown */
	int			field_no;		/* 1-based field number, 0 = none */
	const char *column;			/* column name, or NULL */
	char	  **column_names;	/* names by field number, or NULL */
	int			ncolumns;
	const char *value;			/* field text being converted, or NULL */
	/* a wrong field count's hint compares this dialect (sniff.c) */
	const CsvDialect *dialect;
	int			hint_state;		/* 0: not looked for, 1: none, 2: hint[] */
	char		hint[256];
} CsvErrorPosition;

extern void csv_error_context_callback(void *arg);

/*
 * The hint a malformed record's error gives when the read's dialect does
 * not fit the file (sniff.c installs it: the tokenizer does not call the
 * sniffer, which uses the tokenizer).  ncolumns: the fields a record must
 * have, 0 for any.  Returns the hint or NULL.
 */
typedef const char *(*CsvDialectHintHook) (CsvErrorPosition *errpos, int ncolumns);
extern CsvDialectHintHook csv_dialect_hint_hook;
extern void csv_record_raise_bad(const CsvRecord *rec, CsvErrorPosition *errpos) pg_attribute_noreturn();

/* tokenizer.c: libcsv behind a batch interface */
typedef struct CsvTokenizer CsvTokenizer;

extern CsvTokenizer *csv_tokenizer_create(const CsvDialect *dialect,
										  CsvErrorPosition *errpos,
										  int64 first_line);
extern void csv_tokenizer_feed(CsvTokenizer *tok, const char *data, size_t len);
extern void csv_tokenizer_finish(CsvTokenizer *tok);
extern bool csv_tokenizer_next(CsvTokenizer *tok, CsvRecord *rec);
extern int64 csv_tokenizer_pending_line(CsvTokenizer *tok);
extern void csv_tokenizer_set_line(CsvTokenizer *tok, int64 line);
extern void csv_tokenizer_set_prefix(CsvTokenizer *tok, int64 n);
extern void csv_tokenizer_mark_bad(CsvTokenizer *tok, int sqlerrcode,
								   const char *message, int64 line_no);
extern void csv_tokenizer_destroy(CsvTokenizer *tok);

/* reader.c: file access, block reading, encoding, streaming records */
typedef struct CsvReader CsvReader;

/* validation or conversion of a file's bytes on their way to the tokenizer */
typedef struct CsvEncoder
{
	const CsvDialect *dialect;
	Oid			conv_proc;		/* file -> server, or InvalidOid */
	int			verify_enc;		/* else: the encoding bytes are checked in */
	char	   *out;			/* conversion output, in cxt */
	size_t		out_size;
	MemoryContext cxt;
} CsvEncoder;

extern void csv_encoder_init(CsvEncoder *e, const CsvDialect *dialect);
extern int64 csv_encoder_feed(CsvEncoder *e, CsvTokenizer *tok, const char *data,
							  int64 len, bool final);
extern int	csv_bad_char_length(int encoding, const char *data, int64 len);

/* what identifies a file's contents: rewritten or replaced, it changes */
typedef struct CsvFileId
{
	int64		size;
	int64		dev;
	int64		ino;
	int64		mtime_ns;
	int64		ctime_ns;		/* not compared by csv_file_id_equal: the
								 * cache compares it (permission changes) */
} CsvFileId;

/* csv_open_file() flags */
#define CSV_OPEN_QUIET		0x01	/* -1 instead of file errors */

extern bool csv_path_is_allowed(const char *real);
extern bool csv_path_inside(const char *path);
extern char *csv_resolve_allowed(const char *path);
extern int	csv_open_file(const char *path, int flags, struct stat *st,
						  char **canonical);
extern int	csv_open_checked(const char *path, struct stat *st);
extern bool csv_stat_file(const char *path, int flags, struct stat *st,
						  char **canonical);
extern void csv_close_file(int fd);
extern void csv_file_id(const struct stat *st, CsvFileId *id);
extern bool csv_file_id_equal(const CsvFileId *a, const CsvFileId *b);
extern bool csv_file_id_of_path(const char *path, CsvFileId *id);
extern void csv_check_file_unchanged(int fd, const char *path,
									 const CsvFileId *at_open, int64 bytes_read);
extern void csv_check_job_file(const char *path, int64 job_id,
							   const CsvFileId *recorded);
extern CsvReader *csv_reader_open(const char *path, const CsvDialect *dialect,
								  CsvErrorPosition *errpos);
extern bool csv_reader_next(CsvReader *reader, CsvRecord *rec);
extern CsvRecord *csv_reader_header(CsvReader *reader);
extern void csv_reader_close(CsvReader *reader);
extern off_t csv_reader_file_size(CsvReader *reader);
extern const CsvFileId *csv_reader_file_id(CsvReader *reader);
extern off_t csv_reader_bytes_read(CsvReader *reader);

/* whole-buffer encoding step: validate or convert a chunk of whole records */
extern int64 csv_valid_prefix(const CsvDialect *dialect, const char *data, int64 len);
extern char *csv_buffer_to_server(const CsvDialect *dialect, char *data,
								  int64 len, int64 *outlen,
								  CsvErrorPosition *errpos, int64 first_line);

/* fastinput.c: exact fast paths for common shapes of a few types */
typedef enum CsvFastInput
{
	CSV_FAST_NONE = 0,
	CSV_FAST_TIMESTAMPTZ,
	CSV_FAST_TIMESTAMP,
	CSV_FAST_DATE,
	CSV_FAST_BOOL
} CsvFastInput;

extern CsvFastInput csv_fast_input_kind(Oid typid, int32 typmod);
extern bool csv_fast_input(CsvFastInput kind, const char *s, Datum *result);

/* convert.c: fields to Datums with the column types' input functions */
typedef struct CsvConverter CsvConverter;

extern CsvConverter *csv_converter_create(TupleDesc tupdesc,
										  const CsvDialect *dialect,
										  CsvErrorPosition *errpos,
										  bool *convert_columns);
extern void csv_converter_check_header(CsvConverter *conv, CsvRecord *header);
extern void csv_converter_set_rowtype(CsvConverter *conv, Oid rowtype);
extern TupleDesc csv_rowtype_desc(Oid rowtype, const char *funcname);
extern TupleDesc csv_rowtype_file_desc(Oid rowtype, TupleDesc rowdesc,
									   int *out_field, const char *funcname);
extern void csv_converter_row(CsvConverter *conv, CsvRecord *rec,
							  Datum *values, bool *nulls);
extern ErrorData *csv_converter_row_catch(CsvConverter *conv, CsvRecord *rec,
										  Datum *values, bool *nulls,
										  MemoryContext errcxt);
extern bool csv_converter_row_or_skip(CsvConverter *conv, CsvRecord *rec,
									  Datum *values, bool *nulls, int64 *nskipped);
extern void csv_text_row(const CsvDialect *dialect, CsvRecord *rec,
						 Datum *values, bool *nulls, CsvErrorPosition *errpos);
extern void csv_record_skip_notice(CsvErrorPosition *errpos, CsvRecord *rec,
								   int64 *nskipped);
extern void csv_skip_notice(CsvErrorPosition *errpos, int64 line_no,
							const char *message, int64 nth);

#endif							/* CSVPIPE_CSVFILE_H */
