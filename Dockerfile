# codemem: the pipeline in an image; `dvc repro` by default. `make image` (repro/image.sh) builds it
# with docker, or with buildah where no docker engine runs; by hand:
#   docker build -t codemem .                                   # torch's CUDA build
#   docker build -t codemem-cpu --build-arg TORCH_VARIANT=cpu .  # torch's CPU build (from TORCH_CPU_INDEX)
#   docker run --gpus all -u $(id -u):$(id -g) -v $PWD:/work codemem dvc repro
# Mounting the checkout on /work writes build/, metrics/ and plots/ back into it, owned by the
# user given with -u (any uid works: HOME is /tmp, git's identity and safe.directory are system-wide).
#
# The base: Debian 12 (bookworm), whose python3 is 3.11, the interpreter requirements.lock was made
# with, and whose archive has openjdk-17-source, the default corpus. No nvidia/cuda base: torch's
# CUDA wheels on PyPI bring the CUDA runtime as nvidia-* wheels, and the driver comes from the host
# (NVIDIA container toolkit: `docker run --gpus all`, podman `--device nvidia.com/gpu=all`), so a
# CUDA base would only add gigabytes, and the same file makes the CPU image. BASE_IMAGE may be any
# Debian bookworm image, e.g. a local one made with debootstrap where no registry is reachable
# (repro/image.sh does that).
ARG BASE_IMAGE=debian:bookworm-slim

# The build context without pip-inputs/ (see below): pip reads it from a bind mount, and it must not
# end up in the image.
FROM ${BASE_IMAGE} AS checkout
COPY . /checkout
RUN rm -rf /checkout/pip-inputs

FROM ${BASE_IMAGE}
# cuda: torch 2.13.0 from PyPI, which is its CUDA build (about 3 GB with the nvidia-* wheels).
# cpu: torch 2.13.0+cpu, from TORCH_CPU_INDEX (PyTorch's CPU index by default) and from *.whl files
# in the build context's pip-inputs/ folder, e.g. where that index is not reachable.
# pip-inputs/ (git-ignored, absent by default; repro/image.sh fills it from TORCH_WHEELS and PIP_CERT):
# *.whl for the cpu variant's torch, and ca.crt, the TLS roots pip then trusts (behind a proxy that
# re-signs HTTPS). It is bind-mounted while pip runs, never copied into the image:
#   mkdir -p pip-inputs && cp torch-2.13.0+cpu-cp311-cp311-manylinux_2_28_x86_64.whl pip-inputs/
#   docker build --build-arg TORCH_VARIANT=cpu --build-arg TORCH_CPU_INDEX= -t codemem-cpu .
ARG TORCH_VARIANT=cuda
ARG TORCH_CPU_INDEX=https://download.pytorch.org/whl/cpu

# USER and LOGNAME name whatever uid runs the image (`-u $(id -u):$(id -g)` has no /etc/passwd
# entry): DVC calls getpass.getuser(), which reads them before the passwd file.
ENV DEBIAN_FRONTEND=noninteractive \
    DVC_NO_ANALYTICS=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PATH=/opt/venv/bin:$PATH \
    HOME=/tmp \
    USER=codemem \
    LOGNAME=codemem

SHELL ["/bin/bash", "-o", "pipefail", "-c"]

# Python 3.11 with venv, git for DVC, and the JDK sources (openjdk-17-source, with the JDK it depends
# on, whose `release` file names the version recorded in build/raw/manifest.json): present at build
# time, so `dvc repro` needs no network. Debian's archive drops superseded versions (security
# updates of openjdk-17 come every few months), so apt packages are not pinned (a pin would break the
# build); Python packages are pinned exactly below.
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 python3-venv git ca-certificates openjdk-17-source \
 && rm -rf /var/lib/apt/lists/* \
 && python3 -c 'import sys; assert sys.version_info[:2] == (3, 11), sys.version'

WORKDIR /work
COPY requirements.lock pyproject.toml ./
# torch first and on its own (constrained by the lock, so its dependencies get the locked versions),
# then the lock, which then finds torch satisfied: no other package can pull a different torch build.
# hadolint ignore=SC2086
RUN --mount=type=bind,target=/ctx \
    if [ -f /ctx/pip-inputs/ca.crt ]; then export PIP_CERT=/ctx/pip-inputs/ca.crt; fi \
 && python3 -m venv /opt/venv \
 && case "$TORCH_VARIANT" in \
      cuda) pip install -c requirements.lock torch==2.13.0 ;; \
      cpu) links=""; if [ -d /ctx/pip-inputs ]; then links="--find-links /ctx/pip-inputs"; fi; \
           pip install -c requirements.lock $links ${TORCH_CPU_INDEX:+--extra-index-url "$TORCH_CPU_INDEX"} \
             torch==2.13.0+cpu ;; \
      *) echo "TORCH_VARIANT must be cuda or cpu, not '$TORCH_VARIANT'" >&2; exit 2 ;; \
    esac \
 && pip install -r requirements.lock \
 && python -c 'import torch; print("torch", torch.__version__, "CUDA", torch.version.cuda)'

COPY --from=checkout --chown=1000:1000 /checkout /work
# (pip fetches setuptools to build the editable install: network, hence ca.crt again)
RUN --mount=type=bind,target=/ctx \
    if [ -f /ctx/pip-inputs/ca.crt ]; then export PIP_CERT=/ctx/pip-inputs/ca.crt; fi \
 && pip install --no-deps -e . \
 && rm -rf /work/src/*.egg-info \
 && git config --system user.name codemem \
 && git config --system user.email codemem@localhost \
 && git config --system --add safe.directory '*' \
 && useradd --no-create-home --home-dir /tmp --uid 1000 codemem
USER 1000

CMD ["dvc", "repro"]
