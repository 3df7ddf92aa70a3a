"""fetch: put the raw corpus of `dataset` into build/raw as one normalised zip, plus a manifest.

For `jdk-top10` the corpus is a JDK's `src.zip`, found in this order: `fetch.source` when it is a
path (a zip or a folder of .java files: a user's own corpus), `$JAVA_HOME/lib/src.zip`,
`/usr/lib/jvm/*/lib/src.zip`, and finally Debian's `openjdk-17-source` package, which
`apt-get download` + `dpkg-deb -x` unpack without touching the system. Generated code
(`jdk.localedata`), `package-info.java` and `module-info.java` are left out. The output zip is
written deterministically (sorted names, fixed timestamps), so the same sources give the same
bytes and DVC skips everything downstream. The manifest records what was used: path, version,
sha256.

VarMisuse datasets write the same kind of zip:
- `stdlib` (stdlib-great): the `.py` files of the running Python's standard library, without test
  folders and site-packages (the file list of `extract.python_corpus.corpus_files`), or of the folder in
  `fetch.source`; the manifest records the Python version and `stdlib_version`'s sha256.
- `great-shards` (py150-great): the published GREAT shards from the folder in `fetch.source`, as
  `train/`, `dev/`, `eval/` members, each shard's sha256 recorded. Without `fetch.source` they are
  downloaded instead (codemem.remote), as are code2seq's Java archives (java-small/med/large/top10).
"""

from __future__ import annotations

import glob
import hashlib
import json
import os
import shutil
import subprocess
import sysconfig
import tempfile
import zipfile
from collections.abc import Callable
from pathlib import Path

from codemem import datasets, storage
from codemem.errors import UserError
from codemem.params import Params
from codemem.progress import progress_bar
from codemem.storage import PROJECT, Layout, sha256_file

EXCLUDED_PARTS = ("jdk.localedata/",)
EXCLUDED_NAMES = ("package-info.java", "module-info.java")
DEBIAN_PACKAGE = "openjdk-17-source"


class FetchError(UserError):
    """The corpus cannot be found or read; the message says which source and what to do."""


def keep(name: str) -> bool:
    """Whether a corpus member is source we extract from."""
    return (
        name.endswith(".java")
        and not any(part in name for part in EXCLUDED_PARTS)
        and not name.rsplit("/", 1)[-1] in EXCLUDED_NAMES
    )


def jdk_version(src_zip: Path) -> str:
    """JAVA_VERSION from the `release` file of the JDK that holds src_zip, if any."""
    for release in (src_zip.resolve().parent.parent / "release", src_zip.parent.parent / "release"):
        if release.exists():
            for line in release.read_text(errors="replace").splitlines():
                if line.startswith("JAVA_VERSION="):
                    return line.split("=", 1)[1].strip().strip('"')
    return "unknown"


def local_jdk_sources() -> list[Path]:
    candidates = []
    if os.environ.get("JAVA_HOME"):
        candidates.append(Path(os.environ["JAVA_HOME"]) / "lib" / "src.zip")
    candidates += [Path(p) for p in sorted(glob.glob("/usr/lib/jvm/*/lib/src.zip"))]
    return [p for p in candidates if p.is_file()]  # is_file follows links: dangling ones drop out


def debian_jdk_sources(workdir: Path) -> tuple[Path, str]:
    """Download and unpack Debian's openjdk-17-source into workdir (no root, no install)."""
    if not shutil.which("apt-get") or not shutil.which("dpkg-deb"):
        raise FetchError(
            "no JDK sources found: no src.zip under $JAVA_HOME/lib or /usr/lib/jvm/*/lib, and no apt-get "
            "to fetch Debian's openjdk-17-source. Install a JDK with its sources (e.g. `apt-get install "
            "openjdk-17-source`) or set `fetch.source` in params.yaml to a zip or folder of .java files."
        )
    result = subprocess.run(
        ["apt-get", "download", DEBIAN_PACKAGE], cwd=workdir, capture_output=True, text=True, check=False
    )
    debs = sorted(workdir.glob(f"{DEBIAN_PACKAGE}_*.deb"))
    if result.returncode != 0 or not debs:
        raise FetchError(
            f"no local JDK sources, and `apt-get download {DEBIAN_PACKAGE}` failed:\n{result.stderr.strip()}\n"
            "Run `apt-get update` (as root) and retry, install a JDK with src.zip, or set `fetch.source` "
            "in params.yaml to a zip or folder of .java files."
        )
    subprocess.run(["dpkg-deb", "-x", str(debs[0]), str(workdir / "root")], check=True)
    found = sorted((workdir / "root").glob("usr/lib/jvm/*/lib/src.zip"))
    if not found:
        raise FetchError(f"{debs[0].name} holds no usr/lib/jvm/*/lib/src.zip")
    version = debs[0].name.split("_")[1]
    return found[0], f"debian:{DEBIAN_PACKAGE}={version}"


def _members(source: Path) -> tuple[list[tuple[str, object]], str]:
    """(name, handle) pairs of the corpus and its kind; handle reads the bytes."""
    if source.is_dir():
        files = sorted(p for p in source.rglob("*") if p.is_file() and keep(p.relative_to(source).as_posix()))
        return [(p.relative_to(source).as_posix(), p) for p in files], "folder"
    if zipfile.is_zipfile(source):
        with zipfile.ZipFile(source) as z:
            names = sorted(n for n in z.namelist() if keep(n))
        return [(n, n) for n in names], "zip"
    raise FetchError(f"fetch.source {source} is neither a folder nor a zip file of .java sources")


def write_zip(members: list[tuple[str, object]], read: Callable[[object], bytes], out_zip: Path) -> int:
    """Write (name, handle) members, in the order given, into a deterministic zip (fixed timestamps,
    one compression level), reading each with `read(handle)`; return the bytes written."""
    total = 0
    with zipfile.ZipFile(out_zip, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as out:
        for name, handle in progress_bar(members, description="fetch: copying sources"):
            data = read(handle)
            info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            out.writestr(info, data, compresslevel=1)
            total += len(data)
    return total


def _read_file(path) -> bytes:
    return Path(path).read_bytes()


def write_corpus(source: Path, out_zip: Path) -> dict:
    """Copy the kept .java files of `source` into a deterministic zip; return counts."""
    members, kind = _members(source)
    if not members:
        raise FetchError(f"{source} holds no .java files to extract from")
    src_zip = zipfile.ZipFile(source) if kind == "zip" else None
    try:
        total = write_zip(members, src_zip.read if src_zip else _read_file, out_zip)
    finally:
        if src_zip:
            src_zip.close()
    return {"files": len(members), "bytes": total, "kind": kind}


def fetch_stdlib(params: Params, out_dir: Path) -> dict:
    """stdlib-great: the standard library's .py files (or those of the folder in fetch.source)."""
    from codemem.varmisuse.python_corpus import corpus_files, stdlib_version

    if params.fetch.source == "auto":
        root, origin = Path(sysconfig.get_paths()["stdlib"]), "Python standard library"
    else:
        root, origin = Path(params.fetch.source).expanduser(), "fetch.source"
        if not root.is_dir():
            raise FetchError(f"fetch.source {root} is not a folder: for {params.dataset} set it to a folder of "
                             ".py files, or to auto (the running Python's standard library)")
    files = corpus_files(root)  # the extractor's own file list: no test folders, no site-packages
    if not files:
        raise FetchError(f"{root} holds no .py files to build VarMisuse samples from")
    version = stdlib_version(root)
    manifest = {
        "dataset": params.dataset,
        "origin": origin,
        "source": str(root),
        "version": version["python"] if origin != "fetch.source" else "n/a",
        "implementation": version["implementation"],
        "source_sha256": version["sha256"],  # over relative paths and file contents
    }
    with storage.atomic_dir(out_dir) as tmp:
        total = write_zip([(rel, root / rel) for rel in files], _read_file, tmp / "corpus.zip")
        manifest |= {"files": len(files), "bytes": total, "kind": "folder"}
        manifest["corpus_sha256"] = sha256_file(tmp / "corpus.zip")
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest


GREAT_SPLITS = storage.VARMISUSE_SPLITS


def great_shards(root: Path) -> list[tuple[str, Path]]:
    """(zip member name `split/file`, path) of the published shards under root, sorted. A shard's
    split is its name's prefix (`train__VARIABLE_MISUSE__SStuB.txt-00000-of-00300`) or its folder."""
    found = []
    for path in sorted(p for p in root.rglob("*") if p.is_file() and not p.name.startswith(".")):
        rel = path.relative_to(root)
        split = next((s for s in GREAT_SPLITS if path.name.startswith(f"{s}__")), None)
        split = split or next((s for s in GREAT_SPLITS if s in rel.parts[:-1]), None)
        if split:
            found.append((f"{split}/{path.name}", path))
    return sorted(found)


def fetch_great_shards(params: Params, out_dir: Path) -> dict:
    """py150-great with fetch.source: copy the shards of a local folder (`auto` downloads them instead)."""
    root = Path(params.fetch.source).expanduser()
    if not root.is_dir():
        raise FetchError(f"fetch.source {root} is not a folder of Py150-Great shards (train/, dev/, eval/)")
    members = great_shards(root)
    splits = {s: sum(name.startswith(f"{s}/") for name, _ in members) for s in GREAT_SPLITS}
    if not splits["train"] or not splits["eval"]:
        raise FetchError(f"{root} holds no {' or '.join(s for s in ('train', 'eval') if not splits[s])} shards: "
                         "expected files like train/train__VARIABLE_MISUSE__SStuB.txt-00000-of-00300")
    shard_sha = {name: sha256_file(path) for name, path in members}
    manifest = {
        "dataset": params.dataset,
        "origin": "fetch.source",
        "source": str(root),
        "version": "n/a",
        "source_sha256": _digest(shard_sha),
        "shards": splits,
        "shard_sha256": shard_sha,
    }
    with storage.atomic_dir(out_dir) as tmp:
        total = write_zip(members, _read_file, tmp / "corpus.zip")
        manifest |= {"files": len(members), "bytes": total, "kind": "folder"}
        manifest["corpus_sha256"] = sha256_file(tmp / "corpus.zip")
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest


def _digest(hashes: dict[str, str]) -> str:
    """One sha256 over (name, sha256) pairs, as `stdlib_version` computes it."""
    h = hashlib.sha256()
    for name, digest in sorted(hashes.items()):
        h.update(f"{name}\0{digest}\n".encode())
    return h.hexdigest()


def run(params: Params, layout: Layout = PROJECT) -> dict:
    out_dir = layout.raw
    kind = datasets.get(params.dataset).kind
    if kind == "stdlib":
        return fetch_stdlib(params, out_dir)
    if kind == "great-shards" and params.fetch.source == "auto":
        from codemem import remote

        return remote.fetch_great(params, out_dir)
    if kind == "great-shards":
        return fetch_great_shards(params, out_dir)
    if kind == "java-archive":
        from codemem import remote

        return remote.fetch_archive(params, out_dir)
    with tempfile.TemporaryDirectory() as scratch:
        if params.fetch.source != "auto":
            source = Path(params.fetch.source).expanduser()
            if not source.exists():
                raise FetchError(f"fetch.source {source} does not exist: set it to a zip or folder of .java files, or to auto")
            origin = "fetch.source"
            version = jdk_version(source) if source.is_file() else "n/a"
        elif local := local_jdk_sources():
            source, origin, version = local[0], "local JDK", jdk_version(local[0])
        else:
            source, version = debian_jdk_sources(Path(scratch))
            origin = "Debian package"
        manifest = {
            "dataset": params.dataset,
            "origin": origin,
            "source": str(source),
            "version": version,
            "source_sha256": sha256_file(source) if source.is_file() else None,
        }
        with storage.atomic_dir(out_dir) as tmp:
            manifest |= write_corpus(source, tmp / "corpus.zip")
            manifest["corpus_sha256"] = sha256_file(tmp / "corpus.zip")
            (tmp / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest
