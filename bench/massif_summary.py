#!/usr/bin/env python3
"""Groups one massif snapshot into the structures that hold the bytes (by the innermost Trellis
frame of each allocation stack). See BENCHMARKS.md (Memory: where the bytes are).

    bench/massif_summary.py massif.out SNAPSHOT_NUMBER
"""
import re, sys, collections
if len(sys.argv) < 3:
    sys.exit(__doc__)
f, snap = sys.argv[1], sys.argv[2]
lines = open(f).read().split("\n")
i = lines.index(f"snapshot={snap}")
while not lines[i].startswith("heap_tree"): i += 1
i += 1
CATS = [
    ("compiled regexes (proxy)", r"regex::|Regex::new"),
    ("raw objects kept by the file provider (Value trees / JSON text)", r"parse_yaml_documents|StoredObject|extend_desugared.*(SourcedObject|StoredObject)|value::de::"),
    ("last-good copies kept by the typer (Value trees / JSON text)", r"typing::"),
    ("statuses served on /status (Value trees)", r"httproute::translate|trellis_translate::translate \(lib.rs:9[12]\)"),
    ("IR (Arc<Config>, shared by /config_dump and the proxy)", r"trellis_translate::build|trellis_translate::translate \(lib.rs:10"),
    ("proxy route tables (per route / virtual host / host map)", r"trellis_proxy::"),
    ("generation bookkeeping (fingerprints, keys)", r"generations::"),
    ("file bytes kept for change detection", r"FileProvider::scan"),
    ("statuses served on /status (Value trees)", r"ObjectStatus"),
    ("IR (Arc<Config>, shared by /config_dump and the proxy)", r"trellis_ir::"),
    ("raw objects kept by the file provider (Value trees / JSON text)", r"trellis_provi|SourcedObject"),
    ("generation bookkeeping (fingerprints, keys)", r"find_or_find_insert_index"),
]
stack = []; agg = collections.Counter(); total = 0
while i < len(lines) and re.match(r"\s*n\d+:", lines[i]):
    l = lines[i]; ind = len(l) - len(l.lstrip())
    m = re.match(r"\s*n(\d+): (\d+) (.*)", l)
    kids, b, name = int(m.group(1)), int(m.group(2)), m.group(3)
    del stack[ind:]; stack.append(name)
    if ind == 0: total = b
    elif kids == 0:
        tr = [s for s in stack[1:] if re.search(r"trellis|crates/", s)]
        inner = " ".join(stack[1:])
        cat = "runtime, libraries, below threshold"
        if tr:
            first = tr[0]
            for c, pat in CATS:
                if re.search(pat, first) or (c.startswith("compiled regexes") and re.search(pat, inner) and "trellis_proxy" in first):
                    cat = c; break
            else:
                cat = "other Trellis: " + re.sub(r"::h[0-9a-f]{16}|^0x[0-9A-F]+: ", "", first)[:60]
        agg[cat] += b
    i += 1
print(f"total live heap {total/1048576:.1f} MiB")
for k, b in agg.most_common():
    print(f"{b/1048576:7.2f} MiB {b*100/total:5.1f}%  {k}")
