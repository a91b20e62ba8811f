"""Reading a song: which seconds are analysed, and decoding just those.

The one place that turns a file into what the features need. Windows are placed over the
song's length as analysed (its first ``max_seconds``) by
:func:`~genre_model.features.song_window_starts`; then, when the file's header gives its length
and ffmpeg seeks in the format to the sample (:func:`~genre_model.audio.probe`), one ffmpeg
process decodes only the pieces those windows read, each with a margin that is decoded and
thrown away (decoder and resampler warm-up), so a long song costs what a short one does. The
pieces hold the very samples a full decode has there (tested to 1e-5 on MP3, FLAC, M4A, Opus
and WAV), so the answer is the full decode's. Anything else -- piped bytes of an unknown format,
Ogg Vorbis, a header whose length is off, a seek that comes back the wrong length -- is read
from the start, at most ``max_seconds``, as before.
"""

from __future__ import annotations

import dataclasses
import math
import os
import shutil
import tempfile
from pathlib import Path
from typing import Callable

import numpy as np

from genre_model.audio import TEMP_PREFIX, Decoding, Probe, SeekMismatch, decode_pieces, probe
from genre_model.config import MAX_AUDIO_SECONDS, SILENCE_PEAK
from genre_model.errors import AudioError
from genre_model.features import Excerpts, FeatureConfig, needed_spans, song_window_starts

#: Decoded and thrown away before and after each piece (MP3 and AAC frames are ~25 ms; the
#: resampler's filter a few ms).
MARGIN_SECONDS = 0.1
#: How far a header's length may be off the decoded length and still be used (pieces are widened
#: by this, and the windows re-placed on the decoded length).
LENGTH_SLACK_SECONDS = 0.5
#: Decode the whole song instead when the pieces would cover more than this share of it.
PIECES_SHARE = 0.5


@dataclasses.dataclass(frozen=True)
class Song:
    """A song as read for analysis: its audio (whole or pieces), the windows' start frames, and
    the file's whole length (``None`` when only the part read is known)."""

    excerpts: Excerpts
    starts: np.ndarray
    sample_rate: int
    file_seconds: float | None
    #: True when only the windows' pieces were decoded.
    sought: bool

    @property
    def seconds(self) -> float:
        """Length of the song as analysed (at most ``max_seconds``)."""
        return self.excerpts.n_samples / self.sample_rate


def read_song(source: str | os.PathLike | bytes, config: FeatureConfig, max_windows: int, *,
              max_seconds: float = MAX_AUDIO_SECONDS, meanwhile: Callable[[], None] | None = None) -> Song:
    """Read what ``config``'s windows need of ``source`` (a path or the file's bytes).

    ``meanwhile`` runs while ffmpeg decodes (a lazy model loads there). Raises
    :class:`~genre_model.errors.AudioError` for unusable input, as a full decode would.
    """
    if max_seconds <= 0:
        raise ValueError(f"max_seconds must be positive, got {max_seconds}")
    once = _Once(meanwhile)
    scratch = None
    try:
        if isinstance(source, (bytes, bytearray, memoryview)):
            if len(source) == 0:
                raise AudioError("the file is empty")
            scratch = tempfile.mkdtemp(prefix=f"{TEMP_PREFIX}{os.getpid()}-")
            path = Path(scratch) / "input"
            path.write_bytes(source)
        else:
            path = Path(source)
        header = probe(path) if path.is_file() and path.stat().st_size else None
        if header is not None and header.seekable:
            song = _read_pieces(path, header, config, max_windows, max_seconds, once)
            if song is not None:
                return song
        return _read_whole(path, header, config, max_windows, max_seconds, once)
    finally:
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)


def _read_whole(path: Path, header: Probe | None, config: FeatureConfig, max_windows: int,
                max_seconds: float, meanwhile: Callable[[], None]) -> Song:
    with Decoding(path, config.sample_rate, max_seconds=max_seconds) as decoding:
        meanwhile()
        samples = decoding.samples(min_seconds=config.min_samples / config.sample_rate)
    starts = song_window_starts(1 + samples.size // config.hop_length, config, max_windows)
    whole = samples.size / config.sample_rate
    file_seconds = header.duration_s if header is not None else (whole if whole < max_seconds else None)
    return Song(Excerpts.whole(samples), starts, config.sample_rate, file_seconds, sought=False)


def _read_pieces(path: Path, header: Probe, config: FeatureConfig, max_windows: int, max_seconds: float,
                 meanwhile: Callable[[], None]) -> Song | None:
    """The windows' pieces, or None when they cannot be trusted (read the whole file instead)."""
    sr, hop = config.sample_rate, config.hop_length
    capped = header.duration_s > max_seconds
    n = int(round(min(header.duration_s, max_seconds) * sr))
    if n < config.min_samples:
        return None  # too short to seek in: the full decode says what is wrong
    # Decoding starts on a sample of both rates (so the resampler's grid is the full decode's),
    # pieces on a frame boundary.
    grid = sr // math.gcd(sr, header.sample_rate)
    margin = _ceil_to(int(MARGIN_SECONDS * sr), grid)
    slack = int(LENGTH_SLACK_SECONDS * sr)
    starts = song_window_starts(1 + n // hop, config, max_windows)
    wanted = _merge([(max(a - slack, 0), min(b + slack, n)) for a, b in needed_spans(starts, config, n)])
    spans = [(_floor_to(max(a - margin, 0), grid), min(b + margin, n)) for a, b in wanted]
    spans = _merge(spans)
    if sum(b - a for a, b in spans) > PIECES_SHARE * n or len(spans) < 2:
        return None
    to_end = not capped
    try:
        pieces = decode_pieces(path, sr, spans, to_end=to_end, end_slack=2 * slack, meanwhile=meanwhile)
    except SeekMismatch:
        return None
    if to_end:  # the last piece ran to the file's end: the decoded length, not the header's
        n = spans[-1][0] + pieces[-1].size
        if n < config.min_samples or abs(n - header.duration_s * sr) > slack:
            return None
        spans[-1] = (spans[-1][0], n)
    # Drop each piece's margins (kept at the song's own start and end, which a full decode has too).
    trimmed = []
    for (a, b), samples in zip(spans, pieces):
        first = a if a == 0 else _ceil_to(a + margin, hop)
        last = b if b >= n else b - margin
        if last > first:
            trimmed.append((first, samples[first - a:last - a]))
    starts = song_window_starts(1 + n // hop, config, max_windows)
    excerpts = Excerpts(n, tuple(trimmed))
    try:
        for a, b in needed_spans(starts, config, n):
            excerpts.piece_of(a, b)
    except ValueError:
        return None
    if max(float(np.max(np.abs(s))) for _, s in trimmed) < SILENCE_PEAK:
        raise AudioError("the clip is silent")
    return Song(excerpts, starts, sr, header.duration_s, sought=True)


class _Once:
    """Runs a callback the first time it is called (the model loads once, whichever way the song is read)."""

    def __init__(self, callback: Callable[[], None] | None) -> None:
        self._callback = callback

    def __call__(self) -> None:
        callback, self._callback = self._callback, None
        if callback is not None:
            callback()


def _merge(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    merged: list[tuple[int, int]] = []
    for a, b in sorted(spans):
        if merged and a <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], b))
        else:
            merged.append((a, b))
    return merged


def _floor_to(x: int, step: int) -> int:
    return x // step * step


def _ceil_to(x: int, step: int) -> int:
    return -(-x // step) * step


__all__ = ["Song", "read_song"]
