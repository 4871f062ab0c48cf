# Shared by the bench scripts (sourced from the repository root): logging, a temporary
# folder and the processes a script starts, stopped on any exit, and CPU placement.
# Set BENCH_TAG (log prefix) and BENCH_STOP_VARS (names of the variables holding the PIDs
# to stop) before sourcing.

log() { printf '[%s] %s\n' "$BENCH_TAG" "$*" >&2; }
die() { printf '[%s] error: %s\n' "$BENCH_TAG" "$*" >&2; exit 1; }

stop_pid() { # pid: TERM, wait up to 5 s, then KILL
    local pid=$1 i
    [ -n "$pid" ] || return 0
    kill -0 "$pid" 2>/dev/null || return 0
    kill -TERM "$pid" 2>/dev/null || true
    for i in $(seq 50); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}

bench_cleanup() {
    local rc=$? v
    trap - EXIT INT TERM
    for v in $BENCH_STOP_VARS; do
        stop_pid "${!v}"
    done
    if [ "${BENCH_KEEP_TMP:-0}" = 1 ] || [ $rc -ne 0 ]; then
        log "logs and raw output kept in $TMP"
    else
        rm -rf "$TMP"
    fi
    exit $rc
}

# bench_tmp PREFIX: makes $TMP and stops what the script started on any exit.
bench_tmp() {
    TMP=$(mktemp -d "${TMPDIR:-/tmp}/$1.XXXXXX")
    trap bench_cleanup EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
}

# bench_pin: with BENCH_PIN=1, or auto on 2+ CPUs, the server goes on CPU 0 and the client
# on the rest. Sets SERVER_PIN / CLIENT_PIN (command prefixes, maybe empty), CLIENT_CPUSET,
# CLIENT_CPUS (CPUs the client may use) and PINNED (1 or 0).
bench_pin() {
    local ncpu
    ncpu=$(nproc)
    SERVER_PIN=()
    CLIENT_PIN=()
    PINNED=0
    CLIENT_CPUS=$ncpu
    if [ "$BENCH_PIN" = 1 ] || { [ "$BENCH_PIN" = auto ] && [ "$ncpu" -ge 2 ]; }; then
        command -v taskset >/dev/null 2>&1 || die "taskset not found (util-linux); set BENCH_PIN=0"
        SERVER_PIN=(taskset -c 0)
        CLIENT_CPUSET=1
        [ "$ncpu" -gt 2 ] && CLIENT_CPUSET=1-$((ncpu - 1))
        CLIENT_PIN=(taskset -c "$CLIENT_CPUSET")
        CLIENT_CPUS=$((ncpu - 1))
        PINNED=1
    fi
}
