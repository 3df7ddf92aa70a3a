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
bug per function. Files that are not UTF-8, have tree-sitter ERROR nodes or exceed 2 MB are
skipped and counted. All tree walks are iterative; only the statement compiler recurses, on
block nesting, which is capped.

Tokens mirror the published data (python-graphs' unparser): a leading `#NEWLINE#` (position 0,
the "no bug" location, touched by no edge), then the function's tree-sitter leaves without
comments; `def`, the name and `(` form one token (`def __init__(`); a string literal, `is not`
and `not in` are one token; `#NEWLINE#` ends each simple statement and decorator and follows
each block header's `:`, `#INDENT#`/`#UNINDENT#` open/close blocks (one-line bodies and `;` are
normalised this way); the trailing markers are dropped. Unlike the data, which was unparsed
from the AST, the source is not reformatted (quotes and parentheses stay as written, no markers
inside brackets).

Variables: parameters and names bound in the function's own scope (assignment, for, with,
except, import, walrus, comprehension targets, del, nested def/class names), minus `global` and
`nonlocal` names. `repair_candidates` follow the data: per variable (first-occurrence order)
every position whose token text is that name (attribute names included, as in the data), then
the name itself in clean samples only.

Edges join token positions; every tree-sitter node is *anchored* at its first own syntax token
(a keyword, operator or bracket; a block at its first `#NEWLINE#`; the function at its
`def f(` token and its parameter list at its first `,` or `)`), or, having none, at its only
named child (wrappers such as expression_statement) or its second one (a call -> its `(`).
Only forward edges are stored, as in the published data; the original loader adds every edge
reversed (type 2i+1, `great.loader_edges`), so the models see 22 edge types.
- FIELD: node -> child under a tree-sitter field name (python-graphs links AST fields; list
  fields go through list nodes that have no token, so the data holds no edges to list items).
- SYNTAX: node anchor -> each of its other own syntax tokens.
- NEXT_SYNTAX: token i -> i+1 for every i >= 1.
- LAST_LEXICAL_USE: name occurrence -> the previous occurrence of the same name in token order
  (all scopes of the sample).
- CFG_NEXT: statement -> statement that may run next. Compound statements are their header
  (`if`, `elif`, `for`, `while`, `with`, `try`, `except`, `case`); the entry is the parameter
  list; a loop body goes back to its header, `break` past the loop's `else`, `continue` to the
  header; return/raise end a path; an exception handler may follow the `try` header or any
  statement of its body; `finally` follows the body, `else` and the handlers.
- LAST_WRITE / LAST_READ: name access -> each write / read of the same name that may have been
  the most recent one before it on some path of that control flow (python-graphs' last-access
  analysis; a write also points at earlier reads and writes). Within a statement, names are
  accessed left to right, except: an assignment's value before its targets, `x += y` reads x
  and y then writes x, a comprehension runs its clauses then its element once (no loop), a
  conditional expression its test first; and/or do not short-circuit. Loops iterate to a fixed
  point (two passes suffice for this gen/kill analysis). The function's decorators, defaults and
  annotations are read at the entry, then the parameters written. Lambda, nested def and class
  bodies (other scopes) and f-string interpolations (inside one string token) are not analysed.
- COMPUTED_FROM: target of a plain assignment -> every name occurrence in the assigned value
  (python-graphs: ast.Assign only, not augmented or annotated assignments).
- CALLS / RETURNS_TO / FORMAL_ARG_NAME (python-graphs): for a call `f(...)` whose callee is the
  name of a function defined in the sample (recursion, nested defs): call -> def, each return of
  that def -> call, each argument -> its formal parameter (or the parameter list for *args/**kw).
"""

from __future__ import annotations

import hashlib
import multiprocessing
import os
import platform
import random
import sysconfig
import time
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path

from codemem.extract import great

NEWLINE, INDENT, UNINDENT = "#NEWLINE#", "#INDENT#", "#UNINDENT#"
SKIP = {"comment", "line_continuation"}
ATOMIC = {"string", "is not", "not in"}  # emitted as one token each
COMPOUND = {"if_statement", "for_statement", "while_statement", "try_statement", "with_statement",
            "function_definition", "class_definition", "decorated_definition", "match_statement",
            "case_clause"}
W_CONTAINERS = {"pattern_list", "tuple_pattern", "list_pattern", "tuple", "list", "expression_list",
                "parenthesized_expression", "list_splat_pattern", "list_splat", "as_pattern_target"}
COMPREHENSIONS = {"list_comprehension", "set_comprehension", "dictionary_comprehension",
                  "generator_expression"}
EXCLUDED_DIRS = {"test", "tests", "idle_test", "site-packages", "__pycache__"}
MAX_FILE_BYTES = 2_000_000
MAX_DEPTH, MAX_LOOP_DEPTH = 50, 8  # statement nesting; loops are analysed 2**depth times
E = great.EDGE_TYPES
_EDGE_NAME = {v: k for k, v in E.items()}


@dataclass(frozen=True)
class StdlibGreatConfig:
    max_tokens: int = 512
    bugs_per_function: int = 3
    split: tuple[float, float, float] = (0.8, 0.1, 0.1)
    max_files: int = 0  # 0 = all

    def __post_init__(self):
        if self.max_tokens < 2 or self.bugs_per_function < 0 or self.max_files < 0:
            raise ValueError(f"invalid {self}: max_tokens >= 2, bugs_per_function >= 0, max_files >= 0")
        if len(self.split) != 3 or min(self.split) < 0 or abs(sum(self.split) - 1) > 1e-6:
            raise ValueError(f"split must be three shares that sum to 1, got {self.split}")


class _Skip(Exception):
    """A function that yields no sample; the message is the reason counted in the report."""


_PARSER = None


def _parser():
    global _PARSER  # one per process: tree-sitter parsers cannot be pickled
    if _PARSER is None:
        import tree_sitter
        import tree_sitter_python
        _PARSER = tree_sitter.Parser(tree_sitter.Language(tree_sitter_python.language()))
    return _PARSER


def _text(node) -> str:
    return node.text.decode("utf-8")


def _named(node) -> list:
    return [c for c in node.named_children if c.type not in SKIP]


def _params(params) -> tuple[list, list, bool, bool]:
    """(formal name nodes with kind pos|kwonly|vararg|kwarg, default/annotation nodes, *args?, **kw?)."""
    names, exprs, star = [], [], False
    for c in _named(params):
        if c.type == "keyword_separator":
            star = True
            continue
        if c.type in ("positional_separator", "tuple_pattern"):
            continue
        name = c if c.type != "default_parameter" else c.child_by_field_name("name")
        if c.type in ("typed_parameter", "typed_default_parameter"):
            name = c.child_by_field_name("name") or _named(c)[0]
            exprs.append(c.child_by_field_name("type"))
        exprs += [x for x in [c.child_by_field_name("value")] if x]
        kind = "kwonly" if star else "pos"
        if name.type in ("list_splat_pattern", "dictionary_splat_pattern"):
            kind = "vararg" if name.type == "list_splat_pattern" else "kwarg"
            star |= kind == "vararg"
            name = _named(name)[0]
        names.append((name, kind))
    kinds = {k for _, k in names}
    return names, [x for x in exprs if x], "vararg" in kinds, "kwarg" in kinds


class FunctionGraph:
    """Tokens, edges and variables of one function, built from its tree-sitter node."""

    def __init__(self, fn, max_tokens: int = 512):
        self.fn = fn
        self._tokenize()
        if len(self.tokens) > max_tokens:
            raise _Skip("too-long")
        self._anchors: dict[int, int | None] = {}
        self.occ: set[int] = set()          # positions of name occurrences (all scopes)
        self.bound: list[int] = []          # positions written in the function's own scope
        self.sites: list[int] = []          # reads in the body's own scope (bug sites)
        self.declared: set[str] = set()     # global / nonlocal names
        self.computed: set[tuple[int, int]] = set()
        self.loops = 0
        self.ir = self._entry() + self._block(fn.child_by_field_name("body"), 0)
        first = {}
        for p in sorted(self.occ):
            first.setdefault(self.tokens[p], p)
        names = {self.tokens[p] for p in self.bound} - self.declared
        self.variables = sorted(names, key=lambda v: first.get(v, 0))
        # Bug sites: reads of a variable that are not also a write (`x` in `x += 1`).
        self.sites = sorted({p for p in self.sites if self.tokens[p] in names} - set(self.bound))
        self.static = self._static_edges()

    # ---- tokens ------------------------------------------------------------------------------
    def _tokenize(self):
        """Iterative walk: tokens, node -> token maps, field pairs, calls, defs and returns."""
        fn = self.fn
        span = fn.parent if fn.parent is not None and fn.parent.type == "decorated_definition" else fn
        tokens, leafpos, own = [NEWLINE], {}, {}
        self.fields, self.calls, self.defs, self.returns = [], [], [], []
        stack = [(span, None, None)]
        while stack:
            n, parent, owner = stack.pop()
            if type(n) is str:  # a marker, owned by the block/decorated definition `parent`
                own.setdefault(parent.id, []).append(len(tokens))
                tokens.append(n)
                continue
            t = n.type
            if t in SKIP or (not n.is_named and t == ";"):
                continue
            if t in ATOMIC or n.child_count == 0:
                text = t if t in ("is not", "not in") else _text(n)
                if text:
                    if n.is_named:
                        leafpos[n.id] = len(tokens)
                    else:
                        own.setdefault(parent.id, []).append(len(tokens))
                    tokens.append(text)
                continue
            kids = n.children
            if t == "function_definition":
                self.defs.append(n)
                owner = n
            elif t == "call":
                self.calls.append(n)
            elif t == "return_statement":
                self.returns.append((n, owner))
            if n.id == fn.id:  # `def`, name and `(` become one token, as in the data
                name, params = n.child_by_field_name("name"), n.child_by_field_name("parameters")
                head = "async def " if kids[0].type == "async" else "def "
                leafpos[name.id] = len(tokens)
                own[n.id] = [len(tokens)]
                tokens.append(f"{head}{_text(name)}(")
                self.fields.append((n, params))
                at = next(i for i, c in enumerate(kids) if c.id == params.id)
                rest = [(c, n, owner) for c in kids[at + 1:]]
                self.fields += [(n, c) for c, _, _ in rest if c.is_named]
                stack += reversed([(c, params, owner) for c in params.children[1:]] + rest)
            elif t == "block":
                stack.append((UNINDENT, n, owner))
                for c in reversed(_named(n)):
                    if c.type not in COMPOUND:
                        stack.append((NEWLINE, n, owner))
                    stack.append((c, n, owner))
                stack += [(INDENT, n, owner), (NEWLINE, n, owner)]
            elif t == "decorated_definition":
                stack.append((n.child_by_field_name("definition"), n, owner))
                for c in reversed(_named(n)[:-1]):
                    stack += [(NEWLINE, n, owner), (c, n, owner)]
            else:
                for i in range(len(kids) - 1, -1, -1):
                    if kids[i].is_named and n.field_name_for_child(i):
                        self.fields.append((n, kids[i]))
                    stack.append((kids[i], n, owner))
        while tokens[-1] in (NEWLINE, UNINDENT):
            tokens.pop()
        self.tokens, self.leafpos = tokens, leafpos
        self.own = {k: [p for p in v if p < len(tokens)] for k, v in own.items()}

    def anchor(self, node) -> int | None:
        """The token a node stands on: a leaf, its first own syntax token, else a named child."""
        key = node.id
        if key not in self._anchors:
            n = node
            while True:
                if n.id in self.leafpos:
                    pos = self.leafpos[n.id]
                    break
                if self.own.get(n.id):
                    pos = self.own[n.id][0]
                    break
                kids = _named(n)
                if not kids:
                    pos = None
                    break
                n = kids[1] if len(kids) > 1 else kids[0]
            self._anchors[key] = pos
        return self._anchors[key]

    # ---- expressions: name accesses in evaluation order ------------------------------------
    def _walk(self, node, mode: str) -> list[tuple[int, str]]:
        """(position, 'r'|'w'|'o') of the names under `node`; 'o' = another scope, no access."""
        out, stack = [], [(node, mode)]
        while stack:
            n, m = stack.pop()
            t = n.type
            if t == "identifier":
                if n.id in self.leafpos:
                    out.append((self.leafpos[n.id], m))
                continue
            if n.id in self.leafpos or t in ("global_statement", "nonlocal_statement"):
                continue
            r, w = ("o", "o") if m == "o" else ("r", "w")
            f = n.child_by_field_name
            if t == "attribute":
                stack.append((f("object"), r))
            elif t == "keyword_argument":
                stack.append((f("value"), r))
            elif t == "assignment":
                stack += [(x, mm) for x, mm in ((f("left"), w), (f("type"), r), (f("right"), r)) if x]
            elif t == "augmented_assignment":
                stack += [(f("left"), w), (f("right"), r), (f("left"), r)]
            elif t == "named_expression":
                stack += [(f("name"), w), (f("value"), r)]
            elif t in COMPREHENSIONS:  # clauses first, the element last
                stack.append((f("body"), r))
                stack += [(c, r) for c in reversed(_named(n)) if c.id != f("body").id]
            elif t == "for_in_clause":
                stack.append((f("left"), w))
                stack += [(c, r) for c in reversed(_named(n)) if c.id != f("left").id]
            elif t == "conditional_expression":
                a, test, b = _named(n)[:3]
                stack += [(b, r), (a, r), (test, r)]
            elif t == "lambda":  # defaults run now, parameters and body belong to the lambda
                stack.append((f("body"), "o"))
                for p in _named(f("parameters")) if f("parameters") else []:
                    v = p.child_by_field_name("value") if p.type == "default_parameter" else None
                    stack += [(p.child_by_field_name("name"), "o"), (v, r)] if v else [(p, "o")]
            elif t == "as_pattern":
                kids = _named(n)
                stack += [(kids[-1], w), (kids[0], r)]
            elif t in ("import_statement", "import_from_statement", "future_import_statement"):
                for c in reversed(n.children_by_field_name("name")):
                    c = c.child_by_field_name("alias") if c.type == "aliased_import" else _named(c)[0]
                    stack.append((c, w))
            elif t == "dotted_name":  # a.b.c: only `a` is a name
                stack.append((_named(n)[0], m))
            elif t == "keyword_pattern":  # `case C(key=pattern)`: key is an attribute name
                stack += [(c, m) for c in reversed(_named(n)[1:])]
            else:
                cm = m if m != "w" or t in W_CONTAINERS else "r"
                stack += [(c, cm) for c in reversed(_named(n))]
        return out

    def _ev(self, out, site: bool = True) -> list:
        """IR item for the accesses `out`; records occurrences, bindings and bug sites."""
        self.occ.update(p for p, _ in out)
        self.bound += [p for p, k in out if k == "w"]
        if site:
            self.sites += [p for p, k in out if k == "r"]
        evs = tuple((p, k == "w") for p, k in out if k != "o")
        return [("ev", evs)] if evs else []

    def _walk_all(self, nodes, mode="r") -> list:
        return [x for n in nodes if n is not None for x in self._walk(n, mode)]

    # ---- statements -> IR ----------------------------------------------------------------------
    def _entry(self) -> list:
        params = self.fn.child_by_field_name("parameters")
        names, exprs, _, _ = _params(params)
        decorators = _named(self.fn.parent)[:-1] if self.fn.parent.type == "decorated_definition" else []
        # Decorators, defaults and annotations run when the def runs, then the parameters are bound.
        before = self._walk_all(decorators + exprs + [self.fn.child_by_field_name("return_type")])
        return ([("stmt", self.anchor(params))] + self._ev(before, site=False)
                + self._ev([(self.leafpos[n.id], "w") for n, _ in names], site=False))

    def _block(self, block, depth: int) -> list:
        if depth > MAX_DEPTH:
            raise _Skip("too-deep")
        return [item for s in _named(block) for item in self._stmt(s, depth)] if block else []

    def _stmt(self, s, depth: int) -> list:
        t, f = s.type, s.child_by_field_name
        head = [("stmt", self.anchor(s))] if self.anchor(s) is not None else []
        if t == "expression_statement" and len(_named(s)) == 1 and _named(s)[0].type == "assignment":
            return head + self._assignment(_named(s)[0])
        if t in ("global_statement", "nonlocal_statement"):
            self.declared.update(_text(c) for c in _named(s) if c.type == "identifier")
            return head
        if t == "delete_statement":
            return head + self._ev(self._walk_all(_named(s), "w"))
        if t in ("return_statement", "raise_statement", "break_statement", "continue_statement"):
            return head + self._ev(self._walk(s, "r")) + [("jump", t.split("_")[0])]
        if t == "if_statement":
            rest = []
            for alt in reversed(s.children_by_field_name("alternative")):
                if alt.type == "else_clause":
                    rest = self._block(alt.child_by_field_name("body"), depth + 1)
                else:  # elif
                    cond = self._ev(self._walk(alt.child_by_field_name("condition"), "r"))
                    body = self._block(alt.child_by_field_name("consequence"), depth + 1)
                    rest = [("stmt", self.anchor(alt))] + cond + [("branch", [body, rest])]
            cond = self._ev(self._walk(f("condition"), "r"))
            return head + cond + [("branch", [self._block(f("consequence"), depth + 1), rest])]
        if t in ("for_statement", "while_statement"):
            self.loops += 1
            if self.loops > MAX_LOOP_DEPTH:
                raise _Skip("too-deep")
            if t == "for_statement":
                pre = self._ev(self._walk(f("right"), "r"))  # the iterable runs once, before the loop
                loop_head = self._ev(self._walk(f("left"), "w"))
            else:
                pre, loop_head = [], self._ev(self._walk(f("condition"), "r"))
            body = self._block(f("body"), depth + 1)
            alt = f("alternative")
            orelse = self._block(alt.child_by_field_name("body"), depth + 1) if alt else []
            self.loops -= 1
            return pre + [("loop", head + loop_head, body, orelse)]
        if t == "try_statement":
            parts = [self._stmt(x, depth + 1) for x in _named(f("body"))]
            handlers, orelse, final = [], [], []
            for c in _named(s)[1:]:
                block = self._block(c.child_by_field_name("body") or _named(c)[-1], depth + 1)
                if c.type == "else_clause":
                    orelse = block
                elif c.type == "finally_clause":
                    final = block
                else:  # except clause: its type and `as` name, then its block
                    acc = self._ev(self._walk_all(_named(c)[:-1]))
                    handlers.append([("stmt", self.anchor(c))] + acc + block)
            return head + [("try", parts, handlers, orelse, final)]
        if t == "with_statement":
            return head + self._ev(self._walk_all(_named(s)[:-1])) + self._block(f("body"), depth + 1)
        if t == "match_statement":
            subject = self._ev(self._walk_all(s.children_by_field_name("subject")))
            cases = [[("stmt", self.anchor(c))] + self._ev(self._case_pattern(c))
                     + self._block(c.child_by_field_name("consequence"), depth + 1)
                     for c in _named(f("body"))]
            return head + subject + [("branch", cases + [[]])]  # [] = no case matched
        if t == "decorated_definition":
            return self._ev(self._walk_all(_named(s)[:-1])) + self._stmt(f("definition"), depth)
        if t in ("function_definition", "class_definition"):  # binds its name; body is another scope
            defaults = _params(f("parameters"))[1] if f("parameters") else []
            now = self._walk_all([f("superclasses"), f("return_type")] + defaults)
            inner = self._walk_all([f("parameters"), f("body")], "o")
            return head + self._ev(now + [(self.leafpos[f("name").id], "w")] + inner)
        return head + self._ev(self._walk(s, "r"))  # expressions, assert, import, pass, ...

    def _assignment(self, node) -> list:
        """`a = b = value`: value, then targets; COMPUTED_FROM target -> names in value."""
        targets, annotated = [], []
        while node.type == "assignment":
            targets.append(node.child_by_field_name("left"))
            annotated += [x for x in [node.child_by_field_name("type")] if x]
            node = node.child_by_field_name("right")
            if node is None:
                break
        if node is None:  # `x: int` binds nothing
            return self._ev(self._walk_all(annotated))
        value = self._walk(node, "r")
        if not annotated:  # python-graphs: ast.Assign only
            self.computed.update((self.anchor(tg), p) for tg in targets for p, _ in value)
        return self._ev(value + self._walk_all(annotated) + self._walk_all(targets, "w"))

    def _case_pattern(self, clause) -> list:
        """Names in a `case`: dotted values and classes are read, captures are written."""
        out, stack = [], [(c, "w") for c in reversed(_named(clause)[:-1])]
        while stack:
            n, m = stack.pop()
            if n.type == "identifier":
                if m != "skip" and _text(n) != "_":
                    out.append((self.leafpos[n.id], m))
            elif n.type == "if_clause":
                out += self._walk(n, "r")
            elif n.type == "dotted_name":
                kids = _named(n)
                stack.append((kids[0], "r" if len(kids) > 1 or m == "r" else m))
            elif n.type == "class_pattern":
                stack += [(c, "w") for c in reversed(_named(n)[1:])] + [(_named(n)[0], "r")]
            elif n.type == "keyword_pattern":
                stack += [(c, "w") for c in reversed(_named(n)[1:])] + [(_named(n)[0], "skip")]
            elif n.id not in self.leafpos:
                stack += [(c, m) for c in reversed(_named(n))]
        return out

    # ---- edges ----------------------------------------------------------------------------
    def _static_edges(self) -> set[tuple[int, int, int]]:
        """Edges that no renaming changes: FIELD, SYNTAX, NEXT_SYNTAX, COMPUTED_FROM."""
        edges = {(self.anchor(p), self.anchor(c), E["enum_FIELD"]) for p, c in self.fields}
        edges |= {(own[0], p, E["enum_SYNTAX"]) for own in self.own.values() if own for p in own[1:]}
        edges |= {(i, i + 1, E["enum_NEXT_SYNTAX"]) for i in range(1, len(self.tokens) - 1)}
        return edges | {(a, b, E["enum_COMPUTED_FROM"]) for a, b in self.computed}

    def edges(self, tokens: list[str]) -> set[tuple[int, int, int]]:
        """All edges of the function spelled `tokens` (the clean one or a buggy variant)."""
        flow = _Flow(tokens)
        flow.run(self.ir, (set(), {}, {}))
        edges = {(a, b, E["enum_CFG_NEXT"]) for a, b in flow.cfg}
        edges |= {(a, b, E["enum_LAST_READ"]) for a, b in flow.reads}
        edges |= {(a, b, E["enum_LAST_WRITE"]) for a, b in flow.writes}
        last = {}
        for p in sorted(self.occ):
            if tokens[p] in last:
                edges.add((p, last[tokens[p]], E["enum_LAST_LEXICAL_USE"]))
            last[tokens[p]] = p
        return self.static | edges | self._call_edges(tokens)

    def _call_edges(self, tokens) -> set[tuple[int, int, int]]:
        edges, defs = set(), {}
        for d in self.defs:
            defs.setdefault(tokens[self.leafpos[d.child_by_field_name("name").id]] if d.id != self.fn.id
                            else _text(d.child_by_field_name("name")), []).append(d)
        for call in self.calls:
            callee = call.child_by_field_name("function")
            if callee.type != "identifier" or callee.id not in self.leafpos:
                continue
            ca = self.anchor(call)
            for d in defs.get(tokens[self.leafpos[callee.id]], []):
                edges.add((ca, self.anchor(d), E["enum_CALLS"]))
                edges |= {(self.anchor(r), ca, E["enum_RETURNS_TO"]) for r, owner in self.returns
                          if owner is not None and owner.id == d.id}
                params = d.child_by_field_name("parameters")
                names, _, vararg, kwarg = _params(params)
                formal = [self.leafpos[n.id] for n, k in names if k == "pos"]
                by_name = {_text(n): self.leafpos[n.id] for n, k in names if k == "pos"}
                args = call.child_by_field_name("arguments")
                args = _named(args) if args.type == "argument_list" else [args]
                positional = [a for a in args if a.type not in ("keyword_argument", "dictionary_splat")]
                for i, a in enumerate(positional):
                    to = formal[i] if i < len(formal) else self.anchor(params) if vararg else None
                    edges.add((self.anchor(a), to, E["enum_FORMAL_ARG_NAME"]))
                rest = self.anchor(params) if kwarg else None
                for a in (a for a in args if a.type == "keyword_argument"):
                    to = by_name.get(_text(a.child_by_field_name("name")), rest)
                    edges.add((self.anchor(a.child_by_field_name("value")), to, E["enum_FORMAL_ARG_NAME"]))
        return edges

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


class _Flow:
    """Runs the IR: CFG_NEXT between statements and last reads/writes per name.

    A state is (previous statements, name -> last writes, name -> last reads) or None when the
    point is unreachable. Loops run twice: enough for gen/kill analyses like this one.
    """

    def __init__(self, tokens):
        self.tokens, self.cfg, self.reads, self.writes, self.frames = tokens, set(), set(), set(), []

    @staticmethod
    def join(*states):
        live = [s for s in states if s is not None]
        if not live:
            return None
        out = (set().union(*(s[0] for s in live)), dict(live[0][1]), dict(live[0][2]))
        for s in live[1:]:
            for i in (1, 2):
                for k, v in s[i].items():
                    out[i][k] = out[i][k] | v if k in out[i] else v
        return out

    def run(self, items, state):
        for item in items:
            if state is None:
                return None
            kind = item[0]
            if kind == "ev":
                _, writes, reads = state
                for pos, is_write in item[1]:
                    name = self.tokens[pos]
                    self.writes.update((pos, w) for w in writes.get(name, ()))
                    self.reads.update((pos, r) for r in reads.get(name, ()))
                    (writes if is_write else reads)[name] = frozenset((pos,))
            elif kind == "stmt":
                self.cfg.update((p, item[1]) for p in state[0])
                state = ({item[1]}, state[1], state[2])
            elif kind == "branch":
                state = self.join(*[self.run(b, self.join(state)) for b in item[1]])
            elif kind == "jump":
                if item[1] in ("break", "continue") and self.frames:
                    self.frames[-1][item[1]].append(state)
                state = None
            elif kind == "loop":
                _, head, body, orelse = item
                back = None
                for _ in range(2):
                    top = self.run(head, self.join(state, back))
                    self.frames.append({"break": [], "continue": []})
                    end = self.run(body, self.join(top))
                    frame = self.frames.pop()
                    back = self.join(end, *frame["continue"])
                state = self.join(self.run(orelse, self.join(top)), *frame["break"])
            elif kind == "try":
                _, parts, handlers, orelse, final = item
                raised = self.join(state)
                for part in parts:
                    state = self.run(part, state)
                    raised = self.join(raised, state)
                caught = [self.run(h, self.join(raised)) for h in handlers]
                state = self.run(final, self.join(self.run(orelse, state), *caught))
        return state


# ---- files -> samples ----------------------------------------------------------------------
def _functions(root) -> list[tuple[object, str]]:
    """Every `def` in a module with its qualified name (`C.f`, `f.<locals>.g`), in source order."""
    out, stack = [], [(root, "")]
    while stack:
        n, prefix = stack.pop()
        if n.type in ("function_definition", "class_definition"):
            name = f"{prefix}{_text(n.child_by_field_name('name'))}"
            if n.type == "function_definition":
                out.append((n, name))
            prefix = name + (".<locals>." if n.type == "function_definition" else ".")
        stack += [(c, prefix) for c in reversed(_named(n)) if c.type not in ATOMIC]
    return out


def _file_samples(source: bytes, path: str, rng: random.Random, config: StdlibGreatConfig):
    """([(dedup key, [clean, *buggy samples]) per function], Counter of outcomes)."""
    stats = Counter()
    tree = _parser().parse(source)
    if tree.root_node.has_error:
        raise _Skip("parse-error")
    out = []
    for fn, qualname in _functions(tree.root_node):
        stats["functions"] += 1
        try:
            g = FunctionGraph(fn, config.max_tokens)
            if len(g.variables) < 2 or not g.sites:
                raise _Skip("no-bug-site")
            samples = [g.sample(g.tokens)]
            for pos in rng.sample(g.sites, min(config.bugs_per_function, len(g.sites))):
                original = g.tokens[pos]
                tokens = list(g.tokens)
                tokens[pos] = rng.choice([v for v in g.variables if v != original])
                samples.append(g.sample(tokens, pos, original))
        except _Skip as e:
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
        key = hashlib.sha1("\0".join(body).encode("utf-8")).hexdigest()
        out.append((key, samples))
    return out, stats


def function_samples(source: bytes, path: str, rng: random.Random,
                     config: StdlibGreatConfig | None = None) -> list[dict]:
    """The samples of every function in one file: each clean, then its buggy variants.

    An unparsable file yields no samples.
    """
    try:
        funcs, _ = _file_samples(source, path, rng, config or StdlibGreatConfig())
    except _Skip:
        return []
    return [s for _, samples in funcs for s in samples]


def corpus_files(root: str | Path) -> list[str]:
    """The .py files under `root` (relative POSIX paths, sorted), without test folders."""
    root, out = Path(root), []
    for d, dirs, files in os.walk(root):
        dirs[:] = sorted(x for x in dirs if x not in EXCLUDED_DIRS)
        rel = Path(d).relative_to(root)
        out += [(rel / f).as_posix() for f in files if f.endswith(".py")]
    return sorted(out)


def _process(task):
    """Worker: one file -> its functions' samples, or the reason it was skipped."""
    root, rel, seed, config = task
    try:
        data = (Path(root) / rel).read_bytes()
    except OSError:
        return {"rel": rel, "sha256": "", "functions": [], "stats": Counter(), "skip": "unreadable"}
    res = {"rel": rel, "sha256": hashlib.sha256(data).hexdigest(), "functions": [], "stats": Counter()}
    if len(data) > MAX_FILE_BYTES:
        return res | {"skip": "too-large"}
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return res | {"skip": "non-utf8"}
    try:
        res["functions"], res["stats"] = _file_samples(data, rel, random.Random(f"{seed}:{rel}"), config)
    except _Skip as e:
        return res | {"skip": str(e)}
    return res


def build_corpus(root: Path, out_dir: Path, *, seed: int, config: StdlibGreatConfig = StdlibGreatConfig(),
                 workers: int | None = None) -> dict:
    """Write train/dev/eval.jsonl (GREAT format) for the functions under `root`; return a report.

    Files are split (seeded) before anything else, so a file's functions stay in one split;
    functions whose tokens (name aside) equal an earlier function's are dropped; each split is then balanced by dropping buggy samples.
    `workers` > 1 analyses files in that many forked processes; the output does not depend on
    it. One process builds the 3.11 stdlib corpus in about 30 s here, so that is the default
    (two workers gained nothing on this shared 2-core machine: the results' unpickling competes).
    """
    t0 = time.time()
    root, out_dir = Path(root), Path(out_dir)
    files = corpus_files(root)
    if config.max_files:
        files = files[:config.max_files]
    order = list(files)
    random.Random(seed).shuffle(order)
    n_train, n_dev = round(config.split[0] * len(order)), round(config.split[1] * len(order))
    split_of = {rel: "train" if i < n_train else "dev" if i < n_train + n_dev else "eval"
                for i, rel in enumerate(order)}
    tasks = [(str(root), rel, seed, config) for rel in files]
    workers = max(1, workers or 1)
    if workers > 1:
        with multiprocessing.get_context("fork").Pool(workers) as pool:
            results = list(pool.imap(_process, tasks, chunksize=4))
    else:
        results = [_process(t) for t in tasks]

    seen, digest = set(), hashlib.sha256()
    skipped_files, fn_stats = {}, Counter()
    splits = {s: {"files": 0, "clean": [], "buggy": []} for s in ("train", "dev", "eval")}
    for res in results:  # in file order, so duplicates resolve the same way every run
        digest.update(f"{res['rel']}\0{res['sha256']}\n".encode())
        if "skip" in res:
            skipped_files[res["rel"]] = res["skip"]
            continue
        fn_stats.update(res["stats"])
        part = splits[split_of[res["rel"]]]
        part["files"] += 1
        for key, samples in res["functions"]:
            if key in seen:
                fn_stats["duplicate"] += 1
                continue
            seen.add(key)
            part["clean"].append(samples[0])
            part["buggy"] += samples[1:]

    report = {"root": str(root), "python": platform.python_version(), "seed": seed,
              "config": asdict(config), "workers": workers,
              "files": {"seen": len(files), "used": len(files) - len(skipped_files),
                        "skipped": dict(Counter(skipped_files.values())),
                        "skipped_files": skipped_files},
              "sources_sha256": digest.hexdigest(), "splits": {}}
    total = buggy_total = 0
    for name, part in splits.items():
        clean, buggy = part["clean"], part["buggy"]
        rng = random.Random(f"{seed}:balance:{name}")
        # Balance: drop the majority class at random (no bugs asked for: keep every clean one).
        n_buggy = min(len(clean), len(buggy))
        n_clean = n_buggy if buggy else len(clean)
        buggy = [buggy[i] for i in sorted(rng.sample(range(len(buggy)), n_buggy))]
        clean = [clean[i] for i in sorted(rng.sample(range(len(clean)), n_clean))]
        samples = sorted(clean + buggy, key=_order_key)
        great.write_shard(out_dir / f"{name}.jsonl", samples, validate=False)
        report["splits"][name] = {"files": part["files"], "functions": len(part["clean"]),
                                  "buggy_generated": len(part["buggy"]), "clean": n_clean,
                                  "buggy": n_buggy, "samples": len(samples)}
        total += len(samples)
        buggy_total += n_buggy
    used = fn_stats.pop("functions", 0)
    report["functions"] = {"seen": used, "kept": sum(len(p["clean"]) for p in splits.values()),
                           "skipped": dict(fn_stats)}
    report["samples"] = total
    report["buggy_share"] = buggy_total / total if total else 0.0
    report["seconds"] = round(time.time() - t0, 1)
    return report


def _order_key(sample: dict):
    """Source order: file, line, then the clean sample before its buggy variants."""
    p = sample["provenances"][0]["datasetProvenance"]
    return p["filepath"], p["lineno"], p["functionName"], sample["has_bug"], sample["error_location"]


def stdlib_version(root: str | Path | None = None) -> dict:
    """The Python version and a sha256 over the corpus file list and contents."""
    root = Path(root or sysconfig.get_paths()["stdlib"])
    digest, files = hashlib.sha256(), corpus_files(root)
    for rel in files:
        data = (root / rel).read_bytes()
        digest.update(f"{rel}\0{hashlib.sha256(data).hexdigest()}\n".encode())
    return {"python": platform.python_version(), "implementation": platform.python_implementation(),
            "stdlib": str(root), "files": len(files), "sha256": digest.hexdigest()}
