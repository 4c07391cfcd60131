# test/bench/lib.sh -- what the benchmark scripts share, sourced by each.
#
# Owns: logging, building and installing the extension (make, make install,
# with test/ensure_deps.sh when the build dependencies are missing), the CSV
# generator, a private throwaway cluster (temp dir, own socket dir, no TCP,
# initdb, start, stopped and removed on exit even on failure), psql helpers
# and small formatters.  The scripts keep their own settings, sides, checks
# and reports.
#
# The sourcing script sets, before sourcing:
#   REPO          the repository root
#   BENCH_NAME    the log prefix (bench, bench-load, ...)
# Settings every script takes from the environment (each script's header
# documents them): SEED=1, SHARED_BUFFERS=1GB, BENCH_TMPDIR=$TMPDIR or /tmp,
# KEEP=0, SKIP_BUILD=0, PG_CONFIG=pg_config.  COLS is the column list of the
# generator's narrow files.
# Afterwards it calls, in this order:
#   bench_build [extension...]   unless SKIP_BUILD=1: make, make install;
#                                sets PGBIN, checks that csvpipe and the named
#                                contrib extensions are installed
#   bench_generator              sets GEN (test/gen/gen_csv, built if stale)
#   bench_cluster TAG PORT       work dir $BENCH_TMPDIR/csvpipe-TAG.XXXXXX,
#                                initdb; sets WORK PGDATA SOCK PORT
#                                SERVER_LOG PGUSER_OS, as_pg, the exit trap
#                                (bench_workdir + bench_initdb, for a script
#                                that needs the work dir before building)
#   bench_conf HEADING           the settings every benchmark needs; append
#                                the script's own to $PGDATA/postgresql.conf
#   bench_start                  EXTRA_CONF, start, PSQL and sql()
# Background processes the script starts go into bg_pids; the exit trap
# kills them.  A script that needs more cleanup defines bench_cleanup_hook.

log() { printf '[%s %s] %s\n' "$BENCH_NAME" "$(date +%T)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

SEED=${SEED:-1}
SHARED_BUFFERS=${SHARED_BUFFERS:-1GB}
BENCH_TMPDIR=${BENCH_TMPDIR:-${TMPDIR:-/tmp}}
KEEP=${KEEP:-0}
SKIP_BUILD=${SKIP_BUILD:-0}
PG_CONFIG=${PG_CONFIG:-pg_config}
COLS='id bigint, ts timestamptz, name text, amount numeric(12,2), flag boolean'
as_root=0; [[ $(id -u) -eq 0 ]] && as_root=1
started=0
bg_pids=()
WORK=

bench_build() {
    local ext
    if [[ $SKIP_BUILD != 1 ]]; then
        if ! command -v "$PG_CONFIG" >/dev/null || [[ -z $("$PG_CONFIG" --pgxs 2>/dev/null) ]] \
           || [[ ! -e /usr/include/csv.h ]]; then
            log "build dependencies missing: running test/ensure_deps.sh"
            if [[ $as_root == 1 ]]; then bash "$REPO/test/ensure_deps.sh"
            else sudo -n bash "$REPO/test/ensure_deps.sh" || die "cannot install dependencies (need root)"; fi
        fi
        log "building the extension (make)"
        make -C "$REPO" -s PG_CONFIG="$PG_CONFIG" >&2 || die "make failed"
        log "installing the extension (make install)"
        if [[ $as_root == 1 ]] || [[ -w $("$PG_CONFIG" --pkglibdir) && -w $("$PG_CONFIG" --sharedir)/extension ]]; then
            make -C "$REPO" -s PG_CONFIG="$PG_CONFIG" install >&2 || die "make install failed"
        elif sudo -n true 2>/dev/null; then
            sudo -n make -C "$REPO" -s PG_CONFIG="$PG_CONFIG" install >&2 || die "sudo make install failed"
        elif [[ -e $("$PG_CONFIG" --pkglibdir)/csvpipe.so ]]; then
            log "WARNING: cannot run make install as $(id -un); using the csvpipe already installed"
        else
            die "cannot install the extension as $(id -un) (run as root, or install it first)"
        fi
    fi
    PGBIN=$("$PG_CONFIG" --bindir)
    [[ -x $PGBIN/initdb ]] || die "initdb not found in $PGBIN"
    [[ -e $("$PG_CONFIG" --pkglibdir)/csvpipe.so ]] || die "csvpipe.so is not installed"
    for ext in "$@"; do
        [[ -e $("$PG_CONFIG" --sharedir)/extension/$ext.control ]] \
            || die "$ext is not installed (PostgreSQL contrib)"
    done
}

bench_generator() {
    if [[ -n ${GEN:-} ]]; then
        [[ -x $GEN ]] || die "GEN=$GEN is not executable"
        return
    fi
    GEN=$REPO/test/gen/gen_csv
    if [[ ! -x $GEN || $REPO/test/gen/gen_csv.c -nt $GEN ]]; then
        log "building the generator"
        cc -O2 -o "$GEN" "$REPO/test/gen/gen_csv.c" || die "cannot build test/gen/gen_csv"
    fi
}

bench_exit() {
    local rc=$? p
    set +e
    for p in "${bg_pids[@]}"; do
        kill "$p" 2>/dev/null
    done
    if declare -F bench_cleanup_hook >/dev/null; then
        bench_cleanup_hook
    fi
    if [[ $started == 1 ]]; then
        as_pg "$PGBIN/pg_ctl" -D "$PGDATA" -m fast -w stop >/dev/null 2>&1 \
            || as_pg "$PGBIN/pg_ctl" -D "$PGDATA" -m immediate -w stop >/dev/null 2>&1
    fi
    cd /
    if [[ -n $WORK ]]; then
        if [[ $KEEP == 1 ]]; then
            log "kept $WORK"
        else
            rm -rf "$WORK"
        fi
    fi
    exit $rc
}

bench_workdir() {   # TAG PORT: users, work dir, the exit trap
    if [[ $as_root == 1 ]]; then
        PGUSER_OS=postgres
        id postgres >/dev/null 2>&1 || die "no 'postgres' OS user"
        as_pg() { runuser -u postgres -- "$@"; }
    else
        PGUSER_OS=$(id -un)
        as_pg() { "$@"; }
    fi

    WORK=$(mktemp -d "$BENCH_TMPDIR/csvpipe-$1.XXXXXX")
    chmod 755 "$WORK"
    PGDATA=$WORK/data
    SOCK=$WORK/sock
    PORT=${BENCH_PORT:-$2}
    SERVER_LOG=$WORK/server.log
    mkdir -p "$SOCK"
    [[ $as_root == 1 ]] && chown postgres: "$WORK" "$SOCK"

    trap bench_exit EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
}

bench_initdb() {
    cd "$WORK"      # the cluster user must be able to stat the working directory
    log "initdb in $PGDATA (OS user $PGUSER_OS)"
    as_pg "$PGBIN/initdb" -D "$PGDATA" -U postgres -A trust -E UTF8 --locale=C \
        --no-sync --no-instructions >"$WORK/initdb.log" 2>&1 \
        || { cat "$WORK/initdb.log" >&2; die "initdb failed"; }
}

bench_cluster() {   # TAG PORT
    bench_workdir "$1" "$2"
    bench_initdb
}

bench_conf() {   # HEADING
    cat >>"$PGDATA/postgresql.conf" <<EOF

# --- $1 ---
# private server: Unix socket in the temp dir only, no TCP
listen_addresses = ''
port = $PORT
unix_socket_directories = '$SOCK'
shared_preload_libraries = 'csvpipe'
log_line_prefix = '%m [%p] '
EOF
}

bench_start() {
    if [[ -n ${EXTRA_CONF:-} ]]; then
        printf '%b\n' "$EXTRA_CONF" >>"$PGDATA/postgresql.conf"
    fi
    log "starting the server (port $PORT, socket $SOCK)"
    as_pg "$PGBIN/pg_ctl" -D "$PGDATA" -l "$SERVER_LOG" -w -t 60 start >/dev/null \
        || { cat "$SERVER_LOG" >&2; die "server did not start"; }
    started=1
    PSQL=("$PGBIN/psql" -X -q -h "$SOCK" -p "$PORT" -U postgres -d postgres -v ON_ERROR_STOP=1)
    sql -c "select version()" >/dev/null || die "cannot connect"
}

sql() { "${PSQL[@]}" -At "$@"; }

bench_conf_loads() {   # settings of the load benchmarks (load.sh, badrows.sh)
    cat >>"$PGDATA/postgresql.conf" <<EOF
# atomic loads PREPARE one transaction per worker: needs >= workers
max_prepared_transactions = 8
# room for the load workers + the coordinator (+ parallel-read workers), with spare
max_worker_processes = 16
# no checkpoint may start inside a timed load: a 10M-row load writes ~1-2 GB
# of WAL; the scripts run an explicit CHECKPOINT (untimed) before each load
max_wal_size = 8GB
checkpoint_timeout = 30min
# large enough that the catalog and the bulk-insert rings never compete
shared_buffers = '$SHARED_BUFFERS'
# jit would add compile time to the checks and reads, unevenly
jit = off
# no parallel query: the only parallelism measured is csvpipe's own workers
# (and pgloader's sessions); COPY and file_fdw are single-process anyway
max_parallel_workers_per_gather = 0
# no autovacuum/autoanalyze of the freshly loaded tables during later runs
autovacuum = off
track_io_timing = off
log_min_messages = warning
EOF
}

# For perf: a copy of the csvpipe.so the postmaster mapped (LIB_SNAPSHOT).
# Others may reinstall the library while a benchmark runs; the processes keep
# the old, now deleted, file and perf could not resolve its symbols.
# /proc/PID/map_files (root only) reaches the mapped file itself.
bench_lib_snapshot() {   # PKGLIBDIR (where csvpipe.so was installed)
    local pm range
    pm=$(head -n1 "$PGDATA/postmaster.pid")
    range=$(awk '/\/csvpipe\.so/ { print $1; exit }' "/proc/$pm/maps" 2>/dev/null || true)
    if [[ -n $range ]] && cp "/proc/$pm/map_files/$range" "$WORK/csvpipe.so" 2>/dev/null; then
        LIB_SNAPSHOT=$WORK/csvpipe.so
    else
        cp "$1/csvpipe.so" "$WORK/csvpipe.so" && LIB_SNAPSHOT=$WORK/csvpipe.so
    fi
}

bench_files_dir() {   # FILES: DATA_DIR (kept) or a dir in the work dir
    if [[ -n ${DATA_DIR:-} ]]; then
        FILES=$DATA_DIR
    else
        FILES=$WORK/files
    fi
    mkdir -p "$FILES"
    chmod 755 "$FILES"
}

median() {  # numbers as arguments; "nan" for none
    printf '%s\n' "$@" | sort -g | awk 'NF { a[++n] = $1 }
        END { if (n == 0) { print "nan"; exit }
              if (n % 2) printf "%.3f\n", a[(n + 1) / 2];
              else printf "%.3f\n", (a[n / 2] + a[n / 2 + 1]) / 2 }'
}

fmt_ms() { awk -v x="$1" 'BEGIN { if (x == "nan" || x == "") print "-"; else printf (x < 100 ? "%.2f ms" : "%.1f ms"), x }'; }

fmt_mb() { awk -v x="$1" 'BEGIN { if (x == "") print "-"; else printf "%.1f MB", x / 1024 }'; }

human() {   # 1000000 -> 1M, 100000 -> 100k
    local n=$1
    if (( n % 1000000 == 0 )); then echo "$((n / 1000000))M"
    elif (( n % 1000 == 0 )); then echo "$((n / 1000))k"
    else echo "$n"; fi
}

# ------------------------------------------------------------ peak RSS -----
# rss_run APP FILE QUERY: runs QUERY in a fresh session named APP, sampling
# VmHWM every ~50 ms of the backend and of its csvpipe workers.  Sets
# RSS_LEADER (kB, final VmHWM of the backend), RSS_WORKER (kB, max sampled over
# the workers; empty when none was seen), WORKER_PIDS, LEADER_PID, RSS_SAMPLES,
# and for diagnosis the largest sampled RssAnon (private memory) and RssShmem
# (shared memory touched: shared_buffers pages, DSM) of each kind:
# ANON_LEADER SHM_LEADER ANON_WORKER SHM_WORKER.  VmHWM counts both.
memstat() {  # PID -> M_HWM M_ANON M_SHM in kB (empty when it is gone); never fails
    local k v _
    M_HWM=""; M_ANON=""; M_SHM=""
    { while read -r k v _; do
          case $k in
              VmHWM:)    M_HWM=$v ;;
              RssAnon:)  M_ANON=$v ;;
              RssShmem:) M_SHM=$v; break ;;
          esac
      done <"/proc/$1/status"; } 2>/dev/null || true
}
maxv() {  # VAR VALUE: VAR = max(VAR, VALUE), ignoring empty values
    [[ -n $2 ]] || return 0
    if [[ -z ${!1} ]] || (( $2 > ${!1} )); then printf -v "$1" '%s' "$2"; fi
}
rss_run() {
    local app=$1 file=$2 q=$3 marker=$WORK/rss.$1.done psql_pid leader="" d cmd i
    rm -f "$marker"
    cat "$file" >/dev/null
    PGAPPNAME=$app "${PSQL[@]}" -At -c "$q" -c "\\! touch $marker" -c "select pg_sleep(2)" \
        >"$WORK/rss.out" 2>&1 &
    psql_pid=$!
    bg_pids+=("$psql_pid")
    RSS_LEADER=""; RSS_WORKER=""; WORKER_PIDS=(); RSS_SAMPLES=0
    ANON_LEADER=""; SHM_LEADER=""; ANON_WORKER=""; SHM_WORKER=""
    local -A seen=()
    for ((i = 0; i < 72000; i++)); do      # up to an hour
        [[ -e $marker ]] && break
        kill -0 "$psql_pid" 2>/dev/null || break
        if [[ -z $leader ]]; then
            leader=$(sql -c "select pid from pg_stat_activity where application_name = '$app' and backend_type = 'client backend' limit 1" 2>/dev/null || true)
            [[ $leader =~ ^[0-9]+$ ]] || leader=""
        fi
        if [[ -n $leader ]]; then
            memstat "$leader"
            [[ -n $M_HWM ]] && RSS_LEADER=$M_HWM
            maxv ANON_LEADER "$M_ANON"; maxv SHM_LEADER "$M_SHM"
            for d in /proc/[0-9]*; do
                cmd=""
                { IFS= read -r -d '' cmd <"$d/cmdline"; } 2>/dev/null || true
                if [[ $cmd == *"csvpipe worker "*" for PID $leader"* ]]; then
                    memstat "${d#/proc/}"
                    if [[ -n $M_HWM ]]; then
                        seen[${d#/proc/}]=1
                        maxv RSS_WORKER "$M_HWM"
                        maxv ANON_WORKER "$M_ANON"; maxv SHM_WORKER "$M_SHM"
                    fi
                fi
            done
            RSS_SAMPLES=$((RSS_SAMPLES + 1))
        fi
        sleep 0.05
    done
    # the load is over and the session sleeps: the backend's final VmHWM
    if [[ -n ${RSS_ON_DONE:-} ]]; then "$RSS_ON_DONE"; fi
    if [[ -z $leader && -e $marker ]]; then     # a statement shorter than the first look-up
        leader=$(sql -c "select pid from pg_stat_activity where application_name = '$app' and backend_type = 'client backend' limit 1" 2>/dev/null || true)
        [[ $leader =~ ^[0-9]+$ ]] || leader=""
    fi
    if [[ -n $leader ]]; then
        memstat "$leader"
        [[ -n $M_HWM ]] && RSS_LEADER=$M_HWM
        maxv ANON_LEADER "$M_ANON"; maxv SHM_LEADER "$M_SHM"
    fi
    wait "$psql_pid" || { cat "$WORK/rss.out" >&2; die "statement failed: $q"; }
    bg_pids=()
    [[ -n $leader && -n $RSS_LEADER ]] || die "could not read VmHWM of the backend for: $q"
    LEADER_PID=$leader
    WORKER_PIDS=("${!seen[@]}")
}
