/*-------------------------------------------------------------------------
 *
 * fdw_calls.h
 *		postgres_fdw's and libpq's functions that csvpipe calls, found in
 *		postgres_fdw's library at run time (fdw_calls.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef CSVPIPE_FDW_CALLS_H
#define CSVPIPE_FDW_CALLS_H

#include "postgres.h"

#include "foreign/foreign.h"

/*
 * The types are opaque here (csvpipe does not link libpq): a PGconn, a
 * PGresult and postgres_fdw's PgFdwConnState are void pointers.
 */
typedef struct CsvFdwCalls
{
	/* postgres_fdw (connection.c; exported, the same since PostgreSQL 14) */
	void	   *(*get_connection) (UserMapping *user, bool will_prep_stmt, void **state);
	void		(*release_connection) (void *conn);
	void		(*do_sql_command) (void *conn, const char *sql);
	void	   *(*exec_query) (void *conn, const char *query, void *state);
	void		(*report_error) (int elevel, void *res, void *conn, bool clear,
								 const char *sql);
	/* libpq, which postgres_fdw's library links */
	int			(*server_version) (const void *conn);
	int			(*backend_pid) (const void *conn);
	int			(*result_status) (const void *res);
	int			(*nfields) (const void *res);
	char	   *(*fname) (const void *res, int col);
	int			(*ftype) (const void *res, int col);
	int			(*fmod) (const void *res, int col);
	void		(*clear) (void *res);
} CsvFdwCalls;

/* libpq's PGRES_TUPLES_OK */
#define CSV_PGRES_TUPLES_OK 2

/* the functions, looked up on first use (loads postgres_fdw) */
extern const CsvFdwCalls *csv_fdw_calls(void);

#endif							/* CSVPIPE_FDW_CALLS_H */
