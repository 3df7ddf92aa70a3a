"""extract: build/raw -> build/samples. The dataset's task does it: MethodName's path-contexts
(codemem.methodname.java_corpora, one path for every source) or VarMisuse's GREAT JSON lines
(codemem.varmisuse.bug_datasets)."""

from __future__ import annotations


def run(params, layout=None):
    """The extract stage: the dataset's task builds build/samples from build/raw."""
    from codemem import task
    from codemem.storage import PROJECT

    return task.get(params.task).extract(params, layout or PROJECT)
