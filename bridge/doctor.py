"""`scorebridge doctor`: what is installed and usable, in one table."""

import importlib.util
import platform
import shutil
import subprocess
from pathlib import Path

from bridge import __version__, resources
from bridge.render.soundfont import find_soundfont, is_fallback_bank
from bridge.render.synth import available as synthesizers
from bridge.errors import MissingModel

MODELS = resources.folder("models")


def _tool_version(tool: str) -> str | None:
    path = shutil.which(tool)
    if not path:
        return None
    try:
        out = subprocess.run(
            [path, "-version" if tool.startswith("ff") else "-v"], capture_output=True, text=True, timeout=10
        )
        first = (out.stdout or out.stderr).strip().splitlines()
        return f"{path} ({first[0][:60]})" if first else path
    except (OSError, subprocess.SubprocessError):
        return path


def music_model(stem) -> tuple:
    """The shipped weights, loaded as `score` loads them (SHA-256 checked)."""
    from bridge.music.model import load_usable

    try:
        model = load_usable("cpu", stem, "scores cannot be written")
    except MissingModel as exc:
        return "music model", False, str(exc), False
    except (OSError, ValueError, KeyError, TypeError) as exc:  # a record or file not its own
        return "music model", False, f"{stem.name} is unreadable ({type(exc).__name__})", False
    return (
        "music model",
        True,
        f"{stem.name}.safetensors, {model.num_params() / 1e6:.2f} M parameters, SHA-256 checked",
        False,
    )


def chord_model(path) -> tuple:
    """The shipped chord model, loaded as the engine loads it."""
    from bridge.music import harmony

    try:
        model = harmony.load(path)
    except MissingModel as exc:
        return "chord model", False, str(exc), True
    params = sum(p.numel() for p in model.parameters())
    return "chord model", True, f"{path.name}, {params / 1e3:.0f} k parameters", True


def music_corpus() -> tuple:
    """The training corpus: only training and `eval` need it."""
    from bridge.music.corpus import CORPUS_DIR

    path = CORPUS_DIR / "corpus.pkl"
    if not path.is_file():
        return (
            "music corpus",
            False,
            f"not built ({path}): only `train model` and `eval` need it (`scorebridge train corpus`)",
            False,
        )
    return "music corpus", True, f"{path} ({path.stat().st_size / 2**20:.0f} MiB)", False


def checks() -> list:
    """(name, ok, detail, required) rows. Required rows failing make doctor exit 1."""
    rows = [("scorebridge", True, f"{__version__} on Python {platform.python_version()}", True)]
    try:
        import torch

        device = "cuda (" + torch.cuda.get_device_name(0) + ")" if torch.cuda.is_available() else "cpu"
        rows.append(("torch", True, f"{torch.__version__}, device auto -> {device}", True))
    except ImportError as exc:
        rows.append(("torch", False, str(exc), True))
    try:
        import opentimelineio as otio

        rows.append(
            (
                "opentimelineio",
                True,
                f"{otio.__version__}; adapters: " + ", ".join(sorted(otio.adapters.available_adapter_names())),
                True,
            )
        )
    except ImportError as exc:
        rows.append(("opentimelineio", False, str(exc), True))
    for mod in ("cv2", "scenedetect", "mido", "pythonosc"):
        spec = importlib.util.find_spec(mod)
        rows.append((mod, spec is not None, "importable" if spec else "missing", True))
    face = importlib.util.find_spec("what_the_face_classification")
    weights = Path(face.origin).parent / "active_model.pth" if face else None
    rows.append(
        (
            "face model",
            bool(weights and weights.is_file()),
            str(weights)
            if weights and weights.is_file()
            else "what-the-face-classification not installed: emotion from picture cues only",
            False,
        )
    )
    rows.append(music_model(MODELS / "scorebridge-music"))
    rows.append(chord_model(MODELS / "scorebridge-harmony.safetensors"))
    rows.append(music_corpus())
    for tool in ("ffmpeg", "ffprobe"):
        version = _tool_version(tool)
        rows.append((tool, bool(version), version or "missing: media probing, audio cues and previews off", False))
    synths = {k: v for k, v in synthesizers().items() if v}
    rows.append(
        (
            "synthesizer",
            bool(synths),
            ", ".join(f"{k}: {v}" for k, v in synths.items()) or "none: scores are written as MIDI only",
            False,
        )
    )
    sf = find_soundfont()
    rows.append(
        (
            "soundfont",
            bool(sf),
            (f"{sf} (a small fallback bank: install fluid-soundfont-gm)" if sf and is_fallback_bank(sf) else sf)
            or "no General MIDI soundfont found (set SCOREBRIDGE_SOUNDFONT)",
            False,
        )
    )
    ray = importlib.util.find_spec("ray")
    if ray:
        from importlib.metadata import version

        detail = f"{version('ray')}: `batch --engine ray` can run"
    else:
        detail = "not installed: only `batch --engine ray` needs it (pip install 'scorebridge[ray]')"
    rows.append(("ray", bool(ray), detail, False))
    lua = shutil.which("lua5.4")
    rows.append(("lua5.4", bool(lua), lua or "missing: only needed for the REAPER script tests", False))
    return rows


def run() -> int:
    rows = checks()
    width = max(len(r[0]) for r in rows)
    for name, ok, detail, required in rows:
        mark = "ok " if ok else ("ERR" if required else "-- ")
        print(f"{mark} {name.ljust(width)}  {detail}")
    return 0 if all(ok for _, ok, _, required in rows if required) else 1


def kernels() -> dict:
    """The SIMD level the numeric libraries dispatch to here, which a speed figure depends on
    as much as on the CPU: torch's (ATEN_CPU_CAPABILITY lowers it) and numpy's
    (NPY_DISABLE_CPU_FEATURES), so a figure taken with AVX-512 turned off says so."""
    out = {}
    try:
        import torch

        out["torch"] = torch.backends.cpu.get_cpu_capability()
    except Exception:  # no torch, or too old to say
        pass
    try:
        from numpy._core._multiarray_umath import __cpu_features__ as features

        out["numpy"] = next(
            (k for k in ("AVX512_ICL", "AVX512_SKX", "AVX2", "ASIMD", "NEON") if features.get(k)), "baseline"
        )
    except Exception:  # another numpy layout
        pass
    return out


def cpu_name() -> str:
    """The CPU a figure was taken on, as `lscpu` names it (vendor, family and model where the
    name alone is vague, as virtual machines often report it)."""
    fields = {}
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10).stdout
        for line in out.splitlines():
            key, _, value = line.partition(":")
            fields[key.strip()] = value.strip()
    except (OSError, subprocess.SubprocessError):
        pass
    name = fields.get("Model name") or platform.processor() or platform.machine()
    extra = [f"{k.lower()} {fields[k]}" for k in ("CPU family", "Model") if fields.get(k)]
    flags = fields.get("Flags", "")
    extra.append("AVX-512" if "avx512f" in flags else ("no AVX-512" if flags else platform.machine()))
    if "amx_tile" in flags:
        extra.append("AMX")
    return f"{name} ({', '.join(extra)})"
