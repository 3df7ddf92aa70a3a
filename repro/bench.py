"""Benchmark: prints the figures the issues' targets are checked against.

    python repro/bench.py                                   # fetch + extract the whole JDK, one code2vec epoch
    python repro/bench.py --epochs 0                        # extraction only
    python repro/bench.py --set model=code2seq              # any params.yaml key, dotted
    python repro/bench.py --set dataset=stdlib-great --set model=great --epochs 2   # VarMisuse steps
    python repro/bench.py --device cuda --set train.samples_per_step=250000        # the study's step on a GPU

Runs the real stages in a temporary folder with the repository's params.yaml plus the `--set`
overrides, and prints wall-clock seconds, training samples per second (training alone, and with the
per-epoch measurements), peak process memory and, on a GPU, peak GPU memory.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import platform
import resource
import sys
import tempfile
import time
from pathlib import Path

from ruamel.yaml import YAML

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))


def with_overrides(raw: dict, items: list[str]) -> dict:
    """Apply `a.b=value` overrides to the raw params mapping (values parsed as YAML, as `dvc -S` does)."""
    for item in items:
        key, _, value = item.partition("=")
        *parents, leaf = key.split(".")
        node = raw
        for name in parents:
            node = node.setdefault(name, {})
        node[leaf] = YAML(typ="safe").load(value)
    return raw


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=1, help="training epochs (VarMisuse: steps) to time; 0 = none")
    parser.add_argument("--device", default="auto", help="train.device for the timed epochs")
    parser.add_argument("--params", default=str(ROOT / "params.yaml"))
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="params override")
    args = parser.parse_args()
    os.environ.setdefault("CODEMEM_QUIET", "1")

    import torch

    from codemem import corrupt, datasets, extract, fetch, train
    from codemem.params import ParamsError, from_dict

    raw = with_overrides(YAML(typ="safe").load(Path(args.params).read_text()), args.set)
    try:
        params = from_dict(raw)
    except ParamsError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)  # a user error, as the codemem commands answer one
    task = datasets.get(params.dataset).task
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, python {platform.python_version()}, "
          f"torch {torch.__version__} ({torch.get_num_threads()} threads); {params.dataset} / {params.model}")  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        os.chdir(tmp)
        t = time.perf_counter()
        manifest = fetch.run(params)
        print(f"fetch:   {time.perf_counter() - t:6.1f} s  {manifest['files']} files from {manifest['source']} "
              f"({manifest.get('version', '')})")  # fmt: skip
        t = time.perf_counter()
        report = extract.run(params)
        if task == "methodname":
            n_train = report["samples_train"]
            print(f"extract: {time.perf_counter() - t:6.1f} s  {report['methods']} methods scanned, "
                  f"{n_train}/{report['samples_val']}/{report['samples_test']} samples, "
                  f"{report['variants_test']} renaming variants")  # fmt: skip
        else:
            n_train = params.train.samples_per_step
            print(f"extract: {time.perf_counter() - t:6.1f} s  {report['train']}/{report['dev']}/{report['eval']} "
                  f"samples")  # fmt: skip
        if args.epochs:
            corrupt.run(params)
            timed = dataclasses.replace(params, train=dataclasses.replace(params.train, epochs=args.epochs,
                                                                          device=args.device))  # fmt: skip
            t = time.perf_counter()
            history = train.run(timed)
            total = time.perf_counter() - t
            seconds = sum(row["seconds"] for row in history)
            training = sum(row.get("train_seconds", row["seconds"]) for row in history)
            unit = "epoch" if task == "methodname" else f"step of {n_train} samples"
            print(f"train:   {total:6.1f} s for {args.epochs} x {unit} on {train.choose_device(args.device)}: "
                  f"{seconds / len(history):.1f} s each with measurements ({training / len(history):.1f} s "
                  f"training); {n_train * len(history) / training:.1f} training samples/s, "
                  f"{n_train * len(history) / seconds:.1f} incl. measurements")  # fmt: skip
            if torch.cuda.is_available():
                print(f"gpu peak memory: {torch.cuda.max_memory_allocated() / 2**20:.0f} MiB")
    print(f"peak RSS (this process): {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")


if __name__ == "__main__":
    main()
