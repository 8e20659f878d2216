#!/usr/bin/env bash
# The whole suite (`make bench`): load comparison (all scenarios) then the scale runs; every
# table goes to bench/results/<time>/summary.md (raw CSV / JSON beside it).
#   QUICK=1 bench/run.sh     # 1 round of 3 s per scenario, scale up to 1,000 routes (~3 min)
set -euo pipefail
BENCH_DIR=$(cd "$(dirname "$0")" && pwd)
# Defaults that keep a full run near 10-15 minutes on 2 cores (compare.sh alone uses longer runs).
export ROUNDS=${ROUNDS:-3} DURATION=${DURATION:-6} WARMUP=${WARMUP:-1} QUIET_WAIT=${QUIET_WAIT:-15} RETRIES=${RETRIES:-1}
if [ "${QUICK:-0}" = 1 ]; then
    export ROUNDS=1 DURATION=3 WARMUP=1 QUIET_WAIT=5
    export SCALE_SIZES=${SCALE_SIZES:-10,1000} SCALE_DURATION=${SCALE_DURATION:-2}
fi
OUT_DIR=${OUT_DIR:-$BENCH_DIR/results/$(date +%Y%m%d-%H%M%S)}
export OUT_DIR
mkdir -p "$OUT_DIR"
started=$(date +%s)
{
    echo "# Trellis benchmark run $(date -u '+%Y-%m-%d %H:%M UTC')"
    echo
    echo "trellis $(git -C "$BENCH_DIR/.." rev-parse --short HEAD 2>/dev/null || echo '?')$(git -C "$BENCH_DIR/.." diff --quiet 2>/dev/null || echo ' (+ local changes)')"
    echo
    echo '## Load: Trellis vs nginx vs HAProxy'
    echo
    "$BENCH_DIR/compare.sh"
    echo
    echo '## Scale: 10 / 1,000 / 10,000 HTTPRoutes'
    echo
    "$BENCH_DIR/scale.py"
    echo
    echo "total wall time: $(( $(date +%s) - started )) s"
} | tee "$OUT_DIR/summary.md"
echo "results: $OUT_DIR/summary.md" >&2
