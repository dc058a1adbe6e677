"""Dependencies point one way: the benchmarks (bridge/bench) and the evaluation (bridge/eval)
import the product, and nothing in the product imports them; only the command line reaches
them, to run them."""

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "bridge"
MEASUREMENT = ("bridge.bench", "bridge.eval")
MAY_RUN_THEM = ("bridge.cli",)  # the command line, bridge/cli/


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
        if not _inside(name, MEASUREMENT) and not _inside(name, MAY_RUN_THEM)
    }
    assert {name: found for name, found in wrong.items() if found} == {}


def test_the_measurement_packages_reach_the_product_only_downward():
    # bench and eval may use anything in the product, and each other, but never the CLI
    for name, path in ((_module(p), p) for p in PACKAGE.rglob("*.py")):
        if _inside(name, MEASUREMENT):
            assert not any(_inside(i, MAY_RUN_THEM) for i in _imports(path)), name


def test_every_package_of_bridge_is_in_the_wheel():
    import tomllib

    listed = set(tomllib.loads((PACKAGE.parent / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {_module(p) for p in PACKAGE.rglob("__init__.py") if "__pycache__" not in p.parts}
    assert found <= listed, f"add to pyproject's packages: {sorted(found - listed)}"


def test_an_installed_wheel_finds_its_models_and_host_scripts(tmp_path):
    """A wheel carries the weights and the host scripts inside the package; installed
    anywhere (here: a bare folder on PYTHONPATH, run from elsewhere), bridge.resources finds
    them there and not in a checkout."""
    import json
    import os
    import subprocess
    import sys

    root = PACKAGE.parent
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    subprocess.run(
        pip + ["wheel", str(root), "--no-deps", "--no-build-isolation", "-w", str(tmp_path / "wheel")], check=True
    )
    (wheel,) = (tmp_path / "wheel").glob("scorebridge-*.whl")
    site = tmp_path / "site"
    subprocess.run(pip + ["install", "--no-deps", "--target", str(site), str(wheel)], check=True)
    probe = (
        "import json, bridge\n"
        "from bridge import resources\n"
        "from bridge.hosts import reaper, resolve\n"
        "from bridge.music import harmony, model\n"
        "print(json.dumps({'package': bridge.__file__, 'reaper': str(reaper.SCRIPTS), "
        "'resolve': str(resolve.SCRIPT), 'music': str(model.MODELS_DIR / (model.SHIPPED_NAME + '.safetensors')), "
        "'harmony': str(harmony.WEIGHTS)}))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(site)}
    out = subprocess.run(
        [sys.executable, "-c", probe], cwd=tmp_path, env=env, capture_output=True, text=True, check=True
    )
    found = json.loads(out.stdout)
    assert found["package"].startswith(str(site))
    for key in ("reaper", "resolve", "music", "harmony"):
        path = Path(found[key])
        assert path.is_relative_to(site / "bridge") and path.exists(), (key, path)
    assert (Path(found["reaper"]) / "scorebridge" / "request.lua").is_file()
    assert (Path(found["resolve"]).parent / "scorebridge_resolve" / "session.py").is_file()
    assert (Path(found["music"]).with_suffix(".json")).is_file()


def test_the_daemon_and_its_clients_share_one_protocol_module():
    """Only bridge.daemon.protocol speaks OSC; the server and the client take the wire from it,
    and the client never imports the server."""
    for path in PACKAGE.rglob("*.py"):
        name = _module(path)
        if name != "bridge.daemon.protocol":
            assert not any(_inside(i, ("pythonosc",)) for i in _imports(path)), name
    assert "bridge.daemon.protocol" in _imports(PACKAGE / "daemon" / "client.py")
    assert not any(_inside(i, ("bridge.daemon.server",)) for i in _imports(PACKAGE / "daemon" / "client.py"))


# Utilities <- stages <- drivers <- the command line (ARCHITECTURE.md): a module imports its
# own layer or those before it. music.theory (names of keys, scales and chords; it imports
# nothing) is a utility, so settings can check a key name.
LAYERS = [
    (
        "utility",
        (
            "bridge.errors",
            "bridge.config",
            "bridge.resources",
            "bridge.settings",
            "bridge.timebase",
            "bridge.atomic",
            "bridge.progress",
            "bridge.mkl_warmup",
            "bridge.music.theory",
        ),
    ),
    (
        "stage",
        (
            "bridge.timeline",
            "bridge.timeline.markers",
            "bridge.picture",
            "bridge.plan",
            "bridge.music",
            "bridge.render",
            "bridge.score.compose",
            "bridge.manifest",
            "bridge.analyze",
        ),
    ),
    (
        "driver",
        (
            "bridge.score",
            "bridge.score.live",
            "bridge.daemon",
            "bridge.batch",
            "bridge.hosts",
            "bridge.demo",
            "bridge.doctor",
        ),
    ),
    ("command line", ("bridge.cli", "bridge.__main__")),
]


def _layer(name):
    """Index into LAYERS of the longest prefix that holds `name`, or None (the package itself)."""
    best, length = None, -1
    for index, (_, prefixes) in enumerate(LAYERS):
        for prefix in prefixes:
            if _inside(name, (prefix,)) and len(prefix) > length:
                best, length = index, len(prefix)
    return best


def test_dependencies_point_one_way():
    upward = []
    for path in PACKAGE.rglob("*.py"):
        name = _module(path)
        mine = _layer(name)
        if mine is None or _inside(name, MEASUREMENT):
            continue
        for imported in _imports(path):
            theirs = _layer(imported) if imported.startswith("bridge.") else None
            if theirs is not None and theirs > mine:
                upward.append(f"{name} ({LAYERS[mine][0]}) imports {imported} ({LAYERS[theirs][0]})")
    assert not upward, "\n".join(sorted(upward))
    every = {_module(p) for p in PACKAGE.rglob("*.py")} - {"bridge"}
    placed = {m for m in every if _layer(m) is not None or _inside(m, MEASUREMENT)}
    assert placed == every, f"give these a layer: {sorted(every - placed)}"


def test_importing_the_stages_loads_no_driver():
    """A package's __init__ runs on any import below it: bridge.score's must not pull its
    pipeline (and every stage) into a renderer that only wants compose's ScoreNote."""
    import subprocess
    import sys

    probe = (
        "import sys, bridge.render.midi, bridge.render.audio, bridge.music.engine, bridge.timeline\n"
        "print(sorted(m for m in sys.modules if m.startswith(('bridge.score.pipeline', 'bridge.daemon', "
        "'bridge.batch', 'bridge.cli'))))\n"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_the_tests_mirror_the_package():
    """tests/<name>/ holds the tests of bridge/<name> (a package or a module); what the tests
    share is in tests/helpers and tests/conftest.py."""
    tests = Path(__file__).resolve().parent
    for folder in tests.iterdir():
        if not folder.is_dir() or folder.name in ("helpers", "__pycache__") or folder.name.startswith("."):
            continue
        assert (PACKAGE / folder.name).is_dir() or (PACKAGE / f"{folder.name}.py").is_file(), folder.name
        assert list(folder.glob("test_*.py")), f"{folder.name} holds no tests"
