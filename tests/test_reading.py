"""Reading a song: only the windows' pieces are decoded, and they give the full decode's numbers.

Every file is synthesised here (a 96-second stereo song at 44.1 kHz, like an upload) and encoded
with ffmpeg through pydub; the reference is always a full decode of the same file.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest

from genre_model.audio import load_audio, probe
from genre_model.config import DEFAULT_MODEL_DIR, coverage
from genre_model.errors import AudioError
from genre_model.features import song_features
from genre_model.predict import Classifier
from genre_model.reading import read_song
from testkit.audio import encode, synth_music

SR_IN = 44100
SECONDS = 96.0
#: The shipped model's features (musicnn's, levelled to -18 LUFS).
CFG = Classifier(DEFAULT_MODEL_DIR, lazy=True).info.features
#: The formats read by seeking; the pieces hold a full decode's samples (to ~1e-7), so windows
#: agree to this (log-mel units).
SOUGHT = ("mp3", "flac", "wav", "opus")
TOLERANCE = 1e-4


@pytest.fixture(scope="module")
def song_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("reading")
    samples = synth_music(SECONDS, SR_IN, seed=17, channels=2)
    return {fmt: encode(samples, root / f"song.{fmt}", SR_IN, fmt) for fmt in ("mp3", "flac", "wav", "opus", "m4a", "ogg")}


@pytest.fixture(scope="module")
def classifier() -> Classifier:
    return Classifier(DEFAULT_MODEL_DIR)


def _reference(path: Path, starts: np.ndarray) -> np.ndarray:
    full = load_audio(path, CFG.sample_rate)
    return song_features(full, CFG, starts, 3000)[0]


@pytest.mark.parametrize("fmt", SOUGHT)
def test_only_the_windows_pieces_are_decoded_and_they_equal_a_full_decode(song_files, classifier, fmt: str) -> None:
    path = song_files[fmt]
    song = read_song(path, CFG, 10)
    full = load_audio(path, CFG.sample_rate)
    assert song.sought, f"{fmt}: expected the pieces to be read by seeking"
    assert song.excerpts.n_samples == full.size  # the length is the decoded one, not the header's guess
    decoded = sum(samples.size for _, samples in song.excerpts.pieces)
    assert decoded < 0.5 * full.size  # ten 3-s windows of 96 s, not the whole song
    windows, overview, _ = song_features(song.excerpts, CFG, song.starts, 3000)
    reference = _reference(path, song.starts)
    assert np.abs(windows - reference).max() < TOLERANCE
    np.testing.assert_allclose(classifier.probabilities(windows)[0], classifier.probabilities(reference)[0], atol=1e-4)
    assert 0.4 < np.isnan(overview).mean() < 0.9  # the picture shows what was heard, nothing else
    assert song.file_seconds == pytest.approx(SECONDS, abs=0.1)


@pytest.mark.parametrize("fmt", ["ogg", "m4a"])
def test_vorbis_aac_and_short_songs_are_read_whole(song_files, tmp_path: Path, fmt: str) -> None:
    """ffmpeg's Vorbis seeks can land samples off, AAC decodes differently after one, and a short
    song's windows cover most of it: those are decoded from the start, as before."""
    song = read_song(song_files[fmt], CFG, 10)
    assert not song.sought and len(song.excerpts.pieces) == 1
    np.testing.assert_array_equal(song.excerpts.pieces[0][1], load_audio(song_files[fmt], CFG.sample_rate))
    assert song.file_seconds == pytest.approx(SECONDS, abs=0.1)
    short = encode(synth_music(30.0, SR_IN, seed=3), tmp_path / "short.mp3", SR_IN, "mp3")
    assert not read_song(short, CFG, 10).sought


def test_bytes_are_read_like_the_file(song_files) -> None:
    by_path = read_song(song_files["mp3"], CFG, 10)
    by_bytes = read_song(song_files["mp3"].read_bytes(), CFG, 10)
    assert by_bytes.sought and by_bytes.excerpts.n_samples == by_path.excerpts.n_samples
    np.testing.assert_array_equal(by_bytes.starts, by_path.starts)
    for (a, x), (b, y) in zip(by_path.excerpts.pieces, by_bytes.excerpts.pieces):
        assert a == b
        np.testing.assert_array_equal(x, y)


def test_a_header_that_overstates_the_length_is_not_trusted(song_files, tmp_path: Path) -> None:
    """A VBR MP3 cut short keeps a header saying 96 s: the reader notices and decodes what is there."""
    vbr = tmp_path / "vbr.mp3"
    subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-i", str(song_files["wav"]), "-c:a", "libmp3lame",
                    "-q:a", "4", str(vbr)], check=True)
    cut = tmp_path / "cut.mp3"
    cut.write_bytes(vbr.read_bytes()[: int(vbr.stat().st_size * 0.6)])
    header = probe(cut)
    assert header is not None and header.duration_s == pytest.approx(SECONDS, abs=0.1)
    song = read_song(cut, CFG, 10)
    full = load_audio(cut, CFG.sample_rate)
    assert not song.sought and song.excerpts.n_samples == full.size < 0.7 * SECONDS * CFG.sample_rate


def test_max_seconds_bounds_what_is_analysed_and_the_file_length_is_still_told(song_files, classifier) -> None:
    song = read_song(song_files["flac"], CFG, 10, max_seconds=40.0)
    assert song.seconds == pytest.approx(40.0, abs=0.01)
    assert song.file_seconds == pytest.approx(SECONDS, abs=0.1)
    prediction = classifier.predict(song_files["flac"], max_seconds=40.0)
    assert prediction.duration_s == pytest.approx(40.0, abs=0.01) and prediction.file_s == pytest.approx(SECONDS, abs=0.1)
    assert max(seg.end_s for seg in prediction.timeline) <= 40.0
    assert coverage(prediction.analysed_s, prediction.duration_s, prediction.n_windows, prediction.file_s) == \
        "30 s of the first 40 s of 1:36 (10 windows)"


def test_a_long_silent_file_is_refused_as_silent(tmp_path: Path) -> None:
    silent = encode(np.zeros(int(120 * 16000), np.float32), tmp_path / "silence.flac", 16000, "flac")
    with pytest.raises(AudioError, match="silent"):
        read_song(silent, CFG, 10)


def test_the_prediction_of_a_long_file_is_the_full_decodes(song_files, classifier) -> None:
    """End to end: predict() on pieces gives the probabilities of windows cut from a full decode."""
    prediction = classifier.predict(song_files["mp3"])
    song = read_song(song_files["mp3"], CFG, 10)
    reference = classifier.probabilities(_reference(song_files["mp3"], song.starts))[0]
    np.testing.assert_allclose(prediction.probabilities_array(classifier.labels), reference, atol=1e-4)
    assert prediction.duration_s == pytest.approx(SECONDS, abs=0.1) and prediction.n_windows == 10
