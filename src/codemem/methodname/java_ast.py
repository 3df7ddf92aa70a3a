"""JavaParser 3.0.0-alpha.4's AST rebuilt from tree-sitter's tree: the shape upstream's extractor walks.

Path lengths, widths and child indices are measured on that AST, so we reshape tree-sitter's
named-node tree into it (`_ast_children`): wrapper levels JavaParser lacks (argument_list,
formal_parameters, modifiers, type_arguments, a condition's parentheses, ...) are spliced into their
parent, names JavaParser keeps as Strings (a generic type's name, labels, method-reference names)
are no leaves, and levels tree-sitter lacks (ExpressionStmt around a local variable declaration,
VariableDeclarator in a for-each, `[]` leaves of declarations) are added, so lengths, widths and
child indices are JavaParser's. Path nodes carry child indices where upstream writes them (see
`_Tree`). Node names stay tree-sitter's. `repro/java_oracle.py` measures the agreement with
JavaParser's own AST.
"""

from __future__ import annotations

from sys import intern

from tree_sitter import Node

from codemem.methodname.java_tokens import METHOD_NAME

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


# Wrapper levels JavaParser does not have: their children become children of the wrapper's parent.
_SPLICE = frozenset({
    "argument_list", "formal_parameters", "modifiers", "type_arguments", "type_parameters", "throws",
    "type_bound", "switch_block", "switch_label", "finally_clause", "resource_specification",
    "annotation_argument_list",
})
_CONDITION_FIRST = frozenset({"if_statement", "while_statement", "switch_expression",
                              "synchronized_statement"})
_NAME_DROPPED = frozenset({"labeled_statement", "break_statement", "continue_statement"})  # label: a String
_PARAMETERS = frozenset({"formal_parameter", "catch_formal_parameter"})
_ANNOTATIONS = frozenset({"marker_annotation", "annotation"})
_STATEMENT_LISTS = frozenset({"block", "switch_block_statement_group"})
_ARRAY_DECLARATIONS = frozenset({"method_declaration", "formal_parameter", "local_variable_declaration",
                                 "field_declaration"})
# `[]` is a leaf (ArrayBracketPair, ArrayCreationLevel) under these; elsewhere `dimensions` is part of a type
_DIMENSION_LEAF_PARENTS = _ARRAY_DECLARATIONS | {"array_creation_expression", "variable_declarator_id"}
# upstream FeatureExtractor.s_ParentTypeToAddChildId
# (AssignExpr, ArrayAccessExpr, FieldAccessExpr, MethodCallExpr)
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
    elif typ == "element_value_pair" and out and out[0].type == "identifier":
        # MemberValuePair: name a String
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
    elif typ == "method_invocation" and len(out) > 2 and out[1].type == "super":
        # `I.super.m()`: SuperExpr(I)
        out = [_Syn("super", out[:1])] + out[2:]
    elif typ == "method_reference":  # MethodReferenceExpr(scope, type arguments); the name is a String
        if len(out) > 1 and out[-1].type == "identifier":
            out = out[:-1]
        if out and (out[0].type in _TYPE_SCOPES or out[0].type == "field_access" and _is_name_chain(out[0])):
            out[0] = _Syn("type_expression", [_as_type(out[0])])  # alpha.4 parses `a.B::c` as TypeExpr(a.B)
    elif typ == "wildcard":  # `? super T`: WildcardType(T)
        out = [c for c in out if c.type != "super"]
    elif typ == "enhanced_for_statement" and len(out) >= 4:
        # ForeachStmt(VariableDeclarationExpr, iterable, body)
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


_TYPE_SCOPES = frozenset({"identifier", "type_identifier", "scoped_type_identifier", "generic_type",
                          "array_type", "integral_type", "floating_point_type", "boolean_type"})


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
        labels, raws, parents, child_idx, depths, kids_of = (
            self.labels, self.raw, self.parent, self.child_idx, self.depth, self.kids)  # fmt: skip
        up_labels, down_labels, leaf_nodes, leaves, spans = (
            self.up_labels, self.down_labels, self.leaf_nodes, self.leaves, self.spans)  # fmt: skip
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
                    typ = (f"{typ}:pre{first.type}" if not first.is_named
                           else f"{typ}:post{node.children[-1].type}")
                if raw in _STATEMENT_LISTS:  # a lone `;` is an EmptyStmt: no leaf, but a child
                    kids = [c for c in node.children
                            if c.is_named and c.type not in _COMMENTS or c.type == ";"]
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
                  and (raw not in _NEVER_LEAVES
                       or raw == "dimensions" and raws[par] in _DIMENSION_LEAF_PARENTS)):
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
