"""Java path-context extraction: code2vec/code2seq's JavaExtractor rebuilt on tree-sitter.

Upstream (tech-srl/code2vec and code2seq, JavaExtractor/FeatureExtractor.java) visits every
MethodDeclaration of JavaParser 3.0.0-alpha.4's AST, collects its leaves in child order and joins
every leaf pair through their lowest common ancestor, keeping paths of length <= 8 and width <= 2.
We parse with tree-sitter and walk that AST as `java_ast` rebuilds it from tree-sitter's tree, so
lengths, widths and child indices are JavaParser's; `java_tokens` writes the contexts as upstream's text.

Contexts are sampled from all valid pairs with an RNG keyed by (seed, key, method index) and the
pairs are enumerated from tree structure only, so renaming a variable never changes which pairs
are sampled -- the property the rename (CSR) experiments rely on.
"""

from __future__ import annotations

import hashlib
import random
import re
from collections.abc import Iterable

import tree_sitter_java
from tree_sitter import Language, Node, Parser, Query, QueryCursor

from codemem.methodname.java_ast import _method_name, _Tree
from codemem.methodname.java_tokens import MethodInfo, MethodSample, PathConfig, PathContext, _label_of

LANGUAGE = Language(tree_sitter_java.language())
_METHOD_QUERY = Query(LANGUAGE, "(method_declaration body: (block) @body) @method")


def shuffle(items: list, rng: random.Random) -> None:
    """`rng.shuffle(items)`, spelled out: CPython's Fisher-Yates with the same draws and swaps (each
    `j` drawn as `getrandbits(n.bit_length())` until below n = i + 1), so the sampled contexts do not
    depend on the Python version's shuffle, and without a call per draw (methods have up to hundreds
    of thousands of pairs)."""
    getrandbits = rng.getrandbits
    top = len(items)
    while top > 1:
        k = top.bit_length()
        low = max(1 << (k - 1), 2)  # every size from top down to 2^(k-1) has k bits
        for n in range(top, low - 1, -1):
            j = getrandbits(k)
            while j >= n:
                j = getrandbits(k)
            items[n - 1], items[j] = items[j], items[n - 1]
        top = low - 1


class JavaExtractor:
    def __init__(self, config: PathConfig = PathConfig()):
        self.config = config
        self._parser = Parser(LANGUAGE)
        self._last: tuple[bytes, list] | None = None  # `methods` then `extract` of one file parse it once

    def _method_nodes(self, source: bytes) -> list[tuple[Node, Node]]:
        """(method_declaration, body) pairs in document order; files over max_file_bytes give none."""
        if len(source) > self.config.max_file_bytes:
            return []
        if self._last is not None and self._last[0] is source:
            return self._last[1]
        root = self._parser.parse(source).root_node
        found = [(m["method"][0], m["body"][0]) for _, m in QueryCursor(_METHOD_QUERY).matches(root)]
        found = sorted(found, key=lambda mb: mb[0].start_byte)
        self._last = (source, found)
        return found

    def methods(self, source: bytes, body_keys: bool = True) -> list[MethodInfo]:
        """The file's methods; `body_keys=False` leaves body_key empty (it is only for deduplication)."""
        infos = []
        for index, (method, body) in enumerate(self._method_nodes(source)):
            name = _method_name(method)
            key = ""
            if body_keys:
                key = hashlib.sha1(re.sub(rb"\s+", b"", source[body.start_byte:body.end_byte])).hexdigest()
            infos.append(MethodInfo(index, name, _label_of(name), method.start_point[0] + 1, key,
                                    method.has_error))
        return infos

    def extract(self, source: bytes, *, key: str, seed: int, only: Iterable[int] | None = None,
                limit: int | None = None) -> list[MethodSample]:
        """Samples of the file's methods (`only`: those indices), each with its first `limit`
        (default: config.max_contexts) sampled contexts; the sample does not depend on `limit`."""
        wanted = None if only is None else set(only)
        limit = self.config.max_contexts if limit is None else min(limit, self.config.max_contexts)
        samples = []
        for index, (method, _) in enumerate(self._method_nodes(source)):
            if wanted is None or index in wanted:
                samples.append(self._sample(method, source, index, random.Random(f"{seed}:{key}:{index}"),
                                            limit))
        return samples

    def rename_source(self, source: bytes, sample: MethodSample, variable: str, new_name: str) -> bytes:
        """Replace every occurrence span of `variable` (spans of `sample`, which came from `source`)."""
        out, new = bytearray(source), new_name.encode()
        for s, e in sorted((sample.leaf_spans[i] for i in sample.variables[variable]), reverse=True):
            out[s:e] = new
        return bytes(out)

    def _pairs(self, t: _Tree) -> list[int]:
        """All leaf pairs (i<j) with length <= max_len and width <= max_width, ordered by (i, j).

        Encoded as one int, see `_decode`. Rather than testing all L^2 pairs (one JDK method has 377k valid
        ones out of far more), each leaf walks up its ancestors A and only visits leaves under the
        next max_width siblings of its branch that lie shallow enough below A.
        """
        max_len, max_width, n_leaves = self.config.max_path_length, self.config.max_path_width, len(t.leaves)
        # near[v]: (leaf, depth below v) for leaves at most max_len-2 below v (one edge is A -> v)
        near: list[list[tuple[int, int]]] = [[] for _ in t.labels]
        for i, v in enumerate(t.leaf_nodes):
            d = 0
            while v >= 0 and d <= max_len - 2:
                near[v].append((i, d))
                v, d = t.parent[v], d + 1
        pairs: list[int] = []
        stride, parent, child_idx, kids = max_len + 1, t.parent, t.child_idx, t.kids
        for i, child in enumerate(t.leaf_nodes):
            anc, up = parent[child], 1
            while anc >= 0 and up < max_len:  # at least one edge must go down
                budget, ci = max_len - up - 1, child_idx[child]
                base = i * n_leaves * stride + up
                for sib in kids[anc][ci + 1 : ci + 1 + max_width]:
                    pairs.extend([base + stride * j for j, d in near[sib] if d <= budget])
                child, anc, up = anc, parent[anc], up + 1
        return pairs

    def _decode(self, pair: int, n_leaves: int) -> tuple[int, int, int]:
        """(i, j, up) from `_pairs`' encoding (i*L + j)*(max_len+1) + up."""
        q, up = divmod(pair, self.config.max_path_length + 1)
        return (*divmod(q, n_leaves), up)

    def _sample(self, method: Node, src: bytes, index: int, rng: random.Random, limit: int) -> MethodSample:
        t = _Tree(method, src)
        pairs = self._pairs(t)
        shuffle(pairs, rng)  # structure-only order, so renamed methods sample the same pairs
        # label chain from each leaf upward (at most max_len+1 nodes) to build paths by slicing
        ups, downs = [], []
        for v in t.leaf_nodes:
            up_chain, down_chain = [], []
            while v >= 0 and len(up_chain) <= self.config.max_path_length:
                up_chain.append(t.up_labels[v])
                down_chain.append(t.down_labels[v])
                v = t.parent[v]
            ups.append(tuple(up_chain))
            downs.append(tuple(down_chain))
        n_leaves, stride, contexts = len(t.leaves), self.config.max_path_length + 1, []
        # this loop runs millions of times per corpus
        depth, make = [t.depth[v] for v in t.leaf_nodes], tuple.__new__
        for p in pairs[:limit]:
            q, up = divmod(p, stride)  # inlined `_decode`
            i, j = divmod(q, n_leaves)
            down = depth[j] - depth[i] + up
            contexts.append(make(PathContext, (i, ups[i][: up + 1] + downs[j][down - 1 :: -1], up, j)))
        name = _method_name(method)
        return MethodSample(index, name, _label_of(name), method.start_point[0] + 1, t.leaves, t.spans,
                            contexts, t.variables)
