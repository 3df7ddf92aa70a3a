"""train: one explicit training loop, measured after every epoch the way the study measures it.

Each epoch: shuffle (seeded by seed and epoch), train on the noisy training labels, then with
dropout off compute for every training sample its loss and predicted score (Gini of the losses,
training F1 against the labels it trained on) and for every test sample its prediction and score
(test F1, mean score) and the critical sample ratio over its renaming variants. One row per epoch
goes to plots/epochs.csv and per-sample arrays to build/logs. A checkpoint after every epoch lets an
interrupted run resume; because every epoch reseeds from (seed, epoch) a resumed run ends with the
same metrics as an uninterrupted one.

The per-sample training loss is measured in a separate pass after the epoch (dropout off, one fixed
model), not logged inside the training step as the authors' patch did; see ORIGINALS.md.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch

from codemem import corrupt, io, metrics
from codemem.io import sha256_file
from codemem.metrics import OOV
from codemem.models import code2vec
from codemem.params import Params
from codemem.progress import log, progress_bar

EPOCH_COLUMNS = [
    "epoch", "train_loss", "train_f1", "train_precision", "train_recall", "test_f1", "test_precision",
    "test_recall", "gini", "csr", "csr_critical", "csr_transformable", "test_score", "train_score", "seconds",
]  # fmt: skip


def choose_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError(f"train.device is {name!r} but torch sees no CUDA device; use `auto` or `cpu`")
    return torch.device(name)


class MethodNameData:
    """Training vocabularies and index tensors for code2vec, built from the NOISY training set.

    As upstream, vocabularies come from the training data only: tokens and paths seen in training
    contexts get ids 1.., everything else maps to the shared PAD/OOV id 0; target names seen among
    the noisy training labels get ids 1.., others (possible in test) are OOV 0. Training drops
    samples with no valid context, as the original reader does.
    """

    def __init__(self, samples: io.SampleSet, noisy_train_labels: list[str], max_contexts: int):
        train = samples.contexts["train"][:, :max_contexts]
        token_map = self._id_map(len(samples.tokens), np.concatenate([train[..., 0].ravel(), train[..., 2].ravel()]))
        path_map = self._id_map(len(samples.paths), train[..., 1].ravel())
        self.target_names = [OOV] + sorted(set(noisy_train_labels))
        target_id = {name: i for i, name in enumerate(self.target_names)}
        self.n_tokens, self.n_paths = int(token_map.max()) + 1, int(path_map.max()) + 1

        def encode(ctx: np.ndarray) -> torch.Tensor:
            ctx = ctx[:, :max_contexts]
            return torch.from_numpy(
                np.stack([token_map[ctx[..., 0]], path_map[ctx[..., 1]], token_map[ctx[..., 2]]], axis=-1)
            ).long()

        keep = (encode(samples.contexts["train"]) != 0).any(-1).any(-1).numpy()
        self.train_kept = np.flatnonzero(keep)
        self.train_contexts = encode(samples.contexts["train"][keep])
        self.train_names = [noisy_train_labels[i] for i in self.train_kept]
        self.train_labels = torch.tensor([target_id[n] for n in self.train_names])
        self.test_contexts = encode(samples.contexts["test"])
        self.test_names = [str(samples.labels[i]) for i in samples.split_labels["test"]]
        self.test_labels = torch.tensor([target_id.get(n, 0) for n in self.test_names])
        self.variants = self._variants(samples.variants["test"], token_map)

    @staticmethod
    def _id_map(table_size: int, used: np.ndarray) -> np.ndarray:
        """Extraction-table index -> training vocabulary id; the extra last slot maps padding (-1) to 0."""
        ids = np.zeros(table_size + 1, dtype=np.int64)
        present = np.unique(used[used >= 0])
        ids[present] = np.arange(1, len(present) + 1)
        return ids

    def _variants(self, v: io.Variants, token_map: np.ndarray) -> tuple[torch.Tensor, np.ndarray]:
        """The test samples' renaming variants as full context tensors, and each one's owner."""
        contexts = self.test_contexts[torch.from_numpy(v.owner.astype(np.int64))].clone()
        in_range = v.occ_ctx < contexts.shape[1]  # occurrences beyond max_contexts are not fed in
        rows = torch.from_numpy(v.occ_var[in_range].astype(np.int64))
        cols = torch.from_numpy(v.occ_ctx[in_range].astype(np.int64))
        sides = torch.from_numpy(v.occ_side[in_range].astype(np.int64)) * 2  # 0 -> source, 1 -> target column
        contexts[rows, cols, sides] = torch.from_numpy(token_map[v.token[v.occ_var[in_range]]])
        return contexts, v.owner


def fingerprint(params: Params, files: list[Path]) -> str:
    """What a checkpoint must match to be resumed: the inputs and every setting that shapes training."""
    h = hashlib.sha256()
    # Not epochs (a longer run may extend a shorter one), nor what cannot change the numbers.
    ignored = ("epochs", "device", "threads", "eval_batch_size")
    settings = {k: v for k, v in asdict(params.train).items() if k not in ignored}
    h.update(json.dumps([params.model, params.seed, params.noise, settings,
                         asdict(params.model_config()), params.extract.max_contexts], sort_keys=True).encode())
    for f in files:
        h.update(sha256_file(f).encode())
    return h.hexdigest()


@torch.no_grad()
def predict(model, contexts: torch.Tensor, labels: torch.Tensor | None, device, batch_size: int, top_k: int):
    """Per-sample (loss, score, top-k ids); dropout off. Score = softmax probability of the
    predicted name over the whole target vocabulary (the paper's formula)."""
    model.eval()
    losses, scores, tops = [], [], []
    for start in range(0, len(contexts), batch_size):
        batch = contexts[start : start + batch_size].to(device)
        logits = model(batch)
        probs = torch.softmax(logits, dim=-1)
        top = logits.topk(min(top_k, logits.shape[-1]), dim=-1).indices
        # The prediction is the first possible name; OOV (id 0) is the only impossible target id.
        first = torch.where(top[:, :1] == 0, top[:, 1:2] if top.shape[1] > 1 else top[:, :1], top[:, :1])
        scores.append(probs.gather(1, first).squeeze(1).cpu())
        tops.append(first.squeeze(1).cpu())
        if labels is not None:
            y = labels[start : start + batch_size].to(device)
            losses.append(torch.nn.functional.cross_entropy(logits, y, reduction="none").cpu())
    cat = lambda xs: torch.cat(xs).numpy() if xs else np.zeros(0)
    return cat(losses), cat(scores), cat(tops)


def run(params: Params, samples_dir=Path("build/samples"), noisy_dir=Path("build/noisy"),
        model_dir=Path("build/model"), logs_dir=Path("build/logs"), checkpoint=Path("build/checkpoints/train.pt"),
        epochs_csv=Path("plots/epochs.csv")) -> list[dict]:  # fmt: skip
    if params.train.threads > 0:
        torch.set_num_threads(params.train.threads)
    device = choose_device(params.train.device)
    config = params.model_config()
    samples = io.load_samples(samples_dir)
    noisy = corrupt.load_noisy_labels(noisy_dir)
    data = MethodNameData(samples, noisy, params.extract.max_contexts)
    torch.manual_seed(params.seed)
    model = code2vec.Code2Vec(data.n_tokens, data.n_paths, len(data.target_names), config).to(device)
    optimizer = code2vec.make_optimizer(model)
    log(
        f"train: {params.model} on {device}, {len(data.train_labels)} training / {len(data.test_labels)} test samples, "
        f"vocab {data.n_tokens} tokens, {data.n_paths} paths, {len(data.target_names)} names, "
        f"{code2vec.count_trainable(model):,} parameters"
    )

    print_ = fingerprint(params, [samples_dir / "contexts.npz", noisy_dir / "labels.tsv"])
    history: list[dict] = []
    per_sample: dict[str, list[np.ndarray]] = {k: [] for k in ("train_loss", "train_score", "test_score", "test_pred")}
    start_epoch = 0
    if checkpoint.exists():
        state = torch.load(checkpoint, map_location=device, weights_only=False)
        if state.get("fingerprint") == print_ and state["epoch"] <= params.train.epochs:
            model.load_state_dict(state["model"])
            optimizer.load_state_dict(state["optimizer"])
            history, per_sample, start_epoch = state["history"], state["per_sample"], state["epoch"]
            log(f"train: resuming after epoch {start_epoch} from {checkpoint}")

    variant_contexts, variant_owner = data.variants
    for epoch in range(start_epoch, params.train.epochs):
        began = time.perf_counter()
        model.train()
        torch.manual_seed(params.seed * 100_003 + epoch)  # dropout and order: a function of (seed, epoch)
        order = torch.randperm(len(data.train_labels))
        batches = [order[i : i + params.train.batch_size] for i in range(0, len(order), params.train.batch_size)]
        total = 0.0
        for idx in progress_bar(batches, description=f"epoch {epoch + 1}/{params.train.epochs}"):
            loss = model.loss(data.train_contexts[idx].to(device), data.train_labels[idx].to(device)).mean()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total += loss.item() * len(idx)

        bs, k = params.train.eval_batch_size, config.top_k
        train_loss, train_score, train_pred = predict(model, data.train_contexts, data.train_labels, device, bs, k)
        _, test_score, test_pred = predict(model, data.test_contexts, None, device, bs, k)
        name = lambda ids: [data.target_names[i] if i else None for i in ids]
        train_f1 = metrics.subtoken_f1(data.train_names, name(train_pred))
        test_f1 = metrics.subtoken_f1(data.test_names, name(test_pred))
        csr = (float("nan"), 0, 0)
        if params.train.csr and len(variant_owner):
            _, _, variant_pred = predict(model, variant_contexts, None, device, bs, k)
            csr = metrics.critical_sample_ratio(test_pred, variant_pred, variant_owner, len(test_pred))
        row = {
            "epoch": epoch + 1,
            "train_loss": total / max(len(order), 1),
            "train_f1": train_f1.f1, "train_precision": train_f1.precision, "train_recall": train_f1.recall,
            "test_f1": test_f1.f1, "test_precision": test_f1.precision, "test_recall": test_f1.recall,
            "gini": metrics.gini(train_loss),
            "csr": csr[0], "csr_critical": csr[1], "csr_transformable": csr[2],
            "test_score": float(test_score.mean()) if len(test_score) else 0.0,
            "train_score": float(train_score.mean()) if len(train_score) else 0.0,
            "seconds": round(time.perf_counter() - began, 3),
        }  # fmt: skip
        history.append(row)
        for key, values in zip(per_sample, (train_loss, train_score, test_score, test_pred)):
            per_sample[key].append(values)
        log(
            f"epoch {epoch + 1}: train F1 {row['train_f1']:.3f}  test F1 {row['test_f1']:.3f}  "
            f"gini {row['gini']:.3f}  CSR {row['csr']:.3f}  score {row['test_score']:.3f}  ({row['seconds']:.1f} s)"
        )
        state = {"fingerprint": print_, "epoch": epoch + 1, "model": model.state_dict(),
                 "optimizer": optimizer.state_dict(), "history": history, "per_sample": per_sample}  # fmt: skip
        checkpoint.parent.mkdir(parents=True, exist_ok=True)
        torch.save(state, checkpoint.with_suffix(".tmp"))
        os.replace(checkpoint.with_suffix(".tmp"), checkpoint)

    with io.atomic_dir(model_dir) as tmp:
        torch.save({"model": model.state_dict(), "config": asdict(config), "target_names": data.target_names,
                    "n_tokens": data.n_tokens, "n_paths": data.n_paths}, tmp / "model.pt")  # fmt: skip
    with io.atomic_dir(logs_dir) as tmp:
        arrays = {k: np.stack(v) for k, v in per_sample.items()}
        np.savez_compressed(tmp / "per_sample.npz", **arrays, train_kept=data.train_kept)
        (tmp / "counts.json").write_text(json.dumps({
            "train_samples": len(data.train_labels), "test_samples": len(data.test_labels),
            "train_dropped_no_context": int(len(noisy) - len(data.train_labels)),
            "test_oov_names": int((data.test_labels == 0).sum()), "target_vocab": len(data.target_names),
            "token_vocab": data.n_tokens, "path_vocab": data.n_paths,
            "parameters": code2vec.count_trainable(model), "device": str(device),
        }, indent=2) + "\n")  # fmt: skip
    epochs_csv.parent.mkdir(parents=True, exist_ok=True)
    tmp_csv = epochs_csv.with_suffix(".tmp")
    with open(tmp_csv, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=EPOCH_COLUMNS)
        writer.writeheader()
        for row in history:
            writer.writerow({k: (f"{v:.6f}" if isinstance(v, float) else v) for k, v in row.items()})
    os.replace(tmp_csv, epochs_csv)
    return history
