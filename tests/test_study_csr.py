"""The study's CSR variants (JavaTransformer `VariableRenaming`, re-extracted) and code2vec's
code-line rule (JavaExtractor `FunctionVisitor`, `MinCodeLength = 1`): codemem.methodname.renaming."""

import json

from codemem import metrics, storage
from codemem.methodname import renaming
from codemem.methodname.java_paths import JavaExtractor
from codemem.methodname.java_tokens import PathConfig

METHOD = b"""int get(int x, Foo o) {
    int y = x + this.x + o.x;  // x: a comment stays
    x();
    String s = "x";
    for (int var : xs) { y += var; }
    Runnable r = () -> helper(x);
    return y + x;
}"""


def method_of(src: bytes, ex: JavaExtractor | None = None):
    ex = ex or JavaExtractor()
    return ex._method_nodes(src)[0]


def test_renaming_by_hand_field_access_same_named_call_parameter_local():
    method, _ = method_of(renaming.wrapped(METHOD))
    targets = renaming.target_variables(method)
    assert targets == ["x", "o", "y", "s", "var", "r"]  # parameters and locals, in pre-order
    # "var" is taken by a declaration: JavaTransformer moves the one new name on to "var1"
    assert renaming.new_name(targets) == "var1"
    assert renaming.new_name(["a", "var1", "var"]) == "var1"  # (its one-pass check: var1 then collides)
    assert renaming.rename_method(method, "x", "var1") == b"""int get(int var1, Foo o) {
    int y = var1 + this.var1 + o.var1;  // x: a comment stays
    var1();
    String s = "x";
    for (int var : xs) { y += var; }
    Runnable r = () -> helper(var1);
    return y + var1;
}"""
    # a local: every occurrence, and only the identifier (`y` inside no other name)
    assert renaming.rename_method(method, "y", "var1").count(b"var1") == 3
    # the method's own name and a class's name stay, a constructor call's type does not
    m2, _ = method_of(renaming.wrapped(b"@get int get(get get) { class get {} return get.get(new get()); }"))
    assert renaming.rename_method(m2, "get", "v") == b"@get int get(v v) { class get {} return v.v(new v()); }"
    m3, _ = method_of(renaming.wrapped(b"void f(int var) { var x = var; g(this::var); }"))
    assert renaming.rename_method(m3, "var", "var1") == b"void f(int var1) { var x = var1; g(this::var); }"
    m4, _ = method_of(renaming.wrapped(b"void f(int Outer) { Outer.this.g(Outer); Outer.super.h(); }"))
    assert renaming.rename_method(m4, "Outer", "v") == b"void f(int v) { Outer.this.g(v); Outer.super.h(); }"


def test_one_variant_per_declaration_each_drawn_afresh():
    ex = JavaExtractor()
    method, _ = method_of(renaming.wrapped(b"void f() { for (int i = 0;;) {} for (int i : xs) {} }"), ex)
    assert renaming.target_variables(method) == ["i", "i"]
    first, second = renaming.study_variants(ex, method, key="k", seed=0, limit=200)
    assert first.leaves == second.leaves and "var" in first.leaves
    assert renaming.variant_key("k", "i", 1) != renaming.variant_key("k", "i", 0)


def test_variants_are_the_hand_renamed_method_extracted_again():
    ex = JavaExtractor(PathConfig(max_contexts=1000))
    src = renaming.wrapped(METHOD)
    method, _ = method_of(src, ex)
    variants = renaming.study_variants(ex, method, key="F.java:0", seed=3, limit=200)
    assert len(variants) == 6  # x o y s var r: "var" becomes var1, unlike var1 itself
    hand = METHOD.replace(b"x + this.x + o.x", b"var1 + this.var1 + o.var1").replace(b"(int x,", b"(int var1,")
    hand = hand.replace(b"x();", b"var1();").replace(b"helper(x)", b"helper(var1)").replace(b"y + x;", b"y + var1;")
    (again,) = ex.extract(renaming.wrapped(hand), key=renaming.variant_key("F.java:0", "x"), seed=3, limit=200)
    assert variants[0].c2v_contexts(200) == again.c2v_contexts(200)
    assert variants[0].c2s_contexts(200) == again.c2s_contexts(200)
    assert "var1" in variants[0].leaves and "x" not in variants[0].leaves


def test_a_long_method_gets_a_fresh_sample_of_contexts():
    body = "".join(f"int a{i} = b{i} + c{i} * d{i};\n" for i in range(40))
    src = renaming.wrapped(f"int run(int p) {{\n{body} return p; }}".encode())
    ex = JavaExtractor(PathConfig(max_contexts=1000))
    method, _ = method_of(src, ex)
    (original,) = ex.extract(src, key="k", seed=0, limit=200)
    variant = renaming.study_variants(ex, method, key="k", seed=0, limit=200)[0]  # p -> var
    assert len(original.contexts) == len(variant.contexts) == 200
    # Not the original's 200 contexts renamed: another draw from the method's thousands.
    renamed_original = {c.replace(",p,", ",var,") for c in original.c2v_contexts(200)}
    assert renamed_original != set(variant.c2v_contexts(200))


def test_code_line_flag_as_code2vec_counts_lines():
    src = renaming.wrapped(b"""int a() { }
    int b() {
        // only a comment
        /* and a block
         * comment */
    }
    int c() { return 1; }
    int d() { ; }
    int e() { /*
        return 1;
    */ }""")
    flags = [renaming.has_code_line(body) for _, body in JavaExtractor()._method_nodes(src)]
    assert flags == [False, False, True, True, True]


def _extract_tiny(tmp_path, files: dict[str, bytes]):
    """The split passes' worker (`_extract`) on hand-made files, all test, assembled into contexts.npz."""
    from codemem.methodname import java_corpora, npzstream

    java_corpora._init(PathConfig(max_contexts=1000), 0, 200, 1000, None)
    work = tmp_path / "work"
    out = {s: {k: b"" for k in java_corpora._OUTPUTS} for s in storage.METHODNAME_SPLITS}
    n = dict.fromkeys(storage.METHODNAME_SPLITS, 0)
    for split, (name, data) in zip(("train", "test", "test"), files.items()):
        _, _, _, k, lines = java_corpora._extract((name, data, split, None))
        n[split] += k
        for key, text in lines.items():
            out[split][key] += text
    names = {"c2v": "{}.c2v", "c2s": "{}.c2s", "methods": "methods.jsonl", "variants": "variants.jsonl",
             "renamings": "renamings.jsonl", "code_lines": "code_lines.txt"}  # fmt: skip
    for split in storage.METHODNAME_SPLITS:
        (work / split).mkdir(parents=True)
        for key, name in names.items():
            (work / split / name.format(split)).write_bytes(out[split][key])
        (work / split / "done.json").write_text(json.dumps({"samples": n[split]}))
    npzstream.assemble_in_memory(work, tmp_path / "contexts.npz", 200, 1000)
    return storage.load_samples(tmp_path)


def _ends(cs, rows) -> list[set]:
    """The terminals (source and target tokens) of each row's contexts."""
    return [set(cs.tokens[r[r[:, 0] >= 0][:, [0, 2]].ravel()].tolist()) for r in rows]


def test_csr_over_the_re_extracted_variants(tmp_path):
    files = {
        "T.java": b"class T { int get() { return 1; } void empty() { } }",
        "A.java": b"class A { int size(int n) { int total = n; return total; } }",
        "B.java": b"class B { String name() { return \"b\"; } }",  # no variable
    }
    samples = _extract_tiny(tmp_path, files)
    assert samples.code_line["train"].tolist() == [1, 0] and samples.code_line["test"].tolist() == [1, 1]
    for fmt in ("c2v", "c2s"):
        cs = samples.formats[fmt]
        ren = cs.renamings["test"]
        assert ren.owner.tolist() == [0, 0]  # size: n and total; name(): none
        (before,), (n_renamed, total_renamed) = _ends(cs, cs.contexts["test"][:1]), _ends(cs, ren.contexts)
        assert {"n", "total"} <= before and "var" not in before
        assert n_renamed == before - {"n"} | {"var"} and total_renamed == before - {"total"} | {"var"}
    # A toy model that reads the terminals: a variant is critical when it changes the prediction.
    cs = samples.formats["c2v"]
    predict = lambda rows: ["big" if "total" in ends else "small" for ends in _ends(cs, rows)]
    original, variants = predict(cs.contexts["test"]), predict(cs.renamings["test"].contexts)
    assert original == ["big", "small"]
    assert variants == ["big", "small"]  # n -> var keeps "total"; total -> var drops it
    assert metrics.critical_sample_ratio(original, variants, cs.renamings["test"].owner, 2) == (1.0, 1, 1)
