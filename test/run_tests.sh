#!/bin/bash
# run_tests.sh -- `make test`: install deps, build, install, then run the
# pg_regress suite (REGRESS in the Makefile) and the TAP tests (test/t/*.pl)
# on temporary clusters.  Prints "N passed, N failed" last, preceded by each
# failed test's name and failed assertions (CI keeps only the tail of the
# output); exits non-zero on any failure.
#
# Knobs (environment):
#   CSVPIPE_REGRESS="a b"   run these pg_regress tests instead of REGRESS
#   CSVPIPE_TAP="test/t/001_harness.pl"  run these TAP files instead of all
#                           (set either to "none" to skip that part)
#   PROVE_FLAGS=--verbose   extra flags for prove
#   CSVPIPE_REGRESS_PORT    pg_regress temp instance port (default 54329)
#   CSVPIPE_KEEP_TMP=1      keep the temp dir (logs, data dirs) afterwards
set -uo pipefail

cd "$(dirname "$0")/.." || exit 1
ROOT=$PWD
. test/common.sh

PASSED=0
FAILED=0
FAILED_NAMES=()
FAILED_LINES=()
WORK=

summary() {
    local i
    if ((${#FAILED_NAMES[@]})); then
        echo "== failed:"
        for i in "${!FAILED_NAMES[@]}"; do
            echo "  ${FAILED_NAMES[$i]}"
            [[ -z ${FAILED_LINES[$i]} ]] || printf '%s\n' "${FAILED_LINES[$i]}"
        done
    fi
    echo "$PASSED passed, $FAILED failed${FAILED_NAMES[*]:+: ${FAILED_NAMES[*]}}"
}

cleanup() {
    local rc=$?
    if [[ -n $WORK ]]; then
        stop_clusters "$WORK"
        if [[ -n ${CSVPIPE_KEEP_TMP:-} ]]; then
            echo "== kept $WORK"
        else
            rm -rf "$WORK"
        fi
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

# Ctrl-C reaches the test drivers directly (timeout --foreground keeps them in
# our process group); bash then sees only their exit status, so stop here if
# a step died of SIGINT/SIGTERM.
stop_if_interrupted() {
    if (($1 == 130 || $1 == 143)); then
        echo "== interrupted"
        exit "$1"
    fi
}

bash test/ensure_deps.sh || exit 1
pg_paths

# The test lists.  REGRESS comes from the Makefile (its single source).
if [[ -n ${CSVPIPE_REGRESS:-} ]]; then
    regress_list=$CSVPIPE_REGRESS
else
    # shellcheck disable=SC2016 # $(REGRESS) is for make
    regress_list=$(make -s --no-print-directory -f Makefile -f - PG_CONFIG="$PG_CONFIG" \
        csvpipe-print-regress <<<'csvpipe-print-regress: ; @echo $(REGRESS)') || {
        echo "csvpipe: could not read REGRESS from the Makefile" >&2
        exit 1
    }
fi
[[ $regress_list != none ]] || regress_list=
read -r -a REGRESS_TESTS <<<"$regress_list"
if [[ -n ${CSVPIPE_TAP:-} ]]; then
    TAP_FILES=()
    [[ $CSVPIPE_TAP == none ]] || read -r -a TAP_FILES <<<"$CSVPIPE_TAP"
else
    shopt -s nullglob
    TAP_FILES=(test/t/*.pl)
    shopt -u nullglob
fi
NTESTS=$((${#REGRESS_TESTS[@]} + ${#TAP_FILES[@]}))

# Build + install; a broken build fails every test.
if ! build_gen_csv || ! build_and_install; then
    echo "== build or install FAILED"
    FAILED=$NTESTS
    summary
    exit 1
fi

# Copy what the tests need into a temp dir the server's OS user owns.
make_workdir csvpipe-test
SRC=$WORK/src
mkdir -p "$SRC"
for d in sql expected input output test; do
    [[ -d $d ]] && cp -r "$d" "$SRC/"
done
# 130_options.pl holds doc/reference.md's Options section against the options
# table; 136_doc_refs.pl the sections that src/, sql/ and the tests cite, and
# the documents' links, against README.md and doc/; 123_ledger.pl runs
# doc/sharded.md's statement that keeps the shard ledgers bounded
cp -r doc README.md Makefile csvpipe.control "$SRC/"
mkdir -p "$SRC/src" && (cd src && find . -name '*.[ch]' -exec cp --parents {} "$SRC/src/" \;)
[[ $(id -u) -ne 0 ]] || chown -R "$PG_OS_USER:" "$WORK"

# Environment for everything run as the server user: our PostgreSQL first in
# PATH, temp files (and unix sockets) inside $WORK, a predictable locale, and
# no PG* connection settings leaking in from the caller.
PG_ENV=(
    env -u PGHOST -u PGPORT -u PGDATA -u PGUSER -u PGDATABASE -u PGSERVICE
    -u PGOPTIONS -u TEMP_CONFIG -u LC_ALL -u LANGUAGE
    PATH="$PG_BINDIR:/usr/local/bin:/usr/bin:/bin"
    TMPDIR="$WORK" LANG=C.UTF-8
)

# ---- a. pg_regress ---------------------------------------------------------
if ((${#REGRESS_TESTS[@]})); then
    echo "== pg_regress: ${REGRESS_TESTS[*]}"
    rm -rf "$ROOT/results" "$ROOT/regression.diffs"
    out=$WORK/regress.out
    (cd "$SRC" && as_pg "${PG_ENV[@]}" timeout --foreground -k 10 900 "$PG_REGRESS" \
        --temp-instance="$WORK/tmp_check" \
        --temp-config="$SRC/test/regress.conf" \
        --port="${CSVPIPE_REGRESS_PORT:-54329}" \
        --inputdir="$SRC" \
        --outputdir="$WORK/out" \
        --bindir="$PG_BINDIR" \
        --dbname=contrib_regression \
        --encoding=UTF8 --no-locale \
        "${REGRESS_TESTS[@]}") 2>&1 | tee "$out"
    rc=${PIPESTATUS[0]}
    stop_if_interrupted "$rc"
    ok=$(grep -cE '\.\.\. ok( |$)' "$out")
    bad=$(grep -cE '\.\.\. (FAILED|failed)' "$out")
    # pg_regress itself failed (initdb, server start...): count the rest as failed.
    if ((rc != 0 && ok + bad < ${#REGRESS_TESTS[@]})); then
        bad=$((${#REGRESS_TESTS[@]} - ok))
    fi
    PASSED=$((PASSED + ok))
    FAILED=$((FAILED + bad))
    if ((bad)); then
        FAILED_NAMES+=("pg_regress")
        FAILED_LINES+=("$(grep -E '\.\.\. (FAILED|failed)' "$out" | head -n 10 | sed 's/^/    /')")
    fi
    if ((rc != 0)); then
        # Leave results/ and regression.diffs in the checkout (git-ignored),
        # as `make installcheck` would, to inspect or copy into expected/.
        cp -r "$WORK/out/results" "$ROOT/results" 2>/dev/null
        cp "$WORK/out/regression.diffs" "$ROOT/" 2>/dev/null
        if [[ -s $WORK/out/regression.diffs ]]; then
            echo "== regression.diffs (also in ./regression.diffs, outputs in ./results/)"
            cat "$WORK/out/regression.diffs"
        fi
        # Server crashes and assertion failures show up only in the log.
        if grep -qE 'PANIC|TRAP:|terminated by signal|exited with exit code [^01]' \
            "$WORK/out/log/postmaster.log" 2>/dev/null; then
            echo "== postmaster.log: crashes"
            grep -E -B3 -A3 'PANIC|TRAP:|terminated by signal|exited with exit code [^01]' \
                "$WORK/out/log/postmaster.log" | head -n 80
        fi
    fi
fi

# ---- b. TAP tests ------------------------------------------------------------
# PostgreSQL::Test::Utils puts its tmp_check under $TESTDIR and short temp dirs
# (unix sockets) under $TMPDIR; Cluster.pm picks free ports itself (10200-32767,
# checked by binding 127.0.0.1) and locks them in $PG_TEST_PORT_DIR; servers
# listen on a private unix socket only.  TEMP_CONFIG is unset on purpose:
# each test configures its own node.
if ((${#TAP_FILES[@]})); then
    echo "== TAP: ${TAP_FILES[*]}"
    mkdir -p "$WORK/portlock"
    [[ $(id -u) -ne 0 ]] || chown "$PG_OS_USER:" "$WORK/portlock"
    read -r -a prove_flags <<<"${PROVE_FLAGS:-}"
    for t in "${TAP_FILES[@]}"; do
        (cd "$SRC" && as_pg "${PG_ENV[@]}" \
            TESTDIR="$SRC" \
            PG_REGRESS="$PG_REGRESS" \
            PG_TEST_PORT_DIR="$WORK/portlock" \
            PG_TEST_TIMEOUT_DEFAULT=180 \
            CSVPIPE_SRCDIR="$SRC" \
            CSVPIPE_GEN_CSV="$SRC/test/gen/gen_csv" \
            timeout --foreground -k 10 900 prove -I "$PG_PERL_DIR" -I "$SRC/test/perl" \
            "${prove_flags[@]}" "$t") 2>&1 | tee "$WORK/prove.out"
        rc=${PIPESTATUS[0]}
        stop_if_interrupted "$rc"
        if ((rc == 0)); then
            PASSED=$((PASSED + 1))
        else
            FAILED=$((FAILED + 1))
            FAILED_NAMES+=("$t")
            # the failed assertions, and whether it died or timed out
            FAILED_LINES+=("$(grep -E '^#   Failed test|^# Looks like|Dubious|^Bailout|died' \
                "$WORK/prove.out" | head -n 8 | sed 's/^/    /'
                ((rc != 124)) || echo "    timed out after 900 s")")
            log=$SRC/tmp_check/log/regress_log_$(basename "$t" .pl)
            if [[ -f $log ]]; then
                echo "== tail of $log"
                tail -n 60 "$log"
            fi
        fi
    done
fi

summary
((FAILED == 0 && PASSED > 0))
