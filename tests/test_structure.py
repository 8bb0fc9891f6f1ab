"""The package's structure stays what the README's Design section promises: imports run one way
(no cycles), the package's own modules are imported at module level except in cli.py (start-up
time), no function is longer than 80 lines, and the VAE's posterior split exists once."""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "autoencoders"
MAX_FUNCTION_LINES = 80


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_module(name: str) -> bool:
    rel = Path(*name.split(".")[1:])
    return (PACKAGE / rel).with_suffix(".py").is_file() or (PACKAGE / rel / "__init__.py").is_file()


def _targets(node: ast.AST, module: str, is_package: bool) -> list[str]:
    """The package's own modules an import statement names (empty for third-party imports)."""
    if isinstance(node, ast.Import):
        return [a.name for a in node.names if a.name.split(".")[0] == "autoencoders"]
    if not isinstance(node, ast.ImportFrom):
        return []
    if node.level == 0:
        if not (node.module or "").startswith("autoencoders"):
            return []
        base = node.module
    else:
        here = module.split(".") if is_package else module.split(".")[:-1]
        base = ".".join(here[: len(here) - (node.level - 1)] + ([node.module] if node.module else []))
    found = []
    for alias in node.names:
        sub = f"{base}.{alias.name}"
        found.append(sub if _is_module(sub) else base)
    return found


def _modules():
    for path in sorted(PACKAGE.rglob("*.py")):
        yield path, _module_name(path), ast.parse(path.read_text())


def test_no_import_cycles_and_own_imports_at_module_level():
    graph, late = {}, []
    for path, name, tree in _modules():
        graph[name] = set()
        for node in tree.body:
            graph[name].update(_targets(node, name, path.name == "__init__.py"))
        for func in (n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))):
            for node in ast.walk(func):
                if _targets(node, name, path.name == "__init__.py") and path.name != "cli.py":
                    late.append(f"{name}:{node.lineno}")
    assert not late, f"function-level imports of the package's own modules outside cli.py: {late}"

    state, cycles = {}, []

    def visit(node, stack):
        state[node] = "open"
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == "open":
                cycles.append(stack[stack.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt, stack + [nxt])
        state[node] = "done"

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])
    assert not cycles, f"import cycles: {cycles}"
    assert "autoencoders.models" in graph["autoencoders.metrics"] | graph["autoencoders.evaluate"]  # the check sees edges


def test_no_function_is_longer_than_80_lines():
    long = [f"{name}.{node.name}: {node.end_lineno - node.lineno + 1} lines"
            for _, name, tree in _modules() for node in ast.walk(tree)
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
            and node.end_lineno - node.lineno + 1 > MAX_FUNCTION_LINES]
    assert not long, long


@pytest.mark.parametrize("formula,home", [(".chunk(2", "distributions.py"), ("LOG_2PI =", "distributions.py")])
def test_each_formula_is_written_once(formula, home):
    places = [f"{p.relative_to(PACKAGE)}:{i}" for p in PACKAGE.rglob("*.py")
              for i, line in enumerate(p.read_text().splitlines(), 1) if formula in line]
    assert len(places) == 1 and places[0].startswith(home), places
