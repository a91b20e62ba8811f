"""Features: log-mel spectrograms cut into fixed-size windows.

One :class:`FeatureConfig` describes everything between samples and the model's
input; it is saved inside every model artifact, so training and serving cannot drift
apart. Windows always have the shape ``(n_windows, n_mels, window_frames, channels)``.

Two presets exist:

* :data:`CNN_FEATURES` -- the original study's custom CNN: 22050 Hz, hop 512,
  128 mel bands x 128 frames (about 3 s), dB scale, delta and delta-delta channels,
  per-channel standardisation with statistics from the training set.
* :data:`MUSICNN_FEATURES` -- the pretrained musicnn backbone's own front end:
  16 kHz, FFT 512, hop 256, 96 bands x 187 frames (3 s), ``log10(10000 x + 1)``
  computed in float32 (musicnn's float16 version overflows).
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import os
import zipfile
import zlib
from pathlib import Path
from typing import Any, BinaryIO, Mapping

import numpy as np

from genre_model.errors import AudioError, DatasetError

LOG_SCALES = ("db", "log10p")


@dataclasses.dataclass(frozen=True)
class FeatureConfig:
    """Every parameter that turns samples into model input windows."""

    sample_rate: int = 22050
    n_fft: int = 2048
    hop_length: int = 512
    n_mels: int = 128
    window_frames: int = 128
    log_scale: str = "db"
    deltas: bool = True
    #: Per-channel mean and std applied after the log (empty = no standardisation).
    norm_mean: tuple[float, ...] = ()
    norm_std: tuple[float, ...] = ()
    #: Integrated loudness (LUFS, ITU-R BS.1770-4) every song is scaled to before its features are
    #: computed (measured over the windows analysed; see :mod:`genre_model.loudness`); None = off.
    loudness_target: float | None = None

    def __post_init__(self) -> None:
        for name in ("sample_rate", "n_fft", "hop_length", "n_mels", "window_frames"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                raise ValueError(f"FeatureConfig.{name} must be a positive integer, got {value!r}")
        if self.log_scale not in LOG_SCALES:
            raise ValueError(f"FeatureConfig.log_scale must be one of {LOG_SCALES}, got {self.log_scale!r}")
        if len(self.norm_mean) != len(self.norm_std) or (self.norm_mean and len(self.norm_mean) != self.channels):
            raise ValueError("norm_mean and norm_std need one value per channel")
        if self.loudness_target is not None and not -70.0 < float(self.loudness_target) <= 0.0:
            raise ValueError(f"FeatureConfig.loudness_target must be in (-70, 0] LUFS, got {self.loudness_target!r}")

    @property
    def channels(self) -> int:
        """1 (log-mel) or 3 (log-mel, delta, delta-delta)."""
        return 3 if self.deltas else 1

    @property
    def window_seconds(self) -> float:
        """Audio covered by one window."""
        return self.window_frames * self.hop_length / self.sample_rate

    @property
    def min_samples(self) -> int:
        """Fewest samples that still give one full window (centred STFT frames)."""
        return (self.window_frames - 1) * self.hop_length

    @property
    def input_shape(self) -> tuple[int, int, int]:
        """Shape of one window: (n_mels, window_frames, channels)."""
        return (self.n_mels, self.window_frames, self.channels)

    def with_normalisation(self, mean: np.ndarray, std: np.ndarray) -> "FeatureConfig":
        """A copy that standardises each channel with the given statistics."""
        return dataclasses.replace(
            self,
            norm_mean=tuple(float(m) for m in np.ravel(mean)),
            norm_std=tuple(float(max(s, 1e-6)) for s in np.ravel(std)),
        )

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        if data["loudness_target"] is None:  # settings (and fingerprints) from before the field stay as they were
            del data["loudness_target"]
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "FeatureConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown feature settings: {sorted(unknown)}")
        values = dict(data)
        for key in ("norm_mean", "norm_std"):
            if key in values:
                values[key] = tuple(values[key])
        return cls(**values)

    def fingerprint(self) -> str:
        """Short hash of the settings; windows are only reusable under the same one."""
        text = json.dumps(self.to_dict(), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


CNN_FEATURES = FeatureConfig()
MUSICNN_FEATURES = FeatureConfig(
    sample_rate=16000, n_fft=512, hop_length=256, n_mels=96, window_frames=187,
    log_scale="log10p", deltas=False,
)


def _hz_to_mel(hz: np.ndarray) -> np.ndarray:
    hz = np.asarray(hz, dtype=np.float64)
    linear = hz / (200.0 / 3)
    log_part = 15.0 + np.log(np.maximum(hz, 1e-10) / 1000.0) / (np.log(6.4) / 27.0)
    return np.where(hz >= 1000.0, log_part, linear)


def _mel_to_hz(mel: np.ndarray) -> np.ndarray:
    linear = (200.0 / 3) * mel
    log_part = 1000.0 * np.exp((np.log(6.4) / 27.0) * (mel - 15.0))
    return np.where(mel >= 15.0, log_part, linear)


def mel_edges(sample_rate: int, n_mels: int) -> np.ndarray:
    """The ``n_mels + 2`` Slaney-mel points (Hz) the filters are built on; band ``i`` peaks at ``[i + 1]``."""
    return _mel_to_hz(np.linspace(_hz_to_mel(0.0), _hz_to_mel(sample_rate / 2.0), n_mels + 2))


@functools.lru_cache(maxsize=8)
def mel_filterbank(sample_rate: int, n_fft: int, n_mels: int) -> np.ndarray:
    """Slaney-style mel filters ``(n_mels, 1 + n_fft // 2)``, equal to ``librosa.filters.mel``'s defaults."""
    fft_freqs = np.fft.rfftfreq(n_fft, 1.0 / sample_rate)
    mel_f = mel_edges(sample_rate, n_mels)
    fdiff = np.diff(mel_f)
    ramps = mel_f[:, None] - fft_freqs[None, :]
    lower = -ramps[:-2] / fdiff[:-1, None]
    upper = ramps[2:] / fdiff[1:, None]
    weights = np.maximum(0.0, np.minimum(lower, upper))
    weights *= (2.0 / (mel_f[2:] - mel_f[:-2]))[:, None]
    return weights.astype(np.float32)


#: Frames per STFT block: 3 minutes at once peaked at 143 MB of temporaries, in blocks at 36 MB.
STFT_BLOCK = 1024


def power_spectrogram(samples: np.ndarray, n_fft: int, hop_length: int,
                      frames: np.ndarray | None = None) -> np.ndarray:
    """|STFT|^2 ``(1 + n_fft // 2, frames)`` with a periodic Hann window and centred, zero-padded frames.

    The same numbers as ``librosa.stft`` (librosa >= 0.10 defaults), computed with numpy
    only: librosa's own path initialises numba/LLVM, about 200 MB in every worker process.
    ``frames`` (indices) computes only those frames, each exactly as in the whole.
    """
    padded = np.pad(samples.astype(np.float32, copy=False), n_fft // 2, mode="constant")
    n_frames = 1 + (padded.size - n_fft) // hop_length
    every = np.lib.stride_tricks.sliding_window_view(padded, n_fft)[::hop_length][:n_frames]
    index = np.arange(len(every)) if frames is None else np.asarray(frames)
    window = (0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(n_fft) / n_fft)).astype(np.float32)
    power = np.empty((1 + n_fft // 2, len(index)), dtype=np.float32)
    for start in range(0, len(index), STFT_BLOCK):  # a long song never holds its whole complex spectrum
        spectrum = np.fft.rfft(every[index[start:start + STFT_BLOCK]] * window, axis=1)
        power[:, start:start + STFT_BLOCK] = (spectrum.real ** 2 + spectrum.imag ** 2).T
    return power


def log_mel(samples: np.ndarray, config: FeatureConfig, frames: np.ndarray | None = None) -> np.ndarray:
    """Log-mel spectrogram, shape ``(channels, n_mels, frames)``, float32, not yet standardised.

    ``frames`` (indices of the centred frames, ``1 + len(samples) // hop`` in all) computes
    only those; delta channels need every frame, so configs with deltas refuse it.
    """
    if samples.ndim != 1:
        raise ValueError("samples must be mono (1-D)")
    if frames is not None and config.deltas:
        raise ValueError("delta channels are computed over every frame; frames= needs deltas=False")
    if samples.size < config.min_samples:
        have = samples.size / config.sample_rate
        raise AudioError(f"clip is {have:.1f} s; I need at least {config.window_seconds:.0f} s")
    power = mel_filterbank(config.sample_rate, config.n_fft, config.n_mels) @ power_spectrogram(
        samples, config.n_fft, config.hop_length, frames)
    if config.log_scale == "db":  # librosa.power_to_db(power, ref=1.0, amin=1e-10, top_db=None)
        mel = (10.0 * np.log10(np.maximum(power, 1e-10))).astype(np.float32)
    else:
        mel = np.log10(10000.0 * power + 1.0, dtype=np.float32)
    channels = [mel]
    if config.deltas:
        width = min(9, mel.shape[1] if mel.shape[1] % 2 else mel.shape[1] - 1)
        channels += [savgol_derivative(mel, width, order) for order in (1, 2)]
    return np.stack(channels)


def savgol_derivative(x: np.ndarray, width: int, order: int) -> np.ndarray:
    """``order``-th Savitzky-Golay derivative along the last axis (polynomial order = ``order``,
    edges repeated): ``librosa.feature.delta(x, width=width, order=order, mode="nearest")``,
    in numpy so serving needs no SciPy."""
    half = width // 2
    offsets = np.arange(-half, half + 1, dtype=np.float64)
    vander = offsets[:, None] ** np.arange(order + 1)[None, :]
    coeffs = np.linalg.pinv(vander)[order] * float(np.prod(np.arange(1, order + 1)))
    padded = np.pad(x.astype(np.float64), [(0, 0)] * (x.ndim - 1) + [(half, half)], mode="edge")
    n = x.shape[-1]
    out = sum(c * padded[..., i:i + n] for i, c in enumerate(coeffs))
    return out.astype(np.float32)


def window_starts(n_frames: int, config: FeatureConfig, hop_frames: int | None = None,
                  max_windows: int | None = None) -> np.ndarray:
    """Start frames of the windows cut from ``n_frames``; spread evenly if capped."""
    hop = hop_frames or config.window_frames
    if hop <= 0:
        raise ValueError("hop_frames must be positive")
    last = n_frames - config.window_frames
    if last < 0:
        return np.zeros(0, dtype=np.int64)
    starts = np.arange(0, last + 1, hop, dtype=np.int64)
    if max_windows is not None and starts.size > max_windows:
        starts = np.unique(np.linspace(0, last, max_windows).round().astype(np.int64))
    return starts


def song_window_starts(n_frames: int, config: FeatureConfig, max_windows: int) -> np.ndarray:
    """Start frames of windows covering a whole song, spread evenly from its first frame to its last.

    A song that ``max_windows`` windows can cover gets just enough to hear every sample (the
    overlap, or a gap too small to leave audio out, shared evenly); a longer one gets
    ``max_windows`` windows from the very start to the very end with equal gaps between
    them. Empty if not one window fits.
    """
    if max_windows < 1:
        raise ValueError(f"max_windows must be at least 1, got {max_windows}")
    last = n_frames - config.window_frames
    if last < 0:
        return np.zeros(0, dtype=np.int64)
    # Centred frames read n_fft samples each, hop apart: windows up to `reach` frames apart still
    # hear every sample between them, and a lone window at 0 hears a song of `alone` extra frames.
    reach = config.window_frames - 1 + config.n_fft // config.hop_length
    alone = max(0, config.n_fft // (2 * config.hop_length) - 1)
    n = min(max_windows, 1 + -(-max(0, last - alone) // reach))
    return np.unique(np.linspace(0, last, n).round().astype(np.int64))


def window_spans(starts: np.ndarray, config: FeatureConfig, n_samples: int) -> np.ndarray:
    """``(n, 2)`` seconds ``[begin, end)`` of the audio each window at ``starts`` is computed from.

    Frames are centred: frame ``i`` reads samples ``i * hop - n_fft / 2`` up to ``+ n_fft / 2``
    (clipped to the clip), so a window reads a little more than ``window_seconds``.
    """
    half = config.n_fft // 2
    begin = np.maximum(np.asarray(starts) * config.hop_length - half, 0)
    end = np.minimum((np.asarray(starts) + config.window_frames - 1) * config.hop_length + half, n_samples)
    return np.stack([begin, end], axis=1) / config.sample_rate


@dataclasses.dataclass(frozen=True)
class Excerpts:
    """A song's decoded audio: all of it (one piece at sample 0), or only the pieces its windows need.

    ``pieces`` are ``(first sample, samples)``, sorted and disjoint, at the song's positions;
    ``n_samples`` is the length of the song as analysed (its first ``max_seconds``). Every
    sample inside a piece is exactly the sample a full decode has there.
    """

    n_samples: int
    pieces: tuple[tuple[int, np.ndarray], ...]

    def __post_init__(self) -> None:
        end = 0
        for first, samples in self.pieces:
            if samples.ndim != 1 or first < end or first + samples.size > self.n_samples:
                raise ValueError("pieces must be mono, sorted, disjoint and inside the song")
            end = first + samples.size

    @classmethod
    def whole(cls, samples: np.ndarray) -> "Excerpts":
        """All of a decoded song."""
        return cls(int(samples.size), ((0, samples),))

    def piece_of(self, begin: int, end: int) -> tuple[int, np.ndarray]:
        """The piece holding samples ``[begin, end)``; ValueError if none holds all of them."""
        for first, samples in self.pieces:
            if first <= begin and end <= first + samples.size:
                return first, samples
        raise ValueError(f"samples {begin}..{end} were not decoded")

    def span(self, begin: int, end: int) -> np.ndarray:
        """Samples ``[begin, end)`` of the song (they must lie in one piece)."""
        first, samples = self.piece_of(begin, end)
        return samples[begin - first:end - first]


def frame_span(frames: tuple[int, int], config: FeatureConfig, n_samples: int) -> tuple[int, int]:
    """Samples ``[begin, end)`` that frames ``first..last`` (inclusive, centred) read, clipped to the song."""
    half = config.n_fft // 2
    return max(frames[0] * config.hop_length - half, 0), min(frames[1] * config.hop_length + half, n_samples)


def needed_spans(starts: np.ndarray, config: FeatureConfig, n_samples: int) -> list[tuple[int, int]]:
    """The sample spans ``[begin, end)`` the windows at ``starts`` are computed from, merged where
    they touch: what a reader must decode so :func:`song_features` gives the numbers a full decode
    gives. With delta channels each window also needs the frames its deltas read around it."""
    reach = _DELTA_HALF if config.deltas else 0
    last_frame = n_samples // config.hop_length
    spans: list[tuple[int, int]] = []
    for s in sorted(int(x) for x in starts):
        begin, end = frame_span((max(s - reach, 0), min(s + config.window_frames - 1 + reach, last_frame)),
                                config, n_samples)
        if spans and begin <= spans[-1][1]:
            spans[-1] = (spans[-1][0], max(spans[-1][1], end))
        else:
            spans.append((begin, end))
    return spans


#: Frames each side a delta channel reads (Savitzky-Golay width 9).
_DELTA_HALF = 4


def levelled(samples: np.ndarray, config: FeatureConfig, starts: np.ndarray) -> np.ndarray:
    """``samples`` scaled to the config's loudness target, measured over the windows at ``starts``
    (unchanged without a target): the one loudness normalisation of training and serving."""
    return samples * np.float32(loudness_scale(Excerpts.whole(samples), config, starts))


def loudness_scale(excerpts: Excerpts, config: FeatureConfig, starts: np.ndarray) -> float:
    """The gain that brings a song to the config's loudness target, measured over the windows at
    ``starts`` (1.0 without a target)."""
    if config.loudness_target is None:
        return 1.0
    from genre_model.loudness import loudness_gain

    spans = np.round(window_spans(starts, config, excerpts.n_samples) * config.sample_rate).astype(np.int64)
    return loudness_gain([excerpts.span(int(a), int(b)) for a, b in spans], config.sample_rate,
                         config.loudness_target)


def song_features(song: np.ndarray | Excerpts, config: FeatureConfig, starts: np.ndarray,
                  overview_frames: int) -> tuple[np.ndarray, np.ndarray, int]:
    """(model windows at ``starts``, log-mel overview of the song, its frame step) for one song.

    ``song`` is its samples or its :class:`Excerpts`. The overview (first channel, every
    ``step``-th frame, at most about ``overview_frames`` of them) is for the picture; frames no
    piece holds are NaN (not heard). Only the frames the windows and the overview need are
    computed, each exactly as in the full spectrogram (with delta channels, or when most are
    needed, every frame of a piece is).
    """
    excerpts = song if isinstance(song, Excerpts) else Excerpts.whole(song)
    gain = np.float32(loudness_scale(excerpts, config, starts))
    hop, frames = config.hop_length, config.window_frames
    reach = _DELTA_HALF if config.deltas else 0  # a window's deltas read this many frames each side
    n_frames = 1 + excerpts.n_samples // hop
    step = max(1, -(-n_frames // overview_frames))
    overview_at = np.arange(0, n_frames, step)
    overview = np.full((config.n_mels, overview_at.size), np.nan, dtype=np.float32)
    windows: list[np.ndarray | None] = [None] * len(starts)
    for first, samples in excerpts.pieces:
        if first % hop:
            raise ValueError("a piece must start on a frame boundary")
        shift, end = first // hop, first + samples.size
        # Song frames this piece computes exactly: those whose samples it holds (or the song's
        # zero padding, at the song's own start and end).
        lo = shift if first == 0 else -(-(first + config.n_fft // 2) // hop)
        hi = n_frames - 1 if end == excerpts.n_samples else (end - config.n_fft // 2) // hop
        mine = [i for i, s in enumerate(starts)
                if lo <= max(s - reach, 0) and min(s + frames - 1 + reach, n_frames - 1) <= hi]
        shown = overview_at[(overview_at >= lo) & (overview_at <= hi)]
        if not mine and (not shown.size or samples.size < config.min_samples):
            continue  # nothing to compute here (a scrap too short for any window shows as not heard)
        local_frames = 1 + samples.size // hop
        needed = np.union1d((np.asarray([starts[i] for i in mine], np.int64)[:, None] + np.arange(frames)).ravel(),
                            shown) - shift
        scaled = samples * gain
        if config.deltas or needed.size > 0.8 * local_frames:
            spectrogram = log_mel(scaled, config)
            index = lambda song_frames: np.asarray(song_frames) - shift  # noqa: E731
        else:
            spectrogram = log_mel(scaled, config, needed)
            index = lambda song_frames: np.searchsorted(needed, np.asarray(song_frames) - shift)  # noqa: E731
        for i in mine:  # each window's frames are consecutive in `needed`
            windows[i] = spectrogram[:, :, index(starts[i]):index(starts[i]) + frames]
        if shown.size:
            overview[:, np.searchsorted(overview_at, shown)] = spectrogram[0][:, index(shown)]
    if any(w is None for w in windows):
        raise ValueError("a window's samples were not decoded")
    if not len(starts):
        return np.zeros((0, *config.input_shape), np.float32), overview, step
    out = np.stack(windows).transpose(0, 2, 3, 1)
    return normalise(np.ascontiguousarray(out, dtype=np.float32), config), overview, step


def cut_windows(spectrogram: np.ndarray, config: FeatureConfig, starts: np.ndarray) -> np.ndarray:
    """Windows ``(n, n_mels, window_frames, channels)`` from ``(channels, n_mels, frames)``, standardised."""
    frames = config.window_frames
    out = np.stack([spectrogram[:, :, s:s + frames] for s in starts]).transpose(0, 2, 3, 1)
    return normalise(np.ascontiguousarray(out, dtype=np.float32), config)


def normalise(windows: np.ndarray, config: FeatureConfig) -> np.ndarray:
    """Apply the config's per-channel standardisation (a no-op without statistics)."""
    if not config.norm_mean:
        return windows
    mean = np.asarray(config.norm_mean, dtype=np.float32)
    std = np.asarray(config.norm_std, dtype=np.float32)
    return (windows - mean) / std


def extract_windows(samples: np.ndarray, config: FeatureConfig, *, hop_frames: int | None = None,
                    max_windows: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Samples -> (windows, start times in seconds)."""
    if samples.ndim != 1:
        raise ValueError("samples must be mono (1-D)")
    starts = window_starts(1 + samples.size // config.hop_length, config, hop_frames, max_windows)
    if starts.size == 0:
        have = samples.size / config.sample_rate
        raise AudioError(f"clip is {have:.1f} s; I need at least {config.window_seconds:.0f} s")
    spectrogram = log_mel(levelled(samples, config, starts), config)
    times = starts * config.hop_length / config.sample_rate
    return cut_windows(spectrogram, config, starts), times.astype(np.float64)


def save_windows(target: str | os.PathLike | BinaryIO, windows: np.ndarray,
                 config: FeatureConfig | Mapping[str, Any]) -> None:
    """Write windows with the feature settings they were made with: the one writer of the ``.npz``
    windows format (the bot's stored predictions and correction exports).

    ``target`` is a path or a binary file object (left open, not synced: a caller that needs the
    bytes on disk flushes and fsyncs it). ``config`` is a :class:`FeatureConfig` or its ``to_dict()``.
    """
    settings = config.to_dict() if isinstance(config, FeatureConfig) else dict(config)
    if isinstance(target, (str, os.PathLike)):  # numpy would append ".npz" to other names
        with open(target, "wb") as handle:
            save_windows(handle, windows, settings)
        return
    np.savez_compressed(target, windows=np.asarray(windows).astype(np.float32, copy=False),
                        feature_config=np.array(json.dumps(settings)))


def read_windows(source: str | os.PathLike | BinaryIO) -> tuple[np.ndarray, dict[str, Any]]:
    """Read a windows file as written by :func:`save_windows`: the one reader of the format.

    Returns ``(windows as float32, feature settings as a dict)``; anything else raises
    :class:`DatasetError`.
    """
    name = source if isinstance(source, (str, os.PathLike)) else getattr(source, "name", "windows")
    try:
        with np.load(source, allow_pickle=False) as data:
            return data["windows"].astype(np.float32), dict(json.loads(str(data["feature_config"])))
    except (OSError, KeyError, ValueError, TypeError, EOFError, zipfile.BadZipFile, zlib.error) as exc:
        raise DatasetError(f"{Path(str(name)).name}: not a feature-windows file ({exc})") from exc


def load_windows(path: Path, config: FeatureConfig) -> np.ndarray:
    """Load stored windows, refusing ones made with different feature settings."""
    windows, settings = read_windows(path)
    try:
        stored = FeatureConfig.from_dict(settings)
    except (TypeError, ValueError) as exc:
        raise DatasetError(f"{path.name}: not a feature-windows file ({exc})") from exc
    if _unnormalised(stored) != _unnormalised(config):
        raise DatasetError(f"{path.name}: made with other feature settings than this model uses")
    if windows.ndim != 4 or windows.shape[1:] != config.input_shape:
        raise DatasetError(f"{path.name}: windows have shape {windows.shape[1:]}, expected {config.input_shape}")
    # Stored windows are standardised with the stored statistics; re-standardise for this config.
    if stored.norm_mean != config.norm_mean or stored.norm_std != config.norm_std:
        if stored.norm_mean:
            windows = windows * np.asarray(stored.norm_std, np.float32) + np.asarray(stored.norm_mean, np.float32)
        windows = normalise(windows, config)
    return windows


def _unnormalised(config: FeatureConfig) -> FeatureConfig:
    return dataclasses.replace(config, norm_mean=(), norm_std=())
