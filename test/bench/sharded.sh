#!/usr/bin/env bash
# test/bench/sharded.sh -- loading into a table sharded over postgres_fdw
# (issue 14): COPY vs INSERT ... SELECT FROM csvpipe.read vs csvpipe.load
# (transaction and chunked mode, 1 and 2 workers), in one run.
#
#   bash test/bench/sharded.sh
#   ROWS="200000 1000000" ROUNDS=3 BATCH_SIZE=1000 SHARED_BUFFERS=1GB (per cluster)
#   BENCH_WORKERS="1 2" (the defaults)
#
# Not part of `make test`: it is a report.  The clusters are those of the
# sharded-target tests, test/perl/CsvpipeShards.pm (a coordinator with
# csvpipe preloaded and two shard clusters, unix sockets only, stopped when
# the driver ends): `sales` PARTITION BY HASH (id), two local partitions
# and one postgres_fdw foreign partition on each shard, batch_size
# BATCH_SIZE.  test/bench/sharded.pl runs the statements and checks every
# load (rows per server add up to the file's); see its header for the
# method.  Prints, per file, each statement's median time and its ratio to
# COPY's and to INSERT ... SELECT's (above 1 = faster), and the CPU time
# the machine was busy meanwhile (all cores, all three clusters).
set -euo pipefail

REPO=$(cd "$(dirname "$0")/../.." && pwd)
BENCH_NAME=bench-sharded
. "$REPO/test/bench/lib.sh"

ROWS=${ROWS:-"200000 1000000"}
ROUNDS=${ROUNDS:-3}
BATCH_SIZE=${BATCH_SIZE:-1000}
BENCH_WORKERS=${BENCH_WORKERS:-"1 2"}

bench_build postgres_fdw
bench_generator
bench_workdir sharded 0      # work dir and exit trap; the clusters are the driver's
bench_files_dir
[[ $as_root == 1 ]] && chown postgres: "$FILES"

files=()
for rows in $ROWS; do
    f=$FILES/narrow_$rows.csv
    log "generating $f"
    "$GEN" narrow "$rows" "$SEED" >"$f"
    chmod 644 "$f"
    files+=("$rows:$f")
done

# PostgreSQL::Test::Cluster and the pg_regress it runs (--config-auth), from PGXS
PGXS_SRC=$(dirname "$("$PG_CONFIG" --pgxs)")/../../src
PG_PERL=$PGXS_SRC/test/perl
[[ -e $PG_PERL/PostgreSQL/Test/Cluster.pm && -x $PGXS_SRC/test/regress/pg_regress ]] \
    || die "PostgreSQL::Test::Cluster or pg_regress not found under $PGXS_SRC (postgresql-server-dev)"
mkdir -p "$WORK/tmp_check" "$WORK/log"
[[ $as_root == 1 ]] && chown -R postgres: "$WORK/tmp_check" "$WORK/log"
log "running test/bench/sharded.pl (log: $WORK/log/regress_log_sharded)"
(cd "$WORK" && as_pg env PATH="$PGBIN:$PATH" TMPDIR="$WORK" TESTDATADIR="$WORK/tmp_check" \
    PG_REGRESS="$PGXS_SRC/test/regress/pg_regress" \
    TESTLOGDIR="$WORK/log" BENCH_FILES="${files[*]}" ROUNDS="$ROUNDS" REPORT="$WORK/report.md" \
    BATCH_SIZE="$BATCH_SIZE" SHARED_BUFFERS="$SHARED_BUFFERS" BENCH_WORKERS="$BENCH_WORKERS" \
    perl -I "$PG_PERL" -I "$REPO/test/perl" "$REPO/test/bench/sharded.pl" 2>&1 | { grep -v '^ok \|^1\.\.' || true; } >&2) \
    || die "the driver failed (KEEP=1 keeps $WORK)"
[[ -s $WORK/report.md ]] || die "no report (see $WORK/log)"

echo
echo "Loading into a table sharded over postgres_fdw"
cat "$WORK/report.md"
