"""The tests' name for bench/crystal_sets.py (real crystals, datasets, re-presentations).

The helpers live in bench/ because the benchmarks use them too and bench code does not import
from tests; this shim makes ``import crystals`` return that very module (one ``dataset_rows``
cache, and monkeypatching reaches the functions that use it).
"""

from __future__ import annotations

import sys
from pathlib import Path

_BENCH = str(Path(__file__).resolve().parents[1] / "bench")
if _BENCH not in sys.path:
    sys.path.append(_BENCH)

import crystal_sets  # noqa: E402

sys.modules[__name__] = crystal_sets
