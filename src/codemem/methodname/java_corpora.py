"""extract (MethodName) for code2seq's Java archives: Java-Small, -Med, -Large and the study's Java-Top10.

These corpora are far larger than the JDK (Java-Large: ~16M methods), so the in-memory path of
`methodname.run` does not scale to them. Here:

- members stream straight out of the verified tar.gz (`codemem.archive`: checked headers, bounded
  memory), never unpacked; the main process decompresses and writes, worker processes parse;
- a split is the archive's own folder (`training` -> train, `validation` -> val, `test` -> test),
  so projects never straddle splits, as in the published datasets;
- each split is its own pass over the archive and lands in `build/extract-work/<key>/<split>/` with
  a `done.json`: a killed run restarts the unfinished split only (decompressing past the others
  costs seconds, parsing them would cost hours); Java-Top10's three splits share one pass. The key
  hashes the archive's sha256 and every setting that changes the output, so stale work is never reused;
- `recipe: all` keeps every method with a body; `recipe: top10` (Java-Top10) first scans all splits
  with a cheap name prefilter (a regex over identifiers followed by `(`; only files naming one of the
  ten labels are parsed, and only for method names), then samples `extract.per_name` training methods
  per name (seeded) and keeps every such validation / test method; only those get path-contexts.
- contexts.npz is assembled from the per-split text files at the end, chunk by chunk, parsed by
  the workers, with the tables of tokens and paths as the only large in-memory state
  (`codemem.methodname.npzstream`); the text files are then hard-linked into the output.

Like upstream's preprocessing (and unlike `jdk-top10`), bodies are not deduplicated: the published
archives were already deduplicated by file, and the study used them as they are.
"""

from __future__ import annotations

import gc
import hashlib
import json
import multiprocessing
import os
import re
import shutil
import time
from collections import Counter
from pathlib import Path

import numpy as np

from codemem import archive, datasets, storage
from codemem.errors import InputError, MissingInputError
from codemem.methodname import npzstream
from codemem.methodname.java_paths import JavaExtractor
from codemem.methodname.java_tokens import PathConfig, _c2s_token, _c2v_token, _label_of, c2v_line
from codemem.params import Params
from codemem.progress import log, progress_bar

# An identifier followed by `(`. Matches start only where an identifier run starts (the lookbehind) and
# never give characters back (possessive), so the scan is linear: without both, a run of n identifier
# characters not followed by `(` is tried from each of its n positions, each time to its end: a test
# file of bouncycastle's with a 421,792-character hex string took ~20 minutes, alone on one core.
_IDENT_CALL = re.compile(rb"(?<![A-Za-z0-9_$])([A-Za-z_$][A-Za-z0-9_$]*+)\s*+\(")
_w: dict = {}  # per-worker state


def _init(config: PathConfig, seed: int, max_contexts: int, stored: int, labels) -> None:
    # A method's path-contexts are thousands of tuples that live until its lines are written: with the
    # default threshold (700 allocations) the cyclic collector kept traversing them, ~3 % of the
    # workers' instructions. Extraction makes no reference cycles; refcounting frees what it makes.
    gc.set_threshold(100_000, 10, 10)
    _w.update(extractor=JavaExtractor(config), config=config, seed=seed, max_contexts=max_contexts,
              stored=stored, labels=frozenset(labels) if labels else None, names={})  # fmt: skip


def _status(data: bytes) -> str:
    if len(data) > _w["config"].max_file_bytes:
        return "too_large"
    if b"\0" in data:
        return "binary"
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return "not_utf8"
    return "ok"


def _mentions(data: bytes) -> bool:
    """The cheap prefilter: does any identifier followed by `(` have one of the wanted labels?"""
    cache, wanted = _w["names"], _w["labels"]
    for m in _IDENT_CALL.finditer(data):
        ident = m.group(1)
        hit = cache.get(ident)
        if hit is None:
            hit = cache[ident] = _label_of(ident.decode("ascii", "replace")) in wanted
            if len(cache) > 1 << 20:
                cache.clear()
        if hit:
            return True
    return False


def _scan(item):
    """Top10 pass 1: (name, status, [(index, label)] of the wanted, error-free methods)."""
    name, data = item
    status = _status(data)
    if status != "ok":
        return name, status, 0, []
    if not _mentions(data):
        return name, "prefiltered", 0, []
    infos = _w["extractor"].methods(data, body_keys=False)
    wanted = [(m.index, m.label) for m in infos if m.label in _w["labels"] and not m.has_error]
    return name, "ok", len(infos), wanted


_OUTPUTS = ("c2v", "c2s", "methods", "variants")  # a split's text files


def _extract(item):
    """Path-contexts of one file's methods (`only`: their indices, None = every error-free one):
    (name, status, counts, samples, {output: the file's lines for it, encoded})."""
    name, data, split, only = item
    status = _status(data)
    if status != "ok":
        return name, status, Counter(), 0, {}
    counts: Counter = Counter()
    ex = _w["extractor"]
    if only is None:
        infos = ex.methods(data, body_keys=False)  # no deduplication here
        counts["methods"] = len(infos)
        counts["methods_with_syntax_errors"] = sum(m.has_error for m in infos)
        counts["methods_without_name_subtokens"] = sum(not m.label and not m.has_error for m in infos)
        only = [m.index for m in infos if m.label and not m.has_error]
    if not only:
        return name, status, counts, 0, {}
    # Lines formatted and encoded here, on every core: the main process only writes them (formatting
    # up to 1,000 contexts a method, or even encoding Java-Small's ~16 GB of text, made the single
    # main process a bottleneck of the split passes).
    lines: dict[str, list[str]] = {k: [] for k in _OUTPUTS}
    limit = _w["stored"] if split == "train" else _w["max_contexts"]
    samples = ex.extract(data, key=name, seed=_w["seed"], only=only, limit=max(limit, _w["max_contexts"]))
    for s in samples:
        lines["c2v"].append(c2v_line(s.label, s.c2v_contexts(_w["max_contexts"]), _w["max_contexts"]))
        lines["c2s"].append(c2v_line(s.label, s.c2s_contexts(limit), limit))
        lines["methods"].append(json.dumps({"split": split, "file": name, "line": s.line, "name": s.name,
                                            "label": s.label, "variables": list(s.variables)}))  # fmt: skip
        if split == "test":
            lines["variants"].append(json.dumps([s.variants(_w["max_contexts"], _c2v_token),
                                                 s.variants(limit, _c2s_token)]))  # fmt: skip
    return name, status, counts, len(samples), {k: "\n".join([*v, ""]).encode() if v else b"" for k, v in lines.items()}


def _batches(items, max_files: int = 256, max_bytes: int = 16 << 20):
    batch, size = [], 0
    for item in items:
        batch.append(item)
        size += len(item[1])
        if len(batch) >= max_files or size >= max_bytes:
            yield batch
            batch, size = [], 0
    if batch:
        yield batch


def _pipelined(pool, fn, items):
    """Results of fn over items, in order, with at most two batches in flight (bounded memory)."""
    pending = []
    for batch in _batches(items):
        pending.append(pool.map_async(fn, batch, chunksize=4))
        if len(pending) >= 2:
            yield from pending.pop(0).get()
    for p in pending:
        yield from p.get()


class Layout:
    """Which split a member belongs to, from the archive's folders."""

    def __init__(self, a: datasets.Archive):
        self.prefixes = {f"{a.root}/{folder}/": split for folder, split in a.folders.items()}

    def split(self, name: str) -> str | None:
        for prefix, split in self.prefixes.items():
            if name.startswith(prefix):
                return split
        return None

    def project(self, name: str) -> str:
        parts = name.split("/")
        return parts[2] if len(parts) > 3 else ""


def _work_key(manifest: dict, params: Params) -> str:
    x = params.extract
    settings = {"sha256": manifest["source_sha256"], "recipe": manifest["recipe"], "seed": params.seed,
                "max_path_length": x.max_path_length, "max_path_width": x.max_path_width,
                "max_contexts": x.max_contexts, "stored": x.max_contexts_stored, "per_name": x.per_name,
                "max_file_bytes": x.max_file_bytes, "max_files": x.max_files, "format": 1}  # fmt: skip
    return hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:16]


def run(params: Params, raw_dir=Path("build/raw"), out_dir=Path("build/samples"),
        work_root=Path("build/extract-work")) -> dict:
    t0 = time.time()
    manifest_path = Path(raw_dir) / "manifest.json"
    if not manifest_path.exists():
        raise MissingInputError(f"{manifest_path} is missing: run the fetch stage first (`dvc repro fetch`)")
    manifest = json.loads(manifest_path.read_text())
    ds = datasets.get(params.dataset)
    source = Path(manifest["source"])
    if not source.exists():
        raise MissingInputError(f"{source} is missing: run the fetch stage (`dvc repro fetch`) or `dvc pull data.dvc`")
    x = params.extract
    layout, limits = Layout(ds.archive), archive.Limits(total_bytes=ds.archive.max_expanded)
    work = Path(work_root) / _work_key(manifest, params)
    work.mkdir(parents=True, exist_ok=True)
    if ds.recipe == "all" and not all((work / s / "done.json").exists() for s in storage.METHODNAME_SPLITS):
        # Every method's path-contexts: a Java-Small-sized look-alike's 101 MB tar.gz gave 18.9 GB of
        # samples (docs/benchmarks.md); half that ratio is a floor, so a short disk is refused now.
        storage.require_space(work, 90 * source.stat().st_size, f"extracting {ds.archive.filename}")
    config = PathConfig(max_path_length=x.max_path_length, max_path_width=x.max_path_width,
                        max_contexts=x.max_contexts_stored, max_file_bytes=x.max_file_bytes)  # fmt: skip
    labels = datasets.TOP10_LABELS if ds.recipe == "top10" else None
    workers = x.workers or os.cpu_count() or 1
    initargs = (config, params.seed, x.max_contexts, x.max_contexts_stored, labels)
    ctx = multiprocessing.get_context("fork")
    report: Counter = Counter()
    with ctx.Pool(workers, initializer=_init, initargs=initargs) as pool:
        chosen = _choose_top10(pool, source, layout, limits, params, work, report) if labels else None
        passes = [storage.METHODNAME_SPLITS] if chosen is not None else [(s,) for s in storage.METHODNAME_SPLITS]
        for splits in passes:
            _split_pass(pool, source, layout, limits, splits, chosen, x, work)
    splits = {s: json.loads((work / s / "done.json").read_text()) for s in storage.METHODNAME_SPLITS}
    for s in splits.values():
        report.update(s["counts"])
    scan_seconds = report.pop("_scan_seconds", None)
    counts = {f"samples_{s}": splits[s]["samples"] for s in storage.METHODNAME_SPLITS}
    if not counts["samples_train"] or not counts["samples_test"]:
        raise InputError(f"extract: {source} gave {counts}: the archive's training or test folder has no usable "
                         f"methods; check that it is {ds.archive.filename} (fetch.source / fetch.url)")
    with storage.atomic_dir(Path(out_dir)) as tmp:
        with ctx.Pool(workers, initializer=npzstream.keep_heap) as pool:  # lines parsed in parallel, chunk by chunk
            counts |= npzstream.assemble(work, tmp / "contexts.npz", x.max_contexts, x.max_contexts_stored, pool)
        with open(tmp / "methods.jsonl", "wb") as out:
            for split in storage.METHODNAME_SPLITS:
                with open(work / split / "methods.jsonl", "rb") as f:
                    shutil.copyfileobj(f, out)
        for split in storage.METHODNAME_SPLITS:
            for ext in ("c2v", "c2s"):  # Java-Small's train.c2s alone is ~14 GB: linked, not copied
                _link_or_copy(work / split / f"{split}.{ext}", tmp / f"{split}.{ext}")
        timing = ("seconds", "files_per_s", "methods_per_s")  # in build/extract-work/timing.json: not an output
        report_json = dict(sorted((report | counts).items())) | {
            "dataset": ds.name, "recipe": ds.recipe, "archive_sha256": manifest["source_sha256"],
            "splits": {s: {k: v for k, v in splits[s].items() if k not in ("counts", "pass", *timing)}
                       for s in storage.METHODNAME_SPLITS},
        }  # fmt: skip
        if labels:
            report_json["names"] = _name_counts(work)
        (tmp / "report.json").write_text(json.dumps(report_json, indent=2) + "\n")
    timings = {s: {k: splits[s][k] for k in (*timing, "pass") if k in splits[s]}
               | {"files": splits[s]["counts"].get("files", 0), "samples": splits[s]["samples"]}
               for s in storage.METHODNAME_SPLITS}  # fmt: skip
    if scan_seconds is not None:  # java-top10's name scan over every split
        timings["scan"] = {"seconds": scan_seconds, "files": sum(v for k, v in report.items() if k.startswith("scan_files_")),
                           "methods_parsed": report["scan_methods_parsed"]}  # fmt: skip
    storage.atomic_write(Path(work_root) / "timing.json", json.dumps(timings | {"total_seconds": round(time.time() - t0, 1)},
                                                                indent=2) + "\n")
    shutil.rmtree(work, ignore_errors=True)
    log(f"extract: {report['files']} files, {counts} in {time.time() - t0:.0f} s")
    return {k: report_json[k] for k in ("files", "methods", *counts) if k in report_json}


def _link_or_copy(source: Path, target: Path) -> None:
    """A hard link where the file system allows one (the work folder is deleted afterwards), else a copy."""
    try:
        os.link(source, target)
    except OSError:
        shutil.copyfile(source, target)


def _members(source, layout, limits, want):
    """(name, bytes) of the .java members whose split passes `want`."""
    return archive.stream(source, lambda n: n.endswith(".java") and want(layout.split(n)), limits)


def _choose_top10(pool, source, layout, limits, params, work, report) -> dict[str, set]:
    """Pass 1 of Java-Top10: scan every split for the ten names; sample the training methods."""
    done = work / "top10-chosen.json"
    if not done.exists():
        t0, candidates, counts = time.time(), [], Counter()
        stream = _members(source, layout, limits, lambda split: split is not None)
        items = ((n, d) for n, d in _limit(stream, params.extract.max_files))
        for name, status, n_methods, wanted in progress_bar(_pipelined(pool, _scan, items), "extract: scanning names"):
            counts[f"scan_files_{status}"] += 1
            counts["scan_methods_parsed"] += n_methods
            split = layout.split(name)
            candidates += [(split, name, index, label) for index, label in wanted]
        rng = np.random.default_rng([params.seed, 0])
        chosen: dict[str, list[int]] = {}
        for label in datasets.TOP10_LABELS:
            train = [c for c in candidates if c[0] == "train" and c[3] == label]
            if params.extract.per_name and len(train) > params.extract.per_name:
                train = [train[i] for i in sorted(rng.choice(len(train), params.extract.per_name, replace=False))]
            for _, name, index, _ in train + [c for c in candidates if c[0] != "train" and c[3] == label]:
                chosen.setdefault(name, []).append(index)
        storage.atomic_write(done, json.dumps({"chosen": chosen, "counts": counts, "seconds": round(time.time() - t0, 1)}))
    data = json.loads(done.read_text())
    report["_scan_seconds"] = data["seconds"]  # timing: kept out of report.json
    report.update(data["counts"])
    return {name: sorted(ix) for name, ix in data["chosen"].items()}


def _limit(items, n: int):
    for k, item in enumerate(items):
        if n and k >= n:
            return
        yield item


def _split_pass(pool, source, layout, limits, splits: tuple[str, ...], chosen, x, work) -> None:
    """Stream the members of `splits` once, extract, append to each split's text files; a split's
    done.json marks it whole. Every method of a split (recipe `all`) takes a pass a split, so a killed
    run redoes one split; Java-Top10's few chosen methods take one pass for all three, which would
    otherwise be mostly decompressing the archive three times (~150 s each at Java-Large's size)."""
    todo = []
    for split in splits:
        if (work / split / "done.json").exists():
            log(f"extract: {split} already extracted in {work}, reusing it")
        else:
            todo.append(split)
    if not todo:
        return
    names = dict(zip(_OUTPUTS, ("{}.c2v", "{}.c2s", "methods.jsonl", "variants.jsonl"), strict=True))
    out, files = {}, []
    for split in todo:
        tmp = work / f".{split}.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        out[split] = {k: open(tmp / name.format(split), "wb") for k, name in names.items()}  # noqa: SIM115
        files += out[split].values()  # (closed in `finally`)
    counts = {s: Counter() for s in todo}
    samples, projects = dict.fromkeys(todo, 0), {s: set() for s in todo}
    t0 = time.time()
    items = _members(source, layout, limits, lambda s: s in out)
    if chosen is not None:
        items = ((n, d, layout.split(n), chosen[n]) for n, d in items if n in chosen)
    else:  # one split a pass: max_files counts its files
        (split,) = todo
        items = ((n, d, split, None) for n, d in _limit(items, x.max_files))
    try:
        with storage.writing(work, f"the {'+'.join(todo)} path-contexts"):
            for name, status, c, n, lines in progress_bar(_pipelined(pool, _extract, items), f"extract: {'+'.join(todo)}"):
                split = layout.split(name)
                counts[split]["files"] += 1
                counts[split][f"files_{status}"] += 1
                counts[split].update(c)
                projects[split].add(layout.project(name))
                for k, text in lines.items():
                    out[split][k].write(text)
                samples[split] += n
    finally:
        for f in files:
            f.close()
    seconds = time.time() - t0  # of the whole pass: shared by its splits
    for split in todo:
        tmp, final, n = work / f".{split}.tmp", work / split, counts[split]["files"]
        done = {"samples": samples[split], "projects": len(projects[split]), "seconds": round(seconds, 1),
                "files_per_s": round(n / max(seconds, 1e-9), 1),
                "methods_per_s": round(samples[split] / max(seconds, 1e-9), 1), "counts": counts[split]}  # fmt: skip
        if len(todo) > 1:
            done["pass"] = "+".join(todo)
        (tmp / "done.json").write_text(json.dumps(done) + "\n")
        shutil.rmtree(final, ignore_errors=True)
        os.replace(tmp, final)
        log(f"extract: {split}: {samples[split]} methods from {n} files in {seconds:.0f} s")


def _name_counts(work: Path) -> dict:
    counts: dict = {}
    for split in storage.METHODNAME_SPLITS:
        with open(work / split / "methods.jsonl") as f:
            c = Counter(json.loads(line)["label"] for line in f)
        counts[split] = dict(c.most_common())
    return counts

