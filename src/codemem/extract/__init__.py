"""extract: source code -> samples, one module per language (java.py, python.py) and per task."""

from __future__ import annotations


def run(params):
    if params.task == "methodname":
        from codemem.extract import methodname

        return methodname.run(params)
    raise NotImplementedError(f"no extractor for task {params.task!r}")
