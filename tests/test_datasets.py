"""The study's datasets end to end through fetch and extract, served by a local HTTP server from
look-alike archives (real JDK sources in the published layout) and look-alike GREAT shards."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from lookalike import Server, java_archive

from codemem import datasets, extract, fetch, remote, storage
from codemem.params import from_dict
from codemem.varmisuse import bug_datasets


@pytest.fixture
def workdir(tmp_path, monkeypatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture(scope="session")
def small_archive(jdk_src_zip, tmp_path_factory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("lookalike") / "java-small.tar.gz"
    return out, java_archive(jdk_src_zip, out)


def params(dataset: str, url: str = "", **extract):
    return from_dict({"dataset": dataset, "fetch": {"url": url, "retries": 1, "timeout": 5},
                      "extract": {"workers": 2, "max_contexts": 20, "max_contexts_stored": 40, **extract}})


def test_java_small_downloads_verifies_and_extracts_by_folder(workdir, small_archive):
    archive, members = small_archive
    with Server() as server:
        server.files["/java-small.tar.gz"] = archive.read_bytes()
        server.cut["/java-small.tar.gz"] = 5000  # the first transfer is cut: fetch resumes it
        p = params("java-small", server.url)
        manifest = fetch.run(p)
        assert [r for _, r in server.requests] == [None, "bytes=5000-"]
    assert (workdir / "data/java-small.tar.gz").read_bytes() == archive.read_bytes()
    recorded = json.loads((workdir / "data.checksums.json").read_text())["java-small.tar.gz"]
    assert recorded["sha256"] == manifest["source_sha256"] == storage.sha256_file(archive)
    assert recorded["url"] == f"{server.url}/java-small.tar.gz"

    report = extract.run(p)
    assert report["files"] == sum(members.values()) and report["samples_train"] > report["samples_test"] > 0
    full = json.loads((workdir / "build/samples/report.json").read_text())
    assert {s: full["splits"][s]["projects"] for s in storage.METHODNAME_SPLITS} == {"train": 2, "val": 1, "test": 1}
    methods = [json.loads(line) for line in (workdir / "build/samples/methods.jsonl").read_text().splitlines()]
    folder = {"train": "/training/", "val": "/validation/", "test": "/test/"}
    assert all(folder[m["split"]] in m["file"] for m in methods)  # splits are the archive's folders
    assert len(methods) == report["samples_train"] + report["samples_val"] + report["samples_test"]
    assert len({m["label"] for m in methods}) > 50  # every method name, not a top-k
    samples = storage.load_samples(workdir / "build/samples")
    assert samples.formats["c2v"].contexts["train"].shape == (report["samples_train"], 20, 3)
    assert samples.formats["c2s"].contexts["train"].shape == (report["samples_train"], 40, 3)
    assert samples.formats["c2s"].contexts["test"].shape[1] == 20
    c2v = samples.formats["c2v"]
    first = (workdir / "build/samples/train.c2v").read_text().split("\n", 1)[0].split(" ")
    a, path, _ = first[1].split(",")
    assert (c2v.tokens[c2v.contexts["train"][0, 0, 0]], c2v.paths[c2v.contexts["train"][0, 0, 1]]) == (a, path)
    assert samples.labels[samples.split_labels["train"][0]] == first[0]
    assert len(c2v.variants["test"].owner) > 0 and c2v.variants["test"].owner.max() < report["samples_test"]
    # the study's renamings, re-extracted (streamed assembly), and code2vec's code-line flags
    ren = c2v.renamings["test"]
    assert len(ren.owner) > 0 and ren.owner.max() < report["samples_test"] and ren.contexts.shape[1:] == (20, 3)
    assert (ren.contexts[..., 1] < len(c2v.paths)).all() and samples.code_line["train"].shape == (report["samples_train"],)

    # Tampered bytes in data/ are caught against data.checksums.json and never used.
    blob = bytearray((workdir / "data/java-small.tar.gz").read_bytes())
    blob[len(blob) // 2] ^= 0xFF
    (workdir / "data/java-small.tar.gz").write_bytes(bytes(blob))
    with pytest.raises(remote.RemoteError, match=r"sha256 .* \(recorded in data.checksums.json\)"):
        fetch.run(p)
    assert not (workdir / "data/java-small.tar.gz").exists()


def test_a_killed_extraction_restarts_only_the_unfinished_split(workdir, small_archive, monkeypatch):
    archive, _ = small_archive
    p = from_dict({"dataset": "java-small", "fetch": {"source": str(archive)}, "extract": {"workers": 1,
                   "max_contexts": 10, "max_contexts_stored": 10}})  # fmt: skip
    fetch.run(p)  # a local copy through fetch.source: verified and copied into data/
    from codemem.methodname import java_corpora

    real, passes = java_corpora._split_pass, []

    def dies_on_test(pool, source, layout, limits, splits, *rest):
        passes.append(splits)
        if "test" in splits:
            raise KeyboardInterrupt  # what a Ctrl-C in the middle of the last split looks like
        return real(pool, source, layout, limits, splits, *rest)

    monkeypatch.setattr(java_corpora, "_split_pass", dies_on_test)
    with pytest.raises(KeyboardInterrupt):
        extract.run(p)
    assert not Path("build/samples").exists()  # nothing half-written where the next stage reads
    done = sorted(d.parent.name for d in Path("build/extract-work").rglob("done.json"))
    assert done == ["train", "val"] and passes == [("train",), ("val",), ("test",)]
    monkeypatch.setattr(java_corpora, "_split_pass", real)
    real_pipelined, parsed = java_corpora._pipelined, []
    monkeypatch.setattr(java_corpora, "_pipelined", lambda pool, fn, items: parsed.append(1) or real_pipelined(pool, fn, items))
    report = extract.run(p)
    assert len(parsed) == 1 and report["samples_test"] > 0  # only the test split was parsed again
    assert not [d for d in Path("build/extract-work").iterdir() if d.is_dir()]  # the work is cleared when done
    assert json.loads(Path("build/extract-work/timing.json").read_text())["test"]["samples"] == report["samples_test"]
    log = json.loads(Path("build/samples/report.json").read_text())
    assert log["splits"]["train"]["samples"] == report["samples_train"]


def test_java_top10_keeps_ten_names_samples_training_and_keeps_all_held_out(workdir, jdk_src_zip, tmp_path, monkeypatch):
    layout = {"training": {"a": ["java.base/java/util/A", "java.base/java/util/Hash"], "b": ["java.base/java/lang/S"]},
              "validation": {"c": ["java.base/java/io/File"]},
              "test": {"d": ["java.base/java/net/Inet", "java.base/java/net/URI", "java.base/java/lang/Thread"]}}
    archive = tmp_path / "java-large.tar.gz"
    java_archive(jdk_src_zip, archive, root="java-large", layout=layout)
    with Server() as server:
        server.files["/java-large.tar.gz"] = archive.read_bytes()
        p = params("java-top10", server.url, per_name=15)
        fetch.run(p)
    from codemem.methodname import java_corpora

    streams, real_members = [], java_corpora._members
    monkeypatch.setattr(java_corpora, "_members", lambda *a: streams.append(1) or real_members(*a))
    report = extract.run(p)
    assert len(streams) == 2  # the name scan, then one pass for the chosen methods of all three splits
    full = json.loads(Path("build/samples/report.json").read_text())
    names = full["names"]
    assert set(names["train"]) <= set(datasets.TOP10_LABELS) and {"equals", "hash|code", "to|string"} <= set(names["train"])
    assert max(names["train"].values()) == 15  # sampled down to per_name
    assert sum(names["test"].values()) == report["samples_test"] > 15  # every matching held-out method
    assert full["scan_files_prefiltered"] > 0  # files without any of the names were never parsed
    again = extract.run(p)  # seeded: the same sample again
    assert again == report


@pytest.mark.parametrize(("text", "found"), [
    (b"class A { public void run() {} }", True),  # a declaration
    (b"class A { int x() { return get ( 1 ); } }", True),  # a call, spaces before the parenthesis
    (b"class A { void setUpAll() {} Object onCreateView() {} }", False),  # other labels
    (b"class A { void running() {} }", False),
    (b"class A { /* x2run( */ }", False),  # no identifier starts inside another
])
def test_the_name_prefilter_finds_the_ten_labels_before_a_parenthesis(monkeypatch, text, found):
    from codemem.methodname import java_corpora

    monkeypatch.setattr(java_corpora, "_w", {"names": {}, "labels": frozenset(datasets.TOP10_LABELS)})
    assert java_corpora._mentions(text) is found


def test_the_name_prefilter_is_linear_in_a_long_identifier_run():
    """Test vectors hold hex strings of 400k characters; a backtracking prefilter took ~20 minutes on
    one. Here a 400k run: seconds now, ~20 minutes before; the subprocess's timeout fails the test."""
    code = ("from codemem.methodname import java_corpora; from codemem import datasets\n"
            "java_corpora._w.update(names={}, labels=frozenset(datasets.TOP10_LABELS))\n"
            "run = b'class A { String s = \"' + b'a1' * 200_000 + b'\"; }'\n"
            "assert not java_corpora._mentions(run) and java_corpora._mentions(run + b' void main (String[] a) {}')\n")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


def great_lookalike_shards(tmp_path: Path) -> tuple[Path, dict]:
    """Shards in Py150-Great's format, made by stdlib-great from real standard-library files."""
    p = from_dict({"dataset": "stdlib-great", "model": "great", "extract": {"max_files": 30}})
    layout = storage.Layout(tmp_path / "project")
    samples = layout.samples
    fetch.run(p, layout)
    bug_datasets.run(p, layout)
    shards = {}
    for split in datasets.GREAT_SPLITS:
        lines = (samples / f"{split}.jsonl").read_text().splitlines(keepends=True)
        for k in range(2):
            name = f"{split}/{split}__VARIABLE_MISUSE__SStuB.txt-0000{k}-of-00300"
            shards[name] = "".join(lines[k::2]).encode()
    return samples, shards


def git_sha1(data: bytes, tmp_path: Path) -> str:
    (tmp_path / "blob").write_bytes(data)
    return subprocess.run(["git", "hash-object", str(tmp_path / "blob")], capture_output=True, text=True,
                          check=True).stdout.strip()


def test_py150_great_downloads_shards_checked_by_git_sha1(workdir, tmp_path):
    _, shards = great_lookalike_shards(tmp_path)
    table = tmp_path / "shards.tsv"
    table.write_text("".join(f"{git_sha1(d, tmp_path)}\t{n}\n" for n, d in sorted(shards.items())))
    with Server() as server:
        for name, data in shards.items():
            server.files[f"/great/{name}"] = data
        bad = "dev/dev__VARIABLE_MISUSE__SStuB.txt-00001-of-00300"
        server.files[f"/great/{bad}"] = shards[bad][:-10] + b"\n" * 10  # the host serves other bytes
        p = from_dict({"dataset": "py150-great", "model": "great",
                       "fetch": {"url": f"{server.url}/great", "retries": 0}})  # fmt: skip
        with pytest.raises(remote.RemoteError) as e:
            remote.fetch_great(p, Path("build/raw"), table=table)
        # One shard failing stops none of the others; one line says what happened to all.
        assert "6 shards: 0 already there, 5 fetched (0 of them resumed), 1 failed" in str(e.value)
        assert "git blob SHA-1" in str(e.value) and "\n" not in str(e.value)
        assert not Path(f"data/py150-great/{bad}").exists()
        assert all(Path(f"data/py150-great/{n}").exists() for n in shards if n != bad)
        server.files[f"/great/{bad}"] = shards[bad]
        server.requests.clear()
        manifest = remote.fetch_great(p, Path("build/raw"), table=table)
        assert server.requests == [(f"/great/{bad}", None)]  # only the missing shard is fetched again
    assert manifest["shards"] == {"train": 2, "dev": 2, "eval": 2}
    report = extract.run(p)
    for split in datasets.GREAT_SPLITS:
        expected = sum(shards[n].count(b"\n") for n in shards if n.startswith(f"{split}/"))
        assert report[split] == expected


def test_the_real_shard_table_lists_900_shards():
    rows = remote.great_shard_list()
    assert len(rows) == 900 and all(len(sha) == 40 for _, sha in rows)
    assert [r for r, _ in remote.great_shard_list(2)][:2] == ["dev/dev__VARIABLE_MISUSE__SStuB.txt-00000-of-00300",
                                                             "dev/dev__VARIABLE_MISUSE__SStuB.txt-00001-of-00300"]
    assert np.unique([r.split("/")[0] for r, _ in remote.great_shard_list(3)], return_counts=True)[1].tolist() == [3] * 3


def _hand_made_work(work: Path) -> None:
    """Per-split text files as the split passes write them (padding spaces included)."""
    lines = {
        "train": ["get a,P1,b b,P2,c  ", "set c,P1,a", "get|x", "run d,P3,a a,P1,a"],
        "val": ["get b,P2,e"],
        "test": ["set e,P4,a f,P1,f"],
    }
    for split, text in lines.items():
        (work / split).mkdir(parents=True)
        for fmt in ("c2v", "c2s"):
            (work / split / f"{split}.{fmt}").write_text("".join(line + "\n" for line in text))
        (work / split / "done.json").write_text(json.dumps({"samples": len(text)}))
    (work / "test" / "variants.jsonl").write_text(json.dumps([[["var0", [[0, 0]]]], [["var0", [[1, 2]]]]]) + "\n")


@pytest.mark.parametrize("processes", [0, 2])
def test_contexts_npz_ids_are_in_first_appearance_order_whatever_the_chunks(tmp_path, processes):
    # One line per chunk (chunk_bytes=1): each chunk numbers its own strings, and merging must give
    # the ids one row-by-row pass gives: tokens a b c d e f (+ the variant's var0), paths P1..P4.
    import multiprocessing

    from codemem.methodname import npzstream

    _hand_made_work(tmp_path / "work")
    pool = multiprocessing.get_context("fork").Pool(processes) if processes else None
    try:
        npzstream.assemble(tmp_path / "work", tmp_path / "contexts.npz", max_contexts=2, stored=3,
                           pool=pool, chunk_bytes=1)  # fmt: skip
    finally:
        if pool:
            pool.close()
    with np.load(tmp_path / "contexts.npz") as z:
        assert list(z["c2v_tokens"]) == ["a", "b", "c", "d", "e", "f", "var0"]
        assert list(z["c2v_paths"]) == ["P1", "P2", "P3", "P4"]
        assert list(z["labels"]) == ["get", "set", "get|x", "run"]
        assert z["train_label"].tolist() == [0, 1, 2, 3] and z["val_label"].tolist() == [0]
        assert z["test_label"].tolist() == [1]
        assert z["c2v_train_ctx"].tolist() == [
            [[0, 0, 1], [1, 1, 2]], [[2, 0, 0], [-1, -1, -1]], [[-1, -1, -1]] * 2, [[3, 2, 0], [0, 0, 0]]]
        assert z["c2s_train_ctx"].shape == (4, 3, 3)  # training rows keep extract.max_contexts_stored
        assert z["c2s_train_ctx"][:, :2].tolist() == z["c2v_train_ctx"].tolist()
        assert z["c2v_val_ctx"].tolist() == [[[1, 1, 4], [-1, -1, -1]]]
        assert z["c2v_test_ctx"].tolist() == [[[4, 3, 0], [5, 0, 5]]]
        assert z["c2v_test_var_token"].tolist() == [6] and z["c2s_test_occ_ctx"].tolist() == [1]


def test_contexts_npz_reads_an_empty_field_inside_a_line_as_upstream_does(tmp_path):
    # Our lines pad at the end only; a doubled space inside (a hand-edited file) is skipped, not a context.
    from codemem.methodname import npzstream

    text = tmp_path / "train.c2v"
    text.write_text("get a,P1,b  b,P2,c   \nset\n")
    labels, tokens, paths, counts, end_ids, path_ids = npzstream._encode_chunk((text, 0, text.stat().st_size, 5))
    assert labels == ["get", "set"] and counts.tolist() == [2, 0]
    assert [tokens[i] for i in end_ids] == ["a", "b", "b", "c"] and [paths[i] for i in path_ids] == ["P1", "P2"]


def test_contexts_npz_refuses_a_context_without_two_commas(tmp_path):
    from codemem.methodname import npzstream

    text = tmp_path / "train.c2v"
    text.write_text("set x,P3,y\nget a,P1,b c,P2\n")  # the second line's last context lost a part
    with pytest.raises(RuntimeError, match="without exactly two commas"):
        npzstream._encode_chunk((text, 0, text.stat().st_size, 5))
