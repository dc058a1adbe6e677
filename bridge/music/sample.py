"""Sampling: batched, key/value-cached, nucleus (top-p) with temperature, seeded.

    from bridge.music.model import load_shipped
    from bridge.music.sample import sample
    takes = sample(load_shipped(), duration_s=20, valence=[(0, -0.5), (10, 0.6)], arousal=0.3,
                   boundaries=[4.0, 9.5, 15.25], batch=4, seed=7)
    # -> 4 note lists (bridge.music.tokens.Note, times in seconds from 0)

Valence and arousal may change over time: give a number, a list of (time_s, value)
breakpoints (the value holds until the next breakpoint) or a function of time. At every
step the time generated so far is recomputed from the tokens, and so is the offset to the
next boundary; nothing forces a chord onto a boundary here — the model has learnt to put
one there. Decode-time constraints belong to the stage that calls this: it passes
`constrain`, which sees each step's logits and the time of every take before a token is
drawn, and may mask tokens or force one (by leaving only that token possible).
"""

import bisect
import time
import weakref

import numpy as np
import torch

from bridge.music.model import N_COND_FEATURES, KVCache, PackedLinear, PackedMLP, cond_features, packable, packed
from bridge.music.tokens import BOS, EOS, N_FAM, N_PITCH, OFF0, ON0, PAD, TOKEN_MS, Decoder, token_times_ms


# The nucleus every take is drawn from unless told otherwise (scores, eval). Narrower nuclei
# were measured on validation works and trade grooving for entropy
# (docs/research/2026-12-07-music-model-card-history.md, "Sampling temperature").
TOP_P = 0.95
# Models with a vector per key (tonic_modes 2) write in the minor key below this valence. In
# training the labels put major and minor windows either side of about 0 (labels.py centres
# the mode score on the corpus median).
MINOR_BELOW = 0.0
# ... and with |valence| below KEY_NEUTRAL they are given no key: a near-neutral mood asks for
# neither mode, and the model keeps its own key.
KEY_NEUTRAL = 0.2
# The key guidance the eval reports for a model with the tonic condition (sample(key_guidance=)),
# chosen on grid seeds other than the eval's (docs/research/2026-12-07-music-model-card-history.md,
# "Key vectors and key guidance").
KEY_GUIDANCE = 12.0
# Key guidance draws only pitches that the row given the key itself gives at least this
# share of its family's note-on mass (docs/research/2026-12-07-music-model-card-history.md,
# "The key floor"; chosen on seeds other than the eval's).
KEY_FLOOR = 0.01
# Key guidance steps aside where a cut is due within this many seconds (offsets given): those
# pitches are drawn as the model gives them with the key (weight 1). Why: guided pitches sit
# wider and fewer join them, so the chord the offsets put on a cut came out thinner
# (docs/research/2026-12-07-music-model-card-history.md, "Key guidance at the cuts"; chosen
# on seeds other than the eval's).
KEY_CUT_S = 0.5


# The sampler times THREAD_TRIAL steps with each thread count it may use, keeps the faster
# (torch's own count on a tie), and tries again THREAD_PERIOD steps later, twice as late each
# time the choice holds, up to THREAD_PERIOD_MAX (_Threads).
THREAD_TRIAL = 8
THREAD_PERIOD = 128
THREAD_PERIOD_MAX = 1024
# A step with several threads that takes THREAD_STALL times one thread's median step has
# waited for a core held elsewhere; and once chosen, several threads are given up at once
# where THREAD_TRIAL steps took THREAD_SLOWER times as long as the THREAD_TRIAL before them
# (steps slow down gradually as the context fills; a core taken elsewhere slows them 3-100x).
THREAD_STALL = 3.0
THREAD_SLOWER = 2.0
# A sampling run that starts within THREAD_MEMORY_S of the last one's end goes on with its
# choice and its period (a score or an eval samples many times in a row).
THREAD_MEMORY_S = 30.0
_THREAD_MEMORY = {}  # torch's count -> (when the last run ended, its choice, period, reference)


def _median(xs):
    return sorted(xs)[len(xs) // 2]


class _Threads:
    """The intra-op thread count for the sampler's steps (torch's own or 1), chosen by timing
    them. Why: a step at a few rows is a chain of small calls, and each call waits for all of
    torch's threads. When another program holds a core, a call can wait for the scheduler:
    on this 2-core machine with one busy process beside it 2 threads sampled 3-4x slower than
    1, with two, some steps took 256 ms instead of 3-7; on idle cores 2 threads were 6-37 %
    faster (docs/research/2026-12-07-music-model-card-history.md, "Sampling on a CPU").
    So one thread, then several, take
    THREAD_TRIAL steps each; several are kept where their median step was no slower, and
    given up at their first stalled step (THREAD_STALL) or where their steps turn slower
    after the trial (THREAD_SLOWER). The count changes no result: every operation of a step
    gives the same bits with either count (model.attend_one; the linear layers where
    _same_bits says so, and sample() fixes the count where it does not; tested)."""

    def __init__(self, fixed=None):
        """fixed: one count for every step instead of choosing."""
        self.start = torch.get_num_threads()
        self.counts = (fixed,) if fixed else (1, self.start) if self.start > 1 else (self.start,)
        self.chosen, self.period = self.counts[-1], THREAD_PERIOD
        self.steps, self.trial_at, self.times = 0, 0, {}
        self.ref, self.recent = None, []  # several threads' mean step lately; the steps since
        self.used = {}  # steps run with each count
        last = _THREAD_MEMORY.get(self.start) if len(self.counts) > 1 else None
        if last and time.monotonic() - last[0] < THREAD_MEMORY_S:
            _, self.chosen, self.period, self.ref = last
            self.trial_at = self.period
        torch.set_num_threads(self.chosen)

    def _trial_step(self):
        """Where this step falls in a trial (None: outside one)."""
        k = self.steps - self.trial_at
        return k if len(self.counts) > 1 and 0 <= k < THREAD_TRIAL * len(self.counts) else None

    def _choose(self, n, period):
        self.period = period
        self.chosen, self.times, self.recent, self.trial_at = n, {}, [], self.steps + period
        torch.set_num_threads(n)

    def before(self):
        """Set the count for the next step; returns it."""
        k = self._trial_step()
        n = self.chosen if k is None else self.counts[k // THREAD_TRIAL]
        if torch.get_num_threads() != n:
            torch.set_num_threads(n)
        return n

    def after(self, n, seconds):
        """Count the step just run with `n` threads in `seconds`; at a trial's end, choose."""
        k = self._trial_step()
        self.steps += 1
        self.used[n] = self.used.get(n, 0) + 1
        if k is None:
            if self.chosen > 1 and self.ref:
                self.recent.append(seconds)
                if len(self.recent) == THREAD_TRIAL:  # a window's mean against the last one's
                    mean = sum(self.recent) / THREAD_TRIAL
                    if mean > THREAD_SLOWER * self.ref:
                        self._choose(1, THREAD_PERIOD)
                    else:
                        self.ref, self.recent = mean, []
            return
        if n == 1:
            if k % THREAD_TRIAL:  # the first step pays for the switch to one thread: not timed
                self.times.setdefault(n, []).append(seconds)
            return
        one = _median(self.times[1])
        self.times.setdefault(n, []).append(seconds)
        if seconds > THREAD_STALL * one:  # stalled: the trial ends here
            self._choose(1, min(2 * self.period, THREAD_PERIOD_MAX) if self.chosen == 1 else THREAD_PERIOD)
        elif k == THREAD_TRIAL * len(self.counts) - 1:
            many = _median(self.times[n])
            chosen = n if many <= one else 1
            self.ref = sum(self.times[n]) / len(self.times[n])
            held = chosen == self.chosen
            self._choose(chosen, min(2 * self.period, THREAD_PERIOD_MAX) if held else THREAD_PERIOD)

    def restore(self):
        """Give torch its own count back; remember the choice for the next run."""
        torch.set_num_threads(self.start)
        if len(self.counts) > 1:
            _THREAD_MEMORY[self.start] = (time.monotonic(), self.chosen, self.period, self.ref)


# Packed copies of the models sampled from (precision "bf16"), each with the parameter
# versions it was packed at: a model changed in place since (a training step, a loaded
# state) is packed again.
_PACKED = weakref.WeakKeyDictionary()
PRECISIONS = ("auto", "bf16", "fp32")
# With precision "auto" on a CPU that does bf16, steps of up to this many rows run on the
# float32 model (where its bits do not depend on the thread count: _same_bits) and
# larger ones on the bf16-packed copy. Why: each call of oneDNN's bf16 kernel costs about
# 20 us whatever its size, where float32's matmul of one row costs 4-13; with 2 threads
# float32 steps were faster up to 6 rows and about even at 8, with 1 thread even at 4-6 and
# slower from 8 (docs/research/2026-12-07-music-model-card-history.md, "Sampling on a CPU").
FP32_MAX_ROWS = 6
_SAME_BITS = {}  # (layer kinds and shapes, rows, torch's thread count) -> _same_bits


def _same_bits(model, rows):
    """Whether the linear layers `model` steps with give the same bits at `rows` rows with
    one thread as with torch's count. Why: the sampler changes the count as it runs
    (_Threads) and a take must not depend on it, but float32 matmuls split their sums by
    thread count for some shapes (this machine's MKL, one row: at 3, 4, 6 and 8 threads, not
    at 2; oneDNN's bf16 kernel only from 24 rows at 6 threads). The split follows the
    shapes, not the values, so each kind and shape of layer is tried once on random rows."""
    n = torch.get_num_threads()
    layers = {}
    for m in model.modules():
        if isinstance(m, torch.nn.Linear) and m.weight.device.type == "cpu":
            dtype = str(m.weight.dtype).replace("torch.", "")
            layers.setdefault(("Linear", m.out_features, m.in_features, m.bias is not None, dtype), m)
        elif isinstance(m, PackedLinear):  # float32 in, whatever its weights hold
            layers.setdefault(("PackedLinear", m.out_features, m.in_features, m.bias is not None, "float32"), m)
        elif isinstance(m, PackedMLP):
            layers.setdefault(("PackedMLP", m.down.out_features, m.up.in_features, True, "float32"), m)
    key = (tuple(sorted(layers)), rows, n)
    if n > 1 and key not in _SAME_BITS:
        g, same = torch.Generator().manual_seed(0), True
        try:
            with torch.no_grad():
                for (_, _, in_features, _, dtype), layer in sorted(layers.items()):
                    x = torch.randn(rows, 1, in_features, generator=g).to(getattr(torch, dtype))
                    torch.set_num_threads(1)
                    one = layer(x)
                    torch.set_num_threads(n)
                    same = same and torch.equal(one, layer(x))
        finally:
            torch.set_num_threads(n)
        _SAME_BITS[key] = same
    return n == 1 or _SAME_BITS[key]


def step_rows(batch, guidance=1.0, key_guidance=1.0):
    """The rows each step of sample() runs: a row per take, and with classifier-free or key
    guidance a twin row per take for each."""
    return batch * (1 + (guidance != 1.0) + (key_guidance != 1.0))


def sampling_precision(model, precision, rows):
    """ "bf16" or "fp32": what sample(precision=) runs steps of `rows` rows on for `model`
    ("auto": float32 up to FP32_MAX_ROWS rows where its bits do not depend on the thread
    count, else bf16 where the model can be packed)."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision is one of {', '.join(PRECISIONS)}, not {precision!r}")
    if precision == "auto":
        pack = packable(model) and (rows > FP32_MAX_ROWS or not _same_bits(model, rows))
        return "bf16" if pack else "fp32"
    return precision


def _sampling_model(model, precision, rows):
    """The model the steps run on: `model` itself ("fp32", or "auto" at a few rows or where
    packing cannot serve it) or its bf16-packed copy (model.packed)."""
    if sampling_precision(model, precision, rows) == "fp32":
        return model
    try:
        stamp = tuple((p.data_ptr(), p._version) for p in model.parameters())
    except RuntimeError:  # parameters made in inference mode keep no version: pack each time
        stamp = object()
    hit = _PACKED.get(model)
    if hit is None or hit[0] != stamp:
        hit = _PACKED[model] = (stamp, packed(model))  # raises where bf16 is asked and cannot be
    return hit[1]


def _schedule(value):
    """number | [(t, v), ...] | callable -> f(t) -> float."""
    if callable(value):
        return value
    if np.isscalar(value):
        return lambda t: float(value)
    pts = sorted((float(t), float(v)) for t, v in value)
    times = [t for t, _ in pts]
    return lambda t: pts[max(0, bisect.bisect_right(times, t) - 1)][1]


def _next_offsets(times_s, bounds):
    """Seconds from each time to the first boundary at or after it (inf when none)."""
    idx = np.searchsorted(bounds, times_s - 1e-6)
    out = np.full(len(times_s), np.inf)
    ok = idx < len(bounds)
    out[ok] = bounds[idx[ok]] - times_s[ok]
    return out


def _log_probs(logits, temperature, note_temperature=None):
    """Log-probabilities at `temperature`; with `note_temperature`, each family's choice of
    pitch is drawn at that temperature instead, while the family's total note-on mass stays
    what `temperature` gives it. So a lower note temperature narrows which pitches sound
    without changing how many notes start, when, or in which instrument."""
    lp = torch.log_softmax(logits.float() / max(temperature, 1e-5), dim=-1)
    on = logits.float()[:, ON0:OFF0].view(-1, N_FAM, N_PITCH)
    mass = lp[:, ON0:OFF0].view(-1, N_FAM, N_PITCH).logsumexp(-1, keepdim=True)
    within = torch.log_softmax(on / max(note_temperature, 1e-5), dim=-1)
    notes = torch.where(torch.isfinite(mass), mass + within, torch.full_like(within, -torch.inf))
    lp = lp.clone()
    lp[:, ON0:OFF0] = notes.view(-1, N_FAM * N_PITCH)
    return lp


def _pitch_guided(out, with_key, without_key, weight, floor=KEY_FLOOR):
    """`out` with each family's choice of pitch drawn from log p(pitch | no key) + weight
    (log p(pitch | key) - log p(pitch | no key)), while the family's total note-on mass
    stays what `out` gives it. Why: the key's pull is on which pitches sound; guiding
    everything with it also moved how many notes start (arousal) in a probe.

    Only pitches with p(pitch | key) >= `floor` within their family are drawn (the most
    likely one always is). Why: far in the tails both rows' log-probabilities are tiny and
    their difference is noise, which the weight multiplies into a strong pull toward
    pitches neither row would play; with the floor the key-guided takes hit more cuts and
    groove closer to real music (docs/research/2026-12-07-music-model-card-history.md,
    "The key floor")."""
    on = lambda x: x[:, ON0:OFF0].view(-1, N_FAM, N_PITCH).log_softmax(-1)
    keyed, free = on(with_key), on(without_key)
    within = free + weight * (keyed - free)
    if floor > 0:
        low = keyed.amax(-1, keepdim=True).clamp(max=float(np.log(floor)))
        within = within.masked_fill(keyed < low, -torch.inf)
    within = torch.log_softmax(within, dim=-1)
    mass = out[:, ON0:OFF0].view(-1, N_FAM, N_PITCH).logsumexp(-1, keepdim=True)
    out = out.clone()
    out[:, ON0:OFF0] = (mass + within).view(-1, N_FAM * N_PITCH)
    return out


def _top_p(logits, temperature, top_p, rng, note_temperature=None):
    """One token per row, drawn from the smallest set of most likely tokens whose mass
    reaches top_p, in proportion to their probabilities; one uniform from `rng` per row.

    Why numpy and one uniform: at one take a step, torch's sort and multinomial (a random
    number for every token of the vocabulary) were most of the time spent drawing."""
    if note_temperature is None or note_temperature == temperature:
        x = logits.double().numpy() / max(temperature, 1e-5)
        top = x.max(-1, keepdims=True)
        if not np.isfinite(top).all():
            raise ValueError("every token was ruled out at this step")
        probs = np.exp(x - top)
    else:
        probs = _log_probs(logits, temperature, note_temperature).double().exp().numpy()
    out = np.empty(len(probs), dtype=np.int64)
    for b, (p, u) in enumerate(zip(probs, rng.random(len(probs)))):
        total = p.sum()
        if not total > 0:  # nan (every logit -inf) or nothing left
            raise ValueError("every token was ruled out at this step")
        p = p / total
        order = np.arange(len(p))
        if top_p < 1.0:
            # A token under (1 - top_p) / V is never in the nucleus (it and every token below
            # it hold less than 1 - top_p), so only the rest are sorted.
            order = np.flatnonzero(p >= (1.0 - top_p) / len(p))
            order = order[np.argsort(-p[order], kind="stable")]
            p = p[order]
            p = p[: np.count_nonzero(np.cumsum(p) - p <= top_p)]
        cdf = np.cumsum(p)
        k = int(np.searchsorted(cdf, u * cdf[-1], side="right"))
        if k >= len(p):  # u * total rounded up to the total: the last token with any mass
            k = int(np.flatnonzero(p)[-1])
        out[b] = order[k]
    return out


@torch.inference_mode()
def sample(
    model,
    duration_s,
    valence=0.0,
    arousal=0.0,
    boundaries=(),
    batch=1,
    seed=0,
    temperature=1.0,
    top_p=TOP_P,
    use_valence_arousal=True,
    use_boundaries=True,
    max_tokens=None,
    return_tokens=False,
    per_take=False,
    constrain=None,
    guidance=1.0,
    prompt=(),
    prompt_ms=0,
    note_temperature=None,
    tonic=None,
    key_guidance=1.0,
    key_floor=KEY_FLOOR,
    key_cut_s=KEY_CUT_S,
    precision="auto",
    threads=None,
    stats=None,
    observe=None,
):
    """Generate `batch` takes of `duration_s` seconds; returns a list of note lists.

    use_valence_arousal / use_boundaries=False withhold that condition (the model's
    unconditioned behaviour), for comparisons. With return_tokens=True also returns the
    token lists. With per_take=True, valence, arousal and boundaries are sequences of
    length `batch` (one schedule / boundary list per take). The same arguments and seed give the same notes.
    constrain(logits (batch, vocab) on the CPU, now_ms (batch,)) -> logits, when given, is
    called before every draw; tokens it sets to -inf are never drawn. observe(tokens (batch,),
    now_ms (batch,)), when given, is told each step's draws and the time they were drawn at
    (a constraint that keeps account of what was played needs to know which of the tokens it
    allowed was drawn).
    guidance > 1 applies classifier-free guidance: each step also runs the same tokens with
    every condition withheld (the model was trained with condition dropout, so it knows that
    case) and draws from log p_uncond + guidance * (log p_cond - log p_uncond). It costs a
    second row per take in the same forward pass.
    prompt: tokens (no BOS) every take continues from, starting at `prompt_ms` on the
    timeline; they are heard, not returned. With no prompt, the takes start at `prompt_ms`
    from silence (a part written afresh). Times stay absolute: generation starts where the
    prompt ends and stops at `duration_s` from the timeline's zero (used to regenerate one
    span of a finished score with the music before it as context).
    note_temperature: the temperature of the pitch drawn once a family's note-on is chosen
    (None: `temperature`); see _log_probs.
    tonic: the pitch class (0-11) of the key to write in, for models with the tonic condition
    (model.cfg.tonic): a number, breakpoints or a function of time like valence, or with
    per_take one of those per take; None withholds it. Valence then says major or minor; a
    model with a vector per key (cfg.tonic_modes 2) is given the minor key where the valence
    is below MINOR_BELOW, the major one elsewhere, and none where |valence| < KEY_NEUTRAL.
    key_guidance > 1 (models with the tonic condition, a tonic given) draws each note's pitch
    from log p(pitch | no key) + key_guidance (log p(pitch | key) - log p(pitch | no key)):
    the key heard more strongly in which pitches sound, while when notes start and in which
    family stay as drawn. It costs another row per take in the same forward pass.
    key_floor: with key guidance, pitches below this share of their family's note-on mass
    given the key are not drawn (0: every pitch may be; see _pitch_guided).
    key_cut_s: with key guidance and boundaries given, a take whose next boundary is at most
    this many seconds ahead draws its pitches unguided (with the key given; 0: guided
    everywhere). With the boundaries withheld it never steps aside: the takes would learn of
    the cuts from the sampler.
    precision: "auto" runs steps of more than FP32_MAX_ROWS rows (takes x their guided twins)
    on a bf16-packed copy of the linear layers on a CPU whose oneDNN does bf16 (model.packed;
    the faster there, and the precision the model was trained in), and everything else on
    the model as given; "bf16" insists on the copy, "fp32" on the model as given.
    threads: torch's intra-op threads for the run (restored after); None chooses between
    torch's count and 1 by timing the steps as they run (_Threads), since a core that another
    program holds makes every step wait for it; where the linear layers give other bits with
    one thread than with torch's count (_same_bits), None keeps torch's count throughout, so
    the takes never follow the timings. stats: a dict, given, gets "threads": steps run with
    each count.
    """
    cfg = model.cfg
    rng = np.random.default_rng(int(seed))
    if per_take:
        v_at = [_schedule(v) for v in valence]
        a_at = [_schedule(a) for a in arousal]
    else:
        v_at, a_at = [_schedule(valence)] * batch, [_schedule(arousal)] * batch
    if (tonic is not None or key_guidance != 1.0) and not cfg.tonic:
        raise ValueError("this model has no tonic condition (trained without --tonic)")
    if key_guidance != 1.0 and tonic is None:
        raise ValueError("key guidance needs a tonic to guide toward (tonic=)")
    if not 0.0 <= key_cut_s < float("inf"):
        raise ValueError(f"key_cut_s is seconds before a cut, 0 or more, not {key_cut_s}")
    if not 0.0 <= key_floor < 1.0:
        raise ValueError(f"key_floor is a share of a family's note-on mass, 0 <= floor < 1, not {key_floor}")
    if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int) or threads < 1):
        raise ValueError(f"threads is a count of 1 or more, or None to choose, not {threads!r}")
    if tonic is None:
        t_at = [_schedule(-1)] * batch
    else:
        t_at = [_schedule(t) for t in tonic] if per_take else [_schedule(tonic)] * batch
    per_bounds = boundaries if per_take and len(boundaries) else [boundaries] * batch
    bounds = [np.array(sorted(float(b) for b in bs), dtype=np.float64) for bs in per_bounds]
    va_mask, b_mask = float(use_valence_arousal), float(use_boundaries)
    max_tokens = max_tokens or int(duration_s * 120) + 64
    prompt = [int(t) for t in prompt][-(cfg.block_size - 1) :] if len(prompt) else []
    heard_ms = int(prompt_ms) + np.concatenate([[0], token_times_ms(prompt)]) if prompt else np.array([int(prompt_ms)])

    def offsets_at(times_ms):
        """Each take's seconds to its next boundary (inf where none lies ahead)."""
        return np.array([_next_offsets(np.array([x / 1000.0]), bs)[0] for x, bs in zip(times_ms, bounds)])

    def cond_at(times_ms):
        t = times_ms / 1000.0
        v = np.array([f(x) for f, x in zip(v_at, t)])
        a = np.array([f(x) for f, x in zip(a_at, t)])
        off = offsets_at(times_ms)
        tn = np.array([f(x) for f, x in zip(t_at, t)]) if va_mask else -1
        if va_mask:
            tn = np.where(tn >= 0, np.mod(tn, 12), -1)
            if cfg.tonic_modes == 2:
                tn = np.where((tn >= 0) & (np.abs(v) >= KEY_NEUTRAL), tn + 12 * (v < MINOR_BELOW), -1)
        return cond_features(v, a, off, va_mask, b_mask, tn)

    # ctx/conds: what the model has been fed (finished takes idle on PAD, so all rows stay
    # the same length); decoders turn each take's own tokens into notes.
    ctx = [[BOS] + prompt for _ in range(batch)]
    conds = [[] for _ in range(batch)]
    for ms in heard_ms:
        for b, c in enumerate(cond_at(np.full(batch, float(ms)))):
            conds[b].append(c)
    now_ms = np.full(batch, int(heard_ms[-1]), dtype=np.int64)
    decoders = [Decoder() for _ in range(batch)]
    for d in decoders:
        d.now_ms = int(now_ms[0])
    done = np.zeros(batch, dtype=bool)

    guided = guidance != 1.0
    key_guided = key_guidance != 1.0
    rows = step_rows(batch, guidance, key_guidance)
    model = _sampling_model(model, precision, rows)
    plan = model.step_plan()  # what each step reads of the blocks, looked up once
    device, dtype = next(model.parameters()).device, next(model.parameters()).dtype

    def run(idx, cnd, cache):
        """Forward the takes (and, when guided, their twins: every condition withheld, the
        key withheld); mixed logits."""
        idxs, cnds = [idx], [cnd]
        if guided:  # withheld conditions are all zeros (see cond_features)
            idxs, cnds = idxs + [idx], cnds + [torch.zeros_like(cnd)]
        if key_guided:
            no_key = cnd.clone()
            no_key[..., N_COND_FEATURES] = 0
            idxs, cnds = idxs + [idx], cnds + [no_key]
        x, c = torch.cat(idxs), torch.cat(cnds)
        logits = (model.step(x, c, cache, plan) if x.shape[1] == 1 else model(x, c, cache=cache)[0])[:, -1].float()
        lc = out = logits[:batch]
        if guided:
            lc, lu = lc.log_softmax(-1), logits[batch : 2 * batch].log_softmax(-1)
            out = lu + guidance * (lc - lu)
        if key_guided:
            guided_out = _pitch_guided(out, lc, logits[-batch:], key_guidance, key_floor)
            due = cut_due()
            out = guided_out if due is None else torch.where(due[:, None], out, guided_out)
        return out

    def cut_due():
        """Rows whose next boundary is within key_cut_s of the time being drawn (None: none
        is, none can be, or the boundaries are withheld)."""
        if not (b_mask and key_cut_s > 0 and any(len(bs) for bs in bounds)):
            return None
        due = offsets_at(now_ms) <= key_cut_s
        return torch.from_numpy(due).to(device) if due.any() else None

    def prefill(window):
        """(Re)start the cache from the last `window` positions (a training-like BOS first)."""
        cache = KVCache(cfg, rows, device, dtype=dtype)
        keep = min(window, len(ctx[0]))
        idx = torch.tensor([[BOS] + s[len(s) - keep + 1 :] for s in ctx], device=device)
        cnd = torch.tensor(np.array([c[len(c) - keep :] for c in conds]), device=device)
        return cache, run(idx, cnd, cache)

    # On a GPU the steps do not run on these threads: nothing to choose there. Nor where the
    # layers' bits differ with the count (a float32 model on a CPU without bf16, or with
    # more cores than this one's): the takes would follow the timings.
    fixed = threads
    if device.type != "cpu" or (threads is None and not _same_bits(model, rows)):
        fixed = threads or torch.get_num_threads()
    counts = _Threads(fixed)
    try:
        cache, logits = prefill(cfg.block_size)
        for _ in range(max_tokens):
            step = logits.cpu() if constrain is None else constrain(logits.cpu(), now_ms.copy())
            nxt = _top_p(step, temperature, top_p, rng, note_temperature)
            if observe is not None:
                observe(nxt.copy(), now_ms.copy())
            for b in range(batch):
                tok = int(nxt[b])
                if done[b] or tok == EOS:
                    done[b] = True
                    nxt[b] = PAD
                    continue
                decoders[b].feed(tok)
                now_ms[b] += TOKEN_MS[tok]
                if now_ms[b] >= duration_s * 1000:
                    done[b] = True
            for b in range(batch):
                ctx[b].append(int(nxt[b]))
            if done.all():  # the token that ended the last take is kept: it is part of the take
                break
            c = cond_at(now_ms.astype(np.float64))
            for b in range(batch):
                conds[b].append(c[b])
            if cache.pos >= cfg.block_size:
                # Context full: keep the most recent half and rebuild the cache from it.
                cache, logits = prefill(cfg.block_size // 2)
                continue
            x = torch.from_numpy(nxt.astype(np.int64)).to(device).view(batch, 1)
            cx = torch.from_numpy(c).to(device).view(batch, 1, -1)
            n = counts.before()
            t0 = time.perf_counter()
            logits = run(x, cx, cache)
            counts.after(n, time.perf_counter() - t0)
    finally:
        counts.restore()
    if stats is not None:
        stats["threads"] = dict(counts.used)
    takes = [d.finish() for d in decoders]
    # Notes past the requested end (a long chord started just before it) are trimmed.
    takes = [
        [n._replace(duration=min(n.duration, max(duration_s - n.start, 0.01))) for n in t if n.start < duration_s]
        for t in takes
    ]
    if return_tokens:
        return takes, [[t for t in s if t != PAD] for s in ctx]
    return takes
