"""The tree reads as the flow: no import cycles, no module importing a later stage, and the
engine contract importable without any orchestration. Walks every import statement (top-level and
inside functions) of the project's own packages with `ast`, so a lazy import counts too."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.conftest import ROOT

PACKAGES = ("cases", "reference", "adapters", "harness")
MAX_LINES = 300
LONG_REASON = "Longer than 300 lines because"

# The flow, in order: an import may point to the same stage or an earlier one, never a later one.
STAGES: list[tuple[str, ...]] = [
    ("cases",),                                    # case file -> Case, the parameter layout
    ("harness.outcome", "harness.contract"),       # the vocabulary; request, trace, engine
    ("reference",),                                # the oracle
    ("adapters",),                                 # the engines and their registry
    ("harness.run",),                              # request -> engine in its own process -> trace
    ("harness.judge",),                            # traces -> verdicts and findings
    ("harness.report", "harness.check"),           # verdicts -> reports; a learner's diagnosis
    ("harness.compare", "harness.progress", "harness.bench", "harness.cli", "harness.__main__",
     "harness.fuzz", "harness"),                   # the commands on top
]


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def project_modules() -> dict[str, Path]:
    return {module_name(p): p for package in PACKAGES for p in (ROOT / package).rglob("*.py")}


def imports_of(path: Path, modules: dict[str, Path]) -> set[str]:
    """The project modules that `path` imports (resolved to the longest known module name)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            # `from pkg import mod` imports pkg.mod when that is a module
            names = [f"{node.module}.{alias.name}" for alias in node.names] + [node.module]
        for name in names:
            while name and name not in modules:
                name = name.rpartition(".")[0]
            if name:
                found.add(name)
    return found


def stage_of(module: str) -> int:
    best, rank = -1, None
    for index, prefixes in enumerate(STAGES):
        for prefix in prefixes:
            if (module == prefix or module.startswith(prefix + ".")) and len(prefix) > best:
                best, rank = len(prefix), index
    assert rank is not None, f"{module} belongs to no stage: add it to STAGES"
    return rank


MODULES = project_modules()
GRAPH = {name: imports_of(path, MODULES) - {name} for name, path in MODULES.items()}


def _package_chain(module: str) -> set[str]:
    """A module's parent packages: importing it runs their __init__ first, not an arrow."""
    parts = module.split(".")
    return {".".join(parts[:i]) for i in range(1, len(parts))}


def test_no_import_cycles() -> None:
    state: dict[str, int] = {}  # 1 on the stack, 2 done
    stack: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for target in sorted(GRAPH[node] - _package_chain(node)):
            if state.get(target) == 1:
                cycle = [*stack[stack.index(target):], target]
                pytest.fail("import cycle: " + " -> ".join(cycle))
            if target not in state:
                visit(target)
        stack.pop()
        state[node] = 2

    for module in sorted(GRAPH):
        if module not in state:
            visit(module)


@pytest.mark.parametrize("module", sorted(MODULES))
def test_no_module_imports_a_later_stage(module: str) -> None:
    later = sorted(t for t in GRAPH[module] if stage_of(t) > stage_of(module))
    assert not later, f"{module} (stage {stage_of(module)}) imports a later stage: {later}"


@pytest.mark.parametrize("package", ["reference", "adapters", "harness.contract", "cases"])
def test_contract_side_imports_no_orchestration(package: str) -> None:
    allowed = ("cases", "reference", "adapters", "harness.contract", "harness.outcome")
    for module in (m for m in MODULES if m == package or m.startswith(package + ".")):
        bad = sorted(t for t in GRAPH[module]
                     if not any(t == a or t.startswith(a + ".") for a in allowed))
        assert not bad, f"{module} imports orchestration: {bad}"


@pytest.mark.parametrize("module", sorted(MODULES))
def test_modules_are_short_or_say_why(module: str) -> None:
    path = MODULES[module]
    lines = len(path.read_text().splitlines())
    if lines > MAX_LINES:
        docstring = ast.get_docstring(ast.parse(path.read_text())) or ""
        assert LONG_REASON in docstring, (
            f"{path.relative_to(ROOT)} has {lines} lines: split it, or say in its docstring "
            f"'{LONG_REASON} ...' (one job that needs the length)")


def test_the_walk_sees_real_imports() -> None:
    # guards the test itself: a walker that found nothing would pass everything above
    assert "harness.contract" in GRAPH["reference.mlp"]
    assert "harness.run.runner" in GRAPH["harness.cli"]
    assert stage_of("harness.run.worker") < stage_of("harness.judge.verdict")
