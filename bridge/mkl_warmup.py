"""Warm oneMKL's vector math before torch calls it from several threads.

torch's float unary ops (cos, sin, exp, log, sqrt, tanh, erf, ...) hand contiguous tensors
of over 2,048 elements to oneMKL's vector math (VML), a share per intra-op thread. VML picks
a function's kernel on its first call, and in the oneMKL that torch's CPU wheels bundle
(2024.2) first calls made at once on several threads can run one thread's share through a
low-accuracy kernel (pytorch/pytorch#188792; not seen from oneMKL 2025.0 on). Here that hit
the rotary cosine table (`model.rotary_tables`): in 2 of 20 fresh processes that loaded the
model (7 of 56 that built the table alone) its second half (positions 256-511) came out up
to 1.5e-4 off, so every take past its 256th token depended on the process that drew it.
warm_vml() calls each such function once on one element, on the calling thread, so the
choice is made before any call is split between threads.
"""

_WARM = False

# Every float unary op torch may route to VML (aten/src/ATen/cpu/vml.h); the ones it
# computes itself cost a call each here and nothing more.
_OPS = (
    "abs",
    "acos",
    "asin",
    "atan",
    "ceil",
    "cos",
    "cosh",
    "erf",
    "erfc",
    "erfinv",
    "exp",
    "expm1",
    "floor",
    "lgamma",
    "log",
    "log10",
    "log1p",
    "log2",
    "round",
    "sin",
    "sinh",
    "sqrt",
    "tan",
    "tanh",
    "trunc",
)


def warm_vml():
    """Call each of torch's VML-backed unary ops once per float type on one element (in
    float32 and float64, VML's two precisions); idempotent; a few milliseconds, once."""
    global _WARM
    if _WARM:
        return
    import torch

    with torch.no_grad():
        for dtype in (torch.float32, torch.float64):
            x = torch.full((1,), 0.5, dtype=dtype)
            for name in _OPS:
                getattr(torch, name)(x)
    _WARM = True
