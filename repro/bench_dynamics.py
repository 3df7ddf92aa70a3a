"""What logging the training dynamics for mislabel detection costs (docs/benchmarks.md).

    python repro/bench_dynamics.py RUN_DIR [--repeats 5]

RUN_DIR: a project folder whose extract and corrupt stages ran (build/samples, build/noisy), e.g. one
of build/detection-runs/*. Builds the run's code2vec training as the train stage does and times the
after-epoch measurement of the training split with and without the label margins (the one extra
computation the dynamics need; loss and prediction were measured anyway), alternating, and prints
the extra bytes per epoch the dynamics add to build/logs/per_sample.npz (compressed, measured on
RUN_DIR's logs when the run has them).
"""

from __future__ import annotations

import argparse
import io
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run", type=Path)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    os.chdir(args.run)
    import torch

    from codemem import runtime, task
    from codemem.params import load
    from codemem.storage import PROJECT

    runtime.flush_denormals()
    params = load("params.yaml")
    training = task.get(params.task).prepare(params, PROJECT, torch.device("cpu"))
    bs = params.train.eval_batch_size
    times = {False: [], True: []}
    for _ in range(args.repeats):
        for margins in (False, True):
            began = time.perf_counter()
            training.measure_shared("train", bs, margins=margins)
            times[margins].append(time.perf_counter() - began)
    plain, with_margins = np.median(times[False]), np.median(times[True])
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, torch threads "
          f"{torch.get_num_threads()}; {len(training.train_names)} training samples")
    print(f"train-split measurement, median of {args.repeats}: {plain:.3f} s without margins, "
          f"{with_margins:.3f} s with (+{with_margins - plain:.3f} s an epoch)")
    logs = Path("build/checkpoints/flagging/build/logs/per_sample.npz")
    logs = logs if logs.exists() else Path("build/logs/per_sample.npz")
    if logs.exists():
        with np.load(logs) as z:
            epochs = z["test_score"].shape[0]
            extra = {k: z[k] for k in ("dyn_loss", "dyn_margin", "dyn_correct", "in_step_loss", "flipped") if k in z}
        buf = io.BytesIO()
        np.savez_compressed(buf, **extra)
        print(f"per_sample.npz: the dynamics add {buf.tell() / 1024:.0f} KiB compressed over {epochs} epochs "
              f"({buf.tell() / epochs / max(len(training.train_names), 1):.1f} bytes a sample an epoch)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
