#!/usr/bin/env bash
# test/bench/load.sh -- csvpipe.load() against COPY FROM, on a throwaway cluster.
#
#   make bench-load              (or: bash test/bench/load.sh)
#
# Not part of `make test`: it is a report.  It builds and installs the
# extension, starts a private PostgreSQL cluster (own temp dir, own socket dir,
# no TCP) with DEFAULT DURABILITY (fsync, full_page_writes, synchronous_commit
# on: this measures loads, whose cost includes making them durable), generates
# narrow CSV files with test/gen/gen_csv (ROWS_SMALL and ROWS_LARGE rows) and
# splits each into two halves (header + first half, header + second half).
#
# For each file, in one run, alternating the order of the sides every round
# (forward on odd rounds, reversed on even ones), medians of ROUNDS rounds:
#
#   1. COPY t FROM '<file>' (FORMAT csv, HEADER)              the reference
#   2. SELECT * FROM csvpipe.load('<file>', 't', workers => 1)
#      SELECT * FROM csvpipe.load('<file>', 't', workers => 2)            (atomic)
#      SELECT * FROM csvpipe.load('<file>', 't', workers => 2, atomic => false)
#   3. two concurrent sessions, COPY t FROM '<half1>' and '<half2>', wall clock
#      from the first one's start to the last one's end (server clock)
#   4. SELECT count(*) FROM csvpipe.read('<file>', workers => 2) AS t(...)
#      vs SELECT count(*) FROM <file_fdw table over the file>
#      and, for reference, the single-process csvpipe.read count(*) and the
#      2-worker read with ordered => false (rows in arrival order)
#
# Before every timed load the target -- a plain table
#   (id bigint, ts timestamptz, name text, amount numeric(12,2), flag boolean)
# -- is dropped and created again, then CHECKPOINT, both untimed, in another
# session; then the input is read once with `cat file > /dev/null` (this kind
# of VM drops idle page cache after about a minute, see shared PERFORMANCE.md);
# then one fresh psql session warms its caches on the empty target (untimed)
# and `\timing` measures the statement as the client sees it.
# After every load: count(*) must be exactly the file's rows and sum(id) must
# equal what COPY loaded (and csvpipe's rows_loaded must be the row count).
#
#   5. worker start-up: loads over the small file with workers => 2 and
#      client_min_messages = debug1; the leader logs
#        csvpipe worker N: first chunk done X ms after registration
#      and the report gives the median X over all workers and rounds, with the
#      default chunk size (csvpipe.chunk_size, some MB: X includes converting
#      and inserting the first chunk) and with chunk_size => 65536 (start-up
#      dominates).
#   6. peak RSS: a load with 2 workers over each file; every ~50 ms the script
#      reads VmHWM (/proc/PID/status) of the leader backend (found by
#      application_name in pg_stat_activity) and of every process whose
#      command line says "csvpipe worker N for PID <leader>" (the worker's
#      bgw_name), keeping the maximum per process kind.  The leader's final
#      VmHWM is read after the load, while its session sleeps.  The COPY
#      backend's VmHWM is measured the same way, for reference.
#
# Ratios and bars:
#   load speedup     = COPY time / csvpipe.load time
#                      1 worker >= 0.95; 2 workers >= 1.7 (atomic and not)
#   two-COPY speedup = COPY time / two-session time         (reference, no bar)
#   parallel read    = file_fdw count(*) time / csvpipe.read(workers => 2) time
#                      >= 1.6
#   worker start-up  = median first-chunk time <= 50 ms (both chunk sizes)
#   peak RSS         = every process <= 64 MB, and large/small <= 1.10 for the
#                      leader and for the workers
#
# Runs as root (the cluster runs as the `postgres` OS user via runuser) or as a
# normal user (the cluster runs as that user; `make install` then needs write
# access to the PostgreSQL directories or password-less sudo, or an already
# installed csvpipe).
#
# Environment:
#   ROWS_SMALL=1000000  ROWS_LARGE=10000000  ROUNDS=3  SEED=1
#   BENCH_TMPDIR=/tmp       where the temp dir (cluster + CSV files) goes
#   DATA_DIR=               keep/reuse generated CSV files here (must be readable
#                           by the cluster's OS user); default: inside the temp dir
#   SHARED_BUFFERS=1GB      EXTRA_CONF='line1\nline2'  (appended to postgresql.conf)
#   BENCH_PORT=54339        port number of the private socket
#   PERF=1                  after the report, `perf record -a -g` during one
#                           2-worker load of the large file, then print, per
#                           process kind (leader, workers, other), the top of
#                           `perf report --stdio --sort comm,dso,sym`
#   KEEP=1                  keep the temp dir (the server is still stopped)
#   SKIP_BUILD=1            do not run make / make install
#   GEN=path                use this generator binary instead of test/gen/gen_csv
#
# Output: progress on stderr, the result table and a machine-readable summary
# (lines starting with "BENCH ", then one "BENCH_JSON {...}" line) on stdout.
# Exit status: 0 when the benchmark ran (bars missed or not); 2 when a load or
# a read gave a wrong row count or sum (the table is still printed, marked
# WRONG); 1 when something broke (build, cluster, a query error).

set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
ROWS_SMALL=${ROWS_SMALL:-1000000}
ROWS_LARGE=${ROWS_LARGE:-10000000}
ROUNDS=${ROUNDS:-3}
PERF=${PERF:-0}

BAR_LOAD1=0.95          # COPY time / load(workers => 1) time must be >= this
BAR_LOAD2=1.7           # COPY time / load(workers => 2) time must be >= this
BAR_PREAD=1.6           # file_fdw time / read(workers => 2) time must be >= this
BAR_STARTUP_MS=50       # median first-chunk-done time must be <= this
BAR_RSS_MB=64           # every process's VmHWM must be <= this
BAR_RSS_GROWTH=1.10     # VmHWM large / small must be <= this

TARGET=bench_t

BENCH_NAME=bench-load
# shellcheck source=test/bench/lib.sh
source "$REPO/test/bench/lib.sh"

for v in ROWS_SMALL ROWS_LARGE ROUNDS SEED; do
    [[ ${!v} =~ ^[1-9][0-9]*$ ]] || die "$v must be a positive integer (got '${!v}')"
done
(( ROWS_SMALL >= 2 && ROWS_LARGE >= 2 )) || die "ROWS_SMALL and ROWS_LARGE must be >= 2 (files are split in halves)"

# ------------------------------------------------------- build, cluster -----
bench_build file_fdw
bench_generator
bench_cluster bench-load 54339

# Settings.  Unlike read.sh, durability stays at the defaults: fsync = on,
# full_page_writes = on, synchronous_commit = on (not set here = default).
bench_conf "csvpipe load benchmark (test/bench/load.sh)"
cat >>"$PGDATA/postgresql.conf" <<EOF
# the reads here measure parsing: no result cache serving repeated reads
csvpipe.cache_size = 0
EOF
bench_conf_loads
bench_start
# PERF: a snapshot of the mapped csvpipe.so (see lib.sh)
LIB_SNAPSHOT=""
if [[ $PERF == 1 ]]; then
    bench_lib_snapshot "$(pg_config --pkglibdir)"
fi
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
log "server: $(sql -c 'show server_version'); fsync=$(sql -c 'show fsync'), full_page_writes=$(sql -c 'show full_page_writes'); load average $LOAD_START"

# ------------------------------------------------------------ the files -----
bench_files_dir


declare -A FILE HALF1 HALF2 FT LABEL NROWS
for size in small large; do
    if [[ $size == small ]]; then rows=$ROWS_SMALL; else rows=$ROWS_LARGE; fi
    f=$FILES/narrow_${rows}_s${SEED}.csv
    if [[ -s $f && -n ${DATA_DIR:-} ]]; then
        log "reusing $f"
    else
        log "generating $f ($rows rows)"
        "$GEN" narrow "$rows" "$SEED" >"$f.tmp" || die "generator failed"
        mv "$f.tmp" "$f"
    fi
    lines=$(wc -l <"$f")
    # The narrow generator never puts a newline inside a field, so one line is
    # one record and a split on line boundaries gives two valid CSV files.
    [[ $lines == $((rows + 1)) ]] || die "$f has $lines lines, expected $((rows + 1))"
    h1=${f%.csv}.half1.csv h2=${f%.csv}.half2.csv
    first=$((rows / 2))
    if [[ -s $h1 && -s $h2 && -n ${DATA_DIR:-} && ! $h1 -ot $f ]]; then
        log "reusing $h1, $h2"
    else
        log "splitting into $(basename "$h1") ($first rows) and $(basename "$h2") ($((rows - first)) rows)"
        head -n $((first + 1)) "$f" >"$h1.tmp"
        { head -n 1 "$f"; tail -n +$((first + 2)) "$f"; } >"$h2.tmp"
        mv "$h1.tmp" "$h1"; mv "$h2.tmp" "$h2"
    fi
    [[ $(( $(wc -l <"$h1") + $(wc -l <"$h2") )) == $((rows + 2)) ]] || die "bad split of $f"
    chmod 644 "$f" "$h1" "$h2"
    for x in "$f" "$h1" "$h2"; do
        as_pg test -r "$x" || die "$x is not readable by $PGUSER_OS"
    done
    FILE[$size]=$f; HALF1[$size]=$h1; HALF2[$size]=$h2
    FT[$size]=fdw_narrow_$size
    LABEL[$size]=$(human "$rows")
    NROWS[$size]=$rows
    log "  $(du -h "$f" | cut -f1)  $lines lines"
done

sql >/dev/null <<EOF || die "setup failed"
CREATE EXTENSION csvpipe;
CREATE EXTENSION file_fdw;
CREATE SERVER bench_files FOREIGN DATA WRAPPER file_fdw;
CREATE FOREIGN TABLE ${FT[small]} ($COLS) SERVER bench_files
    OPTIONS (filename '${FILE[small]}', format 'csv', header 'true');
CREATE FOREIGN TABLE ${FT[large]} ($COLS) SERVER bench_files
    OPTIONS (filename '${FILE[large]}', format 'csv', header 'true');
EOF

CHUNK_DEFAULT=$(sql -c "SHOW csvpipe.chunk_size") || die "cannot read csvpipe.chunk_size"
log "csvpipe.chunk_size = $CHUNK_DEFAULT, csvpipe.queue_size = $(sql -c "SHOW csvpipe.queue_size")"

# ------------------------------------------------------------- helpers ------
div()    { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "nan" || b == "nan" || a == "" || b == "") print "nan";
                                            else if (b == 0) print "inf"; else printf "%.3f", a / b }'; }
ge()     { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a != "nan" && a >= b) }'; }
le()     { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a != "nan" && a <= b) }'; }

# Drop and create the target, then CHECKPOINT: untimed, in its own session.
reset_target() {
    sql >/dev/null <<EOF || die "could not reset the target table"
SET client_min_messages = warning;
DROP TABLE IF EXISTS $TARGET;
CREATE TABLE $TARGET ($COLS);
CHECKPOINT;
EOF
}

# The load statement of each side (sides "copy2" is handled by time_copy2).
load_sql() {  # side size
    local f=${FILE[$2]}
    case $1 in
        copy)    echo "COPY $TARGET FROM '$f' (FORMAT csv, HEADER)" ;;
        load1)   echo "SELECT * FROM csvpipe.load('$f', '$TARGET', workers => 1)" ;;
        load2)   echo "SELECT * FROM csvpipe.load('$f', '$TARGET', workers => 2)" ;;
        load2na) echo "SELECT * FROM csvpipe.load('$f', '$TARGET', workers => 2, atomic => false)" ;;
        *) die "unknown side $1" ;;
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

# Two sessions each COPY one half; T_MS = last end - first start, taken from
# the server's clock_timestamp() right before and right after each COPY.
time_copy2() {  # size
    local size=$1 i pids=() s e t0="" t1=""
    cat "${HALF1[$size]}" "${HALF2[$size]}" >/dev/null
    for i in 1 2; do
        local h; if [[ $i == 1 ]]; then h=${HALF1[$size]}; else h=${HALF2[$size]}; fi
        "${PSQL[@]}" -At \
            -c "SELECT 1 FROM $TARGET LIMIT 0" \
            -c "SELECT extract(epoch FROM clock_timestamp())" \
            -c "COPY $TARGET FROM '$h' (FORMAT csv, HEADER)" \
            -c "SELECT extract(epoch FROM clock_timestamp())" \
            >"$WORK/copy2.$i.out" 2>&1 &
        pids+=($!)
    done
    bg_pids+=("${pids[@]}")
    for i in 0 1; do
        wait "${pids[$i]}" || { cat "$WORK/copy2.$((i + 1)).out" >&2; die "two-COPY session $((i + 1)) failed"; }
    done
    bg_pids=()
    for i in 1 2; do
        s=$(sed -n 1p "$WORK/copy2.$i.out"); e=$(sed -n 2p "$WORK/copy2.$i.out")
        [[ $s =~ ^[0-9.]+$ && $e =~ ^[0-9.]+$ ]] || { cat "$WORK/copy2.$i.out" >&2; die "two-COPY: no timestamps"; }
        if [[ -z $t0 ]] || awk -v a="$s" -v b="$t0" 'BEGIN { exit !(a < b) }'; then t0=$s; fi
        if [[ -z $t1 ]] || awk -v a="$e" -v b="$t1" 'BEGIN { exit !(a > b) }'; then t1=$e; fi
    done
    T_MS=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", (b - a) * 1000 }')
    T_OUT=""
}

problems=0
declare -A WRONG MED SUMREF

# check_target KEY SIDE SIZE: count(*) and sum(id) of the target after a load.
check_target() {
    local key=$1 side=$2 size=$3 res cnt sm
    res=$(sql -c "SELECT count(*) || ' ' || coalesce(sum(id), 0) FROM $TARGET") || die "check query failed"
    cnt=${res%% *}; sm=${res#* }
    CHECK_MSG="count=$cnt sum(id)=$sm"
    if [[ $cnt != "${NROWS[$size]}" ]]; then
        log "WRONG: $side ${LABEL[$size]}: count(*) = $cnt, expected ${NROWS[$size]}"
        WRONG[$key]=1; problems=$((problems + 1))
    fi
    if [[ $side == copy ]]; then
        if [[ -z ${SUMREF[$size]:-} ]]; then SUMREF[$size]=$sm
        elif [[ ${SUMREF[$size]} != "$sm" ]]; then
            log "WRONG: COPY ${LABEL[$size]} gave sum(id) $sm after ${SUMREF[$size]}"
            WRONG[$key]=1; problems=$((problems + 1))
        fi
    elif [[ -z ${SUMREF[$size]:-} ]]; then
        die "internal: no COPY reference sum before $side"
    elif [[ ${SUMREF[$size]} != "$sm" ]]; then
        log "WRONG: $side ${LABEL[$size]}: sum(id) = $sm, COPY gave ${SUMREF[$size]}"
        WRONG[$key]=1; problems=$((problems + 1))
    fi
}

# check_load_result KEY SIDE SIZE: csvpipe.load's own result row
# (job_id|rows_loaded|rows_rejected|bytes|seconds|workers).
declare -A WORKERS_USED=()
fewer_workers=0
check_load_result() {
    local key=$1 side=$2 size=$3 want rl wk line
    line=$(printf '%s\n' "$T_OUT" | grep -E '^[0-9]+\|' | tail -n1 || true)
    IFS='|' read -r _ rl _ _ _ wk <<<"$line"
    if [[ $rl != "${NROWS[$size]}" ]]; then
        log "WRONG: $side ${LABEL[$size]}: rows_loaded = '$rl', expected ${NROWS[$size]} (result: $T_OUT)"
        WRONG[$key]=1; problems=$((problems + 1))
    fi
    if [[ $side == load1 ]]; then want=1; else want=2; fi
    if [[ $wk != "$want" ]]; then
        log "WARNING: $side ${LABEL[$size]}: ran with $wk worker(s), asked for $want"
        WORKERS_USED[$key]="${WORKERS_USED[$key]:-} $wk"
        fewer_workers=1
    fi
}

# ------------------------------------------------------ 1-3: the loads ------
LOAD_SIDES=(copy load1 load2 load2na copy2)
for size in small large; do
    declare -A T=()
    for ((r = 1; r <= ROUNDS; r++)); do
        if (( r % 2 )); then order=("${LOAD_SIDES[@]}")
        else order=(); for ((i = ${#LOAD_SIDES[@]} - 1; i >= 0; i--)); do order+=("${LOAD_SIDES[$i]}"); done; fi
        # sum(id) of COPY is the reference: on a reversed round COPY comes last,
        # but round 1 (forward) has already set it.
        for side in "${order[@]}"; do
            key=$side.$size
            reset_target
            if [[ $side == copy2 ]]; then
                time_copy2 "$size"
            else
                cat "${FILE[$size]}" >/dev/null
                time_stmt "SELECT count(*) FROM $TARGET" "$(load_sql "$side" "$size")"
            fi
            check_target "$key" "$side" "$size"
            [[ $side == load* ]] && check_load_result "$key" "$side" "$size"
            T[$side]="${T[$side]:-} $T_MS"
            log "$(printf 'load  %-5s round %d  %-8s %10.1f ms  %s' "${LABEL[$size]}" "$r" "$side" "$T_MS" "$CHECK_MSG")"
        done
    done
    for side in "${LOAD_SIDES[@]}"; do
        # shellcheck disable=SC2086
        MED[$side.$size]=$(median ${T[$side]})
    done
    unset T
done
sql -c "DROP TABLE IF EXISTS $TARGET" >/dev/null

# ------------------------------------------------- 4: the parallel read -----
READ_SIDES=(pread file_fdw read1 preadu)
read_sql() {  # side size
    case $1 in
        pread)    echo "SELECT count(*) FROM csvpipe.read('${FILE[$2]}', workers => 2) AS t($COLS)" ;;
        preadu)   echo "SELECT count(*) FROM csvpipe.read('${FILE[$2]}', workers => 2, ordered => false) AS t($COLS)" ;;
        read1)    echo "SELECT count(*) FROM csvpipe.read('${FILE[$2]}') AS t($COLS)" ;;
        file_fdw) echo "SELECT count(*) FROM ${FT[$2]}" ;;
    esac
}
for size in small large; do
    declare -A T=()
    for ((r = 1; r <= ROUNDS; r++)); do
        if (( r % 2 )); then order=("${READ_SIDES[@]}")
        else order=(); for ((i = ${#READ_SIDES[@]} - 1; i >= 0; i--)); do order+=("${READ_SIDES[$i]}"); done; fi
        for side in "${order[@]}"; do
            key=$side.$size
            q=$(read_sql "$side" "$size")
            cat "${FILE[$size]}" >/dev/null
            time_stmt "EXPLAIN (COSTS OFF) $q" "$q"
            if [[ $T_OUT != "${NROWS[$size]}" ]]; then
                log "WRONG: $side ${LABEL[$size]}: count(*) = '$T_OUT', expected ${NROWS[$size]}"
                WRONG[$key]=1; problems=$((problems + 1))
            fi
            T[$side]="${T[$side]:-} $T_MS"
            log "$(printf 'read  %-5s round %d  %-8s %10.1f ms  -> %s' "${LABEL[$size]}" "$r" "$side" "$T_MS" "$T_OUT")"
        done
    done
    for side in "${READ_SIDES[@]}"; do
        # shellcheck disable=SC2086
        MED[$side.$size]=$(median ${T[$side]})
    done
    unset T
done

# ------------------------------------------------ 5: worker start-up --------
# Loads of the small file with 2 workers, client_min_messages = debug1; the
# leader's DEBUG lines give each worker's registration -> first chunk done.
declare -A STARTUP STARTUP_N
for cs in default 65536; do
    vals=()
    for ((r = 1; r <= ROUNDS; r++)); do
        reset_target
        if [[ $cs == default ]]; then opt=""; else opt=", chunk_size => $cs"; fi
        q="SELECT * FROM csvpipe.load('${FILE[small]}', '$TARGET', workers => 2$opt)"
        cat "${FILE[small]}" >/dev/null
        out=$("${PSQL[@]}" -At -c "SET client_min_messages = debug1" -c "$q" 2>&1) \
            || { printf '%s\n' "$out" >&2; die "statement failed: $q"; }
        got=$(printf '%s\n' "$out" | sed -n 's/.*csvpipe worker [0-9]*: first chunk done \([0-9.]*\) ms after registration.*/\1/p')
        [[ -n $got ]] || { printf '%s\n' "$out" | head -20 >&2; die "no 'first chunk done' DEBUG line for: $q"; }
        # shellcheck disable=SC2206
        vals+=($got)
        check_target "startup_$cs" "load2" small
        log "start-up  chunk_size=$cs  round $r  first chunk done (ms): $(echo $got)"
    done
    STARTUP[$cs]=$(median "${vals[@]}")
    STARTUP_N[$cs]=${#vals[@]}
done

# ------------------------------------------------------ 6: peak RSS ---------
# rss_run (lib.sh) samples the backend's and its workers' VmHWM

declare -A RSS
for size in small large; do
    reset_target
    rss_run "bench_rss_copy_$size" "${FILE[$size]}" "$(load_sql copy "$size")"
    RSS[copy.$size]=$RSS_LEADER
    RSS[copy_anon.$size]=$ANON_LEADER; RSS[copy_shm.$size]=$SHM_LEADER
    check_target "rss_copy.$size" copy "$size"
    log "peak RSS  ${LABEL[$size]}  COPY backend VmHWM ${RSS_LEADER} kB (max RssAnon ${ANON_LEADER:-?} kB, RssShmem ${SHM_LEADER:-?} kB)"
    reset_target
    rss_run "bench_rss_load_$size" "${FILE[$size]}" "$(load_sql load2 "$size")"
    RSS[leader.$size]=$RSS_LEADER
    RSS[worker.$size]=$RSS_WORKER
    RSS[leader_anon.$size]=$ANON_LEADER; RSS[leader_shm.$size]=$SHM_LEADER
    RSS[worker_anon.$size]=$ANON_WORKER; RSS[worker_shm.$size]=$SHM_WORKER
    check_target "rss_load.$size" load2 "$size"
    log "peak RSS  ${LABEL[$size]}  load 2 workers: leader VmHWM ${RSS_LEADER} kB (RssAnon ${ANON_LEADER:-?}, RssShmem ${SHM_LEADER:-?}), workers max VmHWM ${RSS_WORKER:-?} kB (RssAnon ${ANON_WORKER:-?}, RssShmem ${SHM_WORKER:-?}) ($RSS_SAMPLES samples, ${#WORKER_PIDS[@]} worker processes seen)"
    [[ -n $RSS_WORKER ]] || log "WARNING: no csvpipe worker process was seen while sampling"
done
sql -c "DROP TABLE IF EXISTS $TARGET" >/dev/null

# ---------------------------------------------------------------- report ----
ROWFMT='%-36s %12s %12s %8s %10s %6s\n'
TABLE=$(printf "$ROWFMT" test reference csvpipe ratio bar result
        printf "$ROWFMT" ------------------------------------ ------------ ------------ -------- ---------- ------)
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
        if [[ $v =~ ^-?[0-9]+(\.[0-9]+)?$ ]]; then j+=",\"$k\":$v"; else j+=",\"$k\":\"$v\""; fi
    done
    [[ $pass == - ]] || j+=",\"pass\":$([[ $pass == 1 ]] && echo true || echo false)"
    JSON+=("{$j}")
    if [[ $pass != - ]]; then
        n_checks=$((n_checks + 1)); [[ $pass == 1 ]] && n_pass=$((n_pass + 1))
    fi
    return 0
}
verdict() {  # wrong-flag ok(0/1 exit of a test command...) -> sets RES PASS
    local wrong=$1; shift
    if [[ -n $wrong ]]; then RES=WRONG; PASS=0
    elif "$@"; then RES=PASS; PASS=1
    else RES=FAIL; PASS=0; fi
}

for size in small large; do
    L=${LABEL[$size]}
    c=${MED[copy.$size]}
    for side in load1 load2 load2na; do
        t=${MED[$side.$size]}
        ratio=$(div "$c" "$t")
        case $side in
            load1)   bar=$BAR_LOAD1; name="load 1 worker $L" ;;
            load2)   bar=$BAR_LOAD2; name="load 2 workers $L" ;;
            load2na) bar=$BAR_LOAD2; name="load 2 workers atomic=>false $L" ;;
        esac
        w="${WRONG[$side.$size]:-}${WRONG[copy.$size]:-}"
        verdict "$w" ge "$ratio" "$bar"
        extra=()
        if [[ -n ${WORKERS_USED[$side.$size]:-} ]]; then
            extra=("workers_used=$(echo ${WORKERS_USED[$side.$size]} | tr ' ' ,)")
            name+=" (*)"
        fi
        add_row "$name" "$(fmt_ms "$c")" "$(fmt_ms "$t")" "$ratio" ">= $bar" "$RES"
        record "${side}_$L" "$PASS" rows="${NROWS[$size]}" copy_ms="$c" csvpipe_ms="$t" speedup="$ratio" bar="$bar" ${extra[@]+"${extra[@]}"}
    done
    t=${MED[copy2.$size]}
    ratio=$(div "$c" "$t")
    if [[ -n ${WRONG[copy2.$size]:-} ]]; then res=WRONG; else res=-; fi
    add_row "two COPY sessions on halves $L" "$(fmt_ms "$c")" "$(fmt_ms "$t")" "$ratio" "(ref)" "$res"
    record "two_copy_$L" - rows="${NROWS[$size]}" copy_ms="$c" two_copy_ms="$t" speedup="$ratio"
done

for size in small large; do
    L=${LABEL[$size]}
    f=${MED[file_fdw.$size]}
    t=${MED[pread.$size]}
    ratio=$(div "$f" "$t")
    verdict "${WRONG[pread.$size]:-}${WRONG[file_fdw.$size]:-}" ge "$ratio" "$BAR_PREAD"
    add_row "read count(*) 2 workers $L" "$(fmt_ms "$f")" "$(fmt_ms "$t")" "$ratio" ">= $BAR_PREAD" "$RES"
    record "pread_$L" "$PASS" rows="${NROWS[$size]}" file_fdw_ms="$f" csvpipe_ms="$t" speedup="$ratio" bar="$BAR_PREAD"
    t=${MED[read1.$size]}
    ratio=$(div "$f" "$t")
    if [[ -n ${WRONG[read1.$size]:-} ]]; then res=WRONG; else res=-; fi
    add_row "read count(*) 1 process $L" "$(fmt_ms "$f")" "$(fmt_ms "$t")" "$ratio" "(ref)" "$res"
    record "read1_$L" - rows="${NROWS[$size]}" file_fdw_ms="$f" csvpipe_ms="$t" speedup="$ratio"
    t=${MED[preadu.$size]}
    ratio=$(div "$f" "$t")
    if [[ -n ${WRONG[preadu.$size]:-} ]]; then res=WRONG; else res=-; fi
    add_row "read 2 workers ordered=>false $L" "$(fmt_ms "$f")" "$(fmt_ms "$t")" "$ratio" "(ref)" "$res"
    record "pread_unordered_$L" - rows="${NROWS[$size]}" file_fdw_ms="$f" csvpipe_ms="$t" speedup="$ratio"
done

for cs in default 65536; do
    x=${STARTUP[$cs]}
    verdict "" le "$x" "$BAR_STARTUP_MS"
    if [[ $cs == default ]]; then name="worker first chunk, $CHUNK_DEFAULT chunks"; else name="worker first chunk, 64kB chunks"; fi
    add_row "$name" - "$(fmt_ms "$x")" - "<= $BAR_STARTUP_MS ms" "$RES"
    record "startup_chunk_$cs" "$PASS" median_ms="$x" samples="${STARTUP_N[$cs]}" bar_ms="$BAR_STARTUP_MS"
done

le_mb() { [[ -n $1 ]] && awk -v a="$1" -v b="$2" 'BEGIN { exit !(a / 1024 <= b) }'; }
for size in small large; do
    L=${LABEL[$size]}
    verdict "" le_mb "${RSS[leader.$size]}" "$BAR_RSS_MB"
    add_row "peak RSS leader (2 workers) $L" "$(fmt_mb "${RSS[copy.$size]}")" "$(fmt_mb "${RSS[leader.$size]}")" - "<= $BAR_RSS_MB MB" "$RES"
    record "rss_leader_$L" "$PASS" leader_kb="${RSS[leader.$size]}" anon_kb="${RSS[leader_anon.$size]:-0}" shmem_kb="${RSS[leader_shm.$size]:-0}" copy_backend_kb="${RSS[copy.$size]}" bar_mb="$BAR_RSS_MB"
    verdict "" le_mb "${RSS[worker.$size]}" "$BAR_RSS_MB"
    add_row "peak RSS workers (max) $L" "$(fmt_mb "${RSS[copy.$size]}")" "$(fmt_mb "${RSS[worker.$size]}")" - "<= $BAR_RSS_MB MB" "$RES"
    record "rss_worker_$L" "$PASS" worker_kb="${RSS[worker.$size]:-0}" anon_kb="${RSS[worker_anon.$size]:-0}" shmem_kb="${RSS[worker_shm.$size]:-0}" copy_backend_kb="${RSS[copy.$size]}" bar_mb="$BAR_RSS_MB"
done
SL=${LABEL[small]} LL=${LABEL[large]}
rcopy=$(div "${RSS[copy.large]}" "${RSS[copy.small]}")
for kind in leader worker; do
    g=$(div "${RSS[$kind.large]:-}" "${RSS[$kind.small]:-}")
    verdict "" le "$g" "$BAR_RSS_GROWTH"
    add_row "peak RSS $kind $LL/$SL" "$rcopy" "$g" - "<= $BAR_RSS_GROWTH" "$RES"
    record "rss_growth_${kind}_${LL}_$SL" "$PASS" ratio="$g" copy_ratio="$rcopy" bar="$BAR_RSS_GROWTH"
done

LOAD_END=$(cut -d' ' -f1-3 /proc/loadavg)

cat <<EOF

csvpipe.load vs COPY FROM -- PostgreSQL $(sql -c 'show server_version'), $(nproc) cores, fsync=on, full_page_writes=on
files: narrow ${LABEL[small]} rows ($(du -h "${FILE[small]}" | cut -f1)), ${LABEL[large]} rows ($(du -h "${FILE[large]}" | cut -f1)); medians of $ROUNDS rounds, sides alternated
loads: reference = COPY FROM file, ratio = COPY time / csvpipe time; target dropped, created and CHECKPOINTed (untimed) before each run
reads: reference = file_fdw count(*), ratio = file_fdw time / csvpipe.read count(*) time
start-up: median over ${STARTUP_N[default]} / ${STARTUP_N[65536]} workers x rounds of the leader's "first chunk done X ms after registration" (2 workers, ${LABEL[small]} file)
RSS: VmHWM; reference = COPY backend; leader = final, workers = max sampled every ~50 ms
load average at start: $LOAD_START, at end: $LOAD_END (other work on the machine adds noise)

$TABLE
EOF
echo
echo "RSS breakdown, largest sampled RssAnon (private) / RssShmem (shared memory touched), MB:"
for size in small large; do
    printf '  %-4s COPY backend %s / %s   leader %s / %s   workers %s / %s\n' "${LABEL[$size]}" \
        "$(fmt_mb "${RSS[copy_anon.$size]:-}")" "$(fmt_mb "${RSS[copy_shm.$size]:-}")" \
        "$(fmt_mb "${RSS[leader_anon.$size]:-}")" "$(fmt_mb "${RSS[leader_shm.$size]:-}")" \
        "$(fmt_mb "${RSS[worker_anon.$size]:-}")" "$(fmt_mb "${RSS[worker_shm.$size]:-}")"
done
if [[ $fewer_workers == 1 ]]; then
    echo "(*) some runs got fewer workers than asked (no free background worker slot)"
fi
echo
printf '%s\n' "${SUMMARY[@]}"
echo "BENCH summary checks=$n_checks passed=$n_pass failed=$((n_checks - n_pass)) wrong_results=$problems"
(IFS=,; echo "BENCH_JSON {\"rows_small\":$ROWS_SMALL,\"rows_large\":$ROWS_LARGE,\"rounds\":$ROUNDS,\"checks\":[${JSON[*]}],\"passed\":$n_pass,\"failed\":$((n_checks - n_pass)),\"wrong_results\":$problems}")

# --------------------------------------------------------- optional perf ----
# perf_profile TITLE FILE QUERY: `perf record -a -g` while QUERY runs (through
# rss_run, which also finds the leader and worker pids), then the CPU share of
# each process and the top symbols of the leader and of the workers.
perf_profile() {
    local title=$1 file=$2 q=$3 wpids
    log "perf record -a -g during: $title"
    rm -f "$WORK/perf.data"
    perf record -q -a -g --buildid-mmap -o "$WORK/perf.data" >/dev/null 2>"$WORK/perf.err" &
    PERF_PID=$!
    bg_pids+=("$PERF_PID")
    sleep 0.3
    RSS_ON_DONE=perf_stop rss_run bench_perf "$file" "$q"
    wpids=$(IFS=,; echo "${WORKER_PIDS[*]}")
    echo
    echo "perf: $title; leader pid $LEADER_PID, worker pids ${wpids:-?}"
    echo "CPU samples per process, whole machine ($(nproc) cores; swapper = idle) (top 12):"
    perf report -i "$WORK/perf.data" --stdio --no-children -g none --sort pid \
        2>/dev/null | grep -v '^#' | grep -v '^$' | head -12 || true
    report_kind "leader" "$LEADER_PID"
    if [[ -n $wpids ]]; then report_kind "workers" "$wpids"; fi
}
perf_stop() {   # as soon as the statement is done
    kill -INT "$PERF_PID" 2>/dev/null || true
    wait "$PERF_PID" 2>/dev/null || true
}
report_kind() {  # title pids
    echo
    echo "$1 (pids $2): perf report --sort comm,dso,sym, % of this kind's samples"
    perf report -i "$WORK/perf.data" --stdio --no-children -g none --pid "$2" \
        --percentage relative --sort comm,dso,sym --percent-limit 0.05 \
        2>/dev/null | grep -v '^#' | grep -v '^$' | symbolize | head -30 || true
}
# symbolize: perf cannot name functions in a csvpipe.so that was replaced on
# disk while the server ran ("csvpipe.so (deleted)  [.] 0x...").  Name them
# with addr2line on the copy of the mapped library, then add up the lines that
# now name the same function, and keep those >= 0.7%.
symbolize() {
    local in=$WORK/perf.lines map=$WORK/perf.map addrs
    cat >"$in"
    : >"$map"
    if [[ -n $LIB_SNAPSHOT ]] && command -v addr2line >/dev/null; then
        addrs=$(awk '/csvpipe\.so/ && /\[\.\] 0x/ { print $NF }' "$in" | sort -u)
        if [[ -n $addrs ]]; then
            # shellcheck disable=SC2086
            paste -d' ' <(printf '%s\n' $addrs) \
                <(addr2line -f -e "$LIB_SNAPSHOT" $addrs | awk 'NR % 2') >"$map" 2>/dev/null || : >"$map"
        fi
    fi
    awk -v mapf="$map" '
        BEGIN { while ((getline l < mapf) > 0) { split(l, a, " "); name[a[1]] = a[2] } }
        {
            pct = $1; sub(/%$/, "", pct)
            line = $0; sub(/^[ \t]*[0-9.]+%[ \t]+/, "", line)
            if (line ~ /csvpipe\.so/ && ($NF in name) && name[$NF] != "??")
                sub(/0x[0-9a-f]+$/, name[$NF], line)
            gsub(/[ \t]+/, " ", line)
            sum[line] += pct
        }
        END { for (k in sum) if (sum[k] >= 0.7) printf "%8.2f%%  %s\n", sum[k], k }' "$in" | sort -rn
}
if [[ $PERF == 1 ]]; then
    if ! command -v perf >/dev/null; then
        log "PERF=1 but perf is not installed"
    else
        reset_target
        perf_profile "csvpipe.load, 2 workers, ${LABEL[large]} rows" "${FILE[large]}" "$(load_sql load2 large)"
        sql -c "DROP TABLE IF EXISTS $TARGET" >/dev/null
        perf_profile "csvpipe.read count(*), 2 workers, ${LABEL[large]} rows" "${FILE[large]}" "$(read_sql pread large)"
    fi
fi

[[ $problems == 0 ]] || { log "$problems wrong result(s): see the WRONG lines above"; exit 2; }
exit 0
