#!/usr/bin/env bash
# test/bench/modes.sh -- csvpipe.load's three modes against COPY FROM, on a
# throwaway cluster (test/bench/lib.sh).
#
#   bash test/bench/modes.sh
#   NARROW_ROWS="3000000 10000000" WIDE_ROWS=1000000 ROUNDS=1 (the defaults)
#   WORKERS=2 (the workers of every csvpipe load)
#
# Not part of `make test`: it is a report.  For each file (gen_csv narrow
# files of NARROW_ROWS rows, wide files of WIDE_ROWS rows) and each target
# kind (plain: no index; pk: PRIMARY KEY (id)), in one run, with the target
# dropped and created again, a CHECKPOINT and a `cat` of the file before
# every timed statement (untimed), medians of ROUNDS rounds of:
#
#   COPY t FROM '<file>' (FORMAT csv, HEADER)                 the reference
#   csvpipe.load(..., workers => W)                             transaction mode
#   csvpipe.load(..., workers => W, mode => 'prepared')
#   csvpipe.load(..., workers => W, mode => 'chunked')
#   csvpipe.load(..., workers => 1)                             transaction mode
#
# Times are psql's \timing of the statement.  Every load is checked: count(*)
# must be the file's rows.  For the transaction-mode loads the leader's CPU
# time (utime + stime of its backend, /proc/PID/stat) is measured too; its
# share of the wall time says how close the leader is to saturation, and
#
#   predicted time with N workers = max(leader CPU, worker CPU / N)
#
# where worker CPU is the 1-worker load's wall time minus nothing (one worker
# converts the whole file while the leader inserts, on separate cores: the
# slower of the two sets the pace, so with 1 worker the wall time bounds the
# worker's total work from above).  The bar: transaction mode with 2 workers
# >= 1.5x COPY on the plain narrow table.
set -euo pipefail

REPO=$(cd "$(dirname "$0")/../.." && pwd)
BENCH_NAME=bench-modes
. "$REPO/test/bench/lib.sh"

NARROW_ROWS=${NARROW_ROWS:-"3000000 10000000"}
WIDE_ROWS=${WIDE_ROWS:-1000000}
ROUNDS=${ROUNDS:-1}
WORKERS=${WORKERS:-2}
WIDE_COLS="id bigint, $(for i in $(seq 1 10); do printf 'c%d int4, ' "$i"; done)$(for i in $(seq 1 9); do printf 't%d text, ' "$i"; done)$(for i in $(seq 1 9); do printf 'f%d float8, ' "$i"; done)f10 float8"

bench_build
bench_generator
bench_cluster modes "${BENCH_PORT:-55433}"
bench_conf "modes.sh"
bench_conf_loads
bench_start
bench_files_dir
sql -c "CREATE EXTENSION csvpipe"

# run SQL in a fresh session; print "<ms> <leader cpu ticks>"
timed() {   # SQL
    local out
    out=$("${PSQL[@]}" -At <<EOF
SELECT pg_backend_pid() AS pid \gset
\setenv LEADER_PID :pid
\o /dev/null
SELECT 1;
\o
\! awk '{ print \$14 + \$15 }' /proc/\$LEADER_PID/stat > $WORK/cpu0
\timing on
$1;
\timing off
\! awk '{ print \$14 + \$15 }' /proc/\$LEADER_PID/stat > $WORK/cpu1
EOF
)
    local ms
    ms=$(printf '%s\n' "$out" | awk '/^Time:/ { print $2 }' | tail -n1)
    echo "$ms $(( $(cat "$WORK/cpu1") - $(cat "$WORK/cpu0") ))"
}

prepare() {   # TABLE COLS KIND FILE
    local pk=""
    [[ $3 == pk ]] && pk=", PRIMARY KEY (id)"
    sql -c "DROP TABLE IF EXISTS $1; CREATE TABLE $1 ($2$pk)" -c "CHECKPOINT" >/dev/null
    cat "$4" >/dev/null
}

HZ=$(getconf CLK_TCK)
report=()
report+=("| file | target | COPY | transaction ($WORKERS w) | x COPY | prepared ($WORKERS w) | x COPY | chunked ($WORKERS w) | x COPY | leader CPU share ($WORKERS w) | transaction (1 w) | predicted 4 / 8 / 16 w |")
report+=("|---|---|---|---|---|---|---|---|---|---|---|---|")

run_file() {   # LABEL FILE COLS ROWS
    local label=$1 file=$2 cols=$3 rows=$4 kind side r t ms cpu n
    for kind in plain pk; do
        declare -A times=() cpus=()
        for r in $(seq 1 "$ROUNDS"); do
            for side in copy txn prepared chunked txn1; do
                prepare bt "$cols" "$kind" "$file"
                case $side in
                    copy) t=$(timed "COPY bt FROM '$file' (FORMAT csv, HEADER)") ;;
                    txn) t=$(timed "SELECT * FROM csvpipe.load('$file', 'bt', workers => $WORKERS)") ;;
                    prepared) t=$(timed "SELECT * FROM csvpipe.load('$file', 'bt', workers => $WORKERS, mode => 'prepared')") ;;
                    chunked) t=$(timed "SELECT * FROM csvpipe.load('$file', 'bt', workers => $WORKERS, mode => 'chunked')") ;;
                    txn1) t=$(timed "SELECT * FROM csvpipe.load('$file', 'bt', workers => 1)") ;;
                esac
                n=$(sql -c "SELECT count(*) FROM bt")
                [[ $n == "$rows" ]] || die "$label $kind $side: $n rows, expected $rows"
                ms=${t% *}; cpu=${t#* }
                times[$side]+="$ms "
                cpus[$side]+="$cpu "
                log "$label $kind $side: $ms ms, leader CPU $((cpu * 1000 / HZ)) ms"
            done
        done
        local copy txn prep chunk txn1 lcpu wcpu
        copy=$(median ${times[copy]}); txn=$(median ${times[txn]})
        prep=$(median ${times[prepared]}); chunk=$(median ${times[chunked]})
        txn1=$(median ${times[txn1]})
        lcpu=$(median ${cpus[txn]}); lcpu=$(awk -v c="$lcpu" -v hz="$HZ" 'BEGIN { printf "%.1f", c * 1000 / hz }')
        wcpu=$txn1
        report+=("$(awk -v f="$label" -v k="$kind" -v c="$copy" -v t="$txn" -v p="$prep" -v ch="$chunk" \
            -v l="$lcpu" -v t1="$txn1" -v w="$wcpu" 'function mx(a, b) { return a > b ? a : b }
            BEGIN { printf "| %s | %s | %.0f ms | %.0f ms | %.2f | %.0f ms | %.2f | %.0f ms | %.2f | %.0f%% (%.0f ms) | %.0f ms | %.0f / %.0f / %.0f ms |",
                f, k, c, t, c / t, p, c / p, ch, c / ch, 100 * l / t, l, t1, mx(l, w / 4), mx(l, w / 8), mx(l, w / 16) }')")
    done
}

for rows in $NARROW_ROWS; do
    f=$FILES/narrow_$rows.csv
    log "generating $f"
    "$GEN" narrow "$rows" "$SEED" >"$f"
    chmod 644 "$f"
    run_file "narrow $(human "$rows")" "$f" "$COLS" "$rows"
    rm -f "$f"
done
for rows in $WIDE_ROWS; do
    f=$FILES/wide_$rows.csv
    log "generating $f"
    "$GEN" wide "$rows" "$SEED" >"$f"
    chmod 644 "$f"
    run_file "wide $(human "$rows")" "$f" "$WIDE_COLS" "$rows"
    rm -f "$f"
done

echo
echo "csvpipe.load modes vs COPY ($(nproc) cores, shared_buffers $SHARED_BUFFERS, $ROUNDS round(s), medians)"
printf '%s\n' "${report[@]}"
