"""The README's two set-up commands and CI: .ci/run must call the README's test command."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def _readme_commands() -> list[str]:
    text = (REPO / "README.md").read_text()
    setup = text.split("## Set-up", 1)[1].split("\n## ", 1)[0]
    return [block.strip() for block in re.findall(r"```\n(.*?)```", setup, flags=re.S)]


def test_readme_has_exactly_two_setup_commands():
    commands = _readme_commands()
    assert len(commands) == 2, commands
    assert all("\n" not in c for c in commands)
    main, tests = commands
    assert "pip install ." in main and "basisdb" in main.split("pip install .", 1)[1]
    assert "pytest" in tests


def test_ci_runs_the_readme_test_command():
    ci = (REPO / ".ci" / "run").read_text()
    assert _readme_commands()[1] in ci.splitlines()


def test_each_constant_has_one_home():
    """DEN 24, MAX_ORDER 192, MAX_KMAX 127, N_SETTINGS 530 (and N_SPACE_GROUPS 230) are assigned
    only in basisdb/_constants.py; reader and builder import them from there."""
    import ast

    values = {24, 192, 127, 530, 230}
    found = []
    for path in sorted([*(REPO / "basisdb").glob("*.py"), *(REPO / "build").rglob("*.py")]):
        if path.name == "_constants.py":
            continue
        for node in ast.parse(path.read_text()).body:  # module level only
            if (
                isinstance(node, (ast.Assign, ast.AnnAssign))
                and isinstance(node.value, ast.Constant)
                and type(node.value.value) is int
                and node.value.value in values
            ):
                found.append(f"{path.relative_to(REPO)}:{node.lineno}")
    assert found == [], f"constants defined outside basisdb/_constants.py: {found}"


def _basisdb_imports(folder: Path) -> dict[str, set[str]]:
    """{module of basisdb imported by the files under ``folder``: the names imported from it}."""
    import ast

    used: dict[str, set[str]] = {}
    for path in folder.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if (
                isinstance(node, ast.ImportFrom)
                and node.level == 0
                and (node.module or "").split(".")[0] == "basisdb"
            ):
                used.setdefault(node.module, set()).update(a.name for a in node.names)
            elif isinstance(node, ast.Import):
                for a in node.names:
                    if a.name.split(".")[0] == "basisdb":
                        used.setdefault(a.name, set())
    return used


def test_builder_imports_only_the_reader_contract():
    """The builder takes the format (names, layout, hash, DEN, MAX_KMAX, the box index) from the one
    contract module basisdb._format; besides it only shared code and numbers: exact operations,
    crystal systems, the counts and the version (build/builder/__init__.py)."""
    used = _basisdb_imports(REPO / "build")
    contract = {
        "basisdb._format",
        "basisdb._ops",
        "basisdb._symbols",
        "basisdb._constants",
        "basisdb._version",
    }
    assert "basisdb._format" in used and set(used) <= contract, sorted(set(used) - contract)
    from basisdb import _format

    format_names = {"DEN", "MAX_KMAX", "box_frequencies", "box_index", "canonical_rank", "canonical_sort"}
    assert format_names <= set(_format.__all__)
    leaked = used.get("basisdb._constants", set()) & format_names
    assert leaked == set(), f"the builder takes {sorted(leaked)} around the contract module basisdb._format"
    assert used["basisdb._format"] <= set(_format.__all__), sorted(
        used["basisdb._format"] - set(_format.__all__)
    )


def test_reader_never_imports_the_builder():
    """The wing hangs off the package, not the other way round: only the two lazy entry points
    (`basisdb build`, basis_from_operations) import basisdb.builder, inside a function."""
    import ast

    users = []
    for path in sorted((REPO / "basisdb").glob("*.py")):
        tree = ast.parse(path.read_text())
        top_level = set(map(id, tree.body))
        for node in ast.walk(tree):
            mods = []
            if isinstance(node, ast.ImportFrom):
                mods = [node.module or ""] if node.level == 0 else [f"basisdb.{node.module or ''}"]
            elif isinstance(node, ast.Import):
                mods = [a.name for a in node.names]
            if any(m == "basisdb.builder" or m.startswith("basisdb.builder.") for m in mods):
                users.append((path.name, id(node) in top_level))
    assert sorted(users) == [("_custom.py", False), ("_custom.py", False), ("cli.py", False)], users


def test_root_attributes_follow_the_format():
    """The builder writes the root attributes of _format.root_attributes, in ROOT_ATTRIBUTES order,
    and every root attribute the reader reads is one of them."""
    import ast

    from basisdb import _format

    attrs = _format.root_attributes(8, 530, "0", "0")
    assert tuple(attrs) == _format.ROOT_ATTRIBUTES
    assert attrs["denominator"] == _format.DEN and attrs["format_version"] == _format.FORMAT_VERSION
    read = set()
    for path in sorted((REPO / "basisdb").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and node.func.id in {"attr_int", "attr_str"}
                and len(node.args) >= 2
                and isinstance(node.args[1], ast.Constant)
            ):
                read.add(node.args[1].value)
    assert {"format", "format_version", "kmax", "denominator", "n_settings"} <= read
    assert read <= set(_format.ROOT_ATTRIBUTES), sorted(read - set(_format.ROOT_ATTRIBUTES))


# ------------------------------------------------------------------ docs follow the code
#: paths the architecture names that are generated, not kept in the repository
#: build outputs a doc may name although git does not track them
_GENERATED = {".setuptools-build/", "data/basisdb.h5", "basisdb/data/basisdb.h5", "docs/_build/html/"}


def _repo_files() -> set[str]:
    """The files git tracks (what a clean clone has: CI's view), and their folders with a trailing /."""
    tracked = subprocess.run(
        ["git", "ls-files"], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout.split()
    out = set(tracked)
    for f in tracked:
        parts = f.split("/")[:-1]
        out |= {"/".join(parts[: i + 1]) + "/" for i in range(len(parts))}
    return out


def test_architecture_names_only_files_in_the_repo():
    """Every path and ``*.py`` name in docs/ARCHITECTURE.md exists: paths with a folder from the
    repository root (links from docs/), bare file names somewhere in the repository."""
    text = (REPO / "docs" / "ARCHITECTURE.md").read_text()
    files = _repo_files()
    names = {f.rstrip("/").rsplit("/", 1)[-1] for f in files}
    mentioned = set(
        re.findall(
            r"(?<![\w.<>/-])((?:[\w.-]+/)*[\w.-]*\w\.(?:py|md|cfg|toml|h5|json|cif)|(?:[\w.-]+/)+)(?![\w/<>-])",
            text,
        )
    )
    mentioned |= {m for m in re.findall(r"\]\(([^)#]+)\)", text)}  # markdown links, relative to docs/
    assert len(mentioned) > 40, sorted(mentioned)
    missing = []
    for m in sorted(mentioned - _GENERATED):
        if m.startswith(("http://", "https://")):
            continue
        if "/" in m.rstrip("/") or m.endswith("/"):  # a path: tracked, from the root or from docs/
            ok = m in files or f"docs/{m}" in files
        else:
            ok = m in names
        if not ok:
            missing.append(m)
    assert missing == [], f"docs/ARCHITECTURE.md names files that git does not track: {missing}"


def test_architecture_lists_every_module():
    """Each module of the package and the builder has a place in docs/ARCHITECTURE.md."""
    text = (REPO / "docs" / "ARCHITECTURE.md").read_text()
    modules = [*(REPO / "basisdb").glob("*.py"), *(REPO / "build" / "builder").glob("*.py")]
    unlisted = [str(p.relative_to(REPO)) for p in modules if p.name != "__init__.py" and p.name not in text]
    assert unlisted == [], f"modules missing from docs/ARCHITECTURE.md: {unlisted}"


def test_bench_does_not_import_from_tests():
    """Shared helpers live in bench/ or the package (bench/crystal_sets.py), never in tests/."""
    import ast

    bad = []
    for path in sorted((REPO / "bench").glob("*.py")):
        text = path.read_text()
        for node in ast.walk(ast.parse(text)):
            mods = []
            if isinstance(node, ast.ImportFrom):
                mods = [node.module or ""]
            elif isinstance(node, ast.Import):
                mods = [a.name for a in node.names]
            for mod in mods:
                if mod.split(".")[0] in {"tests", "crystals", "conftest"}:
                    bad.append(f"{path.name}:{node.lineno}: {mod}")
        if re.search(r"""["']tests["']""", text):
            bad.append(f"{path.name}: puts tests/ on the path")
    assert bad == [], bad


def test_version_is_written_once():
    """basisdb/_version.py is the one place: setup.cfg reads it, nothing else assigns it."""
    cfg = (REPO / "setup.cfg").read_text()
    assert re.search(r"^version = attr: basisdb\._version\.__version__$", cfg, flags=re.M)
    found = []
    for path in sorted([*(REPO / "basisdb").rglob("*.py"), *(REPO / "build").rglob("*.py")]):
        if path.name != "_version.py" and re.search(r"^\s*__version__\s*=", path.read_text(), flags=re.M):
            found.append(str(path.relative_to(REPO)))
    assert found == [], found
    assert (
        "from basisdb._version import __version__" in (REPO / "build" / "builder" / "builder.py").read_text()
    )
