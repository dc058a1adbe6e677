"""Dependencies point one way: the benchmarks (bridge/bench) and the evaluation (bridge/eval)
import the product, and nothing in the product imports them; only the command line reaches
them, to run them."""

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "bridge"
MEASUREMENT = ("bridge.bench", "bridge.eval")
MAY_RUN_THEM = {"bridge.cli", "bridge.music.cli"}


def _module(path):
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path):
    """Every module a file imports, at any depth (function-level imports included)."""
    module = _module(path)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join(anchor + ([base] if base else []))
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return found


def _inside(name, prefixes):
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def test_nothing_in_the_product_imports_the_benchmarks_or_the_evaluation():
    modules = {_module(p): p for p in PACKAGE.rglob("*.py")}
    assert "bridge.bench.score" in modules and "bridge.eval.measures" in modules
    wrong = {
        name: sorted(i for i in _imports(path) if _inside(i, MEASUREMENT))
        for name, path in modules.items()
        if not _inside(name, MEASUREMENT) and name not in MAY_RUN_THEM
    }
    assert {name: found for name, found in wrong.items() if found} == {}


def test_the_measurement_packages_reach_the_product_only_downward():
    # bench and eval may use anything in the product, and each other, but never the CLI
    for name, path in ((_module(p), p) for p in PACKAGE.rglob("*.py")):
        if _inside(name, MEASUREMENT):
            assert not any(_inside(i, MAY_RUN_THEM) for i in _imports(path)), name
