"""The models on CUDA: the same answers as on the CPU, within what two kernels may differ by.
Marked `gpu`; they run where CUDA is present and are skipped, saying so, elsewhere."""

from pathlib import Path

import pytest
import torch

from bridge.music.model import cond_features, load_shipped

pytestmark = pytest.mark.gpu


def test_the_shipped_model_gives_the_cpus_logits_on_cuda():
    cpu, cuda = load_shipped("cpu"), load_shipped("cuda")
    generator = torch.Generator().manual_seed(0)
    idx = torch.randint(0, cpu.cfg.vocab_size, (2, 64), generator=generator)
    cond = torch.as_tensor(cond_features([[0.5], [-0.5]], [[0.6], [-0.4]], 2.0, 1, 1), dtype=torch.float32)
    cond = cond.expand(2, 64, cond.shape[-1]).contiguous()
    with torch.no_grad():
        out = cpu(idx, cond)
        on_cpu = out[0] if isinstance(out, tuple) else out
        out = cuda(idx.cuda(), cond.cuda())
        on_cuda = (out[0] if isinstance(out, tuple) else out).float().cpu()
    assert torch.allclose(on_cpu.float(), on_cuda, atol=2e-2, rtol=1e-2)
    assert (on_cpu.argmax(-1) == on_cuda.argmax(-1)).float().mean() > 0.99


def test_an_edit_scores_on_cuda(tmp_path):
    from helpers.scoring import edit

    from bridge.score import score

    manifest, path = score(edit(tmp_path / "e.otio"), tmp_path / "out", device="cuda", audio_out=False)
    assert path.is_file() and Path(manifest["outputs"]["midi"]).is_file()
