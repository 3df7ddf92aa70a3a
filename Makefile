# Two entry points for a fresh machine:
#   make run    set up the virtualenv and run the pipeline on the defaults (dvc repro)
#   make test   set up the virtualenv and run the test suite
#   make image  build the container image (docker, else buildah; see repro/image.sh for its settings)
VENV ?= .venv
PY := $(VENV)/bin/python
export PATH := $(abspath $(VENV))/bin:$(PATH)
export DVC_NO_ANALYTICS := 1

.PHONY: setup run test lint bench image image-check clean

setup: $(VENV)/.installed

# torch first and pinned on its own, so no other package can pull a different (CUDA) build.
$(VENV)/.installed: pyproject.toml requirements.lock
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check torch==2.13.0
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.lock
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps -e .
	touch $@

run: setup
	dvc repro
	dvc metrics show

test: setup
	$(PY) -m pytest -q

lint: setup
	$(VENV)/bin/ruff check src tests

bench: setup
	$(PY) repro/bench.py

# IMAGE, TORCH_VARIANT (cuda|cpu), TORCH_WHEELS, BASE_IMAGE, BUILDER pass through the environment.
image:
	repro/image.sh

# Build the CPU image here and run `dvc repro` and `dvc exp run` inside it, offline (repro/image_check.sh).
image-check:
	repro/image_check.sh

clean:
	rm -rf build .dvc/tmp
