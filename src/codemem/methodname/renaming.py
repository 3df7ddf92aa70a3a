"""The study's renaming variants (CSR) and code2vec's code-line rule, on tree-sitter's tree.

The study made its CSR variants with mdrafiqulrabin/JavaTransformer's `VariableRenaming` on one
method wrapped as `class T { ... }` (`Common.getParseUnit`):

- the variables (`isTargetVariable`): every SimpleName whose parent is a Parameter (method, catch,
  lambda and varargs parameters) or a VariableDeclarator (locals, for-each and resource variables,
  and the fields of anonymous or local classes), in pre-order; one variant per such declaration
  (`Common.applyToPlace`), kept only if the method's text changes (`checkTransformation`);
- the new name (`locateVariableRenaming`): one for the method, "var", moved on to "var1", "var2", ...
  each time the declaration being visited (in pre-order) is named like the current candidate;
- the renaming (`applyTransformation`): every SimpleName spelled like the variable, wherever it is
  (`this.x`, `o.x`, a same-named method call, a type, a label), except the names of method and
  class/interface declarations; JavaParser keeps annotation names (Name), method-reference names
  and `var` (VarType) as no SimpleName, so they stay;
- then the method was pretty-printed, extracted and preprocessed again: a fresh sample of contexts.

Here the renaming replaces the identifiers' bytes in the method's own text; the renamed method,
wrapped as the study wrapped it, is parsed and extracted again with the same extractor and limits.
Comments and layout stay where the pretty-printer would drop or redo them: our extractor reads
neither. Declarations of one name give the same renamed text, parsed once, sampled once each.

code2vec's extractor (JavaExtractor `FunctionVisitor.getMethodLength`, `MinCodeLength = 1`) drops a
method whose pretty-printed body, without its braces, has no line but comment lines (lines that
start with `/` or `*`): a body with no statement, only comments (block-comment lines that start
with neither still count). code2seq's (`MaxCodeLength = -1`) keeps every method.
"""

from __future__ import annotations

import json
import random

from tree_sitter import Node

from codemem.methodname.java_ast import _COMMENTS
from codemem.methodname.java_tokens import MethodSample

WRAP_HEAD, WRAP_TAIL = b"class T { \n", b"\n}"  # JavaTransformer Common.getParseUnit's wrapper
_NAMES = frozenset({"identifier", "type_identifier"})  # JavaParser SimpleName
_KEEP_NAME = frozenset({"method_declaration", "class_declaration", "interface_declaration"})  # their `name`
_ANNOTATIONS = frozenset({"marker_annotation", "annotation"})  # names are Name, not SimpleName


def _walk(node: Node):
    """Pre-order, iteratively (deep expressions)."""
    stack = [node]
    while stack:
        n = stack.pop()
        yield n
        stack.extend(reversed(n.children))


def _field(node: Node, name: str) -> Node | None:
    return node.child_by_field_name(name)


def target_variables(method: Node) -> list[str]:
    """The names JavaTransformer's `isTargetVariable` picks, one per declaration, in pre-order."""
    out = []
    for n in _walk(method):
        t = n.type
        if t in ("formal_parameter", "catch_formal_parameter", "variable_declarator", "enhanced_for_statement",
                 "resource"):  # fmt: skip
            name = _field(n, "name")
            if name is not None and name.type == "identifier":
                out.append(name.text.decode("utf-8", "replace"))
        elif t == "lambda_expression":
            params = _field(n, "parameters")
            if params is not None and params.type == "identifier":
                out.append(params.text.decode("utf-8", "replace"))
            elif params is not None and params.type == "inferred_parameters":
                out += [c.text.decode("utf-8", "replace") for c in params.named_children if c.type == "identifier"]
    return out


def new_name(targets: list[str]) -> str:
    """`locateVariableRenaming`: "var", moved on each time a declaration visited is named like it."""
    name, k = "var", 0
    for t in targets:
        if t == name:
            k += 1
            name = f"var{k}"
    return name


def _renamable(node: Node) -> bool:
    parent = node.parent
    if parent is None:
        return False
    pt = parent.type
    if pt in _KEEP_NAME and _field(parent, "name") == node:
        return False
    if pt in _ANNOTATIONS or (pt == "scoped_identifier" and _in_annotation_name(parent)):
        return False
    if pt == "method_reference" and node.prev_sibling is not None and node.prev_sibling.type == "::":
        return False
    dot = node.next_sibling  # Outer.this, Outer.super.f(): ThisExpr's / SuperExpr's typeName is a Name
    if dot is not None and dot.type == "." and dot.next_sibling is not None and dot.next_sibling.type in ("this", "super"):
        return False
    return not (node.type == "type_identifier" and node.text == b"var" and _field(parent, "type") == node)  # VarType


def _in_annotation_name(node: Node) -> bool:
    while node.parent is not None and node.parent.type == "scoped_identifier":
        node = node.parent
    return node.parent is not None and node.parent.type in _ANNOTATIONS


def rename_method(method: Node, old: str, new: str) -> bytes:
    """The method's text with every SimpleName spelled `old` renamed to `new` (`applyTransformation`)."""
    text = method.text
    base, target = method.start_byte, old.encode()
    spans = [(n.start_byte - base, n.end_byte - base) for n in _walk(method)
             if n.type in _NAMES and n.text == target and _renamable(n)]  # fmt: skip
    out, new_b = bytearray(text), new.encode()
    for s, e in sorted(spans, reverse=True):
        out[s:e] = new_b
    return bytes(out)


def wrapped(method_text: bytes) -> bytes:
    return WRAP_HEAD + method_text + WRAP_TAIL


def study_variants(extractor, method: Node, *, key: str, seed: int, limit: int) -> list[MethodSample]:
    """The study's renaming variants of `method`, each extracted afresh from the renamed method
    wrapped as `class T { ... }` -- what `extractor.extract(wrapped(rename_method(...)), key=variant_key(
    key, variable), seed=seed, limit=limit)` gives -- one per distinct variable name whose renaming
    changes the method: one per declaration, in pre-order (a name declared twice: the same text,
    two draws of its contexts)."""
    targets = target_variables(method)
    new = new_name(targets)
    out, seen, parsed = [], {}, {}
    for variable in targets:
        if variable == new:  # the text would not change: checkTransformation drops it
            continue
        nth = seen[variable] = seen.get(variable, -1) + 1
        if variable not in parsed:
            source = wrapped(rename_method(method, variable, new))
            nodes = extractor._method_nodes(source)
            parsed[variable] = (source, nodes[0][0] if nodes and not nodes[0][0].has_error else None)
        source, node = parsed[variable]
        if node is not None:
            rng = random.Random(f"{seed}:{variant_key(key, variable, nth)}:0")
            out.append(extractor._sample(node, source, 0, rng, limit))
    return out


def variant_key(key: str, variable: str, nth: int = 0) -> str:
    """The sampling key of a variant: a fresh draw of contexts, as the study's re-extraction made
    (preprocess.py draws each line's sample afresh, so a name declared twice gives two draws)."""
    return f"{key}#rename:{variable}" + (f"#{nth}" if nth else "")


def has_code_line(body: Node) -> bool:
    """Whether code2vec's `getMethodLength(body.toString())` is at least 1 (`MinCodeLength`)."""
    comments = []
    for c in body.children:
        if c.type in _COMMENTS:
            comments.append(c)
        elif c.is_named or c.type == ";":  # a statement (`;` alone is an EmptyStmt)
            return True
    for c in comments:  # printed verbatim: a line that does not start with / or * counts
        for line in c.text.decode("utf-8", "replace").split("\n"):
            line = line.strip()
            if line and not line.startswith(("/", "*")):
                return True
    return False


def study_line(extractor, method: Node, *, key: str, seed: int, limit: int) -> str:
    """One test sample's line of `renamings.jsonl`: [c2v variants, c2s variants], each variant the
    list of its contexts as the format writes them (at most `limit`)."""
    variants = study_variants(extractor, method, key=key, seed=seed, limit=limit)
    return json.dumps([[v.c2v_contexts(limit) for v in variants], [v.c2s_contexts(limit) for v in variants]])
