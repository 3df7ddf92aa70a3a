"""stdlib-great data and control flow: variables, bug sites, CFG_NEXT, LAST_READ/LAST_WRITE, COMPUTED_FROM.

Variables: parameters and names bound in the function's own scope (assignment, for, with,
except, import, walrus, comprehension targets, del, nested def/class names), minus `global` and
`nonlocal` names. Bug sites are reads of a variable in the function's own scope that are not
also a write (`x` in `x += 1`).

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

The statements are compiled once into a small IR that is run per spelling of the function
(the clean one and each buggy variant), since the edges of a buggy variant are those of the
program as changed. IR items: ("ev", ((position, is_write), ...)), ("stmt", position),
("branch", [items, ...]), ("jump", "return"|"raise"|"break"|"continue"),
("loop", head items, body items, else items), ("try", [body items per statement], [handler
items], else items, finally items).
"""

from __future__ import annotations

from codemem.varmisuse import great_format
from codemem.varmisuse.python_tokens import Skip, Tokens, formal_params, named, node_text

W_CONTAINERS = {"pattern_list", "tuple_pattern", "list_pattern", "tuple", "list", "expression_list",
                "parenthesized_expression", "list_splat_pattern", "list_splat", "as_pattern_target"}
COMPREHENSIONS = {"list_comprehension", "set_comprehension", "dictionary_comprehension",
                  "generator_expression"}
IMPORTS = {"import_statement", "import_from_statement", "future_import_statement"}
MAX_DEPTH, MAX_LOOP_DEPTH = 50, 8  # statement nesting; loops are analysed 2**depth times
E = great_format.EDGE_TYPES


# ---- expressions: name accesses in evaluation order ---------------------------------------------
# Each visitor gets a node and its access mode ('r' read, 'w' write, 'o' another scope: recorded as
# an occurrence, no access) and returns the (child, mode) pairs to visit, last one first.
def _r(m: str) -> str:
    return "o" if m == "o" else "r"


def _w(m: str) -> str:
    return "o" if m == "o" else "w"


def _assignment(n, m):
    f = n.child_by_field_name
    return [(x, mm) for x, mm in ((f("left"), _w(m)), (f("type"), _r(m)), (f("right"), _r(m))) if x]


def _augmented(n, m):
    left = n.child_by_field_name("left")
    return [(left, _w(m)), (n.child_by_field_name("right"), _r(m)), (left, _r(m))]


def _walrus(n, m):
    return [(n.child_by_field_name("name"), _w(m)), (n.child_by_field_name("value"), _r(m))]


def _comprehension(n, m):  # clauses first, the element last
    body = n.child_by_field_name("body")
    return [(body, _r(m))] + [(c, _r(m)) for c in reversed(named(n)) if c.id != body.id]


def _for_in_clause(n, m):
    left = n.child_by_field_name("left")
    return [(left, _w(m))] + [(c, _r(m)) for c in reversed(named(n)) if c.id != left.id]


def _conditional(n, m):
    a, test, b = named(n)[:3]
    return [(b, _r(m)), (a, _r(m)), (test, _r(m))]


def _lambda(n, m):  # defaults run now, parameters and body belong to the lambda
    out, params = [(n.child_by_field_name("body"), "o")], n.child_by_field_name("parameters")
    for p in named(params) if params else []:
        v = p.child_by_field_name("value") if p.type == "default_parameter" else None
        out += [(p.child_by_field_name("name"), "o"), (v, _r(m))] if v else [(p, "o")]
    return out


def _as_pattern(n, m):
    kids = named(n)
    return [(kids[-1], _w(m)), (kids[0], _r(m))]


def _import(n, m):
    out = []
    for c in reversed(n.children_by_field_name("name")):
        out.append((c.child_by_field_name("alias") if c.type == "aliased_import" else named(c)[0], _w(m)))
    return out


def _children(n, m):
    # Only containers pass a write on (`a, b = ...`); `a[i] = ...` reads a and i.
    cm = m if m != "w" or n.type in W_CONTAINERS else "r"
    return [(c, cm) for c in reversed(named(n))]


_VISIT = {
    "attribute": lambda n, m: [(n.child_by_field_name("object"), _r(m))],
    "keyword_argument": lambda n, m: [(n.child_by_field_name("value"), _r(m))],
    "assignment": _assignment,
    "augmented_assignment": _augmented,
    "named_expression": _walrus,
    **dict.fromkeys(COMPREHENSIONS, _comprehension),
    "for_in_clause": _for_in_clause,
    "conditional_expression": _conditional,
    "lambda": _lambda,
    "as_pattern": _as_pattern,
    **dict.fromkeys(IMPORTS, _import),
    "dotted_name": lambda n, m: [(named(n)[0], m)],  # a.b.c: only `a` is a name
    "keyword_pattern": lambda n, m: [(c, m) for c in reversed(named(n)[1:])],  # `C(key=p)`: key is no name
    "global_statement": lambda n, m: [],
    "nonlocal_statement": lambda n, m: [],
}


class FunctionFlow:
    """The function's own scope compiled to the flow IR, with the facts the samples need.

    `occ`: positions of name occurrences (all scopes); `bound`: positions written in the
    function's own scope; `sites`: reads there (bug-site candidates); `declared`: global and
    nonlocal names; `computed`: COMPUTED_FROM pairs; `ir`: the IR of the whole function.
    """

    def __init__(self, toks: Tokens):
        self.t, self.leafpos = toks, toks.leafpos
        self.occ: set[int] = set()
        self.bound: list[int] = []
        self.sites: list[int] = []
        self.declared: set[str] = set()
        self.computed: set[tuple[int, int]] = set()
        self.loops = 0
        self.ir = self._entry() + self._block(toks.fn.child_by_field_name("body"), 0)

    def edges(self, tokens: list[str]) -> set[tuple[int, int, int]]:
        """CFG_NEXT, LAST_READ and LAST_WRITE of the function spelled `tokens`."""
        flow = _Run(tokens)
        flow.run(self.ir, (set(), {}, {}))
        edges = {(a, b, E["enum_CFG_NEXT"]) for a, b in flow.cfg}
        edges |= {(a, b, E["enum_LAST_READ"]) for a, b in flow.reads}
        return edges | {(a, b, E["enum_LAST_WRITE"]) for a, b in flow.writes}

    # ---- expressions -----------------------------------------------------------------------------
    def walk(self, node, mode: str) -> list[tuple[int, str]]:
        """(position, 'r'|'w'|'o') of the names under `node`, in evaluation order."""
        out, stack = [], [(node, mode)]
        while stack:
            n, m = stack.pop()
            if n.type == "identifier":
                if n.id in self.leafpos:
                    out.append((self.leafpos[n.id], m))
            elif n.id not in self.leafpos:  # other leaves (numbers, strings, ...) hold no name
                stack += _VISIT.get(n.type, _children)(n, m)
        return out

    def walk_all(self, nodes, mode="r") -> list:
        return [x for n in nodes if n is not None for x in self.walk(n, mode)]

    def _ev(self, out, site: bool = True) -> list:
        """IR item for the accesses `out`; records occurrences, bindings and bug sites."""
        self.occ.update(p for p, _ in out)
        self.bound += [p for p, k in out if k == "w"]
        if site:
            self.sites += [p for p, k in out if k == "r"]
        evs = tuple((p, k == "w") for p, k in out if k != "o")
        return [("ev", evs)] if evs else []

    # ---- statements -> IR ------------------------------------------------------------------------
    def _entry(self) -> list:
        fn = self.t.fn
        params = fn.child_by_field_name("parameters")
        names, exprs, _, _ = formal_params(params)
        decorators = named(fn.parent)[:-1] if fn.parent.type == "decorated_definition" else []
        # Decorators, defaults and annotations run when the def runs, then the parameters are bound.
        before = self.walk_all(decorators + exprs + [fn.child_by_field_name("return_type")])
        return ([("stmt", self.t.anchor(params))] + self._ev(before, site=False)
                + self._ev([(self.leafpos[n.id], "w") for n, _ in names], site=False))

    def _block(self, block, depth: int) -> list:
        if depth > MAX_DEPTH:
            raise Skip("too-deep")
        return [item for s in named(block) for item in self._stmt(s, depth)] if block else []

    def _stmt(self, s, depth: int) -> list:
        head = [("stmt", self.t.anchor(s))] if self.t.anchor(s) is not None else []
        return _STATEMENTS.get(s.type, FunctionFlow._simple)(self, s, depth, head)

    def _simple(self, s, depth, head) -> list:  # expressions, assert, import, pass, ...
        return head + self._ev(self.walk(s, "r"))

    def _expression(self, s, depth, head) -> list:
        kids = named(s)
        if len(kids) == 1 and kids[0].type == "assignment":
            return head + self._assignment(kids[0])
        return self._simple(s, depth, head)

    def _declare(self, s, depth, head) -> list:
        self.declared.update(node_text(c) for c in named(s) if c.type == "identifier")
        return head

    def _delete(self, s, depth, head) -> list:
        return head + self._ev(self.walk_all(named(s), "w"))

    def _jump(self, s, depth, head) -> list:
        return head + self._ev(self.walk(s, "r")) + [("jump", s.type.split("_")[0])]

    def _if(self, s, depth, head) -> list:
        rest = []  # built from the last alternative back, each elif branching to what follows it
        for alt in reversed(s.children_by_field_name("alternative")):
            if alt.type == "else_clause":
                rest = self._block(alt.child_by_field_name("body"), depth + 1)
            else:  # elif
                cond = self._ev(self.walk(alt.child_by_field_name("condition"), "r"))
                body = self._block(alt.child_by_field_name("consequence"), depth + 1)
                rest = [("stmt", self.t.anchor(alt))] + cond + [("branch", [body, rest])]
        cond = self._ev(self.walk(s.child_by_field_name("condition"), "r"))
        body = self._block(s.child_by_field_name("consequence"), depth + 1)
        return head + cond + [("branch", [body, rest])]

    def _for(self, s, depth, head) -> list:
        self._enter_loop()
        # The iterable is evaluated once, before the loop.
        pre = self._ev(self.walk(s.child_by_field_name("right"), "r"))
        return pre + self._loop(s, depth, head + self._ev(self.walk(s.child_by_field_name("left"), "w")))

    def _while(self, s, depth, head) -> list:
        self._enter_loop()
        return self._loop(s, depth, head + self._ev(self.walk(s.child_by_field_name("condition"), "r")))

    def _enter_loop(self):
        self.loops += 1
        if self.loops > MAX_LOOP_DEPTH:
            raise Skip("too-deep")

    def _loop(self, s, depth, loop_head) -> list:
        body = self._block(s.child_by_field_name("body"), depth + 1)
        alt = s.child_by_field_name("alternative")
        orelse = self._block(alt.child_by_field_name("body"), depth + 1) if alt else []
        self.loops -= 1
        return [("loop", loop_head, body, orelse)]

    def _try(self, s, depth, head) -> list:
        parts = [self._stmt(x, depth + 1) for x in named(s.child_by_field_name("body"))]
        handlers, orelse, final = [], [], []
        for c in named(s)[1:]:
            block = self._block(c.child_by_field_name("body") or named(c)[-1], depth + 1)
            if c.type == "else_clause":
                orelse = block
            elif c.type == "finally_clause":
                final = block
            else:  # except clause: its type and `as` name, then its block
                acc = self._ev(self.walk_all(named(c)[:-1]))
                handlers.append([("stmt", self.t.anchor(c))] + acc + block)
        return head + [("try", parts, handlers, orelse, final)]

    def _with(self, s, depth, head) -> list:
        items = self._ev(self.walk_all(named(s)[:-1]))
        return head + items + self._block(s.child_by_field_name("body"), depth + 1)

    def _match(self, s, depth, head) -> list:
        subject = self._ev(self.walk_all(s.children_by_field_name("subject")))
        cases = [[("stmt", self.t.anchor(c))] + self._ev(self._case_pattern(c))
                 + self._block(c.child_by_field_name("consequence"), depth + 1)
                 for c in named(s.child_by_field_name("body"))]
        return head + subject + [("branch", cases + [[]])]  # [] = no case matched

    def _decorated(self, s, depth, head) -> list:
        return self._ev(self.walk_all(named(s)[:-1])) + self._stmt(s.child_by_field_name("definition"), depth)

    def _definition(self, s, depth, head) -> list:
        """A nested def or class binds its name; its body is another scope."""
        f = s.child_by_field_name
        defaults = formal_params(f("parameters"))[1] if f("parameters") else []
        now = self.walk_all([f("superclasses"), f("return_type")] + defaults)
        inner = self.walk_all([f("parameters"), f("body")], "o")
        return head + self._ev(now + [(self.leafpos[f("name").id], "w")] + inner)

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
            return self._ev(self.walk_all(annotated))
        value = self.walk(node, "r")
        if not annotated:  # python-graphs: ast.Assign only
            self.computed.update((self.t.anchor(tg), p) for tg in targets for p, _ in value)
        return self._ev(value + self.walk_all(annotated) + self.walk_all(targets, "w"))

    def _case_pattern(self, clause) -> list:
        """Names in a `case`: dotted values and classes are read, captures are written."""
        out, stack = [], [(c, "w") for c in reversed(named(clause)[:-1])]
        while stack:
            n, m = stack.pop()
            if n.type == "identifier":
                if m != "skip" and node_text(n) != "_":
                    out.append((self.leafpos[n.id], m))
            elif n.type == "if_clause":
                out += self.walk(n, "r")
            elif n.type == "dotted_name":
                kids = named(n)
                stack.append((kids[0], "r" if len(kids) > 1 or m == "r" else m))
            elif n.type == "class_pattern":
                stack += [(c, "w") for c in reversed(named(n)[1:])] + [(named(n)[0], "r")]
            elif n.type == "keyword_pattern":
                stack += [(c, "w") for c in reversed(named(n)[1:])] + [(named(n)[0], "skip")]
            elif n.id not in self.leafpos:
                stack += [(c, m) for c in reversed(named(n))]
        return out


_STATEMENTS = {
    "expression_statement": FunctionFlow._expression,
    "global_statement": FunctionFlow._declare,
    "nonlocal_statement": FunctionFlow._declare,
    "delete_statement": FunctionFlow._delete,
    **dict.fromkeys(("return_statement", "raise_statement", "break_statement", "continue_statement"),
                    FunctionFlow._jump),
    "if_statement": FunctionFlow._if,
    "for_statement": FunctionFlow._for,
    "while_statement": FunctionFlow._while,
    "try_statement": FunctionFlow._try,
    "with_statement": FunctionFlow._with,
    "match_statement": FunctionFlow._match,
    "decorated_definition": FunctionFlow._decorated,
    "function_definition": FunctionFlow._definition,
    "class_definition": FunctionFlow._definition,
}


class _Run:
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
            state = _RUN[item[0]](self, item, state)
        return state

    def _ev(self, item, state):
        _, writes, reads = state
        for pos, is_write in item[1]:
            name = self.tokens[pos]
            self.writes.update((pos, w) for w in writes.get(name, ()))
            self.reads.update((pos, r) for r in reads.get(name, ()))
            (writes if is_write else reads)[name] = frozenset((pos,))
        return state

    def _stmt(self, item, state):
        self.cfg.update((p, item[1]) for p in state[0])
        return {item[1]}, state[1], state[2]

    def _branch(self, item, state):
        return self.join(*[self.run(b, self.join(state)) for b in item[1]])

    def _jump(self, item, state):
        """The path ends (None); break and continue resume it at their loop."""
        if item[1] in ("break", "continue") and self.frames:
            self.frames[-1][item[1]].append(state)

    def _loop(self, item, state):
        _, head, body, orelse = item
        back = None
        for _ in range(2):
            top = self.run(head, self.join(state, back))
            self.frames.append({"break": [], "continue": []})
            end = self.run(body, self.join(top))
            frame = self.frames.pop()
            back = self.join(end, *frame["continue"])
        return self.join(self.run(orelse, self.join(top)), *frame["break"])

    def _try(self, item, state):
        _, parts, handlers, orelse, final = item
        raised = self.join(state)
        for part in parts:
            state = self.run(part, state)
            raised = self.join(raised, state)
        caught = [self.run(h, self.join(raised)) for h in handlers]
        return self.run(final, self.join(self.run(orelse, state), *caught))


_RUN = {"ev": _Run._ev, "stmt": _Run._stmt, "branch": _Run._branch, "jump": _Run._jump,
        "loop": _Run._loop, "try": _Run._try}
