/*-------------------------------------------------------------------------
 *
 * internal_sql.h
 *		The one way csvpipe runs SQL on its own behalf (internal_sql.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef CSVPIPE_INTERNAL_SQL_H
#define CSVPIPE_INTERNAL_SQL_H

#include "postgres.h"
#include "settings.h"

/*
 * Rows of an internal query, copied into the caller's memory context.
 */
typedef struct CsvRows
{
	int			nrows;
	int			natts;
	Datum	   *values;			/* nrows * natts */
	bool	   *nulls;
} CsvRows;

#define CSV_ROW_VALUE(r, row, att)	((r)->values[(row) * (r)->natts + (att)])
#define CSV_ROW_ISNULL(r, row, att) ((r)->nulls[(row) * (r)->natts + (att)])

/* the token csv_internal_query replaces by the extension's quoted schema */
#define CSV_EXTSCHEMA_TOKEN "@extschema@"

extern CsvRows *csv_internal_query(const char *sql, int nargs, Oid *argtypes,
								   Datum *values, const char *nulls);
extern CsvRows *csv_user_query(const char *sql, int nargs, Oid *argtypes,
							   Datum *values, const char *nulls);
extern CsvRows *csv_user_query_on(Oid relid, const char *sql, int nargs,
								  Oid *argtypes, Datum *values, const char *nulls);
extern Oid	csv_extension_schema(bool missing_ok);
extern bool csv_extension_installed(void);
extern Oid	csv_extension_relid(const char *relname);
extern void csv_internal_pin_session(void);
extern void csv_internal_reset_identity(void);

#endif							/* CSVPIPE_INTERNAL_SQL_H */
