"""Fingerprint every number the pipeline makes, so a refactor can be shown to change none of them.

    python repro/same_numbers.py TREE OUT.json     # TREE: a checkout of codemem (its src/ is used)
    python repro/same_numbers.py --compare A.json B.json

Runs fetch, extract, corrupt, train and evaluate (the `python -m codemem` commands dvc.yaml runs)
for the five models on small settings, noise 0.5, in a temporary folder, with TREE's code, and
records a sha256 of every output: the samples, the noisy labels and the flips, epochs.csv without its
timing columns, each per-sample array, metrics.json, the trained weights. Two trees whose files are
equal made the same numbers, bit for bit, on this machine.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import io
import json
import os
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import numpy as np
from ruamel.yaml import YAML

HERE = Path(__file__).resolve().parents[1]
TIMING = {"train_seconds", "seconds"}  # the only columns that differ between two equal runs
JDK_TINY = ("java.base/java/util/", "java.base/java/io/")

RUNS = {  # model: params changed from the repository's params.yaml
    "code2vec": {"extract": {"top_names": 4, "per_name": 60, "split": [0.6, 0.2, 0.2]}, "train": {"epochs": 2}},
    "code2seq": {"extract": {"top_names": 4, "per_name": 60, "split": [0.6, 0.2, 0.2]}, "train": {"epochs": 2},
                 "code2seq": {"rnn_size": 64, "decoder_size": 64, "embedding_size": 32}},
    "transformer": {"dataset": "stdlib-great", "extract": {"max_files": 40},
                    "train": {"epochs": 2, "samples_per_step": 32, "measure_samples": 32},
                    "transformer": {"hidden": 32, "num_layers": 1, "num_heads": 2, "attention_dim": 32, "ff_dim": 64}},
    "great": {"dataset": "stdlib-great", "extract": {"max_files": 40},
              "train": {"epochs": 2, "samples_per_step": 32, "measure_samples": 32},
              "great": {"hidden": 32, "num_layers": 1, "num_heads": 2, "attention_dim": 32, "ff_dim": 64}},
    "ggnn": {"dataset": "stdlib-great", "extract": {"max_files": 40},
             "train": {"epochs": 2, "samples_per_step": 32, "measure_samples": 32},
             "ggnn": {"hidden": 32, "time_steps": [1, 1, 1, 1]}},
}


def jdk_folder(dest: Path) -> Path:
    """java.util and java.io of the local JDK's src.zip (the tests' tiny corpus)."""
    sys.path.insert(0, str(HERE / "src"))
    from codemem.fetch import debian_jdk_sources, local_jdk_sources

    src = (local_jdk_sources() or debian_jdk_sources(dest / "jdk"))[0]
    with zipfile.ZipFile(src) as z:
        for name in z.namelist():
            if name.startswith(JDK_TINY) and name.endswith(".java"):
                z.extract(name, dest / "corpus")
    return dest / "corpus"


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def epochs_without_timing(path: Path) -> str:
    rows = list(csv.DictReader(path.open()))
    kept = [{k: v for k, v in row.items() if k not in TIMING} for row in rows]
    return digest(json.dumps(kept).encode())


def fingerprint(run: Path) -> dict[str, str]:
    out = {}
    for folder in ("build/samples", "build/noisy", "build/model"):
        for f in sorted((run / folder).rglob("*")):
            if f.is_file() and f.name != "timing.json":
                out[str(f.relative_to(run))] = digest(f.read_bytes())
    out["plots/epochs.csv"] = epochs_without_timing(run / "plots/epochs.csv")
    for name, array in sorted(np.load(run / "build/logs/per_sample.npz").items()):
        buf = io.BytesIO()
        np.save(buf, array)
        out[f"per_sample/{name}"] = digest(buf.getvalue())
    metrics = json.loads((run / "metrics/metrics.json").read_text())
    out["metrics.json"] = digest(json.dumps(metrics, sort_keys=True).encode())
    return out


def run_tree(tree: Path, work: Path, corpus: Path) -> dict:
    env = os.environ | {"PYTHONPATH": str(tree / "src"), "CODEMEM_QUIET": "1"}
    where = subprocess.run([sys.executable, "-c", "import codemem; print(codemem.__file__)"], env=env,
                           capture_output=True, text=True, check=True).stdout.strip()
    assert Path(where).is_relative_to(tree / "src"), f"codemem imported from {where}, not {tree}"
    base = YAML(typ="safe").load((HERE / "params.yaml").read_text())
    result = {}
    for model, changes in RUNS.items():
        run = work / model
        run.mkdir(parents=True)
        params = json.loads(json.dumps(base)) | {"model": model, "noise": 0.5}
        params["fetch"]["source"] = str(corpus) if "dataset" not in changes else "auto"
        for key, value in changes.items():
            params[key] = params.get(key, {}) | value if isinstance(value, dict) else value
        with open(run / "params.yaml", "w") as f:
            YAML().dump(params, f)
        for stage in ("fetch", "extract", "corrupt", "train", "evaluate"):
            done = subprocess.run([sys.executable, "-m", "codemem", stage], cwd=run, env=env,
                                  capture_output=True, text=True, check=False)
            if done.returncode:
                sys.exit(f"{model} {stage} failed:\n{done.stdout}\n{done.stderr}")
        result[model] = fingerprint(run)
        print(f"{model}: {len(result[model])} outputs", flush=True)
    return result


def compare(a: dict, b: dict) -> int:
    differ = [(m, k) for m in sorted(a.keys() | b.keys())
              for k in sorted(a.get(m, {}).keys() | b.get(m, {}).keys()) if a.get(m, {}).get(k) != b.get(m, {}).get(k)]
    for model, key in differ:
        print(f"differs: {model} {key}")
    total = sum(len(v) for v in a.values())
    print(f"{total - len(differ)} of {total} outputs equal" + ("" if differ else ": the same numbers, bit for bit"))
    return 1 if differ else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("paths", nargs=2, type=Path, help="TREE OUT.json, or with --compare A.json B.json")
    parser.add_argument("--compare", action="store_true")
    args = parser.parse_args()
    if args.compare:
        return compare(*(json.loads(p.read_text()) for p in args.paths))
    tree, out = args.paths[0].resolve(), args.paths[1]
    with tempfile.TemporaryDirectory(prefix="same-numbers-") as tmp:
        corpus = jdk_folder(Path(tmp))
        out.write_text(json.dumps(run_tree(tree, Path(tmp) / "runs", corpus), indent=1) + "\n")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
