"""repro/code2vec_step_parity.py `compare`: our steps on dumped batches, on a dump made by hand."""

import importlib.util
from pathlib import Path

import numpy as np
import torch

from codemem.methodname import code2vec
from codemem.model_configs import Code2VecConfig

spec = importlib.util.spec_from_file_location(
    "code2vec_step_parity", Path(__file__).resolve().parents[1] / "repro" / "code2vec_step_parity.py")
parity = importlib.util.module_from_spec(spec)
spec.loader.exec_module(parity)


def _dump(path: Path, steps: int = 3) -> None:
    """What `dump` writes, made with TF's update written out (lr_t m / (sqrt(v) + eps)) in numpy
    float64 on a model whose forward pass is ours: a stand-in for the original's graph."""
    torch.manual_seed(0)
    model = code2vec.Code2Vec(12, 9, 4, Code2VecConfig(dropout_keep=1.0)).double()
    names = dict(zip(parity.VARIABLES, (model.token_embedding.weight, model.path_embedding.weight,
                                         model.target_embedding.weight, model.transform, model.attention)))
    saved = {f"initial_{n}": p.detach().numpy().astype(np.float32).copy() for n, p in names.items()}
    with torch.no_grad():
        for n, p in names.items():
            p.copy_(torch.from_numpy(saved[f"initial_{n}"]).double())
    m = {n: np.zeros_like(p.detach().numpy()) for n, p in names.items()}
    v = {n: np.zeros_like(p.detach().numpy()) for n, p in names.items()}
    rng = np.random.default_rng(1)
    for step in range(steps):
        contexts = rng.integers(0, [12, 9, 12], size=(5, 6, 3)).astype(np.int32)
        contexts[:, 4:] = 0  # padding
        labels = rng.integers(1, 4, size=5)
        loss = model.loss(torch.from_numpy(contexts).long(), torch.from_numpy(labels)).mean()
        model.zero_grad()
        loss.backward()
        t = step + 1
        lr_t = 1e-3 * np.sqrt(1 - 0.999**t) / (1 - 0.9**t)
        with torch.no_grad():
            for n, p in names.items():
                g = p.grad.numpy()
                m[n] = 0.9 * m[n] + 0.1 * g
                v[n] = 0.999 * v[n] + 0.001 * g * g
                p -= torch.from_numpy(lr_t * m[n] / (np.sqrt(v[n]) + 1e-8))
        saved |= {f"step{step}_contexts": contexts, f"step{step}_labels": labels.astype(np.int64),
                  f"step{step}_loss": np.float32(loss.item()), f"step{step}_mask": (contexts != 0).any(-1).astype(np.float32)}
    saved |= {f"final_{n}": p.detach().numpy().astype(np.float32) for n, p in names.items()}
    np.savez(path, steps=steps, **saved)


def test_compare_follows_tf_updates_and_shows_torch_adams_difference(tmp_path):
    _dump(tmp_path / "dump.npz")
    for implementation in ("reference", "fast"):
        rows = parity.compare(tmp_path / "dump.npz", implementation)
        assert [r["step"] for r in rows] == [0, 1, 2]
        for r in rows:
            assert abs(r["original_loss"] - r["our_loss"]) < 1e-5
        assert all(rows[-1][f"max_diff_{n}"] < 5e-6 for n in parity.VARIABLES)  # float32 rounding
        assert all(rows[-1][f"moved_{n}"] > 1e-4 for n in parity.VARIABLES)
    # torch's Adam puts epsilon elsewhere: rows with tiny gradients move apart
    torch_rows = parity.compare(tmp_path / "dump.npz", "reference", torch_adam=True)
    assert max(torch_rows[-1][f"max_diff_{n}"] for n in parity.VARIABLES) > 1e-4
