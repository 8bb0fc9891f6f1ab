"""The package's structure stays what the docs' Design page promises: the folder tree reads as the
pipeline and imports only point down it (no cycles), the package's own modules are imported at module
level except in the CLI (start-up time), no module is over 500 lines, no function over 80, every
subpackage says what lives in it, and the VAE's posterior split exists once."""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "aekit"
MAX_FUNCTION_LINES = 80
MAX_MODULE_LINES = 500
# The pipeline, bottom to top: a module imports its own stage or the ones below it, never one above.
# runs.storage (the one atomic writer) and errors are used by every stage, so they sit at the bottom.
STAGES = (
    ("aekit._version", "aekit.errors", "aekit.budget", "aekit.runs.storage"),
    ("aekit.data",),
    ("aekit.inference",),
    ("aekit.models",),
    ("aekit.anomaly", "aekit.evaluation", "aekit.codec"),
    ("aekit.runs",),
    ("aekit.training",),
    ("aekit.onnx_export", "aekit.sklearn", "aekit.report", "aekit.tour", "aekit.cli", "aekit.__main__", "aekit"),
)


def _stage(module: str) -> int:
    """The stage of a module: the longest prefix named in STAGES."""
    best, found = -1, None
    for level, prefixes in enumerate(STAGES):
        for prefix in prefixes:
            if (module == prefix or module.startswith(prefix + ".")) and len(prefix) > best:
                best, found = len(prefix), level
    assert found is not None, f"{module} belongs to no stage of STAGES"
    return found


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_module(name: str) -> bool:
    rel = Path(*name.split(".")[1:])
    return (PACKAGE / rel).with_suffix(".py").is_file() or (PACKAGE / rel / "__init__.py").is_file()


def _targets(node: ast.AST, module: str, is_package: bool) -> list[str]:
    """The package's own modules an import statement names (empty for third-party imports)."""
    if isinstance(node, ast.Import):
        return [a.name for a in node.names if a.name.split(".")[0] == "aekit"]
    if not isinstance(node, ast.ImportFrom):
        return []
    if node.level == 0:
        if (node.module or "").split(".")[0] != "aekit":
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


def _graph():
    graph, late = {}, []
    for path, name, tree in _modules():
        graph[name] = set()
        for node in tree.body:
            graph[name].update(_targets(node, name, path.name == "__init__.py"))
        for func in (n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))):
            for node in ast.walk(func):
                if _targets(node, name, path.name == "__init__.py") and not name.startswith("aekit.cli"):
                    late.append(f"{name}:{node.lineno}")
    return graph, late


def test_no_import_cycles_and_own_imports_at_module_level():
    graph, late = _graph()
    assert not late, f"function-level imports of the package's own modules outside the CLI: {late}"
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
    assert "aekit.models.autoencoder" in graph["aekit.evaluation.metrics"]  # the check sees edges


def test_imports_only_point_down_the_pipeline():
    graph, _ = _graph()
    upward = sorted(f"{a} (stage {_stage(a)}) imports {b} (stage {_stage(b)})"
                    for a, targets in graph.items() for b in targets if _stage(b) > _stage(a))
    assert not upward, upward
    assert _stage("aekit.data.tables") < _stage("aekit.models.kinds") < _stage("aekit.cli.train")  # the rule is read


def test_no_module_is_over_500_lines_and_every_subpackage_says_what_lives_there():
    long = [f"{p.relative_to(PACKAGE)}: {n} lines" for p in PACKAGE.rglob("*.py")
            if (n := len(p.read_text().splitlines())) > MAX_MODULE_LINES]
    assert not long, long
    silent = [str(p.relative_to(PACKAGE)) for p in PACKAGE.rglob("__init__.py") if not ast.get_docstring(ast.parse(p.read_text()))]
    assert not silent, f"subpackages without a docstring: {silent}"


def test_no_function_is_longer_than_80_lines():
    long = [f"{name}.{node.name}: {node.end_lineno - node.lineno + 1} lines"
            for _, name, tree in _modules() for node in ast.walk(tree)
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
            and node.end_lineno - node.lineno + 1 > MAX_FUNCTION_LINES]
    assert not long, long


@pytest.mark.parametrize("formula,home", [(".chunk(2", "models/distributions.py"), ("LOG_2PI =", "models/distributions.py")])
def test_each_formula_is_written_once(formula, home):
    places = [f"{p.relative_to(PACKAGE)}:{i}" for p in PACKAGE.rglob("*.py")
              for i, line in enumerate(p.read_text().splitlines(), 1) if formula in line]
    assert len(places) == 1 and places[0].startswith(home), places
