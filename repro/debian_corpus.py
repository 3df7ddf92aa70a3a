"""Build a Java-Small-sized look-alike archive from Debian's Java source packages, for the scale benchmark.

    python repro/debian_corpus.py OUT_DIR                     # -> OUT_DIR/java-small.tar.gz (+ java-small.json)
    python repro/debian_corpus.py OUT_DIR --root java-large   # the same files as java-large.tar.gz (java-top10)
    python repro/debian_corpus.py OUT_DIR --root java-large --copies 21   # Java-Large-sized (~14.8M methods)

The real Java-Small cannot be downloaded here, so this makes an archive in its exact layout
(`java-small/{training,validation,test}/<project>/...`, .java files only) from the upstream sources
of Debian bookworm packages: each package is one project, `jetty9` is the validation project and
`tomcat10` the test project (Java-Small too has one of each), all others are training projects.
`apt-get source --download-only` fetches the `.orig` tarballs with a private apt configuration under
OUT_DIR (a `deb-src` line for bookworm; the system's apt settings are not touched), so nothing is
installed. The corpus is never committed: it is ~170 MB of downloads and ~1 GB of Java.
"""

from __future__ import annotations

import argparse
import io
import json
import subprocess
import tarfile
import time
from pathlib import Path

PACKAGES = {
    "openjdk-17": "training", "openjfx": "training", "eclipse-jdt-core": "training", "lucene-solr": "training",
    "groovy": "training", "guava-libraries": "training", "netty": "training", "apache-log4j2": "training",
    "libcommons-lang3-java": "training", "gradle": "training", "bouncycastle": "training",
    "jetty9": "validation", "tomcat10": "test",
}  # fmt: skip
SOURCES = "deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian bookworm main\n"


def apt_options(root: Path) -> list[str]:
    return ["-o", f"Dir::Etc::SourceList={root / 'sources.list'}", "-o", "Dir::Etc::SourceParts=/nonexistent",
            "-o", f"Dir::State::Lists={root / 'lists'}", "-o", f"Dir::Cache={root / 'cache'}"]  # fmt: skip


def download(root: Path) -> dict[str, list[Path]]:
    apt = root / "apt"
    for d in ("lists/partial", "cache/archives/partial"):
        (apt / d).mkdir(parents=True, exist_ok=True)
    (apt / "sources.list").write_text(SOURCES)
    subprocess.run(["apt-get", *apt_options(apt), "update"], check=True, capture_output=True)
    debs = root / "sources"
    debs.mkdir(exist_ok=True)
    found = {}
    for package in PACKAGES:
        if not list(debs.glob(f"{package}_*.orig.tar.*")):
            result = subprocess.run(["apt-get", *apt_options(apt), "source", "--download-only", package], cwd=debs,
                                    capture_output=True, text=True, check=False)  # fmt: skip
            if result.returncode:  # a mirror may lack a file: the corpus is then a package short, and says so
                print(f"skipping {package}: {result.stderr.strip().splitlines()[-1]}")
        tarballs = sorted(p for p in debs.glob(f"{package}_*.orig*.tar.*") if "googletest" not in p.name)
        if tarballs:
            found[package] = tarballs
    return found


def repack(found: dict[str, list[Path]], out: Path, root: str = "java-small", copies: int = 1) -> dict:
    """Write the .java files of every package as one project (`copies` > 1: as that many projects,
    `<package>`, `<package>-2`, ..., each under its package's split, so the stream reaches Java-Large's
    size; the copies are byte-identical, which the name scan and the extraction do not exploit)."""
    counts = {"files": {}, "bytes": 0, "copies": copies}
    with tarfile.open(out.with_suffix(".part"), "w:gz", compresslevel=6) as tar:
        for package, tarballs in found.items():
            files = []
            for tarball in tarballs:
                with tarfile.open(tarball) as src:
                    for m in src:
                        if not (m.isfile() and m.name.endswith(".java")) or ".." in m.name.split("/"):
                            continue
                        inner = m.name.split("/", 1)[1] if "/" in m.name else m.name
                        files.append((inner, src.extractfile(m).read()))
            for copy in range(1, copies + 1):
                project = package if copy == 1 else f"{package}-{copy}"
                for inner, data in files:
                    info = tarfile.TarInfo(f"{root}/{PACKAGES[package]}/{project}/{inner}")
                    info.size, info.mtime = len(data), 1_600_000_000
                    tar.addfile(info, io.BytesIO(data))
                    counts["bytes"] += len(data)
            counts["files"][package] = len(files) * copies
    out.with_suffix(".part").rename(out)
    return counts


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("out", type=Path)
    ap.add_argument("--root", default="java-small", help="top folder and file name: java-large for java-top10")
    ap.add_argument("--copies", type=int, default=1, help="each package as this many projects (21: Java-Large-sized, ~14.8M methods)")
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    found = download(args.out)
    out = args.out / f"{args.root}.tar.gz"
    counts = repack(found, out, args.root, args.copies)
    counts |= {"packages": {p: [t.name for t in ts] for p, ts in found.items()}, "archive_bytes": out.stat().st_size,
               "seconds": round(time.time() - t0, 1)}  # fmt: skip
    (args.out / f"{args.root}.json").write_text(json.dumps(counts, indent=2) + "\n")
    print(json.dumps(counts, indent=2))


if __name__ == "__main__":
    main()
