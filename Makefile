# Thin wrappers; everything runs in .venv, created when missing.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp

.PHONY: demo test test-vscode serve bench bench-train venv lint clean

venv: $(STAMP)

# llama-cpp-python (the dev extra: the openai engine's test server) compiles llama.cpp: on x86-64
# for any AVX2 CPU, and without AMX (a VM that reports AMX it does not enable crashes a native build);
# no multimodal library. pip's wheel cache is keyed by version, not by CMAKE_ARGS, so a wheel built
# elsewhere for another CPU would be reused: this one step bypasses the cache.
LLAMA_PIN := $(shell grep -o 'llama-cpp-python\[server\]==[0-9.]*' pyproject.toml)
LLAMA_CMAKE_ARGS ?= -DLLAVA_BUILD=OFF $(if $(filter x86_64,$(shell uname -m)),-DGGML_NATIVE=OFF -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF)

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check --upgrade pip
	@$(PY) -c "import llama_cpp" 2>/dev/null || { echo "compiling llama.cpp for $(LLAMA_PIN) (minutes on 2 cores)"; \
	  CMAKE_ARGS="$${CMAKE_ARGS:-$(LLAMA_CMAKE_ARGS)}" $(PY) -m pip install --quiet --disable-pip-version-check --no-cache-dir "$(LLAMA_PIN)"; }
	$(PY) -m pip install --quiet --disable-pip-version-check -e ".[dev]"
	@touch $(STAMP)

## make demo: install, pull the default model, show the server answering a real file
demo: venv
	$(VENV)/bin/lsp-models pull
	$(VENV)/bin/lsp-serve --demo $(FILE)

## make test: the whole test suite (pulls the real default model into ./.repolsp-home once)
test: venv
	$(PY) -m pytest -q $(PYTEST_ARGS)

## make test-vscode: only the extension inside the real VS Code (code-server + chromium; installs
## them under .cache/ and editors/vscode/e2e/node_modules on first use). `make test` runs it too.
test-vscode: venv
	$(PY) -m pytest -q -s tests/editors/test_vscode_real.py $(PYTEST_ARGS)

## make serve: the server on stdio (what an editor starts)
serve: venv
	$(VENV)/bin/lsp-serve

## make bench: speed and quality benchmarks (slow; writes bench/RESULTS.md)
bench: venv
	@# The served (trimmed) default and its full-vocabulary base, decoded side by side.
	$(VENV)/bin/lsp-models pull && $(VENV)/bin/lsp-models pull gemma3-270m-full
	@if [ -f bench/run.py ]; then $(PY) bench/run.py; else echo "nothing to benchmark yet"; fi

## make bench-train REPO=path/to/git/repo: mining, training throughput vs transformers.Trainer,
## and a 30-minute lsp-train before/after (slow; writes bench/TRAINING.md)
bench-train: venv
	@test -n "$(REPO)" || { echo "usage: make bench-train REPO=path/to/a/git/repository"; exit 2; }
	$(PY) bench/train.py $(REPO) $(BENCH_TRAIN_ARGS)

lint: venv
	$(VENV)/bin/ruff check server models trainer tests bench

clean:
	rm -rf $(VENV) .pytest_cache
