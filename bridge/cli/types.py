"""The command line's argument types: each refuses a value that cannot mean anything, with
the reason, before any work starts. The score options use bridge.settings' checks, so a flag
takes what the daemon's options_json and batch take."""

import argparse
import os

from bridge import settings


def _checked(check, convert=str):
    """An argparse type from one of bridge.settings' checks: the flag takes the same values
    the daemon's options_json and batch do."""

    def parse(text):
        try:
            return check(convert(text))
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    return parse


def _whole(text):
    try:
        return int(text)
    except ValueError:
        raise ValueError(f"not a whole number: {text!r}") from None


def _real(text):
    try:
        return float(text)
    except ValueError:
        raise ValueError(f"not a number: {text!r}") from None


_rate = _checked(settings.check_fps)  # --fps: 25, 23.976, 29.97, 30000/1001
_seed = _checked(settings.check_seed, _whole)
_loudness = _checked(settings.check_loudness, _real)
_key = _checked(settings.check_key)
_candidates = _checked(settings.check_candidates, _whole)


def _number_in(lo, hi, low_open=False):
    """An argparse type for a number in [lo, hi] ((lo, hi] with low_open); NaN is refused."""
    span = f"{'(' if low_open else '['}{lo:g}, {hi:g}]"

    def parse(text):
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
        if not ((lo < value) if low_open else (lo <= value)) or not value <= hi:
            raise argparse.ArgumentTypeError(f"must be in {span}, got {text}")
        return value

    return parse


_unit = _checked(lambda v: settings.check_unit(v, "valence and arousal"), _real)  # --valence / --arousal
_strength = _number_in(0, 20)  # --key-pull / --steer (0: no key steering)
_temperature = _number_in(0, 2, low_open=True)  # eval --temperature
_top_p = _number_in(0, 1, low_open=True)  # eval --top-p
_share = _number_in(0, 1)  # train model --self-share
_take_seconds = _number_in(4, 60)  # train takes --seconds
_guidance = _number_in(1, 4)  # eval-score --guidance
_unit_step = _number_in(0, 2)  # eval-score --mood-step
_key_guidance = _number_in(1, 30)  # eval --key-guidance (1: no key guidance)
_key_cut = _number_in(0, 10)  # eval --key-cut (0: key guidance up to the cut)
_energy_pull = _number_in(0, 4)  # eval-score --energy-pull (0: the model's own pace)
_dynamics_pull = _number_in(0, 4)  # eval-score --dynamics-pull (0: the model's own loudness)


def _workers(text):
    """train model --workers: 0 (batches built in the loop) up to four per core here."""
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of workers: {text!r}") from None
    most = 4 * (os.cpu_count() or 1)
    if not 0 <= n <= most:
        raise argparse.ArgumentTypeError(f"workers must be 0 to {most} on this machine, not {n}")
    return n


def _int_in(lo, hi):
    """An argparse type for a whole number from lo to hi."""

    def parse(text):
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
        if not lo <= value <= hi:
            raise argparse.ArgumentTypeError(f"must be {lo} to {hi}, got {text}")
        return value

    return parse


def _positive_int(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {text}")
    return value


def _twin_windows(text):
    """eval --twin-windows: each window is a forward pass of both runs; 16 to 8,192."""
    value = _positive_int(text)
    if not 16 <= value <= 8192:
        raise argparse.ArgumentTypeError(f"must be 16 to 8192, got {text}")
    return value


def _seed_count(text):
    """eval --seeds: each draw costs about half a minute, so a few dozen at most."""
    value = _positive_int(text)
    if value > 32:
        raise argparse.ArgumentTypeError(f"must be at most 32, got {text}")
    return value


def _seeds(text):
    try:
        seeds = [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"seeds are whole numbers separated by commas, not {text!r}") from None
    if not 1 <= len(seeds) <= 20:
        raise argparse.ArgumentTypeError("give 1 to 20 seeds")
    return seeds
