"""Audio in: any common file format -> mono float32 samples at the model's rate.

One ffmpeg process per input does everything: it decodes, averages the channels,
resamples with SoX's resampler (libsoxr at its default 20-bit "HQ" quality, the same
numbers as the ``soxr`` package's ``HQ``) and writes raw float32 to a pipe. The
ffmpeg binary is the one pydub is configured with (``AudioSegment.converter``); pydub's
own ``from_file`` is not used because it always starts ffprobe first and cannot ask
ffmpeg for a rate or a channel count.

Long inputs are bounded: ffmpeg reads at most ``max_seconds`` and never decodes the
rest. :class:`Decoding` starts ffmpeg at once and collects the samples later, so a
caller can do other work (load a model) while the file decodes. Every way the input
can be unusable ends in one exception, :class:`~genre_model.errors.AudioError`,
whose message can be shown to a user.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Callable

import numpy as np
from pydub import AudioSegment

from genre_model.config import MAX_AUDIO_SECONDS, SILENCE_PEAK
from genre_model.errors import AudioError

log = logging.getLogger(__name__)

NOT_AUDIO = "this file is not audio I can read"
#: Temporary folders are named ``genre_model-<pid>-...`` so a killed process's can be found.
TEMP_PREFIX = "genre_model-"
#: ffmpeg's resampler: SoX's, unless this ffmpeg was built without libsoxr (then its own).
_resampler = "soxr"


class Decoding:
    """An ffmpeg process decoding one input (a path or the file's bytes); :meth:`samples` waits for it.

    Use it as a context manager, or call :meth:`samples` (which always cleans up).
    """

    def __init__(self, source: str | os.PathLike | bytes, sample_rate: int, *,
                 max_seconds: float = MAX_AUDIO_SECONDS) -> None:
        if sample_rate <= 0:
            raise ValueError(f"sample_rate must be positive, got {sample_rate}")
        if max_seconds <= 0:
            raise ValueError(f"max_seconds must be positive, got {max_seconds}")
        self.sample_rate = sample_rate
        self.max_seconds = float(max_seconds)
        self._scratch: str | None = None
        if isinstance(source, (bytes, bytearray, memoryview)):
            if len(source) == 0:
                raise AudioError("the file is empty")
            self._scratch = tempfile.mkdtemp(prefix=f"{TEMP_PREFIX}{os.getpid()}-")
            path = Path(self._scratch) / "input"
            path.write_bytes(source)
        else:
            path = Path(source)
            if path.is_dir():
                raise AudioError("a folder, not an audio file")
            if not path.is_file():
                raise AudioError(f"no such file: {path.name}")
            if path.stat().st_size == 0:
                raise AudioError("the file is empty")
        self._path = path.resolve()
        self._process: subprocess.Popen[bytes] | None = None
        self._errors = tempfile.TemporaryFile()
        try:
            self._process = self._start(_resampler)
        except BaseException:
            self.close()
            raise

    def _start(self, resampler: str) -> subprocess.Popen[bytes]:
        command = [
            AudioSegment.converter, "-nostdin", "-hide_banner", "-loglevel", "error",
            "-t", f"{self.max_seconds:.6f}", "-i", f"file:{self._path}",  # "file:" so no name is a protocol
            "-map", "0:a:0", "-ac", "1",
            # rematrix_maxval=1: the channel mean (ffmpeg's own mono downmix is 3 dB louder)
            "-af", f"aresample={self.sample_rate}:resampler={resampler}:rematrix_maxval=1",
            "-f", "f32le", "-c:a", "pcm_f32le", "pipe:1",
        ]
        self._errors.seek(0)
        self._errors.truncate()
        try:
            return subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=self._errors)
        except FileNotFoundError as exc:
            raise AudioError("ffmpeg is not installed on this machine") from exc

    def samples(self, *, min_seconds: float = 0.0) -> np.ndarray:
        """Mono float32 in [-1, 1]. Raises :class:`AudioError` when the input is not decodable audio,
        silent, or shorter than ``min_seconds``."""
        global _resampler
        try:
            raw, code = self._collect()
            if code != 0 and _resampler == "soxr" and b"resampling engine" in self._error_text():
                log.warning("this ffmpeg has no libsoxr; resampling with its own resampler instead")
                _resampler = "swr"
                self._process = self._start(_resampler)
                raw, code = self._collect()
            if code != 0 or len(raw) < 4:
                log.debug("ffmpeg failed (exit %s): %s", code, self._error_text()[-500:].decode(errors="replace"))
                raise AudioError(NOT_AUDIO)
        finally:
            self.close()
        samples = np.frombuffer(raw, dtype=np.float32, count=len(raw) // 4)
        samples = np.nan_to_num(np.clip(samples, -1.0, 1.0), copy=False)  # a copy: writable, raw is freed
        del raw
        samples = samples[: int(self.max_seconds * self.sample_rate)]
        duration = samples.size / self.sample_rate
        if duration < min_seconds:
            raise AudioError(f"clip is {duration:.1f} s; I need at least {min_seconds:.0f} s")
        if float(np.max(np.abs(samples))) < SILENCE_PEAK:
            raise AudioError("the clip is silent")
        return samples

    def _collect(self) -> tuple[bytes, int]:
        assert self._process is not None and self._process.stdout is not None
        with self._process.stdout:
            raw = self._process.stdout.read()
        return raw, self._process.wait()

    def _error_text(self) -> bytes:
        self._errors.seek(0)
        return self._errors.read()

    def close(self) -> None:
        """Stop ffmpeg if it still runs and delete the scratch copy of the input."""
        if self._process is not None and self._process.poll() is None:
            self._process.kill()
            self._process.wait()
        if self._process is not None and self._process.stdout is not None:
            self._process.stdout.close()
        self._errors.close()
        if self._scratch is not None:
            shutil.rmtree(self._scratch, ignore_errors=True)
            self._scratch = None

    def __enter__(self) -> "Decoding":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def load_audio(
    source: str | os.PathLike | bytes,
    sample_rate: int,
    *,
    max_seconds: float = MAX_AUDIO_SECONDS,
    min_seconds: float = 0.0,
) -> np.ndarray:
    """Decode ``source`` (a path or the file's bytes) to mono float32 in [-1, 1] at ``sample_rate``.

    At most ``max_seconds`` are read. Raises :class:`AudioError` when the input is
    empty, not decodable audio, silent, or shorter than ``min_seconds``.
    """
    return Decoding(source, sample_rate, max_seconds=max_seconds).samples(min_seconds=min_seconds)


@dataclasses.dataclass(frozen=True)
class Probe:
    """What a file's header says: its length, its sample rate, and whether ffmpeg seeks in it to the sample."""

    duration_s: float
    sample_rate: int
    seekable: bool


#: Formats whose samples after an ffmpeg seek are a full decode's (measured on MP3 CBR and VBR,
#: FLAC, Opus and WAV: equal to 1e-6 or better). Not among them: Ogg Vorbis (seeks landed up to
#: 12 samples at 16 kHz off in 2 of 10 tries) and MP4/M4A AAC (the samples after a seek differed
#: from the full decode's by up to 0.2 at every lag on a synthetic song); those are read whole.
_SEEKABLE = {"MP3", "FLAC", "OggOpus", "WAVE", "AIFF"}


def probe(path: str | os.PathLike) -> Probe | None:
    """The header's length and rate of an audio file (read by mutagen, in well under a millisecond
    for most files), or None when mutagen does not know the format or the header is unusable."""
    import mutagen

    try:
        found = mutagen.File(path)
    except Exception:  # mutagen raises its own error types (and struct/OS errors) on odd files
        return None
    info = getattr(found, "info", None)
    kind = type(found).__name__
    # Opus always decodes at 48 kHz (its header's "input rate" is only informative).
    duration, rate = getattr(info, "length", 0) or 0, 48000 if kind == "OggOpus" else getattr(info, "sample_rate", 0) or 0
    if not (np.isfinite(duration) and duration > 0 and rate > 0):
        return None
    seekable = kind in _SEEKABLE and not getattr(info, "sketchy", False)
    return Probe(float(duration), int(rate), seekable)


class SeekMismatch(Exception):
    """Pieces decoded after seeking did not come out the length asked for: read the file from the start."""


def decode_pieces(path: str | os.PathLike, sample_rate: int, spans: list[tuple[int, int]], *,
                  to_end: bool = False, end_slack: int = 0,
                  meanwhile: Callable[[], None] = lambda: None) -> list[np.ndarray]:
    """Samples ``[begin, end)`` (at ``sample_rate``) of each span, in one ffmpeg process with a
    seeking input per span and a raw output file per span.

    Each ``begin`` must be a whole multiple of the input and output sample periods (so the
    resampler's grid is the full decode's). With ``to_end``, the last span is read up to the end
    of the file, at most ``end_slack`` samples past its ``end``. Raises :class:`SeekMismatch` when a
    piece comes back another length than asked (a seek that missed), and :class:`AudioError` when
    ffmpeg fails. ``meanwhile`` runs while ffmpeg works.
    """
    scratch = tempfile.mkdtemp(prefix=f"{TEMP_PREFIX}{os.getpid()}-")
    try:
        command = [AudioSegment.converter, "-nostdin", "-hide_banner", "-loglevel", "error"]
        for i, (begin, end) in enumerate(spans):
            length = end - begin + (end_slack if to_end and i == len(spans) - 1 else 0)
            seek = ["-ss", f"{begin / sample_rate:.6f}"] if begin else []
            command += [*seek, "-t", f"{length / sample_rate:.6f}", "-i", f"file:{Path(path).resolve()}"]
        outputs = [Path(scratch) / f"{i}.f32" for i in range(len(spans))]
        for i, out in enumerate(outputs):
            command += ["-map", f"{i}:a:0", "-ac", "1",
                        "-af", f"aresample={sample_rate}:resampler={_resampler}:rematrix_maxval=1",
                        "-f", "f32le", "-c:a", "pcm_f32le", str(out)]
        try:
            process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                       stderr=subprocess.PIPE)
        except FileNotFoundError as exc:
            raise AudioError("ffmpeg is not installed on this machine") from exc
        try:
            meanwhile()
            errors = process.communicate()[1]
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
        if process.returncode != 0:
            log.debug("ffmpeg failed on pieces (exit %s): %s", process.returncode, errors[-500:])
            raise SeekMismatch(errors[-200:].decode(errors="replace"))
        pieces = []
        for i, ((begin, end), out) in enumerate(zip(spans, outputs)):
            samples = np.nan_to_num(np.clip(np.fromfile(out, dtype=np.float32), -1.0, 1.0), copy=False)
            last = to_end and i == len(spans) - 1
            if (samples.size != end - begin and not last) or (last and samples.size >= end - begin + end_slack):
                raise SeekMismatch(f"piece {i} has {samples.size} samples, not {end - begin}")
            pieces.append(samples)
        return pieces
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
