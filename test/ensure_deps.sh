#!/bin/bash
# ensure_deps.sh -- make sure the Debian 12 packages csvpipe needs are installed.
#
# Fast (one dpkg-query) when everything is present.  When something is
# missing: as root, install it with apt-get (running `apt-get update` only when
# the package lists are missing or stale); otherwise print the command to run
# and exit 1.
set -euo pipefail

# postgresql-15 also ships the contrib modules (file_fdw) on Debian 12.
PKGS=(
    postgresql-15
    postgresql-server-dev-15
    postgresql-15-cron
    libcsv-dev
    libipc-run-perl
    make
    gcc
)

missing_pkgs() {
    local p status
    for p in "${PKGS[@]}"; do
        status=$(dpkg-query -W -f='${db:Status-Abbrev}' "$p" 2>/dev/null || true)
        [[ $status == ii* ]] || printf '%s\n' "$p"
    done
}

mapfile -t MISSING < <(missing_pkgs)

if ((${#MISSING[@]} > 0)); then
    APT_INSTALL=(apt-get -o DPkg::Lock::Timeout=300 install -y "${MISSING[@]}")
    if [[ $(id -u) -ne 0 ]]; then
        echo "csvpipe: missing packages: ${MISSING[*]}" >&2
        echo "csvpipe: install them as root with:" >&2
        echo "    sudo apt-get update && sudo ${APT_INSTALL[*]}" >&2
        exit 1
    fi
    export DEBIAN_FRONTEND=noninteractive
    echo "csvpipe: installing ${MISSING[*]}" >&2

    # Refresh the package lists only if some package has no install candidate
    # (no lists yet, or lists too old to know it).
    need_update=0
    for p in "${MISSING[@]}"; do
        cand=$(apt-cache policy "$p" 2>/dev/null | awk '/Candidate:/ {print $2}')
        if [[ -z $cand || $cand == "(none)" ]]; then need_update=1; break; fi
    done
    if ((need_update)); then
        apt-get -o DPkg::Lock::Timeout=300 update -q
    fi

    # A stale list can also show up as a 404 on download: update once and retry.
    if ! "${APT_INSTALL[@]}"; then
        apt-get -o DPkg::Lock::Timeout=300 update -q
        "${APT_INSTALL[@]}"
    fi

    # Installing postgresql-15 creates a "15/main" cluster and, where services
    # may start, starts it.  Nothing here uses it: stop it if we started it.
    if [[ " ${MISSING[*]} " == *" postgresql-15 "* ]] &&
        pg_lsclusters -h 2>/dev/null | grep -qE '^15 +main .* online'; then
        pg_ctlcluster 15 main stop || true
    fi

    mapfile -t STILL < <(missing_pkgs)
    if ((${#STILL[@]} > 0)); then
        echo "csvpipe: still missing after apt-get: ${STILL[*]}" >&2
        exit 1
    fi
fi

# Sanity checks on what the packages must provide.
if ! command -v pg_config >/dev/null; then
    echo "csvpipe: pg_config not found (postgresql-server-dev-15 broken?)" >&2
    exit 1
fi
sharedir=$(pg_config --sharedir)
for ext in file_fdw pg_cron; do
    if [[ ! -f $sharedir/extension/$ext.control ]]; then
        echo "csvpipe: $sharedir/extension/$ext.control missing" >&2
        exit 1
    fi
done
if ! getent passwd postgres >/dev/null; then
    echo "csvpipe: OS user 'postgres' missing (postgresql-common broken?)" >&2
    exit 1
fi
