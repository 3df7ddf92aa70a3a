"""Benchmark: times whole training runs and prints the figures the issues' targets are checked against.

    python repro/bench.py                                   # code2vec's whole default run on jdk-top10
    python repro/bench.py --set model=code2seq              # any params.yaml key, dotted
    python repro/bench.py --epochs 3                        # a shorter run (0 = the model's default)
    python repro/bench.py --resume build/checkpoints/train.pt --epochs 30   # from a late checkpoint
    python repro/bench.py --profile 20                      # torch.profiler over 20 training steps
    python repro/bench.py --set dataset=stdlib-great --set model=great      # VarMisuse steps
    python repro/bench.py --device cuda --set train.samples_per_step=250000  # the study's step on a GPU
    python repro/bench.py --no-train --set dataset=java-small --set fetch.source=ARCHIVE   # extraction at scale
        (ARCHIVE: the real java-small.tar.gz, or the look-alike `repro/debian_corpus.py` builds; per split:
        files/s, methods/s; peak RSS of the main process and of the largest worker)
    python repro/bench.py --no-train --workdir W --set dataset=java-small --set fetch.source=ARCHIVE, then
    python repro/bench.py --workdir W --set dataset=java-small --epochs 1 --max-steps 100
        (code2vec's memory at Java-Small's size: the study's model, 100 training steps, the whole
        measurement pass over every training and test sample)
    python repro/bench.py --set dataset=stdlib-great --set model=great --replicate 10 --epochs 1
        (VarMisuse's memory against the training set's size: the noisy training file repeated 10
        times; peak RSS should not grow with it, as training reads its samples from disk;
        MethodName: the training split's contexts and labels repeated)

Runs the real stages (fetch, extract, corrupt, train) in a work folder (a temporary one unless
`--workdir` names one, whose extracted samples are then reused when the data settings match) with the
repository's params.yaml plus the `--set` overrides. Prints per epoch (VarMisuse: per step) the
training time apart from the measurement time, then over the whole run: first and last epoch, their
ratio (a run that slows down as it trains shows here, not in one early epoch), training samples per
second, peak process memory and, on a GPU, peak GPU memory. `--json FILE` writes the same figures.

The timed run uses the same process set-up as a stage (`codemem.runtime`): denormals flushed before
torch starts its threads. `--no-flush` leaves them, to measure what that costs on this CPU.
`--heap-threshold BYTES` fixes glibc's mmap threshold (the stages leave glibc's dynamic one: a fixed
1 MiB made code2vec's epoch slower and its peak RSS larger, docs/benchmarks.md).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import resource
import shutil
import statistics
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


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


extract_figures: dict = {}  # what prepare_samples measured, for --json


def prepare_samples(params, task: str, replicate: int = 1) -> int:
    """fetch + extract + corrupt in the current folder, skipping fetch and extract when this folder
    already holds samples made from the same data settings. Returns the training samples per epoch."""
    from codemem import corrupt, extract, fetch

    stamp = Path("bench-data.json")
    key = json.dumps([params.dataset, params.seed, dataclasses.asdict(params.fetch),
                      dataclasses.asdict(params.extract)], sort_keys=True, default=str)  # fmt: skip
    if Path("build/samples").exists() and (not stamp.exists() or stamp.read_text() == key):
        # Samples from an earlier bench run with the same data settings, or put there by hand (a copy
        # of a pipeline's build/samples, whose checkpoints then resume: their fingerprint matches).
        print("fetch, extract: reusing the samples in this work folder")
    else:
        t = time.perf_counter()
        manifest = fetch.run(params)
        print(f"fetch:   {time.perf_counter() - t:6.1f} s  {manifest.get('files', '-')} files from {manifest['source']} "
              f"({manifest.get('version', '')})")  # fmt: skip
        t = time.perf_counter()
        report = extract.run(params)
        extract_figures["extract_seconds"] = round(time.perf_counter() - t, 1)
        if Path("build/extract-work/timing.json").exists():  # the study's Java archives: per split
            extract_figures["splits"] = json.loads(Path("build/extract-work/timing.json").read_text())
            for split, f in extract_figures["splits"].items():
                if split == "scan":
                    print(f"  name scan: {f['files']} files, {f['methods_parsed']} methods parsed for their names "
                          f"in {f['seconds']} s")  # fmt: skip
                elif isinstance(f, dict) and "pass" in f:  # java-top10: one pass for every split
                    print(f"  {split:5s}: {f['files']} files, {f['samples']} methods (one pass for {f['pass']}: "
                          f"{f['seconds']} s in all)")  # fmt: skip
                elif isinstance(f, dict):
                    print(f"  {split:5s}: {f['files']} files, {f['samples']} methods in {f['seconds']} s: "
                          f"{f['files_per_s']} files/s, {f['methods_per_s']} methods/s")  # fmt: skip
        if task == "methodname":
            print(f"extract: {time.perf_counter() - t:6.1f} s  {report.get('methods', '-')} methods scanned, "
                  f"{report['samples_train']}/{report['samples_val']}/{report['samples_test']} samples")  # fmt: skip
        else:
            print(f"extract: {time.perf_counter() - t:6.1f} s  {report['train']}/{report['dev']}/{report['eval']} samples")
        stamp.write_text(key)
    corrupt.run(params)
    if task == "methodname":
        if replicate > 1:  # in a child process: its memory must not count as training's
            import multiprocessing
            from concurrent.futures import ProcessPoolExecutor

            with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("fork")) as pool:
                n = pool.submit(replicate_methodname, replicate).result()
            extract_figures["train_samples"] = n
            print(f"training set repeated {replicate} times: {n} samples")
        return len(Path("build/noisy/labels.tsv").read_text().splitlines()) - 1
    if replicate > 1:  # a larger training set of the same samples: what memory does with the size
        train_file = Path("build/noisy/train.jsonl")
        one = train_file.read_bytes()
        with open(train_file, "ab") as f:
            f.writelines(one for _ in range(replicate - 1))
        samples = one.count(b"\n") * replicate
        print(f"training set repeated {replicate} times: {samples} samples, "
              f"{train_file.stat().st_size / 2**20:.0f} MiB")  # fmt: skip
        extract_figures["train_samples"] = samples
        extract_figures["train_file_mib"] = round(train_file.stat().st_size / 2**20)
    return params.train.samples_per_step


def replicate_methodname(k: int) -> int:
    """The training split's samples (contexts in both formats, labels, noisy labels) repeated k
    times in place: what training's memory does with the training set's size."""
    import numpy as np

    samples, noisy = Path("build/samples/contexts.npz"), Path("build/noisy/labels.tsv")
    with np.load(samples) as z:
        arrays = {key: z[key] for key in z.files}
    for key in [key for key in arrays if key.endswith("_train_ctx")] + ["train_label"]:
        arrays[key] = np.concatenate([arrays[key]] * k)
    with open(samples, "wb") as f:
        np.savez(f, **arrays)
    header, *rows = noisy.read_text().splitlines()
    noisy.write_text("\n".join([header, *rows * k]) + "\n")
    return len(arrays["train_label"])


def profile_steps(params, steps: int, device_name: str) -> None:
    """torch.profiler over `steps` training steps (after 3 warm-up steps): where a step's time goes."""
    import torch
    from torch.profiler import ProfilerActivity, profile

    from codemem import task, train
    from codemem.storage import PROJECT

    device = train.choose_device(device_name)
    torch.manual_seed(params.seed)
    runner = task.get(params.task).prepare(params, PROJECT, device)  # MethodName: a codemem.methodname.name_training runner
    batches = runner.batches(0)

    def step(batch):  # as codemem.train's loop does it
        loss, _ = runner.loss(batch)
        runner.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if runner.clip_norm is not None:
            torch.nn.utils.clip_grad_norm_(runner.model.parameters(), runner.clip_norm)
        runner.optimizer.step()

    runner.model.train()
    for idx in batches[:3]:
        step(idx)
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    timed = [batches[(3 + i) % len(batches)] for i in range(steps)]
    t = time.perf_counter()
    with profile(activities=activities) as prof:
        for idx in timed:
            step(idx)
    seconds = time.perf_counter() - t
    n = sum(len(idx) for idx in timed)
    print(f"profile: {steps} steps of {params.train.batch_size} in {seconds:.2f} s under the profiler "
          f"({1000 * seconds / steps:.0f} ms a step, {n / seconds:.0f} samples/s)")  # fmt: skip
    sort = "self_cuda_time_total" if device.type == "cuda" else "self_cpu_time_total"
    print(prof.key_averages().table(sort_by=sort, row_limit=18, max_name_column_width=40))


def cap_steps(steps: int) -> None:
    """Train only the first `steps` batches of each epoch; the measurement pass stays whole. For
    memory at full scale (the model, the data, the measurement of every training sample), where a
    whole epoch would take an hour: nothing accumulates from step to step, the optimizer's state is
    made at the first step."""
    from codemem.methodname import name_training
    from codemem.varmisuse import bug_training

    for cls in (name_training.MethodNameTraining, bug_training.VarMisuseTraining):
        whole = cls.batches
        cls.batches = lambda self, epoch, whole=whole: whole(self, epoch)[:steps]


def time_run(params, args, task: str, n_train: int) -> dict:
    import torch

    from codemem import train

    start = 0
    if args.resume:
        Path("build/checkpoints").mkdir(parents=True, exist_ok=True)
        shutil.copyfile(args.resume, "build/checkpoints/train.pt")
        start = torch.load(args.resume, map_location="cpu", weights_only=False)["epoch"]
    else:
        shutil.rmtree("build/checkpoints", ignore_errors=True)
    epochs = args.epochs or params.epochs
    if args.max_steps:
        cap_steps(args.max_steps)
    timed = dataclasses.replace(params, train=dataclasses.replace(params.train, epochs=epochs, device=args.device))
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    t = time.perf_counter()
    history = train.run(timed)
    total = time.perf_counter() - t
    done = [row for row in history if row["epoch"] > start]  # the epochs this process trained
    unit = "epoch" if task == "methodname" else f"step ({n_train} samples)"
    print(f"\n{'epoch':>5}  {'train s':>8}  {'measure s':>9}  {'samples/s':>9}   ({unit})")
    for row in done:
        print(f"{row['epoch']:>5}  {row['train_seconds']:8.2f}  {row['seconds'] - row['train_seconds']:9.2f}  "
              f"{n_train / row['train_seconds']:9.1f}")  # fmt: skip
    training = sum(row["train_seconds"] for row in done)
    seconds = sum(row["seconds"] for row in done)
    first, last = done[0], done[-1]
    figures = {
        "epochs": len(done), "first_epoch": first["epoch"], "last_epoch": last["epoch"],
        "wall_seconds": round(total, 1), "train_seconds": round(training, 1), "seconds": round(seconds, 1),
        "first_train_seconds": first["train_seconds"], "last_train_seconds": last["train_seconds"],
        "last_first_ratio": round(last["train_seconds"] / first["train_seconds"], 3),
        # The first epoch also warms up (allocations, thread pool) and one epoch can catch a busy
        # moment: the median of the last three against the first three is the steadier comparison.
        "late_early_ratio": round(statistics.median(r["train_seconds"] for r in done[-3:])
                                  / statistics.median(r["train_seconds"] for r in done[:3]), 3),
        "train_samples_per_s": round(n_train * len(done) / training, 1),
        "samples_per_s_with_measurements": round(n_train * len(done) / seconds, 1),
        "device": str(train.choose_device(args.device)),
        "per_epoch": [{"epoch": r["epoch"], "train_seconds": r["train_seconds"],
                       "measure_seconds": round(r["seconds"] - r["train_seconds"], 3)} for r in done],
    }  # fmt: skip
    if torch.cuda.is_available():
        figures["gpu_peak_memory_mib"] = round(torch.cuda.max_memory_allocated() / 2**20)
    resumed = f", resumed after epoch {first['epoch'] - 1}" if args.resume else ""
    print(f"\ntrain: {total:.1f} s for {len(done)} x {unit} on {figures['device']}{resumed}; "
          f"{seconds / len(done):.1f} s each with measurements, {training / len(done):.1f} s training")
    print(f"first/last epoch training: {first['train_seconds']:.2f} s / {last['train_seconds']:.2f} s "
          f"-> last/first ratio {figures['last_first_ratio']:.2f}; median of the last 3 / first 3 epochs "
          f"{figures['late_early_ratio']:.2f}")
    print(f"training samples/s over the run: {figures['train_samples_per_s']:.1f} "
          f"({figures['samples_per_s_with_measurements']:.1f} incl. measurements)")
    if "gpu_peak_memory_mib" in figures:
        print(f"gpu peak memory: {figures['gpu_peak_memory_mib']} MiB")
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=0, help="epochs (VarMisuse: steps) to time; 0 = the model's default run")
    parser.add_argument("--device", default="auto", help="train.device for the timed run")
    parser.add_argument("--params", default=str(ROOT / "params.yaml"))
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="params override")
    parser.add_argument("--workdir", help="work folder (kept; its samples are reused); default: a temporary one")
    parser.add_argument("--resume", metavar="CHECKPOINT", help="start from this checkpoint (same params and data)")
    parser.add_argument("--profile", type=int, default=0, metavar="STEPS", help="profile this many training steps instead")
    parser.add_argument("--no-train", action="store_true", help="fetch and extract only")
    parser.add_argument("--max-steps", type=int, default=0, metavar="N",
                        help="train N batches an epoch, measure as usual (memory at full scale in minutes)")
    parser.add_argument("--no-flush", action="store_true", help="leave denormals unflushed (to measure their cost)")
    parser.add_argument("--heap-threshold", type=int, default=0, metavar="BYTES",
                        help="fix glibc's mmap threshold (default 0: glibc's dynamic one, as a stage)")
    parser.add_argument("--json", metavar="FILE", help="also write the figures here")
    parser.add_argument("--replicate", type=int, default=1, metavar="K",
                        help="repeat the training samples K times (memory against the training set's size)")
    args = parser.parse_args()
    os.environ.setdefault("CODEMEM_QUIET", "1")

    from codemem import runtime

    flushed = False if args.no_flush else runtime.flush_denormals()  # before torch starts threads, as a stage
    heap_threshold = args.heap_threshold
    if heap_threshold:
        runtime.bound_heap_growth(heap_threshold)
    import torch

    from codemem import datasets
    from codemem.params import ParamsError, from_dict

    raw = with_overrides(YAML(typ="safe").load(Path(args.params).read_text()), args.set)
    try:
        params = from_dict(raw)
    except ParamsError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)  # a user error, as the codemem commands answer one
    if args.resume and not Path(args.resume).is_file():
        print(f"error: --resume {args.resume}: no such checkpoint", file=sys.stderr)
        sys.exit(2)
    args.resume = args.resume and str(Path(args.resume).resolve())
    args.json = args.json and str(Path(args.json).resolve())
    if params.train.threads > 0:
        torch.set_num_threads(params.train.threads)
    task = datasets.get(params.dataset).task
    gpu = f", GPU {torch.cuda.get_device_name()}" if torch.cuda.is_available() else ""
    print(f"machine: {cpu_model()}, {os.cpu_count()} cores{gpu}; python {platform.python_version()}, "
          f"torch {torch.__version__} ({torch.get_num_threads()} threads, denormals flushed: {flushed}); "
          f"{params.dataset} / {params.model}")  # fmt: skip
    figures: dict = {"machine": cpu_model(), "cores": os.cpu_count(), "torch": torch.__version__,
                     "dataset": params.dataset, "model": params.model, "denormals_flushed": flushed,
                     "heap_mmap_threshold": heap_threshold}  # fmt: skip
    workdir = Path(args.workdir).resolve() if args.workdir else None
    with tempfile.TemporaryDirectory() as tmp:
        folder = workdir or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        os.chdir(folder)
        n_train = prepare_samples(params, task, args.replicate)
        if args.profile:
            profile_steps(params, args.profile, args.device)
        elif not args.no_train:
            figures |= time_run(params, args, task, n_train)
    figures["peak_rss_mib"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    figures["peak_rss_children_mib"] = round(children.ru_maxrss / 1024)
    # CPU seconds (this process, its finished workers): on a shared machine, wall time alone misleads.
    figures["cpu_seconds"] = {"main": round(time.process_time(), 1), "workers": round(children.ru_utime + children.ru_stime, 1)}
    print(f"CPU seconds: main {figures['cpu_seconds']['main']}, workers {figures['cpu_seconds']['workers']}")
    figures |= extract_figures
    print(f"peak RSS (this process): {figures['peak_rss_mib']} MiB; largest worker process: "
          f"{figures['peak_rss_children_mib']} MiB")
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()
