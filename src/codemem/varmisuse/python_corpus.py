"""A folder of Python files -> stdlib-great's train/dev/eval.jsonl, streamed in flat memory on all cores.

`codemem.varmisuse.python_samples` makes one file's samples; this module makes a corpus of them at any size
(the standard library's 22,000 samples or a Py150-sized corpus of millions) without holding them:

1. Files are split train/dev/eval by a seeded shuffle of the sorted file list, before anything else,
   so a file's functions stay in one split.
2. Worker processes (`workers`, all cores by default) turn files into samples, writing each as its
   JSON line to a scratch file as it is made and sending back only the functions' hashes and where
   their lines are. The main process takes the files in order, drops functions whose tokens (name
   aside) repeat an earlier function's, through a set of 64-bit hashes, and copies each file's
   samples, in source order, to its split's *spill* in the work folder. Only that set and a few
   counters grow with the corpus (about 100 bytes a function); no process holds more than one
   function's samples, and a bounded window of files in flight keeps a slow file from piling up
   the others' results.
3. Each split is balanced: with its clean and buggy counts known, a seeded draw keeps as many buggy
   samples as clean ones (or every clean one when no bugs were made), and one sequential read of the
   spill writes `{split}.jsonl` with the drawn samples only.

A killed run resumes: every `CHECKPOINT_FILES` files the spills are flushed and `state.json` records
their lengths; the next run cuts them back there and goes on from the next file. The output is the
same, byte for byte, for any number of workers and any resume (`tests/test_extract_python.py` checks
it against a build that holds every sample in memory, which is how this module reads in one screen).
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import multiprocessing
import os
import platform
import random
import shutil
import sysconfig
import tempfile
import time
from collections import Counter, deque
from dataclasses import asdict
from pathlib import Path

import numpy as np

from codemem import storage
from codemem.progress import progress_bar

SPLITS = ("train", "dev", "eval")
EXCLUDED_DIRS = {"test", "tests", "idle_test", "site-packages", "__pycache__"}
CHECKPOINT_FILES = 256  # files between two resume points (a few seconds of work)
FILES_PER_TASK = 4  # files a worker takes at a time
TASKS_IN_FLIGHT = 4  # per worker: enough to keep it busy while the main process writes
STATE_FORMAT = 1


def corpus_files(root: str | Path) -> list[str]:
    """The .py files under `root` (relative POSIX paths, sorted), without test folders."""
    root, out = Path(root), []
    for d, dirs, files in os.walk(root):
        dirs[:] = sorted(x for x in dirs if x not in EXCLUDED_DIRS)
        rel = Path(d).relative_to(root)
        out += [(rel / f).as_posix() for f in files if f.endswith(".py")]
    return sorted(out)


def stdlib_version(root: str | Path | None = None) -> dict:
    """The Python version and a sha256 over the corpus file list and contents."""
    root = Path(root or sysconfig.get_paths()["stdlib"])
    digest, files = hashlib.sha256(), corpus_files(root)
    for rel in files:
        data = (root / rel).read_bytes()
        digest.update(f"{rel}\0{hashlib.sha256(data).hexdigest()}\n".encode())
    return {"python": platform.python_version(), "implementation": platform.python_implementation(),
            "stdlib": str(root), "files": len(files), "sha256": digest.hexdigest()}


def split_files(files: list[str], seed: int, shares) -> np.ndarray:
    """Each file's split (an index into SPLITS, in `files`' order): a seeded shuffle of the sorted
    list, cut by the shares."""
    order = list(range(len(files)))
    random.Random(seed).shuffle(order)  # the same permutation as shuffling the names themselves
    n_train, n_dev = round(shares[0] * len(order)), round(shares[1] * len(order))
    split = np.empty(len(files), dtype=np.int8)
    for rank, i in enumerate(order):
        split[i] = 0 if rank < n_train else 1 if rank < n_train + n_dev else 2
    return split


def order_key(sample: dict) -> tuple:
    """Where a sample goes in its split, after its file: line, function, the clean one first, bug site."""
    p = sample["provenances"][0]["datasetProvenance"]
    return p["lineno"], p["functionName"], sample["has_bug"], sample["error_location"]


def encode(sample: dict) -> bytes:
    """One JSON line, as `great.write_shard` writes it."""
    return json.dumps(sample, separators=(",", ":")).encode("utf-8") + b"\n"


# ---- workers: a file -> its samples' lines on disk, their keys and places in memory ----------------
def process_file(root: str, rel: str, seed: int, config, lines_path: str) -> dict:
    """One file: its samples' JSON lines written to `lines_path`, and per function (64-bit dedup hash,
    [(order key, offset, length) of the clean sample], [the same of each buggy one]); or the reason the
    file was skipped. The lines go to disk as they are made, so neither this process nor the main one
    ever holds a file's samples (sympy's rubi rules make ~50 MB of them from one file)."""
    from codemem.varmisuse import python_samples  # tree-sitter: only where files are parsed

    try:
        data = (Path(root) / rel).read_bytes()
    except OSError:
        return {"rel": rel, "sha256": "", "skip": "unreadable"}
    res = {"rel": rel, "sha256": hashlib.sha256(data).hexdigest(), "functions": [], "stats": Counter()}
    if len(data) > config.max_file_bytes:
        return res | {"skip": "too_large"}
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return res | {"skip": "not_utf8"}
    rng = random.Random(f"{seed}:{rel}")
    with open(lines_path, "wb") as out:

        def place(sample: dict) -> tuple:
            line = encode(sample)
            start = out.tell()
            out.write(line)
            return order_key(sample), start, len(line)

        try:
            for key, samples in python_samples.file_samples(data, rel, rng, config, res["stats"]):
                res["functions"].append((int(key[:16], 16), [place(samples[0])], [place(s) for s in samples[1:]]))
        except python_samples.Skip as e:
            return res | {"skip": str(e), "functions": []}
    return res | {"lines": lines_path}


def _process_many(tasks: list[tuple]) -> list[dict]:
    return [process_file(*t) for t in tasks]


def _results(tasks, pool, workers: int):
    """process_file over the `tasks` iterator, in order: in the pool's processes, a bounded window
    ahead, or here."""
    if pool is None:
        yield from (process_file(*t) for t in tasks)
        return
    pending, tasks = deque(), iter(tasks)
    while chunk := list(itertools.islice(tasks, FILES_PER_TASK)):
        pending.append(pool.apply_async(_process_many, (chunk,)))
        if len(pending) >= workers * TASKS_IN_FLIGHT:
            yield from pending.popleft().get()
    while pending:
        yield from pending.popleft().get()


# ---- the main process: results in file order -> spills, with resume points ----------------------
def sample_mask(rng: random.Random, n: int, k: int) -> np.ndarray:
    """Which of range(n) `rng.sample(range(n), k)` picks, as a boolean mask: the same draws from the
    same state (CPython's algorithm, both of its branches), in one byte an element instead of a list
    of Python ints (~40 bytes each: 120 MB for a split of 3M buggy samples)."""
    if not 0 <= k <= n:
        raise ValueError(f"cannot draw {k} of {n}")
    randbelow, mask = rng._randbelow, np.zeros(n, dtype=bool)
    setsize = 21
    if k > 5:
        setsize += 4 ** math.ceil(math.log(k * 3, 4))
    if n <= setsize:
        pool = np.arange(n, dtype=np.int64)
        for i in range(k):
            j = randbelow(n - i)
            mask[pool[j]] = True
            pool[j] = pool[n - i - 1]
    else:
        for _ in range(k):
            j = randbelow(n)
            while mask[j]:
                j = randbelow(n)
            mask[j] = True
    return mask


class HashSet:
    """A set of 64-bit hashes in 8 bytes each: a sorted array, and the newest in a small Python set
    (a Python set of ints takes ~70 bytes an entry)."""

    MERGE_EVERY = 1 << 16

    def __init__(self, keys=()):
        self.sorted = np.unique(np.asarray(keys, dtype=np.uint64))
        self.recent: set[int] = set()

    def __contains__(self, key: int) -> bool:
        if key in self.recent:
            return True
        i = int(np.searchsorted(self.sorted, np.uint64(key)))
        return i < len(self.sorted) and int(self.sorted[i]) == key

    def add(self, key: int) -> None:
        self.recent.add(key)
        if len(self.recent) >= self.MERGE_EVERY:
            self.sorted = np.union1d(self.sorted, np.fromiter(self.recent, dtype=np.uint64, count=len(self.recent)))
            self.recent = set()


class _Spills:
    """The append-only files of one build and the counters that say how far they go."""

    NAMES = (*SPLITS, "keys", "sources", "skipped")

    def __init__(self, work: Path, fingerprint: dict):
        self.work, self.path = work, work / "state.json"
        state = json.loads(self.path.read_text()) if self.path.exists() else None
        if not state or state.get("fingerprint") != fingerprint:  # another corpus or settings: start over
            for name in self.NAMES:
                (work / f"{name}.spill").unlink(missing_ok=True)
            state = {"fingerprint": fingerprint, "next": 0, "done": False, "sizes": dict.fromkeys(self.NAMES, 0),
                     "splits": {s: {"files": 0, "clean": 0, "buggy": 0} for s in SPLITS}, "stats": {}}
        self.state, self.files = state, {}
        self.stats = Counter(state["stats"])  # insertion order kept: the report lists reasons as first seen
        for name in self.NAMES:
            path = work / f"{name}.spill"
            with open(path, "ab") as f:  # cut back to the last resume point: later bytes were never counted
                f.truncate(state["sizes"][name])
            self.files[name] = open(path, "ab")  # noqa: SIM115 -- closed in close()
        keys = np.fromfile(work / "keys.spill", dtype="<u8") if state["sizes"]["keys"] else []
        self.seen = HashSet(keys)

    def add(self, res: dict) -> None:
        """One file's result: its samples to its split's spill (after the dedup), its counts."""
        f, split_counts = self.files, self.state["splits"]
        f["sources"].write(f"{res['rel']}\0{res['sha256']}\n".encode())
        if "skip" in res:
            f["skipped"].write(f"{res['rel']}\t{res['skip']}\n".encode())
            return
        self.stats.update(res["stats"])
        counts = split_counts[res["split"]]
        counts["files"] += 1
        clean, buggy = [], []  # clean before buggy: the order ties keep in a stable sort
        for key, clean_places, buggy_places in res["functions"]:
            if key in self.seen:
                self.stats["duplicate"] += 1
                continue
            self.seen.add(key)
            f["keys"].write(key.to_bytes(8, "little"))
            for order, start, length in clean_places:
                clean.append((order, b"c%d\t" % counts["clean"], start, length))
                counts["clean"] += 1
            for order, start, length in buggy_places:
                buggy.append((order, b"b%d\t" % counts["buggy"], start, length))
                counts["buggy"] += 1
        out = f[res["split"]]
        with open(res["lines"], "rb") as lines:
            for _, tag, start, length in sorted(clean + buggy, key=lambda e: e[0]):
                lines.seek(start)
                out.write(tag + lines.read(length))
        os.unlink(res["lines"])

    def checkpoint(self, next_file: int, done: bool = False) -> None:
        for f in self.files.values():
            f.flush()
        self.state.update(next=next_file, done=done, stats=dict(self.stats),
                          sizes={name: f.tell() for name, f in self.files.items()})
        tmp = self.path.with_name(f".state.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(self.state) + "\n")
        os.replace(tmp, self.path)

    def close(self) -> None:
        for f in self.files.values():
            f.close()


def _write_split(spill: Path, out: Path, keep_clean: np.ndarray, keep_buggy: np.ndarray) -> int:
    """Copy the drawn samples of a spill into `out` (atomically); returns how many."""
    keep = {ord("c"): keep_clean, ord("b"): keep_buggy}
    tmp, n = out.with_name(f".{out.name}.{os.getpid()}.tmp"), 0
    try:
        with open(spill, "rb") as src, open(tmp, "wb") as dst:
            for line in src:
                tag, _, sample = line.partition(b"\t")
                if keep[tag[0]][int(tag[1:])]:
                    dst.write(sample)
                    n += 1
        os.replace(tmp, out)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return n


def build_corpus(root: Path, out_dir: Path, *, seed: int, config=None, workers: int | None = None,
                 work_dir: Path | None = None) -> dict:
    """Write train/dev/eval.jsonl (GREAT format) for the functions under `root`; return a report.

    `workers`: processes that parse files (None or 0 = one per core); the output does not depend on
    it. `work_dir`: where the spills and the resume point live (kept by the caller until the output is
    safe, then deleted); None = a temporary folder, so a killed run starts over.
    """
    from codemem.varmisuse.python_samples import StdlibGreatConfig

    t0 = time.time()
    config = config or StdlibGreatConfig()
    root, out_dir = Path(root), Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    files = corpus_files(root)
    if config.max_files:
        files = files[:config.max_files]
    split_of = split_files(files, seed, config.split)
    workers = max(1, workers or os.cpu_count() or 1)
    fingerprint = json.loads(json.dumps({"format": STATE_FORMAT, "seed": seed, "config": asdict(config),
                                         "files": hashlib.sha256("\n".join(files).encode()).hexdigest()}))
    with tempfile.TemporaryDirectory(prefix="codemem-great-") as scratch:
        work = Path(work_dir or scratch)
        work.mkdir(parents=True, exist_ok=True)
        spills = _Spills(work, fingerprint)
        try:
            start = spills.state["next"]
            if not spills.state["done"]:
                incoming = work / "incoming"  # each file's lines, from its worker until they are spilled
                shutil.rmtree(incoming, ignore_errors=True)
                incoming.mkdir()
                tasks = ((str(root), files[i], seed, config, str(incoming / f"{i}.jsonl")) for i in range(start, len(files)))
                # The pool is forked before the progress bar starts its thread.
                pool = multiprocessing.get_context("fork").Pool(workers) if workers > 1 and start < len(files) else None
                try:
                    with storage.writing(work, "stdlib-great's spills"):
                        results = progress_bar(_results(tasks, pool, workers), "extract: files", total=len(files) - start)
                        for i, res in enumerate(results, start):
                            spills.add(res | {"split": SPLITS[split_of[i]]})
                            if (i + 1) % CHECKPOINT_FILES == 0:
                                spills.checkpoint(i + 1)
                        spills.checkpoint(len(files), done=True)
                finally:
                    if pool is not None:
                        pool.terminate()
        finally:
            spills.close()
        with storage.writing(out_dir, "the balanced samples"):
            skipped, tail = _finish(work, out_dir, spills, seed)
    files_report = {"seen": len(files), "used": len(files) - len(skipped),
                    "skipped": dict(Counter(skipped.values())), "skipped_files": skipped}
    return {"root": str(root), "python": platform.python_version(), "seed": seed, "config": asdict(config),
            "workers": workers, "files": files_report, **tail, "resumed_from": start,
            "seconds": round(time.time() - t0, 1)}


def _finish(work: Path, out_dir: Path, spills: _Spills, seed: int) -> tuple[dict, dict]:
    """Balance each split and write it; the skipped files and the rest of the report."""
    digest = hashlib.sha256()
    with open(work / "sources.spill", "rb") as f:
        for line in f:
            digest.update(line)
    skipped_files = {}
    with open(work / "skipped.spill", "rb") as f:
        for line in f:
            rel, _, reason = line.decode().rstrip("\n").partition("\t")
            skipped_files[rel] = reason
    report = {"sources_sha256": digest.hexdigest(), "splits": {}}
    total = buggy_total = 0
    for name in SPLITS:
        counts = spills.state["splits"][name]
        n_clean_made, n_buggy_made = counts["clean"], counts["buggy"]
        rng = random.Random(f"{seed}:balance:{name}")
        # Balance: drop the majority class at random (no bugs asked for: keep every clean one).
        n_buggy = min(n_clean_made, n_buggy_made)
        n_clean = n_buggy if n_buggy_made else n_clean_made
        keep_buggy = sample_mask(rng, n_buggy_made, n_buggy)  # as rng.sample(range(...), n_buggy)
        keep_clean = sample_mask(rng, n_clean_made, n_clean)
        n = _write_split(work / f"{name}.spill", out_dir / f"{name}.jsonl", keep_clean, keep_buggy)
        report["splits"][name] = {"files": counts["files"], "functions": n_clean_made,
                                  "buggy_generated": n_buggy_made, "clean": n_clean, "buggy": n_buggy, "samples": n}
        total += n
        buggy_total += n_buggy
    stats = Counter(spills.stats)
    used = stats.pop("functions", 0)
    report["functions"] = {"seen": used, "kept": sum(c["clean"] for c in spills.state["splits"].values()),
                           "skipped": dict(stats)}
    report["samples"] = total
    report["buggy_share"] = buggy_total / total if total else 0.0
    return skipped_files, report
