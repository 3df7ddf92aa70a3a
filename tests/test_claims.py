"""`codemem claims`: the study's claims as pure functions of a tidy frame, the baseline comparison,
and the command on a hand-made folder of kept runs."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from codemem import claims
from codemem.__main__ import app
from codemem.errors import UserError
from codemem.report import Experiment

LEVELS = (0.0, 0.25, 0.5, 0.75, 1.0)


def frame(model: str, columns: dict[str, tuple], levels=LEVELS, seeds=(0, 1), jitter: float = 0.002,
          dataset: str = "jdk-top10") -> pd.DataFrame:  # fmt: skip
    """Final rows (one per noise level and seed) with the given per-level means: seed 0 at
    mean - jitter, seed 1 at mean + jitter, so the mean over seeds is exact."""
    rows = []
    for i, noise in enumerate(levels):
        for s, seed in enumerate(seeds):
            offset = (-jitter if s == 0 else jitter) if len(seeds) == 2 else 0.0
            rows.append({"model": model, "dataset": dataset, "profile": "cpu", "measure": "study", "noise": noise,
                         "seed": seed, "epoch": 50, "final": True,
                         **{c: values[i] + offset for c, values in columns.items()}})  # fmt: skip
    return pd.DataFrame(rows)


# The kept runs' figures (plots/report.md, plots/code2seq/report.md, plots/varmisuse/report.md).
CODE2VEC = {"train_f1": (1.000, 0.992, 0.986, 0.979, 0.974), "test_f1": (0.902, 0.682, 0.470, 0.232, 0.042),
            "csr": (0.094, 0.239, 0.379, 0.396, 0.397), "gini": (0.959, 0.979, 0.971, 0.963, 0.963),
            "test_score": (0.951, 0.822, 0.749, 0.688, 0.682)}  # fmt: skip
CODE2SEQ = {"train_f1": (0.964, 0.703, 0.447, 0.224, 0.162), "test_f1": (0.892, 0.836, 0.767, 0.636, 0.023),
            "gini": (0.878, 0.560, 0.300, 0.117, 0.088), "csr": (0.093, 0.095, 0.157, 0.219, 0.418),
            "test_score": (0.880, 0.642, 0.471, 0.340, 0.230)}  # fmt: skip
PUBLISHED = pd.DataFrame([
    {"model": "code2vec", "dataset": "java-top10", "metric": "test_f1", "noise_0": 0.854, "noise_25": 0.681,
     "noise_50": 0.430, "noise_75": 0.204, "noise_100": 0.035},
    {"model": "code2vec", "dataset": "java-top10", "metric": "csr", "noise_0": 0.147, "noise_25": 0.396,
     "noise_50": 0.452, "noise_75": 0.567, "noise_100": 0.576},
])  # fmt: skip


# --- the claims on hand-made frames ------------------------------------------------------------


def test_code2vec_memorizes_holds_on_the_kept_figures():
    out = claims.memorizes(frame("code2vec", CODE2VEC))
    assert out.status == claims.HOLDS, out.checks
    assert out.figures["test_f1"][1.0] == pytest.approx(0.042)
    assert out.figures["train_f1"][0.0] == pytest.approx(1.0)


def test_memorizes_does_not_hold_when_train_f1_falls():
    out = claims.memorizes(frame("code2seq", CODE2SEQ))
    assert out.status == claims.FAILS
    failed = [text for ok, text in out.checks if not ok]
    assert len(failed) == 1 and "train F1 below 0.95" in failed[0] and "100 % (0.162)" in failed[0]


def test_memorizes_does_not_hold_when_test_f1_stays_above_chance():
    values = dict(CODE2VEC, test_f1=(0.90, 0.80, 0.70, 0.60, 0.50))
    out = claims.memorizes(frame("code2vec", values))
    assert out.status == claims.FAILS
    assert any(not ok and "0.500 (> 0.1, chance)" in text for ok, text in out.checks)


def test_a_claim_without_noise_1_has_not_enough_runs():
    out = claims.memorizes(frame("code2vec", {k: v[:3] for k, v in CODE2VEC.items()}, levels=LEVELS[:3]))
    assert out.status == claims.NOT_ENOUGH
    assert "100 %" in out.missing and "0 %" not in out.missing.replace("100 %", "")


def test_code2seq_cannot_fit_noise_holds_and_fails_when_csr_falls():
    assert claims.cannot_fit_noise(frame("code2seq", CODE2SEQ)).status == claims.HOLDS
    falling_csr = dict(CODE2SEQ, csr=(0.40, 0.30, 0.20, 0.15, 0.10))
    out = claims.cannot_fit_noise(frame("code2seq", falling_csr))
    assert out.status == claims.FAILS
    assert [text.split(" ")[0] for ok, text in out.checks if not ok] == ["CSR"]


def test_monotone_allows_a_step_back_within_the_tolerance_only():
    small_dip = dict(CODE2VEC, csr=(0.10, 0.25, 0.38, 0.375, 0.40))  # 0.005 down from 50 to 75 %
    assert claims.csr_rises(frame("code2vec", small_dip)).status == claims.HOLDS
    big_dip = dict(CODE2VEC, csr=(0.10, 0.25, 0.38, 0.35, 0.40))  # 0.03 down
    out = claims.csr_rises(frame("code2vec", big_dip))
    assert out.status == claims.FAILS
    assert "falls 0.030 from 50 % to 75 %" in out.checks[0][1]
    flat = dict(CODE2VEC, csr=(0.20, 0.20, 0.20, 0.20, 0.20))  # no step back, but no rise either
    assert claims.csr_rises(frame("code2vec", flat)).status == claims.FAILS


def test_gini_falls_does_not_hold_for_code2vec_and_holds_for_code2seq():
    out = claims.gini_falls(frame("code2vec", CODE2VEC))
    assert out.status == claims.FAILS
    assert "rises 0.020 from 0 % to 25 %" in out.checks[0][1]
    assert claims.gini_falls(frame("code2seq", CODE2SEQ)).status == claims.HOLDS


def test_scores_fall():
    assert claims.scores_fall(frame("code2vec", CODE2VEC)).status == claims.HOLDS
    rising = dict(CODE2VEC, test_score=(0.6, 0.7, 0.8, 0.85, 0.9))
    assert claims.scores_fall(frame("code2vec", rising)).status == claims.FAILS


def test_localization_collapses_holds_for_great_and_fails_when_nothing_was_learned():
    great = {"loc_acc": (0.278, 0.000, 0.000), "gini_loc": (0.551, 0.450, 0.409)}
    levels = (0.0, 0.5, 1.0)
    out = claims.localization_collapses(frame("great", great, levels=levels, seeds=(0,)))
    assert out.status == claims.HOLDS, out.checks
    never = {"loc_acc": (0.0, 0.0, 0.0), "gini_loc": (0.47, 0.42, 0.38)}  # the Transformer's runs
    out = claims.localization_collapses(frame("transformer", never, levels=levels, seeds=(0,)))
    assert out.status == claims.FAILS
    assert "not learned" in out.checks[0][1]


def test_matches_study_within_and_beyond_the_tolerance():
    ours = frame("code2vec", CODE2VEC)
    out = claims.matches_study(ours, PUBLISHED, "test_f1", 0.05)
    assert out.status == claims.HOLDS
    assert out.study["test_f1"][0.25] == pytest.approx(0.681)
    out = claims.matches_study(ours, PUBLISHED, "test_f1", 0.03)  # 0.902 vs 0.854, 0.470 vs 0.430
    assert out.status == claims.FAILS
    assert sum(not ok for ok, _ in out.checks) == 2
    out = claims.matches_study(ours, PUBLISHED, "csr", 0.10)  # 0.397 vs 0.576 at 100 %
    assert out.status == claims.FAILS
    assert any(not ok and "at 100 %" in text and "-0.179" in text for ok, text in out.checks)


def test_matches_study_names_levels_not_run_and_needs_a_published_value():
    some = frame("code2vec", {"test_f1": (0.90, 0.47, 0.04)}, levels=(0.0, 0.5, 1.0))
    out = claims.matches_study(some, PUBLISHED, "test_f1", 0.05)
    assert out.status == claims.HOLDS
    assert any("not run: 25 %, 75 %" in text for _, text in out.checks)
    out = claims.matches_study(frame("code2seq", CODE2SEQ), PUBLISHED, "test_f1", 0.05)
    assert out.status == claims.NOT_ENOUGH and "published no test_f1" in out.missing
    other = frame("code2vec", CODE2VEC, dataset="java-small")  # not the study's dataset nor its stand-in
    assert claims.matches_study(other, PUBLISHED, "test_f1", 0.05).status == claims.NOT_ENOUGH


def test_final_rows_takes_the_last_epoch_without_a_final_column():
    rows = [{"model": "code2vec", "dataset": "d", "noise": 0.0, "seed": 0, "epoch": e, "test_f1": e / 10}
            for e in (3, 1, 2)]  # fmt: skip
    final = claims.final_rows(pd.DataFrame(rows))
    assert list(final["epoch"]) == [3]
    assert claims.level_means(pd.DataFrame(rows), "test_f1").to_dict() == {0.0: 0.3}


def test_tidy_writes_the_final_metrics_over_the_last_epoch():
    epochs = pd.DataFrame({"epoch": [1, 2], "test_f1": [0.1, 0.5], "gini": [0.2, 0.3]})
    e = Experiment(name="x", rev="r", model="great", dataset="stdlib-great", noise=0.5, seed=1,
                   metrics={"test_f1": 0.55, "loc_acc": 0.2, "measure": "study", "model": "great"},
                   epochs=epochs, scores=None, params={"profile": "cpu"})  # fmt: skip
    t = claims.tidy([e])
    assert list(t.columns[:8]) == [*claims.ID_COLUMNS, "final"]
    assert list(t["final"]) == [False, True]
    assert t.loc[1, "test_f1"] == 0.55 and t.loc[1, "loc_acc"] == 0.2 and pd.isna(t.loc[0, "loc_acc"])
    assert t.loc[0, "test_f1"] == 0.1 and set(t["measure"]) == {"study"}
    alone = claims.tidy([Experiment(name="y", rev="r", model="m", dataset="d", noise=0.0, seed=0,
                                    metrics={"epochs": 7, "csr": 0.1}, epochs=None, scores=None)])  # fmt: skip
    assert len(alone) == 1 and alone.loc[0, "epoch"] == 7 and bool(alone.loc[0, "final"])


def test_check_all_says_how_to_make_the_runs_a_claim_lacks():
    verdicts = claims.check_all(frame("code2seq", CODE2SEQ), PUBLISHED)
    by = {(v.claim, v.runs.split(" ")[0]): v for v in verdicts}
    assert by[("cannot-fit", "code2seq")].status == claims.HOLDS
    lacking = by[("memorizes", "code2vec:")]
    assert lacking.status == claims.NOT_ENOUGH and "repro/sweep.py --model code2vec" in lacking.missing
    assert by[("scores-fall", "code2seq")].status == claims.HOLDS  # every model: the one that has runs
    assert by[("test-f1-vs-study", "code2seq")].status == claims.NOT_ENOUGH  # PUBLISHED here has no code2seq


# --- the baseline comparison -------------------------------------------------------------------

BASE = {"test_f1": 0.909203, "train_f1": 1.0, "gini": 0.969394, "csr": 0.117021, "test_score": 0.951272,
        "epochs": 50, "noise": 0.0, "dataset": "jdk-top10", "model": "code2vec", "seed": 0, "train_samples": 5148,
        "profile": "cpu", "measure": "study", "detection": {"flipped": 0, "measured": 5148}}  # fmt: skip


def test_compare_within_the_tolerance_is_reproduced():
    amd = dict(BASE, test_f1=0.914038, gini=0.969465)  # the README's AMD EPYC run: 0.0048 apart
    c = claims.compare(amd, BASE)
    assert c.reproduced and c.tolerance == 0.005
    assert claims.describe(c)[0].startswith("reproduced within 0.005")


def test_compare_beyond_the_tolerance_names_each_metric_and_by_how_much():
    c = claims.compare(dict(BASE, test_f1=0.92, detection={"flipped": 3, "measured": 5148}), BASE)
    assert not c.reproduced
    assert [d[0] for d in c.differ] == ["detection.flipped", "test_f1"]
    lines = claims.describe(c)
    assert lines[0].startswith("not reproduced: 2 of")
    assert any("test_f1: fresh 0.92 vs baseline 0.909203, by 0.010797 (tolerance 0.005)" in x for x in lines)
    assert any("detection.flipped: fresh 3 vs baseline 0, by 3 (tolerance 0)" in x for x in lines)
    missing = dict(BASE)
    del missing["csr"]
    c = claims.compare(missing, BASE)
    assert not c.reproduced and c.absent == ["csr"]


def test_compare_another_experiment_is_no_comparison():
    c = claims.compare(dict(BASE, noise=0.5), BASE)
    assert not c.reproduced and c.identity == [("noise", 0.5, 0.0)]
    assert "not the baseline's experiment: noise 0.5 (baseline 0.0)" in claims.describe(c)[0]


def test_fresh_metrics_missing_or_not_made_here(tmp_path):
    with pytest.raises(UserError, match="no fresh metrics: .* does not exist"):
        claims.fresh_metrics(tmp_path / "metrics.json", explicit=False, build=tmp_path / "build")
    path = tmp_path / "metrics.json"
    path.write_text(json.dumps(BASE))
    with pytest.raises(UserError, match="is the committed file .*make run"):
        claims.fresh_metrics(path, explicit=False, build=tmp_path / "build")
    (tmp_path / "build" / "logs").mkdir(parents=True)
    assert claims.fresh_metrics(path, explicit=False, build=tmp_path / "build") == BASE
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(UserError, match="not JSON"):
        claims.fresh_metrics(tmp_path / "bad.json", explicit=True)


# --- the command -------------------------------------------------------------------------------


def keep(runs: Path, model: str, noise: float, seed: int, metrics: dict, epochs: int = 3) -> None:
    """One kept run as `codemem report` writes it: run.json and epochs.csv."""
    folder = runs / f"{model}-jdk-top10-cpu-noise{noise:g}-seed{seed}"
    folder.mkdir(parents=True)
    record = {"name": folder.name, "rev": "0" * 40, "timestamp": "2026-12-01T00:00:00", "model": model,
              "dataset": "jdk-top10", "noise": noise, "seed": seed, "params": {"profile": "cpu"},
              "metrics": {**metrics, "measure": "study", "epochs": epochs}}  # fmt: skip
    (folder / "run.json").write_text(json.dumps(record))
    rows = [{"epoch": e, **{k: v * e / epochs for k, v in metrics.items()}} for e in range(1, epochs + 1)]
    pd.DataFrame(rows).to_csv(folder / "epochs.csv", index=False)


def test_command_on_a_tiny_folder_of_kept_runs(tmp_path):
    runs = tmp_path / "runs"
    for noise, (train, test, csr, gini, score) in {0.0: (1.0, 0.90, 0.09, 0.96, 0.95),
                                                   1.0: (0.97, 0.04, 0.40, 0.96, 0.68)}.items():  # fmt: skip
        for seed in (0, 1):
            keep(runs, "code2vec", noise, seed,
                 {"train_f1": train, "test_f1": test, "csr": csr, "gini": gini, "test_score": score})
    (runs / "broken").mkdir()  # unreadable: skipped with a warning, the rest is checked
    out = tmp_path / "verdicts.json"
    result = CliRunner().invoke(app, ["claims", "--runs", str(runs), "--json", str(out)], catch_exceptions=False,
                                env={"COLUMNS": "200"})  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "code2vec memorizes" in result.output and "4 holds, 2 does not hold, 2 not enough runs" in result.output
    verdicts = json.loads(out.read_text())
    assert verdicts["runs_dirs"] == [str(runs)] and len(verdicts["skipped"]) == 1
    by = {(v["claim"], v["runs"].split(" ")[0]): v for v in verdicts["verdicts"]}
    assert by[("memorizes", "code2vec")]["status"] == "holds"
    assert by[("memorizes", "code2vec")]["figures"]["test_f1"] == {"0": pytest.approx(0.90), "1": pytest.approx(0.04)}
    assert by[("memorizes", "code2vec")]["seeds"] == {"0": 2, "1": 2}
    assert by[("csr-rises", "code2vec")]["status"] == "holds"
    assert by[("gini-falls", "code2vec")]["status"] == "does not hold"  # flat: no net fall
    assert by[("cannot-fit", "code2seq:")]["status"] == "not enough runs"
    # the study's value at 0 % is 0.854: 0.90 is within 0.05; at 100 % 0.035 vs 0.04
    assert by[("test-f1-vs-study", "code2vec")]["status"] == "holds"


def test_command_cannot_read_the_runs(tmp_path):
    (tmp_path / "empty").mkdir()
    for args in (["--runs", str(tmp_path / "empty")], ["--runs", str(tmp_path / "nowhere")]):
        result = CliRunner().invoke(app, ["claims", *args], catch_exceptions=False)
        assert result.exit_code == 2
        assert "error" in result.output and "kept run" in result.output


def test_command_baseline_exit_codes(tmp_path):
    base, fresh = tmp_path / "base.json", tmp_path / "fresh.json"
    base.write_text(json.dumps(BASE))
    invoke = lambda: CliRunner().invoke(app, ["claims", "--baseline", "--fresh", str(fresh), "--against", str(base)],
                                        catch_exceptions=False)  # fmt: skip
    fresh.write_text(json.dumps(dict(BASE, csr=0.119)))
    result = invoke()
    assert result.exit_code == 0 and "reproduced within 0.005" in result.output
    fresh.write_text(json.dumps(dict(BASE, csr=0.13)))
    result = invoke()
    assert result.exit_code == 1 and "csr: fresh 0.13 vs baseline 0.117021" in result.output
    fresh.write_text(json.dumps(dict(BASE, seed=1)))
    assert invoke().exit_code == 2
    fresh.unlink()
    result = invoke()
    assert result.exit_code == 2 and "no fresh metrics" in result.output


def test_baseline_reads_the_committed_metrics_from_git(tmp_path, monkeypatch):
    import subprocess

    monkeypatch.chdir(tmp_path)
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t", "-c", "commit.gpgsign=false"]
    subprocess.run(["git", "init", "-q"], check=True)
    (tmp_path / "metrics").mkdir()
    (tmp_path / "metrics" / "metrics.json").write_text(json.dumps(BASE))
    subprocess.run([*git, "add", "metrics/metrics.json"], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "baseline"], check=True)
    assert claims.committed_metrics() == BASE
    (tmp_path / "metrics" / "metrics.json").write_text(json.dumps(dict(BASE, gini=0.98)))
    (tmp_path / "build" / "logs").mkdir(parents=True)  # the pipeline ran here
    comparison, lines = claims.baseline(Path("metrics/metrics.json"), explicit=False, against=None)
    assert not comparison.reproduced and "gini: fresh 0.98 vs baseline 0.969394" in lines[1]
    with pytest.raises(UserError, match="--against FILE"):
        claims.committed_metrics(rev="no-such-rev")


def test_default_runs_dirs_are_the_report_folders_holding_runs(tmp_path):
    plots = tmp_path / "plots"
    keep(plots / "runs", "code2vec", 0.0, 0, {"test_f1": 0.9})
    keep(plots / "code2seq" / "runs", "code2seq", 0.0, 0, {"test_f1": 0.9})
    (plots / "detection" / "runs").mkdir(parents=True)  # JSON files, no kept runs
    (plots / "detection" / "runs" / "code2vec-noise0-seed0.json").write_text("{}")
    assert claims.default_runs_dirs(plots) == [plots / "runs", plots / "code2seq" / "runs"]


def test_command_reads_the_committed_kept_runs(tmp_path, monkeypatch):
    """What a fresh clone can check: the kept runs committed under plots/ are readable."""
    monkeypatch.chdir(Path(__file__).resolve().parents[1])
    dirs = claims.default_runs_dirs()
    if not dirs:
        pytest.skip("no kept runs committed under plots/")
    out = tmp_path / "verdicts.json"
    result = CliRunner().invoke(app, ["claims", "--json", str(out)], catch_exceptions=False, env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    verdicts = json.loads(out.read_text())
    assert verdicts["skipped"] == [] and len(verdicts["verdicts"]) >= len(claims.CLAIMS)
    assert {v["claim"] for v in verdicts["verdicts"]} == {c.id for c in claims.CLAIMS}
