"""The package's import structure, read from the source with `ast` (nothing is imported):

- the lower layers (lutc.dialects, lutc.passes, lutc.runtime) never import lutc.compiler, and
  more strictly runtime < dialects < passes < compiler: no layer imports a later one;
- no two modules import each other, directly or through a longer cycle.

Imports inside functions count too: a lazy import is still a dependency.
"""

from __future__ import annotations

import ast
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LOWER_LAYERS = ("lutc.dialects", "lutc.passes", "lutc.runtime")


def _modules() -> dict[str, Path]:
    """Module name -> file, from pyproject's package-dir map."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    package_dirs = config["tool"]["setuptools"]["package-dir"]
    modules = {}
    for package, folder in package_dirs.items():
        for path in sorted((ROOT / folder).glob("*.py")):
            name = package if path.stem == "__init__" else f"{package}.{path.stem}"
            modules[name] = path
    return modules


MODULES = _modules()


def _resolve(name: str) -> str | None:
    """The lutc module an imported name refers to (a module, else its package)."""
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def _imports(module: str, path: Path) -> set[str]:
    package = module if path.stem == "__init__" else module.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{parent}.{base}" if base else parent
            names = [f"{base}.{alias.name}" for alias in node.names] + [base]
        else:
            continue
        for name in names:
            if name.startswith("lutc.") or name == "lutc":
                target = _resolve(name)
                if target and target != module:
                    found.add(target)
    return found


GRAPH = {module: _imports(module, path) for module, path in MODULES.items()}


def test_the_walk_sees_the_package():
    assert "lutc.runtime.abi" in MODULES and "lutc.compiler.api" in MODULES
    assert "lutc.runtime.abi" in GRAPH["lutc.runtime.packing"]


def test_lower_layers_never_import_the_compiler():
    bad = sorted(f"{module} imports {target}" for module, targets in GRAPH.items()
                 if module.startswith(LOWER_LAYERS)
                 for target in targets if target.startswith("lutc.compiler"))
    assert not bad, "lower layers import lutc.compiler:\n" + "\n".join(bad)


# lowest first: a module may import its own layer and the ones before it (README "Layout")
LAYERS = ("lutc.runtime", "lutc.dialects", "lutc.passes", "lutc.compiler")


def _layer(module: str) -> int:
    return next((i for i, p in enumerate(LAYERS) if module == p or module.startswith(p + ".")),
                -1)


def test_layers_import_only_lower_layers():
    bad = sorted(f"{module} imports {target}" for module, targets in GRAPH.items()
                 for target in targets if _layer(module) >= 0 and _layer(target) > _layer(module))
    assert not bad, "a layer imports a higher one:\n" + "\n".join(bad)


def test_no_two_modules_import_each_other():
    mutual = sorted(f"{a} <-> {b}" for a, targets in GRAPH.items() for b in targets
                    if a < b and a in GRAPH.get(b, ()))
    assert not mutual, "modules importing each other:\n" + "\n".join(mutual)


def _cycles() -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in GRAPH.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                components.append(sorted(component))

    for v in sorted(GRAPH):
        if v not in index:
            visit(v)
    return components


def test_no_import_cycles():
    cycles = _cycles()
    assert not cycles, "import cycles:\n" + "\n".join(" -> ".join(c) for c in cycles)
