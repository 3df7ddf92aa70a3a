"""stdlib-great's corpus (codemem.varmisuse.python_corpus): files -> balanced splits, streamed, resumable.

The streamed build is checked against `reference_build`, which holds every sample in memory and
reads as the definition: split files (seeded), dedup functions in file order, balance each split
with one seeded draw, write in source order.
"""

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import sysconfig
import textwrap
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from codemem.varmisuse import great_format
from codemem.varmisuse import python_corpus as C
from codemem.varmisuse import python_samples as P

STDLIB = Path(sysconfig.get_paths()["stdlib"])


def reference_build(root: Path, seed: int, config: P.StdlibGreatConfig) -> dict[str, bytes]:
    """Every split's file as bytes, built with every sample in memory."""
    files = C.corpus_files(root)[: config.max_files or None]
    split_of = C.split_files(files, seed, config.split)
    seen, parts = set(), {s: {"clean": [], "buggy": []} for s in C.SPLITS}
    for i, rel in enumerate(files):
        data = (root / rel).read_bytes()
        try:
            data.decode("utf-8")
            if len(data) > config.max_file_bytes:
                continue
            functions = list(P.file_samples(data, rel, random.Random(f"{seed}:{rel}"), config, Counter()))
        except (UnicodeDecodeError, P.Skip):
            continue
        for key, samples in functions:
            if key not in seen:
                seen.add(key)
                parts[C.SPLITS[split_of[i]]]["clean"].append(samples[0])
                parts[C.SPLITS[split_of[i]]]["buggy"] += samples[1:]
    out = {}
    for name, part in parts.items():
        clean, buggy = part["clean"], part["buggy"]
        rng = random.Random(f"{seed}:balance:{name}")
        n_buggy = min(len(clean), len(buggy))
        n_clean = n_buggy if buggy else len(clean)
        buggy = [buggy[i] for i in sorted(rng.sample(range(len(buggy)), n_buggy))]
        clean = [clean[i] for i in sorted(rng.sample(range(len(clean)), n_clean))]
        path = lambda s: s["provenances"][0]["datasetProvenance"]["filepath"]
        ordered = sorted(clean + buggy, key=lambda s: (path(s), *C.order_key(s)))
        out[f"{name}.jsonl"] = b"".join(C.encode(s) for s in ordered)
    return out


def outputs(folder: Path) -> dict[str, bytes]:
    return {f"{s}.jsonl": (folder / f"{s}.jsonl").read_bytes() for s in C.SPLITS}


def _tree(root: Path):
    for name in ("textwrap.py", "colorsys.py", "bisect.py", "heapq.py", "shlex.py", "fnmatch.py"):
        shutil.copy(STDLIB / name, root / name)
    (root / "dup.py").write_bytes((STDLIB / "colorsys.py").read_bytes())  # every function a duplicate
    (root / "test").mkdir()
    (root / "test" / "test_x.py").write_text("def t(a, b):\n    return a + b\n")
    (root / "lib" / "site-packages").mkdir(parents=True)
    (root / "lib" / "site-packages" / "y.py").write_text("def t(a, b):\n    return a + b\n")
    (root / "latin1.py").write_bytes(b"# caf\xe9\ndef f(a, b):\n    return a + b\n")
    (root / "broken.py").write_text("def f(a:\n    return a\n")
    nested = "def deep(a, b):\n" + "".join(" " * 4 * (i + 1) + "if a:\n" for i in range(60))
    nested += " " * 4 * 61 + "return a + b\n"
    long = "def long(a, b):\n    return " + " + ".join(["a", "b"] * 300) + "\n"
    (root / "odd.py").write_text(nested + long)


def test_build_corpus(tmp_path):
    root = tmp_path / "lib"
    root.mkdir()
    _tree(root)
    assert C.corpus_files(root) == ["bisect.py", "broken.py", "colorsys.py", "dup.py", "fnmatch.py", "heapq.py",
                                    "latin1.py", "odd.py", "shlex.py", "textwrap.py"]
    config = P.StdlibGreatConfig()
    report = C.build_corpus(root, tmp_path / "out", seed=3, config=config, workers=1)
    assert report["files"] == {"seen": 10, "used": 8, "skipped": {"not_utf8": 1, "parse-error": 1},
                               "skipped_files": {"latin1.py": "not_utf8", "broken.py": "parse-error"}}
    skipped = report["functions"]["skipped"]
    assert skipped["too-long"] >= 1 and skipped["too-deep"] == 1 and skipped["no-bug-site"] > 0
    assert skipped["duplicate"] >= 1 and not [k for k in skipped if k.startswith("error")]
    assert report["buggy_share"] == 0.5
    total = 0
    for split in C.SPLITS:
        samples = list(great_format.read_shards(tmp_path / "out" / f"{split}.jsonl"))
        info = report["splits"][split]
        assert len(samples) == info["samples"] == info["clean"] + info["buggy"]
        assert sum(s["has_bug"] for s in samples) == info["buggy"] == info["clean"]
        files = {s["provenances"][0]["datasetProvenance"]["filepath"] for s in samples}
        assert len(files) <= info["files"]  # a file's functions stay in one split
        total += len(samples)
    assert total == report["samples"] > 0
    assert report["sources_sha256"] == C.stdlib_version(root)["sha256"]

    # The streamed output is the in-memory definition's, byte for byte, with one process or two.
    first = outputs(tmp_path / "out")
    assert first == reference_build(root, 3, config)
    C.build_corpus(root, tmp_path / "out2", seed=3, config=config, workers=2)
    assert outputs(tmp_path / "out2") == first
    C.build_corpus(root, tmp_path / "out3", seed=4, config=config, workers=2)
    assert outputs(tmp_path / "out3") == reference_build(root, 4, config) != first


def test_no_bugs_keeps_every_clean_sample(tmp_path):
    root = tmp_path / "lib"
    root.mkdir()
    _tree(root)
    config = P.StdlibGreatConfig(bugs_per_function=0, split=(0.5, 0.0, 0.5))
    report = C.build_corpus(root, tmp_path / "out", seed=0, config=config, workers=2)
    assert report["buggy_share"] == 0.0 and report["splits"]["dev"]["samples"] == 0
    assert report["samples"] == report["functions"]["kept"] > 0
    assert outputs(tmp_path / "out") == reference_build(root, 0, config)


def test_max_file_bytes(tmp_path):
    root = tmp_path / "lib"
    root.mkdir()
    code = "def f(a, b):\n    c = a + b\n    return c * a\n"
    (root / "small.py").write_text(code)
    (root / "big.py").write_text(code + "#\n")
    config = P.StdlibGreatConfig(max_file_bytes=len(code))  # the limit itself is allowed
    report = C.build_corpus(root, tmp_path / "out", seed=0, config=config)
    assert report["files"] == {"seen": 2, "used": 1, "skipped": {"too_large": 1},
                               "skipped_files": {"big.py": "too_large"}}
    assert report["functions"]["seen"] == 1 and report["config"]["max_file_bytes"] == len(code)
    assert report["sources_sha256"] == C.stdlib_version(root)["sha256"]  # skipped files still count


def test_stdlib_version():
    version = C.stdlib_version()
    assert version["python"].startswith("3.") and len(version["sha256"]) == 64
    assert version["files"] > 500


def _corpus(root: Path, n: int) -> Path:
    """n small stdlib modules, distinct, under `root`."""
    root.mkdir()
    small = sorted(p for p in STDLIB.glob("*.py") if 2_000 < p.stat().st_size < 25_000)[:n]
    for p in small:
        shutil.copy(p, root / p.name)
    return root


def test_a_killed_build_resumes_where_it_stopped(tmp_path):
    """SIGKILL mid-build, a half-written line appended for good measure: the next build goes on from
    the last resume point and writes what an uninterrupted build writes."""
    root, work = _corpus(tmp_path / "lib", 40), tmp_path / "work"
    config = P.StdlibGreatConfig(split=(0.6, 0.2, 0.2))
    script = textwrap.dedent(f"""
        from pathlib import Path
        from codemem.varmisuse import python_corpus as C
        from codemem.varmisuse.python_samples import StdlibGreatConfig
        C.CHECKPOINT_FILES = 3
        C.build_corpus(Path({str(root)!r}), Path({str(tmp_path / "killed")!r}), seed=1, workers=2,
                       config=StdlibGreatConfig(split=(0.6, 0.2, 0.2)), work_dir=Path({str(work)!r}))
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], start_new_session=True,
                            env=os.environ | {"CODEMEM_QUIET": "1"})
    state, deadline = work / "state.json", time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        if state.exists() and json.loads(state.read_text())["next"] >= 9:
            break
        time.sleep(0.02)
    assert proc.poll() is None, "the build ended before it could be killed: give it more files"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    stopped_at = json.loads(state.read_text())["next"]
    assert 9 <= stopped_at < 40 and not (tmp_path / "killed" / "train.jsonl").exists()
    with open(work / "train.spill", "ab") as f:
        f.write(b"c999\t{\"half\":")  # what a kill between two writes leaves

    report = C.build_corpus(root, tmp_path / "resumed", seed=1, workers=2, config=config, work_dir=work)
    assert report["resumed_from"] == stopped_at
    fresh = C.build_corpus(root, tmp_path / "fresh", seed=1, workers=1, config=config)
    assert fresh["resumed_from"] == 0
    assert outputs(tmp_path / "resumed") == outputs(tmp_path / "fresh") == reference_build(root, 1, config)
    drop = ("seconds", "workers", "resumed_from")
    assert {k: v for k, v in report.items() if k not in drop} == {k: v for k, v in fresh.items() if k not in drop}


def test_a_work_folder_of_other_settings_is_not_reused(tmp_path):
    root, work = _corpus(tmp_path / "lib", 8), tmp_path / "work"
    C.build_corpus(root, tmp_path / "a", seed=1, workers=1, work_dir=work)
    report = C.build_corpus(root, tmp_path / "b", seed=2, workers=1, work_dir=work)
    assert report["resumed_from"] == 0
    assert outputs(tmp_path / "b") == reference_build(root, 2, P.StdlibGreatConfig())


def test_split_files_shuffles_the_names_with_the_seed():
    files = [f"f{i:03d}.py" for i in range(50)]
    order = list(files)
    random.Random(7).shuffle(order)
    expected = {rel: "train" if i < 40 else "dev" if i < 45 else "eval" for i, rel in enumerate(order)}
    split = C.split_files(files, 7, (0.8, 0.1, 0.1))
    assert {rel: C.SPLITS[s] for rel, s in zip(files, split, strict=True)} == expected


@pytest.mark.parametrize(("n", "k"), [(0, 0), (1, 1), (5, 3), (10, 10), (30, 5), (100, 40), (1000, 6), (5000, 100),
                                      (5000, 4999), (100_000, 1000)])
def test_sample_mask_draws_what_random_sample_draws(n, k):
    """Both branches of CPython's algorithm (a pool when n is small against k, a set otherwise), and
    the generator's state afterwards."""
    a, b = random.Random(f"x{n}:{k}"), random.Random(f"x{n}:{k}")
    mask = C.sample_mask(a, n, k)
    chosen = b.sample(range(n), k)
    assert sorted(np.flatnonzero(mask).tolist()) == sorted(chosen)
    assert a.random() == b.random()


def test_hash_set_is_a_set(monkeypatch):
    monkeypatch.setattr(C.HashSet, "MERGE_EVERY", 100)  # many merges into the sorted array
    rng = np.random.default_rng(0)
    keys = rng.integers(0, 2**63, 5000, dtype=np.uint64).tolist() + [0, 2**64 - 1]
    seen, reference = C.HashSet(keys[:1000]), set(keys[:1000])
    for key in keys[1000:] + keys[:50]:
        assert (key in seen) == (key in reference)
        seen.add(key)
        reference.add(key)
    assert all(k in seen for k in reference) and 12345 not in seen
