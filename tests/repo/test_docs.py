"""The API reference (docs/api/, built by `make docs`) documents every public name.

The build itself (Sphinx, warnings as errors) runs in .ci/run; these checks are the cheap part that
needs no Sphinx: each name a public ``__all__`` exports has an autodoc entry on some page, and
every page is in the site's table of contents.  ``__all__`` is read from the source (ast), so the
adapters' modules are not imported.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
API = ROOT / "docs" / "api"
AUTODOC = re.compile(
    r"^\.\. auto(?:class|function|exception|data|module)::\s+(\S+)\s*$|^\.\. currentmodule::\s+(\S+)\s*$",
    re.M,
)


def _all_of(module: str) -> list[str]:
    path = ROOT / "basisdb" / (module + ".py")
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == "__all__" for t in node.targets
        ):
            return [ast.literal_eval(e) for e in node.value.elts]
    raise AssertionError(f"{path} has no __all__")


def _documented() -> set[str]:
    """Fully qualified names of every autodoc entry of docs/api/*.rst (``currentmodule`` applied)."""
    names: set[str] = set()
    for page in sorted(API.glob("*.rst")):
        current = ""
        for target, module in AUTODOC.findall(page.read_text()):
            if module:
                current = module
            elif target.startswith("basisdb.") or target == "basisdb":
                names.add(target)
            else:
                names.add(f"{current}.{target}")
    return names


@pytest.mark.parametrize(
    "module, prefix",
    [("__init__", "basisdb"), ("torch", "basisdb.torch"), ("jax", "basisdb.jax")],
)
def test_every_public_name_has_an_entry(module, prefix):
    documented = _documented()
    public = [n for n in _all_of(module) if n != "__version__"]
    assert public, module
    missing = [n for n in public if f"{prefix}.{n}" not in documented]
    assert missing == [], f"names of {prefix}.__all__ without an entry in docs/api/*.rst: {missing}"


def test_dataset_and_structures_extras_are_documented():
    """What basisdb.dataset and basisdb.structures export beyond ``basisdb.__all__``."""
    documented = _documented()
    top = set(_all_of("__init__"))
    for module in ("dataset", "structures"):
        extra = [n for n in _all_of(module) if n not in top]
        missing = [n for n in extra if f"basisdb.{module}.{n}" not in documented]
        assert missing == [], f"basisdb.{module} names without an entry in docs/api/*.rst: {missing}"


def test_every_page_is_in_the_table_of_contents():
    index = (API / "index.rst").read_text()
    pages = sorted(p.stem for p in API.glob("*.rst") if p.stem != "index")
    assert pages, "no reference pages in docs/api/"
    listed = set(re.findall(r"^   (\S+)\s*$", index, re.M))
    assert [p for p in pages if p not in listed] == []
    guides = sorted(p.stem for p in (ROOT / "docs").glob("*.md"))
    assert [g for g in guides if f"../{g}" not in listed] == [], "a guide of docs/*.md is not in the site"
