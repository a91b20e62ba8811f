"""Synthetic audio for tests and benchmarks: songs that sound like songs, three toy "genres",
and encoding to every format the bot accepts (ffmpeg through pydub).

Everything is made from a seed, so files are reproducible; nothing is read from disk or the network.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

#: name -> (file extension, pydub/ffmpeg muxer, ffmpeg codec or None)
FORMATS: dict[str, tuple[str, str, str | None]] = {
    "mp3": ("mp3", "mp3", None),
    "wav": ("wav", "wav", None),  # 16-bit PCM, written by pydub itself
    "wav24": ("wav", "wav", "pcm_s24le"),
    "wav_float": ("wav", "wav", "pcm_f32le"),  # ffmpeg writes WAVE_FORMAT_EXTENSIBLE + float subformat
    "ogg": ("ogg", "ogg", "libvorbis"),
    "opus": ("opus", "opus", "libopus"),
    "flac": ("flac", "flac", None),
    "m4a": ("m4a", "ipod", "aac"),
    "au": ("au", "au", None),
    "webm": ("webm", "webm", "libopus"),
}


#: Semitones above the key of the chords of a I-V-vi-IV progression (one chord per bar).
_PROGRESSION = ((0, 4, 7), (7, 11, 14), (9, 12, 16), (5, 9, 12))
#: The major pentatonic scale, in semitones: the melody's notes.
_PENTATONIC = (0, 2, 4, 7, 9, 12, 14, 16)


#: Harmonic amplitudes of sawtooth-like tones (pads, bass): rich, like instruments, unlike test tones.
_SAW8 = tuple(0.5 / k for k in range(1, 9))
_SAW6 = tuple(1.0 / k for k in range(1, 7))


def _note(freq: float, n: int, sr: int, harmonics: tuple[float, ...]) -> np.ndarray:
    """``n`` samples of a tone at ``freq`` with the given harmonic amplitudes."""
    t = np.arange(n) / sr
    return sum(a * np.sin(2 * np.pi * freq * k * t) for k, a in enumerate(harmonics, start=1))


def _envelope(n: int, sr: int, attack: float, decay: float) -> np.ndarray:
    """A short linear attack, then an exponential decay (``decay`` seconds to 1/e)."""
    t = np.arange(n) / sr
    return np.minimum(1.0, t / max(attack, 1e-4)) * np.exp(-t / decay)


def synth_music(seconds: float, sr: int = 22050, *, seed: int = 0, f0: float | None = None,
                bpm: float | None = None, channels: int = 1) -> np.ndarray:
    """A float32 signal in [-1, 1] that sounds like a song (a pop-style loop, so that the model's
    not-music detector hears music): drums (kick, snare, hi-hat), a plucked bass line and chord pads
    over a I-V-vi-IV progression, and a pentatonic melody, each note with its envelope.

    ``seed`` varies the key, tempo, melody and noise (``f0`` and ``bpm`` fix key and tempo), so
    different seeds give different files. Returns shape ``(n,)`` for mono, ``(n, channels)`` otherwise.
    """
    rng = np.random.default_rng(seed)
    n = int(round(seconds * sr))
    f0 = f0 if f0 is not None else float(rng.uniform(110.0, 330.0))
    f0 = f0 / 2 ** np.floor(np.log2(f0 / 110.0))  # the key, folded into one octave: instruments stay in range
    bpm = bpm if bpm is not None else float(rng.uniform(80.0, 150.0))
    beat = 60.0 / bpm
    x = np.zeros(n + sr)  # a second of room for the last notes' tails

    def add(start_s: float, sound: np.ndarray, gain: float) -> None:
        i = int(start_s * sr)
        if i < n:
            x[i:i + len(sound)] += gain * sound[: len(x) - i]

    melody = rng.choice(_PENTATONIC, size=64)  # a repeating 8-bar phrase of eighth notes
    for b in range(int(seconds / beat) + 1):
        start, chord = b * beat, _PROGRESSION[(b // 4) % 4]
        length = int(beat * sr)
        if b % 4 == 0:  # a chord pad per bar: three notes with a soft attack
            bar = int(4 * beat * sr)
            pad = sum(_note(f0 * 2 ** (s / 12), bar, sr, _SAW8) for s in chord)
            add(start, pad * _envelope(bar, sr, 0.08, 2.5 * beat), 0.10)
        if b % 2 == 0:  # bass: the chord's root, an octave down, plucked on beats 1 and 3
            root = f0 / 2 * 2 ** (chord[0] / 12)
            add(start, _note(root, 2 * length, sr, _SAW6) * _envelope(2 * length, sr, 0.005, 0.35), 0.30)
        # drums: kick on 1 and 3, snare on 2 and 4, hi-hat on every eighth note
        if b % 2 == 0:
            t = np.arange(int(0.25 * sr)) / sr
            kick = np.sin(2 * np.pi * (50 * t + 90 * (1 - np.exp(-t * 30)) / 30)) * np.exp(-t * 18)
            add(start, kick, 0.55)
        else:
            m = int(0.18 * sr)
            snare = (rng.standard_normal(m) + 0.6 * _note(190.0, m, sr, (1.0,))) * _envelope(m, sr, 0.001, 0.05)
            add(start, snare, 0.22)
        for half in (0, 1):
            m = int(0.05 * sr)
            hat = np.diff(rng.standard_normal(m + 1)) * _envelope(m, sr, 0.0005, 0.012)
            add(start + half * beat / 2, hat, 0.10)
            # melody: pentatonic eighth notes an octave up, some of them rests
            note = melody[(2 * b + half) % len(melody)]
            if (2 * b + half) % 5 != 4:
                m = int(beat / 2 * sr)
                tone = _note(2 * f0 * 2 ** (note / 12), m, sr, (0.6, 0.3, 0.2, 0.1, 0.05))
                add(start + half * beat / 2, tone * _envelope(m, sr, 0.01, 0.25), 0.18)
    x = x[:n] + 0.003 * rng.standard_normal(n)
    x = 0.8 * x / max(1e-9, float(np.max(np.abs(x))))
    x = x.astype(np.float32)
    if channels > 1:
        x = np.stack([x * (1.0 - 0.1 * c) for c in range(channels)], axis=1)
    return x


#: Three audibly different synthetic 'genres' (base pitch, beats per minute) for training tests.
STYLES = {"blues": (110.0, 70.0), "metal": (330.0, 170.0), "classical": (220.0, 0.0)}


def styled_music(genre: str, seconds: float, seed: int, sr: int = 16000) -> np.ndarray:
    """Three audibly different synthetic 'genres': slow low chords, fast loud buzz with drums, soft arpeggios."""
    rng = np.random.default_rng(seed)
    f0, bpm = STYLES[genre]
    f0 *= rng.uniform(0.9, 1.1)
    t = np.arange(int(seconds * sr)) / sr
    if genre == "metal":
        x = np.sign(np.sin(2 * np.pi * f0 * t)) * 0.4 + 0.3 * rng.standard_normal(len(t)) * (np.mod(t, 60 / bpm) < 0.05)
    elif genre == "classical":
        notes = f0 * 2 ** (np.array([0, 4, 7, 12]) / 12)
        x = np.sin(2 * np.pi * notes[(t * 4).astype(int) % 4] * t) * np.exp(-np.mod(t, 0.25) * 6)
    else:
        x = sum(np.sin(2 * np.pi * f0 * r * t) / (1 + k) for k, r in enumerate((1.0, 1.2, 1.5)))
        x *= 0.6 + 0.4 * (np.mod(t, 60 / bpm) < 0.1)
    return (0.8 * x / np.abs(x).max()).astype(np.float32)


def styled_dataset(root: Path, per_genre: int = 4, seconds: float = 7.0, sr: int = 16000) -> Path:
    """``root/<genre>/...wav`` for the three :data:`STYLES`, each genre by two artists, with a MANIFEST.csv
    (path, genre, artist) naming them."""
    import csv

    rows = []
    for genre in STYLES:
        for i in range(per_genre):
            path = encode(styled_music(genre, seconds, seed=100 * len(genre) + i, sr=sr), root / genre / f"{genre}-{i}.wav", sr)
            rows.append([str(path.relative_to(root)), genre, f"{genre}-artist-{i % 2}"])
    with (root / "MANIFEST.csv").open("w", newline="") as f:
        csv.writer(f).writerows([["path", "genre", "artist"], *rows])
    return root


def encode(samples: np.ndarray, path: Path, sr: int, fmt: str = "wav") -> Path:
    """Write float samples (mono or ``(n, ch)``) to ``path`` in one of :data:`FORMATS` via pydub/ffmpeg."""
    from pydub import AudioSegment

    _, muxer, codec = FORMATS[fmt]
    data = np.asarray(samples, dtype=np.float32)
    channels = 1 if data.ndim == 1 else data.shape[1]
    pcm = (np.clip(data, -1.0, 1.0) * 32767.0).astype("<i2").tobytes()
    segment = AudioSegment(data=pcm, sample_width=2, frame_rate=sr, channels=channels)
    path.parent.mkdir(parents=True, exist_ok=True)
    segment.export(str(path), format=muxer, codec=codec).close()
    return path
