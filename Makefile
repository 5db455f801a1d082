# Two commands for a fresh machine: `make demo` and `make test`. Each sets itself up.
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: venv test demo bench lint tiny-models clean

venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml constraints.txt requirements-reference.txt tools/setup_env.sh
	VENV=$(VENV) bash tools/setup_env.sh

test: venv
	$(PY) -m ruff check LoGSAMLib LoGSAM Testing benchmarks
	$(PY) -m pytest -q Testing

demo: venv
	VENV=$(VENV) bash tools/demo.sh

bench: venv
	$(PY) -m benchmarks.run

lint: venv
	$(PY) -m ruff check LoGSAMLib LoGSAM Testing benchmarks

tiny-models: venv
	$(PY) -m LoGSAMLib.testing.tiny_models build/tiny-models

clean:
	rm -rf build .pytest_cache
