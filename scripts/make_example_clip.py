"""Synthesise the bundled example clip (ours, free to redistribute): 12 s of drums, bass and chords.

    python scripts/make_example_clip.py genre_model/examples/example.ogg
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from pydub import AudioSegment

SR = 22050
BPM = 96.0


def tone(freq: float, seconds: float, decay: float) -> np.ndarray:
    t = np.arange(int(seconds * SR)) / SR
    wave = sum(np.sin(2 * np.pi * freq * k * t) / k ** 1.5 for k in range(1, 6))
    return wave * np.exp(-t * decay)


def clip(seconds: float = 12.0, seed: int = 7) -> np.ndarray:
    rng = np.random.default_rng(seed)
    out = np.zeros(int(seconds * SR))
    beat = 60.0 / BPM
    chords = [(220.0, 277.2, 329.6), (196.0, 246.9, 293.7), (174.6, 220.0, 261.6), (196.0, 246.9, 293.7)]
    for i in range(int(seconds / beat)):
        start = int(i * beat * SR)
        t = np.arange(int(0.25 * SR)) / SR
        kick = np.sin(2 * np.pi * (50 + 80 * np.exp(-t * 30)) * t) * np.exp(-t * 12)
        if i % 2 == 0:
            out[start:start + kick.size] += 0.9 * kick[: out.size - start]
        else:  # snare: noise burst
            snare = rng.standard_normal(int(0.2 * SR)) * np.exp(-np.arange(int(0.2 * SR)) / SR * 25)
            out[start:start + snare.size] += 0.35 * snare[: out.size - start]
        hat_at = start + int(beat * SR / 2)
        hat = rng.standard_normal(int(0.05 * SR)) * np.exp(-np.arange(int(0.05 * SR)) / SR * 80)
        out[hat_at:hat_at + hat.size] += 0.15 * hat[: max(0, out.size - hat_at)]
        chord = chords[(i // 4) % 4]
        bass = 0.35 * tone(chord[0] / 2, beat, 4.0)
        out[start:start + bass.size] += bass[: out.size - start]
        if i % 4 == 0:
            pad = sum(0.12 * tone(f, 4 * beat, 0.8) for f in chord)
            out[start:start + pad.size] += pad[: out.size - start]
    return (0.8 * out / np.max(np.abs(out))).astype(np.float32)


def main(path: str) -> None:
    pcm = (clip() * 32767).astype("<i2").tobytes()
    AudioSegment(data=pcm, sample_width=2, frame_rate=SR, channels=1).export(path, format="ogg", codec="libvorbis")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else str(Path("genre_model/examples/example.ogg")))
