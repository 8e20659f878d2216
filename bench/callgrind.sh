#!/usr/bin/env bash
# Noise-free cost per request: CPU instructions (valgrind callgrind "Ir") that `trellis run`
# spends on N HTTP/1.1 keep-alive requests through the bench config, divided by N.
# Deterministic to about 1 %, so it can compare builds on a busy machine where req/s cannot.
#
#   bench/callgrind.sh [BINARY...]        # default: target/release/trellis
#   N=20000 CONNS=16 bench/callgrind.sh bench/run/trellis-a bench/run/trellis-b
#
# Needs valgrind, h2load and nginx (the backend on 127.0.0.1:18080 is started unless it answers).
set -euo pipefail
BENCH_DIR=$(cd "$(dirname "$0")" && pwd)
. "$BENCH_DIR/lib.sh"
N=${N:-20000}
CONNS=${CONNS:-16}
PATH_=${URL_PATH:-/}
[ $# -gt 0 ] || set -- "$BENCH_DIR/../target/release/trellis"
trap cleanup EXIT
trap 'exit 130' INT TERM
port_open 18086 && { echo "port 18086 is already in use; stop whatever listens there" >&2; exit 1; }

if ! port_open 18080; then
    mkdir -p "$RUN_DIR/cg-backend/tmp" "$RUN_DIR/cg-backend/html"
    head -c 16384 /dev/zero | tr '\0' x >"$RUN_DIR/cg-backend/html/16k"
    start_bg cg-backend nginx -p "$RUN_DIR/cg-backend/" -e stderr -c "$BENCH_DIR/backend.nginx.conf" -g 'worker_processes 1;'
    wait_port 18080 "${PID[cg-backend]}" || { echo "backend did not start" >&2; exit 1; }
fi
CONF=$RUN_DIR/cg-conf
mkdir -p "$CONF"
# plain HTTP only (no TLS listener): port 18086
# (documents are separated by "---"; drop the Secret's and the HTTPS listener's lines)
sed -e 's/18083/18086/' -e '/- name: https/,/- name: bench-tls/d' "$BENCH_DIR/trellis.yaml.in" |
    awk 'BEGIN {RS = "---\n"; ORS = ""} !/kind: Secret/ {print (n++ ? "---\n" : "") $0}' >"$CONF/bench.yaml"

echo "| binary | instructions per request | requests | errors |"
echo "|---|--:|--:|--:|"
for bin in "$@"; do
    out=$RUN_DIR/cg.$$.out
    RUST_LOG=warn start_bg cg-trellis valgrind --tool=callgrind --callgrind-out-file="$out" \
        "$bin" run --config "$CONF" --admin off --threads 1
    for _ in $(seq 300); do port_open 18086 && break; sleep 0.1; done
    port_open 18086 || { echo "trellis under valgrind did not listen, see $RUN_DIR/cg-trellis.log" >&2; exit 1; }
    h2load --h1 -n 2000 -c "$CONNS" "http://127.0.0.1:18086$PATH_" >/dev/null 2>&1   # warm pools and caches
    callgrind_control -z "${PID[cg-trellis]}" >/dev/null
    res=$(h2load --h1 -n "$N" -c "$CONNS" "http://127.0.0.1:18086$PATH_" 2>&1 | awk '/^requests:/ {print $8, $10 + $12 + $14}')
    callgrind_control -d "${PID[cg-trellis]}" >/dev/null
    sleep 1
    ir=$(cat "$out".* 2>/dev/null | awk '/^summary:/ {s += $2} END {print s + 0}')
    read -r ok bad <<<"$res"
    awk -v ir="$ir" -v n="$ok" -v b="$bin" -v bad="$bad" 'BEGIN {printf "| %s | %.0f | %d | %d |\n", b, ir / n, n, bad}'
    cleanup_one=${PID[cg-trellis]}
    kill -TERM "$cleanup_one" 2>/dev/null || true
    for _ in $(seq 100); do running "$cleanup_one" || break; sleep 0.1; done
    if [ -n "${KEEP:-}" ]; then mv "$out".* "$RUN_DIR/callgrind.$(basename "$bin").out" 2>/dev/null || true; fi
    rm -f "$out" "$out".*
done
