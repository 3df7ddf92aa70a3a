"""MethodName: predict a Java method's name from its body (code2vec, code2seq).

    naming_task.py      the Task: extract, corrupt, final metrics, figures
    java_paths.py       a Java method -> path-contexts (tree-sitter), as the originals' extractors
    java_ast.py         the originals' AST shapes rebuilt from tree-sitter's
    java_tokens.py      terminals, labels, path hashing: the originals' normalisation
    java_corpora.py     the one extraction path: a zip or folder of .java files (jdk-top10, a
                        user's corpus) or code2seq's Java-* archives, streamed, on all cores,
                        resumable, by the dataset's recipe (datasets.RECIPES; npzstream, zip_pieces)
    method_samples.py   what depends on the source and recipe: reading members, choosing methods,
                        splitting by package
    name_training.py    what both models' training shares: labels, batches, the epoch's measurements
    code2vec.py         the model as the original computes it (the reference); code2vec_training.py
                        its data and measurements
    code2vec_fast.py    the same model for less (train.implementation: fast, the default)
    code2seq.py         the model as the original computes it (the reference), the vocabularies'
                        specials, decoding and scoring helpers; code2seq_training.py its data and
                        measurements
    code2seq_fast.py    the same model for less (train.implementation: fast, the default)
    tf_fidelity.py      code2seq's parameters as the original's TF variables (for the tests)
    dropout.py          ByteDropout, the fast models' dropout
"""

from codemem.task import ModelSpec, TaskSpec

SPEC = TaskSpec(
    name="methodname",
    task="codemem.methodname.naming_task:TASK",
    models=(
        ModelSpec("code2vec", "Code2VecConfig", "codemem.methodname.code2vec:Code2Vec",
                  "codemem.methodname.code2vec_training:Code2VecTraining"),
        ModelSpec("code2seq", "Code2SeqConfig", "codemem.methodname.code2seq:Code2Seq",
                  "codemem.methodname.code2seq_training:Code2SeqTraining"),
    ),
)
