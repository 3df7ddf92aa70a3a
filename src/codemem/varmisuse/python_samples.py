"""The `stdlib-great` corpus: VarMisuse samples in the Py150-Great format from Python's stdlib.

Samples are made the way GREAT's data was (Vasic et al. 2019; Hellendoorn et al. 2020): every
function (top-level, method or nested `def`) once as written and up to three times with ONE
read of a local variable or parameter (a "bug site") replaced by another variable of the
function (`error_location` = that position, `repair_targets` = every position of the replaced
name); clean samples have `error_location` 0 and no targets. Functions with fewer than two
variables or no bug site, over 512 tokens, or nested over 50 blocks / 8 loops deep are skipped,
and so are functions whose tokens, name aside, repeat an earlier function's (a memorization
study must not test on its training set). Files are split train/dev/eval (seeded) before anything else;
each split is then balanced by dropping buggy samples at random (seeded), which keeps about one
bug per function (the dedup, the splits and the balance: `python_corpus`, which streams a corpus of
any size through worker processes). Files that are not UTF-8, have tree-sitter ERROR nodes or exceed
`max_file_bytes` (`extract.max_file_bytes`, 2 MB) are skipped and counted. All tree walks are
iterative; only the statement compiler recurses, on block nesting, which is capped.

One function becomes a sample in four steps, one module each:
- python_tokens: the tree-sitter tree -> GREAT tokens, and the token each node is anchored at;
- python_flow: variables, bug sites, CFG_NEXT, LAST_READ/LAST_WRITE and COMPUTED_FROM;
- python_edges: FIELD, SYNTAX, NEXT_SYNTAX, LAST_LEXICAL_USE and the call edges;
- here: `FunctionGraph` joins them into samples, `file_samples` makes a file's.

`repair_candidates` follow the data: per variable (first-occurrence order) every position whose
token text is that name (attribute names included, as in the data), then the name itself in
clean samples only. Only forward edges are stored, as in the published data; the original
loader adds every edge reversed (type 2i+1, `great_format.loader_edges`), so the models see 22 edge types.
"""

from __future__ import annotations

import hashlib
import platform
import random
from collections import Counter
from dataclasses import dataclass

from codemem.varmisuse import great_format
from codemem.varmisuse.python_edges import call_edges, lexical_edges, syntax_edges
from codemem.varmisuse.python_flow import FunctionFlow
from codemem.varmisuse.python_tokens import ATOMIC, SKIP, Skip, Tokens, node_text

E = great_format.EDGE_TYPES
_EDGE_NAME = {v: k for k, v in E.items()}


@dataclass(frozen=True)
class StdlibGreatConfig:
    max_tokens: int = 512
    bugs_per_function: int = 3
    split: tuple[float, float, float] = (0.8, 0.1, 0.1)
    max_files: int = 0  # 0 = all
    max_file_bytes: int = 2_000_000  # larger files are skipped

    def __post_init__(self):
        if self.max_tokens < 2 or self.bugs_per_function < 0 or self.max_files < 0 or self.max_file_bytes < 1:
            raise ValueError(f"invalid {self}: max_tokens >= 2, bugs_per_function >= 0, max_files >= 0, "
                             "max_file_bytes >= 1")
        if len(self.split) != 3 or min(self.split) < 0 or abs(sum(self.split) - 1) > 1e-6:
            raise ValueError(f"split must be three shares that sum to 1, got {self.split}")


_PARSER = None


def _parser():
    global _PARSER  # one per process: tree-sitter parsers cannot be pickled
    if _PARSER is None:
        import tree_sitter
        import tree_sitter_python
        _PARSER = tree_sitter.Parser(tree_sitter.Language(tree_sitter_python.language()))
    return _PARSER


class FunctionGraph:
    """Tokens, edges and variables of one function, built from its tree-sitter node."""

    def __init__(self, fn, max_tokens: int = 512):
        self.fn = fn
        self.syntax = Tokens(fn)
        self.tokens = self.syntax.tokens
        if len(self.tokens) > max_tokens:
            raise Skip("too-long")
        self.flow = flow = FunctionFlow(self.syntax)
        first = {}
        for p in sorted(flow.occ):
            first.setdefault(self.tokens[p], p)
        names = {self.tokens[p] for p in flow.bound} - flow.declared
        self.variables = sorted(names, key=lambda v: first.get(v, 0))
        # Bug sites: reads of a variable that are not also a write (`x` in `x += 1`).
        self.sites = sorted({p for p in flow.sites if self.tokens[p] in names} - set(flow.bound))
        # What no renaming changes is computed once.
        self.static = syntax_edges(self.syntax) | {(a, b, E["enum_COMPUTED_FROM"]) for a, b in flow.computed}

    def anchor(self, node) -> int | None:
        return self.syntax.anchor(node)

    def edges(self, tokens: list[str]) -> set[tuple[int, int, int]]:
        """All edges of the function spelled `tokens` (the clean one or a buggy variant)."""
        return (self.static | self.flow.edges(tokens) | lexical_edges(self.flow.occ, tokens)
                | call_edges(self.syntax, tokens))

    def sample(self, tokens: list[str], loc: int = 0, original: str | None = None) -> dict:
        """A sample in the published format; `original` is the replaced name of a buggy one."""
        n = len(tokens)
        edges = sorted((t, a, b) for a, b, t in self.edges(tokens)
                       if a is not None and b is not None and a != b and 0 < a < n and 0 < b < n)
        cands = []
        for v in self.variables:  # as in the data: positions by text, then the name if clean
            cands += [i for i, tok in enumerate(tokens) if tok == v] + ([] if original else [v])
        return {"has_bug": original is not None, "bug_kind": int(original is not None),
                "bug_kind_name": "VARIABLE_MISUSE" if original else "NONE", "source_tokens": tokens,
                "edges": [[a, b, t, _EDGE_NAME[t]] for t, a, b in edges], "error_location": loc,
                "repair_targets": [i for i, tok in enumerate(tokens) if tok == original] if original else [],
                "repair_candidates": cands}


# ---- files -> samples ----------------------------------------------------------------------
def _functions(root):
    """Yield every `def` in a module with its qualified name (`C.f`, `f.<locals>.g`), in source order
    (pre-order over named nodes, not into comments or atomic tokens).

    A tree cursor makes each node as it is reached: a Python node keeps the children it was asked
    for, so holding every function node of a list (as a walk with `named_children` did) kept whole
    subtrees alive: ~160 MB for sympy's rubi rules (700 kB of huge expressions)."""
    cursor, prefixes = root.walk(), []
    while True:
        node = cursor.node
        if not prefixes or (node.is_named and node.type not in SKIP and node.type not in ATOMIC):
            prefix = prefixes[-1] if prefixes else ""
            if node.type in ("function_definition", "class_definition"):
                name = f"{prefix}{node_text(node.child_by_field_name('name'))}"
                if node.type == "function_definition":
                    yield node, name
                prefix = name + (".<locals>." if node.type == "function_definition" else ".")
            if cursor.goto_first_child():
                prefixes.append(prefix)
                continue
        while not cursor.goto_next_sibling():
            if not prefixes:
                return
            cursor.goto_parent()
            prefixes.pop()


def file_samples(source: bytes, path: str, rng: random.Random, config: StdlibGreatConfig, stats: Counter):
    """Yield (dedup key, [clean, *buggy samples]) per function, in source order, counting what
    happened to each function in `stats`; a file that does not parse raises Skip before any.

    The key is a sha1 of the function's tokens with its name replaced. One function's samples at a
    time: a file of a thousand functions would otherwise hold ~200 MB of them."""
    tree = _parser().parse(source)
    if tree.root_node.has_error:
        raise Skip("parse-error")
    for fn, qualname in _functions(tree.root_node):
        stats["functions"] += 1
        try:
            g = FunctionGraph(fn, config.max_tokens)
            if len(g.variables) < 2 or not g.sites:
                raise Skip("no-bug-site")
            samples = [g.sample(g.tokens)]
            for pos in rng.sample(g.sites, min(config.bugs_per_function, len(g.sites))):
                original = g.tokens[pos]
                tokens = list(g.tokens)
                tokens[pos] = rng.choice([v for v in g.variables if v != original])
                samples.append(g.sample(tokens, pos, original))
        except Skip as e:
            stats[str(e)] += 1
            continue
        except Exception as e:  # noqa: BLE001 -- one odd function must not stop the corpus; counted
            stats[f"error: {type(e).__name__}"] += 1
            continue
        prov = [{"datasetProvenance": {
            "datasetName": "stdlib-great", "filepath": path, "functionName": qualname,
            "lineno": fn.start_point[0] + 1, "license": "psf-2.0",
            "note": f"Python {platform.python_version()} standard library"}}]
        for s in samples:
            s["provenances"] = prov
        body = list(g.tokens)
        body[g.anchor(fn)] = "def"  # same body under another name is still a duplicate
        yield hashlib.sha1("\0".join(body).encode("utf-8")).hexdigest(), samples


def function_samples(source: bytes, path: str, rng: random.Random,
                     config: StdlibGreatConfig | None = None) -> list[dict]:
    """The samples of every function in one file: each clean, then its buggy variants.

    An unparsable file yields no samples.
    """
    try:
        return [s for _, samples in file_samples(source, path, rng, config or StdlibGreatConfig(), Counter())
                for s in samples]
    except Skip:
        return []
