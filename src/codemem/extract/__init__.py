"""extract: source code -> samples, one module per language (java.py, python.py) and per task
(methodname.py: path-contexts for code2vec/code2seq; varmisuse.py: GREAT-format JSON lines)."""

from __future__ import annotations


def run(params, layout=None):
    """The extract stage: the dataset's task builds build/samples from build/raw."""
    from codemem import task
    from codemem.io import PROJECT

    return task.get(params.task).extract(params, layout or PROJECT)
