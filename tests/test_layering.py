"""The package's import rule: a module imports only from its own layer or the layers below it.

Layers, lowest first (docs/design.md §2): version/environment/memory → audio → data → models → tasks/train →
eval → search → bin. An upward import would make the low layers drag in the whole toolkit and tie their
tests to it; this test reads every module's imports without running them.
"""

from __future__ import annotations

import ast
from pathlib import Path

LAYERS = {"version": 0, "environment": 0, "memory": 0, "audio": 1, "data": 2, "models": 3, "tasks": 4,
          "train": 4, "eval": 5, "search": 6, "bin": 7}
PACKAGE = Path(__file__).resolve().parents[1] / "inmsrl"


def layer_of(module: str) -> int | None:
    parts = module.split(".")
    if parts[0] != "inmsrl" or len(parts) < 2:
        return None
    return LAYERS.get(parts[1])


def imported_modules(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module))
    return found


def test_every_package_module_belongs_to_a_known_layer():
    for path in PACKAGE.rglob("*.py"):
        rel = path.relative_to(PACKAGE)
        if rel.name == "__init__.py" and len(rel.parts) == 1:
            continue
        top = rel.parts[0].removesuffix(".py")
        assert top in LAYERS, f"inmsrl/{rel}: not in a layer of docs/design.md §2; add it to LAYERS"


def test_imports_only_point_down():
    violations = []
    for path in PACKAGE.rglob("*.py"):
        rel = path.relative_to(PACKAGE)
        if len(rel.parts) == 1 and rel.name == "__init__.py":
            continue
        own = LAYERS[rel.parts[0].removesuffix(".py")]
        for lineno, module in imported_modules(path):
            target = layer_of(module)
            if target is not None and target > own:
                violations.append(f"inmsrl/{rel}:{lineno} imports {module}")
    assert not violations, "upward imports:\n" + "\n".join(violations)
