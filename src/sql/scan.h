/*-------------------------------------------------------------------------
 *
 * scan.h
 *		The streaming CustomScan for calls in FROM (scan.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef CSVPIPE_SCAN_H
#define CSVPIPE_SCAN_H

/* installs the planner hook and the scan's methods (once, from _PG_init) */
extern void csvpipe_scan_init(void);

#endif							/* CSVPIPE_SCAN_H */
