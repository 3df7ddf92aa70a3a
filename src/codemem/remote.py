"""fetch for the datasets that come from the internet: code2seq's Java archives and Py150-Great.

The verified bytes live in `data/` (tracked by `data.dvc`): once there, fetch never goes online again,
and `dvc push` / `dvc pull` carry them to another machine without the original host. What lands in
`data/` is checked first:

- a Java archive (`data/java-*.tar.gz`) against the sha256 in `data.checksums.json`, a git-tracked
  file written at the first download (no checksums are published) and enforced from then on;
- each Py150-Great shard (`data/py150-great/<split>/<shard>`) against its git blob SHA-1 from the
  repository that publishes it (`codemem/data/great-shards.tsv`), so the host need not be trusted.

build/raw then holds only `manifest.json` (what was used, with its hashes): extraction streams the
archive or the shards straight from `data/`, so a multi-gigabyte corpus is never copied.
"""

from __future__ import annotations

import datetime
import json
import os
import shutil
from concurrent.futures import ThreadPoolExecutor, as_completed
from importlib import resources
from pathlib import Path

from codemem import archive, datasets, storage
from codemem.download import DownloadError, Expected, download, git_blob_sha1, mismatch, sha256_of
from codemem.errors import UserError
from codemem.params import Params
from codemem.progress import log, progress_bar

DATA = Path("data")
CHECKSUMS = Path("data.checksums.json")


class RemoteError(UserError):
    """A dataset file that is missing, corrupt or unusable; the message says how to fix it."""


def _url(params: Params, ds: datasets.Dataset, rel: str) -> str:
    return f"{(params.fetch.url or ds.base_url).rstrip('/')}/{rel}"


def load_checksums(path: Path = CHECKSUMS) -> dict:
    if not path.exists():
        return {}
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise RemoteError(f"{path} is not valid JSON ({e}): restore it from git (`git checkout {path}`)") from e


def _record(path: Path, name: str, entry: dict) -> None:
    table = load_checksums(path) | {name: entry}
    storage.atomic_write(path, json.dumps(dict(sorted(table.items())), indent=2) + "\n")


def _copy_verified(source: Path, dest: Path, expected: Expected) -> None:
    """A local copy (fetch.source) goes through the same `.part` -> verify -> rename as a download."""
    part = dest.with_name(dest.name + ".part")
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, part)
    why = mismatch(part, expected)
    if why:
        part.unlink()
        raise RemoteError(f"fetch.source {source} has {why}: it is not the file recorded in {CHECKSUMS}")
    os.replace(part, dest)


def fetch_archive(params: Params, out_dir: Path, data_dir: Path = DATA, checksums: Path = CHECKSUMS) -> dict:
    """Java-Small / -Med / -Large / -Top10: make sure data/<archive> is there and verified."""
    ds = datasets.get(params.dataset)
    a = ds.archive
    local = data_dir / a.filename
    recorded = load_checksums(checksums).get(a.filename)
    expected = Expected(sha256=recorded["sha256"], size=recorded["bytes"]) if recorded else Expected()
    url = _url(params, ds, a.filename)
    if local.exists():
        origin = "data/ (already downloaded or `dvc pull`ed)"
        why = mismatch(local, expected) if recorded else None
        if why:
            bad = local.with_name(local.name + ".corrupt")
            os.replace(local, bad)
            raise RemoteError(f"{local} has {why} (recorded in {checksums}); moved it to {bad}. Run the stage again "
                              "to download it anew, or `dvc pull data.dvc` to restore the versioned copy")
    elif params.fetch.source != "auto":
        source = Path(params.fetch.source).expanduser()
        if not source.is_file():
            raise RemoteError(f"fetch.source {source} is not a file: for {ds.name} set it to a copy of {a.filename}, "
                              "or to auto (download)")
        _copy_verified(source, local, expected)
        origin = f"fetch.source {source}"
    else:
        log(f"fetch: downloading {url} ({a.size_note}) into {local}")
        download(url, local, expected, **_patience(params))
        origin = url
    sha = expected.sha256 or sha256_of(local)
    if not recorded:
        _record(checksums, a.filename, {"sha256": sha, "bytes": local.stat().st_size, "url": url,
                                        "recorded": datetime.date.today().isoformat()})  # fmt: skip
        log(f"fetch: recorded {a.filename}'s sha256 in {checksums}: commit it, so later downloads are checked")
    _check_layout(local, a)
    manifest = {
        "dataset": ds.name,
        "origin": origin,
        "source": str(local),
        "version": a.filename,
        "recipe": ds.recipe,
        "source_sha256": sha,
        "bytes": local.stat().st_size,
        "kind": "archive",
    }
    with storage.atomic_dir(out_dir) as tmp:
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest


def _check_layout(path: Path, a: datasets.Archive) -> None:
    """The archive's first file must sit under `<root>/<split folder>/`: a wrong file fails here, not
    after an hour of extraction."""
    prefixes = tuple(f"{a.root}/{folder}/" for folder in a.folders)
    for name, _ in archive.stream(path, limits=archive.Limits(total_bytes=a.max_expanded)):
        if not name.startswith(prefixes):
            raise RemoteError(f"{path}: member {name!r} is outside {a.root}/{{{','.join(a.folders)}}}/: this is not "
                              f"{a.filename}'s layout. Delete it, and check fetch.url / fetch.source")
        return
    raise RemoteError(f"{path} holds no files: delete it and download it again")


def great_shard_list(limit: int = 0, table: Path | None = None) -> list[tuple[str, str]]:
    """(split/shard name, git blob SHA-1) of the published shards, the first `limit` per split (0 = all).
    `table`: another list in the same format (`git hash-object` output, tab, split/name)."""
    text = Path(table).read_text() if table else resources.files("codemem.data").joinpath("great-shards.tsv").read_text()
    rows = sorted(tuple(line.split("\t")[::-1]) for line in text.splitlines() if line.strip())
    if limit:
        rows = sorted(r for s in datasets.GREAT_SPLITS for r in [r for r in rows if r[0].startswith(f"{s}/")][:limit])
    return rows


def _patience(params: Params) -> dict:
    f = params.fetch
    return {"retries": f.retries, "timeout": f.timeout, "time_limit": f.time_limit}


def fetch_great(params: Params, out_dir: Path, data_dir: Path = DATA, table: Path | None = None) -> dict:
    """Py150-Great: every shard into data/py150-great/, each checked against its git blob SHA-1,
    `fetch.parallel` at a time. A shard that fails (after its own retries) leaves its `.part` and does
    not stop the others; the run then ends with one line of what was fetched, resumed and failed,
    and the next run fetches only what is missing."""
    ds = datasets.get(params.dataset)
    root = data_dir / "py150-great"
    shards = great_shard_list(params.fetch.shards, table)
    todo = []
    for rel, sha1 in shards:
        dest = root / rel
        if dest.exists():
            if git_blob_sha1(dest) == sha1:
                continue
            os.replace(dest, dest.with_name(dest.name + ".corrupt"))
            log(f"fetch: {dest} did not match its git blob SHA-1; downloading it again")
        todo.append((rel, sha1))

    def one(item):
        rel, sha1 = item
        stats: dict = {}
        try:
            download(_url(params, ds, rel), root / rel, Expected(git_sha1=sha1), show=False, stats=stats,
                     **_patience(params))
            return rel, stats, None
        except DownloadError as e:
            return rel, stats, e

    fetched, resumed, failed = 0, 0, {}
    if todo:
        with ThreadPoolExecutor(max_workers=params.fetch.parallel) as pool:
            futures = [pool.submit(one, item) for item in todo]
            for future in progress_bar(as_completed(futures), f"fetch: {len(todo)} Py150-Great shards", len(todo)):
                rel, stats, error = future.result()
                resumed += bool(stats.get("resumed"))
                if error is None:
                    fetched += 1
                else:
                    failed[rel] = error
    summary = (f"{len(shards)} shards: {len(shards) - len(todo)} already there, {fetched} fetched "
               f"({resumed} of them resumed), {len(failed)} failed")
    log(f"fetch: {summary}")
    if failed:
        first = min(failed)
        raise RemoteError(f"{summary}; the first: {failed[first]}. Run the stage again to fetch only the "
                          "missing shards (partial ones resume)")
    counts = {s: sum(r.startswith(f"{s}/") for r, _ in shards) for s in datasets.GREAT_SPLITS}
    manifest = {
        "dataset": ds.name,
        "origin": _url(params, ds, "") if fetched else "data/ (already downloaded or `dvc pull`ed)",
        "source": str(root),
        "version": "google-research-datasets/great v1.1 (master d5360343: the same shards)",  # v1.0 had other files
        "shards": counts,
        "files": len(shards),
        "shard_git_sha1": dict(shards),
        "kind": "shards",
    }
    with storage.atomic_dir(out_dir) as tmp:
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    return {k: v for k, v in manifest.items() if k != "shard_git_sha1"}
