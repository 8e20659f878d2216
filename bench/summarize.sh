#!/usr/bin/env bash
# Summarize a results CSV written by compare.sh: medians over the rounds, then each figure as a
# ratio to nginx and to HAProxy.
#   bench/summarize.sh bench/run/results-h1-YYYYMMDD-HHMMSS.csv ["nginx haproxy trellis"] [CLK_TCK] [NOISE_MAX]
set -euo pipefail
CSV=$1
TARGETS=${2:-$(awk -F, 'NR > 1 && !seen[$2]++ {printf "%s ", $2}' "$CSV")}
CLK_TCK=${3:-$(getconf CLK_TCK)}
NOISE_MAX=${4:-20}

awk -F, -v targets="$TARGETS" -v tck="$CLK_TCK" -v noise="$NOISE_MAX" '
function median(a, n,    i, j, v, b) {
    for (i = 1; i <= n; i++) b[i] = a[i]
    for (i = 2; i <= n; i++) { v = b[i]; for (j = i - 1; j > 0 && b[j] > v; j--) b[j + 1] = b[j]; b[j + 1] = v }
    return (n % 2) ? b[(n + 1) / 2] : (b[n / 2] + b[n / 2 + 1]) / 2
}
function med(name, t,    i, a, n) {
    n = 0
    for (i = 1; i <= cnt[t]; i++) if (val[t, i, name] != "") a[++n] = val[t, i, name]
    return n ? median(a, n) : ""
}
function fmt(x, f) { return x == "" ? "-" : sprintf(f, x) }
function ratio(x, y) { return (x == "" || y == "" || y == 0) ? "-" : sprintf("%.2f", x / y) }
NR == 1 { next }
{
    t = $2; i = ++cnt[t]; secs = $4 / 1e6
    val[t, i, "rps"] = $3 / secs
    val[t, i, "p50"] = ($5 == "-") ? "" : $5 / 1000
    val[t, i, "p99"] = ($6 == "-") ? "" : $6 / 1000
    val[t, i, "mean"] = $7 / 1000
    val[t, i, "pcpu"] = ($9 == "") ? "" : 100 * $9 / tck / secs
    val[t, i, "eff"] = ($9 == "" || $9 == 0) ? "" : $3 / ($9 / tck)
    val[t, i, "bcpu"] = 100 * $10 / tck / secs
    val[t, i, "lcpu"] = 100 * $11 / tck / secs
    other = 100 * ($13 - $9 - $10 - $11) / tck / secs
    if (other > maxother[t]) maxother[t] = other
    if (other > noise) noisy = noisy sprintf("  round %d %s: %.0f%%", $1, t, other)
    if ($12 > hwm[t]) hwm[t] = $12
    err[t] += $8
    if (!(t in lo) || val[t, i, "rps"] < lo[t]) lo[t] = val[t, i, "rps"]
    if (!(t in hi) || val[t, i, "rps"] > hi[t]) hi[t] = val[t, i, "rps"]
}
END {
    n = split(targets, order, " ")
    print "| target | req/s | spread | p50 ms | p99 ms | mean ms | proxy CPU % | req per proxy CPU-s | proxy peak RSS MiB | loadgen CPU % | backend CPU % | other CPU % (max) | errors |"
    print "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|"
    for (k = 1; k <= n; k++) {
        t = order[k]; if (!(t in cnt)) continue
        r = med("rps", t)
        m[t, "rps"] = r; m[t, "p50"] = med("p50", t); m[t, "p99"] = med("p99", t); m[t, "eff"] = med("eff", t)
        m[t, "rss"] = hwm[t] ? hwm[t] / 1024 : ""
        printf "| %s | %.0f | %.1f%% | %s | %s | %s | %s | %s | %s | %s | %s | %s | %d |\n", t, r,
            100 * (hi[t] - lo[t]) / r, fmt(m[t, "p50"], "%.2f"), fmt(m[t, "p99"], "%.2f"), fmt(med("mean", t), "%.2f"),
            fmt(med("pcpu", t), "%.0f"), fmt(m[t, "eff"], "%.0f"), fmt(m[t, "rss"], "%.1f"),
            fmt(med("lcpu", t), "%.0f"), fmt(med("bcpu", t), "%.0f"), sprintf("%.0f", maxother[t]), err[t]
    }
    print ""
    print "Ratios (target / nginx, target / HAProxy; req/s and req per CPU-s: higher is better; latency and RSS: lower is better):"
    print ""
    print "| target | req/s ÷ nginx | ÷ haproxy | p50 ÷ nginx | ÷ haproxy | p99 ÷ nginx | ÷ haproxy | req per CPU-s ÷ nginx | ÷ haproxy | peak RSS ÷ nginx | ÷ haproxy |"
    print "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|"
    for (k = 1; k <= n; k++) {
        t = order[k]; if (!(t in cnt) || t == "direct") continue
        line = "| " t
        split("rps p50 p99 eff rss", cols, " ")
        for (c = 1; c <= 5; c++) line = line " | " ratio(m[t, cols[c]], m["nginx", cols[c]]) " | " ratio(m[t, cols[c]], m["haproxy", cols[c]])
        print line " |"
    }
    print ""
    print "medians over " cnt[order[n]] " rounds; spread = (max - min) / median of req/s; CPU % is of one core; peak RSS = max VmHWM over the rounds (reset before each run), summed over the process tree"
    if (noisy != "") print "WARNING: other CPU over " noise "% of a core during:" noisy "; rerun on a quiet machine"
}' "$CSV"
