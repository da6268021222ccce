# Two commands: `make demo` (the main job) and `make test`. Both create .venv on first use.
# `make peers-test` runs the benchmark's peers (StarDist, Cellpose) in their own .venv-peers;
# `make test` never installs them.
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

PEERS_VENV := .venv-peers
PEERS_STAMP := $(PEERS_VENV)/.installed

NAPARI_VENV := .venv-napari
NAPARI_STAMP := $(NAPARI_VENV)/.installed

.PHONY: install test test-all lint format demo clean device-kit peers-test napari-test

$(STAMP): pyproject.toml constraints.txt
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q -c constraints.txt -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

# Two pytest workers (pytest-xdist), one per core, each test file on one worker.
test: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/pytest -q -n 2 --dist loadfile

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

# The napari plugin (segmentation/napari/) in its own environment (napari, PyQt6, pytest-qt; about
# 6.6 GB, like .venv), and its tests in a real, off-screen viewer: Qt's offscreen platform has no
# OpenGL, so the tests make a Mesa EGL context current (segmentation/napari/_headless.py; needs
# libEGL, as on this machine). About 2 minutes; `make test` skips these tests.
$(NAPARI_STAMP): pyproject.toml constraints-napari.txt
	python3 -m venv $(NAPARI_VENV)
	$(NAPARI_VENV)/bin/pip install -q --upgrade pip
	$(NAPARI_VENV)/bin/pip install -q -c constraints-napari.txt -e ".[napari,dev]" pytest-qt
	touch $(NAPARI_STAMP)

napari-test: $(NAPARI_STAMP)
	QT_QPA_PLATFORM=offscreen PYOPENGL_PLATFORM=egl EGL_PLATFORM=surfaceless OMP_NUM_THREADS=1 \
		$(NAPARI_VENV)/bin/pytest -q -m napari tests/test_napari_plugin.py

clean:
	rm -rf $(VENV) $(PEERS_VENV) $(NAPARI_VENV) demo_output .pytest_cache
