#!/usr/bin/env bash
# Refreshes requirements.lock: the exact versions (with hashes) that
# scripts/setup.sh installs, so `make demo`, `make test` and CI on a fresh
# machine get what was tested.  pyproject.toml keeps the ranges a library user
# gets; this file pins one tested point inside them.
#
#   usage: scripts/lock.sh [--upgrade]   (without it, pins already in the lock are kept)
#
# The lock covers every extra of pyproject.toml but gpu (vllm pulls a CUDA
# stack) and integration (llama-cpp-python compiles llama.cpp: `make integration`
# installs it, constrained to this lock's pins) and torch's CPU build (TORCH_PIN, default torch==2.13.0+cpu: the build
# this project's machines carry on disk; elsewhere pip finds it on
# https://download.pytorch.org/whl/cpu, e.g. PIP_EXTRA_INDEX_URL=that URL).
# Needs network access to the package index; takes about 2 minutes.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
TORCH_PIN=${TORCH_PIN:-torch==2.13.0+cpu}
tools=$(mktemp -d)
trap 'rm -rf "$tools"' EXIT
"$PYTHON" -m venv "$tools/venv"
"$tools/venv/bin/pip" install -q pip-tools==7.6.2
echo "$TORCH_PIN" >"$tools/torch.txt"
mapfile -t extras < <("$PYTHON" -c 'import tomllib
extras = tomllib.load(open("pyproject.toml", "rb"))["project"].get("optional-dependencies", {})
print("\n".join(name for name in extras if name not in ("gpu", "integration")))')
args=()
for extra in "${extras[@]}"; do args+=(--extra "$extra"); done
[[ ${1:-} == --upgrade ]] && args+=(--upgrade)
CUSTOM_COMPILE_COMMAND="scripts/lock.sh" "$tools/venv/bin/pip-compile" -q --generate-hashes \
  --strip-extras --allow-unsafe --no-emit-index-url --no-emit-find-links \
  -c "$tools/torch.txt" "${args[@]}" -o requirements.lock pyproject.toml
# The torch pin's temporary file name is noise in the "via" comments.
sed -i "s|-c $tools/torch.txt|TORCH_PIN ($TORCH_PIN)|" requirements.lock
echo "requirements.lock: $(grep -c '^[a-z0-9]' requirements.lock) packages pinned"
