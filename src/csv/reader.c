/*-------------------------------------------------------------------------
 *
 * reader.c
 *		Server file access, block reading and encoding for csvpipe.
 *
 * Owns everything between a path and the tokenizer: opening a server file
 * (every csvpipe path that opens or stats a file comes through
 * csv_open_file: reads, loads, submit, resume, the cache, the planner's
 * estimate) with the privilege and csvpipe.allowed_dirs checks on the
 * canonical path, then an open that follows no symbolic link, so the file
 * opened is the file checked (no swap between check and open can escape);
 * refusing directories, FIFOs and devices; the descriptor's lifetime (the
 * memory context of the read, not the subtransaction); reading the file
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
#include "csvfile.h"

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
	CsvEncoder	enc;			/* validation or conversion of the blocks */
	bool		first_block;
	bool		eof;

	int64		skip_left;
	bool		header_pending;
	CsvRecord	header;
	bool		have_header;
};

/* ---- opening a server file: check what was opened ---- */

/*
 * A file opened by csv_open_file().  It is a plain open() (counted with
 * ReserveExternalFD), not an OpenTransientFile(): a transient file is closed
 * when the subtransaction that opened it aborts, and a cursor's read opened
 * on a FETCH inside a savepoint would then go on reading a descriptor number
 * that a relation may have reused.  Its lifetime is the memory context it
 * was opened in (the read's, the scan's or the load's), which a
 * subtransaction abort does not touch and a transaction abort deletes.
 */
typedef struct CheckedFile
{
	int			fd;				/* -1 once closed */
	MemoryContextCallback cb;
	struct CheckedFile *prev;
	struct CheckedFile *next;
} CheckedFile;

/* the files this backend has open through csv_open_file() */
static CheckedFile *checked_files = NULL;

static void
checked_file_close(CheckedFile *cf)
{
	if (cf->fd < 0)
		return;
	close(cf->fd);
	ReleaseExternalFD();
	cf->fd = -1;
	if (cf->prev)
		cf->prev->next = cf->next;
	else
		checked_files = cf->next;
	if (cf->next)
		cf->next->prev = cf->prev;
	cf->prev = cf->next = NULL;
}

static void
checked_file_callback(void *arg)
{
	checked_file_close((CheckedFile *) arg);
}

/* Track fd: closed by csv_close_file() or when CurrentMemoryContext goes */
static void
checked_file_track(int fd)
{
	CheckedFile *cf = MemoryContextAllocZero(CurrentMemoryContext,
											 sizeof(CheckedFile));

	cf->fd = fd;
	cf->cb.func = checked_file_callback;
	cf->cb.arg = cf;
	MemoryContextRegisterResetCallback(CurrentMemoryContext, &cf->cb);
	cf->next = checked_files;
	if (checked_files)
		checked_files->prev = cf;
	checked_files = cf;
}

/* Close a descriptor returned by csv_open_file() or csv_open_checked() */
void
csv_close_file(int fd)
{
	for (CheckedFile *cf = checked_files; cf != NULL; cf = cf->next)
		if (cf->fd == fd)
		{
			checked_file_close(cf);
			return;
		}
	elog(WARNING, "csvpipe: file descriptor %d was not opened by csvpipe", fd);
}

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

/* Is csvpipe.allowed_dirs set? */
static bool
allowed_dirs_set(void)
{
	return csvpipe_allowed_dirs != NULL && csvpipe_allowed_dirs[0] != '\0';
}

/* Is the canonical path "real" under one of csvpipe.allowed_dirs? */
bool
csv_path_is_allowed(const char *real)
{
	char	   *dirs;
	List	   *dirlist;
	ListCell   *lc;
	bool		allowed = false;

	if (!allowed_dirs_set())
		return true;
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
	list_free_deep(dirlist);
	pfree(dirs);
	return allowed;
}

/*
 * The one error for a path outside csvpipe.allowed_dirs, whether it exists,
 * is a directory, a glob or unreadable: it names the path as given and
 * nothing the server found out about it.
 */
static void
report_outside(const char *path)
{
	ereport(ERROR,
			(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
			 errmsg("file \"%s\" is outside csvpipe.allowed_dirs", path),
			 errdetail("csvpipe reads only files under csvpipe.allowed_dirs (\"%s\").",
					   csvpipe_allowed_dirs)));
}

static void
check_privilege(const char *path)
{
	if (!has_privs_of_role(GetUserId(), ROLE_PG_READ_SERVER_FILES))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied to read file \"%s\"", path),
				 errdetail("Only roles with privileges of the \"pg_read_server_files\" role may read server files with csvpipe."),
				 errhint("A superuser can run GRANT pg_read_server_files TO <role>.")));
}

/*
 * The canonical path of "path" (palloc'd), or NULL with errno set when it
 * cannot be resolved.  *inside: whether the path is under
 * csvpipe.allowed_dirs.  For a path that does not resolve, that is decided
 * on its deepest ancestor that does, so that a missing file outside the
 * directories looks exactly like an existing one.
 */
static char *
resolve_path(const char *path, bool *inside)
{
	char	   *real = realpath(path, NULL);
	char	   *copy;
	char	   *result;
	int			save_errno;

	if (real != NULL)
	{
		result = pstrdup(real);
		free(real);
		*inside = csv_path_is_allowed(result);
		return result;
	}
	save_errno = errno;
	*inside = true;
	if (allowed_dirs_set())
	{
		copy = pstrdup(path);
		*inside = false;
		for (;;)
		{
			char	   *slash = strrchr(copy, '/');
			char	   *anc;

			if (slash == NULL)
				anc = realpath(".", NULL);	/* a relative path's base */
			else
			{
				if (slash == copy)
					slash[1] = '\0';	/* "/" */
				else
					*slash = '\0';
				anc = realpath(copy, NULL);
			}
			if (anc != NULL)
			{
				*inside = csv_path_is_allowed(anc);
				free(anc);
				break;
			}
			if (slash == NULL || slash == copy)
				break;
		}
		pfree(copy);
	}
	errno = save_errno;
	return NULL;
}

/*
 * Is path (which need not exist) inside csvpipe.allowed_dirs, decided as
 * csv_open_file() decides it?  For a glob's fixed directory part.
 */
bool
csv_path_inside(const char *path)
{
	bool		inside;
	char	   *real = resolve_path(path, &inside);

	if (real)
		pfree(real);
	return inside;
}

/*
 * For entry points that name a path without opening it (cache_invalidate):
 * the csvpipe.allowed_dirs check first, with the one error for a path
 * outside (decided as csv_open_file() decides it, so nothing else is
 * learnt about such a path); then its canonical path, or NULL when it does
 * not resolve (gone).
 */
char *
csv_resolve_allowed(const char *path)
{
	bool		inside;
	char	   *real = resolve_path(path, &inside);

	if (!inside)
		report_outside(path);
	return real;
}

#ifdef O_PATH
#define DIR_WALK_FLAGS	(O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
#else
#define DIR_WALK_FLAGS	(O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
#endif

/*
 * Open the canonical path "real" one component at a time, following no
 * symbolic link: every directory on the way and the file itself are the
 * ones "real" names, so a link swapped in after the path was resolved and
 * checked makes the open fail (ELOOP) instead of leading elsewhere.  A
 * non-regular file is refused before it is opened (opening a FIFO or a
 * device can block or act).  Returns the fd, or -1 with errno set, or -2
 * when the file is not a regular file (*st says what it is).
 */
static int
open_nofollow(const char *real, struct stat *st)
{
	char	   *copy = pstrdup(real);
	char	   *comp = copy + 1;
	char	   *slash;
	int			dfd;
	int			fd;
	int			save_errno;

	Assert(real[0] == '/');
	dfd = open("/", DIR_WALK_FLAGS & ~O_NOFOLLOW);
	if (dfd < 0)
		return -1;
	while ((slash = strchr(comp, '/')) != NULL)
	{
		int			nfd;

		*slash = '\0';
		nfd = openat(dfd, comp, DIR_WALK_FLAGS);
		save_errno = errno;
		close(dfd);
		if (nfd < 0)
		{
			errno = save_errno;
			return -1;
		}
		dfd = nfd;
		comp = slash + 1;
	}
	if (*comp == '\0')			/* "/" itself */
	{
		if (fstat(dfd, st) != 0)
			memset(st, 0, sizeof(*st));
		st->st_mode = S_IFDIR;
		close(dfd);
		return -2;
	}
	if (fstatat(dfd, comp, st, AT_SYMLINK_NOFOLLOW) != 0)
	{
		save_errno = errno;
		close(dfd);
		errno = save_errno;
		return -1;
	}
	if (!S_ISREG(st->st_mode))
	{
		close(dfd);
		return -2;
	}
	ReserveExternalFD();
	fd = openat(dfd, comp, O_RDONLY | O_NONBLOCK | O_NOFOLLOW | O_CLOEXEC | PG_BINARY);
	save_errno = errno;
	close(dfd);
	if (fd < 0)
	{
		ReleaseExternalFD();
		errno = save_errno;
		return -1;
	}
	pfree(copy);
	return fd;
}

static void
report_not_regular(const char *path, struct stat *st)
{
	if (S_ISDIR(st->st_mode))
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("\"%s\" is a directory", path)));
	ereport(ERROR,
			(errcode(ERRCODE_WRONG_OBJECT_TYPE),
			 errmsg("\"%s\" is not a regular file", path),
			 errdetail("csvpipe reads regular files only, not FIFOs, sockets or devices.")));
}

/*
 * Open a server file for reading after every check, in this order:
 * privileges; csvpipe.allowed_dirs on the canonical path (a path outside
 * gets one error that says nothing else about it); then the open itself,
 * which follows no symbolic link (see open_nofollow), so the file opened is
 * the one checked; then fstat of what was opened (a regular file).
 *
 * Returns the fd with its fstat in *st and, if canonical is not NULL, the
 * canonical path.  The fd belongs to CurrentMemoryContext (see CheckedFile);
 * close it with csv_close_file().  With CSV_OPEN_QUIET every failure but
 * the privilege check returns -1 instead of an error.
 */
int
csv_open_file(const char *path, int flags, struct stat *st, char **canonical)
{
	bool		quiet = (flags & CSV_OPEN_QUIET) != 0;
	bool		inside;
	char	   *real;
	int			fd;

	if (canonical)
		*canonical = NULL;
	check_privilege(path);
	real = resolve_path(path, &inside);
	if (!inside)
	{
		if (quiet)
			return -1;
		report_outside(path);
	}
	if (real == NULL)
	{
		if (quiet)
			return -1;
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not open file \"%s\" for reading: %m", path)));
	}
	fd = open_nofollow(real, st);
	if (fd == -2)
	{
		if (quiet)
			return -1;
		report_not_regular(path, st);
	}
	if (fd < 0)
	{
		if (quiet)
			return -1;
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not open file \"%s\" for reading: %m", path)));
	}
	checked_file_track(fd);
	if (fstat(fd, st) != 0)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not stat file \"%s\": %m", path)));
	if (!S_ISREG(st->st_mode))
	{
		csv_close_file(fd);
		if (quiet)
			return -1;
		report_not_regular(path, st);
	}
	if (canonical)
		*canonical = real;
	else
		pfree(real);
	return fd;
}

int
csv_open_checked(const char *path, struct stat *st)
{
	return csv_open_file(path, 0, st, NULL);
}

/*
 * The identity of a server file, with every check of csv_open_file(): it is
 * opened, fstat'ed and closed.  False (quiet only) when it cannot be.
 */
bool
csv_stat_file(const char *path, int flags, struct stat *st, char **canonical)
{
	int			fd = csv_open_file(path, flags, st, canonical);

	if (fd < 0)
		return false;
	csv_close_file(fd);
	return true;
}

CsvReader *
csv_reader_open(const char *path, const CsvDialect *dialect,
				CsvErrorPosition *errpos)
{
	CsvReader  *r;

	r = palloc0(sizeof(CsvReader));
	r->dialect = dialect;
	r->errpos = errpos;
	r->path = pstrdup(path);
	r->fd = csv_open_checked(path, &r->st);
	csv_file_id(&r->st, &r->id);

	r->buf = palloc(CSV_CARRY_MAX + CSV_READ_BLOCK_SIZE);
	r->first_block = true;
	csv_encoder_init(&r->enc, dialect);

	r->skip_left = dialect->skip_rows;
	r->header_pending = (dialect->header != CSV_HEADER_NONE);
	r->tok = csv_tokenizer_create(dialect, errpos, 1);
	csv_tokenizer_set_prefix(r->tok, r->skip_left + (r->header_pending ? 1 : 0));
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

/* Validate or convert one block and hand it to the tokenizer */
static void
feed_block(CsvReader *r, char *data, int len)
{
	int			carry;

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

	carry = (int) csv_encoder_feed(&r->enc, r->tok, data, len, r->eof);

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
	id->ctime_ns = (int64) st->st_ctim.tv_sec * 1000000000 + st->st_ctim.tv_nsec;
}

bool
csv_file_id_equal(const CsvFileId *a, const CsvFileId *b)
{
	return a->size == b->size && a->dev == b->dev && a->ino == b->ino &&
		a->mtime_ns == b->mtime_ns;
}

/*
 * The identity of the file at path now, as the current user would read it:
 * opened and fstat'ed through csv_open_file (privileges, allowed_dirs, no
 * link followed, regular files only), never a stat() of the path, which
 * the launcher's runners would otherwise make for any path as the bootstrap
 * superuser.  False if it cannot be opened; a role without the privilege
 * to read server files gets csv_open_file's error.  Needs a transaction.
 */
bool
csv_file_id_of_path(const char *path, CsvFileId *id)
{
	struct stat st;

	if (!csv_stat_file(path, CSV_OPEN_QUIET, &st, NULL))
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

/*
 * Resuming a job: path must hold the file the job started on.  Checked as a
 * read is (privileges, csvpipe.allowed_dirs, open), so that resuming says
 * nothing about a file the caller may not read.
 */
void
csv_check_job_file(const char *path, int64 job_id, const CsvFileId *recorded)
{
	CsvFileId	now;
	struct stat st;

	(void) csv_stat_file(path, 0, &st, NULL);
	csv_file_id(&st, &now);
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
		if (r->carry_len > 0)	/* a character cut by the end of file: bad */
			feed_block(r, r->buf, r->carry_len);
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

/*
 * skip_rows counts records, empty lines included (as the parallel leader,
 * which counts the splitter's records, and as COPY's HEADER takes an empty
 * first line); a malformed record counts as one.
 */
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
	if (!consume_prefix(r, &rec))
		return NULL;
	/* the next record, even an empty line (COPY's HEADER takes it) */
	if (!next_raw_record(r, &rec))
		return NULL;
	if (rec.bad)
		csv_record_raise_bad(&rec, r->errpos);

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
		csv_close_file(r->fd);
		r->fd = -1;
	}
	if (r->tok)
	{
		csv_tokenizer_destroy(r->tok);
		r->tok = NULL;
	}
}

/* ---- encodings ---- */

/* verification and conversion work on pieces of this size (int lengths) */
#define CSV_ENCODING_PIECE		(64 * 1024 * 1024)

/*
 * The encoding the bytes are checked in when no conversion runs: the
 * server's, or, in a SQL_ASCII database, the file's -- as COPY does, so a
 * NUL byte is refused even there (SQL_ASCII's own check refuses only NUL).
 */
static int
verify_encoding(const CsvDialect *dialect)
{
	int			server_enc = GetDatabaseEncoding();

	return server_enc == PG_SQL_ASCII ? dialect->file_encoding : server_enc;
}

void
csv_encoder_init(CsvEncoder *e, const CsvDialect *dialect)
{
	int			server_enc = GetDatabaseEncoding();

	memset(e, 0, sizeof(CsvEncoder));
	e->dialect = dialect;
	e->cxt = CurrentMemoryContext;	/* callers feed in shorter-lived ones */
	if (dialect->file_encoding == server_enc ||
		dialect->file_encoding == PG_SQL_ASCII || server_enc == PG_SQL_ASCII)
		e->verify_enc = verify_encoding(dialect);
	else
	{
		e->conv_proc = FindDefaultConversionProc(dialect->file_encoding, server_enc);
		if (!OidIsValid(e->conv_proc))
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_FUNCTION),
					 errmsg("no conversion from encoding \"%s\" to \"%s\"",
							pg_encoding_to_char(dialect->file_encoding),
							GetDatabaseEncodingName())));
	}
}

/*
 * Length of the prefix of data[0..len) that is valid in encoding enc, for
 * any length (pg_encoding_verifymbstr takes an int).
 */
static int64
verify_prefix(int enc, const char *data, int64 len)
{
	int64		done = 0;

	while (done < len)
	{
		int			piece = (int) Min(len - done, (int64) CSV_ENCODING_PIECE);
		int64		piece_end = done + piece;
		int			v = pg_encoding_verifymbstr(enc, data + done, piece);

		done += v;
		if (v == piece)
			continue;
		/* a character cut by the piece's end is checked with the next piece */
		if (piece_end < len && piece_end - done < CSV_CARRY_MAX)
			continue;
		break;
	}
	return done;
}

/*
 * How many bytes make the invalid character at data[0..len): one, or in an
 * encoding whose multibyte characters may hold ASCII bytes, the lead byte
 * and the trail bytes that may belong to it -- never a line end.  The
 * splitter steps over characters the same way (splitter.c).
 */
int
csv_bad_char_length(int encoding, const char *data, int64 len)
{
	int			n = 1;
	int			want;

	if (PG_VALID_BE_ENCODING(encoding) || !IS_HIGHBIT_SET(data[0]))
		return 1;
	want = pg_encoding_mblen(encoding, data);
	while (n < want && n < len && (unsigned char) data[n] >= 0x30)
		n++;
	return n;
}

/*
 * The error for the invalid character at data[0..len), raised by
 * PostgreSQL's own routines and caught: SQLSTATE and message, palloc'd.
 */
static char *
encoding_error(CsvEncoder *e, const char *data, int64 len, int *sqlerrcode)
{
	MemoryContext oldcxt = CurrentMemoryContext;
	char	   *message = NULL;
	int			n = (int) Min(len, (int64) 16);

	PG_TRY();
	{
		if (OidIsValid(e->conv_proc))
		{
			char		out[16 * MAX_CONVERSION_GROWTH + 1];

			(void) pg_do_encoding_conversion_buf(e->conv_proc,
												 e->dialect->file_encoding,
												 GetDatabaseEncoding(),
												 (unsigned char *) data, n,
												 (unsigned char *) out,
												 sizeof(out), false);
			/* nothing wrong alone: an incomplete character */
			report_invalid_encoding(e->dialect->file_encoding, data, n);
		}
		else
			report_invalid_encoding(e->verify_enc, data, n);
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		MemoryContextSwitchTo(oldcxt);
		edata = CopyErrorData();
		FlushErrorState();
		*sqlerrcode = edata->sqlerrcode;
		message = edata->message;
	}
	PG_END_TRY();
	return message;
}

/*
 * Validate or convert data[0..len) to the server encoding and feed it to
 * tok.  Unless final, a character cut by the end of data is left over: its
 * length is returned and the caller passes it again with what follows.
 * Bytes invalid in the file's encoding (or without an equivalent in the
 * server's) are dropped and make the record that holds them bad
 * (csv_tokenizer_mark_bad): its consumer raises the error (stop) or rejects
 * the record (skip), in file order, so the rows before it come first.
 */
int64
csv_encoder_feed(CsvEncoder *e, CsvTokenizer *tok, const char *data, int64 len,
				 bool final)
{
	int			src_enc = OidIsValid(e->conv_proc) ? e->dialect->file_encoding :
		e->verify_enc;
	int64		pos = 0;

	while (pos < len)
	{
		int			piece = (int) Min(len - pos, (int64) CSV_ENCODING_PIECE);
		int64		piece_end = pos + piece;
		int64		ok;

		CHECK_FOR_INTERRUPTS();
		if (OidIsValid(e->conv_proc))
		{
			size_t		need = (size_t) piece * MAX_CONVERSION_GROWTH + 1;

			if (e->out_size < need)
			{
				if (e->out)
					pfree(e->out);
				e->out = MemoryContextAllocHuge(e->cxt, need);
				e->out_size = need;
			}
			ok = pg_do_encoding_conversion_buf(e->conv_proc,
											   e->dialect->file_encoding,
											   GetDatabaseEncoding(),
											   (unsigned char *) data + pos, piece,
											   (unsigned char *) e->out,
											   (int) Min(need, (size_t) PG_INT32_MAX),
											   true);
			csv_tokenizer_feed(tok, e->out, strlen(e->out));
		}
		else
		{
			ok = verify_prefix(e->verify_enc, data + pos, piece);
			csv_tokenizer_feed(tok, data + pos, ok);
		}
		pos += ok;
		if (pos == piece_end)
			continue;

		/* stopped at data[pos]: a character cut by the piece's or data's end? */
		if (piece_end - pos < CSV_CARRY_MAX &&
			pg_encoding_mblen(src_enc, data + pos) > piece_end - pos)
		{
			if (piece_end < len)
				continue;
			if (!final)
				return len - pos;
		}

		/* invalid: the record holding it is bad */
		{
			int			sqlerrcode = ERRCODE_CHARACTER_NOT_IN_REPERTOIRE;
			char	   *message = encoding_error(e, data + pos, len - pos, &sqlerrcode);
			char		stand_in = '?';

			csv_tokenizer_mark_bad(tok, sqlerrcode, message,
								   csv_tokenizer_pending_line(tok));
			pfree(message);
			pos += csv_bad_char_length(src_enc, data + pos, len - pos);

			/*
			 * One plain byte stands in for the character, so a quote after
			 * it still reads as one inside an unquoted field: the record's
			 * extent is the one the splitter finds on the raw bytes (skip-
			 * mode loads, chunk boundaries).  Dropped, it made that quote
			 * open a quoted field that could swallow the next lines (corpus
			 * afl/3977/case_50: a serial read and a load disagreed).  The
			 * record's fields are never used: it is bad.
			 */
			while (stand_in == e->dialect->delimiter || stand_in == e->dialect->quote ||
				   stand_in == e->dialect->escape)
				stand_in = stand_in == '?' ? '_' : stand_in == '_' ? 'x' : 'y';
			csv_tokenizer_feed(tok, &stand_in, 1);
		}
	}
	return 0;
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
	CsvEncoder	e;
	int64		valid;

	csv_encoder_init(&e, dialect);
	*outlen = len;
	if (!OidIsValid(e.conv_proc))
	{
		valid = verify_prefix(e.verify_enc, data, len);
		if (valid < len)
		{
			errpos->line_no = first_line;
			for (int64 i = 0; i < valid; i++)
				if (data[i] == '\n')
					errpos->line_no++;
			errpos->field_no = 0;
			report_invalid_encoding(e.verify_enc, data + valid,
									(int) Min(len - valid, (int64) 16));
		}
		return data;
	}
	else
	{
		char	   *out = NULL;
		size_t		out_len = 0;
		size_t		out_size = 0;
		int64		pos = 0;

		while (pos < len)
		{
			int			piece = (int) Min(len - pos, (int64) CSV_ENCODING_PIECE);
			size_t		need = (size_t) piece * MAX_CONVERSION_GROWTH + 1;
			int			consumed;

			/* room for this piece's worst case after what is there */
			if (out_size < out_len + need)
			{
				size_t		newsize = Max(out_size * 2, out_len + need);

				out = out ? repalloc_huge(out, newsize) :
					MemoryContextAllocHuge(CurrentMemoryContext, newsize);
				out_size = newsize;
			}
			consumed = pg_do_encoding_conversion_buf(e.conv_proc, dialect->file_encoding,
													 GetDatabaseEncoding(),
													 (unsigned char *) data + pos, piece,
													 (unsigned char *) out + out_len,
													 (int) need, true);
			out_len += strlen(out + out_len);
			pos += consumed;
			if (consumed == piece)
				continue;
			/* a character cut by the piece's end goes on with the next one */
			if (pos - consumed + piece < len && piece - consumed < CSV_CARRY_MAX)
				continue;

			errpos->line_no = first_line;
			for (int64 i = 0; i < pos; i++)
				if (data[i] == '\n')
					errpos->line_no++;
			errpos->field_no = 0;
			/* let the conversion itself report the bad sequence */
			(void) pg_do_encoding_conversion_buf(e.conv_proc, dialect->file_encoding,
												 GetDatabaseEncoding(),
												 (unsigned char *) data + pos,
												 (int) Min(len - pos, (int64) 16),
												 (unsigned char *) out + out_len,
												 (int) need, false);
			/* the conversion found nothing wrong alone: an incomplete character */
			report_invalid_encoding(dialect->file_encoding, data + pos,
									(int) Min(len - pos, (int64) 16));
		}
		if (out == NULL)
			out = palloc0(1);
		*outlen = out_len;
		return out;
	}
}

/* Length of the prefix of a buffer that is valid in the file's encoding */
int64
csv_valid_prefix(const CsvDialect *dialect, const char *data, int64 len)
{
	int			server_enc = GetDatabaseEncoding();
	int			enc = dialect->file_encoding;

	if (server_enc == PG_SQL_ASCII)
		return verify_prefix(enc, data, len);
	if (enc == PG_SQL_ASCII)
		return verify_prefix(server_enc, data, len);
	return verify_prefix(enc, data, len);
}
