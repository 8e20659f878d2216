#!/usr/bin/env python3
"""Scale runs: Trellis with 10, 1,000 and 10,000 HTTPRoutes.

For each size: start `trellis run` on a config with one catch-all route, measure idle RSS, then
write the N-route file and measure the time from the write (rename) to the admin /status version
moving and to every sampled route answering 200; then RSS, `trellis translate` time, the
apply time the proxy reports on /metrics, and request latency (wrk, keep-alive) on one of the
routes. Prints a Markdown table; raw numbers go to OUT_DIR/scale-<time>.json.

    bench/scale.py [--sizes 10,1000,10000] [--trellis target/release/trellis]

Needs nginx (the backend on 127.0.0.1:18080 is started here unless one already answers) and wrk.
Every process started here is stopped by PID at the end. All traffic stays on 127.0.0.1.
"""

import argparse
import http.client
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

BENCH = os.path.dirname(os.path.abspath(__file__))
GW_PORT = 18085
ADMIN = ("127.0.0.1", 19905)
STARTED = []


def gateway_yaml():
    return f"""apiVersion: gateway.networking.k8s.io/v1
kind: GatewayClass
metadata: {{name: trellis}}
spec: {{controllerName: trellis.dev/gateway-controller}}
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {{name: scale, namespace: default}}
spec:
  gatewayClassName: trellis
  addresses: [{{type: IPAddress, value: 127.0.0.1}}]
  listeners:
  - {{name: http, protocol: HTTP, port: {GW_PORT}}}
---
apiVersion: trellis.dev/v1alpha1
kind: Backend
metadata: {{name: upstream, namespace: default}}
spec:
  endpoints: [{{address: 127.0.0.1, port: 18080}}]
"""


BACKEND_REF = "    backendRefs: [{group: trellis.dev, kind: Backend, name: upstream}]\n"


def route(i):
    """Route i: its own hostname and path; every 10th a regex path, every 7th a header match."""
    rule = f"  - matches:\n    - path: {{type: PathPrefix, value: /p{i}}}\n"
    if i % 10 == 3:
        rule = f"  - matches:\n    - path: {{type: RegularExpression, value: '/re{i}/[a-z]+'}}\n"
    if i % 7 == 5:
        rule = rule.rstrip("\n") + f"\n      headers: [{{name: x-tenant, value: t{i}}}]\n"
    return (
        "---\napiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\n"
        f"metadata: {{name: r{i}, namespace: default}}\n"
        f"spec:\n  parentRefs: [{{name: scale}}]\n  hostnames: [h{i}.scale.test]\n  rules:\n"
        + rule + BACKEND_REF
    )


def request_for(i):
    """(host, path, headers) that route i serves."""
    path = f"/re{i}/abc" if i % 10 == 3 else f"/p{i}/x"
    headers = {"x-tenant": f"t{i}"} if i % 7 == 5 else {}
    return f"h{i}.scale.test", path, headers


def catch_all():
    """A route for base.scale.test only, so the sampled hosts answer 404 until their routes are live."""
    return ("---\napiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\n"
            "metadata: {name: base, namespace: default}\nspec:\n  parentRefs: [{name: scale}]\n  hostnames: [base.scale.test]\n"
            "  rules:\n  - matches: [{path: {type: PathPrefix, value: /}}]\n" + BACKEND_REF)


def get(addr, path, host=None, headers=None, timeout=2.0):
    c = http.client.HTTPConnection(*addr, timeout=timeout)
    try:
        h = dict(headers or {})
        if host:
            h["Host"] = host
        c.request("GET", path, headers=h)
        r = c.getresponse()
        return r.status, r.read()
    finally:
        c.close()


def status_version():
    try:
        code, body = get(ADMIN, "/status")
        return json.loads(body)["version"] if code == 200 else None
    except (OSError, ValueError, KeyError):
        return None


def mem_kb(pid):
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(("VmRSS:", "VmHWM:")):
                out[line.split(":")[0]] = int(line.split()[1])
    return out


def cpu_ticks(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def wait_until(pred, timeout, step=0.002):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        v = pred()
        if v:
            return v
        time.sleep(step)
    return None


def start(cmd, log, **kw):
    p = subprocess.Popen(cmd, stdout=open(log, "w"), stderr=subprocess.STDOUT, **kw)
    STARTED.append(p)
    return p


def stop_all():
    for p in reversed(STARTED):
        if p.poll() is None:
            p.terminate()
    for p in STARTED:
        try:
            p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            p.kill()
    STARTED.clear()


def ensure_backend(run_dir):
    try:
        if get(("127.0.0.1", 18080), "/")[0] == 200:
            return
    except OSError:
        pass
    prefix = os.path.join(run_dir, "scale-backend")
    os.makedirs(os.path.join(prefix, "tmp"), exist_ok=True)
    os.makedirs(os.path.join(prefix, "html"), exist_ok=True)
    start(["taskset", "-c", "1", "nginx", "-p", prefix + "/", "-e", "stderr",
           "-c", os.path.join(BENCH, "backend.nginx.conf"), "-g", "worker_processes 1;"],
          os.path.join(run_dir, "scale-backend.log"))
    if not wait_until(lambda: port_open(18080), 10, 0.05):
        sys.exit("backend nginx did not start")


def port_open(port):
    import socket
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex(("127.0.0.1", port)) == 0


def wrk(host, path, headers, seconds, conns=64):
    cmd = ["taskset", "-c", "0", "wrk", "-t", "1", "-c", str(conns), "-d", f"{seconds}s",
           "-s", os.path.join(BENCH, "report.lua"), "-H", f"Host: {host}"]
    for k, v in headers.items():
        cmd += ["-H", f"{k}: {v}"]
    out = subprocess.run(cmd + [f"http://127.0.0.1:{GW_PORT}{path}"], capture_output=True,
                         text=True, timeout=seconds + 20).stdout
    m = re.search(r"RESULT requests=(\d+) duration_us=(\d+) p50_us=(\d+) p99_us=(\d+) "
                  r"mean_us=(\d+) errors=(\d+)", out)
    if not m:
        raise RuntimeError("wrk gave no result: " + out)
    return dict(zip(["requests", "duration_us", "p50_us", "p99_us", "mean_us", "errors"],
                    map(int, m.groups())))


def metric(name):
    try:
        _, body = get(ADMIN, "/metrics")
    except OSError:
        return None
    m = re.search(rf"^{name}\S* (\S+)$", body.decode(), re.M)
    return float(m.group(1)) if m else None


def one_size(n, args, run_dir):
    conf = tempfile.mkdtemp(prefix=f"trellis-scale-{n}-", dir=run_dir)
    with open(os.path.join(conf, "gateway.yaml"), "w") as f:
        f.write(gateway_yaml() + catch_all())
    env = dict(os.environ, RUST_LOG=os.environ.get("RUST_LOG", "warn"))
    cmd = ["taskset", "-c", "1", args.trellis, "run", "--config", conf,
           "--admin", f"{ADMIN[0]}:{ADMIN[1]}", "--threads", "1"]
    p = start(cmd, os.path.join(run_dir, f"scale-trellis-{n}.log"), env=env)
    if not wait_until(lambda: status_version(), 15, 0.05) or not wait_until(lambda: port_open(GW_PORT), 10, 0.05):
        sys.exit(f"trellis did not come up, see {run_dir}/scale-trellis-{n}.log")
    res = {"routes": n}
    time.sleep(1.0)
    res["idle_kb"] = mem_kb(p.pid)
    v0 = status_version()

    # the change: write the N routes next to the file, then rename it in (one atomic event)
    # (files of at most 500 documents: the YAML reader refuses more than 1024 documents a file)
    chunks = [range(k, min(k + 500, n)) for k in range(0, n, 500)]
    res["yaml_bytes"] = 0
    for c, idx in enumerate(chunks):
        text = "".join(route(i) for i in idx)
        with open(os.path.join(conf, f"routes-{c:03}.tmp"), "w") as f:
            f.write(text)
        res["yaml_bytes"] += len(text)
    sample = sorted({0, n - 1} | {(k * 7919) % n for k in range(min(n, 100))})
    pending = set(sample)
    c0 = cpu_ticks(p.pid)
    t0 = time.monotonic()
    for c in range(len(chunks)):
        os.rename(os.path.join(conf, f"routes-{c:03}.tmp"), os.path.join(conf, f"routes-{c:03}.yaml"))
    if not wait_until(lambda: (status_version() or 0) > v0, 120, 0.002):
        sys.exit("the /status version never moved")
    res["to_version_s"] = time.monotonic() - t0

    def all_serving():
        for i in list(pending):
            host, path, headers = request_for(i)
            try:
                code, body = get(("127.0.0.1", GW_PORT), path, host, headers)
            except OSError:
                return False
            if code != 200 or body[:2] != b"ok":
                return False
            pending.discard(i)
        return True

    if not wait_until(all_serving, 120, 0.002):
        sys.exit(f"routes never all served: {sorted(pending)[:10]}")
    res["to_serving_s"] = time.monotonic() - t0
    res["apply_cpu_s"] = (cpu_ticks(p.pid) - c0) / os.sysconf("SC_CLK_TCK")
    res["sampled_routes"] = len(sample)
    res["last_apply_s"] = metric("trellis_config_last_apply_seconds")
    time.sleep(0.5)
    res["loaded_kb"] = mem_kb(p.pid)

    # translator alone: `trellis translate` on the same files (parse + type + translate + render)
    t = time.monotonic()
    subprocess.run([args.trellis, "translate", "-f", conf], stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL, timeout=300)
    res["translate_cli_s"] = time.monotonic() - t

    # latency on the last route (the most work for a linear matcher), keep-alive
    host, path, headers = request_for(n - 1)
    wrk(host, path, headers, 1)
    c0 = cpu_ticks(p.pid)
    res["wrk"] = wrk(host, path, headers, args.duration)
    ticks = cpu_ticks(p.pid) - c0
    res["wrk"]["req_per_cpu_s"] = res["wrk"]["requests"] / max(ticks / os.sysconf("SC_CLK_TCK"), 1e-9)
    res["after_load_kb"] = mem_kb(p.pid)
    STARTED.remove(p)
    p.terminate()
    p.wait(timeout=30)
    shutil.rmtree(conf, ignore_errors=True)
    return res


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", default=os.environ.get("SCALE_SIZES", "10,1000,10000"))
    ap.add_argument("--trellis", default=os.environ.get(
        "TRELLIS", os.path.join(BENCH, "..", "target", "release", "trellis")))
    ap.add_argument("--duration", type=int, default=int(os.environ.get("SCALE_DURATION", "5")))
    args = ap.parse_args()
    run_dir = os.environ.get("RUN_DIR", os.path.join(BENCH, "run"))
    out_dir = os.environ.get("OUT_DIR", run_dir)
    os.makedirs(run_dir, exist_ok=True)
    os.makedirs(out_dir, exist_ok=True)
    for port in (GW_PORT, ADMIN[1]):
        if port_open(port):
            sys.exit(f"port {port} is in use")
    results = []
    try:
        ensure_backend(run_dir)
        for n in (int(s) for s in args.sizes.split(",")):
            print(f"  scale: {n} routes ...", file=sys.stderr, flush=True)
            results.append(one_size(n, args, run_dir))
    finally:
        stop_all()
    path = os.path.join(out_dir, time.strftime("scale-%Y%m%d-%H%M%S.json"))
    with open(path, "w") as f:
        json.dump(results, f, indent=1)
    mib = lambda kb: f"{kb / 1024:.1f}"
    print("| routes | YAML KiB | idle RSS MiB | write → /status version s | write → all sampled routes serve s | proxy CPU s for the change | apply s (/metrics) | `trellis translate` s | RSS MiB after apply | peak RSS MiB (VmHWM) | req/s | p50 ms | p99 ms | req per proxy CPU-s | errors |")
    print("|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|")
    for r in results:
        w = r["wrk"]
        la = f"{r['last_apply_s']:.3f}" if r["last_apply_s"] is not None else "-"
        print(f"| {r['routes']} | {r['yaml_bytes'] / 1024:.0f} | {mib(r['idle_kb']['VmRSS'])} | {r['to_version_s']:.3f} | "
              f"{r['to_serving_s']:.3f} | {r['apply_cpu_s']:.2f} | {la} | {r['translate_cli_s']:.2f} | "
              f"{mib(r['loaded_kb']['VmRSS'])} | {mib(r['after_load_kb']['VmHWM'])} | "
              f"{w['requests'] / (w['duration_us'] / 1e6):.0f} | {w['p50_us'] / 1000:.2f} | {w['p99_us'] / 1000:.2f} | "
              f"{w['req_per_cpu_s']:.0f} | {w['errors']} |")
    print()
    print(f"sampled routes per size: up to 102 (first, last, 100 spread); latency: wrk -t1 -c64 -d{args.duration}s "
          "keep-alive on the last route; trellis --threads 1 pinned to CPU 1, wrk to CPU 0; raw: " + path)


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        stop_all()
        sys.exit(130)
