"""How well the model tells music from speech, tones and noise, through the serving path.

    python benchmarks/bench_sound_detector.py [--model DIR] [--per-kind 10] [--music DIR ...] [--other DIR ...]

* generated sounds the detector was **not** trained on: :func:`genre_model.sounds.detector_set`'s
  ``heldout`` part (other seeds; speech in other languages and voices; synthesised bands);
* ``--music``: folders of real songs (any format), each of which should be called music;
* ``--other``: folders of real recordings that are not music (sound effects, voice clips).

Each clip is written to a WAV and classified with :meth:`Classifier.predict`, as an upload
would be. Prints, per kind, how many were called what, and lists the real songs called
"not music" (the worst mistake). A script, not a test: it prints figures.
"""

from __future__ import annotations

import argparse
import io
import sys
from collections import Counter, defaultdict
from pathlib import Path


import numpy as np  # noqa: E402

from genre_model.config import AUDIO_EXTENSIONS, DEFAULT_MODEL_DIR  # noqa: E402
from genre_model.errors import AudioError  # noqa: E402
from genre_model.predict import Classifier  # noqa: E402
from genre_model.sounds import detector_set  # noqa: E402


def wav_bytes(samples: np.ndarray, sr: int) -> bytes:
    import soundfile as sf

    buffer = io.BytesIO()
    sf.write(buffer, samples, sr, format="WAV", subtype="PCM_16")
    return buffer.getvalue()


def files(folders: list[Path]) -> list[Path]:
    return sorted(p for d in folders for p in d.resolve().rglob("*") if p.suffix.lower() in AUDIO_EXTENSIONS + (".oga",))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL_DIR)
    parser.add_argument("--per-kind", type=int, default=10, help="held-out generated clips of each kind")
    parser.add_argument("--music", type=Path, nargs="*", default=[], help="folders of real songs")
    parser.add_argument("--other", type=Path, nargs="*", default=[], help="folders of real non-music recordings")
    args = parser.parse_args()
    clf = Classifier(args.model)
    sr = 16000
    said: dict[str, Counter] = defaultdict(Counter)
    for clip in detector_set(args.per_kind, sr, part="heldout", seed=2026):
        said[f"generated {clip.kind} ({clip.sound})"][clf.predict(wav_bytes(clip.samples, sr)).sound] += 1
    wrongly_flagged = []
    for label, folders in (("real music", args.music), ("real non-music", args.other)):
        for path in files(folders):
            try:
                sound = clf.predict(path).sound
            except AudioError:  # e.g. a sound effect shorter than one window
                said[label]["(too short or unreadable)"] += 1
                continue
            said[label][sound] += 1
            if label == "real music" and sound != "music":
                wrongly_flagged.append(f"{path} -> {sound}")
    print(f"model {clf.version}; a clip is music unless P(music) < {clf.info.detector['threshold'] if clf.info.detector else '-'}")
    print(f"{'kind':<36} {'n':>4}  {'called music':>12}  other answers")
    not_music_caught = not_music_total = 0
    for kind, counts in said.items():
        n = sum(v for k, v in counts.items() if not k.startswith("("))
        music = counts["music"]
        rest = ", ".join(f"{k} {v}" for k, v in counts.most_common() if k != "music")
        print(f"{kind:<36} {n:>4}  {music:>12}  {rest}")
        if kind.startswith("generated") and "(music)" not in kind:
            not_music_caught += n - music
            not_music_total += n
    if not_music_total:
        print(f"\ngenerated non-music caught: {not_music_caught}/{not_music_total} "
              f"({not_music_caught / not_music_total:.1%})")
    if args.music:
        print(f"real songs called not music: {len(wrongly_flagged)}")
        for line in wrongly_flagged:
            print("  " + line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
