# codemem: the pipeline in a CUDA image; `dvc repro` by default.
#   docker build -t codemem .
#   docker run --gpus all -u $(id -u):$(id -g) -v $PWD:/work codemem dvc repro
# Mounting the checkout on /work writes metrics/ and plots/ back into it, owned by the host user.
FROM nvidia/cuda:12.6.3-base-ubuntu22.04

ENV DEBIAN_FRONTEND=noninteractive \
    DVC_NO_ANALYTICS=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PATH=/opt/venv/bin:$PATH \
    HOME=/tmp

SHELL ["/bin/bash", "-o", "pipefail", "-c"]

# Python 3.11 (the interpreter requirements.lock was made with) from the deadsnakes archive, git for
# DVC, and the JDK sources: the embedded jdk-top10 corpus, present at build time so `dvc repro`
# needs no network. Ubuntu's archive drops superseded versions, so apt packages are not pinned
# (a pin would break the build within weeks); Python packages are pinned exactly below.
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends software-properties-common gpg-agent \
 && add-apt-repository -y ppa:deadsnakes/ppa \
 && apt-get update \
 && apt-get install -y --no-install-recommends python3.11 python3.11-venv git ca-certificates openjdk-17-source \
 && rm -rf /var/lib/apt/lists/*

WORKDIR /work
COPY requirements.lock pyproject.toml ./
# torch 2.13.0's default PyPI build bundles CUDA; the same version as the CPU wheel on bare metal.
RUN python3.11 -m venv /opt/venv \
 && pip install torch==2.13.0 \
 && pip install -r requirements.lock

COPY . .
RUN pip install --no-deps -e . \
 && git config --system user.name codemem \
 && git config --system user.email codemem@localhost \
 && git config --system --add safe.directory '*' \
 && useradd --create-home --uid 1000 codemem \
 && chown -R 1000:1000 /work
USER 1000

CMD ["dvc", "repro"]
