"""Tests for codemem.methodname.java_paths: code2vec/code2seq path extraction on tree-sitter."""

import dataclasses
import glob
import os
import random
import time
import zipfile
from itertools import islice

import pytest

from codemem.methodname.java_ast import _ast_children, _reshape, _Tree
from codemem.methodname.java_paths import JavaExtractor, shuffle
from codemem.methodname.java_tokens import (
    PathConfig,
    _c2s_token,
    _c2v_token,
    _path_hash,
    c2v_line,
    java_string_hash,
    normalize_terminal,
    split_subtokens,
)

EX = JavaExtractor()


def wrap(body: str) -> bytes:
    return ("class A {\n" + body + "\n}\n").encode()


def one(body: str, **kw) -> "object":
    (sample,) = EX.extract(wrap(body), key="t", seed=0, **kw)
    return sample


ALL = PathConfig(max_contexts=10**9)


def all_contexts(src: bytes, config: PathConfig = ALL):
    (sample,) = JavaExtractor(config).extract(src, key="t", seed=0)
    return sample, {(c.source, c.target): c for c in sample.contexts}


# ---------------------------------------------------------------- terminals, labels, hashes


def test_normalize_terminal():
    assert normalize_terminal("fileName") == "filename"
    assert normalize_terminal("42") == "42"
    assert normalize_terminal("3.14") == "3.14"
    assert normalize_terminal('""') == "BLANK"
    assert normalize_terminal('"\\n"') == "BLANK"  # escaped newline, then the quotes, go
    assert normalize_terminal('"日本"') == "BLANK"  # non-printable (non-ASCII) characters go
    assert normalize_terminal('"a b,c"') == "abc"
    assert normalize_terminal("'|'") == "|"
    assert normalize_terminal("x" * 80) == "x" * 50


def test_letterless_terminals_keep_spaces_as_underscores():
    # upstream's whitespace regex `//s+` is a no-op: only the no-letters fallback touches spaces
    assert normalize_terminal('" "') == "_"
    assert normalize_terminal('" : "') == "_:_"
    assert normalize_terminal("' '") == "_"
    assert normalize_terminal('"a b"') == "ab"
    assert normalize_terminal("\"\t\"") == "BLANK"  # a tab is no printable character: it goes
    s = one('String f() { return " + " + "a b"; }')
    assert [c.split(",")[2] for c in s.c2v_contexts(1000) if c.startswith("_+_,")] == ["ab"]
    assert "+" in {c.split(",")[0] for c in s.c2s_contexts(1000)}  # code2seq splits at whitespace first


def test_code2seq_maps_integer_literals_to_num():
    s = one("long f() { return 0 + 1 + 32 + 64 + 2 + 1_000 + 0x1F + 7L + 017 + 2.5 + 'c' + -3; }")
    c2s = {c.split(",")[0] for c in s.c2s_contexts(1000)} | {c.split(",")[2] for c in s.c2s_contexts(1000)}
    # digits split sub-tokens, so 2.5 reads `.`; hex and long literals keep their letters (upstream)
    assert {"0", "1", "32", "64", "<NUM>", "x|f", "l", ".", "c"} <= c2s
    assert not c2s & {"2", "1_000", "017", "3"}
    c2v = {c.split(",")[0] for c in s.c2v_contexts(1000)} | {c.split(",")[2] for c in s.c2v_contexts(1000)}
    assert {"2", "1_000", "017", "3"} <= c2v and "<NUM>" not in c2v  # code2vec keeps the numbers


def test_split_subtokens():
    assert split_subtokens("toString") == ["to", "string"]
    assert split_subtokens("getHTTPResponse2Code") == ["get", "http", "response", "code"]
    assert split_subtokens("IOException") == ["io", "exception"]
    assert split_subtokens("snake_case_NAME") == ["snake", "case", "name"]
    assert split_subtokens("x1y") == ["x", "y"]
    assert split_subtokens("__") == []


def test_java_string_hash_matches_java():
    # values printed by a real JVM (String.hashCode)
    assert java_string_hash("") == 0
    assert java_string_hash("hello") == 99162322
    assert java_string_hash("polygenelubricants") == -2147483648  # overflows to Integer.MIN_VALUE
    assert java_string_hash("caf\u00e9\U0001F600") == -1366064316  # UTF-16 surrogate pair


def test_path_hash_folds_to_the_whole_strings_hash():
    """The piece-by-piece hash equals String.hashCode of the whole path string, at every LCA position,
    with non-ASCII labels (UTF-16 lengths) and paths long enough to overflow 32 bits."""
    rng = random.Random(5)
    labels = ["identifier0", "method_invocation", "binary_expression:+", "block", "caf\u00e9", "x\U0001F600", "a"]
    for _ in range(300):
        nodes = tuple(rng.choice(labels) for _ in range(rng.randint(2, 9)))
        up = rng.randrange(len(nodes) - 1)
        whole = "(" + ")^(".join(nodes[: up + 1]) + ")" + "".join("_(" + n + ")" for n in nodes[up + 1 :])
        assert _path_hash(nodes, up) == java_string_hash(whole)


def test_c2v_line_padding():
    assert c2v_line("a|b", ["x,1,y", "z,2,w"], 4) == "a|b x,1,y z,2,w  "
    assert len(c2v_line("f", [], 200).split(" ")) == 201


# ---------------------------------------------------------------- which methods are samples


def test_methods_skip_abstract_interface_and_constructors():
    src = b"""
    abstract class A { A() { int x; } abstract int f(); int g() { return 1; } native void n(); }
    interface I { void h(); default int toString2() { return 2; } static void s() {} }
    """
    infos = EX.methods(src)
    assert [(m.index, m.name, m.label, m.line) for m in infos] == [
        (0, "g", "g", 2), (1, "toString2", "to|string", 3), (2, "s", "s", 3)]
    assert not any(m.has_error for m in infos)
    assert [s.name for s in EX.extract(src, key="k", seed=0, only=[1])] == ["toString2"]


def test_body_key_ignores_name_and_whitespace():
    src = wrap("int f() { return 1; }\nint g() {\n  return   1;\n}\nint h() { return 2; }")
    a, b, c = EX.methods(src)
    assert a.body_key == b.body_key != c.body_key
    unkeyed = EX.methods(src, body_keys=False)  # the Java corpora: no deduplication, no keys to compute
    assert [m.body_key for m in unkeyed] == ["", "", ""]
    assert [dataclasses.replace(m, body_key="") for m in (a, b, c)] == unkeyed


def test_nested_and_anonymous_methods_are_own_samples():
    src = wrap("""
    Runnable outer(int a) {
        return new Runnable() { public void run() { System.out.println(a); } };
    }
    static class N { int inner(int b) { return b; } }""")
    outer, run, inner = EX.extract(src, key="k", seed=0)
    assert (outer.name, run.name, inner.name) == ("outer", "run", "inner")
    # upstream visits every MethodDeclaration; the outer subtree still holds the anonymous class,
    # and (Common.isMethod) every declared method's name leaf reads METHOD_NAME
    assert outer.leaves.count("METHOD_NAME") == 2 and "println" in outer.leaves
    assert run.leaves.count("METHOD_NAME") == 1


def test_records_lambdas_generics():
    src = b"""
    record P(int x, int y) {
        P { if (x < 0) throw new IllegalArgumentException(); }
        <T extends Comparable<T>> T max(java.util.List<? extends T> xs) {
            return xs.stream().map(e -> e).reduce((u, v) -> u.compareTo(v) > 0 ? u : v).get();
        }
    }"""
    (s,) = EX.extract(src, key="k", seed=0)
    assert s.name == "max" and s.label == "max"
    assert list(s.variables) == ["xs", "e", "u", "v"]
    nodes = {n for c in s.contexts for n in c.nodes}
    assert "lambda_expression" in nodes and "generic_type" in nodes
    assert not nodes & {"type_arguments", "type_parameters", "formal_parameters", "argument_list", "inferred_parameters"}


def test_broken_file_does_not_crash():
    src = wrap("void ok() { int a = 1; }\nvoid broken( { int x = ; }\nint after() { return 3; }")
    infos = EX.methods(src)
    assert [m.name for m in infos if m.has_error] and not infos[0].has_error
    samples = EX.extract(src, key="k", seed=0)
    assert len(samples) == len(infos) and all(s.contexts for s in samples)


def test_max_file_bytes():
    assert JavaExtractor(PathConfig(max_file_bytes=10)).methods(wrap("int f() { return 1; }")) == []


# ---------------------------------------------------------------- leaves and paths


def test_leaves_method_name_and_recursive_call():
    s = one("int fact(int n) { return n <= 1 ? 1 : n * fact(n - 1); } // fact")
    # JavaParser's Parameter lists its name (VariableDeclaratorId) before its type
    assert s.leaves == ["int", "METHOD_NAME", "n", "int", "n", "1", "1", "n", "fact", "n", "1"]
    assert s.label == "fact" and s.line == 2
    src = wrap("int fact(int n) { return n <= 1 ? 1 : n * fact(n - 1); }")
    assert [src[a:b].decode() for a, b in s.leaf_spans][1:5] == ["fact", "n", "int", "n"]
    assert "METHOD_NAME" in {c.split(",")[0] for c in s.c2v_contexts(1000)}


def test_hand_checked_path_and_hash():
    s, ctx = all_contexts(wrap("int f(int a) { return a + 1; }"))
    assert s.leaves == ["int", "METHOD_NAME", "a", "int", "a", "1"]
    c = ctx[(2, 4)]  # parameter a -> a in `return a + 1`: 2 up, 4 down, width 1 (parameter 2 -> block 3)
    assert c.up == 2 and c.nodes == (
        "identifier0", "formal_parameter", "method_declaration",
        "block", "return_statement", "binary_expression:+", "identifier0")
    s.contexts = [c]
    # 2042729130 is what a JVM prints for the path string's hashCode()
    assert s.c2v_contexts() == ["a,2042729130,a"]
    path = "identifier0|formal_parameter|method_declaration|block|return_statement|binary_expression:+|identifier0"
    assert s.c2s_contexts(1) == [f"a,{path},a"]


def test_child_indices_tell_assignment_sides_apart():
    """FeatureExtractor: end leaves, and nodes under assignments, array accesses, field accesses and
    method calls, carry their child index, so `x = y` and `y = x` give different paths."""
    s, ctx = all_contexts(wrap("void f() { x = y; }"))
    assert s.leaves == ["void", "METHOD_NAME", "x", "y"]
    assert ctx[(2, 3)].nodes == ("identifier0", "assignment_expression:=", "identifier1")
    s.contexts = [ctx[(2, 3)]]
    assert s.c2v_contexts() == ["x,-1340485126,y"]  # hashCode() from a JVM
    _, swapped = all_contexts(wrap("void f() { y = x; }"))
    assert swapped[(2, 3)].nodes == ctx[(2, 3)].nodes  # the path is about positions, not names
    # up: a node gets its index when its *parent* is one of the four; down: when it *is* one (upstream)
    s, ctx = all_contexts(wrap("void f() { a[i] = o.g(k); }"))
    assert s.leaves == ["void", "METHOD_NAME", "a", "i", "o", "g", "k"]
    assert ctx[(2, 6)].nodes == ("identifier0", "array_access0", "assignment_expression:=",
                                 "method_invocation1", "identifier2")
    assert ctx[(3, 4)].nodes == ("identifier1", "array_access0", "assignment_expression:=",
                                 "method_invocation1", "identifier0")


def test_code2seq_caps_child_indices_at_3():
    s, ctx = all_contexts(wrap("void f() { m(a, b, c, d, e); }"))
    assert s.leaves[2:] == ["m", "a", "b", "c", "d", "e"]
    c = ctx[(6, 7)]  # d (child 4) -> e (child 5) of the call
    assert c.nodes == ("identifier4", "method_invocation", "identifier5")
    s.contexts = [c]
    assert s.c2s_contexts(1) == ["d,identifier3|method_invocation|identifier3,e"]
    assert s.c2v_contexts(1)[0].split(",")[1] == str(java_string_hash("(identifier4)^(method_invocation)_(identifier5)"))


def test_wrapper_levels_collapse_to_javaparser_shape():
    """tree-sitter's argument_list, formal_parameters, type_arguments, modifiers, a condition's
    parentheses... are no nodes in JavaParser's AST: they must not count in lengths and widths."""
    # a call's arguments are the call's children: `o.g(k)` -> [o, g, k], k two below the statement
    s, ctx = all_contexts(wrap("void f() { o.g(k); }"))
    assert ctx[(2, 4)].nodes == ("identifier0", "method_invocation", "identifier2")  # width 2, length 2
    # if (c) x;: the condition is IfStmt's child, no parenthesized_expression
    s, ctx = all_contexts(wrap("void f() { if (c) x(); }"))
    assert ctx[(2, 3)].nodes == ("identifier0", "if_statement", "expression_statement", "method_invocation0",
                                 "identifier0")  # going down, a call carries its own index (upstream)
    # a local variable declaration is an ExpressionStmt(VariableDeclarationExpr)
    s, ctx = all_contexts(wrap("void f() { int i = 0; }"))
    assert ctx[(2, 3)].nodes == ("integral_type0", "local_variable_declaration", "variable_declarator",
                                 "identifier0")
    assert ctx[(1, 2)].nodes[:5] == ("identifier1", "method_declaration", "block", "expression_statement",
                                     "local_variable_declaration")
    # generic types: the name is no leaf, the arguments are the type's children; `<>` makes a leaf
    s, _ = all_contexts(wrap("void f() { java.util.List<String> xs = new ArrayList<>(); }"))
    assert s.leaves == ["void", "METHOD_NAME", "java", "String", "xs", "ArrayList<>"]
    # method references: the name is a String, a type scope a TypeExpr; lambdas: Parameter, ExpressionStmt body
    s, ctx = all_contexts(wrap("void f() { g(a.B::c, x -> x); }"))
    assert s.leaves == ["void", "METHOD_NAME", "g", "a", "x", "x"]
    assert ctx[(3, 4)].nodes == ("identifier0", "scoped_type_identifier", "type_expression", "method_reference1",
                                 "method_invocation", "lambda_expression", "formal_parameter", "identifier0")
    assert ctx[(4, 5)].nodes == ("identifier0", "formal_parameter", "lambda_expression2", "expression_statement",
                                 "identifier0")
    s, ctx = all_contexts(wrap("Runnable f() { return () -> x; }"))  # no parameter: x is the body
    assert ctx[(1, 2)].nodes[-3:] == ("lambda_expression", "expression_statement", "identifier0")
    # declarations keep the element type; `[]` is a leaf after the parameter's type / the variables
    s, _ = all_contexts(wrap("int[] f(byte[] b) { char[] c, d; }"))
    assert s.leaves == ["int", "METHOD_NAME", "b", "byte", "[]", "[]", "char", "c", "d", "[]"]


def test_length_limit():
    # METHOD_NAME -> x: 1 up, then block, return, k parentheses, identifier down
    _, ctx = all_contexts(wrap("int f() { return ((((x)))); }"))  # length 8: kept
    assert len(ctx[(1, 2)].nodes) == 9
    _, ctx = all_contexts(wrap("int f() { return (((((x))))); }"))  # length 9: dropped
    assert (1, 2) not in ctx


def test_width_limit():
    # `int` (child 0) and `x` under the body (child 3) of method_declaration: width 3
    src = wrap("int f(int a) { return x; }")
    _, ctx = all_contexts(src)
    assert (0, 4) not in ctx and (0, 2) in ctx
    _, ctx = all_contexts(src, PathConfig(max_path_width=3, max_contexts=10**9))
    assert (0, 4) in ctx
    # with tree-sitter's formal_parameters level, `int f() { return x; }` had width 3 from `int` to `x`
    # (the empty `()` was child 2); JavaParser has no such node: width 2, kept
    _, ctx = all_contexts(wrap("int f() { return x; }"))
    assert set(ctx) == {(0, 1), (0, 2), (1, 2)}


def test_operator_labels_and_atomic_literals():
    s, _ = all_contexts(wrap('void f(int a) { a += -a; a++; --a; String s = "x\\ny" + \'c\'; }'))
    labels = {n for c in s.contexts for n in c.nodes}
    assert {"assignment_expression:+=", "unary_expression:-", "update_expression:post++",
            "update_expression:pre--", "binary_expression:+"} <= labels
    assert '"x\\ny"' in s.leaves and "'c'" in s.leaves and "string_fragment" not in labels


def test_deep_string_concatenation():
    body = "String f() { return " + " + ".join(f'"s{i}"' for i in range(5000)) + "; }"
    start = time.perf_counter()
    s = one(body)
    assert time.perf_counter() - start < 5
    assert len(s.leaves) == 5002 and len(s.contexts) == 1000


def test_pairs_match_brute_force_on_jdk():
    """The pruned pair walk finds exactly the pairs (and LCAs) an O(L^2) LCA scan accepts."""
    src = jdk_sources(40)
    ex, checked = JavaExtractor(), 0
    for _, data in src:
        for method, _ in ex._method_nodes(data):
            t = _Tree(method, data)
            if not 2 <= len(t.leaves) <= 150:
                continue
            got = {ex._decode(p, len(t.leaves)) for p in ex._pairs(t)}
            assert got == brute_force_pairs(t), method.child_by_field_name("name").text
            checked += 1
    assert checked > 50


def brute_force_pairs(t, max_len=8, max_width=2):
    def stack(v):
        out = []
        while v >= 0:
            out.append(v)
            v = t.parent[v]
        return out[::-1]  # root first
    stacks = [stack(v) for v in t.leaf_nodes]
    found = set()
    for i, a in enumerate(stacks):
        for j in range(i + 1, len(stacks)):
            b, k = stacks[j], 0
            while a[k] == b[k]:
                k += 1
            if len(a) + len(b) - 2 * k <= max_len and t.child_idx[b[k]] - t.child_idx[a[k]] <= max_width:
                found.add((i, j, len(a) - k))  # (source, target, edges up)
    return found


# ---------------------------------------------------------------- sampling


def test_sampling_deterministic_and_seeded():
    body = "int f(int a, int b) { int c = a * b + a - b; for (int i = 0; i < c; i++) { c += i * a; } return c; }"
    a, b, c = one(body), one(body), EX.extract(wrap(body), key="t", seed=1)[0]
    assert a.contexts == b.contexts
    assert sorted(a.contexts, key=repr) == sorted(c.contexts, key=repr)  # all pairs either way
    assert a.contexts != c.contexts  # in another order
    capped = JavaExtractor(PathConfig(max_contexts=20)).extract(wrap(body), key="t", seed=0)[0]
    assert capped.contexts == a.contexts[:20]
    assert len(a.c2v_contexts(200)) == min(200, len(a.contexts))


@pytest.mark.parametrize("n", [0, 1, 2, 3, 4, 5, 7, 8, 9, 255, 256, 257, 1000, 70_001])
def test_our_shuffle_is_pythons(n):
    """The samples were drawn with random.Random.shuffle: ours must give the same order and leave the
    generator in the same state, at every size around a power of two."""
    for seed in ("0:a.java:3", "7:b.java:0"):
        ours, theirs = list(range(n)), list(range(n))
        rng_ours, rng_theirs = random.Random(seed), random.Random(seed)
        shuffle(ours, rng_ours)
        rng_theirs.shuffle(theirs)
        assert ours == theirs and rng_ours.getstate() == rng_theirs.getstate()


# ---------------------------------------------------------------- variables and renaming


def test_variables():
    s = one("""
    int f(int x, String... rest) {
        this.x = x; int total = 0, y = 1;
        for (int i = 0; i < 3; i++) total += i;
        for (String r : rest) total += r.length();
        try (var in = open()) { total++; } catch (Exception ex) { throw ex; }
        java.util.function.BiFunction<Integer, Integer, Integer> add = (p, q) -> p + q;
        Runnable run = () -> this.y();
        if (rest instanceof Object o && o != null) total += y;
        outer: while (true) break outer;
        return add.apply(total, x);
    }""")
    by_name = {name: [s.leaves[i] for i in ix] for name, ix in s.variables.items()}
    assert list(s.variables) == ["x", "rest", "total", "y", "i", "r", "in", "ex", "add", "p", "q", "run", "o"]
    assert len(s.variables["x"]) == 3  # declaration, `= x`, apply(.., x): not `this.x`
    assert len(s.variables["y"]) == 2  # not the method `this.y()`
    assert all(set(texts) == {name} for name, texts in by_name.items())
    assert "outer" not in s.variables and "open" not in s.variables


def test_fresh_name_and_renamed():
    body = "int f(int var1, int b) { int var2 = var1 + b; return var2 * b; }"
    s = one(body)
    assert s.fresh_name() == "var3"
    r = s.renamed("b", "var3")
    assert [r.leaves[i] for i in r.variables["var3"]] == ["var3"] * 3
    assert list(r.variables) == ["var1", "var3", "var2"] and "b" not in r.leaves
    assert r.contexts == s.contexts and r.c2v_contexts() != s.c2v_contexts()
    src = wrap(body)
    again = EX.extract(EX.rename_source(src, s, "b", "var3"), key="t", seed=0)[0]
    assert (again.leaves, again.leaf_spans, again.variables) == (r.leaves, r.leaf_spans, r.variables)
    assert again.c2v_contexts() == r.c2v_contexts()


def variants_by_reformatting(s, limit: int, fmt: str):
    """The definition: format the renamed method and compare each context's two terminals."""
    contexts = getattr(s, f"{fmt}_contexts")
    before, fresh, out = contexts(limit), s.fresh_name(), []
    for v in s.variables:
        after = getattr(s.renamed(v, fresh), f"{fmt}_contexts")(limit)
        ends = [(a.split(",")[0::2], b.split(",")[0::2]) for a, b in zip(before, after)]
        changed = [(k, side) for k, (a, b) in enumerate(ends) for side in (0, 1) if a[side] != b[side]]
        out.append((after[changed[0][0]].split(",")[0::2][changed[0][1]] if changed else fresh, changed))
    return out


def test_variants_are_what_reformatting_the_renamed_method_gives():
    # `var` normalizes like the fresh `var2` (digits split off): its renaming changes no terminal.
    body = ("int f(int count, int b, int var, int var1) { int total = count * b + var; "
            "for (int i = 0; i < count; i++) total += i * var1; return total; }")
    s = one(body)
    assert s.fresh_name() == "var2" and len(s.variables) == 6
    for fmt, token in (("c2v", _c2v_token), ("c2s", _c2s_token)):
        for limit in (3, 200):
            assert s.variants(limit, token) == variants_by_reformatting(s, limit, fmt), (fmt, limit)
    by_name = dict(zip(s.variables, s.variants(200, _c2v_token)))
    assert by_name["var"] == ("var2", []) and by_name["count"][0] == "var" and by_name["count"][1]


# ---------------------------------------------------------------- real JDK methods


def jdk_sources(n_files: int, step: int = 37) -> list[tuple[str, bytes]]:
    """Every `step`-th .java file of the first existing JDK src.zip (spread over packages)."""
    zips = [p for p in sorted(glob.glob("/usr/lib/jvm/*/lib/src.zip")) if os.path.isfile(p)]
    if not zips:
        pytest.skip("no JDK src.zip under /usr/lib/jvm/*/lib/ (install a JDK with sources)")
    with zipfile.ZipFile(zips[0]) as z:
        names = [n for n in z.namelist() if n.endswith(".java")][::step]
        return [(n, z.read(n)) for n in names[:n_files]]


def test_children_skipped_by_the_fast_path_need_no_reshaping_on_jdk():
    """`_ast_children` returns a node's children untouched unless its type or a child's type is one
    `_reshape` handles; on real code, reshaping the untouched ones would not have changed them."""
    key = lambda nodes: [(n.type, n.start_byte, n.end_byte) for n in nodes]
    checked = 0
    for _, src in jdk_sources(60):
        stack = [EX._parser.parse(src).root_node]
        while stack:
            node = stack.pop()
            kids = [c for c in node.named_children if c.type not in ("line_comment", "block_comment")]
            stack.extend(kids)
            if kids and _ast_children(node, node.type, kids) is kids:
                assert key(_reshape(node, node.type, list(kids))) == key(kids), (node.type, key(kids))
                checked += 1
    assert checked > 10_000


def test_csr_rename_is_faithful_on_jdk():
    """Renaming a variable in the source and re-extracting equals MethodSample.renamed."""
    ex, methods_checked, renames = JavaExtractor(), 0, 0
    for name, src in jdk_sources(200):
        for s in islice((s for s in ex.extract(src, key=name, seed=3) if s.variables), 2):
            for v in s.variables:
                new = s.fresh_name()
                expected = s.renamed(v, new)
                (got,) = ex.extract(ex.rename_source(src, s, v, new), key=name, seed=3, only=[s.index])
                assert got.c2v_contexts(200) == expected.c2v_contexts(200), (name, s.name, v)
                assert got.c2s_contexts(1000) == expected.c2s_contexts(1000), (name, s.name, v)
                assert got.variables == expected.variables, (name, s.name, v)
                renames += 1
            methods_checked += 1
            if methods_checked == 30:
                assert renames >= 60
                return
    pytest.fail(f"only {methods_checked} JDK methods with variables found")
