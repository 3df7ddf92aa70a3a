"""Java path-context extraction: code2vec/code2seq's JavaExtractor rebuilt on tree-sitter.

Upstream (tech-srl/code2vec and code2seq, JavaExtractor/FeatureExtractor.java) visits every
MethodDeclaration, collects its leaves in document order and joins every leaf pair through their
lowest common ancestor, keeping paths of length <= 8 and width <= 2. We follow the same rules on
the *named-node* view of the tree-sitter tree (punctuation/keywords and comments are not nodes).

Contexts are sampled from all valid pairs with an RNG keyed by (seed, key, method index) and the
pairs are enumerated from tree structure only, so renaming a variable never changes which pairs
are sampled -- the property the rename (CSR) experiments rely on.
"""

from __future__ import annotations

import hashlib
import random
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import lru_cache

import tree_sitter_java
from tree_sitter import Language, Node, Parser, Query, QueryCursor

LANGUAGE = Language(tree_sitter_java.language())
METHOD_NAME = "METHOD_NAME"  # upstream Common.methodName
BLANK = "BLANK"  # upstream Common.BlankWord
MAX_TERMINAL_CHARS = 50  # upstream Common.c_MaxLabelLength
MAX_C2S_SUBTOKENS = 5  # code2seq config MAX_NAME_PARTS

_COMMENTS = frozenset({"line_comment", "block_comment"})
_ATOMIC = frozenset({"string_literal", "character_literal", "text_block"})  # never descend into fragments
# Childless named nodes that are no leaf upstream: JavaParser has no node for keyword-only modifiers
# or an empty `()`, `[]`, `<>`, and models an empty `{}` block/body as a statement.
_NEVER_LEAVES = frozenset({
    "modifiers", "argument_list", "formal_parameters", "dimensions", "type_arguments", "record_pattern_body",
    "block", "constructor_body", "switch_block", "class_body", "interface_body", "enum_body",
    "annotation_type_body", "resource_specification", "annotation_argument_list",
})
_OPERATOR_TYPES = frozenset({"binary_expression", "unary_expression", "assignment_expression"})
# Declarations whose `name` is never a variable occurrence (types, methods, annotations, enum constants).
_NAMED_NON_VARIABLES = frozenset({
    "method_declaration", "constructor_declaration", "class_declaration", "interface_declaration",
    "enum_declaration", "record_declaration", "annotation_type_declaration", "enum_constant",
    "annotation", "marker_annotation", "annotation_type_element_declaration",
})
_LABEL_USERS = frozenset({"labeled_statement", "break_statement", "continue_statement"})
_METHOD_QUERY = Query(LANGUAGE, "(method_declaration body: (block) @body) @method")

# upstream Common.splitToSubtokens; Java's \s and [a-z] are ASCII-only, hence re.ASCII
_SPLIT_RE = re.compile(r"(?<=[a-z])(?=[A-Z])|_|[0-9]|(?<=[A-Z])(?=[A-Z][a-z])|\s+", re.ASCII)
_WS_RE = re.compile(r"\s+")
_DROP_RE = re.compile(r"[\"',]|[^\x20-\x7e]")  # quotes, commas and \P{Print} (Java's Print is ASCII)
_NON_LETTER_RE = re.compile(r"[^A-Za-z]")


def _normalize(text: str, default: str) -> str:
    """upstream Common.normalizeName: letters only; if none, the carefully stripped text."""
    text = _DROP_RE.sub("", _WS_RE.sub("", text.lower().replace("\\n", "")))
    return _NON_LETTER_RE.sub("", text) or text or default


def normalize_terminal(text: str) -> str:
    """code2vec terminal: `fileName` -> `filename`, `42` -> `42`, `""` -> BLANK, at most 50 chars."""
    return _normalize(text, BLANK)[:MAX_TERMINAL_CHARS]


def split_subtokens(name: str) -> list[str]:
    """`getHTTPResponse2Code` -> [get, http, response, code]; digits are delimiters (upstream regex)."""
    parts = _SPLIT_RE.split(name.replace("|", " ").strip())
    return [t for t in (_normalize(p, "") for p in parts) if t]


def java_string_hash(s: str) -> int:
    """Java's String.hashCode: s[0]*31^(n-1) + ... over UTF-16 code units, as a signed 32-bit int."""
    units = s.encode() if s.isascii() else memoryview(s.encode("utf-16-le", "surrogatepass")).cast("H")
    h = 0
    for u in units:
        h = (31 * h + u) & 0xFFFFFFFF
    return h - (1 << 32) if h & 0x80000000 else h


def c2v_line(label: str, contexts: list[str], max_contexts: int = 200) -> str:
    """One line of code2vec's preprocessed .c2v file: label and exactly max_contexts space-separated
    fields, the missing ones empty (preprocess.py appends " " * (max_contexts - len(contexts)))."""
    contexts = contexts[:max_contexts]
    return " ".join([label, *contexts] + [""] * (max_contexts - len(contexts)))


def _label_of(name: str) -> str:
    return "|".join(split_subtokens(name)) or normalize_terminal(name)


@lru_cache(maxsize=1 << 17)
def _path_hash(nodes: tuple[str, ...], up: int) -> int:
    """code2vec path string `(a)^(b)^(lca)_(c)_(d)` hashed with String.hashCode."""
    s = "(" + ")^(".join(nodes[: up + 1]) + ")" + "".join("_(" + n + ")" for n in nodes[up + 1 :])
    return java_string_hash(s)


@lru_cache(maxsize=1 << 16)  # leaf texts repeat across methods
def _c2v_token(text: str) -> str:
    return METHOD_NAME if text == METHOD_NAME else normalize_terminal(text)


@lru_cache(maxsize=1 << 16)
def _c2s_token(text: str) -> str:
    """code2seq Property.SplitName: `|`-joined sub-tokens, else the normalized name."""
    if text == METHOD_NAME:
        return METHOD_NAME
    return "|".join(split_subtokens(text)[:MAX_C2S_SUBTOKENS]) or normalize_terminal(text)


@lru_cache(maxsize=1 << 12)
def _c2s_node(label: str) -> str:
    # `|` separates path nodes in .c2s, so spell it out inside operator labels (`||` -> `barbar`)
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


@dataclass(frozen=True, slots=True)
class PathContext:
    source: int  # leaf index
    nodes: tuple[str, ...]  # labels from the source leaf up to the LCA (nodes[up]) and down to the target
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
        tok = [_c2v_token(t) for t in self.leaves]
        return [f"{tok[c.source]},{_path_hash(c.nodes, c.up)},{tok[c.target]}" for c in self.contexts[:limit]]

    def c2s_contexts(self, limit: int) -> list[str]:
        tok = [_c2s_token(t) for t in self.leaves]
        return [f"{tok[c.source]},{'|'.join(map(_c2s_node, c.nodes))},{tok[c.target]}"
                for c in self.contexts[:limit]]

    def fresh_name(self) -> str:
        taken = set(self.leaves)
        k = 1
        while f"var{k}" in taken:
            k += 1
        return f"var{k}"

    def renamed(self, variable: str, new_name: str) -> MethodSample:
        """The sample `rename_source` + `extract` would give: occurrence texts replaced, spans shifted."""
        occ = set(self.variables[variable])
        leaves, spans, shift = list(self.leaves), [], 0
        grow = len(new_name.encode()) - len(variable.encode())
        for k, (s, e) in enumerate(self.leaf_spans):
            if k in occ:
                leaves[k] = new_name
                spans.append((s + shift, e + shift + grow))
                shift += grow
            else:
                spans.append((s + shift, e + shift))
        variables = {(new_name if v == variable else v): ix for v, ix in self.variables.items()}
        return MethodSample(self.index, self.name, self.label, self.line, leaves, spans,
                            list(self.contexts), variables)


class _Tree:
    """Flat named-node view of one method: labels, parents, child indices, depths, leaves."""

    def __init__(self, root: Node, src: bytes):
        self.labels: list[str] = []
        self.parent: list[int] = []
        self.child_idx: list[int] = []
        self.depth: list[int] = []
        self.kids: list[list[int]] = []
        self.leaf_nodes: list[int] = []
        self.leaves: list[str] = []
        self.spans: list[tuple[int, int]] = []
        ident_leaves: list[int] = []  # leaf indices of identifiers (variable candidates)
        skip: set[int] = set()  # start bytes of identifiers that are not variable occurrences
        declared: set[int] = set()  # start bytes of identifiers that declare a variable
        method_names: set[int] = set()
        stack = [(root, -1, 0)]  # iterative pre-order: deep expressions must not hit the recursion limit
        while stack:
            node, par, ci = stack.pop()
            k, typ = len(self.labels), node.type
            if typ in _OPERATOR_TYPES:  # JavaParser's BinaryExpr:plus -> binary_expression:+
                op = node.child_by_field_name("operator")
                typ = f"{typ}:{src[op.start_byte:op.end_byte].decode()}" if op else typ
            elif typ == "update_expression":  # ++x / x++ (JavaParser's preIncrement / posIncrement)
                first = node.children[0]
                typ = f"{typ}:pre{first.type}" if not first.is_named else f"{typ}:post{node.children[-1].type}"
            self.labels.append(typ)
            self.parent.append(par)
            self.child_idx.append(ci)
            self.depth.append(self.depth[par] + 1 if par >= 0 else 0)
            self.kids.append([])
            if par >= 0:
                self.kids[par].append(k)
            children = [] if typ in _ATOMIC else [c for c in node.named_children if c.type not in _COMMENTS]
            if children:
                _mark_variables(node, node.type, children, skip, declared, method_names)
                stack.extend((c, k, i) for i, c in reversed(list(enumerate(children))))
            elif not typ.endswith("_statement") and typ not in _NEVER_LEAVES and node.end_byte > node.start_byte:
                s, e = node.start_byte, node.end_byte
                if typ == "identifier":
                    ident_leaves.append(len(self.leaves))
                self.leaf_nodes.append(k)
                self.leaves.append(METHOD_NAME if s in method_names else src[s:e].decode("utf-8", "replace"))
                self.spans.append((s, e))
        # variables: declared names, occurring at identifier leaves outside non-variable positions
        declared -= skip
        names = {self.leaves[i] for i in ident_leaves if self.spans[i][0] in declared}
        self.variables: dict[str, list[int]] = {}
        for i in ident_leaves:
            if self.leaves[i] in names and self.spans[i][0] not in skip:
                self.variables.setdefault(self.leaves[i], []).append(i)


def _field_start(node: Node | None, name: str = "name") -> int | None:
    """Start byte of the identifier in `node`'s field `name` (None if absent, e.g. in broken code)."""
    child = node.child_by_field_name(name) if node is not None else None
    return child.start_byte if child is not None and child.type == "identifier" else None


def _mark_variables(node: Node, typ: str, children: list[Node], skip: set, declared: set, method_names: set):
    """Record which identifier children declare a variable and which are never variables."""
    if typ in _NAMED_NON_VARIABLES:
        skip.add(_field_start(node))
        if typ == "method_declaration":  # upstream Common.isMethod: every declared method's name
            method_names.add(_field_start(node))
        elif typ == "record_declaration":  # record components are fields, not locals
            params = node.child_by_field_name("parameters")
            skip.update(_field_start(p) for p in (params.named_children if params else []))
    elif typ == "field_access":  # this.x / o.x: x is a field
        skip.add(_field_start(node, "field"))
    elif typ == "method_invocation":
        skip.add(_field_start(node))
    elif typ == "method_reference":  # A::foo, this::bar
        skip.update(c.start_byte for c in children[1:])
    elif typ in _LABEL_USERS or typ == "element_value_pair":
        skip.update(c.start_byte for c in children if c.type == "identifier")
    elif typ in ("field_declaration", "constant_declaration"):  # fields of local/anonymous classes
        skip.update(_field_start(c) for c in children if c.type == "variable_declarator")
    elif typ in ("formal_parameter", "catch_formal_parameter", "enhanced_for_statement", "resource",
                 "instanceof_expression"):
        declared.add(_field_start(node))
    elif typ in ("local_variable_declaration", "spread_parameter"):
        declared.update(_field_start(c) for c in children if c.type == "variable_declarator")
    elif typ in ("inferred_parameters", "type_pattern", "record_pattern_component"):
        declared.update(c.start_byte for c in children if c.type == "identifier")
    elif typ == "lambda_expression":  # x -> ...
        params = node.child_by_field_name("parameters")
        if params is not None and params.type == "identifier":
            declared.add(params.start_byte)


def _method_name(method: Node) -> str:
    name = method.child_by_field_name("name")
    return name.text.decode("utf-8", "replace") if name is not None else ""


class JavaExtractor:
    def __init__(self, config: PathConfig = PathConfig()):
        self.config = config
        self._parser = Parser(LANGUAGE)

    def _method_nodes(self, source: bytes) -> list[tuple[Node, Node]]:
        """(method_declaration, body) pairs in document order; files over max_file_bytes give none."""
        if len(source) > self.config.max_file_bytes:
            return []
        root = self._parser.parse(source).root_node
        found = [(m["method"][0], m["body"][0]) for _, m in QueryCursor(_METHOD_QUERY).matches(root)]
        return sorted(found, key=lambda mb: mb[0].start_byte)

    def methods(self, source: bytes) -> list[MethodInfo]:
        infos = []
        for index, (method, body) in enumerate(self._method_nodes(source)):
            name = _method_name(method)
            key = hashlib.sha1(re.sub(rb"\s+", b"", source[body.start_byte:body.end_byte])).hexdigest()
            infos.append(MethodInfo(index, name, _label_of(name), method.start_point[0] + 1, key,
                                    method.has_error))
        return infos

    def extract(self, source: bytes, *, key: str, seed: int,
                only: Iterable[int] | None = None) -> list[MethodSample]:
        wanted = None if only is None else set(only)
        samples = []
        for index, (method, _) in enumerate(self._method_nodes(source)):
            if wanted is None or index in wanted:
                samples.append(self._sample(method, source, index, random.Random(f"{seed}:{key}:{index}")))
        return samples

    def rename_source(self, source: bytes, sample: MethodSample, variable: str, new_name: str) -> bytes:
        """Replace every occurrence span of `variable` (spans of `sample`, which came from `source`)."""
        out, new = bytearray(source), new_name.encode()
        for i in sorted(sample.variables[variable], reverse=True):
            s, e = sample.leaf_spans[i]
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
        for i, child in enumerate(t.leaf_nodes):
            anc, up = t.parent[child], 1
            while anc >= 0 and up < max_len:  # at least one edge must go down
                budget, ci = max_len - up - 1, t.child_idx[child]
                base, stride = i * n_leaves * (max_len + 1) + up, max_len + 1
                for sib in t.kids[anc][ci + 1 : ci + 1 + max_width]:
                    pairs.extend([base + stride * j for j, d in near[sib] if d <= budget])
                child, anc, up = anc, t.parent[anc], up + 1
        return pairs

    def _decode(self, pair: int, n_leaves: int) -> tuple[int, int, int]:
        """(i, j, up) from `_pairs`' encoding (i*L + j)*(max_len+1) + up."""
        q, up = divmod(pair, self.config.max_path_length + 1)
        return (*divmod(q, n_leaves), up)

    def _sample(self, method: Node, src: bytes, index: int, rng: random.Random) -> MethodSample:
        t = _Tree(method, src)
        pairs = self._pairs(t)
        rng.shuffle(pairs)  # structure-only order, so renamed methods sample the same pairs
        # label chain from each leaf upward (at most max_len+1 nodes) to build paths by slicing
        chains = []
        for v in t.leaf_nodes:
            chain = []
            while v >= 0 and len(chain) <= self.config.max_path_length:
                chain.append(t.labels[v])
                v = t.parent[v]
            chains.append(tuple(chain))
        n_leaves, stride, contexts = len(t.leaves), self.config.max_path_length + 1, []
        for p in pairs[: self.config.max_contexts]:
            q, up = divmod(p, stride)  # inlined `_decode`: this loop runs millions of times per corpus
            i, j = divmod(q, n_leaves)
            down = t.depth[t.leaf_nodes[j]] - t.depth[t.leaf_nodes[i]] + up
            contexts.append(PathContext(i, chains[i][: up + 1] + chains[j][down - 1 :: -1], up, j))
        name = _method_name(method)
        return MethodSample(index, name, _label_of(name), method.start_point[0] + 1, t.leaves, t.spans,
                            contexts, t.variables)
