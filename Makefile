# The two commands: `make run` and `make test`. Each sets up whatever is missing first.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
# torch 2.13.0 (CPU) lies on this machine's disk; pinning it keeps pip from pulling a CUDA build.
TORCH  ?= torch==2.13.0

.PHONY: run test setup bench clean

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

test: setup $(COMPOSE_WHEEL)
	$(PY) -m pytest -q

bench: setup
	$(PY) bench/engine.py
	$(PY) bench/service.py

clean:
	rm -rf $(VENV) build *.egg-info
