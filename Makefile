# Samverka — every task a developer or CI runs.
#   make demo    try it: installs into .venv, then runs a hub and four kommuner over mTLS
#   make test    the whole test suite (checks the generated code and the contract first)

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
BUF    := npx --yes @bufbuild/buf@1.75.0
PROTOS := $(wildcard proto/samverka/v1/*.proto)
GEN    := node/samverka/v1
DIR    ?= ./node-data

.PHONY: install proto proto-check buf-lint i18n i18n-check lint test soak demo run-node clean browser postgres bench bench-quick dist

install: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	@touch $(STAMP)

# Regenerate Python code and typing stubs from the contract.
proto: $(STAMP)
	$(BIN)/python -m grpc_tools.protoc -I proto \
	  --python_out=node --grpc_python_out=node \
	  --plugin=protoc-gen-mypy=$(BIN)/protoc-gen-mypy --mypy_out=node \
	  --plugin=protoc-gen-mypy_grpc=$(BIN)/protoc-gen-mypy_grpc --mypy_grpc_out=node \
	  $(PROTOS)

# Fail when the committed generated code differs from what `make proto` makes.
proto-check: $(STAMP)
	@tmp=$$(mktemp -d) && \
	$(BIN)/python -m grpc_tools.protoc -I proto \
	  --python_out=$$tmp --grpc_python_out=$$tmp \
	  --plugin=protoc-gen-mypy=$(BIN)/protoc-gen-mypy --mypy_out=$$tmp \
	  --plugin=protoc-gen-mypy_grpc=$(BIN)/protoc-gen-mypy_grpc --mypy_grpc_out=$$tmp \
	  $(PROTOS) >/dev/null && \
	for f in $$tmp/samverka/v1/*; do \
	  cmp -s $$f $(GEN)/$$(basename $$f) || { echo "stale generated code: $(GEN)/$$(basename $$f) — run 'make proto' and commit"; rm -rf $$tmp; exit 1; }; \
	done; rm -rf $$tmp; echo "generated code is up to date"

# The CLI's gettext catalogs (samverka.i18n): extract the Swedish message ids into
# messages.pot, update the sv and en catalogs (sv is filled with the ids; the en
# translations are written by hand: `make i18n-check` names what is missing) and compile
# the .mo files, which are committed. A catalog whose messages did not change is kept as
# it was, header dates included (samverka.i18n_catalogs): `make i18n` twice changes nothing.
LOCALE := node/samverka/locale
i18n: $(STAMP)
	$(BIN)/pybabel -q extract -k N_ -k NP_:1c,2 -k Text --no-location --sort-output --omit-header \
	  -o $(LOCALE)/messages.pot node/samverka hub/samverka_hub
	@tmp=$$(mktemp -d); set -e; for l in sv en; do \
	  po=$(LOCALE)/$$l/LC_MESSAGES/samverka.po; \
	  if [ -f $$po ]; then cp $$po $$tmp/$$l.po; fi; \
	  $(BIN)/pybabel -q update -i $(LOCALE)/messages.pot -d $(LOCALE) -D samverka \
	    --init-missing --no-fuzzy-matching --ignore-obsolete -l $$l; \
	  if [ $$l = sv ]; then $(BIN)/python -m samverka.i18n_catalogs fill-sv $$po; fi; \
	  $(BIN)/python -m samverka.i18n_catalogs keep-dates $$tmp/$$l.po $$po; \
	done; rm -rf $$tmp
	$(BIN)/pybabel -q compile -d $(LOCALE) -D samverka

# Fail when the catalogs are stale: a message in the code but not in messages.pot, one
# without a translation in sv or en, or a .mo that differs from its .po.
i18n-check: $(STAMP)
	$(BIN)/python -m pytest -q -p no:cacheprovider tests/cli/test_i18n.py -k catalog

# The contract's style, and `buf breaking` against the last released contract: the
# image proto/contract-v1.binpb (no network needed but npm's for buf). When a release is
# cut, refresh it from that release's proto/ (docs/SCHEMA.md, "The contract"):
#   cd proto && $(BUF) build --exclude-source-info -o contract-v1.binpb
buf-lint:
	cd proto && $(BUF) lint && $(BUF) breaking --against contract-v1.binpb

# `alembic check` of both migration tracks runs on a throwaway SQLite database, and on
# each (empty) PostgreSQL database named in SCHEMA_CHECK_URLS; the tests run the same
# check on PostgreSQL (tests/store/test_migrations.py, tests/hub/test_hub_migrations.py).
SCHEMA_CHECK_URLS ?=
lint: $(STAMP) buf-lint proto-check i18n-check
	$(BIN)/ruff check node hub tests
	$(BIN)/ruff format --check node hub tests
	$(BIN)/mypy node/samverka hub
	$(BIN)/python -m samverka_hub.schema_check $(SCHEMA_CHECK_URLS)
	$(BIN)/lint-imports

# Two workers (pytest-xdist), a file (or a unit tests/conftest.py names) to a worker at a
# time. Bytecode is written (PYTHONDONTWRITEBYTECODE cleared; __pycache__ is ignored):
# the suite starts hundreds of samverka processes, each otherwise compiling our modules
# anew (~0.2 s of CPU each).
test: $(STAMP) proto-check buf-lint browser postgres
	PYTHONDONTWRITEBYTECODE= $(BIN)/python -m pytest -q -n 2 --dist loadgroup

# The long attack, fault, fuzz and load runs (20,000 cases per property, 10,000-entry
# crashes, 290 nodes and 290 subscribers); prints one table (tests/load/soak.py).
soak: $(STAMP) postgres
	$(BIN)/python tests/load/soak.py

# The web catalog's browser tests drive Debian's chromium through Playwright's client
# (never `playwright install`: no browser download). Installed here when missing.
CHROMIUM := /usr/bin/chromium
browser:
	@if [ -x $(CHROMIUM) ]; then echo "browser: $(CHROMIUM) is installed"; else \
	  echo "browser: installing Debian's chromium (apt-get install -y --no-install-recommends chromium)"; \
	  apt-get update -q && apt-get install -y -q --no-install-recommends chromium; fi

# The tests' PostgreSQL (tests/pgserver.py): each run starts a throwaway cluster from the
# installed server binaries, Debian's installed here when missing (without its 'main'
# cluster on 5432); SAMVERKA_TEST_PG=postgresql://user@host:port/db names a running one.
postgres: $(STAMP)
	@if [ -n "$$SAMVERKA_TEST_PG" ]; then echo "postgres: using $$SAMVERKA_TEST_PG"; else \
	  $(BIN)/python tests/pgserver.py --install; fi

# Benchmarks (not part of `make test`): every figure beside its raw limit, one table,
# bench-results.json and docs/bench-full-sync.svg. `make bench ARGS="--only ingest"`.
bench: $(STAMP) postgres
	$(BIN)/python tests/bench/run.py $(ARGS)

bench-quick: $(STAMP) postgres
	$(BIN)/python tests/bench/run.py --quick $(ARGS)

# The whole federation on loopback, then stops (about 15 s). DEMO_KEEP=DIR keeps it
# running in DIR for exploring: `make demo DEMO_KEEP=/tmp/samverka-demo`.
demo: $(STAMP)
	$(BIN)/python -m samverka_hub.demo

run-node: $(STAMP)
	$(BIN)/samverka node serve --dir $(DIR)

# What deploy/ installs: the wheel ($(DIST)/samverka-VERSION-py3-none-any.whl, package data
# included; tests/ops/test_dist.py installs it into a fresh venv) and, where a container
# engine answers (podman, or docker with a daemon), the image samverka:VERSION.
DIST    ?= dist
VERSION := $(shell sed -n 's/^version = "\(.*\)"/\1/p' pyproject.toml)
dist: $(STAMP)
	@mkdir -p $(DIST) && rm -f $(DIST)/samverka-*.whl
	$(BIN)/python -m pip wheel -q --no-deps --no-build-isolation --no-index -w $(DIST) .
	@rm -rf build
	@echo "dist: wheel $$(ls $(DIST)/samverka-*.whl)"
	@if command -v podman >/dev/null 2>&1 && podman info >/dev/null 2>&1; then \
	  podman build -f deploy/Containerfile -t samverka:$(VERSION) . ; \
	elif command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1; then \
	  docker build -f deploy/Containerfile -t samverka:$(VERSION) . ; \
	else \
	  echo "dist: image NOT built: no container engine answers here (podman missing, docker without a daemon)."; \
	  echo "      Where one runs: docker build -f deploy/Containerfile -t samverka:$(VERSION) ."; \
	fi

clean:
	rm -rf $(VENV) build dist *.egg-info node/*.egg-info .pytest_cache .mypy_cache .ruff_cache
