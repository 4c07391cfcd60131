/*-------------------------------------------------------------------------
 *
 * fdw_reuse.h
 *		A chunked load's worker keeps postgres_fdw's prepared batch INSERTs
 *		from one chunk transaction to the next (fdw_reuse.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef CSVPIPE_FDW_REUSE_H
#define CSVPIPE_FDW_REUSE_H

#include "postgres.h"

#include "nodes/execnodes.h"

/* worker of a chunked load into postgres_fdw tables: from now on */
extern void csv_fdw_reuse_enable(void);

/*
 * Does this process send rri's batches through kept statements?  Then the
 * caller sends a full batch, or a power of two rows (so that every size
 * it sends is one of a few, each prepared once).
 */
extern bool csv_fdw_reuse_active(ResultRelInfo *rri, int capacity);

/*
 * Send slots[0..n) as one batch through the kept statement for n rows
 * (prepared on first use); returns the slots inserted, *inserted their
 * number, as ExecForeignBatchInsert does.
 */
extern TupleTableSlot **csv_fdw_reuse_insert(ResultRelInfo *rri, TupleTableSlot **slots,
											 int n, int *inserted);

#endif							/* CSVPIPE_FDW_REUSE_H */
