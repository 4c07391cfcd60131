/*-------------------------------------------------------------------------
 *
 * match.h
 *		Columns by name: a load's file header mapped to its target (match.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef CSVPIPE_MATCH_H
#define CSVPIPE_MATCH_H

#include "csvfile.h"

extern List *csv_match_target(Oid relid, const char *path, const char *funcname,
							  CsvDialect *dialect, bool extra_ignore);

#endif							/* CSVPIPE_MATCH_H */
