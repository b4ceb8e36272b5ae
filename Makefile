# The README's two commands, `make demo` and `make test`, set up everything
# first (scripts/setup.sh: Debian packages, Docker daemon, .venv/, images) and
# skip what is already there, so a second run starts at once.
SHELL := /bin/bash
PY := .venv/bin/python
PYTEST_ARGS ?=
# pytest-xdist, one worker per core, a test file's tests on one worker (they share
# module fixtures: an image, a browser's env); TEST_WORKERS= runs them in this process.
TEST_WORKERS ?= -n auto --dist loadfile
DEMO_ARGS ?=

.PHONY: demo test lint integration setup docker venv images help
.DEFAULT_GOAL := help

help: ## list the targets
	@grep -E '^[a-z]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-8s %s\n", $$1, $$2}'

demo: setup ## set up, then train a tiny agent to use a calculator tool (SFT, then GRPO)
	$(PY) examples/calculator_demo.py $(DEMO_ARGS)

test: setup ## set up, check the code (make lint), then run the tests (PYTEST_ARGS="-k images" to pick some)
	$(MAKE) --no-print-directory lint
	$(PY) -m pytest -q $(TEST_WORKERS) $(PYTEST_ARGS)

lint: ## ruff (style, docstrings) and mypy (types) over the code; needs .venv/ (make venv)
	$(PY) -m ruff check .
	$(PY) -m mypy

# llama-cpp-python compiles llama.cpp (CPU only) when no wheel of it is in pip's
# cache: at -O0 and without its multimodal library, as the test model is tiny and
# compile time is what counts. Its pure-Python dependencies keep the lock's pins.
LLAMA_CMAKE_ARGS ?= -DLLAVA_BUILD=OFF -DGGML_NATIVE=OFF -DGGML_BLAS=OFF \
  -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_TOOLS=OFF \
  -DLLAMA_BUILD_SERVER=OFF -DCMAKE_C_FLAGS_RELEASE=-O0 -DCMAKE_CXX_FLAGS_RELEASE=-O0

integration: setup ## set up, build llama-cpp-python's server (once), test toolgym against it
	grep -E '^[a-zA-Z0-9]' requirements.lock | sed 's/ \\$$//' >.venv/lock-pins.txt
	$(PY) -c 'import tomllib; print(*tomllib.load(open("pyproject.toml", "rb"))["project"]\
	  ["optional-dependencies"]["integration"], sep="\n")' >.venv/integration.txt
	CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" $(PY) -m pip install -q -r .venv/integration.txt \
	  -c .venv/lock-pins.txt
	$(PY) -c 'import llama_cpp.server'
	$(PY) -m pytest -q -m integration tests/integration $(PYTEST_ARGS)

setup: ## install packages, start Docker, make .venv/, build images
	scripts/setup.sh

docker: ## install Docker and start its daemon if none answers
	scripts/setup.sh packages docker

venv: ## make .venv/ and install toolgym[dev] into it
	scripts/setup.sh packages venv

images: ## build the sandbox images that are missing or out of date
	scripts/setup.sh packages docker venv images
