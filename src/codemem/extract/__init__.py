"""extract: source code -> samples, one module per language (java.py, python.py) and per task
(methodname.py: path-contexts for code2vec/code2seq; varmisuse.py: GREAT-format JSON lines)."""

from __future__ import annotations


def run(params):
    from codemem import datasets

    if datasets.get(params.dataset).kind == "java-archive":
        from codemem.extract import javasets

        return javasets.run(params)
    if params.task == "methodname":
        from codemem.extract import methodname

        return methodname.run(params)
    if params.task == "varmisuse":
        from codemem.extract import varmisuse

        return varmisuse.run(params)
    raise NotImplementedError(f"no extractor for task {params.task!r}")
