"""VarMisuse: locate a misused variable and point at its repair (Transformer, GREAT, GGNN).

    misuse_task.py      the Task: extract, corrupt, final metrics, figures
    bug_datasets.py     extraction: stdlib-great (a folder of .py files) and the Py150-Great shards
    python_corpus.py    stdlib-great's corpus build, streamed on all cores
    python_samples.py   one .py file -> GREAT-style samples (python_tokens, python_flow, python_edges)
    great_format.py     the GREAT JSON-lines format, its vocabulary and edge types
    bug_batches.py      encoded samples on disk and the original's token-budget batches
    bug_training.py     training and the per-step measurements, for all three models
    pointer_model.py    what the three share: embedding, the two pointer heads, the loss
    transformer.py, great.py, ggnn.py   the models
"""

from codemem.task import ModelSpec, TaskSpec

SPEC = TaskSpec(
    name="varmisuse",
    task="codemem.varmisuse.misuse_task:TASK",
    models=tuple(
        ModelSpec(name, config, f"codemem.varmisuse.{name}:{cls}", "codemem.varmisuse.bug_training:VarMisuseTraining")
        for name, config, cls in [("transformer", "TransformerConfig", "Transformer"),
                                  ("great", "GREATConfig", "GREAT"), ("ggnn", "GGNNConfig", "GGNN")]
    ),
)
