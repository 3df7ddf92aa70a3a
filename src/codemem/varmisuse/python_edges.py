"""stdlib-great syntax, lexical and call edges (the flow edges are in python_flow).

- FIELD: node -> child under a tree-sitter field name (python-graphs links AST fields; list
  fields go through list nodes that have no token, so the data holds no edges to list items).
- SYNTAX: node anchor -> each of its other own syntax tokens.
- NEXT_SYNTAX: token i -> i+1 for every i >= 1.
- LAST_LEXICAL_USE: name occurrence -> the previous occurrence of the same name in token order
  (all scopes of the sample).
- CALLS / RETURNS_TO / FORMAL_ARG_NAME (python-graphs): for a call `f(...)` whose callee is the
  name of a function defined in the sample (recursion, nested defs): call -> def, each return of
  that def -> call, each argument -> its formal parameter (or the parameter list for *args/**kw).
"""

from __future__ import annotations

from codemem.varmisuse import great_format
from codemem.varmisuse.python_tokens import Tokens, formal_params, named, node_text

E = great_format.EDGE_TYPES


def syntax_edges(toks: Tokens) -> set[tuple[int, int, int]]:
    """FIELD, SYNTAX and NEXT_SYNTAX: the same for every spelling of the function."""
    edges = {(toks.anchor(p), toks.anchor(c), E["enum_FIELD"]) for p, c in toks.fields}
    edges |= {(own[0], p, E["enum_SYNTAX"]) for own in toks.own.values() if own for p in own[1:]}
    return edges | {(i, i + 1, E["enum_NEXT_SYNTAX"]) for i in range(1, len(toks.tokens) - 1)}


def lexical_edges(occurrences, tokens: list[str]) -> set[tuple[int, int, int]]:
    """LAST_LEXICAL_USE between the name `occurrences` (positions) as spelled in `tokens`."""
    edges, last = set(), {}
    for p in sorted(occurrences):
        if tokens[p] in last:
            edges.add((p, last[tokens[p]], E["enum_LAST_LEXICAL_USE"]))
        last[tokens[p]] = p
    return edges


def call_edges(toks: Tokens, tokens: list[str]) -> set[tuple[int, int, int]]:
    """CALLS, RETURNS_TO and FORMAL_ARG_NAME of the calls to functions the sample defines."""
    edges, defs = set(), {}
    for d in toks.defs:
        # The function's own name is part of its `def f(` token, so it takes the name as written.
        name = d.child_by_field_name("name")
        spelled = tokens[toks.leafpos[name.id]] if d.id != toks.fn.id else node_text(name)
        defs.setdefault(spelled, []).append(d)
    for call in toks.calls:
        callee = call.child_by_field_name("function")
        if callee.type != "identifier" or callee.id not in toks.leafpos:
            continue
        for d in defs.get(tokens[toks.leafpos[callee.id]], []):
            edges |= _call(toks, call, d)
    return edges


def _call(toks: Tokens, call, d) -> set[tuple[int, int, int]]:
    ca = toks.anchor(call)
    edges = {(ca, toks.anchor(d), E["enum_CALLS"])}
    edges |= {(toks.anchor(r), ca, E["enum_RETURNS_TO"]) for r, owner in toks.returns
              if owner is not None and owner.id == d.id}
    params = d.child_by_field_name("parameters")
    names, _, vararg, kwarg = formal_params(params)
    formal = [toks.leafpos[n.id] for n, k in names if k == "pos"]
    by_name = {node_text(n): toks.leafpos[n.id] for n, k in names if k == "pos"}
    args = call.child_by_field_name("arguments")
    args = named(args) if args.type == "argument_list" else [args]  # `f(x for x in y)`: one generator
    positional = [a for a in args if a.type not in ("keyword_argument", "dictionary_splat")]
    for i, a in enumerate(positional):
        to = formal[i] if i < len(formal) else toks.anchor(params) if vararg else None
        edges.add((toks.anchor(a), to, E["enum_FORMAL_ARG_NAME"]))
    rest = toks.anchor(params) if kwarg else None
    for a in (a for a in args if a.type == "keyword_argument"):
        to = by_name.get(node_text(a.child_by_field_name("name")), rest)
        edges.add((toks.anchor(a.child_by_field_name("value")), to, E["enum_FORMAL_ARG_NAME"]))
    return edges
