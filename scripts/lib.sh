# shellcheck shell=bash
# Shared helpers for scripts/test.sh, scripts/demo.sh and bench/run.sh.
# Source it; safe under `set -euo pipefail`.
#
# Environment knobs:
#   ABTEST_PRELOAD   shared_preload_libraries value (default 'abtest'; '' to
#                    start a cluster without the extension)
#   ABTEST_KEEP_TMP  1 = keep the cluster's temp dir after stopping
#   ABTEST_NO_TRAP   1 = abtest_start_cluster installs no stop trap (demo)
#   ABTEST_PG_BIN    PostgreSQL bin dir (default /usr/lib/postgresql/15/bin)
#   ABTEST_SERVER_ENV  VAR=value words added to the server's environment only

ABTEST_PG_BIN="${ABTEST_PG_BIN:-/usr/lib/postgresql/15/bin}"
ABTEST_PG_CONFIG="${ABTEST_PG_CONFIG:-$ABTEST_PG_BIN/pg_config}"
ABTEST_PGXS_DIR="${ABTEST_PGXS_DIR:-/usr/lib/postgresql/15/lib/pgxs}"
ABTEST_REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

abtest_log() { printf '>>> %s\n' "$*" >&2; }

abtest_header() {
    printf '\n==================== %s ====================\n' "$*"
}

# Run a command as root (directly or through sudo).
abtest_as_root() {
    if [ "$(id -u)" -eq 0 ]; then
        "$@"
    else
        sudo "$@"
    fi
}

_abtest_installed() {
    local status
    status="$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null || true)"
    [[ "$status" == *"install ok installed"* ]]
}

abtest_ensure_deps() {
    # postgresql-contrib: on Debian 12 contrib ships inside postgresql-15.
    local pkgs=(postgresql-15 postgresql-server-dev-15 libxxhash-dev libboost-dev
        nlohmann-json3-dev libgtest-dev libbenchmark-dev libipc-run-perl
        g++ make clang libclang-rt-14-dev python3-scipy python3-xxhash
        chromium python3-pil fonts-dejavu-core
        pgbouncer python3-psycopg python3-psycopg-pool python3-flask
        prometheus-postgres-exporter python3-yaml postgresql-client-15)
    local missing=() p
    for p in "${pkgs[@]}"; do
        _abtest_installed "$p" || missing+=("$p")
    done
    if [ "${#missing[@]}" -eq 0 ]; then
        return 0
    fi
    abtest_log "installing missing packages: ${missing[*]}"
    abtest_as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q
    abtest_as_root env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -q --no-install-recommends "${missing[@]}"
}

# A bench's knobs: exits 2 unless each value is a positive integer. Arguments are
# pairs of a name (as the usage line spells it) and its value.
abtest_require_positive_ints() {
    while [ "$#" -ge 2 ]; do
        if ! [[ "$2" =~ ^[1-9][0-9]*$ ]]; then
            echo "bench: $1 must be a positive integer, got '$2'" >&2
            exit 2
        fi
        shift 2
    done
}

# A bench's start: its packages, then this tree built and installed.
abtest_bench_build() {
    abtest_header "dependencies"
    abtest_ensure_deps
    abtest_header "build + install"
    abtest_build_install
}

abtest_build_install() {
    (
        # Chained: callers may run this under `if`, where set -e is off.
        cd "$ABTEST_REPO" &&
            make -j2 PG_CONFIG="$ABTEST_PG_CONFIG" &&
            abtest_as_root make install PG_CONFIG="$ABTEST_PG_CONFIG"
    )
}

# Run a command as the postgres OS user, passing the cluster's PG* variables.
# The command runs from the cluster temp dir (or /): the caller's cwd may be
# unreadable to postgres, so pass absolute paths or feed files via stdin.
abtest_as_postgres() {
    local envv=() v
    for v in PGHOST PGPORT PGUSER PGDATABASE ABTEST_TMP ABTEST_PGDATA; do
        if [ -n "${!v:-}" ]; then
            envv+=("$v=${!v}")
        fi
    done
    (
        cd "${ABTEST_TMP:-/}" || exit 1
        if [ "$(id -u)" -eq 0 ]; then
            runuser -u postgres -- env "${envv[@]}" "$@"
        elif [ "$(id -un)" = postgres ]; then
            env "${envv[@]}" "$@"
        else
            sudo -u postgres -- env "${envv[@]}" "$@"
        fi
    )
}

abtest_psql() {
    abtest_as_postgres "$ABTEST_PG_BIN/psql" -X -v ON_ERROR_STOP=1 "$@"
}

_abtest_port_free() {
    local dir="$1" port="$2"
    [ -e "$dir/.s.PGSQL.$port" ] && return 1
    [ -e "/tmp/.s.PGSQL.$port" ] && return 1
    if command -v ss >/dev/null 2>&1; then
        if ss -ltnH 2>/dev/null | awk '{print $4}' | grep -Eq "[:.]$port\$"; then
            return 1
        fi
    fi
    return 0
}

abtest_start_cluster() {
    local dir port
    # Explicit `|| return`: callers may run this under `if`, where set -e is off.
    dir="$(mktemp -d "${ABTEST_TMP_BASE:-/tmp}/abtest.XXXXXX")" || return 1
    if ! { chmod 755 "$dir" && { [ "$(id -un)" = postgres ] ||
        abtest_as_root chown postgres:postgres "$dir"; }; }; then
        rm -rf "$dir"
        return 1
    fi

    port=""
    for _ in $(seq 1 100); do
        local cand=$(( 20000 + RANDOM % 40001 ))
        if _abtest_port_free "$dir" "$cand"; then
            port="$cand"
            break
        fi
    done
    if [ -z "$port" ]; then
        echo "abtest_start_cluster: no free port found" >&2
        rm -rf "$dir"
        return 1
    fi

    export ABTEST_TMP="$dir"
    export ABTEST_PGDATA="$dir/data"
    # Install the trap before anything can fail so the temp dir is removed.
    if [ "${ABTEST_NO_TRAP:-0}" != 1 ]; then
        trap 'abtest_stop_cluster' EXIT
        trap 'abtest_stop_cluster; exit 130' INT
        trap 'abtest_stop_cluster; exit 143' TERM
    fi

    if ! abtest_as_postgres "$ABTEST_PG_BIN/initdb" -D "$ABTEST_PGDATA" -A trust \
        -U postgres --no-sync -E UTF8 --locale=C >"$dir/initdb.log" 2>&1; then
        echo "abtest_start_cluster: initdb failed:" >&2
        cat "$dir/initdb.log" >&2
        abtest_stop_cluster
        return 1
    fi

    {
        echo ""
        echo "# added by scripts/lib.sh"
        echo "shared_preload_libraries = '${ABTEST_PRELOAD-abtest}'"
        echo "listen_addresses = ''"
        echo "unix_socket_directories = '$dir'"
        echo "port = $port"
        echo "fsync = off"
        echo "max_connections = 50"
        local line
        for line in "$@"; do
            echo "$line"
        done
    } | abtest_as_postgres tee -a "$ABTEST_PGDATA/postgresql.conf" >/dev/null || {
        abtest_stop_cluster
        return 1
    }

    # ABTEST_SERVER_ENV: extra environment for the server only (the sanitized stage
    # of scripts/test.sh preloads the ASan runtime this way).
    local server_env=()
    read -ra server_env <<<"${ABTEST_SERVER_ENV:-}"
    if ! abtest_as_postgres env "${server_env[@]}" "$ABTEST_PG_BIN/pg_ctl" -D "$ABTEST_PGDATA" -w \
        -l "$dir/server.log" start >"$dir/pg_ctl.log" 2>&1; then
        echo "abtest_start_cluster: server failed to start; pg_ctl said:" >&2
        cat "$dir/pg_ctl.log" >&2
        echo "--- server log ($dir/server.log) ---" >&2
        cat "$dir/server.log" >&2 || true
        abtest_stop_cluster
        return 1
    fi

    export PGHOST="$dir" PGPORT="$port" PGUSER=postgres PGDATABASE=postgres
    abtest_log "cluster running: PGHOST=$PGHOST PGPORT=$PGPORT (data $ABTEST_PGDATA)"
}

abtest_stop_cluster() {
    local dir="${ABTEST_TMP:-}"
    if [ -z "$dir" ]; then
        return 0
    fi
    if [ -f "$dir/data/postmaster.pid" ]; then
        abtest_as_postgres "$ABTEST_PG_BIN/pg_ctl" -D "$dir/data" -m fast -w stop \
            >/dev/null 2>&1 || true
    fi
    if [ "${ABTEST_KEEP_TMP:-0}" = 1 ]; then
        abtest_log "kept cluster temp dir: $dir"
    else
        rm -rf "$dir" 2>/dev/null || abtest_as_root rm -rf "$dir" 2>/dev/null || true
    fi
    unset ABTEST_TMP ABTEST_PGDATA PGHOST PGPORT PGUSER PGDATABASE
    return 0
}
