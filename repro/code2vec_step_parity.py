"""Hold our code2vec's training step to the original's: the same weights, batches and updates.

    TF_PYTHON repro/code2vec_step_parity.py dump CODE2VEC_DIR DATA_PREFIX OUT.npz [--steps 30]
    python repro/code2vec_step_parity.py compare OUT.npz [--implementation reference|fast] [--torch-adam]

`dump` runs under TensorFlow's python with a checkout of tech-srl/code2vec (not part of this
repository) on inputs `repro/code2vec_oracle.py write` made (DATA_PREFIX.train.c2v, .dict.c2v):
it builds the original's training graph (`Code2VecModel._build_tf_training_graph` on its own
`PathContextReader`), dropout off (DROPOUT_KEEP_RATE 1.0, so the two runs draw nothing at random),
and saves its five initial variables, then runs `--steps` steps of its Adam, saving each step's
batch (the reader's indices) and loss, and the variables after the last step.

`compare` loads those initial variables into our model (`codemem.methodname.code2vec`, or
code2vec_fast), in the original's index space (its PAD_OR_OOV token and path index 0 and target OOV
0 are ours), takes the same steps on the same batches with our optimizer, and prints each step's
loss beside the original's and how far the weights have moved apart. Equal losses and weights to
float32 rounding mean the model, loss and optimizer are the original's; a difference that remains
between full training runs then lies in what the step does not cover: the reader's order and the
dropout draws. `--torch-adam` takes torch's own Adam instead, which adds epsilon after the bias
correction where TF adds it before (code2vec.TF1Adam): on jdk-top10's samples at 50 % noise its
weights are up to 28 % of their movement from the original's after 30 steps, ours 1e-4.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

VARIABLES = ("WORDS_VOCAB", "PATHS_VOCAB", "TARGET_WORDS_VOCAB", "TRANSFORM", "ATTENTION")


def dump(code2vec_dir: Path, prefix: str, out: Path, steps: int) -> None:
    """The original's initial variables, `steps` batches, their losses and the variables after them."""
    sys.path.insert(0, str(code2vec_dir))
    import tensorflow as tf
    from config import Config
    from path_context_reader import EstimatorAction, PathContextReader
    from tensorflow_model import Code2VecModel, _TFTrainModelInputTensorsFormer

    config = Config(set_defaults=True)
    config.TRAIN_DATA_PATH_PREFIX, config.DROPOUT_KEEP_RATE, config.DL_FRAMEWORK = prefix, 1.0, "tensorflow"
    model = Code2VecModel(config)
    reader = PathContextReader(vocabs=model.vocabs, model_input_tensors_former=_TFTrainModelInputTensorsFormer(),
                               config=config, estimator_action=EstimatorAction.Train)  # fmt: skip
    iterator = tf.compat.v1.data.make_initializable_iterator(reader.get_dataset())
    batch = iterator.get_next()
    optimizer, loss = model._build_tf_training_graph(batch)
    variables = {v.name.split("/")[-1].split(":")[0]: v for v in tf.compat.v1.trainable_variables()}
    model._initialize_session_variables()
    model.sess.run(iterator.initializer)
    saved = {f"initial_{name}": value for name, value in model.sess.run(variables).items()}
    for step in range(steps):
        _, step_loss, (target, source, path, target_token, mask) = model.sess.run([optimizer, loss, batch])
        saved |= {f"step{step}_contexts": np.stack([source, path, target_token], -1).astype(np.int32),
                  f"step{step}_labels": target.reshape(-1).astype(np.int64), f"step{step}_loss": np.float32(step_loss),
                  f"step{step}_mask": mask.astype(np.float32)}  # fmt: skip
    saved |= {f"final_{name}": value for name, value in model.sess.run(variables).items()}
    np.savez(out, steps=steps, **saved)
    model.close_session()


def compare(dumped: Path, implementation: str, torch_adam: bool = False) -> list[dict]:
    """Our model and optimizer on the original's batches from its initial weights; per step the two
    losses and the largest weight difference so far."""
    import torch

    from codemem.methodname import code2vec, code2vec_fast
    from codemem.model_configs import Code2VecConfig

    z = np.load(dumped)
    config = Code2VecConfig(dropout_keep=1.0)
    module = {"reference": code2vec, "fast": code2vec_fast}[implementation]
    n_tokens, n_paths, n_targets = (z[f"initial_{v}"].shape[0] for v in VARIABLES[:3])
    model = module.Code2Vec(n_tokens, n_paths, n_targets, config)
    ours = {"WORDS_VOCAB": model.token_embedding.weight, "PATHS_VOCAB": model.path_embedding.weight,
            "TARGET_WORDS_VOCAB": model.target_embedding.weight, "TRANSFORM": model.transform,
            "ATTENTION": model.attention}  # fmt: skip
    with torch.no_grad():
        for name, parameter in ours.items():
            parameter.copy_(torch.from_numpy(z[f"initial_{name}"]))
    optimizer = torch.optim.Adam(model.parameters(), lr=config.learning_rate, eps=config.adam_epsilon) \
        if torch_adam else module.make_optimizer(model)  # fmt: skip
    rows = []
    for step in range(int(z["steps"])):
        contexts = torch.from_numpy(z[f"step{step}_contexts"]).long()
        # The reader's mask is ours (a context is padding when its three indices are PAD_OR_OOV).
        assert np.array_equal((contexts != 0).any(-1).numpy(), z[f"step{step}_mask"] > 0), "masks differ"
        loss = model.loss(contexts, torch.from_numpy(z[f"step{step}_labels"])).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        rows.append({"step": step, "original_loss": float(z[f"step{step}_loss"]), "our_loss": loss.item()})
    with torch.no_grad():
        for name, parameter in ours.items():
            original = z[f"final_{name}"]
            rows[-1][f"max_diff_{name}"] = float(np.abs(parameter.numpy() - original).max())
            rows[-1][f"moved_{name}"] = float(np.abs(original - z[f"initial_{name}"]).max())
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    d = sub.add_parser("dump", help="the original's weights, batches and losses (run with TensorFlow's python)")
    d.add_argument("code2vec", type=Path, help="a checkout of tech-srl/code2vec")
    d.add_argument("prefix", help="the inputs' prefix, as `code2vec_oracle.py write` made them")
    d.add_argument("out", type=Path)
    d.add_argument("--steps", type=int, default=30)
    c = sub.add_parser("compare", help="our model's steps on the dumped batches")
    c.add_argument("dumped", type=Path)
    c.add_argument("--implementation", choices=("reference", "fast"), default="reference")
    c.add_argument("--torch-adam", action="store_true",
                   help="torch's own Adam instead of ours (epsilon after the bias correction), to see the difference")
    args = parser.parse_args()
    if args.command == "dump":
        dump(args.code2vec, args.prefix, args.out, args.steps)
        return
    rows = compare(args.dumped, args.implementation, args.torch_adam)
    print("step  original loss  our loss   relative difference")
    for row in rows:
        o, u = row["original_loss"], row["our_loss"]
        print(f"{row['step']:4d}  {o:13.6f}  {u:9.6f}  {abs(o - u) / max(abs(o), 1e-12):.2e}")
    print(f"after step {rows[-1]['step']}: largest |ours - original| per variable (how far the original moved)")
    for name in VARIABLES:
        print(f"  {name:<18} {rows[-1][f'max_diff_{name}']:.3e}  ({rows[-1][f'moved_{name}']:.3e})")


if __name__ == "__main__":
    main()
