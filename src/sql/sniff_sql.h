/*-------------------------------------------------------------------------
 *
 * sniff_sql.h
 *		csvpipe.sniff, csvpipe.create_table and the table creation load's
 *		create_target shares (sniff_sql.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef CSVPIPE_SNIFF_SQL_H
#define CSVPIPE_SNIFF_SQL_H

#include "sniff.h"

extern Oid	csv_create_table_from_sniff(const char *name,
										const CsvSniffResult *res);

#endif							/* CSVPIPE_SNIFF_SQL_H */
