"""The shipped model says "not music" for speech, tones and noise, and gives music a genre.

Clips are made here, independently of genre_model.sounds (which the detector was trained on):
a sine, a two-tone dial signal, a sweep, pink noise, and espeak-ng speech in a language and
voice the detector's training set does not use; the music is tests/conftest.py's synthesised band.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from conftest import encode, run_python, synth_music
from genre_model.predict import Classifier, tags_speak_of

SR = 22050


@pytest.fixture(scope="module")
def shipped() -> Classifier:
    return Classifier()


def _t(seconds: float) -> np.ndarray:
    return np.arange(int(seconds * SR)) / SR


def _pink(seconds: float, seed: int) -> np.ndarray:
    n = int(seconds * SR)
    spectrum = np.fft.rfft(np.random.default_rng(seed).standard_normal(n))
    spectrum[1:] /= np.sqrt(np.arange(1, len(spectrum)))
    return np.fft.irfft(spectrum, n)


CLIPS = {
    "sine 1 kHz": lambda: np.sin(2 * np.pi * 1000 * _t(8)),
    "dial tone": lambda: np.sin(2 * np.pi * 350 * _t(10)) + np.sin(2 * np.pi * 440 * _t(10)),
    "sweep": lambda: np.sin(2 * np.pi * (50 * _t(12) + 300 * _t(12) ** 2)),
    "pink noise": lambda: _pink(10, seed=3),
}


@pytest.mark.parametrize("name", sorted(CLIPS))
def test_tones_and_noise_are_not_music(shipped: Classifier, tmp_path: Path, name: str) -> None:
    x = CLIPS[name]()
    pred = shipped.predict(encode((0.5 * x / np.abs(x).max()).astype(np.float32), tmp_path / "clip.wav", SR))
    assert not pred.music and pred.genre is None
    assert pred.sound == ("noise" if "noise" in name else "tone")
    assert pred.verdict().endswith("not music") and pred.close_call() == []
    record = pred.to_json("clip.wav")
    assert record["music"] is False and record["genre"] is None and record["sound"] == pred.sound


def test_speech_is_not_music(shipped: Classifier, tmp_path: Path) -> None:
    assert shutil.which("espeak-ng"), "scripts/setup.sh installs espeak-ng"
    wav = tmp_path / "voice-note.wav"
    text = ("Hallo zusammen, hier ist eine kurze Sprachnachricht. Ich komme heute etwas später, "
            "weil der Zug wieder Verspätung hat. Bis gleich und danke für eure Geduld.")
    subprocess.run(["espeak-ng", "-v", "de+m7", "-s", "150", "-w", str(wav), text], check=True, capture_output=True)
    pred = shipped.predict(wav)
    assert pred.sound == "speech" and pred.genre is None
    assert pred.verdict() == "this sounds like speech, not music"


@pytest.mark.parametrize("seed", range(6))
def test_synthesised_bands_are_music(shipped: Classifier, tmp_path: Path, seed: int) -> None:
    pred = shipped.predict(encode(synth_music(12.0, SR, seed=seed), tmp_path / "band.wav", SR))
    assert pred.music and pred.genre in shipped.labels
    assert len(pred.tags) == (3 if tags_speak_of(pred.genre, shipped.info.tags) else 0)
    assert pred.to_json("band.wav")["timeline"][0]["genre"] in shipped.labels


def test_tags_are_shown_only_where_the_tag_list_speaks_of_the_genre() -> None:
    names = ("rock", "Hip-Hop", "dance", "instrumental", "beautiful")
    assert [g for g in ("rock", "hiphop", "disco", "classical", "reggae") if tags_speak_of(g, names)] == [
        "rock", "hiphop", "disco"]
    assert not tags_speak_of(None, names)


def test_not_music_has_no_genre_timeline_or_tags(shipped: Classifier, tmp_path: Path) -> None:
    t = np.arange(8 * SR) / SR
    record = shipped.predict(encode(0.5 * np.sin(2 * np.pi * 440 * t), tmp_path / "beep.wav", SR)).to_json("beep.wav")
    assert record["music"] is False and record["genre"] is None and record["tags"] == [] and record["segments"] == []
    assert record["timeline"] and all(set(w) == {"start_s", "end_s"} for w in record["timeline"])


def test_cli_says_it_in_words_and_exits_zero(tmp_path: Path) -> None:
    x = CLIPS["dial tone"]()
    clip = encode((0.5 * x / np.abs(x).max()).astype(np.float32), tmp_path / "dial.wav", SR)
    text = run_python(["-m", "genre_model.cli", "predict", str(clip)], cwd=tmp_path)
    assert text.returncode == 0 and "not music" in text.stdout, text.stderr
    data = run_python(["-m", "genre_model.cli", "predict", str(clip), "--json"], cwd=tmp_path)
    record = json.loads(data.stdout)
    assert data.returncode == 0 and record["music"] is False and record["genre"] is None
