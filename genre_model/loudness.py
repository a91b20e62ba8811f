"""Integrated loudness (ITU-R BS.1770-4) and the one loudness normalisation of a song, numpy only.

musicnn's front end, ``log10(10000 x + 1)``, is not scale invariant: the same song 20 dB
quieter looked like another genre ("classical"). A :class:`~genre_model.features.FeatureConfig`
with ``loudness_target`` set scales every song to that integrated loudness before its features
are computed, in :func:`normalise_loudness`, which training and serving both call (through
:func:`genre_model.features.levelled`), so the two cannot drift apart.

The measurement is BS.1770-4's, mono: the K-weighting pre-filter (a high shelf, +4 dB above
about 1.5 kHz) and the RLB high-pass (38 Hz), 400 ms blocks with 75 % overlap, an absolute
gate at -70 LUFS and a relative gate 10 LU below the absolutely gated loudness. The two
biquads are those ``pyloudnorm`` designs (RBJ's cookbook formulas at the signal's rate), applied
in the frequency domain (an FFT of the zero-padded signal times the filters' exact frequency
response: the same numbers as running them sample by sample, up to the impulse-response tail
beyond the padding, which is below 1e-9 after 0.25 s) so serving needs no SciPy.

Several segments of one song (the windows a prediction analyses) can be measured together:
each is filtered on its own and their blocks are pooled before gating.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from genre_model.errors import AudioError

#: Below this (LUFS) a block is not counted; a song with no block above it is silent.
ABSOLUTE_GATE = -70.0
#: The relative gate, in LU below the absolutely gated loudness.
RELATIVE_GATE = -10.0
BLOCK_SECONDS = 0.4
OVERLAP = 0.75
#: Normalisation never raises a song by more than this (dB).
MAX_GAIN_DB = 40.0
#: Zero padding (seconds) after each segment, so the filters' ringing is not wrapped around.
_PAD_SECONDS = 0.25


def _biquad(kind: str, gain_db: float, q: float, fc: float, rate: float) -> tuple[np.ndarray, np.ndarray]:
    a_ = 10 ** (gain_db / 40.0)
    w0 = 2.0 * np.pi * fc / rate
    alpha = np.sin(w0) / (2.0 * q)
    cos = np.cos(w0)
    if kind == "high_shelf":
        b = [a_ * ((a_ + 1) + (a_ - 1) * cos + 2 * np.sqrt(a_) * alpha),
             -2 * a_ * ((a_ - 1) + (a_ + 1) * cos),
             a_ * ((a_ + 1) + (a_ - 1) * cos - 2 * np.sqrt(a_) * alpha)]
        a = [(a_ + 1) - (a_ - 1) * cos + 2 * np.sqrt(a_) * alpha,
             2 * ((a_ - 1) - (a_ + 1) * cos),
             (a_ + 1) - (a_ - 1) * cos - 2 * np.sqrt(a_) * alpha]
    else:  # high_pass
        b = [(1 + cos) / 2, -(1 + cos), (1 + cos) / 2]
        a = [1 + alpha, -2 * cos, 1 - alpha]
    return np.asarray(b, np.float64), np.asarray(a, np.float64)


def k_weighting_response(n_fft: int, rate: float) -> np.ndarray:
    """The K-weighting (shelf x RLB high-pass) frequency response at the ``rfft`` bins of length ``n_fft``."""
    z1 = np.exp(-1j * 2.0 * np.pi * np.fft.rfftfreq(n_fft))  # z^-1 on the unit circle
    response = np.ones(z1.shape, np.complex128)
    for kind, gain, q, fc in (("high_shelf", 4.0, 1 / np.sqrt(2), 1500.0), ("high_pass", 0.0, 0.5, 38.0)):
        b, a = _biquad(kind, gain, q, fc, rate)
        response *= (b[0] + b[1] * z1 + b[2] * z1 ** 2) / (a[0] + a[1] * z1 + a[2] * z1 ** 2)
    return response


def k_weighted(samples: np.ndarray, rate: float) -> np.ndarray:
    """``samples`` through the K-weighting filters (zero initial state), float64."""
    x = np.asarray(samples, dtype=np.float64)
    n = x.size + int(_PAD_SECONDS * rate)
    n_fft = 1 << max(1, (n - 1).bit_length())
    return np.fft.irfft(np.fft.rfft(x, n_fft) * k_weighting_response(n_fft, rate), n_fft)[: x.size]


def block_powers(samples: np.ndarray, rate: float) -> np.ndarray:
    """Mean square of the K-weighted signal in each 400 ms block (75 % overlap), as BS.1770-4 places them."""
    block = BLOCK_SECONDS * rate
    step = BLOCK_SECONDS * (1.0 - OVERLAP)
    seconds = samples.size / rate
    if seconds < BLOCK_SECONDS:
        return np.zeros(0)
    n_blocks = int(np.round((seconds - BLOCK_SECONDS) / step)) + 1
    filtered = k_weighted(samples, rate) ** 2
    cumulative = np.concatenate([[0.0], np.cumsum(filtered)])
    j = np.arange(n_blocks)
    lower = (BLOCK_SECONDS * j * (1.0 - OVERLAP) * rate).astype(np.int64)
    upper = np.minimum((BLOCK_SECONDS * (j * (1.0 - OVERLAP) + 1) * rate).astype(np.int64), samples.size)
    return (cumulative[upper] - cumulative[lower]) / block


def integrated_loudness(segments: np.ndarray | Sequence[np.ndarray], rate: float) -> float:
    """Gated integrated loudness (LUFS) of a mono signal, or of several segments of one (blocks pooled).

    ``-inf`` when no block passes the absolute gate (silence).
    """
    if isinstance(segments, np.ndarray) and segments.ndim == 1:
        segments = [segments]
    powers = np.concatenate([block_powers(np.asarray(s), rate) for s in segments] or [np.zeros(0)])
    with np.errstate(divide="ignore"):
        levels = -0.691 + 10.0 * np.log10(powers)
    gated = powers[levels >= ABSOLUTE_GATE]
    if gated.size == 0:
        return float("-inf")
    relative = -0.691 + 10.0 * np.log10(gated.mean()) + RELATIVE_GATE
    kept = powers[(levels > relative) & (levels > ABSOLUTE_GATE)]
    return float(-0.691 + 10.0 * np.log10(kept.mean()))


def loudness_gain(segments: np.ndarray | Sequence[np.ndarray], rate: float, target: float) -> float:
    """The linear gain that brings the song (its analysed ``segments``) to ``target`` LUFS, at most
    +:data:`MAX_GAIN_DB`. Raises :class:`AudioError` for a song below the absolute gate (silent)."""
    level = integrated_loudness(segments, rate)
    if not np.isfinite(level):
        raise AudioError("the clip is silent")
    return float(10.0 ** (min(target - level, MAX_GAIN_DB) / 20.0))


def normalise_loudness(samples: np.ndarray, rate: float, target: float | None,
                       spans: np.ndarray | None = None) -> np.ndarray:
    """``samples`` scaled to ``target`` LUFS (measured over the sample ``spans`` ``(n, 2)`` if given,
    else the whole), float32; unchanged when ``target`` is None. The one normalisation training and
    serving share."""
    if target is None:
        return samples
    segments = [samples] if spans is None else [samples[int(a):int(b)] for a, b in np.asarray(spans)]
    gain = loudness_gain(segments, rate, target)
    return (samples * np.float32(gain)).astype(np.float32, copy=False)


__all__ = ["integrated_loudness", "k_weighted", "loudness_gain", "normalise_loudness"]
