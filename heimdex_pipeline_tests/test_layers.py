"""The folders are the layers: nothing imports a layer above its own, the pipeline and the
service never import each other, and no module imports itself round a cycle."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "heimdex_pipeline"
# Low to high; a module may import its own layer or one below. `pipeline` (Dagster) and `serve`
# (the read side) share a rank and may not import each other.
LAYERS = {
    "media": 0,
    "settings": 0,
    "catalog": 1,
    "stores": 2,
    "processes": 2,
    "clip": 3,
    "speech": 3,
    "faces": 3,
    "library": 4,
    "search": 5,
    "pipeline": 6,
    "serve": 6,
    "cli": 7,
    "definitions": 8,
}


def modules() -> dict[str, Path]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        if "migrations" in path.parts:
            continue
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = path
    return found


def imports_of(path: Path) -> set[str]:
    """Every heimdex_pipeline module a file imports, at the top or inside a function."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            if node.module.startswith("heimdex_pipeline"):
                names.add(node.module)
                names |= {f"{node.module}.{alias.name}" for alias in node.names}
        elif isinstance(node, ast.Import):
            names |= {a.name for a in node.names if a.name.startswith("heimdex_pipeline")}
    return names


def layer_of(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else None


def graph() -> dict[str, set[str]]:
    known = modules()
    return {
        name: {imported for imported in imports_of(path) if imported in known and imported != name}
        for name, path in known.items()
    }


def test_every_module_belongs_to_a_layer():
    unplaced = {
        name for name in modules() if layer_of(name) not in LAYERS and name != "heimdex_pipeline"
    }
    assert not unplaced, f"modules outside the layers: {sorted(unplaced)}"


def test_no_module_imports_a_layer_above_its_own():
    upward = []
    for name, imported in graph().items():
        mine = layer_of(name)
        if mine is None:
            continue
        for other in imported:
            theirs = layer_of(other)
            if theirs is None or theirs == mine:
                continue
            if LAYERS[theirs] > LAYERS[mine] or {mine, theirs} == {"pipeline", "serve"}:
                upward.append(f"{name} imports {other}")
    assert not upward, "\n".join(sorted(upward))


def test_the_import_graph_has_no_cycle():
    edges = graph()
    state: dict[str, int] = {}  # 1 on the path, 2 done
    cycles = []

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == 1:
                cycles.append(" -> ".join([*path[path.index(nxt) :], nxt]))
            elif nxt not in state:
                visit(nxt, [*path, nxt])
        state[node] = 2

    for node in sorted(edges):
        if node not in state:
            visit(node, [node])
    assert not cycles, "\n".join(cycles)
