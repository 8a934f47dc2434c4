# Two commands for a newcomer: `make up` runs the system, `make test` runs every test.
# Each target creates .venv and installs the pinned dependencies when needed.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: up down test lint format bench install browser audit clean

# Pages are tested in Debian's Chromium (driven by Playwright), with CJK fonts so Chinese
# renders; reports are PDF, looked at as PNG pages (poppler's pdftoppm).
BROWSER_PACKAGES := chromium fonts-noto-cjk poppler-utils
SUDO := $(shell test "$$(id -u)" -eq 0 || echo sudo)

$(STAMP): pyproject.toml constraints.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP)

browser:
	@if ! command -v chromium >/dev/null 2>&1 || ! command -v pdftoppm >/dev/null 2>&1 \
	    || ! fc-list 2>/dev/null | grep -qi "Noto Sans CJK"; then \
	  echo "installing $(BROWSER_PACKAGES)"; \
	  $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq \
	    $(BROWSER_PACKAGES) >/dev/null; \
	fi

up: $(STAMP)
	$(BIN)/minqing up

down: $(STAMP)
	$(BIN)/minqing down

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

# Known vulnerabilities in the pinned dependencies (scripts/audit_dependencies.py).
audit: $(STAMP)
	$(BIN)/python scripts/audit_dependencies.py constraints.txt

test: lint browser audit
	$(BIN)/python -m pytest

format: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

bench: $(STAMP)
	$(BIN)/python bench/eventstore.py

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache *.egg-info
