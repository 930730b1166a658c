"""A counter-based generator for drawing random networks inside a kernel: Philox4x32-10.

Philox4x32-10 (Salmon, Moraes, Dror & Shaw 2011, "Parallel random numbers: as easy as 1, 2, 3") maps a
128-bit counter and a 64-bit key to 128 random bits through ten rounds of two 32×32→64-bit multiplies and
xors, bumping the key by Weyl constants between rounds. For a fixed key it is a bijection of the counter, so
distinct counters never share an output, and nothing is carried from one draw to the next: a thread draws
the numbers of sample i, layer k from (i, k) alone, so the N×M weights of a Monte-Carlo run need never
exist in memory.

Counter layout: ``(sample mod 2^32, sample div 2^32, layer, stream)``; key: two 32-bit words from
``numpy.random.SeedSequence(seed)`` (:func:`key_from_seed`). One Philox call yields two doubles with 53
random bits each and so one Box-Muller pair of standard normals; ``stream`` tells apart what is drawn at
the same (sample, layer) (by convention :data:`STREAM_WEIGHT_BIAS` for (w_k, b_k), :data:`STREAM_INPUTS`
for (x, y) at layer 0).

Two implementations that share no code: :data:`SOURCE`, one C text valid as C99 and as CUDA device code
(compiled as C by gcc in tests/test_philox.py behind the CUDA-as-C shim), and a vectorised NumPy reference
(:func:`philox4x32`, :func:`normals`). Both are checked against the known-answer vectors published with
Random123 and against each other. The C text is **untested on a GPU**: only its C twin runs in CI.

Uniforms: the 64 bits ``hi·2^32 + lo`` keep their top 53, ``u = (bits >> 11)·2^-53`` ∈ [0, 1 - 2^-53]
(:func:`uniform_closed_open`), and ``((bits >> 11) + 1)·2^-53`` ∈ [2^-53, 1] (:func:`uniform_open_closed`).
Both are exact in binary64 (an integer below 2^53 times a power of two), so the C and NumPy uniforms agree
bitwise.

Normals: the basic (trigonometric) Box-Muller form, ``r = sqrt(-2 log u1)``, ``(r cos 2πu2, r sin 2πu2)``,
with u1 from the (0, 1] conversion: ``log`` never sees 0, so r ≤ sqrt(106 ln 2) ≈ 8.57 and no draw is inf or
NaN. The polar (Marsaglia) variant would need a rejection loop, a data-dependent branch that makes the
number of Philox calls per sample vary and diverges a warp; the basic form uses exactly one call per pair.
The doubles go through libm's (or CUDA's) log, sqrt, cos and sin, so two platforms agree to a few ulps of r,
not bitwise.

>>> key = key_from_seed(0)
>>> key.dtype, key.shape
(dtype('uint32'), (2,))
>>> [hex(v) for v in philox4x32(np.zeros(4, np.uint32), np.zeros(2, np.uint32))]
['0x6627e8d5', '0xe169c58d', '0xbc57ac4c', '0x9b00dbd8']
>>> z = normals(key, np.arange(10_000), layer=3, stream=STREAM_WEIGHT_BIAS)
>>> z.shape, bool(np.isfinite(z).all()), abs(float(z.mean())) < 0.05
((2, 10000), True, True)
"""

from __future__ import annotations

from typing import Any

import numpy as np

from symvg.errors import InvalidValueError

__all__ = ["MAX_NORMAL", "SOURCE", "STREAM_INPUTS", "STREAM_WEIGHT_BIAS", "box_muller", "counters", "key_from_seed", "normals",
           "philox4x32", "uniform_closed_open", "uniform_open_closed"]

STREAM_WEIGHT_BIAS = 0
"""The stream whose normal pair at (sample i, layer k) is (w_k, b_k) before scaling."""
STREAM_INPUTS = 1
"""The stream whose normal pair at (sample i, layer 0) is (x, y) before scaling."""
MAX_NORMAL = 8.572
"""A bound on |normal| of any draw: r = sqrt(-2 ln u1) ≤ sqrt(106 ln 2) = 8.57167… (u1 ≥ 2^-53), with room for a
few ulps of any platform's log and sqrt.

>>> float(box_muller(2.0**-53, 0.0)[0]) < MAX_NORMAL < float(box_muller(2.0**-53, 0.0)[0]) + 1e-3
True
"""

# Salmon et al. 2011, table 2 and section 4.2: the multipliers and the Weyl key increments (golden ratio, √3 - 1)
_M0, _M1 = np.uint64(0xD2511F53), np.uint64(0xCD9E8D57)
_W0, _W1 = 0x9E3779B9, 0xBB67AE85
_ROUNDS = 10
_LOW = np.uint64(0xFFFFFFFF)
_TWO_M53 = 2.0 ** -53
_TWO_PI = 6.283185307179586  # the double nearest 2π, written with the same digits as in SOURCE

SOURCE = """\
#ifndef SYMVG_PHILOX
#define SYMVG_PHILOX
/* Philox4x32-10 (Salmon et al. 2011); symvg.engines.philox. unsigned int must be 32 bits (so it is, on
   CUDA and on every LP64/LLP64 host), unsigned long long 64: checked at compile time. */
typedef char symvg_philox_needs_32_bit_unsigned_int[sizeof(unsigned int) == 4 ? 1 : -1];
#define SYMVG_PHILOX_M0 0xD2511F53u
#define SYMVG_PHILOX_M1 0xCD9E8D57u
#define SYMVG_PHILOX_W0 0x9E3779B9u
#define SYMVG_PHILOX_W1 0xBB67AE85u
#define SYMVG_TWO_M53 1.1102230246251565404236316680908203125e-16
#define SYMVG_TWO_PI 6.283185307179586

/* the 64-bit product of two 32-bit words; nvcc emits one mul.wide.u32 (what __umulhi would give) */
static __device__ __forceinline__ unsigned int symvg_mulhilo32(unsigned int a, unsigned int b, unsigned int *hi)
{
    unsigned long long p = (unsigned long long)a * (unsigned long long)b;
    *hi = (unsigned int)(p >> 32);
    return (unsigned int)p;
}

/* c[0..3] replaced by Philox4x32-10(c, (k0, k1)) */
static __device__ __forceinline__ void symvg_philox4x32_10(unsigned int *c, unsigned int k0, unsigned int k1)
{
    int r;
    for (r = 0; r < 10; ++r) {
        unsigned int hi0, hi1;
        unsigned int lo0 = symvg_mulhilo32(SYMVG_PHILOX_M0, c[0], &hi0);
        unsigned int lo1 = symvg_mulhilo32(SYMVG_PHILOX_M1, c[2], &hi1);
        c[0] = hi1 ^ c[1] ^ k0;
        c[1] = lo1;
        c[2] = hi0 ^ c[3] ^ k1;
        c[3] = lo0;
        k0 += SYMVG_PHILOX_W0;
        k1 += SYMVG_PHILOX_W1;
    }
}

/* the top 53 of the 64 bits hi:lo as a double in [0, 1 - 2^-53] (exact) */
static __device__ __forceinline__ double symvg_uniform_closed_open(unsigned int hi, unsigned int lo)
{
    unsigned long long u = ((unsigned long long)hi << 32) | (unsigned long long)lo;
    return (double)(u >> 11) * SYMVG_TWO_M53;
}

/* the same bits as a double in [2^-53, 1] (exact): never 0, so its log is finite */
static __device__ __forceinline__ double symvg_uniform_open_closed(unsigned int hi, unsigned int lo)
{
    unsigned long long u = ((unsigned long long)hi << 32) | (unsigned long long)lo;
    return (double)((u >> 11) + 1ull) * SYMVG_TWO_M53;
}

/* basic Box-Muller: u1 in (0, 1], u2 in [0, 1) -> two independent standard normals, |n| <= 8.58 */
static __device__ __forceinline__ void symvg_box_muller(double u1, double u2, double *n0, double *n1)
{
    double r = sqrt(-2.0 * log(u1));
    double t = SYMVG_TWO_PI * u2;
    *n0 = r * cos(t);
    *n1 = r * sin(t);
}

/* the normal pair of (sample, layer, stream) under the key (k0, k1): one Philox call, no state */
static __device__ __forceinline__ void symvg_philox_normal2(unsigned int k0, unsigned int k1,
                                                            unsigned long long sample, unsigned int layer,
                                                            unsigned int stream, double *n0, double *n1)
{
    unsigned int c[4];
    c[0] = (unsigned int)sample;
    c[1] = (unsigned int)(sample >> 32);
    c[2] = layer;
    c[3] = stream;
    symvg_philox4x32_10(c, k0, k1);
    symvg_box_muller(symvg_uniform_open_closed(c[0], c[1]), symvg_uniform_closed_open(c[2], c[3]), n0, n1);
}
#endif
"""
"""The generator as one C99 / CUDA text (include-guarded, so it may appear twice in one file). CUDA's
``__device__`` and ``__forceinline__`` are used as written; as C they are defined away by the shim."""


def key_from_seed(seed: Any) -> np.ndarray:
    """The two uint32 key words for a user's seed: ``SeedSequence(seed).generate_state(2)``, so nearby seeds
    give unrelated keys and any seed NumPy takes (an int ≥ 0, a sequence of them) is accepted.

    >>> bool((key_from_seed(7) == key_from_seed(7)).all()), bool((key_from_seed(7) != key_from_seed(8)).any())
    (True, True)
    >>> key_from_seed(-1)
    Traceback (most recent call last):
    symvg.errors.InvalidValueError: seed must be an integer >= 0 (or a sequence of them), got -1
    """
    if seed is None or isinstance(seed, (bool, float)):
        raise InvalidValueError(f"seed must be an integer >= 0 (or a sequence of them), got {seed!r}")
    try:
        return np.random.SeedSequence(seed).generate_state(2, dtype=np.uint32)
    except (TypeError, ValueError):
        raise InvalidValueError(f"seed must be an integer >= 0 (or a sequence of them), got {seed!r}") from None


def counters(samples: Any, layer: int, stream: int) -> np.ndarray:
    """The counters ``(i mod 2^32, i div 2^32, layer, stream)`` for sample indices ``samples`` (< 2^64),
    shape (len, 4) uint32.

    >>> counters([1, 2**32 + 5], 3, STREAM_INPUTS).tolist()
    [[1, 0, 3, 1], [5, 1, 3, 1]]
    """
    i = np.asarray(samples, dtype=np.uint64).reshape(-1)
    if not (0 <= layer < 2**32 and 0 <= stream < 2**32):
        raise InvalidValueError(f"layer and stream must be in [0, 2^32), got {layer}, {stream}")
    out = np.empty((i.size, 4), dtype=np.uint32)
    out[:, 0] = (i & _LOW).astype(np.uint32)
    out[:, 1] = (i >> np.uint64(32)).astype(np.uint32)
    out[:, 2], out[:, 3] = layer, stream
    return out


def philox4x32(counter: Any, key: Any) -> np.ndarray:
    """Philox4x32-10 of counters ``(..., 4)`` under keys ``(..., 2)`` (broadcast), as uint32 ``(..., 4)``:
    the reference, written from the paper in NumPy uint64 arithmetic (the 32×32→64 products are exact)."""
    c = np.asarray(counter, dtype=np.uint32)
    k = np.asarray(key, dtype=np.uint32)
    c0, c1, c2, c3 = (c[..., j].astype(np.uint64) for j in range(4))
    k0, k1 = (k[..., j].astype(np.uint64) for j in range(2))
    for r in range(_ROUNDS):
        p0, p1 = _M0 * c0, _M1 * c2
        c0, c1, c2, c3 = ((p1 >> np.uint64(32)) ^ c1 ^ k0, p1 & _LOW, (p0 >> np.uint64(32)) ^ c3 ^ k1, p0 & _LOW)
        k0, k1 = (k0 + np.uint64(_W0)) & _LOW, (k1 + np.uint64(_W1)) & _LOW
    return np.stack(np.broadcast_arrays(c0, c1, c2, c3), axis=-1).astype(np.uint32)


def _top53(hi: Any, lo: Any) -> np.ndarray:
    bits = (np.asarray(hi, dtype=np.uint64) << np.uint64(32)) | np.asarray(lo, dtype=np.uint64)
    return bits >> np.uint64(11)


def uniform_closed_open(hi: Any, lo: Any) -> np.ndarray:
    """The top 53 bits of ``hi:lo`` as doubles in [0, 1 - 2^-53], exactly.

    >>> uniform_closed_open([0, 0xFFFFFFFF], [0, 0xFFFFFFFF]).tolist() == [0.0, 1 - 2.0**-53]
    True
    """
    return _top53(hi, lo).astype(np.float64) * _TWO_M53


def uniform_open_closed(hi: Any, lo: Any) -> np.ndarray:
    """The top 53 bits of ``hi:lo``, plus one, times 2^-53: doubles in [2^-53, 1], exactly, never 0.

    >>> uniform_open_closed([0, 0xFFFFFFFF], [0, 0xFFFFFFFF]).tolist() == [2.0**-53, 1.0]
    True
    """
    return (_top53(hi, lo) + np.uint64(1)).astype(np.float64) * _TWO_M53


def box_muller(u1: Any, u2: Any) -> np.ndarray:
    """The basic Box-Muller pair ``(r cos 2πu2, r sin 2πu2)``, r = sqrt(-2 log u1), as shape (2, ...);
    u1 ∈ (0, 1] keeps the log finite.

    >>> [round(float(v), 4) for v in box_muller(2.0**-53, 0.0)]
    [8.5717, 0.0]
    """
    r = np.sqrt(-2.0 * np.log(np.asarray(u1, dtype=np.float64)))
    t = _TWO_PI * np.asarray(u2, dtype=np.float64)
    return np.stack([r * np.cos(t), r * np.sin(t)])


def normals(key: Any, samples: Any, layer: int, stream: int) -> np.ndarray:
    """The standard-normal pairs of sample indices ``samples`` at (layer, stream) under ``key``, shape
    (2, len): what ``symvg_philox_normal2`` gives in a kernel, computed here in NumPy."""
    out = philox4x32(counters(samples, layer, stream), key)
    return box_muller(uniform_open_closed(out[:, 0], out[:, 1]), uniform_closed_open(out[:, 2], out[:, 3]))
