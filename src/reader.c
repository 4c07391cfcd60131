/*-------------------------------------------------------------------------
 *
 * reader.c
 *		Server file access, block reading and encoding for csvpipe.
 *
 * Owns everything between a path and the tokenizer: the privilege and
 * csvpipe.allowed_dirs checks (on the canonical path, so symlinks and ".."
 * cannot escape), refusing directories, FIFOs and devices, reading the file
 * in fixed-size blocks, dropping a UTF-8 byte order mark, validating or
 * converting each block to the server encoding (a multibyte character cut
 * by a block boundary is carried to the next block), skip_rows and the
 * header, and noticing a file that changed while it was read.
 *
 * A block is converted before it is tokenized, so files in encodings whose
 * multibyte characters may contain ASCII bytes (SJIS, BIG5, ...) cannot
 * confuse the quote and delimiter scan.
 *
 *-------------------------------------------------------------------------
 */
#include "csvpipe.h"
#include "parallel.h"

#include <fcntl.h>
#include <unistd.h>

#include "catalog/pg_authid.h"
#include "catalog/namespace.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "storage/fd.h"
#include "utils/acl.h"
#include "utils/memutils.h"
#include "utils/varlena.h"

/* bytes read per block; the unit of memory and of interrupt checks */
#define CSV_READ_BLOCK_SIZE		(256 * 1024)
/* a carried partial character is shorter than this */
#define CSV_CARRY_MAX			8

struct CsvReader
{
	const CsvDialect *dialect;
	CsvErrorPosition *errpos;
	char	   *path;
	int			fd;
	struct stat st;				/* as opened */
	CsvFileId	id;				/* as opened, to detect changes */
	off_t		bytes_read;

	CsvTokenizer *tok;
	char	   *buf;			/* [carry][block] */
	int			carry_len;
	char	   *convbuf;		/* conversion output, when encodings differ */
	size_t		convbuf_size;
	Oid			conv_proc;
	bool		verify;			/* validate bytes in the server encoding */
	bool		first_block;
	bool		eof;

	int64		skip_left;
	bool		header_pending;
	CsvRecord	header;
	bool		have_header;
};

/*
 * Is "path" inside directory "dir"?  Both are canonical (realpath) paths.
 */
static bool
path_is_under(const char *path, const char *dir)
{
	size_t		len = strlen(dir);

	if (len == 1 && dir[0] == '/')
		return true;
	if (strncmp(path, dir, len) != 0)
		return false;
	return path[len] == '/' || path[len] == '\0';
}

/*
 * Check that the current user may read "path" as a server file, and that the
 * file lies under csvpipe.allowed_dirs when that is set.  Returns the
 * canonical path in *canonical_path when it was computed (else NULL).
 */
void
csv_check_read_access(const char *path, char **canonical_path)
{
	char	   *real;
	char	   *dirs;
	List	   *dirlist;
	ListCell   *lc;
	bool		allowed = false;

	if (canonical_path)
		*canonical_path = NULL;

	if (!has_privs_of_role(GetUserId(), ROLE_PG_READ_SERVER_FILES))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied to read file \"%s\"", path),
				 errdetail("Only roles with privileges of the \"pg_read_server_files\" role may read server files with csvpipe."),
				 errhint("A superuser can run GRANT pg_read_server_files TO <role>.")));

	if (csvpipe_allowed_dirs == NULL || csvpipe_allowed_dirs[0] == '\0')
		return;

	real = realpath(path, NULL);
	if (real == NULL)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not open file \"%s\" for reading: %m", path)));

	dirs = pstrdup(csvpipe_allowed_dirs);
	if (!SplitDirectoriesString(dirs, ',', &dirlist))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid list syntax in csvpipe.allowed_dirs")));
	foreach(lc, dirlist)
	{
		char	   *dir = (char *) lfirst(lc);
		char	   *realdir = realpath(dir, NULL);

		if (realdir == NULL)
			continue;			/* a missing directory allows nothing */
		allowed = path_is_under(real, realdir);
		free(realdir);
		if (allowed)
			break;
	}

	if (!allowed)
	{
		char	   *copy = pstrdup(real);

		free(real);
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("file \"%s\" is outside csvpipe.allowed_dirs", path),
				 errdetail("Its canonical path is \"%s\"; csvpipe.allowed_dirs is \"%s\".",
						   copy, csvpipe_allowed_dirs)));
	}
	if (canonical_path)
		*canonical_path = pstrdup(real);
	free(real);
}

static void
check_regular_file(const char *path, struct stat *st)
{
	if (S_ISDIR(st->st_mode))
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("\"%s\" is a directory", path)));
	if (!S_ISREG(st->st_mode))
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("\"%s\" is not a regular file", path),
				 errdetail("csvpipe reads regular files only, not FIFOs, sockets or devices.")));
}

/*
 * Open a server file for reading after every check: privileges,
 * csvpipe.allowed_dirs, regular file.  Returns the fd (closed at transaction
 * end if the caller does not) and its stat.
 */
int
csv_open_checked(const char *path, struct stat *st)
{
	struct stat pst;
	int			fd;

	csv_check_read_access(path, NULL);

	/* stat before open: opening a FIFO would block */
	if (stat(path, &pst) != 0)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not open file \"%s\" for reading: %m", path)));
	check_regular_file(path, &pst);

	fd = OpenTransientFile(path, O_RDONLY | O_NONBLOCK | PG_BINARY);
	if (fd < 0)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not open file \"%s\" for reading: %m", path)));
	/* the path may have been swapped between stat and open */
	if (fstat(fd, st) != 0)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not stat file \"%s\": %m", path)));
	check_regular_file(path, st);
	return fd;
}

CsvReader *
csv_reader_open(const char *path, const CsvDialect *dialect,
				CsvErrorPosition *errpos)
{
	CsvReader  *r;
	int			server_enc = GetDatabaseEncoding();

	r = palloc0(sizeof(CsvReader));
	r->dialect = dialect;
	r->errpos = errpos;
	r->path = pstrdup(path);
	r->fd = csv_open_checked(path, &r->st);
	csv_file_id(&r->st, &r->id);

	r->buf = palloc(CSV_CARRY_MAX + CSV_READ_BLOCK_SIZE);
	r->first_block = true;
	if (dialect->file_encoding == server_enc ||
		dialect->file_encoding == PG_SQL_ASCII || server_enc == PG_SQL_ASCII)
		r->verify = (server_enc != PG_SQL_ASCII);
	else
	{
		r->conv_proc = FindDefaultConversionProc(dialect->file_encoding, server_enc);
		if (!OidIsValid(r->conv_proc))
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_FUNCTION),
					 errmsg("no conversion from encoding \"%s\" to \"%s\"",
							pg_encoding_to_char(dialect->file_encoding),
							GetDatabaseEncodingName())));
		r->convbuf_size = (size_t) (CSV_CARRY_MAX + CSV_READ_BLOCK_SIZE) *
			MAX_CONVERSION_GROWTH + 1;
		r->convbuf = palloc(r->convbuf_size);
	}

	r->skip_left = dialect->skip_rows;
	r->header_pending = (dialect->header != CSV_HEADER_NONE);
	r->tok = csv_tokenizer_create(dialect, errpos, 1);
	return r;
}

off_t
csv_reader_file_size(CsvReader *reader)
{
	return reader->st.st_size;
}

/* The file as opened (fstat) */
const CsvFileId *
csv_reader_file_id(CsvReader *reader)
{
	return &reader->id;
}

/* Bytes read from the file so far (for progress reports) */
off_t
csv_reader_bytes_read(CsvReader *reader)
{
	return reader->bytes_read;
}

/* Line holding byte "upto" of a block that is about to be tokenized */
static int64
line_in_block(CsvReader *r, const char *data, size_t upto)
{
	int64		line = csv_tokenizer_pending_line(r->tok);
	const char *s = data;
	const char *end = data + upto;

	while ((s = memchr(s, '\n', end - s)) != NULL)
	{
		line++;
		s++;
	}
	return line;
}

/*
 * Bytes at data[valid..len) failed validation or conversion.  If they may be
 * the start of a character cut by the block boundary, return how many to
 * carry to the next block; otherwise report the invalid sequence.
 */
static int
carry_or_complain(CsvReader *r, const char *data, int valid, int len, int encoding)
{
	int			rest = len - valid;

	if (!r->eof && rest < CSV_CARRY_MAX &&
		pg_encoding_mblen(encoding, data + valid) > rest)
		return rest;

	r->errpos->line_no = line_in_block(r, data, valid);
	r->errpos->field_no = 0;
	report_invalid_encoding(encoding, data + valid, rest);
	return 0;					/* not reached */
}

/* Validate or convert one block and hand it to the tokenizer */
static void
feed_block(CsvReader *r, char *data, int len)
{
	int			carry = 0;

	if (r->first_block)
	{
		r->first_block = false;
		if (r->dialect->file_encoding == PG_UTF8 && len >= 3 &&
			memcmp(data, "\xEF\xBB\xBF", 3) == 0)
		{
			data += 3;
			len -= 3;
		}
	}

	if (OidIsValid(r->conv_proc))
	{
		int			consumed;

		consumed = pg_do_encoding_conversion_buf(r->conv_proc,
												 r->dialect->file_encoding,
												 GetDatabaseEncoding(),
												 (unsigned char *) data, len,
												 (unsigned char *) r->convbuf,
												 (int) r->convbuf_size,
												 true);
		if (consumed < len)
		{
			carry = carry_or_complain(r, data, consumed, len,
									  r->dialect->file_encoding);
			if (carry == 0)
				/* let the conversion itself report the bad sequence */
				(void) pg_do_encoding_conversion_buf(r->conv_proc,
													 r->dialect->file_encoding,
													 GetDatabaseEncoding(),
													 (unsigned char *) data + consumed,
													 len - consumed,
													 (unsigned char *) r->convbuf,
													 (int) r->convbuf_size,
													 false);
		}
		csv_tokenizer_feed(r->tok, r->convbuf, strlen(r->convbuf));
	}
	else
	{
		int			valid = len;

		if (r->verify)
		{
			valid = pg_encoding_verifymbstr(GetDatabaseEncoding(), data, len);
			if (valid < len)
				carry = carry_or_complain(r, data, valid, len,
										  GetDatabaseEncoding());
		}
		csv_tokenizer_feed(r->tok, data, valid);
	}

	/* keep the cut character for the next block */
	if (carry > 0)
		memmove(r->buf, data + len - carry, carry);
	r->carry_len = carry;
}

void
csv_file_id(const struct stat *st, CsvFileId *id)
{
	id->size = (int64) st->st_size;
	id->dev = (int64) st->st_dev;
	id->ino = (int64) st->st_ino;
	id->mtime_ns = (int64) st->st_mtim.tv_sec * 1000000000 + st->st_mtim.tv_nsec;
}

bool
csv_file_id_equal(const CsvFileId *a, const CsvFileId *b)
{
	return a->size == b->size && a->dev == b->dev && a->ino == b->ino &&
		a->mtime_ns == b->mtime_ns;
}

/* The identity of the file at path now; false if it cannot be stat'ed */
bool
csv_file_id_of_path(const char *path, CsvFileId *id)
{
	struct stat st;

	if (stat(path, &st) != 0)
		return false;
	csv_file_id(&st, id);
	return true;
}

/*
 * The open file fd must still be what it was when opened (at_open), and,
 * unless bytes_read is -1, every byte of it must have been read: a file
 * that grew, shrank, was rewritten or replaced is an error.
 */
void
csv_check_file_unchanged(int fd, const char *path, const CsvFileId *at_open,
						 int64 bytes_read)
{
	struct stat st;
	CsvFileId	now;

	if (fstat(fd, &st) != 0)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not stat file \"%s\": %m", path)));
	csv_file_id(&st, &now);
	if (!csv_file_id_equal(&now, at_open) ||
		(bytes_read >= 0 && bytes_read != at_open->size))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("file \"%s\" changed while it was being read", path),
				 bytes_read >= 0 ?
				 errdetail("It had %lld bytes when opened, %lld bytes were read and it has %lld bytes now.",
						   (long long) at_open->size, (long long) bytes_read,
						   (long long) now.size) :
				 errdetail("It had %lld bytes when opened and has %lld bytes now.",
						   (long long) at_open->size, (long long) now.size)));
}

/* Resuming a job: path must hold the file the job started on */
void
csv_check_job_file(const char *path, int64 job_id, const CsvFileId *recorded)
{
	CsvFileId	now;

	if (!csv_file_id_of_path(path, &now))
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not stat file \"%s\": %m", path)));
	if (!csv_file_id_equal(&now, recorded))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("file \"%s\" changed since csvpipe job " INT64_FORMAT " started", path, job_id),
				 errdetail("A job can only be resumed on the same file (device, inode, size and modification time)."),
				 errhint("Load the new file as a new job.")));
}

/* Read and tokenize the next block; false at end of file */
static bool
read_block(CsvReader *r)
{
	ssize_t		n;

	if (r->eof)
		return false;

	CHECK_FOR_INTERRUPTS();
	for (;;)
	{
		n = read(r->fd, r->buf + r->carry_len, CSV_READ_BLOCK_SIZE);
		if (n >= 0 || errno != EINTR)
			break;
		CHECK_FOR_INTERRUPTS();
	}
	if (n < 0)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not read file \"%s\": %m", r->path)));
	r->bytes_read += n;

	if (n == 0)
	{
		r->eof = true;
		if (r->carry_len > 0)	/* a character cut by the end of file */
			carry_or_complain(r, r->buf, 0, r->carry_len,
							  OidIsValid(r->conv_proc) ? r->dialect->file_encoding :
							  GetDatabaseEncoding());
		csv_check_file_unchanged(r->fd, r->path, &r->id, r->bytes_read);
		csv_tokenizer_finish(r->tok);
		return true;
	}
	feed_block(r, r->buf, r->carry_len + (int) n);
	return true;
}

/* Next record from the file, before skip_rows and header handling */
static bool
next_raw_record(CsvReader *r, CsvRecord *rec)
{
	for (;;)
	{
		if (csv_tokenizer_next(r->tok, rec))
			return true;
		if (!read_block(r))
			return false;
	}
}

static bool
consume_prefix(CsvReader *r, CsvRecord *rec)
{
	while (r->skip_left > 0)
	{
		if (!next_raw_record(r, rec))
			return false;
		r->skip_left--;
	}
	return true;
}

/*
 * The header record (after skip_rows), or NULL for an empty file.  Must be
 * called before the first csv_reader_next() to be seen; otherwise the
 * header is skipped silently.
 */
CsvRecord *
csv_reader_header(CsvReader *r)
{
	CsvRecord	rec;

	if (r->have_header)
		return &r->header;
	if (!r->header_pending)
		return NULL;
	r->header_pending = false;
	if (!consume_prefix(r, &rec) || !next_raw_record(r, &rec))
		return NULL;

	/* copy: the tokenizer reuses its buffers */
	r->header.line_no = rec.line_no;
	r->header.nfields = rec.nfields;
	r->header.values = palloc(sizeof(char *) * Max(rec.nfields, 1));
	r->header.lengths = palloc(sizeof(int) * Max(rec.nfields, 1));
	for (int i = 0; i < rec.nfields; i++)
	{
		r->header.values[i] = rec.values[i] ? pstrdup(rec.values[i]) : NULL;
		r->header.lengths[i] = rec.lengths[i];
	}
	r->have_header = true;
	return &r->header;
}

bool
csv_reader_next(CsvReader *r, CsvRecord *rec)
{
	CHECK_FOR_INTERRUPTS();
	if (r->header_pending)
		(void) csv_reader_header(r);
	else if (r->skip_left > 0 && !consume_prefix(r, rec))
		return false;
	return next_raw_record(r, rec);
}

void
csv_reader_close(CsvReader *r)
{
	if (r->fd >= 0)
	{
		CloseTransientFile(r->fd);
		r->fd = -1;
	}
	if (r->tok)
	{
		csv_tokenizer_destroy(r->tok);
		r->tok = NULL;
	}
}

/*
 * Validate or convert a buffer that holds whole records (a chunk) to the
 * server encoding.  Returns data itself when no conversion is needed, else
 * a palloc'd copy.  Invalid bytes are reported with their line number.
 */
char *
csv_buffer_to_server(const CsvDialect *dialect, char *data, int64 len,
					 int64 *outlen, CsvErrorPosition *errpos, int64 first_line)
{
	int			server_enc = GetDatabaseEncoding();
	int			valid;

	*outlen = len;
	if (dialect->file_encoding == server_enc ||
		dialect->file_encoding == PG_SQL_ASCII || server_enc == PG_SQL_ASCII)
	{
		if (server_enc == PG_SQL_ASCII)
			return data;
		valid = pg_encoding_verifymbstr(server_enc, data, (int) len);
		if (valid < len)
		{
			errpos->line_no = first_line;
			for (int i = 0; i < valid; i++)
				if (data[i] == '\n')
					errpos->line_no++;
			errpos->field_no = 0;
			report_invalid_encoding(server_enc, data + valid, (int) (len - valid));
		}
		return data;
	}
	else
	{
		Oid			proc = FindDefaultConversionProc(dialect->file_encoding, server_enc);
		char	   *out = palloc((Size) len * MAX_CONVERSION_GROWTH + 1);
		int			consumed;

		consumed = pg_do_encoding_conversion_buf(proc, dialect->file_encoding,
												 server_enc,
												 (unsigned char *) data, (int) len,
												 (unsigned char *) out,
												 (int) ((Size) len * MAX_CONVERSION_GROWTH + 1),
												 true);
		if (consumed < len)
		{
			errpos->line_no = first_line;
			for (int i = 0; i < consumed; i++)
				if (data[i] == '\n')
					errpos->line_no++;
			errpos->field_no = 0;
			(void) pg_do_encoding_conversion_buf(proc, dialect->file_encoding,
												 server_enc,
												 (unsigned char *) data + consumed,
												 (int) (len - consumed),
												 (unsigned char *) out,
												 (int) ((Size) len * MAX_CONVERSION_GROWTH + 1),
												 false);
			/* the conversion found nothing wrong alone: an incomplete character */
			report_invalid_encoding(dialect->file_encoding, data + consumed,
									(int) (len - consumed));
		}
		*outlen = strlen(out);
		return out;
	}
}

/* Length of the prefix of a buffer that is valid in the file's encoding */
int64
csv_valid_prefix(const CsvDialect *dialect, const char *data, int64 len)
{
	int			server_enc = GetDatabaseEncoding();
	int			enc = dialect->file_encoding;

	if (server_enc == PG_SQL_ASCII || enc == PG_SQL_ASCII)
		return len;
	return pg_encoding_verifymbstr(enc, data, (int) len);
}
