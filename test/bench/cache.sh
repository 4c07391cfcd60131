#!/usr/bin/env bash
# test/bench/cache.sh -- csvpipe's shared result cache, on a throwaway cluster.
#
#   make bench-cache             (or: bash test/bench/cache.sh)
#
# Not part of `make test`: it is a report.  It builds and installs the
# extension, starts a private PostgreSQL cluster (own temp dir, own socket dir,
# no TCP) with csvpipe preloaded, and measures, in one run:
#
# A. One 1M-row narrow file (test/gen/gen_csv narrow), four sides per query,
#    rotated every round, medians:
#      cold    csvpipe.read(file, cache => false)   parses and converts the file
#      store   csvpipe.read(file) on an empty cache: parses, converts and
#              stores the rows (the cost of a miss)
#      cached  csvpipe.read(file)                  served from the cache (hits)
#      heap    a heap table holding the same rows  (same query, for reference)
#    for  count(*)            (every column converted when cold)
#         sum(amount)         (one column converted when cold)
#         all columns         (count, sum(id), max(ts), max(name), sum(amount),
#                              count of flag)
#    Bar: cold / cached >= 10 for count(*), the cost of the read itself.  The
#    other two queries show how much of their time is the query's own work
#    (aggregates), which the cache does not remove: see the heap column.
#
# B. A repeated-query workload over 20 files (WL_ROWS rows each) with the
#    cache sized to hold 15 of their entries, not 16.  Each workload is
#    WL_QUERIES count(*) reads in one session, after emptying the cache:
#      hot15     uniformly over 15 of the files: the working set fits
#      skew20    over all 20, 80% of the queries on 10 of them
#      uniform20 uniformly over all 20: the working set does not fit
#      cyclic20  the 20 files in turn, again and again: LRU's worst case
#    It reports hits, misses, evictions and the hit ratio from
#    csvpipe.cache_stats.  Bar: hot15 hit ratio >= 0.85.
#
# Each timed query in A is one fresh psql session: an untimed EXPLAIN warms
# the catalog caches, then `\timing` measures the query end to end as the
# client sees it.  Each cold run is preceded by an untimed `cat file >
# /dev/null` (this kind of VM drops idle page cache).
#
# Environment:
#   ROWS=1000000  ROUNDS=5  SEED=1
#   WL_FILES=20  WL_FIT=15  WL_ROWS=20000  WL_QUERIES=300
#   BENCH_TMPDIR=/tmp  SHARED_BUFFERS=1GB  EXTRA_CONF='line1\nline2'
#   KEEP=1  SKIP_BUILD=1  GEN=path  BENCH_PORT=54331
#
# Output: progress on stderr; the result tables, "BENCH ..." lines and one
# "BENCH_JSON {...}" line on stdout.  Exit status: 0 when the benchmark ran
# (bars missed or not); non-zero when something broke (build, cluster, a
# query error, sides disagreeing on a result, or a "cached" run that missed).

set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
ROWS=${ROWS:-1000000}
ROUNDS=${ROUNDS:-5}
WL_FILES=${WL_FILES:-20}
WL_FIT=${WL_FIT:-15}
WL_ROWS=${WL_ROWS:-20000}
WL_QUERIES=${WL_QUERIES:-300}

BAR_SPEEDUP=10          # cold / cached must be >= this (count(*))
BAR_HIT_RATIO=0.85      # hot15 hit ratio must be >= this


BENCH_NAME=bench
# shellcheck source=test/bench/lib.sh
source "$REPO/test/bench/lib.sh"

for v in ROWS ROUNDS SEED WL_FILES WL_FIT WL_ROWS WL_QUERIES; do
    [[ ${!v} =~ ^[1-9][0-9]*$ ]] || die "$v must be a positive integer (got '${!v}')"
done
(( WL_FIT < WL_FILES )) || die "WL_FIT must be smaller than WL_FILES"

# ------------------------------------------------------- build, cluster -----
bench_build
bench_generator
bench_cluster bench-cache 54331

bench_conf "csvpipe benchmark (test/bench/cache.sh)"
cat >>"$PGDATA/postgresql.conf" <<EOF
shared_buffers = '$SHARED_BUFFERS'
csvpipe.cache_size = '1GB'
max_parallel_workers_per_gather = 0
jit = off
fsync = off
synchronous_commit = off
full_page_writes = off
autovacuum = off
log_min_messages = warning
EOF
bench_start
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
log "server: $(sql -c 'show server_version')"

set_conf() {  # name value: ALTER SYSTEM + reload, wait until a new session sees it
    local i
    sql -c "ALTER SYSTEM SET $1 = '$2'" -c "SELECT pg_reload_conf()" >/dev/null
    for ((i = 0; i < 100; i++)); do
        [[ $(sql -c "SELECT current_setting('$1') = '$2'") == t ]] && return 0
        sleep 0.05
    done
    die "$1 did not become $2"
}

# ------------------------------------------------------------ the files -----
FILES=$WORK/files
mkdir -p "$FILES"
chmod 755 "$FILES"
# files are made old: a file modified within the second before a read
# starts is read but not stored
OLD=$(date -d '1 hour ago' '+%Y%m%d%H%M.%S')

BIG=$FILES/narrow_${ROWS}_s$SEED.csv
log "generating $BIG ($ROWS rows)"
"$GEN" narrow "$ROWS" "$SEED" >"$BIG" || die "generator failed"
touch -t "$OLD" "$BIG"
chmod 644 "$BIG"
as_pg test -r "$BIG" || die "$BIG is not readable by $PGUSER_OS"
log "  $(du -h "$BIG" | cut -f1)"

log "generating $WL_FILES workload files ($WL_ROWS rows each)"
declare -a WF
for ((i = 1; i <= WL_FILES; i++)); do
    WF[$i]=$FILES/wl_$i.csv
    "$GEN" narrow "$WL_ROWS" "$((SEED * 1000 + i))" >"${WF[$i]}" || die "generator failed"
    touch -t "$OLD" "${WF[$i]}"
    chmod 644 "${WF[$i]}"
done

sql >/dev/null <<EOF || die "setup failed"
CREATE EXTENSION csvpipe;
CREATE TABLE heap_narrow ($COLS);
COPY heap_narrow FROM '$BIG' WITH (FORMAT csv, HEADER true);
VACUUM (FREEZE, ANALYZE) heap_narrow;
EOF
log "heap table: $(sql -c "select pg_size_pretty(pg_table_size('heap_narrow'))")"

# ------------------------------------------------------------ measuring -----
time_query() {  # QUERY [FILE to cat first] -> T_MS, T_OUT
    local q=$1 file=${2:-} out
    [[ -z $file ]] || cat "$file" >/dev/null
    out=$("${PSQL[@]}" -At \
            -c "EXPLAIN (COSTS OFF) $q" \
            -c '\echo @@BEGIN' \
            -c '\timing on' \
            -c "$q" 2>&1) || { printf '%s\n' "$out" >&2; die "query failed: $q"; }
    T_MS=$(printf '%s\n' "$out" | sed -n 's/^Time: \([0-9.]*\) ms.*/\1/p' | tail -n1)
    [[ -n $T_MS ]] || { printf '%s\n' "$out" >&2; die "no timing in psql output for: $q"; }
    T_OUT=$(printf '%s\n' "$out" | sed -n '/^@@BEGIN$/,$p' | sed '1d' | grep -v '^Time: ')
}


from_clause() {  # side
    case $1 in
        cold) echo "csvpipe.read('$BIG', cache => false) AS t($COLS)" ;;
        cached | store) echo "csvpipe.read('$BIG') AS t($COLS)" ;;
        heap) echo "heap_narrow" ;;
    esac
}

declare -A SEL=(
    [count]="count(*)"
    [sum]="sum(amount)"
    [all]="count(*), sum(id), max(ts), max(name), sum(amount), count(*) FILTER (WHERE flag)"
)
KINDS="count sum all"
declare -A MED RES
problems=0

# the cache entry the cached side is served from (every column converted)
sql -c "SELECT count(*) FROM $(from_clause cached)" >/dev/null
ENTRY_BYTES=$(sql -c "SELECT bytes FROM csvpipe.cache")
[[ -n $ENTRY_BYTES ]] || die "the 1M-row read was not cached"
log "cache entry: $ENTRY_BYTES bytes for $ROWS rows"
MISSES_BEFORE=$(sql -c "SELECT misses FROM csvpipe.cache_stats")

for kind in $KINDS; do
    declare -a t_cold=() t_store=() t_cached=() t_heap=()
    for ((r = 1; r <= ROUNDS; r++)); do
        case $((r % 4)) in
            1) order="cold store cached heap" ;;
            2) order="store cached heap cold" ;;
            3) order="cached heap cold store" ;;
            0) order="heap cold store cached" ;;
        esac
        for side in $order; do
            file=; [[ $side == cold || $side == store ]] && file=$BIG
            [[ $side != store ]] || sql -c "SELECT csvpipe.cache_invalidate()" >/dev/null
            time_query "SELECT ${SEL[$kind]} FROM $(from_clause $side)" "$file"
            log "$(printf '%-6s round %d  %-7s %10.1f ms  -> %s' "$kind" "$r" "$side" "$T_MS" "$T_OUT")"
            case $side in
                cold) t_cold+=("$T_MS") ;;
                store) t_store+=("$T_MS") ;;
                cached) t_cached+=("$T_MS") ;;
                heap) t_heap+=("$T_MS") ;;
            esac
            if [[ -z ${RES[$kind]:-} ]]; then
                RES[$kind]=$T_OUT
            elif [[ ${RES[$kind]} != "$T_OUT" ]]; then
                log "WARNING: $kind $side gave '$T_OUT', expected '${RES[$kind]}'"
                problems=$((problems + 1))
            fi
        done
    done
    MED[$kind.cold]=$(median "${t_cold[@]}")
    MED[$kind.store]=$(median "${t_store[@]}")
    MED[$kind.cached]=$(median "${t_cached[@]}")
    MED[$kind.heap]=$(median "${t_heap[@]}")
    unset t_cold t_store t_cached t_heap
done
# every store run misses (and stores), every cached run hits
MISSES_AFTER=$(sql -c "SELECT misses FROM csvpipe.cache_stats")
n_kinds=$(wc -w <<<"$KINDS")
if (( MISSES_AFTER - MISSES_BEFORE != ROUNDS * n_kinds )); then
    log "WARNING: $((MISSES_AFTER - MISSES_BEFORE)) misses, expected $((ROUNDS * n_kinds)) (the store runs): a cached run missed"
    problems=$((problems + 1))
fi

# ------------------------------------------------------------ workload -----
# one file's entry, to size the cache for WL_FIT entries and not WL_FIT + 1
sql -c "SELECT csvpipe.cache_invalidate()" >/dev/null
wl_query() { echo "SELECT count(*) FROM csvpipe.read('${WF[$1]}'$2) AS t($COLS);"; }
sql -c "$(wl_query 1 '')" >/dev/null
WL_ENTRY=$(sql -c "SELECT bytes FROM csvpipe.cache")
[[ -n $WL_ENTRY ]] || die "a workload file was not cached"
# the largest whole number of MB below WL_FIT + 1 entries; it must leave a
# quarter of an entry to spare (entries differ a little in size, and a read
# reserves up to an eighth more than its entry while it builds)
WL_CACHE_MB=$(( (WL_ENTRY * (WL_FIT + 1) - 1) / 1048576 ))
(( WL_CACHE_MB * 1048576 >= WL_ENTRY * WL_FIT + WL_ENTRY / 4 )) \
    || die "cannot size the cache in whole MB for $WL_FIT entries of $WL_ENTRY bytes (change WL_ROWS)"
set_conf csvpipe.cache_size "${WL_CACHE_MB}MB"
log "workload: entries of $WL_ENTRY bytes, csvpipe.cache_size = ${WL_CACHE_MB}MB (holds $WL_FIT, not $((WL_FIT + 1)))"

# the sequences of file numbers (awk's rand with a fixed seed)
make_sequence() {  # name
    awk -v kind="$1" -v n="$WL_QUERIES" -v files="$WL_FILES" -v fit="$WL_FIT" -v seed="$SEED" 'BEGIN {
        srand(seed);
        for (i = 0; i < n; i++) {
            if (kind == "hot15") f = 1 + int(rand() * fit);
            else if (kind == "uniform20") f = 1 + int(rand() * files);
            else if (kind == "cyclic20") f = 1 + i % files;
            else if (kind == "skew20") {
                if (rand() < 0.8) f = 1 + int(rand() * files / 2);
                else f = 1 + files / 2 + int(rand() * (files - files / 2));
            }
            print f;
        }
    }'
}

WORKLOADS="hot15 skew20 uniform20 cyclic20"
declare -A WL
for w in $WORKLOADS hot15_nocache; do
    base=${w%_nocache}
    opts=; [[ $w == *_nocache ]] && opts=", cache => false"
    script=$WORK/$w.sql
    : >"$script"
    while read -r f; do wl_query "$f" "$opts" >>"$script"; done < <(make_sequence "$base")
    for ((i = 1; i <= WL_FILES; i++)); do cat "${WF[$i]}" >/dev/null; done
    sql -c "SELECT csvpipe.cache_invalidate()" -c "SELECT csvpipe.cache_reset_stats()" >/dev/null
    t0=$(date +%s.%N)
    sql -f "$script" >/dev/null || die "workload $w failed"
    t1=$(date +%s.%N)
    ms=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.0f", (b - a) * 1000 }')
    stats=$(sql -F ' ' -c "SELECT hits, misses, evictions, coalesce(hit_ratio, 0) FROM csvpipe.cache_stats")
    WL[$w]="$stats $ms"
    log "workload $w: hits misses evictions ratio = $stats, $ms ms"
done

# ---------------------------------------------------------------- report ----
div()    { awk -v a="$1" -v b="$2" 'BEGIN { if (b == 0) print "inf"; else printf "%.1f", a / b }'; }
ge()     { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a >= b) }'; }

SUMMARY=(); JSON=(); n_checks=0; n_pass=0
record() {  # name pass(1/0/-) key=value...
    local name=$1 pass=$2 j kv; shift 2
    SUMMARY+=("BENCH check=$name $* pass=$pass")
    j="\"check\":\"$name\""
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

AFMT='%-12s %10s %10s %10s %10s %10s %11s %11s %7s %6s\n'
TABLE_A=$(printf "$AFMT" query cold store cached heap store/cold cold/cached heap/cached bar result
          printf "$AFMT" ------------ ---------- ---------- ---------- ---------- ---------- ----------- ----------- ------- ------)
declare -A QNAME=([count]="count(*)" [sum]="sum(amount)" [all]="all columns")
for kind in $KINDS; do
    c=${MED[$kind.cold]} st=${MED[$kind.store]} h=${MED[$kind.cached]} p=${MED[$kind.heap]}
    speedup=$(div "$c" "$h")
    overhead=$(awk -v a="$st" -v b="$c" 'BEGIN { printf "%.2f", a / b }')
    vsheap=$(div "$p" "$h")
    if [[ $kind != count ]]; then bar=-; res=-; pass=-
    elif ge "$speedup" "$BAR_SPEEDUP"; then bar=">= $BAR_SPEEDUP"; res=PASS; pass=1
    else bar=">= $BAR_SPEEDUP"; res=FAIL; pass=0; fi
    TABLE_A+=$'\n'$(printf "$AFMT" "${QNAME[$kind]}" "$(fmt_ms "$c")" "$(fmt_ms "$st")" "$(fmt_ms "$h")" \
                    "$(fmt_ms "$p")" "$overhead" "$speedup" "$vsheap" "$bar" "$res")
    record "cached_$kind" "$pass" rows="$ROWS" cold_ms="$c" store_ms="$st" cached_ms="$h" heap_ms="$p" \
        store_over_cold="$overhead" speedup="$speedup" heap_over_cached="$vsheap"
done

BFMT='%-12s %8s %8s %10s %10s %12s %10s %6s\n'
TABLE_B=$(printf "$BFMT" workload hits misses evictions hit_ratio time bar result
          printf "$BFMT" ------------ -------- -------- ---------- ---------- ------------ ---------- ------)
for w in $WORKLOADS hot15_nocache; do
    read -r hits misses evictions ratio ms <<<"${WL[$w]}"
    if [[ $w == hot15 ]]; then
        bar=">= $BAR_HIT_RATIO"
        if ge "$ratio" "$BAR_HIT_RATIO"; then res=PASS; pass=1; else res=FAIL; pass=0; fi
    else bar=-; res=-; pass=-; fi
    if [[ $w == hot15_nocache ]]; then hits=-; misses=-; evictions=-; ratio="(off)"; fi
    TABLE_B+=$'\n'$(printf "$BFMT" "$w" "$hits" "$misses" "$evictions" "$ratio" "$(fmt_ms "$ms")" "$bar" "$res")
    record "workload_$w" "$pass" queries="$WL_QUERIES" hits="$hits" misses="$misses" \
        evictions="$evictions" hit_ratio="$ratio" ms="$ms"
done

LOAD_END=$(cut -d' ' -f1-3 /proc/loadavg)

cat <<EOF

csvpipe result cache -- PostgreSQL $(sql -c 'show server_version'), $(nproc) cores
A. narrow file, $ROWS rows ($(du -h "$BIG" | cut -f1)), cache entry $((ENTRY_BYTES / 1048576)) MB; medians of $ROUNDS rounds, sides rotated
   cold = csvpipe.read(..., cache => false); cached = csvpipe.read(...) served from the cache;
   heap = the same rows in a heap table (shared_buffers $SHARED_BUFFERS, no parallel query)
B. $WL_QUERIES count(*) reads per workload over $WL_FILES files of $WL_ROWS rows; entries of $((WL_ENTRY / 1024)) kB,
   csvpipe.cache_size = ${WL_CACHE_MB}MB holds $WL_FIT of them; cache emptied before each workload
load average at start: $LOAD_START, at end: $LOAD_END

$TABLE_A

$TABLE_B

EOF
printf '%s\n' "${SUMMARY[@]}"
echo "BENCH summary checks=$n_checks passed=$n_pass failed=$((n_checks - n_pass)) problems=$problems"
(IFS=,; echo "BENCH_JSON {\"rows\":$ROWS,\"rounds\":$ROUNDS,\"checks\":[${JSON[*]}],\"passed\":$n_pass,\"failed\":$((n_checks - n_pass)),\"problems\":$problems}")

[[ $problems == 0 ]] || { log "$problems problem(s): wrong results or cache misses on the cached side"; exit 2; }
exit 0
