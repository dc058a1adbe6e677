"""oneMKL's first-call race (bridge/mkl_warmup.py): the model's tables come out the same in
every fresh process."""

import subprocess
import sys

import pytest
import torch

from bridge.mkl_warmup import warm_vml

# In a fresh process: import the model module (which warms VML), build the rotary tables on
# torch's threads as the model's constructor does (the process's first split VML call),
# then again on one thread, and say whether the two agree to the bit. Without the warm-up,
# 7 of 56 such processes run one after another on this machine's 2 cores (oneMKL 2024.2)
# had the cosine table's second half off by up to 1.5e-4, so twelve catch it most times;
# with it, none of 40.
PROBE = """
import torch
from bridge.music.model import rotary_tables
if torch.get_num_threads() < 2:   # the race needs two threads
    torch.set_num_threads(2)
first = rotary_tables(512, 64)
torch.set_num_threads(1)
again = rotary_tables(512, 64)
print(all(torch.equal(a, b) for a, b in zip(first, again)))
"""


@pytest.mark.slow
def test_rotary_tables_agree_in_every_fresh_process():
    """Twelve processes one after another (eight at a time on 2 cores raced in 0 of 24)."""
    outs = [
        subprocess.run(
            [sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=120, check=True
        ).stdout.strip()
        for _ in range(12)
    ]
    assert outs == ["True"] * 12


def test_warming_again_changes_no_value_and_no_thread_count():
    """Warming leaves what the ops give and torch's thread count as they were."""
    x = torch.linspace(0.0, 500.0, 4096)
    threads = torch.get_num_threads()
    before = (x.cos(), x.sin(), (x + 1).log(), x.sqrt())
    warm_vml()
    warm_vml()
    after = (x.cos(), x.sin(), (x + 1).log(), x.sqrt())
    assert all(torch.equal(a, b) for a, b in zip(before, after))
    assert torch.get_num_threads() == threads
