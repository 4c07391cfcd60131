#!/bin/bash
# demo.sh -- `make demo`: install deps, build, install, then show csvpipe on a
# throwaway cluster (temp dir, private port and unix socket, no TCP) holding a
# generated 1M-row CSV.  Everything is stopped and removed on exit.
#
# Knobs (environment): CSVPIPE_DEMO_ROWS (default 1000000),
#                      CSVPIPE_DEMO_PORT (default 54330)
set -euo pipefail

cd "$(dirname "$0")/.." || exit 1
. test/common.sh

ROWS=${CSVPIPE_DEMO_ROWS:-1000000}
PORT=${CSVPIPE_DEMO_PORT:-54330}
WORK=

cleanup() {
    local rc=$?
    if [[ -n $WORK ]]; then
        stop_clusters "$WORK"
        rm -rf "$WORK"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

bash test/ensure_deps.sh
pg_paths
build_gen_csv
build_and_install

make_workdir csvpipe-demo
DATA=$WORK/data
CSV=$WORK/sample.csv

# ---- the cluster -------------------------------------------------------------
echo "== initdb in $DATA"
(cd "$WORK" && as_pg "$PG_BINDIR/initdb" -D "$DATA" -A trust -E UTF8 --no-locale -N) >"$WORK/initdb.log" 2>&1 || {
    cat "$WORK/initdb.log"
    exit 1
}
# Listen on a unix socket in $WORK only: no clash with other servers.
cat >>"$DATA/postgresql.conf" <<EOF

# ---- csvpipe demo ----
port = $PORT
listen_addresses = ''
unix_socket_directories = '$WORK'
fsync = off

# >>> LATER (pg_cron): preload it too and point it at the demo database:
#   shared_preload_libraries = 'csvpipe,pg_cron'
#   cron.database_name = 'postgres'
# <<<
shared_preload_libraries = 'csvpipe'
max_prepared_transactions = 8   # only mode => 'prepared' needs it: one part per worker
EOF

echo "== start (port $PORT, socket dir $WORK)"
(cd "$WORK" && as_pg "$PG_BINDIR/pg_ctl" -D "$DATA" -l "$WORK/server.log" -w -t 60 start) >/dev/null || {
    cat "$WORK/server.log"
    exit 1
}

# ---- sample data ---------------------------------------------------------------
echo "== generating $ROWS rows: test/gen/gen_csv narrow $ROWS > $CSV"
start=$(date +%s%N)
test/gen/gen_csv narrow "$ROWS" >"$CSV"
[[ $(id -u) -ne 0 ]] || chown "$PG_OS_USER:" "$CSV"
echo "   $(stat -c %s "$CSV") bytes in $((($(date +%s%N) - start) / 1000000)) ms"
echo "   first lines:"
head -n 4 "$CSV" | sed 's/^/     /'

# ---- the demo itself -------------------------------------------------------------
COLS='t(id bigint, ts timestamptz, name text, amount numeric(12,2), flag boolean)'
cat >"$WORK/demo.sql" <<EOF
\\set ON_ERROR_STOP 1
\\pset footer on
CREATE EXTENSION csvpipe;

\\echo
\\echo '== aggregate over the whole file, streamed by csvpipe.read'
\\timing on
SELECT count(*), sum(amount), min(ts), max(ts)
  FROM csvpipe.read(:'file') AS $COLS;
\\timing off

\\echo
\\echo '== first rows, typed by the column definition list'
SELECT * FROM csvpipe.read(:'file') AS $COLS LIMIT 5;

\\echo
\\echo '== the same file loaded into a table by 2 background workers (mode transaction, the default), next to COPY'
CREATE TABLE sales (id bigint, ts timestamptz, name text, amount numeric(12,2), flag boolean);
CREATE TABLE sales_copy (LIKE sales);
\\timing on
SELECT * FROM csvpipe.load(:'file', 'sales', workers => 2);
COPY sales_copy FROM :'file' WITH (FORMAT csv, HEADER true);
\\timing off
SELECT (SELECT count(*) FROM sales) AS loaded,
       (SELECT sum(amount) FROM sales) = (SELECT sum(amount) FROM sales_copy) AS same_sum_as_copy;

\\echo
\\echo '== the job, as csvpipe.jobs shows it'
SELECT job_id, state, workers, rows_loaded, rows_rejected, bytes, decision,
       finished_at - started_at AS took
  FROM csvpipe.jobs ORDER BY job_id;

\\echo
\\echo '== its chunks in the ledger (a load in chunked mode)'
TRUNCATE sales;
SELECT job_id, rows_loaded, workers FROM csvpipe.load(:'file', 'sales', workers => 2, mode => 'chunked');
SELECT job_id, count(*) AS chunks, sum(rows) AS rows, min(first_line), max(first_line)
  FROM csvpipe.chunks GROUP BY job_id;
EOF
[[ $(id -u) -ne 0 ]] || chown "$PG_OS_USER:" "$WORK/demo.sql"

echo "== psql"
(cd "$WORK" && as_pg "$PG_BINDIR/psql" -X -h "$WORK" -p "$PORT" -d postgres \
    -v file="$CSV" -e -f "$WORK/demo.sql") || {
    echo "== demo FAILED; tail of the server log:"
    tail -n 30 "$WORK/server.log"
    exit 1
}

echo "== stop"
(cd "$WORK" && as_pg "$PG_BINDIR/pg_ctl" -D "$DATA" -m fast -w stop) >/dev/null
echo "== demo done"
