"""Resident memory of one inference worker, against a librosa front end in the same run.

Each variant runs in a fresh process (as a pool worker does): load the classifier,
classify a synthetic 30 s clip, draw the image, then report RSS. The baseline computes
the same log-mel with ``librosa.feature.melspectrogram`` (which initialises numba/LLVM);
the shipped path uses genre_model's numpy front end (equal to librosa within 1e-4 dB,
see tests/test_features.py).

    .venv/bin/python benchmarks/bench_worker_memory.py [--model DIR]

Target: bot + 2 workers <= 400 MB resident at peak (issue 8), so a worker should stay near 150 MB.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

CHILD = r"""
import json, sys, numpy as np, psutil
from pathlib import Path
variant, model, clip = sys.argv[1], sys.argv[2], sys.argv[3]
proc = psutil.Process()
if variant == "librosa":
    import librosa
    import genre_model.features as features
    def librosa_log_mel(samples, config):
        power = librosa.feature.melspectrogram(y=samples, sr=config.sample_rate, n_fft=config.n_fft,
                                               hop_length=config.hop_length, n_mels=config.n_mels)
        return np.log10(10000.0 * power + 1.0, dtype=np.float32)[None]
    import genre_model.predict as predict
    predict.log_mel = librosa_log_mel
from genre_model.predict import Classifier
clf = Classifier(model, num_threads=1)
loaded = proc.memory_info().rss
pred = clf.predict(clip)
pred.image(clf.labels, "clip")
print(json.dumps({"variant": variant, "loaded_mb": loaded / 2**20, "after_predict_mb": proc.memory_info().rss / 2**20}))
"""


def main() -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    from testkit.audio import encode, synth_music

    from genre_model.config import DEFAULT_MODEL_DIR

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL_DIR)
    args = parser.parse_args()
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        clip = encode(synth_music(30.0, 44100, seed=1), Path(tmp) / "clip.mp3", 44100, "mp3")
        rows = []
        for variant in ("librosa", "numpy"):
            out = subprocess.run([sys.executable, "-c", CHILD, variant, str(args.model), str(clip)],
                                 capture_output=True, text=True, check=True)
            rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
    print(f"{'front end':<10} {'RSS loaded':>11} {'RSS after 30 s clip':>20}")
    for r in rows:
        print(f"{r['variant']:<10} {r['loaded_mb']:>8.0f} MB {r['after_predict_mb']:>17.0f} MB")


if __name__ == "__main__":
    main()
