# Two commands do all the set-up on a fresh machine with python3 (and python3-venv on Debian):
#   make run    the HIL suites (Robot + pytest) against TARGET (default: the reference twin)
#   make test   the harness's own tests, lint and format checks
#   make docs   the Robot keyword reference (libdoc) in build/docs/keywords.html
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
TARGET ?= reference
OUT    ?= results

.PHONY: run test lint docs doc-tables bench bench-jobs bench-emulators vectors system-deps core-test fuzz clean

# Debian tools some tests use; without them those tests skip and say why.
# espeak-ng: regenerating the kws data bit for bit; clang + libclang-rt-14-dev (libFuzzer and the
# sanitizer runtimes): fuzzing the firmware's C codec;
# the emulated bench: qemu-system-arm boards, gdb-multiarch to flash them, gcc-arm-none-eabi for
# the bench's test image; chromium: rendering the HTML report headless (tests/e2e/test_report_html.py).
SYSTEM_DEPS ?= espeak-ng clang qemu-system-arm gdb-multiarch gcc-arm-none-eabi ser2net chromium libclang-rt-14-dev
system-deps:
	@missing=""; for pkg in $(SYSTEM_DEPS); do dpkg -s $$pkg >/dev/null 2>&1 || missing="$$missing $$pkg"; done; \
	if [ -n "$$missing" ]; then \
		sudo=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$sudo apt-get update -qq && $$sudo apt-get install -y -qq --no-install-recommends $$missing \
		|| echo "could not install$$missing: the tests that need them will be skipped"; \
	fi

$(BIN)/python:
	$(PYTHON) -m venv $(VENV) || { echo "cannot create a venv: on Debian, apt install python3-venv"; exit 1; }

$(VENV)/.installed-run: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[dev,train,build,lab]'
	touch $@ $(VENV)/.installed-run

run: $(VENV)/.installed-run
	$(BIN)/hil run --target $(TARGET) --out $(OUT)

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check hil tests models benchmarks
	$(BIN)/ruff format --check hil tests models benchmarks

test: lint
	$(BIN)/pytest --timeout 900

# The firmware's portable C core on the host compiler (also run by `make test` through pytest).
core-test:
	$(MAKE) -C firmware/tests/host check BUILD=$(CURDIR)/build/core-host

fuzz:
	$(MAKE) -C firmware/tests/host fuzz FUZZ_SECONDS=20 BUILD=$(CURDIR)/build/core-host

# Built, not committed, so it cannot go stale (tests/e2e/test_docs.py builds it too).
docs: $(VENV)/.installed-dev
	$(BIN)/python -m hil.docs build/docs

bench: $(VENV)/.installed-run
	$(BIN)/python benchmarks/bench_infer.py

# hil run over two twin targets, --jobs 2 against --jobs 1: prints the ratio
bench-jobs: $(VENV)/.installed-run
	$(BIN)/python benchmarks/bench_jobs.py

# Full suites on every emulated target that can run here, phase by phase (JSON: bench-results/emulators.json, kept out of results/, which holds one run bundle);
# compare with an earlier file: make bench-emulators BEFORE=old.json
bench-emulators: $(VENV)/.installed-run
	$(BIN)/python benchmarks/bench_emulators.py --json bench-results/emulators.json $(if $(BEFORE),--compare $(BEFORE))

# The figures tables in docs/firmware.md and docs/renode.md, from the built images and the results
# bundles given in RESULTS (e.g. make doc-tables RESULTS="bench-results/emulators/qemu-mps2_an385 bench-results/emulators/native_sim").
doc-tables: $(VENV)/.installed-run
	$(BIN)/hil docs tables --write $(foreach r,$(RESULTS),--results $(r))

vectors: $(VENV)/.installed-run
	$(BIN)/python -m hil.vectors > docs/protocol-vectors.txt

clean:
	rm -rf $(VENV) results build
