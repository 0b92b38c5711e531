# basisdb developer targets.  PYTHON may point at a virtual environment's interpreter.
PYTHON ?= python3
KMAX ?= 8
JOBS ?= 2
ARTIFACT := data/basisdb.h5

.PHONY: help install test test-all data check-data verify bench clean

help:
	@echo "install     pip install -e '.[test]'"
	@echo "test        the default test run (what CI runs)"
	@echo "test-all    including the slow exhaustive sweeps"
	@echo "data        rebuild the shipped artifact $(ARTIFACT) (K=$(KMAX), all 530 settings)"
	@echo "check-data  rebuild into a temporary file and check it is byte-identical to $(ARTIFACT)"
	@echo "verify      checksums + invariance self-check of $(ARTIFACT)"
	@echo "bench       benchmark harness (build, lookup, evaluate)"

install:
	$(PYTHON) -m pip install -e '.[test]'

test:
	$(PYTHON) -m pytest -q

test-all:
	$(PYTHON) -m pytest -q -m "slow or not slow"

data:
	$(PYTHON) -m basisdb build --kmax $(KMAX) --jobs $(JOBS) -o $(ARTIFACT)

check-data:
	$(PYTHON) -m basisdb build --kmax $(KMAX) --jobs $(JOBS) -q -o .check-artifact.h5
	cmp .check-artifact.h5 $(ARTIFACT) && echo "$(ARTIFACT) is byte-identical to a fresh build"; \
	  status=$$?; rm -f .check-artifact.h5; exit $$status

verify:
	$(PYTHON) -m basisdb verify $(ARTIFACT)

bench:
	$(PYTHON) bench/bench_core.py --kmax $(KMAX) --jobs $(JOBS)

clean:
	rm -rf .setuptools-build dist *.egg-info .pytest_cache .hypothesis
