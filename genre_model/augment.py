"""Field copies of a training song: how it comes back when recorded away from the studio.

A song uploaded from the field is often a phone's recording of a loudspeaker across a room, or
a song played down a telephone line. Training may add, for every audio track, a copy of it made
that way (``TrainOptions.field_copies``), with the track's label and group, so a held-out fold
never sees a copy of a training track and the head and the sound detector learn that a
band-limited, echoing, noisy song is still that song. The copies are written by the decoder's
own ffmpeg (filters, resampling and an MP3 round trip), once per file and kept beside the
embedding cache.

The benchmark that measures field recordings (``benchmarks/bench_loudness.py --field``) uses
other cut-offs, echoes, noise and bit rates than these, so what it measures is not the copies
the model learnt from.
"""

from __future__ import annotations

import dataclasses
import hashlib
import subprocess
from pathlib import Path
from typing import Callable, Sequence

from pydub import AudioSegment

from genre_model.dataset import Track
from genre_model.errors import AudioError

#: The folder under an embedding cache where training keeps the copies.
CACHE_FOLDER = "field-copies"

#: ffmpeg output options that make each copy from the original file.
FIELD_COPIES: dict[str, list[str]] = {
    # a phone's microphone across a room: 110 Hz-9.5 kHz, three early echoes, 6 dB down, brown noise
    "room": ["-filter_complex", "[0:a]aformat=channel_layouts=mono,highpass=f=110,lowpass=f=9500,"
             "aecho=0.8:0.6:17|37|83:0.4|0.3|0.2,volume=-6dB[s];"
             "anoisesrc=color=brown:amplitude=0.02:seed=11[n];[s][n]amix=inputs=2:duration=first:normalize=0",
             "-ar", "32000", "-b:a", "96k"],
    # a telephone line: 250-3700 Hz at 8 kHz, a low bit rate
    "phone": ["-af", "highpass=f=250:poles=2,lowpass=f=3700:poles=2", "-ac", "1", "-ar", "8000", "-b:a", "24k"],
}


def check_names(names: tuple[str, ...] | list[str]) -> tuple[str, ...]:
    """``names`` as a tuple, or ValueError naming the unknown ones."""
    unknown = [n for n in names if n not in FIELD_COPIES]
    if unknown:
        raise ValueError(f"unknown field copy {', '.join(unknown)}; choose from {', '.join(FIELD_COPIES)}")
    return tuple(names)


def field_copy(source: Path, name: str, folder: Path) -> Path:
    """The ``name`` copy of ``source`` (an MP3 under ``folder/name/``), written the first time it is asked for.

    The file name carries a digest of the source's path, size and modification time, so an
    edited source gets a new copy. Raises :class:`AudioError` when ffmpeg cannot make it.
    """
    stat = source.stat()
    key = hashlib.sha256(f"{source.resolve()}|{stat.st_size}|{int(stat.st_mtime)}".encode()).hexdigest()[:16]
    target = folder / name / f"{source.stem}-{key}.mp3"
    if target.is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(".part.mp3")
    done = subprocess.run([AudioSegment.converter, "-nostdin", "-hide_banner", "-loglevel", "error", "-y",
                           "-i", str(source), *FIELD_COPIES[name], str(partial)], capture_output=True)
    if done.returncode != 0 or not partial.is_file():
        partial.unlink(missing_ok=True)
        raise AudioError(f"could not make the {name} copy of {source.name}")
    partial.replace(target)
    return target


def copies_of(tracks: Sequence[Track], names: Sequence[str], folder: Path,
              log: Callable[[str], None] = lambda msg: None) -> list[Track]:
    """Every ``names`` copy of every audio track (same label, group and artist; stored windows get
    none), made under ``folder`` by :func:`field_copy`; a copy ffmpeg cannot make is logged and left out."""
    out = []
    for name in names:
        for track in tracks:
            if track.is_windows:
                continue
            try:
                out.append(dataclasses.replace(track, path=field_copy(track.path, name, folder)))
            except AudioError as exc:
                log(f"no {name} copy: {exc}")
    return out
