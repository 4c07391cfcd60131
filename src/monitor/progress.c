/*-------------------------------------------------------------------------
 *
 * progress.c
 *		Shared status slots behind csvpipe.progress, csvpipe.workers and the
 *		live counters of csvpipe.jobs; the launcher's latch; csvpipe.load's
 *		progress NOTICEs.
 *
 * Shared memory (requested at preload through shmem_request_hook, set up in
 * shmem_startup_hook; both chain to the previous hooks) holds a small
 * header and one CsvStatusSlot per possible process (MaxBackends: client
 * backends, autovacuum and background workers).  A process's slot is the
 * one at its PGPROC number, so taking a slot needs no allocation and two
 * processes never share one.
 *
 * Locking protocol:
 *	- A slot is written only by the process that owns it (the one whose
 *	  PGPROC number indexes it), always with slot->mutex held, and only for
 *	  a handful of plain stores: no call that can fail or sleep happens under
 *	  the spinlock.  The owner clears it (pid = 0) when its load ends or at
 *	  process exit (on_shmem_exit), so a slot never outlives its process
 *	  except across a crash, and a crash reinitializes shared memory.
 *	- Readers (the SQL functions, csv_progress_job_pid) take slot->mutex
 *	  for each slot in turn just long enough to copy it, so each row they
 *	  return is consistent; different slots may be a moment apart.
 *	- The header's launcher fields (pid, PGPROC number) are written by the
 *	  launcher at its start and exit, and read by anyone who wants to wake
 *	  it, under header->mutex.
 *
 * Who sees what: a slot records the role its process works for (userid:
 * the current user when it takes the slot, a worker's again at each chunk,
 * once it runs as its leader's user, and a coordinator's its job's role,
 * csv_progress_set_user).  Its counters measure that
 * role's file (bytes, rows, rejected rows, chunk), so the SQL functions
 * return them only to roles with that role's privileges and to
 * pg_read_all_stats members, as pg_stat_progress_copy does; the rest of a
 * row (pid, kind, job, state, times) is shown to everyone.  The launcher
 * works for every role: its slot has no userid.
 *
 * Updates come from the leader at least once per chunk (dispatched, done),
 * from workers at each chunk's start and end, and from the launcher and
 * runners at each state change, so last_heartbeat moves whenever work
 * does.  Without preloading there is no shared memory and every update is a
 * no-op; csvpipe.load's NOTICEs then still work from the process-local
 * counters kept here.
 *
 *-------------------------------------------------------------------------
 */
#include "progress.h"

#include "access/htup_details.h"
#include "access/xact.h"
#include "catalog/pg_authid.h"
#include "catalog/pg_type.h"
#include "funcapi.h"
#include "utils/acl.h"
#include "miscadmin.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/proc.h"
#include "storage/shmem.h"
#include "storage/spin.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"

#if PG_VERSION_NUM >= 170000
#define CSV_MY_PROCNO	MyProcNumber
#else
#define CSV_MY_PROCNO	(MyProc->pgprocno)
#endif

#define CSV_STATE_LEN	32

typedef struct CsvStatusSlot
{
	slock_t		mutex;
	int			pid;			/* 0: slot not in use */
	int			kind;			/* CsvProcKind */
	Oid			datid;
	Oid			userid;			/* whose counters; InvalidOid: everyone's */
	int64		job_id;			/* 0: none */
	int			leader_pid;		/* workers and coordinators: their leader */
	int64		chunk_no;		/* chunk being processed (or last sent), -1 */
	char		state[CSV_STATE_LEN];
	bool		load_active;	/* leader/runner: a load is under way */
	int64		bytes_total;
	int64		bytes_done;
	int64		rows_done;
	int64		rows_rejected;
	int			workers;
	TimestampTz started_at;		/* of the process, or of the load */
	TimestampTz last_heartbeat;
} CsvStatusSlot;

typedef struct CsvSharedState
{
	slock_t		mutex;			/* protects the launcher fields */
	int			launcher_pid;
	int			launcher_procno;
	int			nslots;
	CsvStatusSlot slots[FLEXIBLE_ARRAY_MEMBER];
} CsvSharedState;

static CsvSharedState *csv_shared = NULL;
static shmem_request_hook_type prev_shmem_request_hook = NULL;
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;

/* this process's slot, once taken */
static CsvStatusSlot *MySlot = NULL;
static bool exit_callback_registered = false;
static bool xact_callback_registered = false;

/* the load this process leads, if any (works without shared memory too) */
typedef struct LocalLoad
{
	bool		active;
	bool		notices;
	SubTransactionId subid;		/* where it began, to end it on abort */
	int64		job_id;
	int64		bytes_total;
	int64		bytes_done;
	int64		rows;
	int64		rejected;
	int			workers;
	TimestampTz started_at;
	TimestampTz last_notice;
} LocalLoad;

static LocalLoad local;

PG_FUNCTION_INFO_V1(csvpipe_progress_1_0);
PG_FUNCTION_INFO_V1(csvpipe_workers_1_0);

static Size
shared_size(void)
{
	return add_size(offsetof(CsvSharedState, slots),
					mul_size(sizeof(CsvStatusSlot), MaxBackends));
}

static void
csv_shmem_request(void)
{
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
	RequestAddinShmemSpace(shared_size());
}

static void
csv_shmem_startup(void)
{
	bool		found;

	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();

	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	csv_shared = ShmemInitStruct("csvpipe status", shared_size(), &found);
	if (!found)
	{
		memset(csv_shared, 0, shared_size());
		SpinLockInit(&csv_shared->mutex);
		csv_shared->nslots = MaxBackends;
		for (int i = 0; i < MaxBackends; i++)
			SpinLockInit(&csv_shared->slots[i].mutex);
	}
	LWLockRelease(AddinShmemInitLock);
}

void
csv_progress_shmem_init(void)
{
#if PG_VERSION_NUM >= 150000
	prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = csv_shmem_request;
#else
	RequestAddinShmemSpace(shared_size());
#endif
	prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = csv_shmem_startup;
}

bool
csv_progress_available(void)
{
	return csv_shared != NULL;
}

/* ---- the slot of this process ---- */

static void
clear_slot(void)
{
	if (MySlot == NULL)
		return;
	SpinLockAcquire(&MySlot->mutex);
	MySlot->pid = 0;
	MySlot->kind = CSV_PROC_NONE;
	MySlot->load_active = false;
	SpinLockRelease(&MySlot->mutex);
	MySlot = NULL;
}

static void
slot_on_exit(int code, Datum arg)
{
	clear_slot();
	if (csv_shared != NULL)
	{
		SpinLockAcquire(&csv_shared->mutex);
		if (csv_shared->launcher_pid == MyProcPid)
			csv_shared->launcher_pid = 0;
		SpinLockRelease(&csv_shared->mutex);
	}
}

/* Take this process's slot and fill its identity; false without one */
static bool
take_slot(CsvProcKind kind, int64 job_id, int leader_pid)
{
	CsvStatusSlot *slot;
	TimestampTz now;
	int			procno;

	if (csv_shared == NULL || MyProc == NULL)
		return false;
	procno = CSV_MY_PROCNO;
	if (procno < 0 || procno >= csv_shared->nslots)
		return false;
	if (!exit_callback_registered)
	{
		on_shmem_exit(slot_on_exit, (Datum) 0);
		exit_callback_registered = true;
	}
	slot = &csv_shared->slots[procno];
	now = GetCurrentTimestamp();
	SpinLockAcquire(&slot->mutex);
	slot->pid = MyProcPid;
	slot->kind = kind;
	slot->datid = MyDatabaseId;
	slot->userid = (kind == CSV_PROC_LAUNCHER) ? InvalidOid : GetUserId();
	slot->job_id = job_id;
	slot->leader_pid = leader_pid;
	slot->chunk_no = -1;
	strlcpy(slot->state, "starting", CSV_STATE_LEN);
	slot->load_active = false;
	slot->bytes_total = 0;
	slot->bytes_done = 0;
	slot->rows_done = 0;
	slot->rows_rejected = 0;
	slot->workers = 0;
	slot->started_at = now;
	slot->last_heartbeat = now;
	SpinLockRelease(&slot->mutex);
	MySlot = slot;
	return true;
}

void
csv_progress_register(CsvProcKind kind, int64 job_id, int leader_pid)
{
	(void) take_slot(kind, job_id, leader_pid);
}

void
csv_progress_set_state(const char *state)
{
	TimestampTz now;

	if (MySlot == NULL)
		return;
	now = GetCurrentTimestamp();
	SpinLockAcquire(&MySlot->mutex);
	strlcpy(MySlot->state, state, CSV_STATE_LEN);
	MySlot->last_heartbeat = now;
	SpinLockRelease(&MySlot->mutex);
}

void
csv_progress_set_job(int64 job_id)
{
	if (MySlot == NULL)
		return;
	SpinLockAcquire(&MySlot->mutex);
	MySlot->job_id = job_id;
	SpinLockRelease(&MySlot->mutex);
}

/*
 * A process that connects as the bootstrap superuser but works for a role
 * (a coordinator works for its job's role): the slot records that role, so
 * the role sees the slot's counters, as it sees its workers'.
 */
void
csv_progress_set_user(Oid userid)
{
	if (MySlot == NULL)
		return;
	SpinLockAcquire(&MySlot->mutex);
	MySlot->userid = userid;
	SpinLockRelease(&MySlot->mutex);
}

void
csv_progress_count(int64 n)
{
	if (MySlot == NULL)
		return;
	SpinLockAcquire(&MySlot->mutex);
	MySlot->rows_done += n;
	SpinLockRelease(&MySlot->mutex);
}

/* ---- the leader of a load ---- */

static void
load_xact_callback(XactEvent event, void *arg)
{
	if (local.active && (event == XACT_EVENT_ABORT ||
						 event == XACT_EVENT_PARALLEL_ABORT))
		csv_progress_load_end();
}

static void
load_subxact_callback(SubXactEvent event, SubTransactionId mySubid,
					  SubTransactionId parentSubid, void *arg)
{
	if (local.active && event == SUBXACT_EVENT_ABORT_SUB && mySubid == local.subid)
		csv_progress_load_end();
}

/* Push the local counters into the slot */
static void
publish(const char *phase)
{
	TimestampTz now;

	if (MySlot == NULL)
		return;
	now = GetCurrentTimestamp();
	SpinLockAcquire(&MySlot->mutex);
	MySlot->job_id = local.job_id;
	MySlot->load_active = local.active;
	MySlot->bytes_total = local.bytes_total;
	MySlot->bytes_done = local.bytes_done;
	MySlot->rows_done = local.rows;
	MySlot->rows_rejected = local.rejected;
	MySlot->workers = local.workers;
	if (phase)
		strlcpy(MySlot->state, phase, CSV_STATE_LEN);
	MySlot->last_heartbeat = now;
	SpinLockRelease(&MySlot->mutex);
}

/*
 * A load begins in this process.  A backend takes its slot as a "leader"
 * for the load's duration; a runner already has its slot.  notices: emit
 * progress NOTICEs (csvpipe.load(progress => true)).
 */
void
csv_progress_load_begin(int64 job_id, bool notices)
{
	if (!xact_callback_registered)
	{
		RegisterXactCallback(load_xact_callback, NULL);
		RegisterSubXactCallback(load_subxact_callback, NULL);
		xact_callback_registered = true;
	}
	memset(&local, 0, sizeof(local));
	local.active = true;
	local.notices = notices;
	local.subid = GetCurrentSubTransactionId();
	local.job_id = job_id;
	local.started_at = GetCurrentTimestamp();
	local.last_notice = local.started_at;

	if (MySlot == NULL)
		(void) take_slot(CSV_PROC_LEADER, job_id, 0);
	if (MySlot != NULL)
	{
		SpinLockAcquire(&MySlot->mutex);
		MySlot->started_at = local.started_at;
		MySlot->chunk_no = -1;
		SpinLockRelease(&MySlot->mutex);
	}
	publish("starting");
}

void
csv_progress_load_started(int64 bytes_total, int workers)
{
	if (!local.active)
		return;
	local.bytes_total = bytes_total;
	local.workers = workers;
	publish(workers > 0 ? "loading" : "loading in leader");
}

static void
maybe_notice(bool final)
{
	TimestampTz now;
	long		secs;
	int			usecs;
	double		elapsed;
	double		rate;
	StringInfoData buf;

	if (!local.notices)
		return;
	now = GetCurrentTimestamp();
	if (!final && !TimestampDifferenceExceeds(local.last_notice, now, 1000))
		return;
	local.last_notice = now;
	TimestampDifference(local.started_at, now, &secs, &usecs);
	elapsed = secs + usecs / 1000000.0;
	rate = elapsed > 0 ? local.rows / elapsed : 0;

	initStringInfo(&buf);
	appendStringInfo(&buf, "csvpipe.load: " INT64_FORMAT " rows", local.rows);
	if (local.rejected > 0)
		appendStringInfo(&buf, " (" INT64_FORMAT " rejected)", local.rejected);
	if (local.bytes_total > 0)
		appendStringInfo(&buf, ", %.1f of %.1f MB (%.0f%%)",
						 local.bytes_done / 1048576.0, local.bytes_total / 1048576.0,
						 100.0 * local.bytes_done / local.bytes_total);
	appendStringInfo(&buf, ", %.0f rows/s, %.1f s", rate, elapsed);
	ereport(NOTICE, (errmsg_internal("%s", buf.data)));
	pfree(buf.data);
}

/* The leader handed bytes up to end_offset of the file to the workers */
void
csv_progress_dispatched(int64 chunk_no, int64 end_offset)
{
	if (!local.active)
		return;
	/* a chunk sent again (its worker was lost) does not move it back */
	local.bytes_done = Max(local.bytes_done, end_offset);
	if (MySlot != NULL)
	{
		SpinLockAcquire(&MySlot->mutex);
		MySlot->chunk_no = chunk_no;
		SpinLockRelease(&MySlot->mutex);
	}
	publish(local.bytes_total > 0 && end_offset >= local.bytes_total ?
			"waiting for workers" : NULL);
}

/* A worker reported a chunk done: the load's totals so far */
void
csv_progress_chunk_done(int64 rows_total, int64 rejected_total)
{
	if (!local.active)
		return;
	local.rows = rows_total;
	local.rejected = rejected_total;
	publish(NULL);
	maybe_notice(false);
}

/* Loading in the leader itself: rows and bytes so far */
void
csv_progress_rows(int64 rows_total, int64 bytes_done)
{
	if (!local.active)
		return;
	local.rows = rows_total;
	local.bytes_done = bytes_done;
	publish(NULL);
	maybe_notice(false);
}

void
csv_progress_phase(const char *phase)
{
	if (!local.active)
		return;
	if (strcmp(phase, "committing") == 0 && local.bytes_total > 0)
		local.bytes_done = local.bytes_total;
	publish(phase);
}

void
csv_progress_load_end(void)
{
	if (!local.active)
		return;
	local.active = false;
	if (MySlot == NULL)
		return;
	if (MySlot->kind == CSV_PROC_LEADER)
		clear_slot();
	else
		publish("finished");
}

/* ---- parallel engine workers ---- */

/* A worker starts ("chunk") or ends ("idle") a chunk; rows: its total so far */
void
csv_progress_worker(const char *state, int64 chunk_no, int64 rows_total)
{
	TimestampTz now;
	Oid			userid;

	if (MySlot == NULL)
		return;
	now = GetCurrentTimestamp();
	userid = GetUserId();		/* the leader's user by now, not the session's */
	SpinLockAcquire(&MySlot->mutex);
	MySlot->userid = userid;
	MySlot->chunk_no = chunk_no;
	MySlot->rows_done = rows_total;
	strlcpy(MySlot->state, state, CSV_STATE_LEN);
	MySlot->last_heartbeat = now;
	SpinLockRelease(&MySlot->mutex);
}

/* ---- the launcher ---- */

void
csv_progress_set_launcher(bool running)
{
	if (csv_shared == NULL)
		return;
	SpinLockAcquire(&csv_shared->mutex);
	if (running)
	{
		csv_shared->launcher_pid = MyProcPid;
		csv_shared->launcher_procno = CSV_MY_PROCNO;
	}
	else if (csv_shared->launcher_pid == MyProcPid)
		csv_shared->launcher_pid = 0;
	SpinLockRelease(&csv_shared->mutex);
}

int
csv_progress_launcher_pid(void)
{
	int			pid;

	if (csv_shared == NULL)
		return 0;
	SpinLockAcquire(&csv_shared->mutex);
	pid = csv_shared->launcher_pid;
	SpinLockRelease(&csv_shared->mutex);
	return pid;
}

void
csv_progress_wake_launcher(void)
{
	int			pid;
	int			procno;

	if (csv_shared == NULL)
		return;
	SpinLockAcquire(&csv_shared->mutex);
	pid = csv_shared->launcher_pid;
	procno = csv_shared->launcher_procno;
	SpinLockRelease(&csv_shared->mutex);
	if (pid != 0)
		SetLatch(&GetPGProcByNumber(procno)->procLatch);
}

int
csv_progress_job_pid(int64 job_id, CsvProcKind kind)
{
	return csv_progress_db_job_pid(MyDatabaseId, job_id, kind);
}

/* job ids are per database: match both */
int
csv_progress_db_job_pid(Oid datid, int64 job_id, CsvProcKind kind)
{
	if (csv_shared == NULL)
		return 0;
	for (int i = 0; i < csv_shared->nslots; i++)
	{
		CsvStatusSlot *slot = &csv_shared->slots[i];
		int			pid;

		SpinLockAcquire(&slot->mutex);
		pid = (slot->pid != 0 && slot->job_id == job_id && slot->datid == datid &&
			   (kind == CSV_PROC_NONE || slot->kind == kind)) ? slot->pid : 0;
		SpinLockRelease(&slot->mutex);
		if (pid != 0)
			return pid;
	}
	return 0;
}

/* ---- SQL: the versioned functions under the views ---- */

static const char *
kind_name(int kind)
{
	switch (kind)
	{
		case CSV_PROC_LEADER:
			return "leader";
		case CSV_PROC_LAUNCHER:
			return "launcher";
		case CSV_PROC_RUNNER:
			return "runner";
		case CSV_PROC_WORKER:
			return "worker";
		case CSV_PROC_COORDINATOR:
			return "coordinator";
	}
	return "unknown";
}

/*
 * May the current user see the counters of a slot working for userid?  As
 * pg_stat_activity and pg_stat_progress_copy decide (HAS_PGSTAT_PERMISSIONS).
 */
static bool
may_see_counters(Oid userid)
{
	Oid			me = GetUserId();

	return !OidIsValid(userid) ||
		has_privs_of_role(me, userid) ||
		has_privs_of_role(me, ROLE_PG_READ_ALL_STATS);
}

/* Copy every slot in use (each consistent in itself) */
static int
copy_slots(CsvStatusSlot **out)
{
	int			n = 0;

	*out = NULL;
	if (csv_shared == NULL)
		return 0;
	*out = palloc(sizeof(CsvStatusSlot) * csv_shared->nslots);
	for (int i = 0; i < csv_shared->nslots; i++)
	{
		CsvStatusSlot *slot = &csv_shared->slots[i];

		SpinLockAcquire(&slot->mutex);
		if (slot->pid != 0)
			memcpy(&(*out)[n++], slot, sizeof(CsvStatusSlot));
		SpinLockRelease(&slot->mutex);
	}
	return n;
}

/*
 * csvpipe.progress_1_0(): one row per load under way (csvpipe.load in a
 * backend, or a job runner): job_id, pid, datid, kind, phase, bytes_total,
 * bytes_done, rows_done, rows_rejected, workers, started_at, last_heartbeat;
 * the four counters NULL for loads of roles the caller may not see.
 */
Datum
csvpipe_progress_1_0(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	CsvStatusSlot *slots;
	int			n;

	InitMaterializedSRF(fcinfo, 0);
	n = copy_slots(&slots);
	for (int i = 0; i < n; i++)
	{
		CsvStatusSlot *s = &slots[i];
		Datum		values[12];
		bool		nulls[12];

		if (!(s->kind == CSV_PROC_LEADER || s->kind == CSV_PROC_RUNNER) ||
			s->job_id == 0)
			continue;
		memset(nulls, 0, sizeof(nulls));
		values[0] = Int64GetDatum(s->job_id);
		values[1] = Int32GetDatum(s->pid);
		values[2] = ObjectIdGetDatum(s->datid);
		values[3] = CStringGetTextDatum(kind_name(s->kind));
		values[4] = CStringGetTextDatum(s->state);
		if (!may_see_counters(s->userid))
			nulls[5] = nulls[6] = nulls[7] = nulls[8] = true;
		values[5] = Int64GetDatum(s->bytes_total);
		values[6] = Int64GetDatum(s->bytes_done);
		values[7] = Int64GetDatum(s->rows_done);
		values[8] = Int64GetDatum(s->rows_rejected);
		values[9] = Int32GetDatum(s->workers);
		values[10] = TimestampTzGetDatum(s->started_at);
		values[11] = TimestampTzGetDatum(s->last_heartbeat);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}

/*
 * csvpipe.workers_1_0(): one row per csvpipe process with a slot: pid, kind,
 * datid, job_id, leader_pid, chunk_no, state, rows, started_at,
 * last_heartbeat; chunk_no and rows NULL for processes of roles the caller
 * may not see.
 */
Datum
csvpipe_workers_1_0(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	CsvStatusSlot *slots;
	int			n;

	InitMaterializedSRF(fcinfo, 0);
	n = copy_slots(&slots);
	for (int i = 0; i < n; i++)
	{
		CsvStatusSlot *s = &slots[i];
		Datum		values[10];
		bool		nulls[10];

		memset(nulls, 0, sizeof(nulls));
		values[0] = Int32GetDatum(s->pid);
		values[1] = CStringGetTextDatum(kind_name(s->kind));
		values[2] = ObjectIdGetDatum(s->datid);
		values[3] = Int64GetDatum(s->job_id);
		nulls[3] = (s->job_id == 0);
		values[4] = Int32GetDatum(s->leader_pid);
		nulls[4] = (s->leader_pid == 0);
		values[5] = Int64GetDatum(s->chunk_no);
		nulls[5] = (s->chunk_no < 0);
		values[6] = CStringGetTextDatum(s->state);
		values[7] = Int64GetDatum(s->rows_done);
		if (!may_see_counters(s->userid))
			nulls[5] = nulls[7] = true;	/* chunk_no, rows */
		values[8] = TimestampTzGetDatum(s->started_at);
		values[9] = TimestampTzGetDatum(s->last_heartbeat);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}
