"""The README's two set-up commands and CI: .ci/run must call the README's test command."""

from __future__ import annotations

import re
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
            if isinstance(node, (ast.Assign, ast.AnnAssign)) and isinstance(node.value, ast.Constant):
                if type(node.value.value) is int and node.value.value in values:
                    found.append(f"{path.relative_to(REPO)}:{node.lineno}")
    assert found == [], f"constants defined outside basisdb/_constants.py: {found}"


def test_builder_imports_only_the_reader_contract():
    """The builder shares with the reader only the constants, the format, exact operations,
    the box index, crystal systems and the version (build/basisdb_build/__init__.py)."""
    import ast

    contract = {
        "basisdb._constants",
        "basisdb._format",
        "basisdb._ops",
        "basisdb._boxindex",
        "basisdb._symbols",
        "basisdb._version",
    }
    used = set()
    for path in (REPO / "build").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if (
                isinstance(node, ast.ImportFrom)
                and node.level == 0
                and (node.module or "").split(".")[0] == "basisdb"
            ):
                used.add(node.module)
            elif isinstance(node, ast.Import):
                used |= {a.name for a in node.names if a.name.split(".")[0] == "basisdb"}
    assert used and used <= contract, sorted(used - contract)


# ------------------------------------------------------------------ docs follow the code
#: paths the architecture names that are generated, not kept in the repository
_GENERATED = {".setuptools-build/", "data/basisdb.h5", "basisdb/data/basisdb.h5"}


def _repo_files() -> set[str]:
    skip = {".git", ".venv", ".setuptools-build", "__pycache__", ".pytest_cache"}
    out = set()
    for path in REPO.rglob("*"):
        rel = path.relative_to(REPO)
        if not skip & set(rel.parts):
            out.add(rel.as_posix() + ("/" if path.is_dir() else ""))
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
        if "/" in m.rstrip("/"):
            ok = (REPO / m).exists() or (REPO / "docs" / m).exists()
        elif m.endswith("/"):
            ok = (REPO / m).is_dir() or (REPO / "docs" / m).is_dir()
        else:
            ok = m in names
        if not ok:
            missing.append(m)
    assert missing == [], f"docs/ARCHITECTURE.md names files that are not in the repo: {missing}"


def test_architecture_lists_every_module():
    """Each module of the package and the builder has a place in docs/ARCHITECTURE.md."""
    text = (REPO / "docs" / "ARCHITECTURE.md").read_text()
    modules = [*(REPO / "basisdb").glob("*.py"), *(REPO / "build" / "basisdb_build").glob("*.py")]
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
        "from basisdb._version import __version__"
        in (REPO / "build" / "basisdb_build" / "builder.py").read_text()
    )
