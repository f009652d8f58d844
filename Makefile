# The two commands of the quick start: `make demo` and `make test`.
# Everything they need is set up here, from a fresh clone: a virtualenv, the Python
# dependencies, and the Rust extension built in release mode and installed as a wheel
# (non-editable, so tests run against exactly what `pip install .` ships).

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
WHEEL_DIR := target/wheels

.PHONY: demo test install venv build cargo-test pytest bench clean

demo: install
	$(BIN)/cairn demo

test: install cargo-test pytest

venv: $(VENV)/.ready

$(VENV)/.ready:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet "maturin>=1.12.1,<2"
	touch $@

build: venv
	rm -f $(WHEEL_DIR)/cairn_engine-*.whl
	$(BIN)/maturin build --release --quiet --out $(WHEEL_DIR)

install: build
	$(BIN)/pip install --quiet --force-reinstall --no-deps $(WHEEL_DIR)/cairn_engine-*.whl
	$(BIN)/pip install --quiet "$$(ls $(WHEEL_DIR)/cairn_engine-*.whl)[test]"

cargo-test:
	cargo test --quiet -p cairn-core

pytest:
	$(BIN)/pytest -q

bench: install
	$(BIN)/pytest benches --benchmark-enable -q
	$(BIN)/cairn bench

clean:
	rm -rf $(VENV) target
