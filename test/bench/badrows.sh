#!/usr/bin/env bash
# test/bench/badrows.sh -- csvpipe.load(on_error => 'skip') on a file with bad
# rows, on a throwaway cluster.
#
#   bash test/bench/badrows.sh
#
# Not part of `make test`: it is a report.  It builds the extension and
# installs it into a private copy of the PostgreSQL installation (see
# PRIVATE_INSTALL), starts a private PostgreSQL cluster (own temp dir, own socket dir,
# no TCP) with DEFAULT DURABILITY (fsync, full_page_writes, synchronous_commit
# on), generates a narrow CSV file with `test/gen/gen_csv narrow ROWS SEED`
# (the clean file) and a dirty copy of it in which exactly BAD_PCT % of the
# data rows, chosen with a fixed seed (BAD_SEED), are corrupted by a small C
# program (compiled from this script).  The bad rows take turns through five
# kinds, each with a few variants:
#
#   amount   non-numeric amount        12.x5 | 1.2.3 | abc
#   ts       bad timestamp             2024-02-30 10:00:00+00 | 2024-13-05 ...
#                                      | ... 25:61:00+00 | ... 12:3x:00+00
#   fields   wrong field count         the flag or the ts field dropped
#   quote    malformed, line-local     name replaced by ab"c"d or "ab"c"d"
#            quotes (even count on the line, so one line stays one record)
#   bool     bad boolean               maybe | 2 | nope
#
# The id field is never touched, so every bad row keeps its id; the script
# knows each bad row's line number, id and kind (table bench_bad).
#
# Target: a plain table (id bigint, ts timestamptz, name text,
# amount numeric(12,2), flag boolean), TRUNCATEd (and csvpipe.rejected
# truncated) then CHECKPOINT, untimed, before every run.
#
# Sides, each run once per round, in one run, alternating the order every
# round (forward on odd rounds, reversed on even ones); medians of ROUNDS:
#
#   clean_skip    csvpipe.load(clean, 't', workers => 2, on_error => 'skip')
#   dirty_skip    csvpipe.load(dirty, 't', workers => 2, on_error => 'skip')
#   clean_stop    csvpipe.load(clean, 't', workers => 2)  (on_error 'stop')
#   copy          COPY t FROM 'clean' (FORMAT csv, HEADER)
#   dirty_skip1   csvpipe.load(dirty, 't', workers => 1, on_error => 'skip')
#   pgloader      pgloader (Debian package, 3.6.9) loading the dirty file into
#                 the same table over the Unix socket, with a command file
#                 (LOAD CSV ... WITH skip header = 1, fields terminated by ',',
#                 fields optionally enclosed by '"', ...; its defaults
#                 otherwise: on error resume next, batch rows 25000,
#                 workers 8, concurrency 2).  Timed as the wall clock of the
#                 pgloader process (SBCL start-up included).  Only in the
#                 first PGLOADER_ROUNDS rounds (default 1: it is slow).
#   pgloader's CSV reader aborts the whole load at the first malformed quote
#   (FATAL "non whitespace after quoted data", and still exits 0), so, for a
#   time to compare, both tools also load a "no-quote" dirty file: the same
#   bad rows except that those of kind quote are left clean:
#   dirty_nq_skip csvpipe.load(no-quote dirty, 't', workers => 2, on_error => 'skip')
#   pgloader_nq   pgloader on the no-quote dirty file (PGLOADER_ROUNDS rounds)
#   (these three sides run only when pgloader is there)
#
# csvpipe and COPY are timed with psql's \timing in a fresh session whose
# caches were warmed untimed on the empty target.  Each timed run is preceded
# by an untimed `cat file > /dev/null` (this kind of VM drops idle page cache
# after about a minute, see shared PERFORMANCE.md).
#
# Checks after every run (a failed one marks the run WRONG; exit status 2):
#   csvpipe: rows_loaded = N (clean) or N - bad (dirty), rows_rejected = 0 or
#            bad, workers as asked (a warning otherwise);
#            SELECT count(*) FROM csvpipe.errors WHERE job_id = <job> = 0 or bad,
#            and (dirty) the rejected line numbers are exactly the corrupted ones;
#   all:     count(*) and sum(id) of the target = the clean file's, or the
#            clean file's minus the bad rows' (dirty, no-quote dirty).
# pgloader is not held to csvpipe's rules: the report gives what it loaded
# (good rows, bad rows it accepted, per kind) and what it rejected.
#
# Ratios and bars:
#   dirty / clean    = dirty_skip time / clean_skip time          <= 1.5
#   the others are for reference: clean_skip / clean_stop (cost of skip mode
#   on clean data), COPY / clean_skip (speed-up over COPY), dirty_skip1 /
#   dirty_skip, pgloader / dirty_skip.
#
# Runs as root (the cluster and pgloader run as the `postgres` OS user via
# runuser; pgloader is installed with apt-get when missing) or as a normal
# user (the cluster runs as that user; `make install` then needs write access
# to the PostgreSQL directories or password-less sudo, or an already installed
# csvpipe; pgloader must already be installed).
#
# Environment:
#   ROWS=10000000  ROUNDS=3  SEED=1        data rows, rounds, generator seed
#   BAD_PCT=1  BAD_SEED=42                 share of data rows corrupted, and the
#                                          seed that picks them
#   BENCH_TMPDIR=/tmp       where the temp dir (cluster + CSV files) goes
#   DATA_DIR=               keep/reuse generated CSV files here (must be readable
#                           by the cluster's OS user); default: inside the temp dir
#   SHARED_BUFFERS=1GB      EXTRA_CONF='line1\nline2'  (appended to postgresql.conf)
#   BENCH_PORT=54349        port number of the private socket
#   PGLOADER=1              0: skip the pgloader side
#   PGLOADER_ROUNDS=1       run pgloader in the first this many rounds only
#                           (~25 min for the 10M no-quote file here)
#   PGLOADER_TIMEOUT=3600   seconds; a pgloader run over this is stopped and
#                           the pgloader column reported as a timeout
#   PERF=auto               auto: when the dirty/clean bar is missed, 1: always,
#                           0: never -- `perf record -a -g` during one dirty and
#                           one clean 2-worker skip load, then per-process CPU
#                           and the top of `perf report --stdio --sort comm,dso,sym`
#   PRIVATE_INSTALL=1       1: copy the PostgreSQL installation (bin, lib, share;
#                           ~50 MB) into the temp dir, build csvpipe from a copy
#                           of the work tree and install it there, so concurrent
#                           `make install`s on the machine cannot swap the
#                           extension under the benchmark (with SKIP_BUILD=1:
#                           a snapshot of the csvpipe installed now);
#                           0: make install into the system's PostgreSQL, as
#                           the other benchmarks do
#   KEEP=1                  keep the temp dir (the server is still stopped)
#   SKIP_BUILD=1            do not run make / make install
#   GEN=path                use this generator binary instead of test/gen/gen_csv
#
# Output: progress on stderr, the result tables and a machine-readable summary
# (lines starting with "BENCH ", then one "BENCH_JSON {...}" line) on stdout.
# Exit status: 0 when the benchmark ran (bars missed or not); 2 when a csvpipe
# or COPY run gave wrong rows or counts (the table is still printed, marked
# WRONG); 1 when something broke (build, cluster, a query error).

set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
ROWS=${ROWS:-10000000}
ROUNDS=${ROUNDS:-3}
BAD_PCT=${BAD_PCT:-1}
BAD_SEED=${BAD_SEED:-42}
PGLOADER=${PGLOADER:-1}
PGLOADER_ROUNDS=${PGLOADER_ROUNDS:-1}
PGLOADER_TIMEOUT=${PGLOADER_TIMEOUT:-3600}
PERF=${PERF:-auto}
PRIVATE_INSTALL=${PRIVATE_INSTALL:-1}

BAR_DIRTY=1.5           # dirty_skip time / clean_skip time must be <= this

TARGET=bench_t

BENCH_NAME=bench-badrows
# shellcheck source=test/bench/lib.sh
source "$REPO/test/bench/lib.sh"

for v in ROWS ROUNDS SEED BAD_SEED PGLOADER_TIMEOUT; do
    [[ ${!v} =~ ^[1-9][0-9]*$ ]] || die "$v must be a positive integer (got '${!v}')"
done
[[ $PGLOADER_ROUNDS =~ ^[0-9]+$ ]] || die "PGLOADER_ROUNDS must be a number (got '$PGLOADER_ROUNDS')"
[[ $BAD_PCT =~ ^[0-9]+(\.[0-9]+)?$ ]] || die "BAD_PCT must be a number (got '$BAD_PCT')"
[[ $PERF =~ ^(0|1|auto)$ ]] || die "PERF must be 0, 1 or auto (got '$PERF')"
[[ $PRIVATE_INSTALL =~ ^(0|1)$ ]] || die "PRIVATE_INSTALL must be 0 or 1 (got '$PRIVATE_INSTALL')"
NBAD=$(awk -v n="$ROWS" -v p="$BAD_PCT" 'BEGIN { printf "%d", n * p / 100 + 0.5 }')
(( NBAD >= 1 && NBAD <= ROWS )) || die "ROWS=$ROWS and BAD_PCT=$BAD_PCT give $NBAD bad rows"

# ------------------------------------------------------- work dir, users ----
# the work dir first: a private install goes into it
bench_workdir bench-badrows 54349

# ---------------------------------------------------------------- build -----
if ! command -v pg_config >/dev/null || [[ -z $(pg_config --pgxs 2>/dev/null) ]] \
   || [[ ! -e /usr/include/csv.h ]]; then
    if [[ $SKIP_BUILD == 1 && $PRIVATE_INSTALL == 0 ]] && command -v pg_config >/dev/null; then
        :   # nothing to build: only the installed server and csvpipe are needed
    elif [[ -f $REPO/test/ensure_deps.sh ]]; then
        log "build dependencies missing: running test/ensure_deps.sh"
        if [[ $as_root == 1 ]]; then bash "$REPO/test/ensure_deps.sh"
        else sudo -n bash "$REPO/test/ensure_deps.sh" || die "cannot install dependencies (need root)"; fi
    else
        die "pg_config / PGXS / libcsv missing and test/ensure_deps.sh not found"
    fi
fi

# What is measured: the work tree's commit and its uncommitted source changes.
SRC_VERSION="installed csvpipe (SKIP_BUILD=1)"
if [[ $SKIP_BUILD != 1 ]]; then
    SRC_VERSION="work tree at $(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo '?')"
    changed=$(git -C "$REPO" status --porcelain -- src sql Makefile csvpipe.control 2>/dev/null | awk '{ print $2 }' | tr '\n' ' ' || true)
    [[ -z $changed ]] || SRC_VERSION+=" + uncommitted changes in: ${changed% }"
fi

if [[ $PRIVATE_INSTALL == 1 ]]; then
    # A private, relocatable copy of the PostgreSQL installation (bin, lib,
    # share: ~50 MB) with csvpipe built from a copy of the work tree and
    # installed into it: concurrent `make install`s elsewhere on the machine
    # change neither the server nor the extension under this benchmark.
    PGROOT=$WORK/pg
    for d in "$(pg_config --bindir)" "$(pg_config --pkglibdir)" "$(pg_config --sharedir)"; do
        mkdir -p "$PGROOT$(dirname "$d")"
        [[ -e $PGROOT$d ]] || cp -a "$d" "$PGROOT$d" || die "cannot copy $d"
    done
    if [[ $SKIP_BUILD != 1 ]]; then
        SRC=$WORK/src
        mkdir -p "$SRC/sql"
        cp "$REPO/Makefile" "$REPO/csvpipe.control" "$SRC/"
        tar -C "$REPO" --exclude='*.o' --exclude='*.bc' -cf - src | tar -xf - -C "$SRC" \
            || die "cannot copy src/"
        cp "$REPO"/sql/csvpipe--*.sql "$SRC/sql/"
        log "building the extension from a copy of the work tree (make, private install in $PGROOT)"
        make -C "$SRC" -s -j"$(nproc)" >"$WORK/build.log" 2>&1 || { tail -n 40 "$WORK/build.log" >&2; die "make failed"; }
        make -C "$SRC" -s install DESTDIR="$PGROOT" >>"$WORK/build.log" 2>&1 \
            || { tail -n 40 "$WORK/build.log" >&2; die "make install (private) failed"; }
    else
        log "SKIP_BUILD=1: using a snapshot of the installed csvpipe (private copy in $PGROOT)"
    fi
    PGBIN=$PGROOT$(pg_config --bindir)
    [[ $("$PGBIN/pg_config" --sharedir) == "$PGROOT$(pg_config --sharedir)" ]] \
        || die "the private PostgreSQL copy does not relocate (its pg_config says $("$PGBIN/pg_config" --sharedir)); try PRIVATE_INSTALL=0"
    PKGLIBDIR=$PGROOT$(pg_config --pkglibdir)
    SHAREDIR=$PGROOT$(pg_config --sharedir)
else
    bench_build
    PKGLIBDIR=$(pg_config --pkglibdir)
    SHAREDIR=$(pg_config --sharedir)
fi
[[ -x $PGBIN/initdb ]] || die "initdb not found in $PGBIN"
[[ -e $PKGLIBDIR/csvpipe.so ]] || die "csvpipe.so is not installed in $PKGLIBDIR"
grep -q "on_error" "$SHAREDIR/extension/csvpipe--1.0.sql" \
    && grep -q "csvpipe.errors" "$SHAREDIR/extension/csvpipe--1.0.sql" \
    || die "the csvpipe in $SHAREDIR has no on_error/csvpipe.errors (an older build?)"

bench_generator
# ------------------------------------------------------------- pgloader -----
# PGLOADER_SKIP says why the pgloader side does not run (empty: it runs).
PGLOADER_SKIP=""
PGLOADER_VERSION=""
if [[ $PGLOADER != 1 ]]; then
    PGLOADER_SKIP="PGLOADER=$PGLOADER"
elif (( PGLOADER_ROUNDS == 0 )); then
    PGLOADER_SKIP="PGLOADER_ROUNDS=0"
else
    if ! command -v pgloader >/dev/null; then
        if [[ $as_root == 1 ]]; then
            log "pgloader is not installed: apt-get install pgloader"
            if ! apt-get -o DPkg::Lock::Timeout=300 install -y pgloader >"$WORK/pgloader-install.log" 2>&1; then
                log "apt-get install pgloader failed; trying once more after apt-get update"
                apt-get -o DPkg::Lock::Timeout=300 update >>"$WORK/pgloader-install.log" 2>&1 || true
                apt-get -o DPkg::Lock::Timeout=300 install -y pgloader >>"$WORK/pgloader-install.log" 2>&1 || true
            fi
            tail -n 5 "$WORK/pgloader-install.log" >&2 || true
            rm -f "$WORK/pgloader-install.log"
        fi
    fi
    if ! command -v pgloader >/dev/null; then
        if [[ $as_root == 1 ]]; then PGLOADER_SKIP="pgloader is not installed and apt-get install pgloader failed"
        else PGLOADER_SKIP="pgloader is not installed (run as root, or: apt-get install pgloader)"; fi
    else
        # the Debian package's version (the binary calls itself 3.6.7~devel)
        PGLOADER_VERSION=$(dpkg-query -W -f '${Version}' pgloader 2>/dev/null || true)
        [[ -n $PGLOADER_VERSION ]] || PGLOADER_VERSION=$(pgloader --version 2>/dev/null | head -n1 || true)
    fi
fi
[[ -z $PGLOADER_SKIP ]] || log "pgloader side skipped: $PGLOADER_SKIP"

# ---------------------------------------------------------- the cluster -----
bench_initdb

# Settings: durability stays at the defaults (fsync = on, full_page_writes =
# on, synchronous_commit = on: not set here = default).
bench_conf "csvpipe bad-rows benchmark (test/bench/badrows.sh)"
bench_conf_loads
bench_start
# PERF: a snapshot of the mapped csvpipe.so (see lib.sh)
LIB_SNAPSHOT=""
if [[ $PERF != 0 ]] && command -v perf >/dev/null; then
    bench_lib_snapshot "$PKGLIBDIR"
fi
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
log "server: $(sql -c 'show server_version'); fsync=$(sql -c 'show fsync'), full_page_writes=$(sql -c 'show full_page_writes'); load average $LOAD_START"

# ------------------------------------------------------------ the files -----
bench_files_dir

LABEL=$(human "$ROWS")

# The corrupter: copies the clean file, corrupting exactly NBAD data rows.
CORRUPT_VERSION=1       # bump when the program below changes what it writes
cat >"$WORK/corrupt.c" <<'EOF_C'
/*
 * corrupt N K SEED BADLIST [KEEP_KIND] < clean.csv > dirty.csv
 *
 * Copies a narrow CSV (id,ts,name,amount,flag; header line first) and
 * corrupts exactly K of its N data rows, picked by selection sampling
 * (Knuth's algorithm S) driven by splitmix64 seeded with SEED: the same
 * arguments always give the same bytes.  The bad rows take turns through the
 * kinds amount, ts, fields, quote, bool (variants within a kind in turn too).
 * The id is never touched.  One record is one line (the narrow generator
 * never puts a newline in a field); the name may be quoted and hold commas,
 * so: id = up to the 1st comma, ts = up to the 2nd, flag = after the last,
 * amount = between the last two, name = the rest.
 * BADLIST gets line_no<TAB>id<TAB>kind<TAB>variant per bad row (the header is
 * line 1); stderr gets "bad=K sum_id=S amount=.. ts=.. fields=.. quote=.. bool=..".
 * With KEEP_KIND, the rows picked for that kind are copied unchanged (and
 * neither listed nor counted): the other bad rows are the same as without it.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

static uint64_t rng_state;

static uint64_t
rnd(void)
{
	uint64_t	z = (rng_state += 0x9E3779B97F4A7C15ULL);

	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
	return z ^ (z >> 31);
}

static const char *kinds[] = {"amount", "ts", "fields", "quote", "bool"};
static const char *amounts[] = {"12.x5", "1.2.3", "abc"};
static const char *tss[] = {"2024-02-30 10:00:00+00", "2024-13-05 12:00:00+00",
	"2024-05-06 25:61:00+00", "2024-05-06 12:3x:00+00"};
static const char *quotes[] = {"ab\"c\"d", "\"ab\"c\"d\""};
static const char *bools[] = {"maybe", "2", "nope"};

static void
die(const char *msg, uint64_t line)
{
	fprintf(stderr, "corrupt: %s (line %llu)\n", msg, (unsigned long long) line);
	exit(1);
}

int
main(int argc, char **argv)
{
	uint64_t	n, k, chosen = 0, kept = 0, i, line_no, sum_id = 0;
	uint64_t	per_kind[5] = {0};
	FILE	   *badf;
	char	   *line = NULL;
	size_t		cap = 0;
	ssize_t		len;
	static char obuf[1 << 20];
	int			keep_kind = -1;

	if (argc != 5 && argc != 6)
	{
		fprintf(stderr, "usage: corrupt N K SEED BADLIST [KEEP_KIND] < clean.csv > dirty.csv\n");
		return 2;
	}
	if (argc == 6)
	{
		for (keep_kind = 0; keep_kind < 5; keep_kind++)
			if (strcmp(argv[5], kinds[keep_kind]) == 0)
				break;
		if (keep_kind == 5)
			die("unknown KEEP_KIND", 0);
	}
	n = strtoull(argv[1], NULL, 10);
	k = strtoull(argv[2], NULL, 10);
	rng_state = strtoull(argv[3], NULL, 10) * 0x2545F4914F6CDD1DULL + 12345;
	if (k > n || n > UINT32_MAX)
		die("need K <= N < 2^32", 0);
	if ((badf = fopen(argv[4], "w")) == NULL)
	{
		perror(argv[4]);
		return 1;
	}
	setvbuf(stdout, obuf, _IOFBF, sizeof(obuf));

	if ((len = getline(&line, &cap, stdin)) <= 0)
		die("empty input", 1);
	fwrite(line, 1, len, stdout);		/* the header */
	line_no = 1;

	for (i = 0; i < n; i++)
	{
		char	   *c1, *c2, *cl, *cp, *end;
		uint64_t	id;
		unsigned	kind, var;

		if ((len = getline(&line, &cap, stdin)) <= 0)
			die("fewer data rows than N", line_no + 1);
		line_no++;
		/* row i is bad with probability (rows still to pick) / (rows left) */
		if (k == chosen ||
			(((rnd() >> 32) * (n - i)) >> 32) >= k - chosen)
		{
			fwrite(line, 1, len, stdout);
			continue;
		}
		end = line + len;
		if (end > line && end[-1] == '\n')
			end--;
		c1 = memchr(line, ',', end - line);
		c2 = c1 ? memchr(c1 + 1, ',', end - c1 - 1) : NULL;
		for (cl = end; cl > line && cl[-1] != ','; cl--)
			;
		cl--;					/* the last comma */
		for (cp = cl; cp > line && cp[-1] != ','; cp--)
			;
		cp--;					/* the comma before it */
		if (!c1 || !c2 || cl <= line || cp <= c2)
			die("not a narrow row", line_no);
		id = strtoull(line, NULL, 10);
		kind = chosen % 5;
		var = chosen / 5;
		if ((int) kind == keep_kind)
		{
			fwrite(line, 1, len, stdout);
			chosen++;
			kept++;
			continue;
		}
		fwrite(line, 1, c1 - line + 1, stdout);				/* id, */
		switch (kind)
		{
			case 0:				/* non-numeric amount */
				var %= 3;
				fwrite(c1 + 1, 1, cp - c1, stdout);			/* ts,name, */
				fputs(amounts[var], stdout);
				fwrite(cl, 1, end - cl, stdout);				/* ,flag */
				break;
			case 1:				/* bad timestamp */
				var %= 4;
				fputs(tss[var], stdout);
				fwrite(c2, 1, end - c2, stdout);				/* ,name,amount,flag */
				break;
			case 2:				/* a field dropped */
				var %= 2;
				if (var == 0)
					fwrite(c1 + 1, 1, cl - c1 - 1, stdout);		/* ts,name,amount */
				else
					fwrite(c2 + 1, 1, end - c2 - 1, stdout);	/* name,amount,flag */
				break;
			case 3:				/* malformed, balanced quotes in the name */
				var %= 2;
				fwrite(c1 + 1, 1, c2 - c1, stdout);			/* ts, */
				fputs(quotes[var], stdout);
				fwrite(cp, 1, end - cp, stdout);				/* ,amount,flag */
				break;
			default:			/* bad boolean */
				var %= 3;
				fwrite(c1 + 1, 1, cl - c1, stdout);			/* ts,name,amount, */
				fputs(bools[var], stdout);
				break;
		}
		fputc('\n', stdout);
		fprintf(badf, "%llu\t%llu\t%s\t%u\n", (unsigned long long) line_no,
				(unsigned long long) id, kinds[kind], var);
		sum_id += id;
		per_kind[kind]++;
		chosen++;
	}
	if (getline(&line, &cap, stdin) > 0)
		die("more data rows than N", line_no + 1);
	if (chosen != k)
		die("internal: wrong number of rows picked", line_no);
	if (fflush(stdout) != 0 || ferror(stdout) || fclose(badf) != 0)
	{
		perror("corrupt: write");
		return 1;
	}
	fprintf(stderr, "bad=%llu sum_id=%llu amount=%llu ts=%llu fields=%llu quote=%llu bool=%llu\n",
			(unsigned long long) (chosen - kept), (unsigned long long) sum_id,
			(unsigned long long) per_kind[0], (unsigned long long) per_kind[1],
			(unsigned long long) per_kind[2], (unsigned long long) per_kind[3],
			(unsigned long long) per_kind[4]);
	return 0;
}
EOF_C
cc -O2 -Wall -o "$WORK/corrupt" "$WORK/corrupt.c" || die "cannot build the corrupter"

CLEAN=$FILES/narrow_${ROWS}_s${SEED}.csv
DIRTY=$FILES/narrow_${ROWS}_s${SEED}.bad${NBAD}_b${BAD_SEED}_v${CORRUPT_VERSION}.csv
BADLIST=${DIRTY%.csv}.badrows.tsv
BADSTATS=${DIRTY%.csv}.stats
if [[ -s $CLEAN && -n ${DATA_DIR:-} ]]; then
    log "reusing $CLEAN"
else
    log "generating $CLEAN ($ROWS rows)"
    "$GEN" narrow "$ROWS" "$SEED" >"$CLEAN.tmp" || die "generator failed"
    mv "$CLEAN.tmp" "$CLEAN"
fi
lines=$(wc -l <"$CLEAN")
[[ $lines == $((ROWS + 1)) ]] || die "$CLEAN has $lines lines, expected $((ROWS + 1))"
if [[ -s $DIRTY && -s $BADLIST && -s $BADSTATS && -n ${DATA_DIR:-} && ! $DIRTY -ot $CLEAN ]]; then
    log "reusing $DIRTY"
else
    log "corrupting $NBAD of the $ROWS data rows (seed $BAD_SEED) into $(basename "$DIRTY")"
    "$WORK/corrupt" "$ROWS" "$NBAD" "$BAD_SEED" "$BADLIST.tmp" <"$CLEAN" >"$DIRTY.tmp" 2>"$BADSTATS.tmp" \
        || { cat "$BADSTATS.tmp" >&2; die "corrupter failed"; }
    mv "$DIRTY.tmp" "$DIRTY"; mv "$BADLIST.tmp" "$BADLIST"; mv "$BADSTATS.tmp" "$BADSTATS"
fi
BAD_SUM_ID=$(sed -n 's/.*sum_id=\([0-9]*\).*/\1/p' "$BADSTATS")
[[ $(sed -n 's/^bad=\([0-9]*\) .*/\1/p' "$BADSTATS") == "$NBAD" && -n $BAD_SUM_ID ]] \
    || die "unexpected corrupter summary: $(cat "$BADSTATS")"
[[ $(wc -l <"$BADLIST") == "$NBAD" ]] || die "$BADLIST does not list $NBAD rows"
# One record per line in both files, and every line has an even number of
# quotes (the malformed quotes stay on their line).
[[ $(wc -l <"$DIRTY") == $((ROWS + 1)) ]] || die "$DIRTY does not have $((ROWS + 1)) lines"
odd=$(awk -F'"' 'NF % 2 == 0 { n++ } END { print n + 0 }' "$DIRTY")
[[ $odd == 0 ]] || die "$DIRTY has $odd lines with an odd number of quotes"
chmod 644 "$CLEAN" "$DIRTY" "$BADLIST"
for x in "$CLEAN" "$DIRTY" "$BADLIST"; do
    as_pg test -r "$x" || die "$x is not readable by $PGUSER_OS"
done
log "  clean $(du -h "$CLEAN" | cut -f1), dirty $(du -h "$DIRTY" | cut -f1): $(cat "$BADSTATS")"

# pgloader's CSV reader aborts the whole load at the first malformed quote
# (pgloader 3.6.9: "FATAL non whitespace after quoted data", exit status 0),
# so pgloader also gets the "no-quote" dirty file: the same bad rows, except
# that the rows of kind quote are left clean; csvpipe loads it too, for the
# comparison.
DIRTY_NQ=""
if [[ -z $PGLOADER_SKIP ]]; then
    DIRTY_NQ=${DIRTY%.csv}.noquote.csv
    NQSTATS=${DIRTY_NQ%.csv}.stats
    if [[ -s $DIRTY_NQ && -s $NQSTATS && -n ${DATA_DIR:-} && ! $DIRTY_NQ -ot $CLEAN ]]; then
        log "reusing $DIRTY_NQ"
    else
        log "writing $(basename "$DIRTY_NQ"): the same bad rows, except the quote kind"
        "$WORK/corrupt" "$ROWS" "$NBAD" "$BAD_SEED" /dev/null quote <"$CLEAN" >"$DIRTY_NQ.tmp" 2>"$NQSTATS.tmp" \
            || { cat "$NQSTATS.tmp" >&2; die "corrupter failed"; }
        mv "$DIRTY_NQ.tmp" "$DIRTY_NQ"; mv "$NQSTATS.tmp" "$NQSTATS"
    fi
    NBAD_NQ=$(sed -n 's/^bad=\([0-9]*\) .*/\1/p' "$NQSTATS")
    BAD_SUM_ID_NQ=$(sed -n 's/.*sum_id=\([0-9]*\).*/\1/p' "$NQSTATS")
    [[ -n $NBAD_NQ && -n $BAD_SUM_ID_NQ ]] || die "unexpected corrupter summary: $(cat "$NQSTATS")"
    [[ $(wc -l <"$DIRTY_NQ") == $((ROWS + 1)) ]] || die "$DIRTY_NQ does not have $((ROWS + 1)) lines"
    chmod 644 "$DIRTY_NQ"
    as_pg test -r "$DIRTY_NQ" || die "$DIRTY_NQ is not readable by $PGUSER_OS"
    log "  no-quote file: $(cat "$NQSTATS")"
fi

# Expected contents of the target: ids are 1..ROWS.
SUM_CLEAN=$(( ROWS * (ROWS + 1) / 2 ))
SUM_DIRTY=$(( SUM_CLEAN - BAD_SUM_ID ))
GOOD=$(( ROWS - NBAD ))
if [[ -n $DIRTY_NQ ]]; then
    SUM_DIRTY_NQ=$(( SUM_CLEAN - BAD_SUM_ID_NQ ))
    GOOD_NQ=$(( ROWS - NBAD_NQ ))
fi

sql >/dev/null <<EOF || die "setup failed"
SET client_min_messages = warning;
CREATE EXTENSION csvpipe;
CREATE TABLE $TARGET ($COLS);
CREATE TABLE bench_bad (line_no bigint PRIMARY KEY, id bigint NOT NULL, kind text NOT NULL, variant int NOT NULL);
COPY bench_bad FROM '$BADLIST';
CREATE INDEX ON bench_bad (id);
ANALYZE bench_bad;
EOF

# ------------------------------------------------------------- helpers ------
div()    { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "nan" || b == "nan" || a == "" || b == "") print "nan";
                                            else if (b == 0) print "inf"; else printf "%.3f", a / b }'; }
le()     { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a != "nan" && a != "" && a <= b) }'; }

# Empty the target and the rejected-rows table, then CHECKPOINT: untimed, in
# its own session.
reset_target() {
    sql >/dev/null <<EOF || die "could not reset the target table"
SET client_min_messages = warning;
TRUNCATE $TARGET;
TRUNCATE csvpipe.rejected;
CHECKPOINT;
EOF
}

side_file() {
    case $1 in
        clean_skip|clean_stop|copy) echo "$CLEAN" ;;
        dirty_skip|dirty_skip1|pgloader) echo "$DIRTY" ;;
        dirty_nq_skip|pgloader_nq) echo "$DIRTY_NQ" ;;
        *) die "unknown side $1" ;;
    esac
}
side_sql() {
    case $1 in
        clean_skip)    echo "SELECT * FROM csvpipe.load('$CLEAN', '$TARGET', workers => 2, on_error => 'skip')" ;;
        dirty_skip)    echo "SELECT * FROM csvpipe.load('$DIRTY', '$TARGET', workers => 2, on_error => 'skip')" ;;
        clean_stop)    echo "SELECT * FROM csvpipe.load('$CLEAN', '$TARGET', workers => 2)" ;;
        dirty_skip1)   echo "SELECT * FROM csvpipe.load('$DIRTY', '$TARGET', workers => 1, on_error => 'skip')" ;;
        dirty_nq_skip) echo "SELECT * FROM csvpipe.load('$DIRTY_NQ', '$TARGET', workers => 2, on_error => 'skip')" ;;
        copy)          echo "COPY $TARGET FROM '$CLEAN' (FORMAT csv, HEADER)" ;;
        *) die "no SQL for side $1" ;;
    esac
}
side_workers() { case $1 in dirty_skip1) echo 1 ;; *) echo 2 ;; esac; }
# expect SIDE -> WANT_ROWS WANT_SUM WANT_REJ BAD_WHERE (which bench_bad rows
# are bad in the side's file)
expect() {
    case $(side_file "$1") in
        "$CLEAN")    WANT_ROWS=$ROWS;    WANT_SUM=$SUM_CLEAN;    WANT_REJ=0;        BAD_WHERE="false" ;;
        "$DIRTY")    WANT_ROWS=$GOOD;    WANT_SUM=$SUM_DIRTY;    WANT_REJ=$NBAD;    BAD_WHERE="true" ;;
        "$DIRTY_NQ") WANT_ROWS=$GOOD_NQ; WANT_SUM=$SUM_DIRTY_NQ; WANT_REJ=$NBAD_NQ; BAD_WHERE="kind <> 'quote'" ;;
    esac
}

# time_stmt WARMUP QUERY -> T_MS (client-side \timing of QUERY) and T_OUT (its
# output).  One fresh session; WARMUP runs untimed first in that session.
time_stmt() {
    local warm=$1 q=$2 out
    out=$("${PSQL[@]}" -At \
            -c "$warm" \
            -c '\echo @@BEGIN' \
            -c '\timing on' \
            -c "$q" 2>&1) || { printf '%s\n' "$out" >&2; die "statement failed: $q"; }
    T_MS=$(printf '%s\n' "$out" | sed -n 's/^Time: \([0-9.]*\) ms.*/\1/p' | tail -n1)
    [[ -n $T_MS ]] || { printf '%s\n' "$out" >&2; die "no timing in psql output for: $q"; }
    T_OUT=$(printf '%s\n' "$out" | sed -n '/^@@BEGIN$/,$p' | sed '1d' | grep -v '^Time: ' || true)
}

problems=0
declare -A WRONG=() MED=() T=() LOADED=() REJECTED=() ERRVIEW=() WORKERS_USED=()
fewer_workers=0
wrong() {  # side message
    log "WRONG: $1: $2"
    WRONG[$1]=1; problems=$((problems + 1))
}

# check_run SIDE: what a csvpipe or COPY run left, against what it must be.
# Sets CHECK_MSG; records LOADED/REJECTED/ERRVIEW[SIDE] (last run's).
declare -A KIND_CSV=()
check_run() {
    local side=$1 res cnt sm line job rl rj wk ev m
    expect "$side"
    res=$(sql -c "SELECT count(*) || ' ' || coalesce(sum(id), 0) FROM $TARGET") || die "check query failed"
    cnt=${res%% *}; sm=${res#* }
    CHECK_MSG="count=$cnt sum(id)=$sm"
    [[ $cnt == "$WANT_ROWS" ]] || wrong "$side" "count(*) = $cnt, expected $WANT_ROWS"
    [[ $sm == "$WANT_SUM" ]] || wrong "$side" "sum(id) = $sm, expected $WANT_SUM"
    if [[ $side == copy ]]; then
        LOADED[$side]=$cnt; REJECTED[$side]=-; ERRVIEW[$side]=-
        return 0
    fi
    # csvpipe.load's result row: job_id|rows_loaded|rows_rejected|bytes|seconds|workers
    line=$(printf '%s\n' "$T_OUT" | grep -E '^[0-9]+\|' | tail -n1 || true)
    IFS='|' read -r job rl rj _ _ wk <<<"$line"
    [[ $job =~ ^[0-9]+$ ]] || { wrong "$side" "no result row (output: $T_OUT)"; return 0; }
    LOADED[$side]=$rl; REJECTED[$side]=$rj
    [[ $rl == "$WANT_ROWS" ]] || wrong "$side" "rows_loaded = $rl, expected $WANT_ROWS"
    [[ $rj == "$WANT_REJ" ]] || wrong "$side" "rows_rejected = $rj, expected $WANT_REJ"
    if [[ $wk != "$(side_workers "$side")" ]]; then
        log "WARNING: $side ran with $wk worker(s), asked for $(side_workers "$side")"
        WORKERS_USED[$side]="${WORKERS_USED[$side]:-} $wk"
        fewer_workers=1
    fi
    ev=$(sql -c "SELECT count(*) FROM csvpipe.errors WHERE job_id = $job") || die "csvpipe.errors query failed"
    ERRVIEW[$side]=$ev
    [[ $ev == "$WANT_REJ" ]] || wrong "$side" "csvpipe.errors has $ev rows for job $job, expected $WANT_REJ"
    CHECK_MSG+=" job=$job rows_loaded=$rl rows_rejected=$rj errors=$ev workers=$wk"
    (( WANT_REJ > 0 )) || return 0
    # the rejected lines are exactly the corrupted ones
    m=$(sql -c "SELECT count(*) FILTER (WHERE b.line_no IS NULL) || ' ' || count(*) FILTER (WHERE e.line_no IS NULL)
                  FROM (SELECT DISTINCT line_no FROM csvpipe.errors WHERE job_id = $job) e
                  FULL JOIN (SELECT line_no FROM bench_bad WHERE $BAD_WHERE) b ON b.line_no = e.line_no") \
        || die "line check query failed"
    [[ $m == "0 0" ]] || wrong "$side" "rejected lines differ from the corrupted ones: ${m% *} not corrupted, ${m#* } corrupted but not rejected"
    # per kind (the full dirty file, 2 workers): how many rejected, with which
    # SQLSTATEs, and the first message (sorted)
    if [[ $side == dirty_skip ]]; then
        local k n r st msg
        while IFS=$'\t' read -r k n r st msg; do
            KIND_CSV[$k]="$r"$'\t'"$st"$'\t'"$msg"
        done < <(sql -F $'\t' -c "SELECT b.kind, count(*), count(e.line_no),
                                         coalesce(string_agg(DISTINCT e.sqlstate, ','), '-'),
                                         coalesce(left(min(e.message), 70), '-')
                                    FROM bench_bad b
                                    LEFT JOIN (SELECT line_no, sqlstate, message FROM csvpipe.errors
                                                WHERE job_id = $job) e ON e.line_no = b.line_no
                                   GROUP BY b.kind")
    fi
}

# ------------------------------------------------------------- pgloader -----
# pgloader's Unix socket syntax: postgresql://user@unix:/socket/dir:port/dbname
# (pgloader(1), "Connection String"; colons in the path are doubled).
PGL_DIR=$WORK/pgloader
PGL_RUN=0
declare -A PGL_FATAL=() PGL_LOADED=() PGL_GOOD=() PGL_BADLOADED=() PGL_REJECTS=() PGL_SUM_ERRORS=() PGL_SUM_ROWS=()
declare -A KIND_PGL=() KIND_PGL_EX=() KIND_N=()
if [[ -z $PGLOADER_SKIP ]]; then
    mkdir -p "$PGL_DIR"
    [[ $as_root == 1 ]] && chown postgres: "$PGL_DIR"
    for side in pgloader pgloader_nq; do
        cat >"$PGL_DIR/$side.load" <<EOF
LOAD CSV
     FROM '$(side_file $side)'
          HAVING FIELDS (id, ts, name, amount, flag)
     INTO postgresql://postgres@unix:${SOCK//:/::}:$PORT/postgres
          TARGET TABLE $TARGET
          TARGET COLUMNS (id, ts, name, amount, flag)
     WITH skip header = 1,
          fields terminated by ',',
          fields optionally enclosed by '"',
          fields escaped by double-quote,
          on error resume next;
EOF
        chmod 644 "$PGL_DIR/$side.load"
    done
fi

# run_pgloader SIDE: T_MS = wall clock of one pgloader run.  Returns non-zero
# (and sets PGLOADER_SKIP) when pgloader failed or timed out.  A run that
# pgloader itself aborted (a FATAL line; it still exits 0) is kept, with
# PGL_FATAL[SIDE] saying why.
run_pgloader() {
    local side=$1 root out rc t0 t1 line
    PGL_RUN=$((PGL_RUN + 1))
    root=$PGL_DIR/run$PGL_RUN.$side
    out=$root.out
    as_pg mkdir -p "$root"
    cat "$(side_file "$side")" >/dev/null
    t0=$(date +%s%N)
    rc=0
    (cd "$PGL_DIR" && as_pg timeout --kill-after=30 "$PGLOADER_TIMEOUT" \
        pgloader --root-dir "$root" --logfile "$root/pgloader.log" "$PGL_DIR/$side.load") \
        >"$out" 2>&1 || rc=$?
    t1=$(date +%s%N)
    T_MS=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", (b - a) / 1e6 }')
    if [[ $rc == 124 || $rc == 137 ]]; then
        PGLOADER_SKIP="pgloader did not finish within PGLOADER_TIMEOUT=${PGLOADER_TIMEOUT}s (stopped)"
        return 1
    elif [[ $rc != 0 ]]; then
        tail -n 20 "$out" >&2
        PGLOADER_SKIP="pgloader failed (exit $rc): $(grep -m1 -E 'FATAL|ERROR' "$out" | cut -c1-160 || true)"
        return 1
    fi
    PGL_FATAL[$side]=$(grep -m1 ' FATAL ' "$out" | sed 's/^[^ ]* FATAL //; s/#<CSV-READER //; s/ {[0-9A-F]*}>/>/' | cut -c1-150 || true)
    # its summary: the target's line gives errors and rows (bytes, time follow)
    line=$(grep -E "\"?$TARGET\"?[[:space:]]+[0-9]+[[:space:]]+[0-9]+" "$out" | tail -n1 || true)
    PGL_SUM_ERRORS[$side]=$(awk '{ print $2 }' <<<"$line")
    PGL_SUM_ROWS[$side]=$(awk '{ print $3 }' <<<"$line")
    # its reject file(s): one rejected row per non-empty line (COPY text format)
    PGL_REJECTS[$side]=$(find "$root" -name '*.dat' -exec cat {} + 2>/dev/null | grep -c . || true)
    return 0
}

# check_pgloader SIDE: what pgloader loaded, split into good rows and bad rows
# (by kind; the bad rows of its file only).
check_pgloader() {
    local side=$1 k n ex cnt loaded=0 good=0 bad=0
    expect "$side"
    [[ $side == pgloader_nq ]] && { KIND_PGL=(); KIND_PGL_EX=(); }
    while IFS=$'\t' read -r k n ex; do
        loaded=$((loaded + n))
        if [[ $k == '(good)' ]]; then good=$n
        else
            bad=$((bad + n))
            if [[ $side == pgloader_nq ]]; then KIND_PGL[$k]=$n; KIND_PGL_EX[$k]=$ex; fi
        fi
    done < <(sql -F $'\t' -c "SELECT coalesce(b.kind, '(good)'), count(*),
                                     coalesce(left((array_agg(t::text ORDER BY t.id)
                                                   FILTER (WHERE b.id IS NOT NULL))[1], 90), '-')
                                FROM $TARGET t
                                LEFT JOIN (SELECT id, kind FROM bench_bad WHERE $BAD_WHERE) b ON b.id = t.id
                               GROUP BY 1")
    cnt=$(sql -c "SELECT count(*) FROM $TARGET")
    [[ $cnt == "$loaded" ]] || die "internal: pgloader breakdown adds up to $loaded, the table has $cnt"
    PGL_LOADED[$side]=$loaded; PGL_GOOD[$side]=$good; PGL_BADLOADED[$side]=$bad
    CHECK_MSG="count=$loaded good=$good/$WANT_ROWS bad_loaded=$bad/$WANT_REJ rejects_file=${PGL_REJECTS[$side]} summary: errors=${PGL_SUM_ERRORS[$side]:-?} rows=${PGL_SUM_ROWS[$side]:-?}"
    [[ -z ${PGL_FATAL[$side]} ]] || CHECK_MSG+=" ABORTED: ${PGL_FATAL[$side]}"
}

while IFS=$'\t' read -r k n; do KIND_N[$k]=$n; done \
    < <(sql -F $'\t' -c "SELECT kind, count(*) FROM bench_bad GROUP BY kind")
KINDS=(amount ts fields quote bool)

# ------------------------------------------------------------ the runs ------
SIDES=(clean_skip dirty_skip clean_stop copy dirty_skip1)
[[ -n $PGLOADER_SKIP ]] || SIDES+=(dirty_nq_skip pgloader pgloader_nq)
for ((r = 1; r <= ROUNDS; r++)); do
    if (( r % 2 )); then order=("${SIDES[@]}")
    else order=(); for ((i = ${#SIDES[@]} - 1; i >= 0; i--)); do order+=("${SIDES[$i]}"); done; fi
    for side in "${order[@]}"; do
        if [[ $side == pgloader* ]]; then
            [[ -z $PGLOADER_SKIP ]] && (( r <= PGLOADER_ROUNDS )) || continue
            reset_target
            if ! run_pgloader "$side"; then
                log "pgloader round $r: $PGLOADER_SKIP"
                continue
            fi
            check_pgloader "$side"
        else
            reset_target
            cat "$(side_file "$side")" >/dev/null
            time_stmt "SELECT count(*) FROM $TARGET" "$(side_sql "$side")"
            check_run "$side"
        fi
        T[$side]="${T[$side]:-} $T_MS"
        log "$(printf 'round %d  %-13s %10.1f ms  %s' "$r" "$side" "$T_MS" "$CHECK_MSG")"
    done
done
reset_target
for side in "${SIDES[@]}"; do
    # shellcheck disable=SC2086
    MED[$side]=$(median ${T[$side]:-})
done

# ------------------------------------------------------- worker memory -----
# Peak RSS of the 2 workers in skip mode, clean file and dirty file (untimed,
# sampled by lib.sh's rss_run): caught errors and rejected rows must not
# make a worker's private memory grow with the number of bad rows.
declare -A RSSW=() ANONW=() SHMW=()
for side in clean_skip dirty_skip; do
    reset_target
    rss_run "bench_rss_$side" "$(side_file "$side")" "$(side_sql "$side")"
    RSSW[$side]=${RSS_WORKER:-}; ANONW[$side]=${ANON_WORKER:-}; SHMW[$side]=${SHM_WORKER:-}
    log "peak RSS  $side: workers max VmHWM ${RSS_WORKER:-?} kB (RssAnon ${ANON_WORKER:-?}, RssShmem ${SHM_WORKER:-?}) ($RSS_SAMPLES samples)"
done
reset_target

# ---------------------------------------------------------------- report ----
ROWFMT='%-44s %12s %12s %7s %8s %6s\n'
TABLE=$(printf "$ROWFMT" test reference measured ratio bar result
        printf "$ROWFMT" -------------------------------------------- ------------ ------------ ------- -------- ------)
SUMMARY=()
JSON=()
n_checks=0; n_pass=0

add_row() { TABLE+=$'\n'$(printf "$ROWFMT" "$@"); }
record() {  # name pass(1/0/-) key=value...
    local name=$1 pass=$2; shift 2
    SUMMARY+=("BENCH check=$name $* pass=$pass")
    local j="\"check\":\"$name\"" kv
    for kv in "$@"; do
        local k=${kv%%=*} v=${kv#*=}
        v=${v//\\/\\\\}; v=${v//\"/\\\"}
        if [[ $v =~ ^-?[0-9]+(\.[0-9]+)?$ ]]; then j+=",\"$k\":$v"; else j+=",\"$k\":\"$v\""; fi
    done
    [[ $pass == - ]] || j+=",\"pass\":$([[ $pass == 1 ]] && echo true || echo false)"
    JSON+=("{$j}")
    if [[ $pass != - ]]; then
        n_checks=$((n_checks + 1)); [[ $pass == 1 ]] && n_pass=$((n_pass + 1))
    fi
    return 0
}
mark() {  # sides... -> "WRONG" when any of them gave a wrong result, else "$DEFAULT"
    local s
    for s in "$@"; do [[ -n ${WRONG[$s]:-} ]] && { echo WRONG; return; }; done
    echo "$DEFAULT"
}
has() { [[ -n ${T[$1]:-} ]]; }
# ref_row NAME CHECK REF_SIDE SIDE [RESULT]: a reference line (time ratio
# SIDE / REF_SIDE, no bar)
ref_row() {
    local name=$1 check=$2 a=$3 b=$4 res=${5:-} ratio
    ratio=$(div "${MED[$b]}" "${MED[$a]}")
    [[ -n $res ]] || res=$(DEFAULT=- mark "$a" "$b")
    add_row "$name" "$(fmt_ms "${MED[$a]}")" "$(fmt_ms "${MED[$b]}")" "$ratio" "(ref)" "$res"
    record "$check" - "${a}_ms=${MED[$a]}" "${b}_ms=${MED[$b]}" ratio="$ratio"
}

ratio=$(div "${MED[dirty_skip]}" "${MED[clean_skip]}")
if [[ -n $(DEFAULT="" mark clean_skip dirty_skip) ]]; then RES=WRONG; PASS=0
elif le "$ratio" "$BAR_DIRTY"; then RES=PASS; PASS=1
else RES=FAIL; PASS=0; fi
DIRTY_PASS=$PASS
add_row "dirty / clean, skip, 2 workers" "$(fmt_ms "${MED[clean_skip]}")" "$(fmt_ms "${MED[dirty_skip]}")" "$ratio" "<= $BAR_DIRTY" "$RES"
record "dirty_vs_clean_2w" "$PASS" rows="$ROWS" bad="$NBAD" clean_skip_ms="${MED[clean_skip]}" dirty_skip_ms="${MED[dirty_skip]}" ratio="$ratio" bar="$BAR_DIRTY"
ref_row "clean: skip / stop, 2 workers"              skip_vs_stop_clean_2w clean_stop  clean_skip
ref_row "clean: skip 2 workers / COPY"               skip_2w_vs_copy_clean copy        clean_skip
ref_row "dirty: skip 1 worker / 2 workers"           dirty_1w_vs_2w        dirty_skip  dirty_skip1
ref_row "dirty skip 1 worker / COPY clean"           dirty_1w_vs_copy      copy        dirty_skip1
if has dirty_nq_skip; then
    ref_row "no-quote dirty / clean, skip, 2 workers" dirty_nq_vs_clean_2w clean_skip dirty_nq_skip
fi
if has pgloader; then
    if [[ -n ${PGL_FATAL[pgloader]:-} ]]; then
        ref_row "dirty: pgloader / csvpipe skip 2 workers" pgloader_vs_dirty_2w dirty_skip pgloader ABORT
    else
        ref_row "dirty: pgloader / csvpipe skip 2 workers" pgloader_vs_dirty_2w dirty_skip pgloader
    fi
fi
if has pgloader_nq; then
    if [[ -n ${PGL_FATAL[pgloader_nq]:-} ]]; then res=ABORT; else res=""; fi
    ref_row "no-quote dirty: pgloader / csvpipe 2 workers" pgloader_nq_vs_dirty_nq_2w dirty_nq_skip pgloader_nq $res
    ref_row "no-quote dirty: pgloader / COPY clean" pgloader_nq_vs_copy copy pgloader_nq $res
fi
if ! has pgloader && ! has pgloader_nq; then
    add_row "dirty: pgloader / csvpipe skip 2 workers" "$(fmt_ms "${MED[dirty_skip]}")" - - "(ref)" skip
    record "pgloader_vs_dirty_2w" - skipped="$PGLOADER_SKIP"
fi

# rows: what each run loaded and rejected (the last run of each side)
RFMT='%-36s %12s %10s %10s %9s %16s %7s\n'
ROWS_TABLE=$(printf "$RFMT" run "median time" loaded rejected "errors" "expected" result
             printf "$RFMT" "" "" "" "" "view" "loaded/rejected" ""
             printf "$RFMT" ------------------------------------ ------------ ---------- ---------- --------- ---------------- -------)
for side in clean_skip dirty_skip clean_stop copy dirty_skip1 dirty_nq_skip; do
    has "$side" || continue
    case $side in
        clean_skip)    name="csvpipe clean, skip, 2 workers" ;;
        dirty_skip)    name="csvpipe dirty, skip, 2 workers" ;;
        clean_stop)    name="csvpipe clean, stop, 2 workers" ;;
        copy)          name="COPY clean" ;;
        dirty_skip1)   name="csvpipe dirty, skip, 1 worker" ;;
        dirty_nq_skip) name="csvpipe no-quote dirty, skip, 2 w." ;;
    esac
    expect "$side"
    exp="$WANT_ROWS/$WANT_REJ"; [[ $side == copy ]] && exp="$WANT_ROWS/-"
    ROWS_TABLE+=$'\n'$(printf "$RFMT" "$name" "$(fmt_ms "${MED[$side]}")" "${LOADED[$side]:-?}" \
        "${REJECTED[$side]:-?}" "${ERRVIEW[$side]:-?}" "$exp" "$(DEFAULT=OK mark "$side")")
    record "rows_$side" - loaded="${LOADED[$side]:-}" rejected="${REJECTED[$side]:-}" errors_view="${ERRVIEW[$side]:-}" \
        wrong="$([[ -n ${WRONG[$side]:-} ]] && echo 1 || echo 0)"
done
for side in pgloader pgloader_nq; do
    has "$side" || continue
    expect "$side"
    if [[ -n ${PGL_FATAL[$side]:-} ]]; then pres=ABORTED
    elif (( ${PGL_GOOD[$side]} == WANT_ROWS && ${PGL_BADLOADED[$side]} == 0 )); then pres=same
    else pres=differs; fi
    if [[ $side == pgloader ]]; then name="pgloader dirty"; else name="pgloader no-quote dirty"; fi
    ROWS_TABLE+=$'\n'$(printf "$RFMT" "$name" "$(fmt_ms "${MED[$side]}")" "${PGL_LOADED[$side]}" \
        "${PGL_REJECTS[$side]}" "-" "$WANT_ROWS/$WANT_REJ" "$pres")
    record "rows_$side" - loaded="${PGL_LOADED[$side]}" good_loaded="${PGL_GOOD[$side]}" bad_loaded="${PGL_BADLOADED[$side]}" \
        rejected_file="${PGL_REJECTS[$side]}" summary_errors="${PGL_SUM_ERRORS[$side]:-}" summary_rows="${PGL_SUM_ROWS[$side]:-}" \
        aborted="$([[ -n ${PGL_FATAL[$side]:-} ]] && echo 1 || echo 0)"
done

# per kind of corruption
KFMT='%-7s %9s %9s %-12s %9s  %s\n'
KIND_TABLE=$(printf "$KFMT" kind corrupted "csvpipe" "SQLSTATE" "pgloader" "csvpipe message (first, sorted)"
             printf "$KFMT" "" "" rejected "" loaded ""
             printf "$KFMT" ------- --------- --------- ------------ --------- -------------------------------)
for k in "${KINDS[@]}"; do
    IFS=$'\t' read -r kr kst kmsg <<<"${KIND_CSV[$k]:-?	?	?}"
    if [[ $k == quote ]] && has pgloader; then
        if [[ -n ${PGL_FATAL[pgloader]:-} ]]; then kp=abort; else kp='?'; fi
    elif has pgloader_nq; then kp=${KIND_PGL[$k]:-0}
    else kp=-; fi
    KIND_TABLE+=$'\n'$(printf "$KFMT" "$k" "${KIND_N[$k]:-0}" "$kr" "$kst" "$kp" "$kmsg")
done

LOAD_END=$(cut -d' ' -f1-3 /proc/loadavg)
if has pgloader || has pgloader_nq; then
    PGL_LINE="pgloader $PGLOADER_VERSION (Debian package) over the Unix socket, its defaults otherwise (on error resume next, batch rows 25000, workers 8, concurrency 2); wall clock incl. SBCL start-up; $PGLOADER_ROUNDS round(s)"
    [[ -z $PGLOADER_SKIP ]] || PGL_LINE+="; later runs skipped: $PGLOADER_SKIP"
    PGL_LINE+=$'\n'"no-quote dirty = the dirty file with the $(( NBAD - NBAD_NQ )) quote-kind rows left clean ($NBAD_NQ bad rows): pgloader aborts at the first malformed quote"
else
    PGL_LINE="pgloader: not run -- $PGLOADER_SKIP"
fi

cat <<EOF

csvpipe.load(on_error => 'skip') with bad rows -- PostgreSQL $(sql -c 'show server_version'), $(nproc) cores, fsync=on, full_page_writes=on
files: narrow $LABEL rows, clean $(du -h "$CLEAN" | cut -f1); dirty copy with $NBAD bad rows ($BAD_PCT%, seed $BAD_SEED), kinds in turn: amount ts fields quote bool
medians of $ROUNDS rounds, sides alternated; target and csvpipe.rejected truncated + CHECKPOINT, untimed, before each run
ratio = measured time / reference time
csvpipe: $SRC_VERSION
$PGL_LINE
load average at start: $LOAD_START, at end: $LOAD_END (other work on the machine adds noise)

$TABLE

$ROWS_TABLE

$KIND_TABLE

worker peak memory, 2 workers, skip mode (VmHWM / private RssAnon / shared RssShmem):
  clean file  $(fmt_mb "${RSSW[clean_skip]}") / $(fmt_mb "${ANONW[clean_skip]}") / $(fmt_mb "${SHMW[clean_skip]}")
  dirty file  $(fmt_mb "${RSSW[dirty_skip]}") / $(fmt_mb "${ANONW[dirty_skip]}") / $(fmt_mb "${SHMW[dirty_skip]}")
EOF
for side in pgloader pgloader_nq; do
    has "$side" || continue
    expect "$side"
    echo
    if [[ $side == pgloader ]]; then echo "pgloader, dirty file:"; else echo "pgloader, no-quote dirty file:"; fi
    [[ -z ${PGL_FATAL[$side]:-} ]] || echo "  ABORTED (exit status 0): FATAL ${PGL_FATAL[$side]}"
    echo "  loaded ${PGL_GOOD[$side]} of $WANT_ROWS good rows and ${PGL_BADLOADED[$side]} of $WANT_REJ bad rows;" \
         "reject file: ${PGL_REJECTS[$side]} rows; its summary: errors ${PGL_SUM_ERRORS[$side]:-?}, rows ${PGL_SUM_ROWS[$side]:-?}"
    if [[ $side == pgloader_nq ]]; then
        for k in "${KINDS[@]}"; do
            [[ -n ${KIND_PGL_EX[$k]:-} ]] && echo "  $k rows loaded (${KIND_PGL[$k]}), e.g. ${KIND_PGL_EX[$k]}"
        done
    fi
done
if [[ $fewer_workers == 1 ]]; then
    echo "some csvpipe runs got fewer workers than asked:$(for s in "${!WORKERS_USED[@]}"; do printf ' %s:%s' "$s" "${WORKERS_USED[$s]}"; done)"
fi
echo
printf '%s\n' "${SUMMARY[@]}"
for side in clean_skip dirty_skip; do
    echo "BENCH check=worker_rss_$side worker_kb=${RSSW[$side]} anon_kb=${ANONW[$side]} shmem_kb=${SHMW[$side]} pass=-"
done
echo "BENCH summary checks=$n_checks passed=$n_pass failed=$((n_checks - n_pass)) wrong_results=$problems"
(IFS=,; echo "BENCH_JSON {\"rows\":$ROWS,\"bad\":$NBAD,\"rounds\":$ROUNDS,\"checks\":[${JSON[*]}],\"passed\":$n_pass,\"failed\":$((n_checks - n_pass)),\"wrong_results\":$problems}")

# ------------------------------------------------------------------ perf ----
# perf_profile TITLE SIDE: `perf record -a -g` during one (untimed) load of
# SIDE; the leader and its workers are found while it runs (the workers'
# command line says "csvpipe worker N for PID <leader>").  Prints the CPU
# share of each process, then the top symbols of all processes and of the
# workers.
perf_profile() {
    local title=$1 side=$2 app=bench_perf_$2 psql_pid perf_pid leader="" d cmd wpids i
    local -A seen=()
    reset_target
    cat "$(side_file "$side")" >/dev/null
    log "perf record -a -g during: $title"
    rm -f "$WORK/perf.data"
    perf record -q -a -g -o "$WORK/perf.data" >/dev/null 2>"$WORK/perf.err" &
    perf_pid=$!
    bg_pids+=("$perf_pid")
    sleep 0.3
    PGAPPNAME=$app "${PSQL[@]}" -At -c "$(side_sql "$side")" >"$WORK/perf.out" 2>&1 &
    psql_pid=$!
    bg_pids+=("$psql_pid")
    for ((i = 0; i < 72000; i++)); do
        kill -0 "$psql_pid" 2>/dev/null || break
        if [[ -z $leader ]]; then
            leader=$(sql -c "select pid from pg_stat_activity where application_name = '$app'
                               and backend_type = 'client backend'" 2>/dev/null || true)
        else
            for d in /proc/[0-9]*; do
                cmd=""
                { IFS= read -r -d '' cmd <"$d/cmdline"; } 2>/dev/null || true
                [[ $cmd == *"csvpipe worker "*" for PID $leader"* ]] && seen[${d#/proc/}]=1
            done
        fi
        sleep 0.1
    done
    wait "$psql_pid" || { cat "$WORK/perf.out" >&2; die "profiled load failed"; }
    kill -INT "$perf_pid" 2>/dev/null || true
    wait "$perf_pid" 2>/dev/null || true
    bg_pids=()
    if [[ -n $LIB_SNAPSHOT ]]; then perf buildid-cache -a "$LIB_SNAPSHOT" >/dev/null 2>&1 || true; fi
    wpids=$(IFS=,; echo "${!seen[*]}")
    echo
    echo "perf: $title; result $(tail -n1 "$WORK/perf.out"); leader pid ${leader:-?}, worker pids ${wpids:-?}"
    echo "CPU samples per process, whole machine ($(nproc) cores; swapper = idle) (top 10):"
    perf report -i "$WORK/perf.data" --stdio --no-children -g none --sort comm,pid \
        2>/dev/null | grep -v '^#' | grep -v '^$' | head -10 || true
    echo "all processes: perf report --stdio --no-children --sort comm,dso,sym (top 40)"
    perf report -i "$WORK/perf.data" --stdio --no-children -g none --sort comm,dso,sym \
        2>/dev/null | grep -v '^#' | grep -v '^$' | head -40 || true
    if [[ -n $wpids ]]; then
        echo "workers only (pids $wpids), % of the workers' samples (top 30)"
        perf report -i "$WORK/perf.data" --stdio --no-children -g none --pid "$wpids" \
            --percentage relative --sort dso,sym 2>/dev/null | grep -v '^#' | grep -v '^$' | head -30 || true
    fi
}
if [[ $PERF == 1 || ( $PERF == auto && $DIRTY_PASS == 0 ) ]]; then
    if ! command -v perf >/dev/null; then
        log "perf is not installed: no profile"
    else
        perf_profile "csvpipe.load dirty, skip, 2 workers, $LABEL rows" dirty_skip
        perf_profile "csvpipe.load clean, skip, 2 workers, $LABEL rows" clean_skip
        reset_target
    fi
fi

[[ $problems == 0 ]] || { log "$problems wrong result(s): see the WRONG lines above"; exit 2; }
exit 0
