"""Benchmark: stdlib-great's extraction (VarMisuse samples from a folder of Python) against the corpus size.

    python repro/debian_pycorpus.py /tmp/pycorpus --size large
    python repro/bench_varmisuse_extract.py /tmp/pycorpus/large --max-files 1700   # a tenth
    python repro/bench_varmisuse_extract.py /tmp/pycorpus/large                    # all of it

Runs the real fetch and extract stages (`python -m codemem fetch`, then `extract`, as `dvc repro`
does; dataset stdlib-great, `fetch.source` = the folder) in a temporary work folder and prints files/s,
samples/s and the extract stage's peak RSS: of its main process and of each worker process (sampled
from /proc every 50 ms), and of the largest process of all (the kernel's exact count). Peak RSS should
not grow with the corpus: compare two sizes.
`--json FILE` also writes the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))


def cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


class PeakRSS(threading.Thread):
    """Polls a process and its children; the largest RSS seen per process, in MiB."""

    def __init__(self, pid: int, interval: float = 0.05):
        super().__init__(daemon=True)
        self.interval, self.peaks, self.stopped = interval, {}, threading.Event()
        self.proc = psutil.Process(pid)

    def run(self) -> None:
        while not self.stopped.is_set():
            try:
                procs = [self.proc, *self.proc.children(recursive=True)]
            except psutil.Error:
                return
            for p in procs:
                try:
                    rss = p.memory_info().rss / 2**20
                except psutil.Error:
                    continue
                key = "main" if p.pid == self.proc.pid else f"worker {p.pid}"
                self.peaks[key] = max(self.peaks.get(key, 0), rss)
            self.stopped.wait(self.interval)


def stage(name: str, sample: bool = False) -> tuple[float, dict]:
    """`python -m codemem NAME` in the current folder: seconds, and peak RSS per process if sampled."""
    t = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "codemem", name], env=os.environ | {"PYTHONPATH": str(ROOT / "src")})
    sampler = PeakRSS(proc.pid)
    if sample:
        sampler.start()
    if proc.wait():
        sys.exit(f"{name} failed with exit code {proc.returncode}")
    seconds = time.perf_counter() - t
    sampler.stopped.set()
    return seconds, sampler.peaks


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("corpus", type=Path, help="a folder of .py files")
    parser.add_argument("--max-files", type=int, default=0, help="extract.max_files (0 = all)")
    parser.add_argument("--workers", type=int, default=0, help="extract.workers (0 = all cores)")
    parser.add_argument("--json", metavar="FILE")
    args = parser.parse_args()
    os.environ.setdefault("CODEMEM_QUIET", "1")
    settings = {"dataset": "stdlib-great", "model": "great", "fetch": {"source": str(args.corpus.resolve())},
                "extract": {"max_files": args.max_files, "workers": args.workers}}
    with tempfile.TemporaryDirectory(prefix="codemem-bench-") as work:
        os.chdir(work)
        Path("params.yaml").write_text(json.dumps(settings))  # JSON is YAML
        fetch_seconds, _ = stage("fetch")
        seconds, peaks = stage("extract", sample=True)
        report = json.loads(Path("build/samples/report.json").read_text())
        timing = json.loads(Path("build/extract-work/timing.json").read_text())
        out_mib = sum(p.stat().st_size for p in Path("build/samples").iterdir()) / 2**20
    files, samples = report["files"]["seen"], report["samples"]
    workers = sorted(v for k, v in peaks.items() if k != "main")
    figures = {
        "corpus": str(args.corpus), "max_files": args.max_files, "workers": timing["workers"], "cpu": cpu_model(),
        "cores": os.cpu_count(), "files": files, "functions": report["functions"]["kept"], "samples": samples,
        "splits": {s: v["samples"] for s, v in report["splits"].items()}, "output_mib": round(out_mib),
        "fetch_seconds": round(fetch_seconds, 1), "extract_seconds": round(seconds, 1),
        "files_per_s": round(files / seconds, 1), "samples_per_s": round(samples / seconds, 1),
        "peak_rss_main_mib": round(peaks.get("main", 0)),
        "peak_rss_each_worker_mib": [round(v) for v in workers],
        "peak_rss_any_process_mib": round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024),
    }  # fmt: skip
    print(f"{args.corpus} ({files} files, max_files {args.max_files}), {timing['workers']} workers, {cpu_model()}")
    print(f"samples {samples} ({figures['splits']}), {figures['output_mib']} MiB of JSON lines")
    print(f"extract {seconds:.1f} s: {figures['files_per_s']} files/s, {figures['samples_per_s']} samples/s "
          f"(fetch {fetch_seconds:.1f} s)")
    print(f"peak RSS: main {figures['peak_rss_main_mib']} MiB, each worker {figures['peak_rss_each_worker_mib']} MiB "
          f"(sampled); any process {figures['peak_rss_any_process_mib']} MiB (the kernel's count)")
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()
