"""The Py150-Great format and the original sub-tokeniser (codemem.varmisuse.great_format)."""

import json
from pathlib import Path

import pytest

from codemem.varmisuse import great_format

FIXTURE = Path(__file__).parent / "fixtures" / "great" / "dev"


# ---- sub-tokeniser -----------------------------------------------------------------------------
@pytest.fixture
def tiny(tmp_path):
    """A hand-made vocabulary: line i is id i."""
    path = tmp_path / "vocab.txt"
    path.write_text("ab\nabc\nabcd#\ncd\nc\nx\nb#\n", encoding="utf-8")
    return great_format.GreatVocabulary(path)


@pytest.mark.parametrize("token, pieces, ids", [
    ("abcd", ["abcd#"], [3]),                # the token (+ end marker) is a vocabulary entry
    ("abce", ["abc", "e#"], [2, 0]),         # longest match, then an unknown piece -> PAD
    ("abc", ["ab", "c#"], [1, 0]),           # 'abc' would leave the end marker alone
    ("ab", ["a", "b#"], [0, 7]),             # same for 'ab': a single character instead
    ("xcd", ["x", "c", "d#"], [6, 5, 0]),    # several pieces; 'cd' again would strand '#'
    ("\u00e9", ["\u00e9#"], [0]),            # an unknown character
    ("", ["#"], [0]),
])
def test_greedy_rule_on_hand_computed_cases(tiny, token, pieces, ids):
    assert tiny.tokenize(token) == pieces
    assert tiny.encode(token) == ids


def test_shipped_vocabulary_loads_like_the_original():
    v = great_format.GreatVocabulary()
    assert v.size == 14_281 and v.w2i["<PAD>"] == great_format.PAD_ID == 0
    assert v.i2w[1] == "#" and v.w2i["self#"] == 199  # line i (1-based) is id i
    # The original rstrip()s each line and lets later duplicates win: "s " (line 8028) beats "s".
    assert v.w2i["s"] == 8028 and v.w2i["def"] == 272 and v.i2w[13] == "s"
    assert v.encode("self") == [199]
    assert v.encode("def __init__(") == [551]
    assert v.tokenize("numberOfWidgets") == ["number", "Of", "Widgets#"]
    assert v.tokenize("x\u2603y") == ["x", "\u2603", "y#"] and v.encode("x\u2603y") == [63, 0, 61]
    assert v.encode("zqxj", max_pieces=2) == v.encode("zqxj")[:2]


# ---- shards ----------------------------------------------------------------------------------
def test_reads_a_hand_made_shard_in_the_published_format():
    samples = list(great_format.read_shards(FIXTURE))
    assert samples == list(great_format.read_shards(next(FIXTURE.iterdir())))
    assert [s["has_bug"] for s in samples] == [False, True, True]
    clean, bug1, bug2 = samples
    assert clean["error_location"] == 0 and clean["repair_targets"] == []
    assert great_format.candidate_positions(clean) == [2, 11, 4, 13, 9, 16]
    assert "a" in clean["repair_candidates"]  # clean samples name their variables
    assert bug1["source_tokens"][bug1["error_location"]] == "a"
    assert [bug1["source_tokens"][i] for i in bug1["repair_targets"]] == ["b"]
    assert bug2["source_tokens"][bug2["error_location"]] == "b" and bug2["repair_targets"] == [9]
    for s in samples:
        for a, b, type_id, name in s["edges"]:
            assert great_format.EDGE_TYPES[name] == type_id and 0 < a and 0 < b
    # The loader doubles every edge: 2i forward, 2i+1 reversed (ICLR20-Great data_loader.py).
    edges = great_format.loader_edges(clean["edges"])
    assert len(edges) == 2 * len(clean["edges"])
    assert (2 * 6, 1, 3) in edges and (2 * 6 + 1, 3, 1) in edges  # FIELD is type 6 there
    assert max(t for t, _, _ in edges) < great_format.NUM_EDGE_SLOTS


def test_edge_type_ids_are_the_published_ones():
    assert great_format.EDGE_TYPES["enum_CFG_NEXT"] == 1 and great_format.EDGE_TYPES["enum_CALLS"] == 11
    assert list(great_format.EDGE_TYPES.values()) == list(range(1, 12))


def _line(sample):
    return json.dumps(sample) + "\n"


def test_malformed_line_names_file_and_line(tmp_path):
    good = next(great_format.read_shards(FIXTURE))
    shard = tmp_path / "train__VARIABLE_MISUSE__SStuB.txt-00000-of-00002"
    shard.write_text(_line(good) + "{not json\n")
    with pytest.raises(great_format.GreatFormatError, match=rf"{shard.name}:2: invalid JSON"):
        list(great_format.read_shards(tmp_path))

    bad = dict(good, edges=[[1, 2, 9]])
    shard.write_text(_line(good) + "\n" + _line(bad))  # blank lines are skipped, lines still count
    with pytest.raises(great_format.GreatFormatError, match=rf"{shard.name}:3: edge 0 must be"):
        list(great_format.read_shards(shard))


@pytest.mark.parametrize("change, message", [
    ({"has_bug": True, "repair_targets": []}, "at least one repair target"),
    ({"error_location": 99}, "error_location"),
    ({"edges": [[1, 2, 3, "enum_FIELD"]]}, "has type id 7"),
    ({"repair_candidates": [1.5]}, "repair_candidates"),
    ({"source_tokens": []}, "source_tokens"),
])
def test_validation_errors(change, message):
    sample = dict(next(great_format.read_shards(FIXTURE)), **change)
    with pytest.raises(great_format.GreatFormatError, match=message):
        great_format.validate_sample(sample, "x")
    missing = {k: v for k, v in sample.items() if k != "edges"}
    with pytest.raises(great_format.GreatFormatError, match="missing field"):
        great_format.validate_sample(missing)


def test_write_shard_roundtrip_and_atomicity(tmp_path):
    samples = list(great_format.read_shards(FIXTURE))
    out = tmp_path / "split" / "train.jsonl"
    assert great_format.write_shard(out, samples) == 3
    assert list(great_format.read_shards(out)) == samples
    assert sorted(p.name for p in out.parent.iterdir()) == ["train.jsonl"]  # no temp file left
    before = out.read_bytes()
    with pytest.raises(great_format.GreatFormatError, match="sample 1"):
        great_format.write_shard(out, [samples[0], dict(samples[1], has_bug="yes")])
    assert out.read_bytes() == before  # a failed write leaves the old file alone
    assert sorted(p.name for p in out.parent.iterdir()) == ["train.jsonl"]


def test_reads_the_readme_json_list_form(tmp_path):
    samples = list(great_format.read_shards(FIXTURE))
    (tmp_path / "eval__VARIABLE_MISUSE__SStuB.txt-00000-of-00001").write_text(json.dumps(samples))
    assert list(great_format.read_shards(tmp_path)) == samples
    with pytest.raises(FileNotFoundError):
        list(great_format.read_shards(tmp_path / "missing"))
