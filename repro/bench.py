"""Benchmark: prints the figures the issues' targets are checked against.

    python repro/bench.py                 # fetch + extract of the whole JDK, then one training epoch
    python repro/bench.py --epochs 0      # extraction only
    python repro/bench.py --device cuda   # the training epoch on a GPU

Runs the real stages in a temporary folder with the repository's params.yaml (so the default
corpus and settings), and prints wall-clock seconds, samples per second and peak memory.
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

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=1, help="training epochs to time (0 = none)")
    parser.add_argument("--device", default="auto", help="train.device for the timed epochs")
    parser.add_argument("--params", default=str(ROOT / "params.yaml"))
    args = parser.parse_args()
    os.environ.setdefault("CODEMEM_QUIET", "1")

    import torch

    from codemem import corrupt, extract, fetch, train
    from codemem.params import load

    params = load(args.params)
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, python {platform.python_version()}, "
          f"torch {torch.__version__}")  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        os.chdir(tmp)
        t = time.perf_counter()
        manifest = fetch.run(params)
        print(f"fetch:   {time.perf_counter() - t:6.1f} s  {manifest['files']} files from {manifest['source']} "
              f"(JDK {manifest['version']})")  # fmt: skip
        t = time.perf_counter()
        report = extract.run(params)
        n = sum(report[f"samples_{s}"] for s in ("train", "val", "test"))
        print(f"extract: {time.perf_counter() - t:6.1f} s  {report['methods']} methods scanned, {n} samples "
              f"({report['samples_train']}/{report['samples_val']}/{report['samples_test']}), "
              f"{report['variants_test']} renaming variants")  # fmt: skip
        if args.epochs:
            corrupt.run(params)
            timed = dataclasses.replace(params, train=dataclasses.replace(params.train, epochs=args.epochs,
                                                                          device=args.device))  # fmt: skip
            t = time.perf_counter()
            history = train.run(timed)
            total = time.perf_counter() - t
            per_epoch = [row["seconds"] for row in history]
            print(f"train:   {total:6.1f} s for {args.epochs} epoch(s) on {train.choose_device(args.device)}; "
                  f"epoch (train + all measurements) {sum(per_epoch) / len(per_epoch):.1f} s; "
                  f"{report['samples_train'] * args.epochs / sum(per_epoch):.0f} training samples/s incl. measurements")  # fmt: skip
            if torch.cuda.is_available():
                print(f"gpu peak memory: {torch.cuda.max_memory_allocated() / 2**20:.0f} MiB")
    print(f"peak RSS (this process): {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")


if __name__ == "__main__":
    main()
