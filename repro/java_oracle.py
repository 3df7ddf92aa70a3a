"""Compare codemem's Java path extraction with JavaParser's own AST (an oracle, not a CI test).

    python repro/java_oracle.py [--files 400] [--step 7] [--jar /usr/share/java/javaparser-core.jar]

Needs a JDK (javac, java), JavaParser's jar (Debian: `apt-get install libjavaparser-java`, 3.16) and
a JDK src.zip (/usr/lib/jvm/*/lib/src.zip). It compiles repro/javaparser_oracle/PathShapes.java,
which rebuilds JavaParser 3.0.0-alpha.4's AST shape (the one code2vec/code2seq's extractor walks)
from 3.16's, and counts, per method with a body, the leaf pairs within the path limits by shape
(edges up, edges down, width). This script extracts the same methods with codemem's extractor and
compares, per method: the number of leaves, the number of contexts (all valid pairs, no sampling)
and the multiset of shapes (overlap = sum of per-shape minimum counts / larger total).

It also compares the path strings themselves: the oracle writes node names in a shared vocabulary
(JavaParser's class names) with child indices placed as the study's extractor places them (both end
leaves; going up, nodes whose parent is an AssignExpr, ArrayAccessExpr, FieldAccessExpr or
MethodCallExpr; going down, nodes that are one; the common node when its parent is one), and
`common_path` maps our tree-sitter labels onto that vocabulary.

Measured (temurin-25 src.zip, `--prefix "" --files 1000 --step 13`, methods <= 400 leaves): 8,615
methods; leaves equal 100%, contexts per method equal 8,614/8,615, shape multisets identical 99.98%,
path strings 99.998% of the oracle's 1,405,626 contexts. Before this mapping: contexts per method equal
13.1%, within 10% 32.8%, mean shape overlap 0.47.

The figures are a measurement, not a pass/fail gate; `--min-overlap` makes it one. CI never runs it.

JavaParser 3.16's AST is not 3.0.0-alpha.4's; PathShapes.java rebuilds alpha.4's shape (read from
alpha.4's sources and grammar): names are Strings except the NameExpr children of MethodDeclaration,
MethodCallExpr, FieldAccessExpr, annotations, class and constructor declarations (3.16: SimpleName
nodes everywhere); modifiers are no nodes (3.16: Modifier nodes); VariableDeclarationExpr and
FieldDeclaration hold the element type once and one ArrayBracketPair leaf per `[]` after the
variables (3.16: each VariableDeclarator holds its full type); Parameter lists its
VariableDeclaratorId before its type; ClassOrInterfaceDeclaration lists name, members, then type
parameters, extends, implements; C-style `a[]` hangs the `[]` on the VariableDeclaratorId (then no
leaf). Both parse `Foo::bar`'s scope as TypeExpr. 3.16 also accepts Java 9-14 syntax alpha.4 rejects:
methods with switch rules or expressions, yield, text blocks, patterns or `try (variable)` are
skipped (S lines).
Not rebuilt (rare): alpha.4's orphan comments as children and comments printed into leaf text,
ArrayCreationLevels sharing one range (so one child index), an empty statement as the body of
if/while/for, `int f()[]`.
"""

from __future__ import annotations

import argparse
import glob
import os
import statistics
import subprocess
import sys
import tempfile
import zipfile
from collections import Counter
from pathlib import Path

from codemem.methodname.java_ast import _Tree
from codemem.methodname.java_paths import JavaExtractor
from codemem.methodname.java_tokens import PathConfig

HERE = Path(__file__).resolve().parent


def our_shapes(ex: JavaExtractor, method, src: bytes) -> tuple[int, Counter]:
    t = _Tree(method, src)
    shapes: Counter = Counter()
    n = len(t.leaves)
    for p in ex._pairs(t):
        i, j, up = ex._decode(p, n)
        a, b = t.leaf_nodes[i], t.leaf_nodes[j]
        down = t.depth[b] - t.depth[a] + up
        for _ in range(up - 1):
            a = t.parent[a]
        for _ in range(down - 1):
            b = t.parent[b]
        shapes[(up, down, t.child_idx[b] - t.child_idx[a])] += 1
    return n, shapes


# tree-sitter node labels -> the shared vocabulary (JavaParser 3.0.0-alpha.4's class names, coarsened)
_VOCAB = {
    "method_declaration": "MethodDeclaration", "formal_parameter": "Parameter", "spread_parameter": "Parameter",
    "catch_formal_parameter": "Parameter", "catch_type": "UnionType", "type_identifier": "ClassOrInterfaceType",
    "generic_type": "ClassOrInterfaceType", "scoped_type_identifier": "ClassOrInterfaceType",
    "integral_type": "PrimitiveType", "floating_point_type": "PrimitiveType", "boolean_type": "PrimitiveType",
    "void_type": "VoidType", "array_type": "ArrayType", "wildcard": "WildcardType", "type_parameter": "TypeParameter",
    "block": "BlockStmt", "expression_statement": "ExpressionStmt", "local_variable_declaration": "VariableDeclarationExpr",
    "resource": "VariableDeclarationExpr", "variable_declarator": "VariableDeclarator", "field_declaration": "FieldDeclaration",
    "return_statement": "ReturnStmt", "if_statement": "IfStmt", "while_statement": "WhileStmt", "do_statement": "DoStmt",
    "for_statement": "ForStmt", "enhanced_for_statement": "ForeachStmt", "try_statement": "TryStmt",
    "try_with_resources_statement": "TryStmt", "catch_clause": "CatchClause", "throw_statement": "ThrowStmt",
    "switch_expression": "SwitchStmt", "switch_block_statement_group": "SwitchEntryStmt", "switch_rule": "SwitchEntryStmt",
    "break_statement": "BreakStmt", "continue_statement": "ContinueStmt", "labeled_statement": "LabeledStmt",
    "synchronized_statement": "SynchronizedStmt", "assert_statement": "AssertStmt", "yield_statement": "YieldStmt",
    "class_declaration_statement": "TypeDeclarationStmt", "class_declaration": "ClassOrInterfaceDeclaration",
    "constructor_declaration": "ConstructorDeclaration", "explicit_constructor_invocation": "ExplicitConstructorInvocationStmt",
    "assignment_expression": "AssignExpr", "binary_expression": "BinaryExpr", "unary_expression": "UnaryExpr",
    "update_expression": "UnaryExpr", "ternary_expression": "ConditionalExpr", "parenthesized_expression": "EnclosedExpr",
    "cast_expression": "CastExpr", "instanceof_expression": "InstanceOfExpr", "method_invocation": "MethodCallExpr",
    "field_access": "FieldAccessExpr", "array_access": "ArrayAccessExpr", "object_creation_expression": "ObjectCreationExpr",
    "array_creation_expression": "ArrayCreationExpr", "dimensions_expr": "ArrayCreationLevel",
    "array_initializer": "ArrayInitializerExpr", "element_value_array_initializer": "ArrayInitializerExpr",
    "lambda_expression": "LambdaExpr", "method_reference": "MethodReferenceExpr", "class_literal": "ClassExpr",
    "this": "ThisExpr", "super": "SuperExpr", "true": "BooleanLiteralExpr", "false": "BooleanLiteralExpr",
    "null_literal": "NullLiteralExpr", "decimal_integer_literal": "IntegerLiteralExpr", "hex_integer_literal": "IntegerLiteralExpr",
    "octal_integer_literal": "IntegerLiteralExpr", "binary_integer_literal": "IntegerLiteralExpr",
    "decimal_floating_point_literal": "DoubleLiteralExpr", "hex_floating_point_literal": "DoubleLiteralExpr",
    "character_literal": "CharLiteralExpr", "string_literal": "StringLiteralExpr", "text_block": "StringLiteralExpr",
    "marker_annotation": "MarkerAnnotationExpr", "annotation": "AnnotationExpr", "element_value_pair": "MemberValuePair",
    "scoped_identifier": "NameExpr", "type_expression": "TypeExpr", "variable_declarator_id": "VariableDeclaratorId",
    "empty_statement": "EmptyStmt",
}
_VDID_PARENTS = frozenset({"variable_declarator", "formal_parameter", "spread_parameter", "catch_formal_parameter"})


def _base(label: str) -> tuple[str, str]:
    """`assignment_expression:=0` -> (`assignment_expression`, `0`)."""
    stripped = label.rstrip("0123456789")
    return stripped.split(":")[0], label[len(stripped):]


def common_path(nodes: tuple[str, ...], up: int) -> str:
    """Our path in the oracle's vocabulary: `NameExpr0^AssignExpr_NameExpr1`."""
    out = []
    for k, label in enumerate(nodes):
        base, idx = _base(label)
        if base in ("identifier", "dimensions"):  # named by their parent (always next on the path)
            parent = _base(nodes[1] if k == 0 else nodes[k - 1])[0]
            if base == "identifier":
                # a declarator's name is its child 0 (its initializer may be a name too)
                vdid = parent in _VDID_PARENTS and (parent != "variable_declarator" or idx == "0")
                name = ("VariableDeclaratorId" if vdid else "ClassOrInterfaceType"
                        if parent in ("type_expression", "scoped_type_identifier") else "NameExpr")
            else:
                name = "ArrayCreationLevel" if parent == "array_creation_expression" else "ArrayBracketPair"
        else:
            name = _VOCAB.get(base, base)
        out.append(name + idx)
    return "^".join(out[: up + 1]) + "".join("_" + n for n in out[up + 1 :])


def run_oracle(jar: str, src_zip: str, entries: list[str], max_len: int, max_width: int) -> str:
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(["javac", "-d", tmp, "-cp", jar, str(HERE / "javaparser_oracle" / "PathShapes.java")], check=True)
        out = subprocess.run(["java", "-Xss1g", "-cp", f"{jar}{os.pathsep}{tmp}", "PathShapes", src_zip,
                              str(max_len), str(max_width)],
                             input="\n".join(entries) + "\n", capture_output=True, text=True, check=True)
        return out.stdout


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--jar", default="/usr/share/java/javaparser-core.jar")
    ap.add_argument("--src-zip", default=None)
    ap.add_argument("--prefix", default="java.base/", help="src.zip entries to sample from")
    ap.add_argument("--files", type=int, default=300)
    ap.add_argument("--step", type=int, default=11, help="take every step-th file")
    ap.add_argument("--max-leaves", type=int, default=400, help="skip larger methods (quadratic oracle)")
    ap.add_argument("--worst", type=int, default=8, help="print the most different methods")
    ap.add_argument("--min-overlap", type=float, default=None, help="exit 1 if the mean shape overlap is lower")
    args = ap.parse_args()
    zips = [args.src_zip] if args.src_zip else [p for p in sorted(glob.glob("/usr/lib/jvm/*/lib/src.zip")) if os.path.isfile(p)]
    if not zips or not os.path.isfile(args.jar):
        print("needs a JDK src.zip and JavaParser's jar (apt-get install libjavaparser-java)", file=sys.stderr)
        return 2
    with zipfile.ZipFile(zips[0]) as z:
        names = [n for n in z.namelist() if n.startswith(args.prefix) and n.endswith(".java")
                 and not n.endswith(("package-info.java", "module-info.java"))][:: args.step][: args.files]
        sources = {n: z.read(n) for n in names}
    config = PathConfig(max_contexts=10**9)
    oracle = run_oracle(args.jar, zips[0], names, config.max_path_length, config.max_path_width)

    ex = JavaExtractor(config)
    ours: dict[tuple[str, int, str], object] = {}
    method_index: dict[tuple[str, int, str], int] = {}
    for name, src in sources.items():
        for index, (method, _) in enumerate(ex._method_nodes(src)):
            key = (name, method.start_point[0] + 1, method.child_by_field_name("name").text.decode())
            ours[key] = method
            method_index[key] = index
    rows, unparsed, unmatched, modern = [], 0, 0, 0
    oracle_paths: dict[tuple[str, int, str], Counter] = {}
    for line in oracle.splitlines():
        f = line.split("\t")
        if f[0] == "P":
            oracle_paths[(f[1], int(f[2]), f[3])] = Counter({p: int(n) for p, _, n in (x.rpartition("=") for x in f[4:])})
    path_overlaps, path_totals, missing, extra = [], [0, 0, 0], Counter(), Counter()
    wanted: dict[str, set[int]] = {}  # extract each file once, only the methods compared
    for line in oracle.splitlines():
        f = line.split("\t")
        key = (f[1], int(f[2]), f[3]) if f[0] == "M" else None
        if key in method_index and 0 <= int(f[5]) and int(f[4]) <= args.max_leaves:
            wanted.setdefault(f[1], set()).add(method_index[key])
    extracted = {(entry, s.index): s for entry, ix in wanted.items()
                 for s in ex.extract(sources[entry], key=entry, seed=0, only=ix)}
    for line in oracle.splitlines():
        f = line.split("\t")
        if f[0] == "F":
            unparsed += 1
            continue
        if f[0] == "S":
            modern += 1
            continue
        if f[0] != "M":
            continue
        entry, lineno, mname, leaves, contexts = f[1], int(f[2]), f[3], int(f[4]), int(f[5])
        if contexts < 0 or leaves > args.max_leaves:
            continue
        method = ours.get((entry, lineno, mname))
        if method is None:
            unmatched += 1
            continue
        shapes = Counter()
        for item in filter(None, f[6].split(";")) if len(f) > 6 else []:
            k, v = item.split("=")
            shapes[tuple(map(int, k.split(":")))] = int(v)
        n, mine = our_shapes(ex, method, sources[entry])
        sample = extracted[(entry, method_index[(entry, lineno, mname)])]
        theirs = oracle_paths.get((entry, lineno, mname), Counter())
        ours_p = Counter(common_path(c.nodes, c.up) for c in sample.contexts)
        same = sum((theirs & ours_p).values())
        path_overlaps.append(same / max(sum(theirs.values()), sum(ours_p.values()), 1))
        path_totals[0] += same
        path_totals[1] += sum(theirs.values())
        path_totals[2] += sum(ours_p.values())
        missing.update(theirs - ours_p)
        extra.update(ours_p - theirs)
        total_o, total_m = sum(shapes.values()), sum(mine.values())
        overlap = sum((shapes & mine).values()) / max(total_o, total_m, 1)
        rows.append((entry, lineno, mname, leaves, n, total_o, total_m, overlap))

    if not rows:
        print("no methods compared", file=sys.stderr)
        return 2
    k = len(rows)
    rel = [abs(r[6] - r[5]) / max(r[5], 1) for r in rows]
    overlaps = [r[7] for r in rows]
    pct = lambda c: f"{c}/{k} ({100 * c / k:.2f}%)"
    print(f"files: {len(names)} sampled, {unparsed} JavaParser 3.16 cannot parse; methods compared: {k}"
          f" ({unmatched} unmatched by file/line/name, {modern} skipped: Java 9+ syntax that JavaParser 3.0.0-alpha.4 "
          "cannot parse)")
    print(f"leaves per method equal: {pct(sum(r[3] == r[4] for r in rows))}")
    print(f"contexts per method equal: {pct(sum(r[5] == r[6] for r in rows))}; within 10%: "
          f"{pct(sum(x <= 0.10 for x in rel))}; median |rel diff| {statistics.median(rel):.3f}; "
          f"totals oracle {sum(r[5] for r in rows)} ours {sum(r[6] for r in rows)}")
    print(f"shape multiset (up, down, width) overlap: mean {statistics.fmean(overlaps):.4f}, median "
          f"{statistics.median(overlaps):.3f}; identical {pct(sum(o == 1.0 for o in overlaps))}; "
          f">= 0.9: {pct(sum(o >= 0.9 for o in overlaps))}")
    print(f"path strings (shared vocabulary, child indices): {100 * path_totals[0] / max(path_totals[1], 1):.3f}% of the "
          f"oracle's {path_totals[1]} contexts found ({path_totals[2]} ours); per method overlap mean "
          f"{statistics.fmean(path_overlaps):.4f}, identical {pct(sum(o == 1.0 for o in path_overlaps))}")
    if args.worst:
        print("paths the oracle has and we lack / we have and the oracle lacks (most frequent):")
        for (p, n), (q, m) in zip(missing.most_common(args.worst), extra.most_common(args.worst)):
            print(f"  -{n:5d} {p}\n  +{m:5d} {q}")
        print("most different (file:line name  leaves oracle/ours  contexts oracle/ours  overlap):")
        for r in sorted(rows, key=lambda r: r[7])[: args.worst]:
            print(f"  {r[0]}:{r[1]} {r[2]}  {r[3]}/{r[4]}  {r[5]}/{r[6]}  {r[7]:.3f}")
    if args.min_overlap is not None and statistics.fmean(overlaps) < args.min_overlap:
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
