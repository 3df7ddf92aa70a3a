"""Java path-context extraction: code2vec/code2seq's JavaExtractor rebuilt on tree-sitter.

Upstream (tech-srl/code2vec and code2seq, JavaExtractor/FeatureExtractor.java) visits every
MethodDeclaration of JavaParser 3.0.0-alpha.4's AST, collects its leaves in child order and joins
every leaf pair through their lowest common ancestor, keeping paths of length <= 8 and width <= 2.
We parse with tree-sitter and reshape its named-node tree into that AST (`_ast_children`): wrapper
levels JavaParser lacks (argument_list, formal_parameters, modifiers, type_arguments, a condition's
parentheses, ...) are spliced into their parent, names JavaParser keeps as Strings (a generic type's
name, labels, method-reference names) are no leaves, and levels tree-sitter lacks (ExpressionStmt
around a local variable declaration, VariableDeclarator in a for-each, `[]` leaves of declarations)
are added, so lengths, widths and child indices are JavaParser's. Path nodes carry child indices
where upstream writes them (see `_Tree`). Node names stay tree-sitter's. `repro/java_oracle.py`
measures the agreement with JavaParser's own AST.

Contexts are sampled from all valid pairs with an RNG keyed by (seed, key, method index) and the
pairs are enumerated from tree structure only, so renaming a variable never changes which pairs
are sampled -- the property the rename (CSR) experiments rely on.
"""

from __future__ import annotations

import bisect
import hashlib
import random
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import lru_cache
from sys import intern
from typing import NamedTuple

import numpy as np
import tree_sitter_java
from tree_sitter import Language, Node, Parser, Query, QueryCursor

LANGUAGE = Language(tree_sitter_java.language())
METHOD_NAME = "METHOD_NAME"  # upstream Common.methodName
BLANK = "BLANK"  # upstream Common.BlankWord
MAX_TERMINAL_CHARS = 50  # upstream Common.c_MaxLabelLength
MAX_C2S_SUBTOKENS = 5  # code2seq config MAX_NAME_PARTS
MAX_C2S_CHILD_ID = 3  # code2seq CommandLineValues.MaxChildId (code2vec's is uncapped)
NUM = "<NUM>"  # code2seq Property: integer literals outside NumericalKeepValues
_KEEP_NUMBERS = frozenset({"0", "1", "32", "64"})
_INT_RE = re.compile(r"[0-9][0-9_]*")  # an integer literal without sub-tokens (no 0x/0b/L letters)
_TRAILING_ID_RE = re.compile(r"[0-9]+$")  # child index at the end of a path-node label

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
    nodes: tuple[str, ...]  # node strings (with child indices) from the source leaf up to the LCA (nodes[up]), down to the target
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


# --- tree-sitter CST -> JavaParser 3.0.0-alpha.4 AST shape (the one upstream's extractor walks) ---
# Wrapper levels JavaParser does not have: their children become children of the wrapper's parent.
_SPLICE = frozenset({
    "argument_list", "formal_parameters", "modifiers", "type_arguments", "type_parameters", "throws",
    "type_bound", "switch_block", "switch_label", "finally_clause", "resource_specification",
    "annotation_argument_list",
})
_CONDITION_FIRST = frozenset({"if_statement", "while_statement", "switch_expression", "synchronized_statement"})
_NAME_DROPPED = frozenset({"labeled_statement", "break_statement", "continue_statement"})  # label: a String
_PARAMETERS = frozenset({"formal_parameter", "catch_formal_parameter"})
_ANNOTATIONS = frozenset({"marker_annotation", "annotation"})
_STATEMENT_LISTS = frozenset({"block", "switch_block_statement_group"})
_ARRAY_DECLARATIONS = frozenset({"method_declaration", "formal_parameter", "local_variable_declaration", "field_declaration"})
# `[]` is a leaf (ArrayBracketPair, ArrayCreationLevel) under these; elsewhere `dimensions` is part of a type
_DIMENSION_LEAF_PARENTS = _ARRAY_DECLARATIONS | {"array_creation_expression", "variable_declarator_id"}
# upstream FeatureExtractor.s_ParentTypeToAddChildId (AssignExpr, ArrayAccessExpr, FieldAccessExpr, MethodCallExpr)
_CHILD_ID_PARENTS = frozenset({"assignment_expression", "array_access", "field_access", "method_invocation"})


class _Syn:
    """A node JavaParser has and tree-sitter lacks (ExpressionStmt around a local variable declaration,
    VariableDeclarationExpr/VariableDeclarator in a for-each, Parameter of `x -> ...`)."""

    __slots__ = ("kids", "type")

    def __init__(self, typ: str, kids: list):
        self.type, self.kids = typ, kids


class _Leaf:
    """One `[]` of a `dimensions` node: JavaParser has an ArrayBracketPair / ArrayCreationLevel per pair."""

    __slots__ = ("end_byte", "start_byte", "type")

    def __init__(self, start: int, end: int):
        self.type, self.start_byte, self.end_byte = "dimensions", start, end


def _bracket_pairs(dims: Node) -> list:
    out, start = [], None
    for c in dims.children:
        if c.type == "[":
            start = c.start_byte
        elif c.type == "]" and start is not None:
            out.append(_Leaf(start, c.end_byte))
    return out


def _declarator_id(items: list, i: int) -> tuple:
    """The name at items[i] and what follows it. C-style `b[]` is VariableDeclaratorId([], ...) in
    alpha.4: a node with a `[]` leaf per pair, the name a String (no leaf)."""
    k, pairs = i + 1, []
    while k < len(items) and items[k].type == "dimensions":
        pairs.extend(_bracket_pairs(items[k]) if type(items[k]) is Node else [items[k]])
        k += 1
    return (_Syn("variable_declarator_id", pairs) if pairs else items[i]), items[k:]


def _named(node) -> list:
    return [c for c in node.named_children if c.type not in _COMMENTS]


# The node types `_ast_children` reshapes as a parent, and as a child; any other node keeps its children
# as they are (most nodes; `_ast_children` was ~6 % of the workers' time in a sampling profile).
_RESHAPED_PARENTS = _CONDITION_FIRST | _NAME_DROPPED | _PARAMETERS | {
    "class_declaration", "explicit_constructor_invocation", "do_statement", "generic_type", "array_type",
    "scoped_type_identifier", "scoped_identifier", "element_value_pair", "type_parameter", "spread_parameter",
    "variable_declarator", "lambda_expression", "method_invocation", "method_reference", "wildcard",
    "enhanced_for_statement", "resource",
}
_RESHAPED_CHILDREN = _SPLICE | {"array_type", "dimensions", "class_body", "catch_type", "field_access", ";",
                                "local_variable_declaration", "class_declaration"}


def _ast_children(node, typ: str, kids: list) -> list:
    """`node`'s children in JavaParser's AST: wrappers spliced, names JavaParser keeps as Strings
    dropped, missing levels added, Parameter's name before its type (upstream's child order)."""
    if typ not in _RESHAPED_PARENTS:
        for c in kids:
            if c.type in _RESHAPED_CHILDREN:
                break
        else:
            return kids
    return _reshape(node, typ, kids)


def _reshape(node, typ: str, kids: list) -> list:
    """`_ast_children` of a node whose type or children's types may need reshaping."""
    if typ == "class_declaration":  # ClassOrInterfaceDeclaration: annotations, name, members, then the types
        groups: dict[str, list] = {}
        for c in kids:
            groups.setdefault(c.type, []).append(c)
        flat = lambda t: [g for c in groups.get(t, []) for g in _named(c)]
        return ([c for c in flat("modifiers") if c.type in _ANNOTATIONS] + groups.get("identifier", [])
                + flat("class_body") + flat("type_parameters") + flat("superclass")
                + [t for c in flat("super_interfaces") for t in _named(c)])
    if typ == "explicit_constructor_invocation":  # `super(...)` / `this(...)`: the keyword is no node
        kids = [c for c in kids if c.type not in ("this", "super")]
    if typ == "do_statement" and kids and kids[-1].type == "parenthesized_expression":
        kids = kids[:-1] + _named(kids[-1])
    elif typ in _CONDITION_FIRST and kids and kids[0].type == "parenthesized_expression":
        kids = _named(kids[0]) + kids[1:]
    out, after = [], []
    for c in kids:
        ct = c.type
        if ct == "array_type" and typ in _ARRAY_DECLARATIONS:
            # declarations keep the element type and one ArrayBracketPair leaf per `[]`: after the
            # element (Parameter), after the parameters (MethodDeclaration), at the end (variables)
            element, *dims = _named(c)
            out.append(element)
            (out if typ == "formal_parameter" else after).extend(
                p for d in dims for p in (_bracket_pairs(d) if d.type == "dimensions" else [d]))
        elif ct == "dimensions" and typ in _DIMENSION_LEAF_PARENTS:
            out.extend(_bracket_pairs(c))
        elif (ct in _SPLICE or (ct == "class_body" and typ == "object_creation_expression")
                or (ct == "catch_type" and c.named_child_count == 1)):
            out.extend(_ast_children(c, ct, _named(c)))
        elif ct == "field_access" and c.named_children[-1].type in ("this", "super"):
            *scope, this = _named(c)  # `Outer.this`: ThisExpr(classExpr), no FieldAccessExpr
            out.append(_Syn(this.type, scope))
        elif ct == ";":
            out.append(_Syn("empty_statement", []))
        elif ct == "local_variable_declaration" and typ in _STATEMENT_LISTS:
            out.append(_Syn("expression_statement", [c]))
        elif ct == "class_declaration" and typ in _STATEMENT_LISTS:  # TypeDeclarationStmt
            out.append(_Syn("class_declaration_statement", [c]))
        else:
            out.append(c)
        if ct == "formal_parameters" and typ == "method_declaration":
            out.extend(after)
            after = []
    out.extend(after)
    if typ == "generic_type":  # ClassOrInterfaceType: the name is a String, the scope a child
        if out and out[0].type == "type_identifier":
            out = out[1:]
        elif out and out[0].type == "scoped_type_identifier":
            out = _named(out[0])[:-1] + out[1:]
    elif typ == "array_type" and len(out) == 2 and out[1].type == "dimensions":  # ArrayType per `[]`
        out = out[:1]
        for _ in range(len(_bracket_pairs(kids[1])) - 1):
            out = [_Syn("array_type", out)]
    elif typ in ("scoped_type_identifier", "scoped_identifier"):  # `a.b.C`: C is a String, a.b the scope
        out = out[:-1]
    elif typ == "element_value_pair" and out and out[0].type == "identifier":  # MemberValuePair: name a String
        out = out[1:]
    elif typ in _NAME_DROPPED:
        out = [c for c in out if c.type != "identifier"]
    elif typ == "type_parameter":  # TypeParameter: name a String, bounds children; `T` alone is a leaf
        names = [i for i, c in enumerate(out) if c.type == "type_identifier"]
        out = out[: names[0]] + out[names[0] + 1 :] if names else out
    elif typ in _PARAMETERS or typ == "spread_parameter":
        annotations = [c for c in out if c.type in _ANNOTATIONS]
        rest = [c for c in out if c.type not in _ANNOTATIONS]
        if typ == "spread_parameter" and rest and rest[-1].type == "variable_declarator":
            rest = _named(rest[-1])[:1] + rest[:-1]
        else:  # `int a` and C-style `byte b[]`: the name first
            names = [i for i, c in enumerate(rest) if c.type == "identifier"]
            if names:
                name, after = _declarator_id(rest, names[-1])
                rest = [name] + rest[: names[-1]] + after
        out = annotations + rest
    elif typ == "variable_declarator" and out and out[0].type == "identifier":
        name, after = _declarator_id(out, 0)
        out = [name] + after
    elif typ == "lambda_expression" and out:  # LambdaExpr(Parameter..., body statement)
        first = out[0]  # `x -> ..` and `(x, y) -> ..`; `() -> x` has its (spliced) formal_parameters first
        if first.type == "identifier" and kids[0].type == "identifier":
            out = [_Syn("formal_parameter", [first])] + out[1:]
        elif first.type == "inferred_parameters":
            out = [_Syn("formal_parameter", [p]) for p in _named(first)] + out[1:]
        if out[-1].type != "block":  # an expression body is an ExpressionStmt
            out[-1] = _Syn("expression_statement", [out[-1]])
    elif typ == "method_invocation" and len(out) > 2 and out[1].type == "super":  # `I.super.m()`: SuperExpr(I)
        out = [_Syn("super", out[:1])] + out[2:]
    elif typ == "method_reference":  # MethodReferenceExpr(scope, type arguments); the name is a String
        if len(out) > 1 and out[-1].type == "identifier":
            out = out[:-1]
        if out and (out[0].type in _TYPE_SCOPES or out[0].type == "field_access" and _is_name_chain(out[0])):
            out[0] = _Syn("type_expression", [_as_type(out[0])])  # alpha.4 parses `a.B::c` as TypeExpr(a.B)
    elif typ == "wildcard":  # `? super T`: WildcardType(T)
        out = [c for c in out if c.type != "super"]
    elif typ == "enhanced_for_statement" and len(out) >= 4:  # ForeachStmt(VariableDeclarationExpr, iterable, body)
        declaration, brackets = [], []
        for c in out[:-3]:  # as in a local variable declaration: element type, variable, `[]` leaves
            if c.type == "array_type":
                element, *dims = _named(c)
                declaration.append(element)
                brackets.extend(p for d in dims if d.type == "dimensions" for p in _bracket_pairs(d))
            else:
                declaration.append(c)
        declaration.append(_Syn("variable_declarator", [out[-3]]))
        out = [_Syn("local_variable_declaration", declaration + brackets), out[-2], out[-1]]
    elif typ == "resource" and len(out) >= 3 and out[-2].type == "identifier":  # VariableDeclarationExpr
        out = out[:-2] + [_Syn("variable_declarator", out[-2:])]
    return out


_TYPE_SCOPES = frozenset({"identifier", "type_identifier", "scoped_type_identifier", "generic_type", "array_type",
                          "integral_type", "floating_point_type", "boolean_type"})


def _is_name_chain(node) -> bool:
    """`a.b.C` (field accesses of identifiers): a type, where a type may stand."""
    while node.type == "field_access":
        kids = _named(node)
        if len(kids) != 2 or kids[1].type != "identifier":
            return False
        node = kids[0]
    return node.type == "identifier"


def _as_type(node):
    """`a.b.C` as ClassOrInterfaceType(scope a.b): the last name is a String, the scope a child."""
    if node.type != "field_access":
        return node
    return _Syn("scoped_type_identifier", [_as_type(_named(node)[0])])


class _Tree:
    """Flat view of one method shaped like JavaParser's AST: labels, parents, child indices, depths, leaves.

    `up_labels` / `down_labels` are the path-node strings upstream writes when a path passes a node
    going up / down: the two end leaves, and nodes whose parent is an assignment, array access, field
    access or method call, carry their child index (`identifier0`). On the way down upstream tests the
    node's *own* type instead of its parent's (FeatureExtractor.generatePath); we do the same.
    """

    def __init__(self, root: Node, src: bytes):
        self.labels: list[str] = []
        self.raw: list[str] = []
        self.up_labels: list[str] = []
        self.down_labels: list[str] = []
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
        labels, raws, parents, child_idx, depths, kids_of = (self.labels, self.raw, self.parent, self.child_idx,
                                                              self.depth, self.kids)  # fmt: skip
        up_labels, down_labels, leaf_nodes, leaves, spans = (self.up_labels, self.down_labels, self.leaf_nodes,
                                                             self.leaves, self.spans)  # fmt: skip
        stack = [(root, -1, 0)]  # iterative pre-order: deep expressions must not hit the recursion limit
        while stack:
            node, par, ci = stack.pop()
            k, raw = len(labels), node.type
            typ = raw
            if type(node) is _Syn:
                children = node.kids
            elif type(node) is _Leaf:
                children = []
            else:
                if typ in _OPERATOR_TYPES:  # JavaParser's BinaryExpr:plus -> binary_expression:+
                    op = node.child_by_field_name("operator")
                    typ = f"{typ}:{src[op.start_byte:op.end_byte].decode()}" if op else typ
                elif typ == "update_expression":  # ++x / x++ (JavaParser's preIncrement / posIncrement)
                    first = node.children[0]
                    typ = f"{typ}:pre{first.type}" if not first.is_named else f"{typ}:post{node.children[-1].type}"
                if raw in _STATEMENT_LISTS:  # a lone `;` is an EmptyStmt: no leaf, but a child
                    kids = [c for c in node.children if c.is_named and c.type not in _COMMENTS or c.type == ";"]
                else:
                    kids = [] if raw in _ATOMIC else _named(node)
                if kids:
                    _mark_variables(node, raw, kids, skip, declared, method_names)
                children = _ast_children(node, raw, kids) if kids else kids
            labels.append(typ)
            raws.append(raw)
            parents.append(par)
            child_idx.append(ci)
            depths.append(depths[par] + 1 if par >= 0 else 0)
            kids_of.append([])
            if par >= 0:
                kids_of[par].append(k)
            leaf = False
            if children:
                stack.extend([(children[i], k, i) for i in range(len(children) - 1, -1, -1)])
            elif (not raw.endswith("_statement") and node.end_byte > node.start_byte
                  and (raw not in _NEVER_LEAVES or raw == "dimensions" and raws[par] in _DIMENSION_LEAF_PARENTS)):
                leaf = True
                s, e = node.start_byte, node.end_byte
                if raw == "identifier":
                    ident_leaves.append(len(leaves))
                leaf_nodes.append(k)
                leaves.append(METHOD_NAME if s in method_names else src[s:e].decode("utf-8", "replace"))
                spans.append((s, e))
            # interned: the path tuples built from them then compare by identity in the formatting memos
            typ, with_id = intern(typ), intern(f"{typ}{ci}")
            up_labels.append(with_id if leaf or (par >= 0 and raws[par] in _CHILD_ID_PARENTS) else typ)
            down_labels.append(with_id if leaf or raw in _CHILD_ID_PARENTS else typ)
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
    elif typ in ("type_pattern", "record_pattern_component"):
        declared.update(c.start_byte for c in children if c.type == "identifier")
    elif typ == "lambda_expression":  # x -> ..., (x, y) -> ... (inferred_parameters is no node of ours)
        params = node.child_by_field_name("parameters")
        if params is not None and params.type == "identifier":
            declared.add(params.start_byte)
        elif params is not None and params.type == "inferred_parameters":
            declared.update(c.start_byte for c in params.named_children if c.type == "identifier")


def _method_name(method: Node) -> str:
    name = method.child_by_field_name("name")
    return name.text.decode("utf-8", "replace") if name is not None else ""


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
                samples.append(self._sample(method, source, index, random.Random(f"{seed}:{key}:{index}"), limit))
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
        depth, make = [t.depth[v] for v in t.leaf_nodes], tuple.__new__  # this loop runs millions of times per corpus
        for p in pairs[:limit]:
            q, up = divmod(p, stride)  # inlined `_decode`
            i, j = divmod(q, n_leaves)
            down = depth[j] - depth[i] + up
            contexts.append(make(PathContext, (i, ups[i][: up + 1] + downs[j][down - 1 :: -1], up, j)))
        name = _method_name(method)
        return MethodSample(index, name, _label_of(name), method.start_point[0] + 1, t.leaves, t.spans,
                            contexts, t.variables)
