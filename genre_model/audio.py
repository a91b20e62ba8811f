"""Audio in: any common file format -> mono float32 samples at the model's rate.

Decoding goes through pydub (which drives ffmpeg); resampling uses soxr (a librosa
dependency). Long inputs are bounded: ffmpeg is asked for at most ``max_seconds`` and
never decodes the rest. Every way the input can be unusable ends in one exception,
:class:`~genre_model.errors.AudioError`, whose message can be shown to a user.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np
import soxr
from pydub import AudioSegment

from genre_model.config import MAX_AUDIO_SECONDS, SILENCE_PEAK
from genre_model.errors import AudioError

NOT_AUDIO = "this file is not audio I can read"
#: Temporary folders are named ``genre_model-<pid>-...`` so a killed process's can be found.
TEMP_PREFIX = "genre_model-"


def load_audio(
    source: str | os.PathLike | bytes,
    sample_rate: int,
    *,
    max_seconds: float = MAX_AUDIO_SECONDS,
    min_seconds: float = 0.0,
) -> np.ndarray:
    """Decode ``source`` (a path or the file's bytes) to mono float32 in [-1, 1].

    At most ``max_seconds`` are read. Raises :class:`AudioError` when the input is
    empty, not decodable audio, silent, or shorter than ``min_seconds``.
    """
    if sample_rate <= 0:
        raise ValueError(f"sample_rate must be positive, got {sample_rate}")
    if max_seconds <= 0:
        raise ValueError(f"max_seconds must be positive, got {max_seconds}")
    if isinstance(source, (bytes, bytearray, memoryview)):
        if len(source) == 0:
            raise AudioError("the file is empty")
    else:
        path = Path(source)
        if path.is_dir():
            raise AudioError("a folder, not an audio file")
        if not path.is_file():
            raise AudioError(f"no such file: {path.name}")
        if path.stat().st_size == 0:
            raise AudioError("the file is empty")
    with tempfile.TemporaryDirectory(prefix=f"{TEMP_PREFIX}{os.getpid()}-") as tmp:
        # A neutral name makes pydub always hand the file to ffmpeg (which reads at most
        # max_seconds); by extension it would parse .wav itself, whole and without float support.
        neutral = Path(tmp) / "input"
        if isinstance(source, (bytes, bytearray, memoryview)):
            neutral.write_bytes(source)
        else:
            neutral.symlink_to(Path(source).resolve())
        segment = _decode(neutral, max_seconds)
    samples = _to_mono_float(segment)
    if samples.size == 0:
        raise AudioError(NOT_AUDIO)
    if segment.frame_rate != sample_rate:
        samples = soxr.resample(samples, segment.frame_rate, sample_rate, quality="HQ").astype(np.float32)
    samples = samples[: int(max_seconds * sample_rate)]
    duration = samples.size / sample_rate
    if duration < min_seconds:
        raise AudioError(f"clip is {duration:.1f} s; I need at least {min_seconds:.0f} s")
    if float(np.max(np.abs(samples))) < SILENCE_PEAK:
        raise AudioError("the clip is silent")
    return samples


def _decode(path: Path, max_seconds: float) -> AudioSegment:
    """Run ffmpeg through pydub, mapping every failure to :class:`AudioError`."""
    try:
        segment = AudioSegment.from_file(str(path), duration=max_seconds)
    except FileNotFoundError as exc:  # ffmpeg/ffprobe itself missing
        if exc.filename and Path(str(exc.filename)).name in {"ffmpeg", "ffprobe"}:
            raise AudioError("ffmpeg is not installed on this machine") from exc
        raise AudioError(NOT_AUDIO) from exc
    except Exception as exc:  # pydub raises many types (CouldntDecodeError, IndexError, KeyError ...)
        raise AudioError(NOT_AUDIO) from exc
    if segment.frame_count() == 0 or segment.frame_rate <= 0:
        raise AudioError(NOT_AUDIO)
    return segment


def _to_mono_float(segment: AudioSegment) -> np.ndarray:
    """Interleaved integer PCM -> mono float32 in [-1, 1] (channels averaged)."""
    width = segment.sample_width
    dtype = {1: np.uint8, 2: np.int16, 4: np.int32}.get(width)  # pydub widens 24-bit to 32-bit
    if dtype is None:
        raise AudioError(NOT_AUDIO)
    channels = max(1, segment.channels)
    ints = np.frombuffer(segment.raw_data, dtype=dtype)
    frames = ints[: ints.size - ints.size % channels].reshape(-1, channels)
    mono = frames[:, 0].astype(np.float32)
    for c in range(1, channels):  # per-channel adds: ten times faster than a float copy + mean
        mono += frames[:, c]
    if width == 1:
        mono -= 128.0 * channels
        mono *= 1.0 / (128.0 * channels)
    else:
        mono *= 1.0 / (float(2 ** (8 * width - 1)) * channels)
    return mono
