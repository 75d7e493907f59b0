# The two commands of the README: `make demo` and `make test`.
# Both create (or reuse) the virtual environment in .venv and install the project into it.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test test-slow venv bench-train bench-sim clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	# torch pinned first so that nothing else can pull a CUDA build
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	$(BIN)/gesture-snn demo

test: $(STAMP)
	$(BIN)/python -m pytest -m "not slow" -q

test-slow: $(STAMP)
	$(BIN)/python -m pytest -m slow -q

# Training-speed benchmark against Norse and snnTorch. The peers live in their own environment,
# installed with --no-deps so that torch stays at the project's version (Norse declares
# torchvision, which would pull a multi-GB CUDA torch).
BENCH_VENV := .venv-bench
$(BENCH_VENV)/.installed: pyproject.toml
	test -x $(BENCH_VENV)/bin/python || $(PYTHON) -m venv $(BENCH_VENV)
	$(BENCH_VENV)/bin/python -m pip install --quiet torch==2.13.0 setuptools
	$(BENCH_VENV)/bin/python -m pip install --quiet -e .
	$(BENCH_VENV)/bin/python -m pip install --quiet --no-deps --no-build-isolation norse snntorch nir nirtorch
	touch $@

bench-train: $(BENCH_VENV)/.installed
	$(BENCH_VENV)/bin/python benchmarks/bench_train.py

bench-sim: $(STAMP)
	$(BIN)/python benchmarks/bench_sim.py

clean:
	rm -rf $(VENV) $(BENCH_VENV) runs build
