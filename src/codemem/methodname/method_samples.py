"""extract (MethodName): from a corpus of .java files to Java-Top10-style samples.

1. Scan every file for methods with a body (fast: no paths yet). Files that are too large, binary,
   not UTF-8, or methods whose syntax tree has errors are skipped and counted in the report.
2. Drop duplicate method bodies, keeping the first in file order: about a quarter of JDK methods
   share a body with another, and a memorization study must not test on its training set.
3. Keep the `top_names` most frequent names, at most `per_name` methods each (seeded sample),
   like Java-Top10 (10 names x 1,000 methods).
4. Split by package (seeded), so no package is in two splits.
5. Extract path-contexts for the kept methods only, and for test methods each variable's
   single-place renaming to `var<k>` (for the critical sample ratio).

Outputs in build/samples: `{train,val,test}.c2v` and `.c2s` in upstream code2vec's and code2seq's
preprocessed formats (extracted once for both models), `contexts.npz` (compact arrays, see codemem.storage), `methods.jsonl` (one line per sample: split, file,
line, name, label, variables) and `report.json`.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import zipfile
from collections import Counter, defaultdict

import numpy as np

from codemem import storage
from codemem.errors import InputError
from codemem.methodname.java_paths import JavaExtractor
from codemem.methodname.java_tokens import PathConfig, _c2s_token, _c2v_token, c2v_line
from codemem.params import Params
from codemem.progress import log, progress_bar

_worker: dict = {}  # per-process state: the open corpus zip and the extractor


def _init_worker(corpus: str, config: PathConfig) -> None:
    _worker["zip"] = zipfile.ZipFile(corpus)
    _worker["extractor"] = JavaExtractor(config)
    _worker["max_bytes"] = config.max_file_bytes


def _read(name: str) -> tuple[bytes | None, str]:
    """The file's bytes, or None and why it is skipped."""
    info = _worker["zip"].getinfo(name)
    if info.file_size > _worker["max_bytes"]:
        return None, "too_large"
    data = _worker["zip"].read(name)
    if b"\0" in data:
        return None, "binary"
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return None, "not_utf8"
    return data, "ok"


def _scan(name: str):
    data, status = _read(name)
    if data is None:
        return name, status, []
    methods = _worker["extractor"].methods(data)
    return name, status, [(m.index, m.label, m.body_key, m.line, m.name, m.has_error) for m in methods]


def _extract(job):
    """Extract the chosen methods of one file in both formats; test methods also get their
    renaming variants. code2seq keeps up to `stored` contexts for training samples (it resamples
    `max_contexts` of them every step) and `max_contexts` for validation and test."""
    name, split_of_method, seed, max_contexts, stored = job
    data, _ = _read(name)
    out = []
    for s in _worker["extractor"].extract(data, key=name, seed=seed, only=sorted(split_of_method)):
        test = split_of_method[s.index] == 2
        limit = stored if split_of_method[s.index] == 0 else max_contexts
        item = {"index": s.index, "name": s.name, "label": s.label, "line": s.line, "variables": list(s.variables)}
        for fmt, n, token, contexts in (("c2v", max_contexts, _c2v_token, s.c2v_contexts),
                                        ("c2s", limit, _c2s_token, s.c2s_contexts)):  # fmt: skip
            item[fmt] = contexts(n)
            # Each variable's renaming to var<k>: (new terminal, the (context, side) pairs it changes).
            # A variable whose occurrences were not sampled renames nothing the model sees, yet the
            # sample is renamable: it counts in CSR's denominator, as in the study (which re-extracted
            # the renamed method; we keep its sampled contexts, so only the renaming can change the
            # prediction).
            item[f"{fmt}_variants"] = s.variants(n, token) if test else []
        out.append(item)
    return name, out


def split_by_package(packages: list[str], sizes: dict[str, int], shares, rng) -> dict[str, int]:
    """Assign whole packages to splits 0/1/2 (train/val/test). In a seeded order, each package goes
    to the split it leaves least filled relative to that split's share, so a large package lands
    where it fits (usually train) and no split stays empty while packages remain."""
    order = list(packages)
    rng.shuffle(order)
    shares = np.asarray(shares, dtype=float)
    filled = np.zeros(3)
    assignment = {}
    with np.errstate(divide="ignore"):
        for p in order:
            split = int(np.argmin(np.where(shares > 0, (filled + sizes[p]) / shares, np.inf)))
            assignment[p] = split
            filled[split] += sizes[p]
    return assignment


def run(params: Params, layout: storage.Layout = storage.PROJECT) -> dict:
    x = params.extract
    corpus, out_dir = storage.require(layout.corpus, "fetch"), layout.samples
    config = PathConfig(max_path_length=x.max_path_length, max_path_width=x.max_path_width,
                        max_contexts=x.max_contexts_stored, max_file_bytes=x.max_file_bytes)  # fmt: skip
    with zipfile.ZipFile(corpus) as z:
        files = sorted(n for n in z.namelist() if n.endswith(".java"))
    workers = x.workers or os.cpu_count() or 1
    report: Counter = Counter(files=len(files))
    rng = np.random.default_rng([params.seed, 0])  # stream 0: extraction
    ctx = multiprocessing.get_context("fork")
    with ctx.Pool(workers, initializer=_init_worker, initargs=(str(corpus), config)) as pool:
        # 1-2: scan and deduplicate
        candidates, seen = [], set()
        scanned = pool.imap(_scan, files, chunksize=16)
        for name, status, methods in progress_bar(scanned, "extract: scanning methods", total=len(files)):
            report[f"files_{status}"] += 1
            for index, label, body_key, line, method_name, has_error in methods:
                report["methods"] += 1
                if has_error:
                    report["methods_with_syntax_errors"] += 1
                elif not label:
                    report["methods_without_name_subtokens"] += 1
                elif body_key in seen:
                    report["methods_duplicate_body"] += 1
                else:
                    seen.add(body_key)
                    candidates.append((name, index, label))
        # 3: the most frequent names, capped
        counts = Counter(label for _, _, label in candidates)
        top = [label for label, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[: x.top_names]]
        chosen = []
        for label in top:
            members = [c for c in candidates if c[2] == label]
            if x.per_name and len(members) > x.per_name:
                members = [members[i] for i in sorted(rng.choice(len(members), x.per_name, replace=False))]
            chosen += members
        # 4: split by package
        package = lambda file: file.rsplit("/", 1)[0]
        sizes = Counter(package(f) for f, _, _ in chosen)
        split_of = split_by_package(sorted(sizes), sizes, x.split, rng)
        by_file: dict[str, dict[int, int]] = defaultdict(dict)
        for f, index, _ in chosen:
            by_file[f][index] = split_of[package(f)]
        jobs = [(f, ix, params.seed, x.max_contexts, x.max_contexts_stored) for f, ix in sorted(by_file.items())]
        # 5: path-contexts
        extracted = list(progress_bar(pool.imap(_extract, jobs), "extract: path-contexts", total=len(jobs)))

    samples = _assemble(extracted, split_of, package, x.max_contexts, x.max_contexts_stored)
    if not samples["counts"]["samples_train"] or not samples["counts"]["samples_test"]:
        raise InputError(
            f"extract: the split by package left {samples['counts']} samples: the corpus has too few packages "
            f"({len(sizes)}) or methods for the chosen names. Use a larger corpus (fetch.source) or raise "
            "extract.top_names / extract.per_name."
        )
    report |= samples["counts"]
    report["names"] = {label: counts[label] for label in top}
    report_json = dict(sorted(report.items()))
    with storage.atomic_dir(out_dir) as tmp:
        storage.save_samples(tmp / "contexts.npz", samples["set"])
        for split in storage.METHODNAME_SPLITS:
            rows = samples["by_split"][split]
            stored = x.max_contexts_stored if split == "train" else x.max_contexts
            with open(tmp / f"{split}.c2v", "w") as f:
                f.writelines(c2v_line(s["label"], s["c2v"], x.max_contexts) + "\n" for s in rows)
            with open(tmp / f"{split}.c2s", "w") as f:
                f.writelines(c2v_line(s["label"], s["c2s"], stored) + "\n" for s in rows)  # same layout
        with open(tmp / "methods.jsonl", "w") as f:
            for split in storage.METHODNAME_SPLITS:
                f.writelines(json.dumps({"split": split, "file": s["file"], "line": s["line"], "name": s["name"],
                                        "label": s["label"], "variables": s["variables"]}) + "\n"
                             for s in samples["by_split"][split])  # fmt: skip
        (tmp / "report.json").write_text(json.dumps(report_json, indent=2) + "\n")
    log(f"extract: {report['methods']} methods in {len(files)} files -> {samples['counts']}")
    return report_json


def _assemble(extracted, split_of, package, max_contexts: int, stored: int) -> dict:
    """String tables and index arrays from the extracted samples (deterministic order)."""
    labels: dict[str, int] = {}
    idx = lambda table, key: table.setdefault(key, len(table))
    by_split = {s: [] for s in storage.METHODNAME_SPLITS}
    for file, samples in extracted:
        for s in samples:
            by_split[storage.METHODNAME_SPLITS[split_of[package(file)]]].append(s | {"file": file})
    split_labels = {split: np.array([idx(labels, s["label"]) for s in rows], dtype=np.int32)
                    for split, rows in by_split.items()}  # fmt: skip
    counts = {f"samples_{split}": len(rows) for split, rows in by_split.items()}
    formats = {}
    for fmt in ("c2v", "c2s"):
        tokens, paths = {}, {}
        contexts, variants = {}, {}
        for split, rows in by_split.items():
            width = stored if fmt == "c2s" and split == "train" else max_contexts
            arr = np.full((len(rows), width, 3), -1, dtype=np.int32)
            owner, var_token, occ_var, occ_ctx, occ_side = [], [], [], [], []
            for i, s in enumerate(rows):
                for k, context in enumerate(s[fmt]):
                    a, p, b = context.split(",")
                    arr[i, k] = (idx(tokens, a), idx(paths, p), idx(tokens, b))
                for new_token, changed in s[f"{fmt}_variants"]:
                    v = len(owner)
                    owner.append(i)
                    var_token.append(idx(tokens, new_token))
                    for k, side in changed:
                        occ_var.append(v), occ_ctx.append(k), occ_side.append(side)
            as32 = lambda xs: np.array(xs, dtype=np.int32)
            contexts[split] = arr
            variants[split] = storage.Variants(as32(owner), as32(var_token), as32(occ_var), as32(occ_ctx), as32(occ_side))
            counts[("" if fmt == "c2v" else "c2s_") + f"variants_{split}"] = len(owner)
        table = lambda t: np.array(list(t), dtype=str)
        formats[fmt] = storage.ContextSet(table(tokens), table(paths), contexts, variants)
    sample_set = storage.SampleSet(np.array(list(labels), dtype=str), split_labels, formats)
    return {"set": sample_set, "by_split": by_split, "counts": counts}
