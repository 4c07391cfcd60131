#!/usr/bin/env bash
# test/bench/read.sh -- csvpipe.read() against file_fdw, on a throwaway cluster.
#
#   make bench                   (or: bash test/bench/read.sh)
#
# Not part of `make test`: it is a report.  It builds and installs the
# extension, starts a private PostgreSQL cluster (own temp dir, own socket dir,
# no TCP), generates narrow CSV files with test/gen/gen_csv, and times, in one
# run and alternating the two sides every round:
#
#   SELECT count(*)     FROM csvpipe.read(file) AS t(...)  vs  FROM <file_fdw table>
#   SELECT sum(amount)  FROM ...                            vs  ...
#   SELECT * ... LIMIT 10 over the large file              (bar: csvpipe < 50 ms)
#   peak RSS (VmHWM) of a fresh backend doing count(*) over each file
#                                                           (bar: large/small <= 1.10)
#
# Throughput ratio = file_fdw time / csvpipe time (bar: >= 0.90).
# Each timed run is preceded by an untimed `cat file > /dev/null`: this kind of
# VM drops idle page cache after about a minute (see shared PERFORMANCE.md).
# Each timed run is one fresh psql session: an untimed EXPLAIN of the same
# query warms the catalog caches, then `\timing` measures the query end to end
# as the client sees it (plan + execute + transfer).
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
#   PERF=1                  after the report, profile one csvpipe count(*) over the
#                           large file with `perf record -g -p <backend>` and print
#                           `perf report --stdio` (top 60 lines)
#   KEEP=1                  keep the temp dir (the server is still stopped)
#   SKIP_BUILD=1            do not run make / make install
#   GEN=path                use this generator binary instead of test/gen/gen_csv
#
# Output: progress on stderr, the result table and a machine-readable summary
# (lines starting with "BENCH ", then one "BENCH_JSON {...}" line) on stdout.
# Exit status: 0 when the benchmark ran (bars missed or not); non-zero when
# something broke (build, cluster, a query error, or the two sides disagreeing
# on a count or sum).

set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
ROWS_SMALL=${ROWS_SMALL:-1000000}
ROWS_LARGE=${ROWS_LARGE:-10000000}
ROUNDS=${ROUNDS:-3}
PERF=${PERF:-0}

BAR_THROUGHPUT=0.90     # file_fdw time / csvpipe time must be >= this
BAR_LIMIT_MS=50         # csvpipe LIMIT 10 median must be < this
BAR_RSS=1.10            # csvpipe VmHWM large / small must be <= this


BENCH_NAME=bench
# shellcheck source=test/bench/lib.sh
source "$REPO/test/bench/lib.sh"

for v in ROWS_SMALL ROWS_LARGE ROUNDS SEED; do
    [[ ${!v} =~ ^[1-9][0-9]*$ ]] || die "$v must be a positive integer (got '${!v}')"
done

# ------------------------------------------------------- build, cluster -----
bench_build file_fdw
bench_generator
bench_cluster bench 54329

bench_conf "csvpipe benchmark (test/bench/read.sh)"
cat >>"$PGDATA/postgresql.conf" <<EOF
# this benchmark measures parsing: no result cache serving repeated reads
# (test/bench/cache.sh measures the cache)
csvpipe.cache_size = 0
shared_buffers = '$SHARED_BUFFERS'
max_parallel_workers_per_gather = 0
jit = off
fsync = off
synchronous_commit = off
full_page_writes = off
autovacuum = off
track_io_timing = off
log_min_messages = warning
EOF
bench_start
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
log "server: $(sql -c 'show server_version')"

# ------------------------------------------------------------ the files -----
bench_files_dir


declare -A FILE FT LABEL
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
    chmod 644 "$f"
    as_pg test -r "$f" || die "$f is not readable by $PGUSER_OS"
    FILE[$size]=$f
    FT[$size]=fdw_narrow_$size
    LABEL[$size]=$(human "$rows")
    log "  $(du -h "$f" | cut -f1)  $(wc -l <"$f") lines"
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

# FROM-clause for each side and size.
from_clause() {  # side size
    if [[ $1 == csvpipe ]]; then
        echo "csvpipe.read('${FILE[$2]}') AS t($COLS)"
    else
        echo "${FT[$2]}"
    fi
}

# ------------------------------------------------------------ measuring -----
# time_query FILE QUERY -> sets T_MS (client-side \timing of QUERY) and T_OUT
# (the query's output).  One fresh session; the file is read once, untimed,
# just before.
time_query() {
    local file=$1 q=$2 out
    cat "$file" >/dev/null
    out=$("${PSQL[@]}" -At \
            -c "EXPLAIN (COSTS OFF) $q" \
            -c '\echo @@BEGIN' \
            -c '\timing on' \
            -c "$q" 2>&1) || { printf '%s\n' "$out" >&2; die "query failed: $q"; }
    T_MS=$(printf '%s\n' "$out" | sed -n 's/^Time: \([0-9.]*\) ms.*/\1/p' | tail -n1)
    [[ -n $T_MS ]] || { printf '%s\n' "$out" >&2; die "no timing in psql output for: $q"; }
    T_OUT=$(printf '%s\n' "$out" | sed -n '/^@@BEGIN$/,$p' | sed '1d' | grep -v '^Time: ')
}


# peak_rss FILE QUERY -> sets RSS_KB: VmHWM of a fresh backend right after it
# ran QUERY.  The session runs the query, then sleeps; the script finds the
# backend by application_name, waits until it is in the sleep, and reads
# /proc/<pid>/status while the backend still exists.
rss_seq=0
peak_rss() {
    local file=$1 q=$2 app pid="" state="" psql_pid i
    rss_seq=$((rss_seq + 1))
    app="csvpipe_bench_rss_$$_$rss_seq"
    cat "$file" >/dev/null
    PGAPPNAME=$app "${PSQL[@]}" -At -c "$q" -c "select pg_sleep(3)" \
        >"$WORK/rss.out" 2>&1 &
    psql_pid=$!
    RSS_KB=""
    for ((i = 0; i < 36000; i++)); do      # up to an hour
        if ! kill -0 "$psql_pid" 2>/dev/null; then break; fi
        state=$(sql -c "select pid || ' ' || (query like 'select pg_sleep%')::int
                         from pg_stat_activity where application_name = '$app'" 2>/dev/null || true)
        if [[ $state == *' 1' ]]; then
            pid=${state%% *}
            RSS_KB=$(awk '/^VmHWM:/ { print $2 }' "/proc/$pid/status" 2>/dev/null || true)
            break
        fi
        sleep 0.1
    done
    wait "$psql_pid" || { cat "$WORK/rss.out" >&2; die "query failed: $q"; }
    [[ -n $RSS_KB ]] || die "could not read VmHWM of the backend for: $q"
}

declare -A MED RES MISMATCH
problems=0

for size in small large; do
    for kind in count sum; do
        key=${kind}_$size
        declare -a t_csvpipe=() t_fdw=()
        for ((r = 1; r <= ROUNDS; r++)); do
            if (( r % 2 )); then order="csvpipe file_fdw"; else order="file_fdw csvpipe"; fi
            for side in $order; do
                if [[ $kind == count ]]; then sel="count(*)"; else sel="sum(amount)"; fi
                time_query "${FILE[$size]}" "SELECT $sel FROM $(from_clause $side $size)"
                log "$(printf '%-12s %-5s round %d  %-8s %10.1f ms  -> %s' \
                      "$kind" "${LABEL[$size]}" "$r" "$side" "$T_MS" "$T_OUT")"
                if [[ $side == csvpipe ]]; then t_csvpipe+=("$T_MS"); else t_fdw+=("$T_MS"); fi
                if [[ -z ${RES[$key.$side]:-} ]]; then
                    RES[$key.$side]=$T_OUT
                elif [[ ${RES[$key.$side]} != "$T_OUT" ]]; then
                    log "WARNING: $side $key gave '${T_OUT}' after '${RES[$key.$side]}'"
                    MISMATCH[$key]=1
                fi
            done
        done
        MED[$key.csvpipe]=$(median "${t_csvpipe[@]}")
        MED[$key.file_fdw]=$(median "${t_fdw[@]}")
        if [[ ${RES[$key.csvpipe]} != "${RES[$key.file_fdw]}" ]]; then
            log "WARNING: $key differs: csvpipe '${RES[$key.csvpipe]}' vs file_fdw '${RES[$key.file_fdw]}'"
            MISMATCH[$key]=1
        fi
        [[ -n ${MISMATCH[$key]:-} ]] && problems=$((problems + 1))
        unset t_csvpipe t_fdw
    done
done

# LIMIT 10 over the large file.
declare -a t_csvpipe=() t_fdw=()
for ((r = 1; r <= ROUNDS; r++)); do
    if (( r % 2 )); then order="csvpipe file_fdw"; else order="file_fdw csvpipe"; fi
    for side in $order; do
        time_query "${FILE[large]}" "SELECT * FROM $(from_clause $side large) LIMIT 10"
        log "$(printf '%-12s %-5s round %d  %-8s %10.1f ms' limit10 "${LABEL[large]}" "$r" "$side" "$T_MS")"
        if [[ $side == csvpipe ]]; then t_csvpipe+=("$T_MS"); else t_fdw+=("$T_MS"); fi
        RES[limit.$side]=$T_OUT
    done
done
MED[limit.csvpipe]=$(median "${t_csvpipe[@]}")
MED[limit.file_fdw]=$(median "${t_fdw[@]}")
if [[ ${RES[limit.csvpipe]} != "${RES[limit.file_fdw]}" ]]; then
    log "WARNING: LIMIT 10 rows differ between csvpipe and file_fdw (reported, not fatal):"
    diff <(printf '%s\n' "${RES[limit.csvpipe]}") <(printf '%s\n' "${RES[limit.file_fdw]}") >&2 || true
fi

# Peak RSS of a fresh backend doing count(*), one measurement per side and size.
declare -A RSS
for size in small large; do
    for side in csvpipe file_fdw; do
        peak_rss "${FILE[$size]}" "SELECT count(*) FROM $(from_clause $side $size)"
        RSS[$size.$side]=$RSS_KB
        log "peak RSS  count(*) ${LABEL[$size]}  $side  VmHWM ${RSS_KB} kB"
    done
done

# ---------------------------------------------------------------- report ----
fmt_mb() { awk -v x="$1" 'BEGIN { printf "%.1f MB", x / 1024 }'; }
div()    { awk -v a="$1" -v b="$2" 'BEGIN { if (b == 0) print "inf"; else printf "%.3f", a / b }'; }
ge()     { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a >= b) }'; }
lt()     { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a < b) }'; }
le()     { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a <= b) }'; }

ROWFMT='%-30s %14s %14s %8s %10s %6s\n'
TABLE=$(printf "$ROWFMT" query csvpipe file_fdw ratio bar result
        printf "$ROWFMT" ------------------------------ -------------- -------------- -------- ---------- ------)
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
        if [[ $v =~ ^-?[0-9.]+$ ]]; then j+=",\"$k\":$v"; else j+=",\"$k\":\"$v\""; fi
    done
    [[ $pass == - ]] || j+=",\"pass\":$([[ $pass == 1 ]] && echo true || echo false)"
    JSON+=("{$j}")
    if [[ $pass != - ]]; then
        n_checks=$((n_checks + 1)); [[ $pass == 1 ]] && n_pass=$((n_pass + 1))
    fi
    return 0
}

for size in small large; do
    for kind in count sum; do
        key=${kind}_$size
        c=${MED[$key.csvpipe]} f=${MED[$key.file_fdw]}
        ratio=$(div "$f" "$c")
        if [[ -n ${MISMATCH[$key]:-} ]]; then res=WRONG; pass=0
        elif ge "$ratio" "$BAR_THROUGHPUT"; then res=PASS; pass=1
        else res=FAIL; pass=0; fi
        if [[ $kind == count ]]; then q="count(*) ${LABEL[$size]}"; else q="sum(amount) ${LABEL[$size]}"; fi
        add_row "$q" "$(fmt_ms "$c")" "$(fmt_ms "$f")" "$ratio" ">= $BAR_THROUGHPUT" "$res"
        record "${kind}_${LABEL[$size]}" "$pass" rows="$([[ $size == small ]] && echo "$ROWS_SMALL" || echo "$ROWS_LARGE")" \
            csvpipe_ms="$c" file_fdw_ms="$f" ratio="$ratio" bar="$BAR_THROUGHPUT" \
            result="$(printf '%s' "${RES[$key.csvpipe]}" | tr -d ' \n')"
    done
done

c=${MED[limit.csvpipe]} f=${MED[limit.file_fdw]}
if lt "$c" "$BAR_LIMIT_MS"; then res=PASS; pass=1; else res=FAIL; pass=0; fi
add_row "LIMIT 10 ${LABEL[large]}" "$(fmt_ms "$c")" "$(fmt_ms "$f")" "$(div "$f" "$c")" "< $BAR_LIMIT_MS ms" "$res"
record "limit10_${LABEL[large]}" "$pass" csvpipe_ms="$c" file_fdw_ms="$f" bar_ms="$BAR_LIMIT_MS"

add_row "peak RSS count(*) ${LABEL[small]}" "$(fmt_mb "${RSS[small.csvpipe]}")" "$(fmt_mb "${RSS[small.file_fdw]}")" - - -
add_row "peak RSS count(*) ${LABEL[large]}" "$(fmt_mb "${RSS[large.csvpipe]}")" "$(fmt_mb "${RSS[large.file_fdw]}")" - - -
rc_=$(div "${RSS[large.csvpipe]}" "${RSS[small.csvpipe]}")
rf_=$(div "${RSS[large.file_fdw]}" "${RSS[small.file_fdw]}")
if le "$rc_" "$BAR_RSS"; then res=PASS; pass=1; else res=FAIL; pass=0; fi
add_row "peak RSS ${LABEL[large]}/${LABEL[small]}" "$rc_" "$rf_" - "<= $BAR_RSS" "$res"
record "rss_growth_${LABEL[large]}_${LABEL[small]}" "$pass" \
    csvpipe_small_kb="${RSS[small.csvpipe]}" csvpipe_large_kb="${RSS[large.csvpipe]}" \
    file_fdw_small_kb="${RSS[small.file_fdw]}" file_fdw_large_kb="${RSS[large.file_fdw]}" \
    ratio="$rc_" file_fdw_ratio="$rf_" bar="$BAR_RSS"

LOAD_END=$(cut -d' ' -f1-3 /proc/loadavg)

cat <<EOF

csvpipe.read vs file_fdw -- PostgreSQL $(sql -c 'show server_version'), $(nproc) cores
files: narrow ${LABEL[small]} rows ($(du -h "${FILE[small]}" | cut -f1)), ${LABEL[large]} rows ($(du -h "${FILE[large]}" | cut -f1)); medians of $ROUNDS rounds, sides alternated
ratio = file_fdw time / csvpipe time (csvpipe throughput relative to file_fdw); RSS = VmHWM of a fresh backend
load average at start: $LOAD_START, at end: $LOAD_END (other work on the machine adds noise)

$TABLE

EOF
printf '%s\n' "${SUMMARY[@]}"
echo "BENCH summary checks=$n_checks passed=$n_pass failed=$((n_checks - n_pass)) wrong_results=$problems"
(IFS=,; echo "BENCH_JSON {\"rows_small\":$ROWS_SMALL,\"rows_large\":$ROWS_LARGE,\"rounds\":$ROUNDS,\"checks\":[${JSON[*]}],\"passed\":$n_pass,\"failed\":$((n_checks - n_pass)),\"wrong_results\":$problems}")

# --------------------------------------------------------- optional perf ----
if [[ $PERF == 1 ]]; then
    if ! command -v perf >/dev/null; then
        log "PERF=1 but perf is not installed"
    else
        app="csvpipe_bench_perf_$$"
        q="SELECT count(*) FROM $(from_clause csvpipe large)"
        cat "${FILE[large]}" >/dev/null
        PGAPPNAME=$app "${PSQL[@]}" -At -c "select pg_sleep(1)" -c "$q" >"$WORK/perf.out" 2>&1 &
        psql_pid=$!
        pid=""
        for ((i = 0; i < 50; i++)); do
            pid=$(sql -c "select pid from pg_stat_activity where application_name = '$app'" || true)
            [[ -z $pid ]] || break
            sleep 0.05
        done
        if [[ -z $pid ]]; then
            log "perf: could not find the backend"; wait "$psql_pid" || true
        else
            log "perf record -g -p $pid: $q"
            perf record -q -g -p "$pid" -o "$WORK/perf.data" >/dev/null 2>"$WORK/perf.err" &
            perf_pid=$!
            wait "$psql_pid" || { cat "$WORK/perf.out" >&2; log "perf: query failed"; }
            sleep 0.5
            kill -INT "$perf_pid" 2>/dev/null || true
            wait "$perf_pid" 2>/dev/null || true
            echo
            echo "perf report (csvpipe count(*) over ${LABEL[large]} rows, backend $pid):"
            perf report -i "$WORK/perf.data" --stdio --no-children -g none --sort dso,symbol --percent-limit 0.3 \
                2>/dev/null | grep -v '^$' | head -60 || true
        fi
    fi
fi

[[ $problems == 0 ]] || { log "the two sides disagree on $problems result(s)"; exit 2; }
exit 0
