/*-------------------------------------------------------------------------
 *
 * target.h
 *		What a load target is made of, known before anything is loaded:
 *		foreign tables (the target or its partitions) and Citus tables
 *		(target.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef CSVPIPE_TARGET_H
#define CSVPIPE_TARGET_H

#include "csvfile.h"

/*
 * Check a load target before the file is opened or a job is recorded:
 *	- a Citus table (the target or one of its partitions, as listed in
 *	  pg_dist_partition when the citus extension is installed) is refused
 *	  in every mode, with 0A000 and a hint to INSERT ... SELECT FROM
 *	  csvpipe.read;
 *	- with prepared, a foreign table (the target or a partition) is refused
 *	  with 0A000, naming it and its server, with a hint to the modes that
 *	  work: no foreign data wrapper can PREPARE TRANSACTION.
 * funcname names the caller in the messages (csvpipe.load, csvpipe.submit,
 * csvpipe.resume, csvpipe.load_serial).
 */
extern void csv_target_check(Oid relid, bool prepared, const char *funcname);

#endif							/* CSVPIPE_TARGET_H */
