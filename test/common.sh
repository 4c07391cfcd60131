# shellcheck shell=bash
# common.sh -- helpers shared by test/run_tests.sh and test/demo.sh.
# Source it from the repository root:  . test/common.sh
#
# Provides: PG_OS_USER, and after pg_paths: PG_CONFIG PG_BINDIR PG_REGRESS PG_PERL_DIR
#           pg_paths                     set the PG_* paths (after ensure_deps)
#           as_pg CMD...                 run CMD as the OS user that owns the servers
#           build_gen_csv                build test/gen/gen_csv if out of date
#           build_and_install            make && make install (or say how)
#           make_workdir PREFIX          fresh temp dir owned by PG_OS_USER -> $WORK
#           stop_clusters DIR            stop every postmaster whose data dir is under DIR

# Call after test/ensure_deps.sh (pg_config may not exist before).
pg_paths() {
    # Prefer the PostgreSQL 15 pg_config: /usr/bin/pg_config picks the newest
    # server-dev package installed, which need not be 15.
    if [[ -z ${PG_CONFIG:-} ]]; then
        PG_CONFIG=pg_config
        [[ ! -x /usr/lib/postgresql/15/bin/pg_config ]] ||
            PG_CONFIG=/usr/lib/postgresql/15/bin/pg_config
    fi
    export PG_CONFIG
    PG_BINDIR=$("$PG_CONFIG" --bindir)
    local pgxs_src
    pgxs_src=$(dirname "$("$PG_CONFIG" --pgxs)")/..
    pgxs_src=$(cd "$pgxs_src" && pwd)
    PG_REGRESS=$pgxs_src/test/regress/pg_regress   # used by run_tests.sh
    PG_PERL_DIR=$pgxs_src/test/perl                # PostgreSQL::Test::*
    export PG_REGRESS PG_PERL_DIR
}

# PostgreSQL refuses to run as root: servers and test drivers run as
# 'postgres' when we are root, as ourselves otherwise.
if [[ $(id -u) -eq 0 ]]; then
    PG_OS_USER=postgres
    as_pg() { runuser -u postgres -- "$@"; }
else
    PG_OS_USER=$(id -un)
    as_pg() { "$@"; }
fi

build_gen_csv() {
    local src=test/gen/gen_csv.c bin=test/gen/gen_csv
    if [[ ! -x $bin || $src -nt $bin ]]; then
        cc -O2 -o "$bin" "$src"
    fi
}

# True when every installed file matches the freshly built one (lets a
# non-root developer who ran `sudo make install` once keep running tests).
installed_is_current() {
    local libdir extdir f
    libdir=$("$PG_CONFIG" --pkglibdir)
    extdir=$("$PG_CONFIG" --sharedir)/extension
    cmp -s csvpipe.so "$libdir/csvpipe.so" || return 1
    cmp -s csvpipe.control "$extdir/csvpipe.control" || return 1
    for f in sql/csvpipe--*.sql; do
        cmp -s "$f" "$extdir/$(basename "$f")" || return 1
    done
}

build_and_install() {
    local libdir extdir
    echo "== build"
    make -s -j"$(nproc)" PG_CONFIG="$PG_CONFIG" || return 1
    libdir=$("$PG_CONFIG" --pkglibdir)
    extdir=$("$PG_CONFIG" --sharedir)/extension
    if [[ $(id -u) -eq 0 || (-w $libdir && -w $extdir) ]]; then
        echo "== install into $libdir"
        make -s install PG_CONFIG="$PG_CONFIG" >/dev/null || return 1
    elif installed_is_current; then
        echo "== install: installed copy is current"
    else
        echo "csvpipe: cannot write $libdir; install as root with:" >&2
        echo "    sudo make install PG_CONFIG=$PG_CONFIG" >&2
        return 1
    fi
}

# Fresh temp dir, owned by the server's OS user (root's clone may live where
# 'postgres' cannot read).  Root uses /tmp, since root's TMPDIR may be private.
make_workdir() {
    local base=/tmp
    [[ $(id -u) -eq 0 ]] || base=${TMPDIR:-/tmp}
    WORK=$(mktemp -d "$base/$1.XXXXXX")
    chmod 700 "$WORK"
    [[ $(id -u) -ne 0 ]] || chown "$PG_OS_USER:" "$WORK"
}

# Stop (immediate mode) every postmaster whose postmaster.pid lies under $1,
# then kill whatever is left of it.  Used from EXIT traps.
stop_clusters() {
    local dir=$1 pidfile datadir pid
    [[ -n $dir && -d $dir ]] || return 0
    while IFS= read -r pidfile; do
        datadir=$(dirname "$pidfile")
        pid=$(head -n1 "$pidfile" 2>/dev/null || true)
        [[ $pid =~ ^[0-9]+$ ]] || continue
        kill -0 "$pid" 2>/dev/null || continue
        echo "== stopping leftover server in $datadir (pid $pid)"
        (cd / && as_pg "$PG_BINDIR/pg_ctl" -D "$datadir" -m immediate -w -t 30 stop) >/dev/null 2>&1 ||
            kill -KILL "$pid" 2>/dev/null || true
    done < <(find "$dir" -name postmaster.pid -type f 2>/dev/null)
}
