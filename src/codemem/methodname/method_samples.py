"""Where MethodName samples come from and which become samples: the source-specific parts of the one
extraction path (`codemem.methodname.java_corpora`) and a recipe's choice (`codemem.datasets.Recipe`).

Sources (`Source`, `members`): the zip fetch made of the JDK's src.zip or of a user's zip / folder
(build/raw/corpus.zip, members in name order, so the choice and the sample order follow file names),
or one of code2seq's verified tar.gz archives (members in archive order, streamed). Which split a
member is in: the archive's folders (`FolderLayout`), or its package's assignment (`PackageLayout`).

The choice: the choice pass streams every member once; its workers return each file's methods
(index, label, body key, syntax error) and, in the main process, `Candidates` keeps the error-free,
named ones (deduplicated if the recipe says so), `choose` picks the names and caps them, and for a
split by package `split_by_package` assigns whole packages to splits. Only the chosen methods get
path-contexts, in the split passes. Every draw comes from one generator, `default_rng([seed, 0])`, in
a fixed order (the names' caps in name order, then the packages' order), so a seed gives the same
sample on every machine and rerun.
"""

from __future__ import annotations

import dataclasses
import json
import zipfile
from collections import Counter
from pathlib import Path

import numpy as np

from codemem import archive, datasets, storage
from codemem.errors import MissingInputError


class Candidates:
    """The scanned methods a recipe may choose from, in member order, and what the scan counted.

    With names "top" the scan parses every file, so its counts are the corpus's census (files by
    status, methods, those with syntax errors, without name sub-tokens, with a duplicate body) and
    become the report's own keys; with fixed names most files are skipped by the prefilter, so the
    counts are the scan's (`scan_files_<status>`, `scan_methods_parsed`), next to the split passes'."""

    def __init__(self, recipe: datasets.Recipe):
        self.recipe, self.rows, self.counts, self._seen = recipe, [], Counter(), set()
        self.files = self.parsed = 0  # for timing.json

    def add(self, split: str | None, name: str, status: str, parsed: int, methods) -> None:
        """One file's scan: methods are (index, label, body_key, has_error) tuples (for fixed names,
        only the error-free ones with a wanted label: the workers filter them)."""
        c, census = self.counts, self.recipe.names == "top"
        self.files, self.parsed = self.files + 1, self.parsed + parsed
        if census:
            c["files"] += 1
            c[f"files_{status}"] += 1
        else:
            c[f"scan_files_{status}"] += 1
            c["scan_methods_parsed"] += parsed
        for index, label, body_key, has_error in methods:
            if census:
                c["methods"] += 1
            if has_error:
                c["methods_with_syntax_errors"] += 1
            elif not label:
                c["methods_without_name_subtokens"] += 1
            elif self.recipe.dedup_bodies and body_key in self._seen:
                c["methods_duplicate_body"] += 1
            else:
                self._seen.add(body_key)
                self.rows.append((split, name, index, label))


def choose(rows: list, recipe: datasets.Recipe, top_names: int, per_name: int, rng) -> tuple[list, dict]:
    """(the chosen (split, file, index, label) rows, {label: its candidates} of the chosen names).

    Per name, in name order: the capped rows (every candidate, or the training ones) are sampled down
    to per_name (indices drawn without replacement, kept in member order); with cap "train" every
    validation / test candidate of the name is kept as well."""
    counts = Counter(label for _, _, _, label in rows)
    if recipe.names == "top":
        labels = [label for label, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:top_names]]
    else:
        labels = list(recipe.names)
    chosen = []
    for label in labels:
        capped = [r for r in rows if r[3] == label and (recipe.cap == "all" or r[0] == "train")]
        if per_name and len(capped) > per_name:
            capped = [capped[i] for i in sorted(rng.choice(len(capped), per_name, replace=False))]
        chosen += capped
        if recipe.cap == "train":
            chosen += [r for r in rows if r[3] == label and r[0] != "train"]
    return chosen, {label: counts[label] for label in labels}


def package(file: str) -> str:
    return file.rsplit("/", 1)[0]


def split_by_package(packages: list[str], sizes: dict[str, int], shares, rng) -> dict[str, int]:
    """Assign whole packages to splits 0/1/2 (train/val/test). In a seeded order, each package goes
    to the split it leaves least filled relative to that split's share, so a large package lands
    where it fits (usually train) and no split stays empty while packages remain."""
    order = list(packages)
    rng.shuffle(order)
    shares = np.asarray(shares, dtype=float)
    filled = np.zeros(3)
    assignment = {}
    with np.errstate(divide="ignore"):
        for p in order:
            split = int(np.argmin(np.where(shares > 0, (filled + sizes[p]) / shares, np.inf)))
            assignment[p] = split
            filled[split] += sizes[p]
    return assignment


class PackageLayout:
    """Which split a chosen file belongs to, from its package's assignment (shaped like the archive's
    `FolderLayout`: `split(name)`, and `project(name)`, here the package)."""

    def __init__(self, split_of_file: dict[str, str]):
        self.split_of_file = split_of_file

    def split(self, name: str) -> str | None:
        return self.split_of_file.get(name)

    def project(self, name: str) -> str:
        return package(name)


class FolderLayout:
    """Which split a member belongs to, from the archive's folders."""

    def __init__(self, a: datasets.Archive):
        self.prefixes = {f"{a.root}/{folder}/": split for folder, split in a.folders.items()}

    def split(self, name: str) -> str | None:
        for prefix, split in self.prefixes.items():
            if name.startswith(prefix):
                return split
        return None

    def project(self, name: str) -> str:
        parts = name.split("/")
        return parts[2] if len(parts) > 3 else ""


@dataclasses.dataclass(frozen=True)
class Source:
    """Where the members come from: the fetched zip (members in name order) or a verified archive."""

    path: Path
    sha256: str
    layout: FolderLayout | None = None  # an archive's folders: which split a member is in
    limits: archive.Limits | None = None  # None: the zip fetch made, not an archive

    @classmethod
    def of(cls, ds: datasets.Dataset, layout: storage.Layout) -> Source:
        if ds.kind != "java-archive":
            corpus = storage.require(layout.corpus, "fetch")
            return cls(corpus, storage.sha256_file(corpus))
        if not layout.manifest.exists():
            raise MissingInputError(f"{layout.manifest} is missing: run the fetch stage first (`dvc repro fetch`)")
        manifest = json.loads(layout.manifest.read_text())
        source = Path(manifest["source"])
        if not source.exists():
            raise MissingInputError(f"{source} is missing: run the fetch stage (`dvc repro fetch`) or `dvc pull data.dvc`")
        return cls(source, manifest["source_sha256"], FolderLayout(ds.archive), archive.Limits(total_bytes=ds.archive.max_expanded))


def members(path: Path, limits: archive.Limits | None, select):
    """(name, bytes) of the .java members whose name passes `select`: with limits None, those of the
    zip fetch made, in name order; else those of a verified archive, in archive order."""
    if limits is None:
        with zipfile.ZipFile(path) as z:
            for name in sorted(n for n in z.namelist() if n.endswith(".java")):
                if select(name):
                    yield name, z.read(name)
        return
    yield from archive.stream(path, lambda n: n.endswith(".java") and select(n), limits)
