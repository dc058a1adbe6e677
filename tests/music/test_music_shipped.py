"""The shipped weights load, run and are checked against their recorded SHA-256."""

import json
import shutil

import pytest
import torch

from bridge.music.model import (
    MODELS_DIR,
    SHIPPED_NAME,
    ChecksumError,
    MusicConfig,
    MusicTransformer,
    load_shipped,
    save_shipped,
)
from bridge.music.sample import sample

SHIPPED = MODELS_DIR / f"{SHIPPED_NAME}.safetensors"


def test_save_and_load_round_trip_and_checksum_error(tmp_path):
    torch.manual_seed(0)
    m = MusicTransformer(MusicConfig(block_size=32, n_layer=1, n_head=2, n_embd=32, n_cond=8))
    save_shipped(m, tmp_path / "m")
    loaded = load_shipped("cpu", path_stem=tmp_path / "m")
    for k, v in m.state_dict().items():
        assert torch.allclose(v.half().float(), loaded.state_dict()[k])
    meta = json.loads((tmp_path / "m.json").read_text())
    meta["sha256"] = "0" * 64
    (tmp_path / "m.json").write_text(json.dumps(meta))
    with pytest.raises(ChecksumError, match="SHA-256"):
        load_shipped("cpu", path_stem=tmp_path / "m")


@pytest.mark.skipif(not SHIPPED.exists(), reason="models/ holds no trained music weights yet")
def test_shipped_model_loads_and_samples(tmp_path):
    m = load_shipped("cpu")
    assert SHIPPED.stat().st_size < 50 * 2**20
    takes = sample(m, duration_s=4.0, valence=0.5, arousal=0.5, boundaries=[2.0], batch=2, seed=0, max_tokens=200)
    assert len(takes) == 2 and any(takes)
    # A corrupted copy is refused with a clear error.
    shutil.copy(SHIPPED, tmp_path / "w.safetensors")
    shutil.copy(SHIPPED.with_suffix(".json"), tmp_path / "w.json")
    with open(tmp_path / "w.safetensors", "r+b") as f:
        f.seek(-16, 2)
        f.write(b"\x00" * 16)
    with pytest.raises(ChecksumError):
        load_shipped("cpu", path_stem=tmp_path / "w")
    from bridge.errors import MissingModel
    from bridge.score import load_model  # what `score` and the daemon load with: a clear error

    with pytest.raises(MissingModel, match="SHA-256.*restore models/"):
        load_model("cpu", tmp_path / "w")


def test_weights_that_are_not_finite_are_never_written_and_the_old_files_stay(tmp_path):
    torch.manual_seed(0)
    m = MusicTransformer(MusicConfig(block_size=32, n_layer=1, n_head=2, n_embd=32, n_cond=8))
    save_shipped(m, tmp_path / "m")
    before = {p: (tmp_path / p).read_bytes() for p in ("m.safetensors", "m.json")}
    with torch.no_grad():
        m.head.weight[0, 0] = float("nan")
    with pytest.raises(ValueError, match="NaN or infinite"):
        save_shipped(m, tmp_path / "m")
    with torch.no_grad():  # finite in float32, infinite in the float16 the file holds
        m.head.weight[0, 0] = 1e6
    with pytest.raises(ValueError, match="overflows"):
        save_shipped(m, tmp_path / "m")
    assert {p: (tmp_path / p).read_bytes() for p in before} == before
    assert sorted(x.name for x in tmp_path.iterdir()) == ["m.json", "m.safetensors"]  # no leftovers
    load_shipped("cpu", path_stem=tmp_path / "m")
