"""Compare codemem's Java path extraction with JavaParser's own AST (an oracle, not a CI test).

    python repro/java_oracle.py [--files 400] [--step 7] [--jar /usr/share/java/javaparser-core.jar]

Needs a JDK (javac, java), JavaParser's jar (Debian: `apt-get install libjavaparser-java`, 3.16) and
a JDK src.zip (/usr/lib/jvm/*/lib/src.zip). It compiles repro/javaparser_oracle/PathShapes.java,
which rebuilds JavaParser 3.0.0-alpha.4's AST shape (the one code2vec/code2seq's extractor walks)
from 3.16's, and counts, per method with a body, the leaf pairs within the path limits by shape
(edges up, edges down, width). This script extracts the same methods with codemem's extractor and
compares, per method: the number of leaves, the number of contexts (all valid pairs, no sampling)
and the multiset of shapes (overlap = sum of per-shape minimum counts / larger total).

The figures are a measurement, not a pass/fail gate; `--min-overlap` makes it one.
"""

from __future__ import annotations

import argparse
import glob
import os
import statistics
import subprocess
import sys
import tempfile
import zipfile
from collections import Counter
from pathlib import Path

from codemem.extract.java import JavaExtractor, PathConfig, _Tree

HERE = Path(__file__).resolve().parent


def our_shapes(ex: JavaExtractor, method, src: bytes) -> tuple[int, Counter]:
    t = _Tree(method, src)
    shapes: Counter = Counter()
    n = len(t.leaves)
    for p in ex._pairs(t):
        i, j, up = ex._decode(p, n)
        a, b = t.leaf_nodes[i], t.leaf_nodes[j]
        down = t.depth[b] - t.depth[a] + up
        for _ in range(up - 1):
            a = t.parent[a]
        for _ in range(down - 1):
            b = t.parent[b]
        shapes[(up, down, t.child_idx[b] - t.child_idx[a])] += 1
    return n, shapes


def run_oracle(jar: str, src_zip: str, entries: list[str], max_len: int, max_width: int) -> str:
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(["javac", "-d", tmp, "-cp", jar, str(HERE / "javaparser_oracle" / "PathShapes.java")], check=True)
        out = subprocess.run(["java", "-Xss1g", "-cp", f"{jar}{os.pathsep}{tmp}", "PathShapes", src_zip,
                              str(max_len), str(max_width)],
                             input="\n".join(entries) + "\n", capture_output=True, text=True, check=True)
        return out.stdout


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--jar", default="/usr/share/java/javaparser-core.jar")
    ap.add_argument("--src-zip", default=None)
    ap.add_argument("--prefix", default="java.base/", help="src.zip entries to sample from")
    ap.add_argument("--files", type=int, default=300)
    ap.add_argument("--step", type=int, default=11, help="take every step-th file")
    ap.add_argument("--max-leaves", type=int, default=400, help="skip larger methods (quadratic oracle)")
    ap.add_argument("--worst", type=int, default=8, help="print the most different methods")
    ap.add_argument("--min-overlap", type=float, default=None, help="exit 1 if the mean shape overlap is lower")
    args = ap.parse_args()
    zips = [args.src_zip] if args.src_zip else [p for p in sorted(glob.glob("/usr/lib/jvm/*/lib/src.zip")) if os.path.isfile(p)]
    if not zips or not os.path.isfile(args.jar):
        print("needs a JDK src.zip and JavaParser's jar (apt-get install libjavaparser-java)", file=sys.stderr)
        return 2
    with zipfile.ZipFile(zips[0]) as z:
        names = [n for n in z.namelist() if n.startswith(args.prefix) and n.endswith(".java")
                 and not n.endswith(("package-info.java", "module-info.java"))][:: args.step][: args.files]
        sources = {n: z.read(n) for n in names}
    config = PathConfig(max_contexts=10**9)
    oracle = run_oracle(args.jar, zips[0], names, config.max_path_length, config.max_path_width)

    ex = JavaExtractor(config)
    ours: dict[tuple[str, int, str], object] = {}
    for name, src in sources.items():
        for method, _ in ex._method_nodes(src):
            key = (name, method.start_point[0] + 1, method.child_by_field_name("name").text.decode())
            ours[key] = method
    rows, unparsed, unmatched = [], 0, 0
    for line in oracle.splitlines():
        f = line.split("\t")
        if f[0] == "F":
            unparsed += 1
            continue
        entry, lineno, mname, leaves, contexts = f[1], int(f[2]), f[3], int(f[4]), int(f[5])
        if contexts < 0 or leaves > args.max_leaves:
            continue
        method = ours.get((entry, lineno, mname))
        if method is None:
            unmatched += 1
            continue
        shapes = Counter()
        for item in filter(None, f[6].split(";")) if len(f) > 6 else []:
            k, v = item.split("=")
            shapes[tuple(map(int, k.split(":")))] = int(v)
        n, mine = our_shapes(ex, method, sources[entry])
        total_o, total_m = sum(shapes.values()), sum(mine.values())
        overlap = sum((shapes & mine).values()) / max(total_o, total_m, 1)
        rows.append((entry, lineno, mname, leaves, n, total_o, total_m, overlap))

    if not rows:
        print("no methods compared", file=sys.stderr)
        return 2
    k = len(rows)
    rel = [abs(r[6] - r[5]) / max(r[5], 1) for r in rows]
    overlaps = [r[7] for r in rows]
    pct = lambda c: f"{100 * c / k:.1f}%"
    print(f"files: {len(names)} sampled, {unparsed} JavaParser 3.16 cannot parse; methods compared: {k}"
          f" ({unmatched} unmatched by file/line/name)")
    print(f"leaves per method equal: {pct(sum(r[3] == r[4] for r in rows))}")
    print(f"contexts per method equal: {pct(sum(r[5] == r[6] for r in rows))}; within 10%: "
          f"{pct(sum(x <= 0.10 for x in rel))}; median |rel diff| {statistics.median(rel):.3f}; "
          f"totals oracle {sum(r[5] for r in rows)} ours {sum(r[6] for r in rows)}")
    print(f"shape multiset (up, down, width) overlap: mean {statistics.fmean(overlaps):.3f}, median "
          f"{statistics.median(overlaps):.3f}; identical {pct(sum(o == 1.0 for o in overlaps))}; "
          f">= 0.9: {pct(sum(o >= 0.9 for o in overlaps))}")
    if args.worst:
        print("most different (file:line name  leaves oracle/ours  contexts oracle/ours  overlap):")
        for r in sorted(rows, key=lambda r: r[7])[: args.worst]:
            print(f"  {r[0]}:{r[1]} {r[2]}  {r[3]}/{r[4]}  {r[5]}/{r[6]}  {r[7]:.3f}")
    if args.min_overlap is not None and statistics.fmean(overlaps) < args.min_overlap:
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
