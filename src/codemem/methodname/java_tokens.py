"""Java path-contexts as text: code2vec/code2seq's terminals, labels and path strings, and the sample.

The models only ever see upstream's text, so terminals are normalized as upstream's Common does and
code2vec's paths are hashed with Java's String.hashCode, bit for bit: any difference would be a
different vocabulary. A `MethodSample` keeps raw leaf texts and structural paths rather than strings,
so a variable can be renamed without parsing again and the sampled contexts stay the same.
"""

from __future__ import annotations

import bisect
import re
from dataclasses import dataclass, field
from functools import lru_cache
from typing import NamedTuple

import numpy as np

METHOD_NAME = "METHOD_NAME"  # upstream Common.methodName
BLANK = "BLANK"  # upstream Common.BlankWord
MAX_TERMINAL_CHARS = 50  # upstream Common.c_MaxLabelLength
MAX_C2S_SUBTOKENS = 5  # code2seq config MAX_NAME_PARTS
MAX_C2S_CHILD_ID = 3  # code2seq CommandLineValues.MaxChildId (code2vec's is uncapped)
NUM = "<NUM>"  # code2seq Property: integer literals outside NumericalKeepValues
_KEEP_NUMBERS = frozenset({"0", "1", "32", "64"})
_INT_RE = re.compile(r"[0-9][0-9_]*")  # an integer literal without sub-tokens (no 0x/0b/L letters)
_TRAILING_ID_RE = re.compile(r"[0-9]+$")  # child index at the end of a path-node label

# upstream Common.splitToSubtokens; Java's \s and [a-z] are ASCII-only, hence re.ASCII
_SPLIT_RE = re.compile(r"(?<=[a-z])(?=[A-Z])|_|[0-9]|(?<=[A-Z])(?=[A-Z][a-z])|\s+", re.ASCII)
_DROP_RE = re.compile(r"[\"',]|[^\x20-\x7e]")  # quotes, commas and \P{Print} (Java's Print is ASCII)
_NON_LETTER_RE = re.compile(r"[^A-Za-z]")


def _normalize(text: str, default: str) -> str:
    """upstream Common.normalizeName: letters only; if none, the text with spaces as `_`.

    Upstream's whitespace regex is `//s+` (a no-op), so whitespace is not stripped: tabs and newlines
    go with the non-printable characters, and spaces survive as `_` in letter-less terminals."""
    text = _DROP_RE.sub("", text.lower().replace("\\n", ""))
    return _NON_LETTER_RE.sub("", text) or text.replace(" ", "_") or default


def normalize_terminal(text: str) -> str:
    """code2vec terminal: `fileName` -> `filename`, `42` -> `42`, `""` -> BLANK, at most 50 chars."""
    return _normalize(text, BLANK)[:MAX_TERMINAL_CHARS]


def split_subtokens(name: str) -> list[str]:
    """`getHTTPResponse2Code` -> [get, http, response, code]; digits are delimiters (upstream regex)."""
    parts = _SPLIT_RE.split(name.replace("|", " ").strip())
    return [t for t in (_normalize(p, "") for p in parts) if t]


# 31^k mod 2^32, highest power first: a hash is one dot product. uint64 arithmetic wraps mod 2^64, of
# which 2^32 is a divisor, so the low 32 bits are exact.
_POWERS_OF_31 = np.cumprod(np.r_[1, np.full(4095, 31)].astype(np.uint64), dtype=np.uint64)[::-1]


def java_string_hash(s: str) -> int:
    """Java's String.hashCode: s[0]*31^(n-1) + ... over UTF-16 code units, as a signed 32-bit int."""
    if s.isascii():
        units = np.frombuffer(s.encode(), dtype=np.uint8)
    else:
        units = np.frombuffer(s.encode("utf-16-le", "surrogatepass"), dtype=np.uint16)
    if len(units) <= len(_POWERS_OF_31):
        h = int(units.astype(np.uint64) @ _POWERS_OF_31[len(_POWERS_OF_31) - len(units) :]) & 0xFFFFFFFF
    else:  # longer than any path string: Horner's rule
        h = 0
        for u in units.tolist():
            h = (31 * h + u) & 0xFFFFFFFF
    return h - (1 << 32) if h & 0x80000000 else h


def c2v_line(label: str, contexts: list[str], max_contexts: int = 200) -> str:
    """One line of code2vec's preprocessed .c2v file: label and exactly max_contexts space-separated
    fields, the missing ones empty (preprocess.py appends " " * (max_contexts - len(contexts)))."""
    contexts = contexts[:max_contexts]
    return " ".join([label, *contexts] + [""] * (max_contexts - len(contexts)))


def _label_of(name: str) -> str:
    return "|".join(split_subtokens(name)) or normalize_terminal(name)


class _Memo(dict):
    """Path strings by path for the formatting loops, which run for every context of a corpus: a
    dict lookup (cheaper than an lru_cache hit; the path labels are interned, so keys compare by
    identity), emptied when full so that memory stays bounded."""

    def __init__(self, size: int):
        super().__init__()
        self.size = size

    def put(self, key, value):
        if len(self) >= self.size:
            self.clear()
        self[key] = value
        return value


_C2V_PATHS, _C2S_PATHS = _Memo(1 << 18), _Memo(1 << 18)


# String.hashCode is a polynomial in 31, so hash(a + b) = hash(a) * 31^len(b) + hash(b) (mod 2^32): a
# path's hash folds the hashes of its pieces `(a)`, `^(b)`, `_(c)`, each computed once. A corpus has
# millions of distinct paths; hashing each path's whole string was about a quarter of c2v's formatting.
_PIECES: tuple[dict, dict, dict] = ({}, {}, {})  # first node, a node on the way up, on the way down


def _piece(kind: int, label: str) -> tuple[int, int]:
    """(hashCode mod 2^32, 31^length mod 2^32) of the path piece for `label`."""
    text = ("(", "^(", "_(")[kind] + label + ")"
    units = len(text.encode("utf-16-le", "surrogatepass")) // 2
    value = _PIECES[kind][label] = (java_string_hash(text) & 0xFFFFFFFF, pow(31, units, 1 << 32))
    return value


def _path_hash(nodes: tuple[str, ...], up: int) -> int:
    """code2vec path string `(a)^(b)^(lca)_(c)_(d)` hashed with String.hashCode."""
    first, ups, downs = _PIECES
    h = (first.get(nodes[0]) or _piece(0, nodes[0]))[0]
    for label in nodes[1 : up + 1]:
        piece, power = ups.get(label) or _piece(1, label)
        h = (h * power + piece) & 0xFFFFFFFF
    for label in nodes[up + 1 :]:
        piece, power = downs.get(label) or _piece(2, label)
        h = (h * power + piece) & 0xFFFFFFFF
    return h - (1 << 32) if h & 0x80000000 else h


@lru_cache(maxsize=1 << 16)  # leaf texts repeat across methods
def _c2v_token(text: str) -> str:
    return METHOD_NAME if text == METHOD_NAME else normalize_terminal(text)


@lru_cache(maxsize=1 << 16)
def _c2s_token(text: str) -> str:
    """code2seq Property.SplitName: `|`-joined sub-tokens, else the normalized name, where an integer
    literal outside {0, 1, 32, 64} reads `<NUM>`. Upstream tests `IntegerLiteralExpr` only when the
    literal has no sub-tokens: plain decimal/octal digits (and `_`); hex/binary literals keep their
    letters (`0x1F` -> `x|f`) and long literals (`100L`) are LongLiteralExpr (`l`)."""
    if text == METHOD_NAME:
        return METHOD_NAME
    split = "|".join(split_subtokens(text)[:MAX_C2S_SUBTOKENS])
    if split:
        return split
    name = normalize_terminal(text)
    return NUM if _INT_RE.fullmatch(text) and name not in _KEEP_NUMBERS else name


def _c2s_path(nodes: tuple[str, ...]) -> str:
    return "|".join(map(_c2s_node, nodes))


@lru_cache(maxsize=1 << 12)
def _c2s_node(label: str) -> str:
    """code2seq path node: child index capped at MAX_C2S_CHILD_ID (upstream --max_child_id 3);
    `|` separates path nodes in .c2s, so spell it out inside operator labels (`||` -> `barbar`)."""
    m = _TRAILING_ID_RE.search(label)
    if m and int(m.group()) > MAX_C2S_CHILD_ID:
        label = label[: m.start()] + str(MAX_C2S_CHILD_ID)
    return label.replace("|", "bar")


@dataclass(frozen=True)
class PathConfig:
    max_path_length: int = 8
    max_path_width: int = 2
    max_contexts: int = 1000  # contexts STORED per method (code2seq keeps 1000; code2vec uses the first 200)
    max_file_bytes: int = 2_000_000  # larger files yield no methods


@dataclass(frozen=True)
class MethodInfo:
    index: int  # ordinal among the file's method_declarations with a body, document order
    name: str
    label: str
    line: int  # 1-based
    body_key: str  # sha1 of the body block's text with all whitespace removed
    has_error: bool  # the method's subtree contains ERROR or MISSING nodes


class PathContext(NamedTuple):  # a tuple: a method makes up to 1,000 of them, a corpus hundreds of millions
    source: int  # leaf index
    # node strings (with child indices) from the source leaf up to the LCA (nodes[up]), down to the target
    nodes: tuple[str, ...]
    up: int
    target: int


@dataclass
class MethodSample:
    index: int
    name: str
    label: str
    line: int
    leaves: list[str]  # raw leaf text, document order; method-declaration names are METHOD_NAME
    leaf_spans: list[tuple[int, int]]  # byte spans in the source the sample was extracted from
    contexts: list[PathContext]  # sampled order
    variables: dict[str, list[int]] = field(default_factory=dict)  # name -> occurrence leaf indices

    def c2v_contexts(self, limit: int = 200) -> list[str]:
        tok, paths, out = [_c2v_token(t) for t in self.leaves], _C2V_PATHS, []
        for source, nodes, up, target in self.contexts[:limit]:
            path = paths.get((nodes, up))
            if path is None:
                path = paths.put((nodes, up), str(_path_hash(nodes, up)))
            out.append(f"{tok[source]},{path},{tok[target]}")
        return out

    def c2s_contexts(self, limit: int) -> list[str]:
        tok, paths, out = [_c2s_token(t) for t in self.leaves], _C2S_PATHS, []
        for source, nodes, _, target in self.contexts[:limit]:
            path = paths.get(nodes)
            if path is None:
                path = paths.put(nodes, _c2s_path(nodes))
            out.append(f"{tok[source]},{path},{tok[target]}")
        return out

    def variants(self, limit: int, token) -> list[tuple[str, list[tuple[int, int]]]]:
        """Each variable's single-place renaming to `var<k>` (`fresh_name`), as (the new terminal,
        the (context, side) pairs among the first `limit` contexts whose terminal it changes), for
        the format whose terminal is `token` (`_c2v_token` / `_c2s_token`). The same as formatting
        `renamed(variable, fresh)` and comparing it context by context: a renaming replaces the
        leaves at the variable's occurrences only, so only contexts ending there can change, and
        only if the two names normalize differently."""
        fresh = self.fresh_name()
        new = token(fresh)
        out = []
        for variable, occurrences in self.variables.items():
            changed = []
            if token(variable) != new:
                occ = set(occurrences)
                changed = [(k, side) for k, c in enumerate(self.contexts[:limit])
                           for side, leaf in enumerate((c.source, c.target)) if leaf in occ]  # fmt: skip
            out.append((new if changed else fresh, changed))
        return out

    def fresh_name(self) -> str:
        taken = set(self.leaves)
        k = 1
        while f"var{k}" in taken:
            k += 1
        return f"var{k}"

    def renamed(self, variable: str, new_name: str) -> MethodSample:
        """The sample `rename_source` + `extract` would give: occurrence texts replaced, spans shifted."""
        occ = set(self.variables[variable])
        leaves, spans = list(self.leaves), []
        grow = len(new_name.encode()) - len(variable.encode())
        # leaves follow the AST's child order (a Parameter's name comes before its type), not the text's
        occ_starts = sorted(self.leaf_spans[k][0] for k in occ)
        for k, (s, e) in enumerate(self.leaf_spans):
            shift = grow * bisect.bisect_left(occ_starts, s)
            if k in occ:
                leaves[k] = new_name
                spans.append((s + shift, e + shift + grow))
            else:
                spans.append((s + shift, e + shift))
        variables = {(new_name if v == variable else v): ix for v, ix in self.variables.items()}
        return MethodSample(self.index, self.name, self.label, self.line, leaves, spans,
                            list(self.contexts), variables)
