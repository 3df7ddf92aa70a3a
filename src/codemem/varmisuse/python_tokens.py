"""stdlib-great tokens: one function's tree-sitter tree -> GREAT tokens and the node -> token map.

Tokens mirror the published data (python-graphs' unparser): a leading `#NEWLINE#` (position 0,
the "no bug" location, touched by no edge), then the function's tree-sitter leaves without
comments; `def`, the name and `(` form one token (`def __init__(`); a string literal, `is not`
and `not in` are one token; `#NEWLINE#` ends each simple statement and decorator and follows
each block header's `:`, `#INDENT#`/`#UNINDENT#` open/close blocks (one-line bodies and `;` are
normalised this way); the trailing markers are dropped. Unlike the data, which was unparsed
from the AST, the source is not reformatted (quotes and parentheses stay as written, no markers
inside brackets).

Edges join token positions, so every tree-sitter node is *anchored* at its first own syntax
token (a keyword, operator or bracket; a block at its first `#NEWLINE#`; the function at its
`def f(` token and its parameter list at its first `,` or `)`), or, having none, at its only
named child (wrappers such as expression_statement) or its second one (a call -> its `(`).
"""

from __future__ import annotations

NEWLINE, INDENT, UNINDENT = "#NEWLINE#", "#INDENT#", "#UNINDENT#"
SKIP = {"comment", "line_continuation"}
ATOMIC = {"string", "is not", "not in"}  # emitted as one token each
COMPOUND = {"if_statement", "for_statement", "while_statement", "try_statement", "with_statement",
            "function_definition", "class_definition", "decorated_definition", "match_statement",
            "case_clause"}


class Skip(Exception):
    """A function or file that yields no sample; the message is the reason counted in the report."""


def node_text(node) -> str:
    return node.text.decode("utf-8")


def named(node) -> list:
    return [c for c in node.named_children if c.type not in SKIP]


def formal_params(params) -> tuple[list, list, bool, bool]:
    """(formal name nodes with kind pos|kwonly|vararg|kwarg, default/annotation nodes, *args?, **kw?)."""
    names, exprs, star = [], [], False
    for c in named(params):
        if c.type == "keyword_separator":
            star = True
            continue
        if c.type in ("positional_separator", "tuple_pattern"):
            continue
        name = c if c.type != "default_parameter" else c.child_by_field_name("name")
        if c.type in ("typed_parameter", "typed_default_parameter"):
            name = c.child_by_field_name("name") or named(c)[0]
            exprs.append(c.child_by_field_name("type"))
        exprs += [x for x in [c.child_by_field_name("value")] if x]
        kind = "kwonly" if star else "pos"
        if name.type in ("list_splat_pattern", "dictionary_splat_pattern"):
            kind = "vararg" if name.type == "list_splat_pattern" else "kwarg"
            star |= kind == "vararg"
            name = named(name)[0]
        names.append((name, kind))
    kinds = {k for _, k in names}
    return names, [x for x in exprs if x], "vararg" in kinds, "kwarg" in kinds


class Tokens:
    """The tokens of one function (`fn`, a function_definition node) and where its nodes stand.

    `tokens`: the GREAT tokens; `leafpos`: named leaf node id -> its position; `own`: node id ->
    positions of its own syntax tokens (keywords, operators, brackets, the markers of a block or
    decorated definition); `fields`: (parent, child) pairs under a tree-sitter field name; `defs`,
    `calls`, `returns`: the function_definition, call and (return_statement, enclosing def) nodes
    met on the way, for the call edges.
    """

    def __init__(self, fn):
        self.fn = fn
        self.tokens, self.leafpos, self.own = [NEWLINE], {}, {}
        self.fields, self.calls, self.defs, self.returns = [], [], [], []
        self._anchors: dict[int, int | None] = {}
        # Decorators are part of the function's text in the data.
        span = fn.parent if fn.parent is not None and fn.parent.type == "decorated_definition" else fn
        self._walk(span)
        while self.tokens[-1] in (NEWLINE, UNINDENT):
            self.tokens.pop()
        n = len(self.tokens)
        self.own = {k: [p for p in v if p < n] for k, v in self.own.items()}

    def _walk(self, span):
        """Depth-first, iterative: long expressions (`a + b + ...`) nest deeper than the recursion limit."""
        stack = [(span, None, None)]  # (node or marker, parent, enclosing def)
        while stack:
            n, parent, owner = stack.pop()
            if type(n) is str:  # a marker, owned by the block/decorated definition `parent`
                self._own_token(parent, n)
            elif n.type in SKIP or (not n.is_named and n.type == ";"):
                continue
            elif n.type in ATOMIC or n.child_count == 0:
                self._leaf(n, parent)
            else:
                owner = self._note(n, owner)
                expand = Tokens._def_head if n.id == self.fn.id else _EXPAND.get(n.type, Tokens._children)
                stack += expand(self, n, owner)

    def _own_token(self, parent, text: str):
        self.own.setdefault(parent.id, []).append(len(self.tokens))
        self.tokens.append(text)

    def _leaf(self, n, parent):
        text = n.type if n.type in ("is not", "not in") else node_text(n)
        if not text:
            return
        if n.is_named:
            self.leafpos[n.id] = len(self.tokens)
            self.tokens.append(text)
        else:
            self._own_token(parent, text)

    def _note(self, n, owner):
        """Record defs, calls and returns; the enclosing def of what lies below `n`."""
        if n.type == "function_definition":
            self.defs.append(n)
            return n
        if n.type == "call":
            self.calls.append(n)
        elif n.type == "return_statement":
            self.returns.append((n, owner))
        return owner

    # Expansions: the stack items for a node's children, last child first.
    def _def_head(self, n, owner) -> list:
        """`def`, the name and `(` become one token, as in the data."""
        name, params = n.child_by_field_name("name"), n.child_by_field_name("parameters")
        kids = n.children
        head = "async def " if kids[0].type == "async" else "def "
        self.leafpos[name.id] = len(self.tokens)
        self.own[n.id] = [len(self.tokens)]
        self.tokens.append(f"{head}{node_text(name)}(")
        self.fields.append((n, params))
        at = next(i for i, c in enumerate(kids) if c.id == params.id)
        rest = [(c, n, owner) for c in kids[at + 1:]]
        self.fields += [(n, c) for c, _, _ in rest if c.is_named]
        return list(reversed([(c, params, owner) for c in params.children[1:]] + rest))

    def _block(self, n, owner) -> list:
        """`#NEWLINE# #INDENT#` statements, each simple one ended by `#NEWLINE#`, `#UNINDENT#`."""
        items = [(UNINDENT, n, owner)]
        for c in reversed(named(n)):
            if c.type not in COMPOUND:
                items.append((NEWLINE, n, owner))
            items.append((c, n, owner))
        return items + [(INDENT, n, owner), (NEWLINE, n, owner)]

    def _decorated(self, n, owner) -> list:
        """Each decorator on its own line, then the definition."""
        items = [(n.child_by_field_name("definition"), n, owner)]
        for c in reversed(named(n)[:-1]):
            items += [(NEWLINE, n, owner), (c, n, owner)]
        return items

    def _children(self, n, owner) -> list:
        kids, items = n.children, []
        for i in range(len(kids) - 1, -1, -1):
            if kids[i].is_named and n.field_name_for_child(i):
                self.fields.append((n, kids[i]))
            items.append((kids[i], n, owner))
        return items

    def anchor(self, node) -> int | None:
        """The token a node stands on: a leaf, its first own syntax token, else a named child."""
        key = node.id
        if key not in self._anchors:
            self._anchors[key] = self._find_anchor(node)
        return self._anchors[key]

    def _find_anchor(self, n) -> int | None:
        while n.id not in self.leafpos and not self.own.get(n.id):
            kids = named(n)
            if not kids:
                return None
            n = kids[1] if len(kids) > 1 else kids[0]
        return self.leafpos[n.id] if n.id in self.leafpos else self.own[n.id][0]


_EXPAND = {"block": Tokens._block, "decorated_definition": Tokens._decorated}
