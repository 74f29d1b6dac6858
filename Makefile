# cnilab — the two commands a user needs (run as root on Debian 12):
#   make demo   install what the demo needs, run the quickstart study on the netns
#               lab (four CNI datapaths, three claims, ~3 min), print the verdicts and
#               the path of the report
#   make test   install what the tests need, run the whole suite (unit, static
#               checks, end-to-end on the netns lab), in lanes side by side
#               (scripts/test_lanes.py)
VENV      ?= .venv
PYTHON    ?= python3
PIP       := $(VENV)/bin/pip
CNILAB    := $(VENV)/bin/cnilab
PIN       := versions/python-constraints.txt
SPEC      ?= experiments/quickstart.yaml

.PHONY: demo test system-deps system-deps-test venv venv-test lint clean-lab help

help:
	@echo "make demo | make test | make lint | make clean-lab"

system-deps:
	bash scripts/install-system-deps.sh lab

system-deps-test:
	bash scripts/install-system-deps.sh test

$(VENV)/.runtime: pyproject.toml $(PIN)
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --disable-pip-version-check -c $(PIN) -e .
	touch $@

$(VENV)/.test: pyproject.toml $(PIN) $(VENV)/.runtime
	$(PIP) install --quiet --disable-pip-version-check -c $(PIN) -e '.[test]'
	touch $@

venv: $(VENV)/.runtime
venv-test: $(VENV)/.test

demo: system-deps venv
	$(CNILAB) doctor
	$(CNILAB) reproduce $(SPEC) --lab netns

test: system-deps-test venv-test
	$(VENV)/bin/python scripts/test_lanes.py

lint: venv-test
	$(VENV)/bin/pytest tests/test_static.py

clean-lab: venv
	$(CNILAB) lab down --lab netns
