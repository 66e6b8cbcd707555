# The README's two commands: `make demo` and `make test`. Each sets up what it needs first.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: demo test test-fast setup lint test-deps twilio-mock audit snapshot golden clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check --upgrade pip setuptools  # the venv's own are old
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[tools,dev]'
	touch $@

setup: $(BIN)/.installed

# A simulated call through the whole flow: no Twilio account, no Redis server (embedded store).
demo: setup
	@echo "--- Inside the Golden Week 2025 window, the caller presses 1 ---"
	$(BIN)/ivr call --at 2025-05-03T03:00:00+09:00 --press 1
	@echo
	@echo "--- Outside every window: the line is closed ---"
	$(BIN)/ivr call --at 2026-11-23T12:00:00+09:00 --press 1

# The tests start their own redis-server, run promtool and a real prometheus, and make placeholder recordings with
# espeak-ng (Debian packages); install what is missing when we may.
test-deps:
	@need=""; command -v redis-server >/dev/null 2>&1 || need="$$need redis-server"; \
	command -v espeak-ng >/dev/null 2>&1 || need="$$need espeak-ng"; \
	{ command -v prometheus && command -v promtool; } >/dev/null 2>&1 || need="$$need prometheus"; \
	if [ -n "$$need" ]; then \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$need; \
	  else echo "the tests need:$$need (sudo apt-get install -y$$need)" >&2; exit 1; fi; fi
	@$(MAKE) --no-print-directory twilio-mock

# Prism, and Twilio's REST API description for it to serve (npm; the tests start it): see tests/twilio_api.py.
MOCK := tests/twilio_mock
twilio-mock: $(MOCK)/node_modules/.installed $(MOCK)/spec/twilio_api_v2010.json

$(MOCK)/node_modules/.installed: $(MOCK)/package.json $(MOCK)/package-lock.json
	cd $(MOCK) && npm ci --no-audit --no-fund --loglevel=error
	touch $@

$(MOCK)/spec/twilio_api_v2010.json: $(MOCK)/spec.sha256
	rm -rf $(MOCK)/spec && mkdir -p $(MOCK)/spec
	cd $(MOCK)/spec && npm pack --silent @twilio-alpha/mcp@0.7.0 >/dev/null \
	  && tar -xzf twilio-alpha-mcp-0.7.0.tgz --strip-components=4 package/twilio-oai/spec/json/twilio_api_v2010.json \
	  && rm twilio-alpha-mcp-0.7.0.tgz
	cd $(MOCK) && sha256sum -c --quiet spec.sha256

lint: setup
	$(BIN)/ruff check .
	$(BIN)/mypy

test: setup test-deps lint
	$(BIN)/ivr config check --allow-warnings
	$(BIN)/pytest

# The tier that needs no server: every test not marked `redis` (tests/conftest.py marks them by fixture).
test-fast: setup
	$(BIN)/pytest -m "not redis"

# Dependencies with known vulnerabilities (pip-audit, PyPI's advisory data; needs PyPI). CI runs it after the tests.
audit: setup
	$(BIN)/python .ci/audit

# Regenerate the golden decisions after a routing change; review the diff with the change.
snapshot: setup
	$(BIN)/ivr snapshot

# Rewrite the golden transcripts (tests/golden/: the busy ending, the closed message, the under-18 path, a caller in
# crisis) after a wording or flow change; review the diff with the change.
golden: setup
	$(BIN)/python -m tests.transcripts

clean:
	rm -rf $(VENV) $(MOCK)/node_modules $(MOCK)/spec .pytest_cache .mypy_cache .ruff_cache .hypothesis
