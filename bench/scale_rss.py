#!/usr/bin/env python3
"""RSS only, measured as bench/scale.py does it, without load and without the translate run.

Starts `trellis run` on the gateway-only config, reads idle VmRSS after 1 s, renames the N-route
files in (scale.py's generator), waits until the 102 sampled routes answer 200, then reads VmRSS
0.5 s and 3 s later, and the apply time from /metrics. Ports 18385 / 19385 (not scale.py's).
A prefix command (e.g. valgrind massif) can be given in PREFIX; see BENCHMARKS.md (Memory).

    bench/scale_rss.py BINARY N [N...]      env: EXTRA_ENV="MIMALLOC_X=Y ...", PREFIX, SETTLE
"""
import os, sys, time, tempfile, shutil, subprocess
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import scale
scale.GW_PORT = 18385
scale.ADMIN = ("127.0.0.1", 19385)
binary = sys.argv[1]
PREFIX = os.environ.get("PREFIX", "").split()
SLOW = 30 if PREFIX else 1  # timeouts under valgrind
run_dir = tempfile.mkdtemp(prefix="trellis-rss-")
env = dict(os.environ, RUST_LOG="warn")
for kv in os.environ.get("EXTRA_ENV", "").split():
    k, v = kv.split("=", 1); env[k] = v
try:
    scale.ensure_backend(run_dir)
    for n in map(int, sys.argv[2:]):
        conf = os.path.join(run_dir, f"cfg-{n}")
        os.makedirs(conf)
        with open(os.path.join(conf, "gateway.yaml"), "w") as f:
            f.write(scale.gateway_yaml() + scale.catch_all())
        p = scale.start((PREFIX or ["taskset", "-c", "1"]) + [binary, "run", "--config", conf, "--admin",
                         f"127.0.0.1:{scale.ADMIN[1]}", "--threads", "1"],
                        os.path.join(run_dir, f"trellis-{n}.log"), env=env)
        assert scale.wait_until(scale.status_version, 15 * SLOW, 0.05)
        assert scale.wait_until(lambda: scale.port_open(scale.GW_PORT), 10 * SLOW, 0.05)
        time.sleep(1.0)
        idle = scale.mem_kb(p.pid)
        v0 = scale.status_version()
        chunks = [range(k, min(k + 500, n)) for k in range(0, n, 500)]
        for c, idx in enumerate(chunks):
            with open(os.path.join(conf, f"routes-{c:03}.tmp"), "w") as f:
                f.write("".join(scale.route(i) for i in idx))
        sample = sorted({0, n - 1} | {(k * 7919) % n for k in range(min(n, 100))})
        t0 = time.monotonic()
        for c in range(len(chunks)):
            os.rename(os.path.join(conf, f"routes-{c:03}.tmp"), os.path.join(conf, f"routes-{c:03}.yaml"))
        assert scale.wait_until(lambda: (scale.status_version() or 0) > v0, 120 * SLOW, 0.002)
        pending = set(sample)
        def serving():
            for i in list(pending):
                host, path, headers = scale.request_for(i)
                code, body = scale.get(("127.0.0.1", scale.GW_PORT), path, host, headers, timeout=2.0 * SLOW)
                if code != 200 or body[:2] != b"ok":
                    return False
                pending.discard(i)
            return True
        assert scale.wait_until(serving, 120 * SLOW, 0.002), sorted(pending)[:5]
        t = time.monotonic() - t0
        time.sleep(0.5)
        m = scale.mem_kb(p.pid)
        apply_s = scale.metric("trellis_config_last_apply_seconds")
        time.sleep(float(os.environ.get("SETTLE", "2.5")))
        m3 = scale.mem_kb(p.pid)
        print(f"{os.path.basename(binary)} {os.environ.get('EXTRA_ENV','')} n={n}: idle {idle['VmRSS']/1024:.1f} MiB, "
              f"serving after {t:.3f} s, RSS {m['VmRSS']/1024:.1f} MiB (3 s later {m3['VmRSS']/1024:.1f}), "
              f"peak {m['VmHWM']/1024:.1f} MiB, apply {apply_s or 0:.3f} s (/metrics)", flush=True)
        scale.STARTED.remove(p); p.terminate(); p.wait(timeout=30)
finally:
    scale.stop_all()
    shutil.rmtree(run_dir, ignore_errors=True)
