"""Training the chord model on Bach's chorales (music21's corpus), in about a minute of CPU.

Each chorale is chordified on its beats; each beat's chord is the quality template that best
explains its pitch classes (theory.best_chord), repeats are merged, and the chords are written
relative to the chorale's key. The soprano's fermatas end the phrases: a chord's boundary
offset is how many chords remain before the next phrase end (0 on the fermata chord itself),
the same condition the engine gives for a hit. Every chorale is also transposed to nothing:
chords are key-relative, so the 12 keys are one.

    scorebridge train harmony [--epochs N] [--ship]

On 2 CPU cores: about 15 s of training once the corpus is cached.

Parsing is cached in .corpus/harmony.json (about 3 minutes on 2 cores the first time).
"""

import json
import time
from concurrent.futures import ProcessPoolExecutor

import numpy as np
import torch

from bridge import config
from bridge.music import harmony
from bridge.music.theory import QUALITY_NAMES, best_chord

CACHE = config.corpus_dir() / "harmony.json"


def _chorale(path) -> dict | None:
    """{"mode", "chords": [[interval, quality, offset]]} for one chorale, None when unusable."""
    from music21 import converter, expressions

    try:
        score = converter.parse(path)
        key = score.analyze("key")
        parts = list(score.parts)
        if len(parts) < 3 or key.mode not in ("major", "minor"):
            return None
        ends = sorted(
            {
                float(n.getOffsetInHierarchy(score))
                for n in parts[0].recurse().notes
                if any(isinstance(e, expressions.Fermata) for e in n.expressions)
            }
        )
        tonic = key.tonic.pitchClass
        chords, last_beat = [], None
        for c in score.chordify().recurse().getElementsByClass("Chord"):
            at = float(c.getOffsetInHierarchy(score))
            if at != int(at) or at == last_beat:  # on the beat only: passing notes fall off
                continue
            last_beat = at
            root, quality = best_chord([p.pitchClass for p in c.pitches])
            entry = [(root - tonic) % 12, quality, at]
            if chords and chords[-1][:2] == entry[:2] and not any(chords[-1][2] <= e < at for e in ends):
                continue
            chords.append(entry)
        if len(chords) < 8:
            return None
        # chords remaining before the next phrase end (the fermata's chord counts 0)
        out, j = [], 0
        for interval, quality, at in chords:
            while j < len(ends) and ends[j] < at:
                j += 1
            if j < len(ends):
                left = sum(1 for c in chords if at < c[2] <= ends[j] + 1e-6)
            else:
                left = harmony.FAR
            out.append([interval, quality, min(left, harmony.FAR)])
        return {"mode": key.mode, "chords": out}
    except Exception:  # a chorale music21 cannot read is skipped, not fatal
        return None


def build_corpus(workers=2, progress=print) -> list:
    if CACHE.exists():
        return json.loads(CACHE.read_text())
    from music21 import corpus

    paths = [str(p) for p in corpus.getComposer("bach") if str(p).endswith((".mxl", ".xml", ".krn"))]
    started = time.perf_counter()
    with ProcessPoolExecutor(workers) as pool:
        pieces = [p for p in pool.map(_chorale, paths, chunksize=8) if p]
    progress(
        f"harmony corpus: {len(pieces)} of {len(paths)} chorales, "
        f"{sum(len(p['chords']) for p in pieces)} chords in {time.perf_counter() - started:.0f} s"
    )
    CACHE.parent.mkdir(exist_ok=True)
    CACHE.write_text(json.dumps(pieces))
    return pieces


def examples(pieces) -> tuple:
    """(prev2, prev1, mode, offset) inputs and the next chord's index, as tensors."""
    rows, targets = [], []
    for piece in pieces:
        mode = 0 if piece["mode"] == "major" else 1
        ids = [harmony.chord_id(i, QUALITY_NAMES.index(q)) for i, q, _ in piece["chords"]]
        history = [harmony.BOS, harmony.BOS]
        for chord, (_, _, left) in zip(ids, piece["chords"]):
            rows.append([history[-2], history[-1], mode, left])
            targets.append(chord)
            history.append(chord)
    return torch.tensor(rows), torch.tensor(targets)


def train(pieces, epochs=30, seed=0, log=print) -> tuple:
    """The chord model and its held-out figures. Every 10th chorale is held out to pick the
    epoch (the model overfits 17 k chords within a few epochs), another 10th to report on."""
    torch.manual_seed(seed)
    valid = [p for i, p in enumerate(pieces) if i % 10 == 0]
    test = [p for i, p in enumerate(pieces) if i % 10 == 5]
    train_pieces = [p for i, p in enumerate(pieces) if i % 10 not in (0, 5)]
    x, y = examples(train_pieces)
    vx, vy = examples(valid)
    tx, ty = examples(test)
    model = harmony.ChordModel()
    opt = torch.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=0.05)
    generator = torch.Generator().manual_seed(seed)
    best = (float("inf"), None, 0)
    for epoch in range(epochs):
        model.train()
        order = torch.randperm(len(x), generator=generator)
        for i in range(0, len(x), 256):
            batch = order[i : i + 256]
            loss = torch.nn.functional.cross_entropy(model(x[batch]), y[batch])
            opt.zero_grad()
            loss.backward()
            opt.step()
        nll = evaluate(model, vx, vy)["nll"]
        log(f"epoch {epoch + 1}: train {loss.item():.3f} valid {nll:.3f} nats")
        if nll < best[0]:
            best = (nll, {k: v.clone() for k, v in model.state_dict().items()}, epoch + 1)
    model.load_state_dict(best[1])
    figures = evaluate(model, tx, ty)
    figures.update(
        {
            "train_chords": len(x),
            "test_chords": len(tx),
            "epoch": best[2],
            "pieces": len(pieces),
            "unigram_nll": _unigram_nll(y, ty),
            "seed": seed,
        }
    )
    return model, figures


@torch.no_grad()
def evaluate(model, x, y) -> dict:
    model.eval()
    logits = model(x)
    nll = torch.nn.functional.cross_entropy(logits, y).item()
    top1 = (logits.argmax(-1) == y).float().mean().item()
    at_end = x[:, 3] == 0
    end_top1 = (logits[at_end].argmax(-1) == y[at_end]).float().mean().item() if at_end.any() else 0.0
    return {"nll": round(nll, 4), "top1": round(top1, 4), "cadence_top1": round(end_top1, 4)}


def _unigram_nll(train_y, valid_y) -> float:
    counts = np.bincount(train_y.numpy(), minlength=harmony.N_CHORDS + 1).astype(float) + 0.5
    p = counts / counts.sum()
    return round(float(-np.log(p[valid_y.numpy()]).mean()), 4)


def main(epochs=30, ship=False, log=print) -> dict:
    pieces = build_corpus(progress=log)
    model, figures = train(pieces, epochs=epochs, log=log)
    log(json.dumps(figures))
    if ship:
        harmony.save(model, figures)
        log(f"shipped {harmony.WEIGHTS}")
    return figures
