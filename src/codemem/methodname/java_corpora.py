"""extract (MethodName): one path from a corpus of .java files to samples, for every corpus and recipe.

Sources (`method_samples.Source`): the zip fetch made of the JDK's src.zip or of a user's zip / folder
(build/raw/corpus.zip, its .java members in name order), or one of code2seq's tar.gz archives
(Java-Small, -Med, -Large: ~16M methods in Java-Large), whose members stream straight out of the
verified archive (`codemem.archive`: checked headers, bounded memory), never unpacked. Either way the
main process reads and writes, worker processes parse, so the JDK-sized default corpus runs the code
that runs at scale. What differs is data, the dataset's recipe (`codemem.datasets.Recipe`):

- which methods: `names: all` keeps every error-free named method; otherwise a choice pass scans
  every member first (for fixed names, such as the study's Java-Top10, only files in which a cheap
  regex finds one of them followed by `(` are parsed, and only for method names), then
  `method_samples` keeps the candidates (bodies deduplicated if `dedup_bodies`), picks the names
  (`top`: the most frequent; or the fixed ones), caps them (`cap`, seeded) and, with `split: package`,
  assigns whole packages to splits; only the chosen methods get path-contexts;
- which split: `split: folders` is the archive's own (`training` -> train, `validation` -> val,
  `test` -> test: projects never straddle splits, as in the published datasets);
- resumable: each split is its own pass over the source and lands in
  `build/extract-work/<key>/<split>/` with a `done.json`: a killed run restarts the unfinished split
  only (decompressing past the others costs seconds, parsing them would cost hours); the chosen
  methods of a choice's three splits share one pass. The key hashes the source's sha256, the recipe
  and every setting that changes the output, so stale work is never reused;
- contexts.npz is assembled from the per-split text files at the end (`npz: stream`: chunk by chunk,
  parsed by the workers, `codemem.methodname.npzstream`; `npz: savez`: numpy's in-memory writer, the
  bytes jdk-top10's file has always had); the text files are then hard-linked into the output.

Outputs in build/samples: `{train,val,test}.c2v` and `.c2s` in upstream code2vec's and code2seq's
preprocessed formats, `contexts.npz` (compact arrays, see codemem.storage), `methods.jsonl` (one line
per sample: split, file, line, name, label, variables) and `report.json`.
"""

from __future__ import annotations

import dataclasses
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

from codemem import datasets, storage
from codemem.errors import InputError
from codemem.methodname import method_samples, npzstream, renaming
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


def _init(config: PathConfig, seed: int, max_contexts: int, stored: int, labels, dedup: bool = False) -> None:
    # A method's path-contexts are thousands of tuples that live until its lines are written: with the
    # default threshold (700 allocations) the cyclic collector kept traversing them, ~3 % of the
    # workers' instructions. Extraction makes no reference cycles; refcounting frees what it makes.
    gc.set_threshold(100_000, 10, 10)
    _w.update(extractor=JavaExtractor(config), config=config, seed=seed, max_contexts=max_contexts,
              stored=stored, labels=frozenset(labels) if labels else None, names={}, dedup=dedup)  # fmt: skip


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
    """The choice pass: (name, status, methods parsed, [(index, label, body_key, has_error)]): every
    method for names "top" (the main process counts and deduplicates them), only the error-free ones
    with a wanted label for fixed names, whose files the prefilter may skip unparsed."""
    name, data = item
    status = _status(data)
    if status != "ok":
        return name, status, 0, []
    wanted = _w["labels"]
    if wanted is not None and not _mentions(data):
        return name, "prefiltered", 0, []
    infos = _w["extractor"].methods(data, body_keys=_w["dedup"])
    methods = [(m.index, m.label, m.body_key, m.has_error) for m in infos
               if wanted is None or (m.label in wanted and not m.has_error)]  # fmt: skip
    return name, "ok", len(infos), methods


_OUTPUTS = ("c2v", "c2s", "methods", "variants", "renamings", "code_lines")  # a split's text files


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
    nodes = ex._method_nodes(data)  # (the parse `extract` cached; the variants' parses replace that cache)
    for s in samples:
        lines["c2v"].append(c2v_line(s.label, s.c2v_contexts(_w["max_contexts"]), _w["max_contexts"]))
        lines["c2s"].append(c2v_line(s.label, s.c2s_contexts(limit), limit))
        lines["methods"].append(json.dumps({"split": split, "file": name, "line": s.line, "name": s.name,
                                            "label": s.label, "variables": list(s.variables)}))  # fmt: skip
        method, body = nodes[s.index]
        lines["code_lines"].append("1" if renaming.has_code_line(body) else "0")
        if split == "test":
            lines["variants"].append(json.dumps([s.variants(_w["max_contexts"], _c2v_token),
                                                 s.variants(limit, _c2s_token)]))  # fmt: skip
            lines["renamings"].append(renaming.study_line(ex, method, key=f"{name}:{s.index}", seed=_w["seed"],
                                                          limit=_w["max_contexts"]))  # fmt: skip
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


def _work_key(source: method_samples.Source, recipe: datasets.Recipe, params: Params) -> str:
    x = params.extract
    settings = {"sha256": source.sha256, "recipe": dataclasses.asdict(recipe), "seed": params.seed,
                "max_path_length": x.max_path_length, "max_path_width": x.max_path_width,
                "max_contexts": x.max_contexts, "stored": x.max_contexts_stored, "per_name": x.per_name,
                "top_names": x.top_names, "split": list(x.split), "max_file_bytes": x.max_file_bytes,
                "max_files": x.max_files, "format": 3}  # fmt: skip
    return hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:16]


def run(params: Params, layout: storage.Layout = storage.PROJECT) -> dict:
    t0 = time.time()
    ds = datasets.get(params.dataset)
    recipe, x = ds.method_recipe, params.extract
    source = method_samples.Source.of(ds, layout)
    out_dir, work_root = layout.samples, layout.extract_work
    work = work_root / _work_key(source, recipe, params)
    work.mkdir(parents=True, exist_ok=True)
    if recipe.names == "all" and not all((work / s / "done.json").exists() for s in storage.METHODNAME_SPLITS):
        # Every method's path-contexts: a Java-Small-sized look-alike's 101 MB tar.gz gave 18.9 GB of
        # samples (docs/benchmarks.md); half that ratio is a floor, so a short disk is refused now.
        storage.require_space(work, 90 * source.path.stat().st_size, f"extracting {source.path.name}")
    config = PathConfig(max_path_length=x.max_path_length, max_path_width=x.max_path_width,
                        max_contexts=x.max_contexts_stored, max_file_bytes=x.max_file_bytes)  # fmt: skip
    labels = recipe.names if isinstance(recipe.names, tuple) else None
    workers = x.workers or os.cpu_count() or 1
    initargs = (config, params.seed, x.max_contexts, x.max_contexts_stored, labels, recipe.dedup_bodies)
    ctx = multiprocessing.get_context("fork")
    choice, split_layout, chosen = {}, source.layout, None
    with ctx.Pool(workers, initializer=_init, initargs=initargs) as pool:
        if recipe.names != "all":
            choice = _choose(pool, source, recipe, params, work)
            chosen = {name: sorted(ix) for name, ix in choice["chosen"].items()}
            if recipe.split == "package":
                split_layout = method_samples.PackageLayout(choice["split"])
        passes = [storage.METHODNAME_SPLITS] if chosen is not None else [(s,) for s in storage.METHODNAME_SPLITS]
        for splits in passes:
            _split_pass(pool, source.path, split_layout, source.limits, splits, chosen, x, work)
    splits = {s: json.loads((work / s / "done.json").read_text()) for s in storage.METHODNAME_SPLITS}
    counts = {f"samples_{s}": splits[s]["samples"] for s in storage.METHODNAME_SPLITS}
    if not counts["samples_train"] or not counts["samples_test"]:
        if recipe.split == "package":
            raise InputError(
                f"extract: the split by package left {counts}: the corpus has too few packages "
                f"({choice['packages']}) or methods for the chosen names. Use a larger corpus (fetch.source) or raise "
                "extract.top_names / extract.per_name."
            )
        raise InputError(f"extract: {source.path} gave {counts}: the archive's training or test folder has no usable "
                         f"methods; check that it is {ds.archive.filename} (fetch.source / fetch.url)")
    with storage.atomic_dir(Path(out_dir)) as tmp:
        if recipe.npz == "savez":
            counts |= npzstream.assemble_in_memory(work, tmp / "contexts.npz", x.max_contexts, x.max_contexts_stored)
        else:
            with ctx.Pool(workers, initializer=npzstream.keep_heap) as pool:  # lines parsed in parallel, chunk by chunk
                counts |= npzstream.assemble(work, tmp / "contexts.npz", x.max_contexts, x.max_contexts_stored, pool)
        with open(tmp / "methods.jsonl", "wb") as out:
            for split in storage.METHODNAME_SPLITS:
                with open(work / split / "methods.jsonl", "rb") as f:
                    shutil.copyfileobj(f, out)
        for split in storage.METHODNAME_SPLITS:
            for ext in ("c2v", "c2s"):  # Java-Small's train.c2s alone is ~14 GB: linked, not copied
                _link_or_copy(work / split / f"{split}.{ext}", tmp / f"{split}.{ext}")
        report, result = _report(ds, source, choice, splits, counts, work)
        (tmp / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    timing = {s: {k: splits[s][k] for k in (*_TIMING, "pass") if k in splits[s]}
              | {"files": splits[s]["counts"].get("files", 0), "samples": splits[s]["samples"]}
              for s in storage.METHODNAME_SPLITS}  # fmt: skip
    if choice:  # the choice's scan over every split
        timing["scan"] = {k: choice[k] for k in ("seconds", "files", "methods_parsed")}
    storage.atomic_write(work_root / "timing.json", json.dumps(timing | {"total_seconds": round(time.time() - t0, 1)},
                                                              indent=2) + "\n")
    shutil.rmtree(work, ignore_errors=True)
    log(f"extract: {source.path.name}: {counts} in {time.time() - t0:.0f} s")
    return result


_TIMING = ("seconds", "files_per_s", "methods_per_s")  # in build/extract-work/timing.json: not an output


def _report(ds, source: method_samples.Source, choice: dict, splits: dict, counts: dict, work: Path) -> tuple[dict, dict]:
    """(report.json, what the stage returns). Names "top": the choice's census of the corpus (its scan
    parsed every file), the sample counts and the chosen names' candidates. Otherwise (the archives):
    the split passes' counts (and a fixed-name scan's), the archive and per-split projects, the chosen
    names per split."""
    if ds.method_recipe.names == "top":
        report = Counter(choice["counts"])
        report |= counts  # (a Counter union: counts of 0 are left out)
        report["names"] = choice["names"]
        report = dict(sorted(report.items()))
        return report, report
    totals: Counter = Counter(choice.get("counts", {}))
    for s in splits.values():
        totals.update(s["counts"])
    report = dict(sorted((totals | counts).items())) | {
        "dataset": ds.name, "recipe": ds.recipe, "archive_sha256": source.sha256,
        "splits": {s: {k: v for k, v in splits[s].items() if k not in ("counts", "pass", *_TIMING)}
                   for s in storage.METHODNAME_SPLITS},
    }  # fmt: skip
    if choice:
        report["names"] = _name_counts(work)
    return report, {k: report[k] for k in ("files", "methods", *counts) if k in report}


def _link_or_copy(source: Path, target: Path) -> None:
    """A hard link where the file system allows one (the work folder is deleted afterwards), else a copy."""
    try:
        os.link(source, target)
    except OSError:
        shutil.copyfile(source, target)


_members = method_samples.members  # (a module global: tests count the streams)


def _choose(pool, source: method_samples.Source, recipe: datasets.Recipe, params: Params, work: Path) -> dict:
    """The choice pass: scan every member (every split of an archive), choose the methods
    (`method_samples`), and for a split by package, the split of each chosen file. Kept in
    `chosen.json`: a rerun after a kill goes straight to the split passes."""
    done = work / "chosen.json"
    if not done.exists():
        t0, x = time.time(), params.extract
        candidates = method_samples.Candidates(recipe)
        where = source.layout.split if source.layout else lambda name: None
        stream = _members(source.path, source.limits, lambda n: source.layout is None or where(n) is not None)
        for name, status, parsed, methods in progress_bar(_pipelined(pool, _scan, _limit(stream, x.max_files)),
                                                          "extract: scanning names"):  # fmt: skip
            candidates.add(where(name), name, status, parsed, methods)
        rng = np.random.default_rng([params.seed, 0])  # stream 0: extraction
        rows, names = method_samples.choose(candidates.rows, recipe, x.top_names, x.per_name, rng)
        data = {"chosen": {}, "counts": candidates.counts, "names": names, "seconds": round(time.time() - t0, 1),
                "files": candidates.files, "methods_parsed": candidates.parsed}  # fmt: skip
        for _, name, index, _ in rows:
            data["chosen"].setdefault(name, []).append(index)
        if recipe.split == "package":
            package = method_samples.package
            sizes = Counter(package(name) for _, name, _, _ in rows)
            split_of = method_samples.split_by_package(sorted(sizes), sizes, x.split, rng)
            data["split"] = {name: storage.METHODNAME_SPLITS[split_of[package(name)]] for name in data["chosen"]}
            data["packages"] = len(sizes)
        storage.atomic_write(done, json.dumps(data))
    return json.loads(done.read_text())


def _limit(items, n: int):
    for k, item in enumerate(items):
        if n and k >= n:
            return
        yield item


def _split_pass(pool, source, layout, limits, splits: tuple[str, ...], chosen, x, work) -> None:
    """Stream the members of `splits` once, extract, append to each split's text files; a split's
    done.json marks it whole. Every method of a split (recipe `all`) takes a pass a split, so a killed
    run redoes one split; a choice's few chosen methods take one pass for all three, which would
    otherwise be mostly decompressing the archive three times (~150 s each at Java-Large's size).
    `layout` says which split a member is in: the archive's folders, or the chosen packages."""
    todo = []
    for split in splits:
        if (work / split / "done.json").exists():
            log(f"extract: {split} already extracted in {work}, reusing it")
        else:
            todo.append(split)
    if not todo:
        return
    names = dict(zip(_OUTPUTS, ("{}.c2v", "{}.c2s", "methods.jsonl", "variants.jsonl", "renamings.jsonl",
                                "code_lines.txt"), strict=True))  # fmt: skip
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
    items = _members(source, limits, lambda n: layout.split(n) in out and (chosen is None or n in chosen))
    if chosen is not None:
        items = ((n, d, layout.split(n), chosen[n]) for n, d in items)
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

