# Two commands: `make demo` (the main job) and `make test`. Both create .venv on first use.
# `make peers-test` runs the benchmark's peers (StarDist, Cellpose) in their own .venv-peers;
# `make test` never installs them.
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

PEERS_VENV := .venv-peers
PEERS_STAMP := $(PEERS_VENV)/.installed

.PHONY: install test test-all lint format demo clean device-kit peers-test

$(STAMP): pyproject.toml constraints.txt
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q -c constraints.txt -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

test: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/pytest -q

# Also the tests marked slow (the full-size recipes' smoke runs, the GPU run script on the CPU,
# checks over the whole DSB2018 set): about 1.5 minutes more.
test-all: $(STAMP)
	$(VENV)/bin/pytest -q -m ""

lint: $(STAMP)
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

demo: $(STAMP)
	$(VENV)/bin/segmentation demo --output demo_output

# What a lent GPU machine needs (compact data + wheels), in .kit/; prints its size.
device-kit: $(STAMP)
	$(PY) scripts/device_kit.py

# The optional peers in their own environment (Cellpose 3 needs numpy < 2.1), and their tests.
$(PEERS_STAMP): pyproject.toml constraints-peers.txt
	python3 -m venv $(PEERS_VENV)
	$(PEERS_VENV)/bin/pip install -q --upgrade pip
	$(PEERS_VENV)/bin/pip install -q -c constraints-peers.txt -e ".[peers,dev]"
	touch $(PEERS_STAMP)

peers-test: $(PEERS_STAMP)
	OMP_NUM_THREADS=1 $(PEERS_VENV)/bin/pytest -q -m peers

clean:
	rm -rf $(VENV) $(PEERS_VENV) demo_output .pytest_cache
