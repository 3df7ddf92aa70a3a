"""Dataset registry: name -> task and where its raw corpus comes from.

A dataset is a corpus plus a recipe. `jdk-top10` applies the Java-Top10 recipe (the 10 most
frequent method names, at most 1,000 methods each) to the JDK's own sources, which every machine
with a JDK has or can install from Debian's `openjdk-17-source` package, so the default pipeline
runs offline. The JDK version is part of the dataset: fetch records it and the archive's sha256.

VarMisuse: `stdlib-great` builds GREAT-style samples (Hellendoorn et al., ICLR 2020) from the running
Python's standard library, so it too runs offline; the Python version and a sha256 over the files
are recorded (a different Python is a different dataset). `py150-great` reads the published
Py150-Great shards (google-research-datasets/great) from a folder named by `fetch.source`.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Dataset:
    name: str
    task: str  # "methodname" | "varmisuse"
    # "jdk": a JDK src.zip found locally or unpacked from Debian's openjdk-17-source;
    # "stdlib": the .py files of the running Python's standard library;
    # "great-shards": a folder of published GREAT JSON-lines shards, given by fetch.source.
    kind: str
    description: str


_REGISTRY = {
    d.name: d
    for d in [
        Dataset(
            "jdk-top10",
            "methodname",
            "jdk",
            "Java-Top10 recipe over the JDK's src.zip (or over fetch.source: any zip/folder of .java files)",
        ),
        Dataset(
            "stdlib-great",
            "varmisuse",
            "stdlib",
            "GREAT-style VarMisuse samples from the running Python's standard library (or fetch.source: "
            "a folder of .py files)",
        ),
        Dataset(
            "py150-great",
            "varmisuse",
            "great-shards",
            "the published Py150-Great shards (google-research-datasets/great); fetch.source must name a "
            "folder holding them (train/, dev/, eval/)",
        ),
    ]
}


def names() -> list[str]:
    return list(_REGISTRY)


def get(name: str) -> Dataset:
    if name not in _REGISTRY:
        raise KeyError(f"unknown dataset {name!r}; choose one of {', '.join(_REGISTRY)}")
    return _REGISTRY[name]
