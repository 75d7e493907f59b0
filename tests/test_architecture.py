"""The layers of docs/architecture.md, checked on the source: every import edge points downwards.

The import graph is read with ``ast`` from every module of ``gesture_snn`` and ``hdl`` — imports
inside functions count as much as those at the top — so a cycle hidden in a function body, or a
gateware module that reaches into the software side, fails here before anyone has to notice it.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("gesture_snn", "hdl")

# Lowest first. A module may import modules of its own layer and of the layers below it.
LAYERS = ("spec", "software", "gateware", "stages", "demo", "cli")
ALLOWED = {
    "spec": {"spec"},
    "software": {"spec", "software"},
    "gateware": {"spec", "gateware"},
    "stages": {"spec", "software", "gateware", "stages"},
    "demo": {"spec", "software", "gateware", "stages", "demo"},
    "cli": set(LAYERS),
}
# What the spec may import from outside the project: the standard library and numpy.
SPEC_THIRD_PARTY = {"numpy"}


def layer_of(module: str) -> str:
    parts = module.split(".")
    if parts[0] == "hdl":
        return "gateware"
    if len(parts) == 1:
        return "spec"  # gesture_snn/__init__.py: the version string, imports nothing
    return {
        "spec": "spec",
        "stages": "stages",
        "demo": "demo",
        "cli": "cli",
        "commands": "cli",
        "__main__": "cli",
    }.get(parts[1], "software")


def project_modules() -> dict[str, Path]:
    modules = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            if parts[-1] == "__init__":
                parts = parts[:-1]
            modules[".".join(parts)] = path
    return modules


def imports_of(module: str, path: Path, modules: dict[str, Path]) -> tuple[set[str], set[str]]:
    """(project modules, top-level external packages) that ``module`` imports anywhere."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    project, external = set(), set()

    def add(name: str) -> None:
        top = name.split(".")[0]
        if top not in PACKAGES:
            external.add(top)
            return
        while name and name not in modules:  # a name inside a module: the module itself
            name = name.rpartition(".")[0]
        if name:
            project.add(name)

    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                add(alias.name)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module or ""
            for alias in node.names:
                candidate = f"{source}.{alias.name}"
                add(candidate if candidate in modules else source)
    project.discard(module)
    return project, external


@pytest.fixture(scope="module")
def graph() -> dict[str, tuple[set[str], set[str]]]:
    modules = project_modules()
    return {name: imports_of(name, path, modules) for name, path in modules.items()}


def test_the_walker_sees_the_packages(graph):
    # A walker that finds nothing would pass every rule below.
    assert "gesture_snn.spec.intnet" in graph
    assert "hdl.core" in graph
    assert "gesture_snn.spec.intnet" in graph["hdl.core"][0]
    assert "gesture_snn.cli" in graph


def test_every_edge_points_down_the_layers(graph):
    wrong = []
    for module, (project, _) in sorted(graph.items()):
        for target in sorted(project):
            if layer_of(target) not in ALLOWED[layer_of(module)]:
                wrong.append(f"{module} ({layer_of(module)}) imports {target} ({layer_of(target)})")
    assert not wrong, "imports against the layers of docs/architecture.md:\n" + "\n".join(wrong)


def test_the_gateware_imports_only_the_spec_from_the_software_side(graph):
    wrong = [
        f"{module} imports {target}"
        for module, (project, _) in sorted(graph.items())
        if module.startswith("hdl")
        for target in sorted(project)
        if target.startswith("gesture_snn") and not target.startswith("gesture_snn.spec")
    ]
    assert not wrong, "\n".join(wrong)


def test_the_spec_needs_only_numpy_and_the_standard_library(graph):
    wrong = [
        f"{module} imports {package}"
        for module, (_, external) in sorted(graph.items())
        if layer_of(module) == "spec"
        for package in sorted(external)
        if package not in SPEC_THIRD_PARTY and package not in sys.stdlib_module_names and package != "__future__"
    ]
    assert not wrong, "\n".join(wrong)


def find_cycle(edges: dict[str, set[str]]) -> list[str] | None:
    """One cycle of the directed graph as a list of nodes (first = last), or None."""
    state: dict[str, int] = {}  # 1 on the stack, 2 done
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for target in sorted(edges.get(node, ())):
            if state.get(target) == 1:
                return stack[stack.index(target):] + [target]
            if target not in state:
                found = visit(target)
                if found:
                    return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(edges):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


def test_find_cycle_finds_one():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None


def test_no_import_cycle(graph):
    cycle = find_cycle({module: project for module, (project, _) in graph.items()})
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_the_layer_rules_catch_a_bad_edge():
    # The rules themselves, on made-up edges: gateware -> software, software -> gateware, software -> CLI.
    assert "software" not in ALLOWED[layer_of("hdl.core")]
    assert "gateware" not in ALLOWED[layer_of("gesture_snn.energy")]
    assert "cli" not in ALLOWED[layer_of("gesture_snn.demo")]
    assert layer_of("gesture_snn.commands.build") == "cli"
    assert layer_of("gesture_snn.spec.protocol") == "spec"
