"""extract (VarMisuse): the raw corpus -> GREAT-format JSON lines in build/samples.

Outputs: `train.jsonl`, `dev.jsonl`, `eval.jsonl` (one sample per line, the published Py150-Great
format: `source_tokens`, `has_bug`, `error_location`, `repair_candidates`, `repair_targets`,
`edges`, `provenances`) and `report.json`.

- stdlib-great (fetch kind `stdlib`): `extract.python.build_corpus` makes the samples from the
  fetched `.py` files the way GREAT's data was made (see that module for tokens, bug injection and
  edges). It reads a folder, so the corpus zip is unpacked into a temporary one first (a second or
  two). Files are split train/dev/eval by `extract.split` with the seed.
- py150-great (fetch kind `great-shards`): the published shards are copied through, each sample
  validated, shards in name order; the published split is kept.
"""

from __future__ import annotations

import json
import tempfile
import time
import zipfile
from pathlib import Path

from codemem import datasets, io
from codemem.errors import InputError
from codemem.extract import great
from codemem.extract import python as stdlib_great
from codemem.params import Params
from codemem.progress import log

SPLITS = io.VARMISUSE_SPLITS


def build_stdlib(params: Params, corpus: Path, out_dir: Path) -> dict:
    """Unpack the corpus zip and run the stdlib-great builder on it."""
    x = params.extract
    config = stdlib_great.StdlibGreatConfig(split=x.split, max_files=x.max_files, max_file_bytes=x.max_file_bytes)
    # One process is fastest for this corpus on 2 cores (see build_corpus); more only on request.
    workers = params.extract.workers or 1
    with tempfile.TemporaryDirectory(prefix="codemem-stdlib-") as root:
        with zipfile.ZipFile(corpus) as z:
            z.extractall(root)
        report = stdlib_great.build_corpus(Path(root), out_dir, seed=params.seed, config=config, workers=workers)
    report["root"] = str(corpus)  # not the temporary folder: the report should not vary between runs
    return report


def copy_shards(params: Params, corpus: Path, out_dir: Path) -> dict:
    """Concatenate each split's published shards into `{split}.jsonl`, validating every sample."""
    t0 = time.time()
    report: dict = {"root": str(corpus), "splits": {}}
    with tempfile.TemporaryDirectory(prefix="codemem-great-") as root, zipfile.ZipFile(corpus) as z:
        z.extractall(root)
        for split in SPLITS:
            folder = Path(root) / split
            shards = great.shard_files(folder) if folder.is_dir() else []
            if params.extract.max_files:
                shards = shards[: params.extract.max_files]
            samples = (s for shard in shards for s in great.read_shards(shard))
            buggy = 0

            def counted(items):
                nonlocal buggy
                for s in items:
                    buggy += bool(s["has_bug"])
                    yield s

            n = great.write_shard(out_dir / f"{split}.jsonl", counted(samples), validate=False)
            report["splits"][split] = {"files": len(shards), "samples": n, "buggy": buggy, "clean": n - buggy}
    report["samples"] = sum(v["samples"] for v in report["splits"].values())
    report["buggy_share"] = sum(v["buggy"] for v in report["splits"].values()) / max(report["samples"], 1)
    report["seconds"] = round(time.time() - t0, 1)
    return report


def run(params: Params, layout: io.Layout = io.PROJECT) -> dict:
    corpus = io.require(layout.corpus, "fetch")
    kind = datasets.get(params.dataset).kind
    with io.atomic_dir(layout.samples) as tmp:
        report = build_stdlib(params, corpus, tmp) if kind == "stdlib" else copy_shards(params, corpus, tmp)
        if layout.manifest.exists():
            report["corpus"] = {k: v for k, v in json.loads(layout.manifest.read_text()).items() if k != "shard_sha256"}
        if report["splits"]["train"]["samples"] == 0 or report["splits"]["eval"]["samples"] == 0:
            raise InputError(
                f"extract made no {'training' if not report['splits']['train']['samples'] else 'eval'} samples "
                f"from {corpus}: use more files (extract.max_files) or other split shares (extract.split)"
            )
        (tmp / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    summary = {s: report["splits"][s]["samples"] for s in SPLITS} | {"seconds": report.get("seconds")}
    log(f"extract: {summary}")
    return summary
