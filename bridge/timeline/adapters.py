"""What the format readers share: OpenTimelineIO's adapters with clear errors, and the rate check."""

import re
from fractions import Fraction

import opentimelineio as otio

from bridge.errors import BadInput


MAX_FPS = 1000


def _first_line(exc) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def _checked_rate(rate, path) -> Fraction:
    if not 0 < rate <= MAX_FPS:
        raise BadInput(f"{path.name} has an absurd frame rate ({float(rate):g} fps)")
    return rate


def _read_with_adapter(path, adapter, text=None, **options):
    """One OTIO adapter call (on the file, or on its text when given); whatever goes wrong
    becomes one line for the user."""
    try:
        if text is not None:
            return otio.adapters.read_from_string(text, adapter_name=adapter, **options)
        return otio.adapters.read_from_file(str(path), adapter_name=adapter, **options)
    except otio.exceptions.UnsupportedSchemaError:
        raise BadInput(
            f"{path.name} was written by a newer OpenTimelineIO "
            f"({_newer_schemas(path)}); installed is OpenTimelineIO "
            f"{otio.__version__}: upgrade it to read this file"
        ) from None
    except FileNotFoundError:
        raise BadInput(f"timeline not found: {path}") from None
    except PermissionError:
        raise BadInput(f"cannot open {path}: permission denied") from None
    except Exception as exc:  # adapters raise anything from KeyError to ParseError
        raise BadInput(f"cannot read {path.name} as {adapter}: {_first_line(exc)}") from None


def _newer_schemas(path) -> str:
    """Which schema versions in the file are newer than the installed OTIO knows."""
    known = otio.core.type_version_map()
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return "unknown schema version"
    newer = sorted(
        {
            f"{name}.{version}"
            for name, version in re.findall(r'"OTIO_SCHEMA"\s*:\s*"(\w+)\.(\d+)"', text)
            if name in known and int(version) > known[name]
        }
    )
    return ", ".join(newer) or "unknown schema version"
