# GPO Studio. `make run` sets up .venv and opens the app; `make test` sets up and runs the tests.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
PORT   ?= 8501

.PHONY: run test setup setup-dev bench bench-quality demo clean

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

run: $(VENV)/.runtime
	HF_HUB_OFFLINE=1 $(PY) -m streamlit run app.py --server.address 127.0.0.1 --server.port $(PORT) --server.headless true --browser.gatherUsageStats false

test: $(VENV)/.dev
	HF_HUB_OFFLINE=1 $(PY) -m pytest

demo: $(VENV)/.runtime
	HF_HUB_OFFLINE=1 $(PY) -m gpo_core run --task sample_tasks/navigation --steps 2 --candidates 4 --dev-size 16 --test-size 16 --out out/demo

bench: $(VENV)/.dev
	CMAKE_ARGS="-DGGML_NATIVE=OFF" $(PIP) install -r requirements-bench.txt
	HF_HUB_OFFLINE=1 $(PY) benchmarks/run_all.py

# Issue 6: optimization quality on BIG-Bench Hard with the embedded model (about 35 min here).
bench-quality: $(VENV)/.dev
	CMAKE_ARGS="-DGGML_NATIVE=OFF" $(PIP) install -r requirements-bench.txt
	HF_HUB_OFFLINE=1 $(PY) benchmarks/bbh_quality.py

clean:
	rm -rf $(VENV) .pytest_cache out
