"""Dataset registry: name -> task and where its raw corpus comes from.

A dataset is a corpus plus a recipe. `jdk-top10` applies the Java-Top10 recipe (the 10 most
frequent method names, at most 1,000 methods each) to the JDK's own sources, which every machine
with a JDK has or can install from Debian's `openjdk-17-source` package, so the default pipeline
runs offline. The JDK version is part of the dataset: fetch records it and the archive's sha256.

VarMisuse: `stdlib-great` builds GREAT-style samples (Hellendoorn et al., ICLR 2020) from the running
Python's standard library, so it too runs offline; the Python version and a sha256 over the files
are recorded (a different Python is a different dataset). `py150-great` reads the published
Py150-Great shards (google-research-datasets/great), downloaded shard by shard (each checked against
its git blob SHA-1, listed in `codemem/data/great-shards.tsv`) or read from a folder named by
`fetch.source`.

The study's own MethodName corpora are code2seq's raw archives: `java-small`, `java-med` and
`java-large` take every method, split by the archive's training / validation / test folders (whole
projects); `java-top10` applies the study's recipe to Java-Large (10 fixed names, about 1,000 training
methods each, seeded; every such method of the validation and test folders). The archives are
downloaded into `data/` (tracked by `data.dvc`), their sha256 recorded in `data.checksums.json` on
the first download and enforced after.

How a corpus becomes samples is a `Recipe` (data, below): one extraction path
(`codemem.methodname.java_corpora`) runs every recipe, so the small default corpus exercises the
code that runs at Java-Large's scale.
"""

from __future__ import annotations

from dataclasses import dataclass, field

CODE2SEQ_DATASETS = "https://s3.amazonaws.com/code2seq/datasets"
GREAT_REPOSITORY = "https://raw.githubusercontent.com/google-research-datasets/great/master"
GREAT_SPLITS = ("train", "dev", "eval")
# The ten names of Java-Top10, as labels (sub-tokens joined by `|`, code2vec's label format).
TOP10_LABELS = ("init", "main", "equals", "run", "on|create", "set|up", "to|string", "hash|code", "execute", "get")
GB = 1 << 30


@dataclass(frozen=True)
class Archive:
    """A published tar.gz: `<root>/{training,validation,test}/<project>/.../*.java`."""

    filename: str
    root: str
    size_note: str  # what is known of its size (docs/datasets.md), for messages
    max_expanded: int  # bytes the decompressed stream may reach before it is refused as a bomb
    folders: dict = field(default_factory=lambda: {"training": "train", "validation": "val", "test": "test"})


@dataclass(frozen=True)
class Recipe:
    """Which methods of a MethodName corpus become samples, and in which split.

    names: "all" (every error-free method with a name), "top" (the `extract.top_names` most frequent
      labels, ties by label: a corpus whose names are not known beforehand) or a tuple of labels
      (known beforehand, so a cheap regex skips the files naming none of them unparsed);
    cap: whose methods `extract.per_name` caps, per name, seeded: "all" (every candidate, before the
      split) or "train" (training methods only; every validation / test one is kept, as the study's
      Java-Top10 kept them); not used with names="all";
    dedup_bodies: drop a method whose whitespace-free body an earlier one (file order) has: a quarter
      of the JDK's methods share one, and a memorization study must not test on its training set.
      code2seq's archives were already deduplicated by file and the study used them as they are;
    split: "folders" (the archive's training / validation / test folders: whole projects) or
      "package" (whole packages, in a seeded order, to `extract.split`'s shares, after the choice);
    npz: how contexts.npz is written from the per-split text files: "stream" (a zip member at a time,
      bounded memory: `npzstream.assemble`) or "savez" (numpy's savez_compressed of the arrays in memory:
      the bytes jdk-top10's contexts.npz has always had, token ids interleaving the test variants).
    """

    names: str | tuple[str, ...] = "all"
    cap: str = "train"
    dedup_bodies: bool = False
    split: str = "folders"
    npz: str = "stream"

    def __post_init__(self):
        # A package split needs the chosen methods' packages before the split passes: a choice pass.
        assert self.names != "all" or self.split == "folders", "names='all' splits by the archive's folders"


# A Dataset's `recipe` is one of these names (a string: fetch records it in the archive manifests).
RECIPES = {
    "all": Recipe(),  # Java-Small, -Med, -Large
    "top10": Recipe(names=TOP10_LABELS, cap="train"),  # the study's Java-Top10 over Java-Large
    "top-names": Recipe(names="top", cap="all", dedup_bodies=True, split="package", npz="savez"),  # jdk-top10
}


@dataclass(frozen=True)
class Dataset:
    name: str
    task: str  # "methodname" | "varmisuse"
    # "jdk": a JDK src.zip found locally or unpacked from Debian's openjdk-17-source;
    # "stdlib": the .py files of the running Python's standard library;
    # "great-shards": the published GREAT JSON-lines shards, downloaded or from fetch.source;
    # "java-archive": one of code2seq's raw Java archives, downloaded or from fetch.source.
    kind: str
    description: str
    archive: Archive | None = None
    recipe: str = "all"  # MethodName: a key of RECIPES
    base_url: str = ""  # where the files are, unless fetch.url names a mirror

    @property
    def method_recipe(self) -> Recipe:
        return RECIPES[self.recipe]


JAVA_SMALL = Archive("java-small.tar.gz", "java-small", "83.6 MB compressed", 8 * GB)
JAVA_MED = Archive("java-med.tar.gz", "java-med", "408 MB compressed, 2.4 GB extracted", 32 * GB)
JAVA_LARGE = Archive("java-large.tar.gz", "java-large", "size unpublished (several GB)", 256 * GB)


_REGISTRY = {
    d.name: d
    for d in [
        Dataset(
            "jdk-top10",
            "methodname",
            "jdk",
            "Java-Top10 recipe over the JDK's src.zip (or over fetch.source: any zip/folder of .java files)",
            recipe="top-names",
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
            "the published Py150-Great shards (google-research-datasets/great), downloaded and checked against "
            "their git blob SHA-1s, or fetch.source: a folder holding them (train/, dev/, eval/)",
            base_url=GREAT_REPOSITORY,
        ),
        Dataset("java-small", "methodname", "java-archive", "code2seq's Java-Small: every method, the archive's "
                "training / validation / test projects", JAVA_SMALL, "all", CODE2SEQ_DATASETS),
        Dataset("java-med", "methodname", "java-archive", "code2seq's Java-Med: every method, the archive's "
                "training / validation / test projects", JAVA_MED, "all", CODE2SEQ_DATASETS),
        Dataset("java-large", "methodname", "java-archive", "code2seq's Java-Large: every method, the archive's "
                "training / validation / test projects", JAVA_LARGE, "all", CODE2SEQ_DATASETS),
        Dataset("java-top10", "methodname", "java-archive", "the study's Java-Top10 over Java-Large: 10 names, "
                "~1,000 training methods each (seeded), every such method in validation / test",
                JAVA_LARGE, "top10", CODE2SEQ_DATASETS),
    ]
}


def names() -> list[str]:
    return list(_REGISTRY)


def get(name: str) -> Dataset:
    if name not in _REGISTRY:
        raise KeyError(f"unknown dataset {name!r}; choose one of {', '.join(_REGISTRY)}")
    return _REGISTRY[name]
