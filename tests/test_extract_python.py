"""The stdlib-great samples (codemem.varmisuse.python_samples): tokens, edges, bug injection (the corpus: test_python_corpus)."""

import random
import sysconfig
import textwrap
from pathlib import Path

import pytest

from codemem.varmisuse import great_format
from codemem.varmisuse import python_samples as P

STDLIB = Path(sysconfig.get_paths()["stdlib"])


def graph(src: str, name: str | None = None) -> P.FunctionGraph:
    tree = P._parser().parse(textwrap.dedent(src).encode())
    fns = P._functions(tree.root_node)
    return P.FunctionGraph(next(fn for fn, q in fns if name in (None, q)))


def at(tokens, text, k=0):
    """Position of the k-th token spelled `text`."""
    return [i for i, t in enumerate(tokens) if t == text][k]


def edges(g, kind, tokens=None):
    tokens = tokens or g.tokens
    sample = g.sample(tokens)
    return {(a, b) for a, b, _, name in sample["edges"] if name == f"enum_{kind}"}


# ---- tokens ------------------------------------------------------------------------------------
def test_tokens_follow_the_published_data():
    g = graph('''
        @dec
        def f(self, x):
            """Doc."""
            if x is not None and x not in self.seen:  # comment
                y = x; return y
            return 'no' "pe"
    ''')
    assert g.tokens == [
        "#NEWLINE#", "@", "dec", "#NEWLINE#", "def f(", "self", ",", "x", ")", ":", "#NEWLINE#",
        "#INDENT#", '"""Doc."""', "#NEWLINE#", "if", "x", "is not", "None", "and", "x", "not in",
        "self", ".", "seen", ":", "#NEWLINE#", "#INDENT#", "y", "=", "x", "#NEWLINE#", "return", "y",
        "#NEWLINE#", "#UNINDENT#", "return", "'no'", '"pe"']
    assert g.variables == ["self", "x", "y"]


# ---- edges -------------------------------------------------------------------------------------
LOOP = '''
    def walk(items, limit):
        total = 0
        for item in items:
            if item > limit:
                break
            total = total + item
        else:
            total = -1
        return total
'''


def test_syntax_edges():
    g = graph(LOOP)
    t, n = g.tokens, len(g.tokens)
    assert edges(g, "NEXT_SYNTAX") == {(i, i + 1) for i in range(1, n - 1)}
    assert all(0 not in e for e in g.sample(t)["edges"])  # position 0 is the "no bug" pointer
    eq = at(t, "=")
    assert {(eq, eq - 1), (eq, eq + 1)} <= edges(g, "FIELD")            # '=' -> target, value
    assert (at(t, "if"), at(t, ">")) in edges(g, "FIELD")              # if -> condition
    assert {(at(t, "for"), at(t, "item")), (at(t, "for"), at(t, "items", 1))} <= edges(g, "FIELD")
    assert (at(t, ">"), at(t, "item", 1)) not in edges(g, "FIELD")     # no field name there
    assert {(at(t, "for"), at(t, "in")), (at(t, "for"), at(t, ":", 1))} <= edges(g, "SYNTAX")
    assert (1, at(t, ":")) in edges(g, "SYNTAX")                        # header -> its ':'


def test_control_flow_edges():
    g = graph(LOOP)
    t = g.tokens
    eq = [i for i, x in enumerate(t) if x == "="]
    fr, iff, brk, ret = at(t, "for"), at(t, "if"), at(t, "break"), at(t, "return")
    assert edges(g, "CFG_NEXT") == {
        (at(t, ","), eq[0]), (eq[0], fr), (fr, iff), (iff, brk), (iff, eq[1]),
        (eq[1], fr),                      # the loop body goes back to its header
        (fr, eq[2]), (eq[2], ret),        # for-else, then return
        (brk, ret)}                       # break skips the else clause


def test_data_flow_edges():
    g = graph(LOOP)
    t = g.tokens
    total = [i for i, x in enumerate(t) if x == "total"]  # w, w, r, w (else), r (return)
    item = [i for i, x in enumerate(t) if x == "item"]    # w (for), r (if), r (sum)
    writes, reads = edges(g, "LAST_WRITE"), edges(g, "LAST_READ")
    assert {(total[2], total[0]), (total[2], total[1])} <= writes       # loop-carried
    assert {b for a, b in writes if a == total[4]} == {total[0], total[1], total[3]}
    assert {b for a, b in writes if a == item[1]} == {item[0]}
    assert {b for a, b in reads if a == item[2]} == {item[1]}
    assert {b for a, b in reads if a == item[0]} == {item[2]}           # previous iteration
    assert (at(t, "limit", 1), at(t, "limit")) in writes               # parameter write
    assert edges(g, "COMPUTED_FROM") == {(total[1], total[2]), (total[1], item[2])}
    lexical = edges(g, "LAST_LEXICAL_USE")
    assert (total[2], total[1]) in lexical and (item[2], item[1]) in lexical
    assert len(lexical) == 1 + 1 + 4 + 2  # each later occurrence of items, limit, total, item


def test_call_edges():
    g = graph('''
        def fact(n, *rest, **kw):
            def helper(m):
                return m
            if n:
                return n * fact(n - 1, 1, key=2)
            return helper(n)
    ''', "fact")
    t = g.tokens
    call_fact, call_helper = at(t, "(", 1), at(t, "(", 2)
    assert edges(g, "CALLS") == {(call_fact, 1), (call_helper, at(t, "def"))}
    assert edges(g, "RETURNS_TO") == {(at(t, "return", 0), call_helper), (at(t, "return", 1), call_fact),
                                      (at(t, "return", 2), call_fact)}
    params = at(t, ",")  # the parameter list stands on its first ','
    assert edges(g, "FORMAL_ARG_NAME") == {
        (at(t, "-"), at(t, "n")), (at(t, "1", 1), params), (at(t, "2"), params),  # *rest, **kw
        (at(t, "n", 4), at(t, "m"))}
    assert "helper" in g.variables and "m" not in g.variables  # m belongs to helper's scope


def test_scopes_and_name_roles():
    g = graph('''
        def f(a, b):
            global g
            g = a
            obj.attr = b
            h = lambda a: a + b
            call(key=a)
            a += 1
            return [x for x in b if x], h
    ''')
    t = g.tokens
    assert g.variables == ["a", "b", "h", "x"]           # g is global, attr/key are not names
    assert at(t, "a", 1) in g.sites and at(t, "a", 5) not in g.sites  # `a += 1` also writes
    assert all(at(t, "a", k) not in g.sites for k in (2, 3))         # lambda scope
    lexical = edges(g, "LAST_LEXICAL_USE")
    assert (at(t, "a", 3), at(t, "a", 2)) in lexical                  # lexical: across scopes
    assert all(a != at(t, "a", 3) for a, _ in edges(g, "LAST_WRITE"))  # data flow: not in lambda


# ---- bug injection -----------------------------------------------------------------------------
SOURCE = b'''
def f(a, b):
    c = a + b
    d = c * a
    return d - b

def g(self):
    return self.x
'''


def test_bug_injection():
    samples = P.function_samples(SOURCE, "m.py", random.Random(0))
    clean, *buggy = samples
    assert len(buggy) == 3 and not clean["has_bug"] and all(s["has_bug"] for s in buggy)
    assert clean["error_location"] == 0 and clean["repair_targets"] == []
    assert {c for c in clean["repair_candidates"] if isinstance(c, str)} == {"a", "b", "c", "d"}
    g = graph(SOURCE.decode(), "f")
    assert g.tokens == clean["source_tokens"]
    assert len({s["error_location"] for s in buggy}) == 3  # three different uses
    for s in buggy:
        loc, tokens = s["error_location"], s["source_tokens"]
        original = g.tokens[loc]
        assert loc in g.sites                                    # a read of a local/parameter
        assert tokens[loc] in g.variables and tokens[loc] != original
        assert [i for i, x in enumerate(tokens) if x != g.tokens[i]] == [loc]  # one change only
        assert s["repair_targets"] == [i for i, x in enumerate(tokens) if x == original]
        assert loc in s["repair_candidates"] and all(isinstance(c, int) for c in s["repair_candidates"])
        assert s["provenances"][0]["datasetProvenance"]["functionName"] == "f"
        great_format.validate_sample(s)
    # The edges are those of the buggy program: the replaced use reads another variable now.
    s = buggy[0]
    loc = s["error_location"]
    assert s["edges"] == g.sample(s["source_tokens"], loc, g.tokens[loc])["edges"]
    assert s["edges"] != g.sample(g.tokens)["edges"]


def test_determinism_with_a_seed():
    source = (STDLIB / "textwrap.py").read_bytes()
    one = P.function_samples(source, "textwrap.py", random.Random(1))
    assert one == P.function_samples(source, "textwrap.py", random.Random(1))
    assert one != P.function_samples(source, "textwrap.py", random.Random(2))
    assert P.function_samples(b"def f(:\n", "x.py", random.Random(1)) == []


def test_config_and_version():
    with pytest.raises(ValueError, match="split"):
        P.StdlibGreatConfig(split=(0.5, 0.5, 0.5))
    with pytest.raises(ValueError, match="max_file_bytes"):
        P.StdlibGreatConfig(max_file_bytes=0)
