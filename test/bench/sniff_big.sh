#!/usr/bin/env bash
# test/bench/sniff_big.sh -- csvpipe.sniff of a 1 GB file returns in well
# under a second: it reads a sample (4MB by default), not the file.
#
#   bash test/bench/sniff_big.sh
#
# Not part of `make test`: it is a report (doc/benchmarks.md quotes
# it).  It builds and installs the extension, starts a private cluster,
# generates a narrow CSV file of SIZE_MB (default 1024) with test/gen/gen_csv
# (id, ts timestamptz, name, amount, flag) and times, in fresh sessions,
# ROUNDS times each (median):
#
#   SELECT csvpipe.sniff(big)                      the default 4MB sample
#   SELECT csvpipe.sniff(big, sample_size => 1MB)
#   COPY t FROM <the big file's first MB>          a reference: the work of
#                                                  reading 1MB into a table
#
# with the page cache warm (the sample read before) and cold (the file's
# pages dropped with posix_fadvise DONTNEED through dd, when possible).  It
# checks what sniff found: the dialect, the header and the types the
# generator writes (bigint ids: the sample is not the whole file).
#
# Environment:
#   SIZE_MB=1024  ROUNDS=5  SEED=1  BENCH_TMPDIR=/tmp  KEEP=1  SKIP_BUILD=1
#   DATA_DIR= (keep/reuse the generated file here)  PG_CONFIG=pg_config
set -euo pipefail

REPO=$(cd "$(dirname "$0")/../.." && pwd)
BENCH_NAME=bench-sniff-big
# shellcheck source=test/bench/lib.sh
. "$REPO/test/bench/lib.sh"

SIZE_MB=${SIZE_MB:-1024}
ROUNDS=${ROUNDS:-5}

bench_build
bench_generator
bench_cluster sniffb 55473
bench_conf "sniff_big.sh"
cat >>"$PGDATA/postgresql.conf" <<EOF
jit = off
log_min_messages = warning
EOF
bench_start
bench_files_dir

big=$FILES/big_${SIZE_MB}mb.csv
# ~55 bytes a row
rows=$((SIZE_MB * 1024 * 1024 / 55))
if [[ ! -s $big ]]; then
    log "generating $big ($rows rows)"
    "$GEN" narrow "$rows" "$SEED" >"$big"
fi
size=$(stat -c %s "$big")
first=$FILES/first_mb.csv
# the first MB, cut after its last whole line
head -c $((1024 * 1024)) "$big" | sed '$d' >"$first"
chmod 644 "$big" "$first"
log "file $(fmt_mb $((size / 1024))), reference $(fmt_mb $(($(stat -c %s "$first") / 1024)))"

sql -c "CREATE EXTENSION csvpipe" >/dev/null
sql -c "CREATE UNLOGGED TABLE t ($COLS)" >/dev/null

# what sniff says about it
found=$(sql -c "SELECT concat_ws(' | ', delimiter, quote, header, skip_rows, columns, types, whole_file, sample_bytes)
                FROM csvpipe.sniff('$big')")
want=', | " | t | 0 | {id,ts,name,amount,flag} | {bigint,timestamptz,text,numeric,boolean} | f | 4194304'
log "sniff: $found"
[[ $found == "$want" ]] || die "sniff found '$found', expected '$want'"

drop_cache() {   # the file's pages out of the page cache, if the kernel lets us
    dd if="$1" iflag=nocache count=0 status=none 2>/dev/null || true
    dd of="$1" oflag=nocache conv=notrunc,fdatasync count=0 status=none 2>/dev/null || true
}

time_ms() {   # QUERY: one fresh session, \timing of the query alone
    "${PSQL[@]}" -c '\timing on' -c "$1" 2>&1 | awk '/^Time:/ { v = $2 } END { print v }'
}

declare -A times
for cache in warm cold; do
    for what in sniff sniff1mb copy1mb; do
        times[$cache.$what]=
    done
    for ((r = 1; r <= ROUNDS; r++)); do
        for what in sniff sniff1mb copy1mb; do
            case $what in
                sniff) q="SELECT csvpipe.sniff('$big') IS NOT NULL" ; f=$big ;;
                sniff1mb) q="SELECT csvpipe.sniff('$big', sample_size => 1048576) IS NOT NULL" ; f=$big ;;
                copy1mb) q="TRUNCATE t; COPY t FROM '$first' WITH (FORMAT csv, HEADER true)" ; f=$first ;;
            esac
            if [[ $cache == cold ]]; then drop_cache "$f"; else head -c $((8 * 1024 * 1024)) "$f" >/dev/null; fi
            times[$cache.$what]+=" $(time_ms "$q")"
        done
    done
done

echo
echo "csvpipe.sniff of a $(fmt_mb $((size / 1024))) file ($rows rows), median of $ROUNDS, fresh sessions"
printf '%-44s %12s %12s\n' "" "warm cache" "cold cache"
printf '%-44s %12s %12s\n' "sniff (default sample, 4MB)" \
    "$(fmt_ms "$(median ${times[warm.sniff]})")" "$(fmt_ms "$(median ${times[cold.sniff]})")"
printf '%-44s %12s %12s\n' "sniff (sample_size => 1MB)" \
    "$(fmt_ms "$(median ${times[warm.sniff1mb]})")" "$(fmt_ms "$(median ${times[cold.sniff1mb]})")"
printf '%-44s %12s %12s\n' "reference: COPY of the file's first MB" \
    "$(fmt_ms "$(median ${times[warm.copy1mb]})")" "$(fmt_ms "$(median ${times[cold.copy1mb]})")"
