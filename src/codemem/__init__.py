"""codemem: do neural models of code generalize, or memorize? The study's pipeline (README.md)."""

import os

# Same params, same bits. MKL chooses among its code paths per call (threads, alignment), and which
# one a process gets varies: one code2vec run in ten differed in the 7th digit from the same run
# started again. In MKL's strict conditional-numerical-reproducibility mode every process takes the
# same path (30 of 30 runs equal). It must be set before MKL starts, so here, before torch loads.
os.environ.setdefault("MKL_CBWR", "AUTO,STRICT")
