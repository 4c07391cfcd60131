#!/usr/bin/env bash
# test/bench/jobs.sh -- the job queue against a loop of COPY, on a throwaway
# cluster.
#
#   bash test/bench/jobs.sh
#
# Not part of `make test`: it is a report.  It builds and installs the
# extension, starts a private cluster (own temp dir and socket, no TCP) with
# csvpipe preloaded, generates FILES narrow CSV files of ROWS rows each, and
# measures, in the same run, alternating which side goes first each round:
#
#   queue: SELECT csvpipe.submit('<dir>/*.csv', <table>) -- one job per file,
#          csvpipe.max_jobs at a time -- until every job is done;
#          time = last finished_at - submitted_at (as recorded in csvpipe.jobs)
#   COPY:  one session running COPY <table> FROM '<file>' for each file in
#          turn (a DO block; time = server-side, clock_timestamp)
#
#   ratio = queue time / COPY time (lower is better; < 1 means the queue,
#           running max_jobs loads at once, beat the serial loop)
#
# and the start latency of a job on an idle server: LATENCY_RUNS single-file
# submits, one at a time, each waited for; latency = started_at -
# submitted_at, printed as median / p90 / max, with the median
# submit-to-done time.
#
# Runs as root (the cluster runs as the `postgres` OS user via runuser) or as
# a normal user (then `make install` needs write access, or SKIP_BUILD=1 with
# csvpipe installed).
#
# Environment:
#   FILES=100  ROWS=10000  ROUNDS=3  MAX_JOBS=2  LATENCY_RUNS=20  SEED=1
#   BENCH_TMPDIR=/tmp   BENCH_PORT=54339   SHARED_BUFFERS=1GB
#   EXTRA_CONF='line1\nline2'   (appended to postgresql.conf)
#   PG_CONFIG=pg_config         SKIP_BUILD=1   KEEP=1
#
# Output: progress on stderr; the result table and "BENCH ..." lines on
# stdout.  Exit status non-zero when something broke (build, cluster, a job
# that did not end done, row counts that differ from COPY's).

set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
FILES=${FILES:-100}
ROWS=${ROWS:-10000}
ROUNDS=${ROUNDS:-3}
MAX_JOBS=${MAX_JOBS:-2}
LATENCY_RUNS=${LATENCY_RUNS:-20}


BENCH_NAME=bench
# shellcheck source=test/bench/lib.sh
source "$REPO/test/bench/lib.sh"

for v in FILES ROWS ROUNDS MAX_JOBS LATENCY_RUNS SEED; do
    [[ ${!v} =~ ^[1-9][0-9]*$ ]] || die "$v must be a positive integer (got '${!v}')"
done

# ------------------------------------------------------- build, cluster -----
bench_build
bench_generator
bench_cluster bench-jobs 54339
mkdir -p "$WORK/files"
bench_conf "csvpipe benchmark (test/bench/jobs.sh)"
cat >>"$PGDATA/postgresql.conf" <<EOF
shared_buffers = '$SHARED_BUFFERS'
max_worker_processes = 32
max_prepared_transactions = 16
csvpipe.max_jobs = $MAX_JOBS
jit = off
fsync = off
synchronous_commit = off
full_page_writes = off
autovacuum = off
log_min_messages = warning
EOF
bench_start
log "server: $(sql -c 'show server_version'); $(nproc) CPUs; load average $(cut -d' ' -f1-3 /proc/loadavg)"

log "generating $FILES files of $ROWS rows"
for ((i = 1; i <= FILES; i++)); do
    "$GEN" narrow "$ROWS" $((SEED * 1000 + i)) >"$WORK/files/f$(printf '%04d' "$i").csv"
done
chmod 644 "$WORK"/files/*.csv
cat "$WORK"/files/*.csv >/dev/null
log "  $(du -sh "$WORK/files" | cut -f1) in $WORK/files"

sql -c "CREATE EXTENSION csvpipe" >/dev/null

# ------------------------------------------------------------ measuring -----
pct() {  # p numbers...
    local p=$1; shift
    printf '%s\n' "$@" | sort -g | awk -v p="$p" '{ a[NR] = $1 }
        END { i = int((NR * p + 99) / 100); if (i < 1) i = 1; printf "%.3f\n", a[i] }'
}

run_copy() {  # round -> T_MS
    local t=copy_r$1
    sql -c "CREATE TABLE $t ($COLS)" >/dev/null
    T_MS=$(sql <<EOF
SELECT clock_timestamp() AS t0 \gset
DO \$\$
DECLARE f text;
BEGIN
  FOR f IN SELECT '$WORK/files/' || name FROM pg_ls_dir('$WORK/files') AS name
            WHERE name LIKE '%.csv' ORDER BY name LOOP
    EXECUTE format('COPY $t FROM %L (FORMAT csv, HEADER)', f);
  END LOOP;
END \$\$;
SELECT round(extract(epoch FROM clock_timestamp() - :'t0'::timestamptz) * 1000, 1);
EOF
)
    COUNT=$(sql -c "SELECT count(*) FROM $t")
}

run_queue() {  # round -> T_MS
    local t=queue_r$1 n
    sql -c "CREATE TABLE $t ($COLS)" >/dev/null
    n=$(sql -c "SELECT count(*) FROM csvpipe.submit('$WORK/files/*.csv', '$t')")
    [[ $n == "$FILES" ]] || die "submit queued $n jobs, not $FILES"
    for ((i = 0; i < 36000; i++)); do
        n=$(sql -c "SELECT count(*) FROM csvpipe.job WHERE target = '$t'::regclass AND state IN ('queued', 'running')")
        [[ $n == 0 ]] && break
        sleep 0.05
    done
    n=$(sql -c "SELECT count(*) FROM csvpipe.job WHERE target = '$t'::regclass AND state <> 'done'")
    [[ $n == 0 ]] || die "$n jobs of round $1 did not end done"
    T_MS=$(sql -c "SELECT round(extract(epoch FROM max(finished_at) - min(submitted_at)) * 1000, 1)
                     FROM csvpipe.job WHERE target = '$t'::regclass")
    COUNT=$(sql -c "SELECT count(*) FROM $t")
}

declare -a t_copy=() t_queue=()
expect=$((FILES * ROWS))
for ((r = 1; r <= ROUNDS; r++)); do
    if (( r % 2 )); then order="queue copy"; else order="copy queue"; fi
    for side in $order; do
        if [[ $side == copy ]]; then run_copy "$r"; t_copy+=("$T_MS")
        else run_queue "$r"; t_queue+=("$T_MS"); fi
        [[ $COUNT == "$expect" ]] || die "$side round $r loaded $COUNT rows, expected $expect"
        log "$(printf 'round %d  %-5s %10.1f ms  (%s rows)' "$r" "$side" "$T_MS" "$COUNT")"
    done
    sql -c "CHECKPOINT" >/dev/null
done
MED_COPY=$(median "${t_copy[@]}")
MED_QUEUE=$(median "${t_queue[@]}")
RATIO=$(awk -v a="$MED_QUEUE" -v b="$MED_COPY" 'BEGIN { printf "%.2f", a / b }')
PER_JOB=$(awk -v a="$MED_QUEUE" -v n="$FILES" 'BEGIN { printf "%.1f", a / n }')
PER_COPY=$(awk -v a="$MED_COPY" -v n="$FILES" 'BEGIN { printf "%.1f", a / n }')

# start latency on an idle server: one job at a time
sql -c "CREATE TABLE lat ($COLS)" >/dev/null
declare -a lat=() total=()
for ((i = 1; i <= LATENCY_RUNS; i++)); do
    f=$WORK/files/f$(printf '%04d' $(( (i - 1) % FILES + 1 ))).csv
    cp "$f" "$WORK/files/lat$i.csv.x"
    chmod 644 "$WORK/files/lat$i.csv.x"
    sleep 0.2   # let the launcher fall idle
    job=$(sql -c "SELECT * FROM csvpipe.submit('$WORK/files/lat$i.csv.x', 'lat')")
    state=$(sql -c "SELECT csvpipe.wait($job, '60s')")
    [[ $state == done ]] || die "latency job $job ended $state"
    read -r l d < <(sql -F' ' -c "SELECT round(extract(epoch FROM started_at - submitted_at) * 1000, 2),
                                         round(extract(epoch FROM finished_at - submitted_at) * 1000, 2)
                                    FROM csvpipe.job WHERE job_id = $job")
    lat+=("$l"); total+=("$d")
done
LAT_MED=$(median "${lat[@]}")
LAT_P90=$(pct 90 "${lat[@]}")
LAT_MAX=$(pct 100 "${lat[@]}")
DONE_MED=$(median "${total[@]}")

# ---------------------------------------------------------------- report ----
cat <<EOF

csvpipe job queue vs COPY loop: $FILES files x $ROWS rows (narrow), csvpipe.max_jobs = $MAX_JOBS,
$(nproc) CPUs, median of $ROUNDS rounds (sides alternate)

  side                              total        per file
  COPY loop, one session       $(printf '%10.1f ms  %8.1f ms' "$MED_COPY" "$PER_COPY")
  csvpipe.submit + launcher    $(printf '%10.1f ms  %8.1f ms' "$MED_QUEUE" "$PER_JOB")
  ratio queue / COPY           $(printf '%10s' "$RATIO")

  job start latency on an idle server (submitted_at -> started_at), $LATENCY_RUNS jobs:
    median $LAT_MED ms, p90 $LAT_P90 ms, max $LAT_MAX ms
  submit -> done for one $ROWS-row file: median $DONE_MED ms

BENCH check=queue_vs_copy files=$FILES rows=$ROWS max_jobs=$MAX_JOBS copy_ms=$MED_COPY queue_ms=$MED_QUEUE ratio=$RATIO
BENCH check=start_latency runs=$LATENCY_RUNS median_ms=$LAT_MED p90_ms=$LAT_P90 max_ms=$LAT_MAX done_median_ms=$DONE_MED
EOF
