# The two commands: `make run` and `make test`. Each sets up whatever is missing first.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
# torch 2.13.0 (CPU) lies on this machine's disk; pinning it keeps pip from pulling a CUDA build.
TORCH  ?= torch==2.13.0

.PHONY: run test setup bench clean frontend frontend-check lint

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PY) -c "import torch" 2>/dev/null || $(PIP) install -q "$(TORCH)"
	$(PIP) install -q -e ".[test]"
	touch $@

setup: $(VENV)/.installed

run: setup
	$(VENV)/bin/chainlens serve

# The Compose specification's JSON schema, for the test that validates docker-compose.yml.
COMPOSE_WHEEL := $(VENV)/wheels/docker_compose-1.29.2-py2.py3-none-any.whl
$(COMPOSE_WHEEL):
	$(PIP) download -q --no-deps -d $(VENV)/wheels docker-compose==1.29.2

# The page's sources build into the package; the build is committed so `pip install .`
# and `make run` need no Node.js. `make frontend` rebuilds it after editing frontend/.
APP := backend/chainlens/web/static/app
VIEWER := backend/chainlens/web/static/viewer
frontend/node_modules/.package-lock.json: frontend/package-lock.json
	cd frontend && npm ci --no-audit --no-fund
	touch $@

frontend: frontend/node_modules/.package-lock.json
	cd frontend && npm run build

# Unit tests of the front-end logic, then a rebuild of the page and of the standalone
# viewer into scratch folders that must equal the committed builds byte for byte.
frontend-check: frontend/node_modules/.package-lock.json
	cd frontend && npx tsc --noEmit && npx vitest run
	rm -rf build/app-check build/viewer-check
	cd frontend && npx vite build --logLevel warn --outDir ../build/app-check
	cd frontend && npx vite build --config vite.viewer.config.ts --logLevel warn --outDir ../build/viewer-check
	diff -r $(APP) build/app-check || (echo "the committed front-end build differs from a rebuild: run 'make frontend' and commit $(APP)" >&2; exit 1)
	diff -r $(VIEWER) build/viewer-check || (echo "the committed viewer build differs from a rebuild: run 'make frontend' and commit $(VIEWER)" >&2; exit 1)

# ruff's lint and format check and mypy, clean (settings in pyproject.toml).
lint: setup
	$(PY) -m ruff check backend tests bench
	$(PY) -m ruff format --check backend tests bench
	$(PY) -m mypy

test: setup $(COMPOSE_WHEEL) frontend-check lint
	$(PY) -m pytest -q

bench: setup
	$(PY) bench/engine.py
	$(PY) bench/service.py
	$(PY) bench/ui.py

clean:
	rm -rf $(VENV) build *.egg-info frontend/node_modules
