"""The published Py150-Great format and the original sub-tokeniser.

Facts from the originals (`google-research-datasets/great`, `VHellendoorn/ICLR20-Great`):

- Data: JSON lines, one sample per line, in shard files named like
  `train__VARIABLE_MISUSE__SStuB.txt-00000-of-00300` (one folder per split; the README says each
  shard is a JSON list, the files themselves are JSON lines, which is what the original loader
  reads; both are accepted here). Fields: `source_tokens`, `has_bug`, `error_location`,
  `repair_candidates`, `repair_targets`, `edges`, `provenances`, plus `bug_kind` (1 buggy, 0 clean)
  and `bug_kind_name` ("VARIABLE_MISUSE" / "NONE").
- `error_location` is 0 for a clean sample: position 0 is the leading `#NEWLINE#`, which no edge
  touches. `repair_targets` are the positions of the variable that was replaced.
- `repair_candidates`: in clean samples, for each variable of the function its token positions
  followed by its name as a string (`[4, 20, 64, "key", 2, 31, "self", ...]`); in buggy samples
  positions only. The original loader keeps only the integers.
- `edges`: `[from, to, type_id, type_name]` with python-graphs' `EdgeType` ids (UNSPECIFIED=0 is
  never used) and names prefixed `enum_` (`EDGE_TYPES`). Only forward edges are stored; the
  original loader re-indexes type i (0-based, in `EDGE_TYPES` order) to 2i and adds every edge
  reversed as 2i+1 (`loader_edges`), which is why the models have 2*11 (+2 spare) = 24 slots.

The vocabulary `codemem/data/great-vocab.txt` is `vocab.txt` of VHellendoorn/ICLR20-Great:
14,280 BPE sub-tokens, MIT licence, copyright (c) 2020 Vincent Hellendoorn. Line i (0-based) is
sub-token id i+1; id 0 is PAD.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator
from importlib import resources
from pathlib import Path

from codemem.errors import InputError

# python-graphs' EdgeType ids, as they appear in the published shards ("enum_" + name).
EDGE_TYPES: dict[str, int] = {
    "enum_CFG_NEXT": 1,
    "enum_LAST_READ": 2,
    "enum_LAST_WRITE": 3,
    "enum_COMPUTED_FROM": 4,
    "enum_RETURNS_TO": 5,
    "enum_FORMAL_ARG_NAME": 6,
    "enum_FIELD": 7,
    "enum_SYNTAX": 8,
    "enum_NEXT_SYNTAX": 9,
    "enum_LAST_LEXICAL_USE": 10,
    "enum_CALLS": 11,
}
# ICLR20-Great data_loader.py: the same types renumbered from 0; forward = 2i, reverse = 2i+1.
LOADER_EDGE_INDEX: dict[str, int] = {name: i for i, name in enumerate(EDGE_TYPES)}
NUM_EDGE_SLOTS = 24  # the models' edge-type embedding table (config.yml); 22 are used

PAD_ID = 0
END_MARKER = "#"
REQUIRED_FIELDS = ("source_tokens", "has_bug", "error_location", "repair_candidates",
                   "repair_targets", "edges")


class GreatVocabulary:
    """The original sub-tokeniser (ICLR20-Great `data/vocabulary.py`), reproduced exactly.

    Loading follows the original to the letter: each line is `rstrip()`-ed (so the 42 lines that
    end in a space, e.g. "def ", lose it) and the word->id map is built from id order 1..n then
    PAD, so a word that occurs twice after stripping keeps its *later* id ('s' -> 8028, not 13).
    """

    def __init__(self, path: str | Path | None = None):
        if path is None:
            text = resources.files("codemem.data").joinpath("great-vocab.txt").read_text("utf-8")
        else:
            text = Path(path).read_text(encoding="utf-8")
        lines = text.split("\n")  # lines as `for l in f` yields them (not str.splitlines)
        subtokens = [line.rstrip() for line in (lines[:-1] if lines[-1] == "" else lines)]
        self.i2w = {ix + 1: w for ix, w in enumerate(subtokens)}
        self.i2w[PAD_ID] = "<PAD>"
        self.w2i = {w: ix for ix, w in self.i2w.items()}  # later duplicates win, as upstream
        self.size = len(self.i2w)  # upstream `vocab_dim`: 14,281 for the shipped file
        # Entries indexed by their first two characters, as upstream.
        self._by_prefix: dict[str, list[str]] = {}
        for w in self.w2i:
            self._by_prefix.setdefault(w[:2], []).append(w)
        self._cache: dict[str, list[str]] = {}

    def tokenize(self, token: str) -> list[str]:
        """Split `token` into sub-token strings with the original greedy rule."""
        token += END_MARKER
        if token in self._cache:
            return self._cache[token]
        pieces, ix, n = [], 0, len(token)
        while ix < n:
            if ix == n - 2:  # the last character and the end marker always go together
                pieces.append(token[ix:])
                break
            best = token[ix]  # a single character when no entry matches
            for cand in self._by_prefix.get(token[ix:ix + 2], ()):
                # Must match the next characters and must not leave the end marker alone.
                if token.startswith(cand, ix) and n != ix + len(cand) + 1 and len(cand) > len(best):
                    best = cand
            pieces.append(best)
            ix += len(best)
        self._cache[token] = pieces
        return pieces

    def lookup(self, piece: str) -> int:
        return self.w2i.get(piece, PAD_ID)  # truly unknown pieces map to PAD, as upstream

    def encode(self, token: str, max_pieces: int | None = None) -> list[int]:
        """Sub-token ids of one source token (upstream `translate`; the loader cuts to 10)."""
        ids = [self.lookup(p) for p in self.tokenize(token)]
        return ids if max_pieces is None else ids[:max_pieces]


class GreatFormatError(InputError):
    """A sample that does not follow the published format; the message names file and line."""


def _is_int(x) -> bool:
    return type(x) is int  # bool is an int subclass; a position must not be true/false


def validate_sample(sample, where: str = "sample") -> None:
    """Raise GreatFormatError (prefixed by `where`) unless `sample` is a well-formed sample."""
    def fail(msg):
        raise GreatFormatError(f"{where}: {msg}")

    if not isinstance(sample, dict):
        fail(f"expected a JSON object, got {type(sample).__name__}")
    missing = [f for f in REQUIRED_FIELDS if f not in sample]
    if missing:
        fail(f"missing field(s) {', '.join(missing)}")
    tokens = sample["source_tokens"]
    if not isinstance(tokens, list) or not tokens or not all(isinstance(t, str) for t in tokens):
        fail("source_tokens must be a non-empty list of strings")
    n = len(tokens)
    if type(sample["has_bug"]) is not bool:
        fail("has_bug must be true or false")
    loc = sample["error_location"]
    if not _is_int(loc) or not 0 <= loc < n:
        fail(f"error_location must be a token position in [0, {n}), got {loc!r}")
    targets = sample["repair_targets"]
    if not isinstance(targets, list) or not all(_is_int(t) and 0 <= t < n for t in targets):
        fail(f"repair_targets must be a list of token positions in [0, {n})")
    if sample["has_bug"] and not targets:
        fail("a buggy sample needs at least one repair target")
    if not sample["has_bug"] and (loc != 0 or targets):
        fail("a clean sample has error_location 0 and no repair targets")
    cands = sample["repair_candidates"]
    if not isinstance(cands, list) or not all(
            isinstance(c, str) or (_is_int(c) and 0 <= c < n) for c in cands):
        fail(f"repair_candidates must hold token positions in [0, {n}) or variable names")
    edges = sample["edges"]
    if not isinstance(edges, list):
        fail("edges must be a list")
    for i, e in enumerate(edges):
        if not (isinstance(e, list) and len(e) == 4 and _is_int(e[0]) and _is_int(e[1])
                and _is_int(e[2]) and isinstance(e[3], str)):
            fail(f"edge {i} must be [from, to, type_id, type_name], got {e!r}")
        if not (0 <= e[0] < n and 0 <= e[1] < n):
            fail(f"edge {i} {e!r} points outside the {n} tokens")
        if e[3] in EDGE_TYPES and EDGE_TYPES[e[3]] != e[2]:
            fail(f"edge {i} {e!r}: {e[3]} has type id {EDGE_TYPES[e[3]]}")
    prov = sample.get("provenances")
    if prov is not None and not isinstance(prov, list):
        fail("provenances must be a list")


def shard_files(path: str | Path) -> list[Path]:
    """The shard files under `path`: the file itself, or a folder's visible files, sorted."""
    path = Path(path)
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise FileNotFoundError(f"no GREAT shard file or folder at {path}")
    return sorted(p for p in path.iterdir() if p.is_file() and not p.name.startswith("."))


def read_shards(path: str | Path, *, validate: bool = True) -> Iterator[dict]:
    """Yield the samples of one shard file or of every file in a folder (sorted by name).

    Lines are JSON objects (blank lines are skipped); a file that starts with '[' is read as one
    JSON list, as the dataset's README describes. Each sample is validated unless told not to.
    """
    for file in shard_files(path):
        with open(file, encoding="utf-8") as f:
            head = f.read(4096).lstrip()
            f.seek(0)
            if head.startswith("["):
                try:
                    items = json.load(f)
                except json.JSONDecodeError as e:
                    raise GreatFormatError(f"{file}:{e.lineno}: invalid JSON ({e.msg})") from e
                for i, sample in enumerate(items):
                    if validate:
                        validate_sample(sample, f"{file}: item {i}")
                    yield sample
                continue
            for lineno, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    sample = json.loads(line)
                except json.JSONDecodeError as e:
                    raise GreatFormatError(f"{file}:{lineno}: invalid JSON ({e.msg})") from e
                if validate:
                    validate_sample(sample, f"{file}:{lineno}")
                yield sample


def write_shard(path: str | Path, samples: Iterable[dict], *, validate: bool = True) -> int:
    """Write samples as JSON lines, atomically (temp file + rename); returns how many."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")  # same folder: the rename is atomic
    count = 0
    try:
        with open(tmp, "w", encoding="utf-8") as f:
            for sample in samples:
                if validate:
                    validate_sample(sample, f"{path}: sample {count}")
                f.write(json.dumps(sample, separators=(",", ":")))
                f.write("\n")
                count += 1
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return count


def loader_edges(edges: list) -> list[tuple[int, int, int]]:
    """(type slot, from, to) as the original loader builds them: forward 2i, reverse 2i+1.

    Edge types that the original does not know are dropped, as upstream.
    """
    fwd = [(2 * LOADER_EDGE_INDEX[e[3]], e[0], e[1]) for e in edges if e[3] in LOADER_EDGE_INDEX]
    return fwd + [(t + 1, dst, src) for t, src, dst in fwd]


def candidate_positions(sample: dict) -> list[int]:
    """The integer repair candidates (upstream drops the variable-name strings)."""
    return [c for c in sample["repair_candidates"] if _is_int(c)]
