# basisdb developer targets.  PYTHON may point at a virtual environment's interpreter.
PYTHON ?= python3
KMAX ?= 8
JOBS ?= 2
ARTIFACT := data/basisdb.h5

.PHONY: help install test test-all data check-data verify bench bench-core bench-structures bench-dataset bench-dataset-scale measure-symprec bench-scale bad-input-doc gallery docs lint clean

help:
	@echo "install     pip install -e '.[test]'"
	@echo "test        the default test run (what CI runs)"
	@echo "test-all    including the slow exhaustive sweeps"
	@echo "data        rebuild the shipped artifact $(ARTIFACT) (K=$(KMAX), all 530 settings)"
	@echo "check-data  rebuild into a temporary file and check it is byte-identical to $(ARTIFACT)"
	@echo "verify      checksums + invariance self-check of $(ARTIFACT)"
	@echo "bench       core, detectors (spglib, moyopy), featurize stages, dataset 1 and 2 workers, one table (~5 min; BENCH_ARGS=...)"
	@echo "bench-core  build, lookup, evaluate only (bench/bench_core.py, 100,000 points)"
	@echo "bench-structures featurize all carbon_24 CIFs per stage, presentation invariance, batched torch (needs ../shared)"
	@echo "bench-dataset featurize_dataset on 600 carbon_24 structures vs spglib alone, 1 and 2 Dask workers, profile (needs ../shared)"
	@echo "bench-dataset-scale  $(SCALE_N) re-presented structures, 1 and 2 Dask workers with basisdb's settings (Dask's per-connection message log off), plus 2 with Dask's default log length 1000 for comparison: throughput and memory per window (~10 min; needs ../shared): docs/dataset_scale.png"
	@echo "measure-symprec  space-group detection against symprec / angle_tolerance on the measuring set BSS-1 (~4 min): bench/symprec_measurement.json"
	@echo "bench-scale builder and reader at K = 4 8 12 16 24, all 530 settings (~20 min on 2 cores): docs/scaling.png"
	@echo "bad-input-doc  regenerate the table of docs/BAD_INPUT.md from tests/structures/test_bad_input.py"
	@echo "gallery     pictures of basis functions from $(ARTIFACT) into $(GALLERY)/ (needs matplotlib)"
	@echo "lint        ruff check, ruff format --check and mypy (package and builder); pip install -e '.[test,lint]'"
	@echo "docs        API reference from the docstrings + the guides of docs/ into $(DOCS_OUT)/ (Sphinx, warnings are errors; pip install -e '.[test,docs]')"

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

BENCH_ARGS ?=
bench:
	$(PYTHON) bench/bench_all.py --kmax $(KMAX) --jobs $(JOBS) $(BENCH_ARGS)

bench-core:
	$(PYTHON) bench/bench_core.py --kmax $(KMAX) --jobs $(JOBS)

bench-structures:
	$(PYTHON) bench/bench_structures.py

bench-dataset:
	$(PYTHON) bench/bench_dataset.py --n 600 --kmax 4 --profile

SCALE_N ?= 100000
bench-dataset-scale:
	$(PYTHON) bench/bench_dataset_scale.py --n $(SCALE_N) --runs 1,2,2@1000 --json bench/dataset_scale.json --plot docs/dataset_scale.png

measure-symprec:
	$(PYTHON) bench/measure_symprec.py --json bench/symprec_measurement.json

bench-scale:
	$(PYTHON) bench/bench_scale.py --jobs $(JOBS) --json bench/scaling.json --plot docs/scaling.png --markdown

bad-input-doc:
	$(PYTHON) tests/structures/test_bad_input.py --write

GALLERY := docs/gallery
GALLERY_DPI ?= 90
PLOT := $(PYTHON) -m basisdb plot --db $(ARTIFACT) --dpi $(GALLERY_DPI)

gallery:
	mkdir -p $(GALLERY)
	$(PLOT) --plane p4gm --n 8 -o $(GALLERY)/p4gm.png
	$(PLOT) --plane p6mm --n 8 -o $(GALLERY)/p6mm.png
	$(PLOT) --plane p31m --n 8 -o $(GALLERY)/p31m.png
	$(PLOT) --plane p2gg --n 8 -o $(GALLERY)/p2gg.png
	$(PLOT) --plane c2mm --n 8 -o $(GALLERY)/c2mm.png
	$(PLOT) --hall 523 --n 3 -o $(GALLERY)/Fm-3m-sections.png
	$(PLOT) --hall 526 --n 3 --sections 0,1/8,1/4 -o $(GALLERY)/Fd-3m2-sections.png
	$(PLOT) --hall 488 --functions 3,7,9 --sections 0,1/8,1/4 -o $(GALLERY)/P6_3mmc-sections.png
	$(PLOT) Pnma --n 4 -o $(GALLERY)/Pnma-sections.png
	$(PLOT) P2_1/c --n 3 -o $(GALLERY)/P2_1c-sections.png
	$(PLOT) --cif examples/NaCl.cif -o $(GALLERY)/NaCl-crystal.png
	$(PLOT) --hall 488 --vector axial --n 3 --kmax 3 -o $(GALLERY)/P6_3mmc-axial-vector.png
	@ls -l $(GALLERY)/*.png

# Sphinx: configuration and reference pages in docs/api/, source folder docs/ (so the Markdown guides
# are pages of the same site); -E rereads every source, so no warning hides in a cached page
DOCS_OUT := docs/_build/html

docs:
	$(PYTHON) -m sphinx -E -W --keep-going -q -b html -c docs/api -d docs/_build/doctrees docs $(DOCS_OUT)
	@echo "API reference and guides: $(DOCS_OUT)/index.html"

# ruff over the whole tree (configuration in pyproject.toml), mypy over the package and the
# builder's sources in build/ ([tool.mypy] in pyproject.toml)
lint:
	$(PYTHON) -m ruff check .
	$(PYTHON) -m ruff format --check .
	$(PYTHON) -m mypy basisdb build

clean:
	rm -rf .setuptools-build dist *.egg-info .pytest_cache .hypothesis .mypy_cache .ruff_cache docs/_build
