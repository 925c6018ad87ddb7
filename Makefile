# medq: two commands on a fresh machine — `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
# pytest workers: one per core by default (2 on CI)
JOBS ?= auto

.PHONY: all venv demo test bench lint clean

all: test

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	$(BIN)/medq demo --output demo-output

test: $(STAMP)
	$(BIN)/python -m pytest -n $(JOBS) -q --durations=20 tests

bench: $(STAMP)
	$(BIN)/python benchmarks/run.py
	$(BIN)/python benchmarks/models_speed.py
	$(BIN)/python benchmarks/train_speed.py
	$(BIN)/python benchmarks/build_speed.py
	$(BIN)/python benchmarks/assess_speed.py
	$(BIN)/python benchmarks/assess_memory.py
	$(BIN)/python benchmarks/large_images.py
	$(BIN)/python benchmarks/qc_speed.py
	$(BIN)/medq bench iqa
	$(BIN)/python benchmarks/ranking.py
	$(BIN)/python benchmarks/independent.py
	$(BIN)/python benchmarks/peers.py
	$(BIN)/python benchmarks/tagged.py
	$(BIN)/python benchmarks/restore_speed.py
	$(BIN)/python benchmarks/dicom_write.py
	$(BIN)/medq bench restore
	$(BIN)/python benchmarks/independent_restore.py --seeds 4
	$(BIN)/medq bench describe

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks

clean:
	rm -rf demo-output .pytest_cache .ruff_cache build dist
