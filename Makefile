# The README's two commands, `make demo` and `make test`, set up everything
# first (scripts/setup.sh: Debian packages, Docker daemon, .venv/, images) and
# skip what is already there, so a second run starts at once.
SHELL := /bin/bash
PY := .venv/bin/python
PYTEST_ARGS ?=
DEMO_ARGS ?=

.PHONY: demo test lint setup docker venv images help
.DEFAULT_GOAL := help

help: ## list the targets
	@grep -E '^[a-z]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-8s %s\n", $$1, $$2}'

demo: setup ## set up, then train a tiny agent to use a calculator tool (SFT, then GRPO)
	$(PY) examples/calculator_demo.py $(DEMO_ARGS)

test: setup ## set up, check the code (make lint), then run the tests (PYTEST_ARGS="-k images" to pick some)
	$(MAKE) --no-print-directory lint
	$(PY) -m pytest -q $(PYTEST_ARGS)

lint: ## ruff (style, docstrings) and mypy (types) over the code; needs .venv/ (make venv)
	$(PY) -m ruff check .
	$(PY) -m mypy

setup: ## install packages, start Docker, make .venv/, build images
	scripts/setup.sh

docker: ## install Docker and start its daemon if none answers
	scripts/setup.sh packages docker

venv: ## make .venv/ and install toolgym[dev] into it
	scripts/setup.sh packages venv

images: ## build the sandbox images that are missing or out of date
	scripts/setup.sh packages docker venv images
