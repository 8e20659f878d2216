#!/usr/bin/env bash
# Trellis vs nginx vs HAProxy in front of the same nginx backend, on loopback, one table per
# scenario. Adapted from the shared proxy harness (see README.md in this folder).
#
#   bench/compare.sh                         # all scenarios, ~10 min
#   MODES="h1 tls" ROUNDS=5 bench/compare.sh # some scenarios, more rounds
#   TRELLIS_CMD='...' bench/compare.sh       # another build/flags for the trellis target
#
# Scenarios (MODES): h1 (HTTP/1.1 keep-alive), close (new connection per request), h2 (h2c,
# h2load), tls (HTTPS, TLS 1.3, keep-alive), 16k (16 KiB response body), fixed (HTTP/1.1 at a
# fixed request rate with hey: latency at the same offered load).
# Knobs (env): MODES ROUNDS DURATION WARMUP CONNS THREADS STREAMS WORKERS BACKEND_WORKERS
#   RATE TARGETS PIN QUIET_WAIT RETRIES NOISE_MAX TRELLIS TRELLIS_CMD RUN_DIR OUT_DIR
set -euo pipefail

BENCH_DIR=$(cd "$(dirname "$0")" && pwd)
. "$BENCH_DIR/lib.sh"

MODES=${MODES:-h1 close h2 tls 16k fixed}
ROUNDS=${ROUNDS:-3}       # targets are interleaved: A B C, A B C, ...
DURATION=${DURATION:-8}   # seconds measured per run
WARMUP=${WARMUP:-2}       # seconds of unmeasured load right before each run
CONNS=${CONNS:-64}        # client connections
THREADS=${THREADS:-1}     # load generator threads (1: the machine has 2 cores)
STREAMS=${STREAMS:-10}    # h2 only: concurrent streams per connection
RATE=${RATE:-10000}       # fixed only: offered requests per second (all connections together)
WORKERS=${WORKERS:-1}     # worker processes/threads for every proxy
BACKEND_WORKERS=${BACKEND_WORKERS:-1}
PIN=${PIN:-1}             # 1: load generator on CPU 0, backend and proxies on CPU 1
QUIET_WAIT=${QUIET_WAIT:-120}
RETRIES=${RETRIES:-2}
NOISE_MAX=${NOISE_MAX:-20}
TRELLIS=${TRELLIS:-$BENCH_DIR/../target/release/trellis}
OUT_DIR=${OUT_DIR:-$RUN_DIR}
CLK_TCK=$(getconf CLK_TCK)
mkdir -p "$OUT_DIR"

for tool in nginx haproxy wrk h2load hey openssl curl taskset; do
    command -v "$tool" >/dev/null || { echo "missing $tool: run bench/setup.sh (or make bench)" >&2; exit 1; }
done
[ -x "$TRELLIS" ] || { echo "no trellis binary at $TRELLIS: cargo build --release -p trellis" >&2; exit 1; }

LAT_DIR=$(mktemp -d /dev/shm/bench.XXXXXX 2>/dev/null || mktemp -d "$RUN_DIR/lat.XXXXXX")
LOADGEN_CPUS=() SERVER_CPUS=()
if [ "$PIN" = 1 ]; then LOADGEN_CPUS=(taskset -c 0) SERVER_CPUS=(taskset -c 1); fi

trap 'cleanup; rm -rf "$LAT_DIR"' EXIT
trap 'exit 130' INT TERM

for port in 18080 18081 18082 18083 18084 18090 18091 18092 18441 18442 18443 18444 19901 19902; do
    if port_open "$port"; then echo "port $port is already in use; stop whatever listens there" >&2; exit 1; fi
done

# ---- TLS material: one self-signed ECDSA P-256 certificate for all three proxies -----------
TLS_DIR=$RUN_DIR/tls
mkdir -p "$TLS_DIR"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 30 \
    -subj /CN=bench.local -addext "subjectAltName=DNS:bench.local,IP:127.0.0.1" \
    -keyout "$TLS_DIR/key.pem" -out "$TLS_DIR/cert.pem" 2>/dev/null
cat "$TLS_DIR/cert.pem" "$TLS_DIR/key.pem" >"$TLS_DIR/combined.pem"

# ---- start backend and proxies -------------------------------------------------------------
declare -A PORT_OF
export WORKERS TLS_DIR
nginx_at() {  # nginx_at NAME CONF WORKERS - nginx in the foreground with its own prefix dir
    mkdir -p "$RUN_DIR/$1/tmp" "$RUN_DIR/$1/html"
    sed "s#@TLS_DIR@#$TLS_DIR#g" "$BENCH_DIR/$2" >"$RUN_DIR/$1/nginx.conf"
    start_bg "$1" "${SERVER_CPUS[@]}" nginx -p "$RUN_DIR/$1/" -e stderr -c "$RUN_DIR/$1/nginx.conf" \
        -g "worker_processes $3;"
}
nginx_at backend backend.nginx.conf "$BACKEND_WORKERS"
head -c 16384 /dev/zero | tr '\0' x >"$RUN_DIR/backend/html/16k"
nginx_at nginx proxy.nginx.conf "$WORKERS"
start_bg haproxy "${SERVER_CPUS[@]}" haproxy -db -f "$BENCH_DIR/proxy.haproxy.cfg"

TRELLIS_CONF=$RUN_DIR/trellis-conf
mkdir -p "$TRELLIS_CONF"
sed -e "s#@CRT@#$(base64 -w0 "$TLS_DIR/cert.pem")#" -e "s#@KEY@#$(base64 -w0 "$TLS_DIR/key.pem")#" \
    "$BENCH_DIR/trellis.yaml.in" >"$TRELLIS_CONF/bench.yaml"
TRELLIS_CMD=${TRELLIS_CMD:-exec "$TRELLIS" run --config "$TRELLIS_CONF" --admin 127.0.0.1:19901 --threads "$WORKERS"}
RUST_LOG=${RUST_LOG:-warn} start_bg trellis "${SERVER_CPUS[@]}" bash -c "$TRELLIS_CMD"
# A/B: TRELLIS_B=path/to/other/build adds the target "trellis-b" (ports 18084 / 18444)
if [ -n "${TRELLIS_B:-}" ]; then
    mkdir -p "$RUN_DIR/trellis-b-conf"
    sed -e 's/18083/18084/; s/18443/18444/' "$TRELLIS_CONF/bench.yaml" >"$RUN_DIR/trellis-b-conf/bench.yaml"
    RUST_LOG=${RUST_LOG:-warn} start_bg trellis-b "${SERVER_CPUS[@]}" \
        "$TRELLIS_B" run --config "$RUN_DIR/trellis-b-conf" --admin 127.0.0.1:19902 --threads "$WORKERS"
    wait_port 18084 "${PID[trellis-b]}" || { echo "trellis-b did not listen, see $RUN_DIR/trellis-b.log" >&2; exit 1; }
fi

wait_port 18080 "${PID[backend]}" || { echo "backend did not start, see $RUN_DIR/backend.log" >&2; exit 1; }
for t in nginx:18081 haproxy:18082 trellis:18083 trellis:18443; do
    wait_port "${t#*:}" "${PID[${t%:*}]}" || { echo "${t%:*} did not listen on ${t#*:}, see $RUN_DIR/${t%:*}.log" >&2; exit 1; }
done

# ---- per-mode settings ---------------------------------------------------------------------
set_mode() {  # sets PORT_OF, SCHEME, URL_PATH, CURL_OPT, default targets for mode $1
    SCHEME=http URL_PATH=/ CURL_OPT=--http1.1
    PORT_OF=([direct]=18080 [nginx]=18081 [haproxy]=18082 [trellis]=18083 [trellis-b]=18084)
    MODE_TARGETS="nginx haproxy trellis${TRELLIS_B:+ trellis-b}"
    case $1 in
        h1) MODE_TARGETS="direct $MODE_TARGETS" ;;
        close|fixed) ;;
        16k) URL_PATH=/16k ;;
        h2) PORT_OF=([direct]=18090 [nginx]=18091 [haproxy]=18092 [trellis]=18083 [trellis-b]=18084); CURL_OPT=--http2-prior-knowledge ;;
        tls) SCHEME=https PORT_OF=([nginx]=18441 [haproxy]=18442 [trellis]=18443 [trellis-b]=18444); CURL_OPT="--http1.1 -k --tlsv1.3" ;;
        *) echo "unknown mode $1" >&2; exit 1 ;;
    esac
}

# load URL SECONDS OUTFILE  (mode in $MODE)
load() {
    local lg=("${LOADGEN_CPUS[@]}")
    case $MODE in
        h2)
            local lat; lat=$LAT_DIR/$(basename "$3").lat
            rm -f "$lat"
            bounded $(($2 + 15)) "${lg[@]}" h2load -t "$THREADS" -c "$CONNS" -m "$STREAMS" -D "$2" \
                --log-file="$lat" "$1" >"$3" 2>&1 ;;
        fixed)
            local q; q=$(awk -v r="$RATE" -v c="$CONNS" 'BEGIN {printf "%.2f", r / c}')
            bounded $(($2 + 15)) "${lg[@]}" hey -z "${2}s" -c "$CONNS" -q "$q" -disable-compression "$1" >"$3" 2>&1 ;;
        close)
            bounded $(($2 + 15)) "${lg[@]}" wrk -t "$THREADS" -c "$CONNS" -d "${2}s" -H 'Connection: close' \
                -s "$BENCH_DIR/report.lua" "$1" >"$3" 2>&1 ;;
        *)
            bounded $(($2 + 15)) "${lg[@]}" wrk -t "$THREADS" -c "$CONNS" -d "${2}s" -s "$BENCH_DIR/report.lua" "$1" >"$3" 2>&1 ;;
    esac
}
# parse OUTFILE -> "requests duration_us p50_us p99_us mean_us errors"
parse() {
    case $MODE in
        h2)
            local pct
            pct=$(cut -f3 "$LAT_DIR/$(basename "$1").lat" | sort -n | awk '{v[NR] = $1}
                function rank(p,  i) { i = int(p * NR); if (i < p * NR) i++; return v[i < 1 ? 1 : i] }
                END {print NR ? rank(0.50) " " rank(0.99) : "- -"}')
            awk -v pct="$pct" '/^finished in/ {d = $3; sub(/s,$/, "", d)}
                 /^requests:/ {ok = $8; bad = $10 + $12 + $14}
                 /^time for request:/ {m = $6; u = m; sub(/[a-z]+$/, "", u); sub(/^[0-9.]+/, "", m)
                                       mean = u * (m == "us" ? 1 : m == "ms" ? 1000 : 1000000)}
                 END {printf "%d %d %s %d %d\n", ok, d * 1000000, pct, mean, bad}' "$1" ;;
        fixed)  # hey: seconds with 4 decimals; requests = 2xx responses, errors = the rest
            awk -v dur="$DURATION" '/^  Total:/ {d = $2} /^  Average:/ {mean = $2}
                 /^  50% in/ {p50 = $3} /^  99% in/ {p99 = $3}
                 /^  \[2[0-9][0-9]\]/ {ok += $2} /^  \[[13-9][0-9][0-9]\]/ {bad += $2}
                 /^Error distribution:/ {errs = 1; next} errs && /^  \[[0-9]+\]/ {n = $1; gsub(/[][]/, "", n); bad += n}
                 END {if (d == "") exit; printf "%d %d %d %d %d %d\n", ok, d * 1e6, p50 * 1e6, p99 * 1e6, mean * 1e6, bad}' "$1" ;;
        *)
            sed -n 's/^RESULT requests=\([0-9]*\) duration_us=\([0-9]*\) p50_us=\([0-9]*\) p99_us=\([0-9]*\) mean_us=\([0-9]*\) errors=\([0-9]*\)$/\1 \2 \3 \4 \5 \6/p' "$1" ;;
    esac
}

# reset_hwm PID - restart the peak-RSS counter (VmHWM) of a process tree (Linux >= 4.0)
reset_hwm() { local p; for p in $(tree_pids "$1"); do echo 5 >"/proc/$p/clear_refs" 2>/dev/null || true; done; }

measure() {  # measure TARGET - warm up, then one measured run; sets $row, $rps, $other
    local t=$1 url="$SCHEME://127.0.0.1:${PORT_OF[$1]}$URL_PATH" proxy_pid=${PID[$1]:-}
    [ "$t" = direct ] && proxy_pid=""
    local p0 p1 b0 b1 l0 l1 s0 s1 hwm req dur p50 p99 mean err ptk
    [ "$WARMUP" -gt 0 ] && load "$url" "$WARMUP" "$RUN_DIR/warmup.out"
    [ -n "$proxy_pid" ] && reset_hwm "$proxy_pid"
    p0=$([ -n "$proxy_pid" ] && cpu_ticks "$proxy_pid" || echo 0)
    b0=$(cpu_ticks "${PID[backend]}"); l0=$(self_child_ticks); s0=$(busy_ticks)
    load "$url" "$DURATION" "$RUN_DIR/last.out"
    s1=$(busy_ticks); l1=$(self_child_ticks); b1=$(cpu_ticks "${PID[backend]}")
    p1=$([ -n "$proxy_pid" ] && cpu_ticks "$proxy_pid" || echo 0)
    hwm=$([ -n "$proxy_pid" ] && hwm_kb "$proxy_pid" || echo 0)
    read -r req dur p50 p99 mean err < <(parse "$RUN_DIR/last.out") || true
    if [ -z "${req:-}" ] || [ "${dur:-0}" -eq 0 ]; then
        echo "$t ($MODE): the load generator gave no result:" >&2; cat "$RUN_DIR/last.out" >&2; exit 1
    fi
    if [ -n "$proxy_pid" ] && ! running "$proxy_pid"; then echo "$t died, see $RUN_DIR/$t.log" >&2; exit 1; fi
    ptk=""; [ -n "$proxy_pid" ] && ptk=$((p1 - p0))
    row="$t,$req,$dur,$p50,$p99,$mean,$err,$ptk,$((b1 - b0)),$((l1 - l0)),$hwm,$((s1 - s0))"
    rps=$(echo "$req $dur" | awk '{printf "%.0f", $1 / ($2 / 1e6)}')
    other=$((100 * (s1 - s0 - ${ptk:-0} - (b1 - b0) - (l1 - l0)) / CLK_TCK / DURATION))
}

wait_quiet() {  # wait (at most QUIET_WAIT s) until the machine uses under 10% of a core
    local s0 s1 waited=0
    while :; do
        s0=$(busy_ticks); sleep 1; s1=$(busy_ticks)
        [ $((100 * (s1 - s0) / CLK_TCK)) -lt 10 ] && return 0
        [ "$waited" -ge "$QUIET_WAIT" ] && { echo "  machine still busy after ${QUIET_WAIT}s, measuring anyway" >&2; return 0; }
        [ "$waited" -eq 0 ] && echo "  waiting for the machine to go quiet (at most ${QUIET_WAIT}s)..." >&2
        waited=$((waited + 1))
    done
}

stamp=$(date +%Y%m%d-%H%M%S)
echo "# $(date -u '+%Y-%m-%d %H:%M UTC')  $(uname -sr)  $(nproc) CPUs  $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
echo "# $(nginx -v 2>&1)  |  $(haproxy -v | head -1 | cut -d' ' -f1-3)  |  $(wrk -v 2>&1 | head -1 | cut -d' ' -f1-2 || true)  |  $(h2load --version)  |  hey (Debian $(dpkg-query -W -f='${Version}' hey 2>/dev/null))"
echo "# trellis: $TRELLIS_CMD"
echo "# ROUNDS=$ROUNDS DURATION=${DURATION}s WARMUP=${WARMUP}s CONNS=$CONNS THREADS=$THREADS WORKERS=$WORKERS BACKEND_WORKERS=$BACKEND_WORKERS PIN=$PIN STREAMS=$STREAMS RATE=$RATE"

for MODE in $MODES; do
    set_mode "$MODE"
    targets=${TARGETS:-$MODE_TARGETS}
    for t in $targets; do   # every target must answer 200 with the backend's body first
        [ -n "${PORT_OF[$t]:-}" ] || continue
        # shellcheck disable=SC2086
        body=$(curl -sS --fail --max-time 2 $CURL_OPT "$SCHEME://127.0.0.1:${PORT_OF[$t]}$URL_PATH") || true
        case "${body:0:2}" in ok|xx) ;; *) echo "$t ($MODE) on port ${PORT_OF[$t]} answered '${body:0:60}'" >&2; exit 1 ;; esac
    done
    CSV="$OUT_DIR/results-$MODE-$stamp.csv"
    echo "round,target,requests,duration_us,p50_us,p99_us,mean_us,errors,proxy_ticks,backend_ticks,loadgen_ticks,proxy_hwm_kb,machine_ticks" >"$CSV"
    echo >&2; echo "== $MODE" >&2
    for round in $(seq "$ROUNDS"); do
        for t in $targets; do
            [ -n "${PORT_OF[$t]:-}" ] || continue
            for try in $(seq 0 "$RETRIES"); do
                wait_quiet
                measure "$t"
                printf '  %-5s round %d/%d  %-8s %9d req/s   other CPU %3d%%\n' "$MODE" "$round" "$ROUNDS" "$t" "$rps" "$other" >&2
                [ "$other" -le "$NOISE_MAX" ] && break
                [ "$try" -lt "$RETRIES" ] && echo "  other CPU above ${NOISE_MAX}% during that run, measuring it again" >&2
            done
            echo "$round,$row" >>"$CSV"
        done
    done
    echo
    echo "### $MODE"
    echo
    "$BENCH_DIR/summarize.sh" "$CSV" "$targets" "$CLK_TCK" "$NOISE_MAX"
    echo
    echo "raw runs: $CSV"
done
