"""The README's two set-up commands and CI: .ci/run must call the README's test command."""
from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


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

    contract = {"basisdb._constants", "basisdb._format", "basisdb._ops", "basisdb._boxindex", "basisdb._symbols", "basisdb._version"}
    used = set()
    for path in (REPO / "build").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").split(".")[0] == "basisdb":
                used.add(node.module)
            elif isinstance(node, ast.Import):
                used |= {a.name for a in node.names if a.name.split(".")[0] == "basisdb"}
    assert used and used <= contract, sorted(used - contract)
