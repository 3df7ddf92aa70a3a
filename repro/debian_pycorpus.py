"""Build folders of real Python projects from Debian's packages, for stdlib-great's extraction benchmark.

    python repro/debian_pycorpus.py OUT_DIR                  # OUT_DIR/projects: django, sympy, flask, requests
    python repro/debian_pycorpus.py OUT_DIR --size large     # OUT_DIR/large: those and 22 more (~10x the files)
    python repro/debian_pycorpus.py OUT_DIR --size huge      # and 18 more (OpenStack, numba, mypy, ...)

`fetch.source=OUT_DIR/projects` (dataset stdlib-great) then makes VarMisuse samples from them:
`repro/bench_varmisuse_extract.py` times it. `apt-get download` fetches the binary packages (`.deb`,
nothing is installed) with the machine's apt sources; `dpkg-deb -x` unpacks them and the `.py` files
under `usr/lib/python3/dist-packages` are copied, each package's modules at the top of the folder.
The corpus is never committed (the large one is ~70 MB of packages).
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
from codemem.varmisuse.python_corpus import corpus_files  # the file list extraction uses

PROJECTS = ["python3-django", "python3-sympy", "python3-flask", "python3-requests"]
MORE = ["ansible", "ansible-core", "python3-twisted", "python3-matplotlib", "python3-scipy", "python3-pandas",
        "python3-sqlalchemy", "python3-docutils", "python3-sphinx", "python3-numpy", "python3-networkx",
        "python3-astropy", "python3-sklearn", "python3-nltk", "python3-pygments", "python3-tornado",
        "python3-setuptools", "python3-botocore", "python3-babel", "python3-jedi", "python3-hypothesis",
        "python3-dask"]  # fmt: skip
EVEN_MORE = ["python3-nova", "python3-neutron", "python3-cinder", "python3-heat", "python3-keystone", "python3-glance",
             "python3-ironic", "python3-manila", "python3-octavia", "python3-designate", "python3-numba", "python3-pip",
             "python3-openstackclient", "python3-novaclient", "python3-tempest", "python3-pyqtgraph", "python3-scrapy",
             "python3-mypy"]  # fmt: skip
SIZES = {"projects": PROJECTS, "large": PROJECTS + MORE, "huge": PROJECTS + MORE + EVEN_MORE}


def download(packages: list[str], debs: Path) -> list[Path]:
    debs.mkdir(parents=True, exist_ok=True)
    missing = [p for p in packages if not list(debs.glob(f"{p}_*.deb"))]
    if missing:
        subprocess.run(["apt-get", "download", *missing], cwd=debs, check=True, capture_output=True)
    return sorted(p for name in packages for p in debs.glob(f"{name}_*.deb"))


def unpack(debs: list[Path], out: Path) -> dict:
    """Every package's dist-packages `.py` files into `out` (a folder replaced whole)."""
    counts = {"files": 0, "bytes": 0, "packages": [d.name for d in debs]}
    tmp_out = out.with_name(f".{out.name}.tmp")
    shutil.rmtree(tmp_out, ignore_errors=True)
    for deb in debs:
        with tempfile.TemporaryDirectory() as tmp:
            subprocess.run(["dpkg-deb", "-x", str(deb), tmp], check=True)
            site = Path(tmp) / "usr/lib/python3/dist-packages"
            for src in sorted(site.rglob("*.py")) if site.is_dir() else []:
                target = tmp_out / src.relative_to(site)
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(src, target)
                counts["files"] += 1
                counts["bytes"] += src.stat().st_size
    shutil.rmtree(out, ignore_errors=True)
    tmp_out.rename(out)
    return counts


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("out", type=Path)
    ap.add_argument("--size", choices=sorted(SIZES), default="projects")
    args = ap.parse_args()
    t0 = time.time()
    debs = download(SIZES[args.size], args.out / "debs")
    counts = unpack(debs, args.out / args.size) | {"seconds": round(time.time() - t0, 1)}
    (args.out / f"{args.size}.json").write_text(json.dumps(counts, indent=2) + "\n")
    print(f"{args.out / args.size}: {counts['files']} .py files ({len(corpus_files(args.out / args.size))} outside test "
          f"folders: the corpus), {counts['bytes'] / 2**20:.0f} MiB from {len(debs)} packages in {counts['seconds']} s")


if __name__ == "__main__":
    main()
