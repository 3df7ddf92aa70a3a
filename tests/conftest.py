"""Shared fixtures: a small real Java corpus cut from the JDK's own sources."""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

import pytest

from codemem.fetch import debian_jdk_sources, local_jdk_sources

os.environ.setdefault("CODEMEM_QUIET", "1")
os.environ.setdefault("DVC_NO_ANALYTICS", "1")

# java.util and java.io: ~450 files, enough for four names with a few dozen methods each.
TINY_PREFIXES = ("java.base/java/util/", "java.base/java/io/")


@pytest.fixture(scope="session")
def jdk_src_zip(tmp_path_factory) -> Path:
    local = local_jdk_sources()
    if local:
        return local[0]
    return debian_jdk_sources(tmp_path_factory.mktemp("jdk"))[0]


@pytest.fixture(scope="session")
def tiny_corpus(jdk_src_zip, tmp_path_factory) -> Path:
    """A folder of real JDK .java files (java.util, java.io)."""
    root = tmp_path_factory.mktemp("tiny-corpus")
    with zipfile.ZipFile(jdk_src_zip) as z:
        for name in z.namelist():
            if name.startswith(TINY_PREFIXES) and name.endswith(".java"):
                z.extract(name, root)
    return root
