# codemem: CUDA image that runs the pipeline with `dvc repro` (first version; see README).
#   docker build -t codemem .
#   docker run --gpus all -u $(id -u):$(id -g) -v $PWD:/work codemem dvc repro
FROM nvidia/cuda:12.6.3-base-ubuntu22.04

ENV DEBIAN_FRONTEND=noninteractive \
    DVC_NO_ANALYTICS=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PATH=/opt/venv/bin:$PATH

# Python 3.11 (the pinned lock's interpreter), git for DVC, and the JDK sources: the embedded
# jdk-top10 corpus, fetched at build time so `dvc repro` needs no network.
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3.11 python3.11-venv git ca-certificates openjdk-17-source \
 && rm -rf /var/lib/apt/lists/*

WORKDIR /work
COPY requirements.lock pyproject.toml README.md ./
# torch's CUDA build from PyPI, same version as the CPU wheel used on bare metal.
RUN python3.11 -m venv /opt/venv \
 && pip install torch==2.13.0 \
 && pip install -r requirements.lock

COPY . .
RUN pip install --no-deps -e . \
 && git config --system user.name codemem \
 && git config --system user.email codemem@localhost \
 && git config --system --add safe.directory '*' \
 && useradd --create-home --uid 1000 codemem \
 && chown -R codemem /work
USER codemem

CMD ["dvc", "repro"]
