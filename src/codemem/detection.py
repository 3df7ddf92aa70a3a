"""Which training labels are wrong? Scores from a run's per-sample training dynamics, and how well
each finds the labels the pipeline flipped.

Every epoch (VarMisuse: step) the training task records, for each measured training sample and its
given (possibly noisy) label, with dropout off after the epoch:

    dyn_loss     the loss of the given label
    dyn_margin   the given label's logit minus the largest other logit (NaN where a model has none)
    dyn_prob     the probability of the given label (if absent: exp(-dyn_loss), the loss being a
                 cross-entropy; code2seq's is the mean over the name's sub-tokens, so its probability
                 is the geometric mean of theirs: the per-sample likelihood)
    dyn_correct  1 if the prediction is the given label

and the run keeps `flipped` (1 where the corrupt stage replaced the label). Each `signals()` score is
"higher = more likely mislabeled":

- `loss`: the mean loss over epochs, the area under the sample's loss curve (Arpit et al. 2017:
  networks fit clean samples first, so noisy ones keep a high loss longer).
- `in_step_loss`: the same over the losses logged inside the training steps (dropout on, the weights
  moving), the input of the study's Gini.
- `aum`: minus the area under the margin (Pleiss et al. 2020, "Identifying Mislabeled Data using the
  Area Under the Margin Ranking"): the mean margin over epochs; a mislabeled sample's given label is
  pushed down by its similar clean samples, so its margin stays low or negative.
- `forgetting`: forgetting events (Toneva et al. 2019, "An Empirical Study of Example Forgetting"): the
  number of epochs at which a sample went from predicted right to wrong; a sample never predicted
  right counts as forgotten at every epoch, as the paper ranks unlearned samples highest.
- `low_confidence`: minus the data-map confidence (Swayamdipta et al. 2020, "Dataset Cartography"): the
  mean probability of the given label over epochs; `variability`, its standard deviation over
  epochs, marks ambiguous rather than mislabeled samples and is reported for the data map.

Against the flips: `auroc` (Mann-Whitney, ties counted half), `auprc` (average precision, as
scikit-learn's `average_precision_score`) and `precision_at_k` (k = the number flipped).
"""

from __future__ import annotations

import numpy as np

DYNAMICS = ("dyn_loss", "dyn_margin", "dyn_prob", "dyn_correct")


def label_margins(logits, labels):
    """Per row: the given label's logit minus the largest other logit (Pleiss et al. 2020, eq. 1), from
    the top two logits (no copy of a (batch, vocabulary) matrix). torch tensors in, tensor out."""
    given = logits.gather(1, labels[:, None]).squeeze(1)
    top = logits.topk(min(2, logits.shape[1]), dim=1)
    if top.values.shape[1] < 2:  # one class: no other logit
        return given - given.new_full(given.shape, float("-inf"))
    other = top.values[:, 0].where(top.indices[:, 0] != labels, top.values[:, 1])
    return given - other


def area_under_margin(margins: np.ndarray) -> np.ndarray:
    """(epochs, samples) margins -> each sample's mean margin (Pleiss et al. 2020, eq. 2)."""
    return np.asarray(margins, dtype=np.float64).mean(axis=0)


def forgetting_events(correct: np.ndarray) -> np.ndarray:
    """(epochs, samples) right/wrong -> each sample's number of right-to-wrong transitions; a sample
    never right gets the number of epochs (Toneva et al. 2019: unlearned samples rank as most forgotten)."""
    correct = np.asarray(correct, dtype=bool)
    events = (correct[:-1] & ~correct[1:]).sum(axis=0)
    return np.where(correct.any(axis=0), events, len(correct)).astype(np.float64)


def data_map(prob: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(epochs, samples) probability of the given label -> (confidence, variability): its mean and
    (population) standard deviation over epochs (Swayamdipta et al. 2020, section 2)."""
    prob = np.asarray(prob, dtype=np.float64)
    return prob.mean(axis=0), prob.std(axis=0)


def signals(dynamics: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Suspicion scores (higher = more likely mislabeled) from the arrays a run logged; a signal whose
    input the model does not give (all NaN) is left out."""
    out = {}
    if "dyn_loss" in dynamics:
        out["loss"] = np.asarray(dynamics["dyn_loss"], dtype=np.float64).mean(axis=0)
    if "in_step_loss" in dynamics:
        out["in_step_loss"] = np.asarray(dynamics["in_step_loss"], dtype=np.float64).mean(axis=0)
    if "dyn_margin" in dynamics and not np.isnan(dynamics["dyn_margin"]).all():
        out["aum"] = -area_under_margin(dynamics["dyn_margin"])
    if "dyn_correct" in dynamics:
        out["forgetting"] = forgetting_events(dynamics["dyn_correct"])
    prob = dynamics.get("dyn_prob")
    if prob is None and "dyn_loss" in dynamics:  # a cross-entropy: the given label's probability is exp(-loss)
        prob = np.exp(-np.asarray(dynamics["dyn_loss"], dtype=np.float64))
    if prob is not None:
        confidence, variability = data_map(prob)
        out["low_confidence"] = -confidence
        out["variability"] = variability
    return out


def auroc(scores: np.ndarray, positives: np.ndarray) -> float:
    """Area under the ROC curve: the chance that a random positive scores above a random negative,
    ties counting half (the Mann-Whitney U statistic over n_pos * n_neg). NaN without both classes."""
    scores, positives = np.asarray(scores, dtype=np.float64), np.asarray(positives, dtype=bool)
    n_pos, n_neg = int(positives.sum()), int((~positives).sum())
    if not n_pos or not n_neg:
        return float("nan")
    ranks = _average_ranks(scores)
    return float((ranks[positives].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def auprc(scores: np.ndarray, positives: np.ndarray) -> float:
    """Average precision: sum over score thresholds of (recall gained) x (precision there), the
    thresholds being the distinct scores (tied samples enter together), as scikit-learn computes it."""
    scores, positives = np.asarray(scores, dtype=np.float64), np.asarray(positives, dtype=bool)
    if not positives.any():
        return float("nan")
    order = np.argsort(-scores, kind="stable")
    s, p = scores[order], positives[order]
    last_of_tie = np.r_[s[1:] != s[:-1], True]
    true_pos = np.cumsum(p)[last_of_tie]
    taken = (np.arange(len(s)) + 1)[last_of_tie]
    recall = true_pos / p.sum()
    precision = true_pos / taken
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


def precision_at_k(scores: np.ndarray, positives: np.ndarray, k: int | None = None) -> float:
    """The share of flipped samples among the k highest scores (k: the number flipped; ties broken by
    sample order)."""
    positives = np.asarray(positives, dtype=bool)
    k = int(positives.sum()) if k is None else k
    if k <= 0:
        return float("nan")
    top = np.argsort(-np.asarray(scores, dtype=np.float64), kind="stable")[:k]
    return float(positives[top].mean())


def evaluate(dynamics: dict[str, np.ndarray], flipped: np.ndarray) -> dict[str, dict[str, float]]:
    """{signal: {auroc, auprc, precision_at_k}} of every signal against the flipped labels."""
    return {name: {"auroc": round(auroc(s, flipped), 6), "auprc": round(auprc(s, flipped), 6),
                   "precision_at_k": round(precision_at_k(s, flipped), 6)}
            for name, s in signals(dynamics).items()}  # fmt: skip


def roc_points(scores: np.ndarray, positives: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(false positive rate, true positive rate) at every distinct threshold, from (0, 0) to (1, 1)."""
    scores, positives = np.asarray(scores, dtype=np.float64), np.asarray(positives, dtype=bool)
    order = np.argsort(-scores, kind="stable")
    s, p = scores[order], positives[order]
    last_of_tie = np.r_[s[1:] != s[:-1], True]
    tp, fp = np.cumsum(p)[last_of_tie], np.cumsum(~p)[last_of_tie]
    return np.r_[0.0, fp / max(fp[-1], 1)], np.r_[0.0, tp / max(tp[-1], 1)]


def pr_points(scores: np.ndarray, positives: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(recall, precision) at every distinct threshold."""
    scores, positives = np.asarray(scores, dtype=np.float64), np.asarray(positives, dtype=bool)
    order = np.argsort(-scores, kind="stable")
    s, p = scores[order], positives[order]
    last_of_tie = np.r_[s[1:] != s[:-1], True]
    tp = np.cumsum(p)[last_of_tie]
    taken = (np.arange(len(s)) + 1)[last_of_tie]
    return tp / max(p.sum(), 1), tp / taken


def _average_ranks(x: np.ndarray) -> np.ndarray:
    """1-based ranks, ties given their average rank (scipy.stats.rankdata's 'average')."""
    order = np.argsort(x, kind="stable")
    sorted_x = x[order]
    first = np.r_[True, sorted_x[1:] != sorted_x[:-1]]
    group = np.cumsum(first) - 1
    starts = np.flatnonzero(first)
    ends = np.r_[starts[1:], len(x)]
    average = (starts + ends + 1) / 2.0  # mean of 1-based ranks start+1 .. end
    ranks = np.empty(len(x))
    ranks[order] = average[group]
    return ranks


def draw(dynamics: dict[str, np.ndarray], flipped: np.ndarray, title: str, path) -> None:
    """ROC and precision-recall curves of every signal against the flips, and the data map
    (confidence against variability, flipped samples marked), side by side in one figure."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(14, 4.2))
    flipped = np.asarray(flipped, dtype=bool)
    if not flipped.any():
        for ax in axes:
            ax.axis("off")
        why = "no flipped labels (noise 0): nothing to detect" if len(flipped) else "no training dynamics logged"
        axes[1].text(0.5, 0.5, why, ha="center", va="center")
    else:
        scores = signals(dynamics)
        for i, (name, s) in enumerate(scores.items()):
            if name == "variability":
                continue
            fpr, tpr = roc_points(s, flipped)
            axes[0].plot(fpr, tpr, color=f"C{i}", label=f"{name} ({auroc(s, flipped):.3f})")
            recall, precision = pr_points(s, flipped)
            axes[1].plot(recall, precision, color=f"C{i}", label=f"{name} ({auprc(s, flipped):.3f})")
        axes[0].plot([0, 1], [0, 1], ":", color="grey")
        axes[0].set(title="ROC (AUROC)", xlabel="false positive rate", ylabel="true positive rate")
        axes[1].axhline(flipped.mean(), ls=":", color="grey")
        axes[1].set(title="precision-recall (AUPRC)", xlabel="recall", ylabel="precision", ylim=(0, 1.02))
        for ax in axes[:2]:
            ax.legend(fontsize=7)
        prob = dynamics.get("dyn_prob")
        prob = np.exp(-np.asarray(dynamics["dyn_loss"], dtype=np.float64)) if prob is None else prob
        confidence, variability = data_map(prob)
        axes[2].scatter(variability[~flipped], confidence[~flipped], s=4, alpha=0.4, color="C0", label="given label kept")
        axes[2].scatter(variability[flipped], confidence[flipped], s=4, alpha=0.6, color="C3", label="flipped")
        axes[2].set(title="data map", xlabel="variability", ylabel="confidence", ylim=(0, 1.02))
        axes[2].legend(fontsize=7, markerscale=3)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=100, metadata={"Software": None})
    plt.close(fig)
