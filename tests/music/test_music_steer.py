"""Key steering: a soft pull of note-ons toward a key, which keeps whether a note starts."""

import numpy as np
import pytest
import torch

from bridge.music import labels
from bridge.music.model import MODELS_DIR, SHIPPED_NAME, load_shipped
from bridge.music.sample import sample
from bridge.music.steer import ON_HI, ON_LO, for_valence, pitch_class_bias, pull
from bridge.music.tokens import N_PITCH, ON0, PITCH_LO, VOCAB_SIZE
from bridge.music.theory import SCALES

SHIPPED = MODELS_DIR / f"{SHIPPED_NAME}.safetensors"


@pytest.mark.parametrize("tonic", [0, 2, 9])
def test_the_bias_is_the_key_profile_in_its_tonic(tonic):
    major, minor = pitch_class_bias(tonic, "major"), pitch_class_bias(tonic, "minor")
    for bias in (major, minor):
        assert abs(bias.mean()) < 1e-12 and int(np.argmax(bias)) == tonic
    assert major[(tonic + 4) % 12] > major[(tonic + 3) % 12]  # the major third over the minor
    assert minor[(tonic + 3) % 12] > minor[(tonic + 4) % 12]
    outside = [pc for pc in range(12) if (pc - tonic) % 12 not in SCALES["major"]]
    assert max(major[outside]) < min(major[(tonic + s) % 12] for s in (0, 4, 7))


def test_pull_moves_pitches_but_keeps_whether_a_note_starts():
    torch.manual_seed(0)
    row = torch.randn(VOCAB_SIZE) * 2
    pulled = pull(row, 0, "major", 3.5)
    p, q = row.softmax(-1), pulled.softmax(-1)
    ons = torch.zeros(VOCAB_SIZE, dtype=torch.bool)
    ons[ON_LO:ON_HI] = True
    assert torch.allclose(p[ons].sum(), q[ons].sum(), atol=1e-6)  # a note starts as often
    assert torch.allclose(p[~ons], q[~ons], atol=1e-6)  # time, loudness, offs, drums
    assert ON_LO == ON0 + N_PITCH  # drums are left alone
    c4, cs4 = ON_LO + 60 - PITCH_LO, ON_LO + 61 - PITCH_LO  # piano-free: the bass family
    ratio = (q[c4] / q[cs4]) / (p[c4] / p[cs4])
    expected = np.exp(3.5 * (pitch_class_bias(0, "major")[0] - pitch_class_bias(0, "major")[1]))
    assert float(ratio) == pytest.approx(expected, rel=1e-4)
    assert q[c4] > p[c4] and q[cs4] < p[cs4]
    assert pull(row, 0, "major", 0.0) is row


def test_pull_leaves_a_row_where_no_note_may_start():
    row = torch.randn(VOCAB_SIZE)
    row[ON_LO:ON_HI] = float("-inf")
    assert torch.equal(pull(row, 5, "minor", 3.5), row)


def test_steering_follows_the_valence_schedule():
    hook = for_valence([[(0.0, 0.6), (5.0, -0.4)], -0.2], [0, 9], 2.0)
    assert hook.key_at(0, 1.0) == (0, "major", 2.0)
    assert hook.key_at(0, 6.0) == (0, "minor", 2.0)
    assert hook.key_at(1, 0.0) == (9, "minor", 2.0)


@pytest.mark.skipif(not SHIPPED.exists(), reason="models/ holds no trained music weights yet")
def test_steered_takes_stay_in_key_and_take_its_mode():
    torch.set_num_threads(2)
    model = load_shipped("cpu")
    n, dur = 6, 10.0
    valence = [0.6] * n + [-0.6] * n
    tonics = [2] * (2 * n)  # D major vs D minor
    common = dict(valence=valence, arousal=[0.0] * (2 * n), batch=2 * n, seed=3, per_take=True, use_boundaries=False)
    free = sample(model, dur, **common)
    steered = sample(model, dur, constrain=for_valence(valence, tonics, 3.5), **common)

    def in_key(takes, mode):
        pitched = [n.pitch % 12 for t in takes for n in t if n.family != "drums"]
        return np.mean([(pc - 2) % 12 in SCALES[mode] for pc in pitched])

    assert in_key(steered[:n], "major") > max(0.9, in_key(free[:n], "major") + 0.05)
    assert in_key(steered[n:], "minor") > max(0.9, in_key(free[n:], "minor") + 0.05)
    mode = [labels.features(t, span_s=dur)["mode"] for t in steered]
    assert np.mean(mode[:n]) > 0 > np.mean(mode[n:])
    # Density is the model's: steering does not add or remove notes wholesale.
    assert 0.7 < sum(map(len, steered)) / sum(map(len, free)) < 1.4
