"""extract (VarMisuse): the raw corpus -> GREAT-format JSON lines in build/samples.

Outputs: `train.jsonl`, `dev.jsonl`, `eval.jsonl` (one sample per line, the published Py150-Great
format: `source_tokens`, `has_bug`, `error_location`, `repair_candidates`, `repair_targets`,
`edges`, `provenances`) and `report.json`.

- stdlib-great (fetch kind `stdlib`): `extract.python_corpus.build_corpus` makes the samples from the
  fetched `.py` files the way GREAT's data was made (`extract.python`: tokens, bug injection and
  edges), streamed through `extract.workers` processes (0 = all cores) in flat memory. It reads a
  folder, so the corpus zip is unpacked into a temporary one first (a second or two). Files are split
  train/dev/eval by `extract.split` with the seed. Its spills and resume point live in
  `build/extract-work/<key>/` (the key: the corpus's sha256 and every setting that changes the
  output), so a killed extraction goes on where it stopped; the folder is deleted once the samples are
  written.
- py150-great (fetch kind `great-shards`): the published shards are copied through, each sample
  validated, shards in name order; the published split is kept.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import shutil
import tempfile
import time
import zipfile
from pathlib import Path

from codemem import datasets, storage
from codemem.errors import InputError, MissingInputError
from codemem.params import Params
from codemem.progress import log
from codemem.varmisuse import great_format, python_corpus
from codemem.varmisuse.python_samples import StdlibGreatConfig

SPLITS = storage.VARMISUSE_SPLITS
TIMING = ("seconds", "workers", "resumed_from")  # in build/extract-work/timing.json: not outputs


def build_stdlib(params: Params, corpus: Path, out_dir: Path, work_root: Path) -> dict:
    """Unpack the corpus zip and stream the stdlib-great builder over it (resumable in `work_root`)."""
    x = params.extract
    config = StdlibGreatConfig(split=x.split, max_files=x.max_files, max_file_bytes=x.max_file_bytes)
    key = hashlib.sha256(json.dumps({"corpus": storage.sha256_file(corpus), "seed": params.seed, "config": str(config),
                                     "format": python_corpus.STATE_FORMAT}).encode()).hexdigest()[:16]
    work = Path(work_root) / f"stdlib-great-{key}"
    # ~40x the Python read: the spills, then the balanced samples (58,774 samples: 447 MiB of JSON lines
    # and ~600 MiB of spills from 24.6 MB of Python, docs/benchmarks.md); the spills go once it is done.
    storage.require_space(work, 40 * _corpus_bytes(corpus), "stdlib-great's samples and their spills")
    with tempfile.TemporaryDirectory(prefix="codemem-stdlib-") as root:
        with zipfile.ZipFile(corpus) as z:
            z.extractall(root)
        report = python_corpus.build_corpus(Path(root), out_dir, seed=params.seed, config=config,
                                            workers=x.workers, work_dir=work)
    report["root"] = str(corpus)  # not the temporary folder: the report should not vary between runs
    return report | {"_work": work}


def _corpus_bytes(corpus: Path) -> int:
    with zipfile.ZipFile(corpus) as z:
        return sum(i.file_size for i in z.infolist())


@contextlib.contextmanager
def _shards_root(corpus: Path, manifest: dict):
    """The folder holding `{train,dev,eval}/` shards: data/py150-great when fetch downloaded them
    (read in place, one shard at a time), else the corpus zip unpacked into a temporary folder."""
    if manifest.get("kind") == "shards":
        root = Path(manifest["source"])
        if not root.is_dir():
            raise MissingInputError(f"{root} is missing: run the fetch stage (`dvc repro fetch`) or `dvc pull data.dvc`")
        yield root
        return
    if not corpus.exists():
        raise MissingInputError(f"{corpus} is missing: run the fetch stage first (`dvc repro fetch`)")
    with tempfile.TemporaryDirectory(prefix="codemem-great-") as root, zipfile.ZipFile(corpus) as z:
        z.extractall(root)
        yield Path(root)


def copy_shards(params: Params, corpus: Path, out_dir: Path, manifest: dict | None = None) -> dict:
    """Concatenate each split's published shards into `{split}.jsonl`, validating every sample."""
    t0 = time.time()
    manifest = manifest or {}
    wanted = set(manifest.get("shard_git_sha1", {}))  # downloaded: exactly the verified shards
    report: dict = {"root": manifest.get("source", str(corpus)), "splits": {}}
    with _shards_root(corpus, manifest) as root:
        for split in SPLITS:
            folder = Path(root) / split
            shards = great_format.shard_files(folder) if folder.is_dir() else []
            if wanted:
                shards = [p for p in shards if f"{split}/{p.name}" in wanted]
            if params.extract.max_files:
                shards = shards[: params.extract.max_files]
            samples = (s for shard in shards for s in great_format.read_shards(shard))
            buggy = 0

            def counted(items):
                nonlocal buggy
                for s in items:
                    buggy += bool(s["has_bug"])
                    yield s

            n = great_format.write_shard(out_dir / f"{split}.jsonl", counted(samples), validate=False)
            report["splits"][split] = {"files": len(shards), "samples": n, "buggy": buggy, "clean": n - buggy}
    report["samples"] = sum(v["samples"] for v in report["splits"].values())
    report["buggy_share"] = sum(v["buggy"] for v in report["splits"].values()) / max(report["samples"], 1)
    report["seconds"] = round(time.time() - t0, 1)
    return report


def run(params: Params, layout: storage.Layout = storage.PROJECT) -> dict:
    corpus = layout.corpus
    manifest = json.loads(layout.manifest.read_text()) if layout.manifest.exists() else {}
    if manifest.get("kind") != "shards":  # py150-great's shards are read in place from data/
        storage.require(corpus, "fetch")
    kind = datasets.get(params.dataset).kind
    with storage.atomic_dir(layout.samples) as tmp:
        report = build_stdlib(params, corpus, tmp, layout.extract_work) if kind == "stdlib" else copy_shards(params, corpus, tmp, manifest)
        work = report.pop("_work", None)
        timing = {k: report.pop(k) for k in TIMING if k in report}
        if manifest:
            report["corpus"] = {k: v for k, v in manifest.items() if k not in ("shard_sha256", "shard_git_sha1")}
        if report["splits"]["train"]["samples"] == 0 or report["splits"]["eval"]["samples"] == 0:
            raise InputError(
                f"extract made no {'training' if not report['splits']['train']['samples'] else 'eval'} samples "
                f"from {corpus}: use more files (extract.max_files) or other split shares (extract.split)"
            )
        (tmp / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    if work is not None:  # the samples are in place: the spills are no longer needed
        shutil.rmtree(work, ignore_errors=True)
    storage.atomic_write(layout.extract_work / "timing.json", json.dumps(timing, indent=2) + "\n")
    summary = {s: report["splits"][s]["samples"] for s in SPLITS} | {"seconds": timing.get("seconds")}
    log(f"extract: {summary}")
    return summary
