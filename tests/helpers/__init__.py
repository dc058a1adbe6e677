"""What the tests share besides fixtures (those are in conftest.py): edits to score, a tiny
model, a test daemon, synthetic videos, and fakes of REAPER and Resolve."""

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]  # the checkout
