"""genre_model.augment: field copies of training songs (a phone across a room, a telephone line),
and the trainer and detector refit that learn from them."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import numpy as np
import pytest

from conftest import encode, styled_music
from genre_model.augment import FIELD_COPIES, check_names, field_copy
from genre_model.audio import load_audio
from genre_model.dataset import Track
from genre_model.errors import AudioError
from genre_model.recipe import TrainOptions

SR = 16000


def band_energy(x: np.ndarray, lo: float, hi: float, sr: int = SR) -> float:
    spectrum = np.abs(np.fft.rfft(x)) ** 2
    f = np.fft.rfftfreq(len(x), 1 / sr)
    return float(spectrum[(f >= lo) & (f < hi)].sum() / spectrum.sum())


@pytest.fixture(scope="module")
def song(tmp_path_factory) -> Path:
    return encode(styled_music("metal", 8.0, seed=3), tmp_path_factory.mktemp("aug") / "metal.wav", SR)


def test_a_phone_copy_is_a_telephone_band_and_a_room_copy_is_still_the_song(song: Path, tmp_path: Path) -> None:
    original = load_audio(song, SR)
    phone = load_audio(field_copy(song, "phone", tmp_path), SR)
    room = load_audio(field_copy(song, "room", tmp_path), SR)
    assert abs(len(phone) - len(original)) < 0.1 * SR and abs(len(room) - len(original)) < 0.1 * SR
    assert band_energy(original, 4000, 8000) > 0.01, "the synthetic song has highs to lose"
    assert band_energy(phone, 4000, 8000) < 1e-4  # 8 kHz sampling: nothing above 4 kHz
    assert band_energy(phone, 0, 150) < 0.5 * band_energy(original, 0, 150)  # the line's low cut
    n = min(len(room), len(original))
    r = np.corrcoef(room[:n], original[:n])[0, 1]
    assert 0.3 < r < 0.999, r  # band-limited, echoing and noisy, but the same song, in time


def test_copies_are_made_once_and_named_after_their_source(song: Path, tmp_path: Path) -> None:
    first = field_copy(song, "room", tmp_path)
    made = first.stat().st_mtime_ns
    assert field_copy(song, "room", tmp_path) == first and first.stat().st_mtime_ns == made
    assert first.parent == tmp_path / "room" and first.name.startswith("metal-")
    os.utime(song, (song.stat().st_atime, song.stat().st_mtime + 10))  # an edited source gets a new copy
    assert field_copy(song, "room", tmp_path) != first
    assert not list(tmp_path.rglob("*.part.mp3"))


def test_an_unreadable_source_says_so(tmp_path: Path) -> None:
    bad = tmp_path / "bad.mp3"
    bad.write_bytes(b"not audio at all" * 10)
    with pytest.raises(AudioError, match="could not make the phone copy of bad.mp3"):
        field_copy(bad, "phone", tmp_path / "copies")
    assert not list((tmp_path / "copies").rglob("*.mp3"))


def test_the_recipe_names_copies_it_knows() -> None:
    assert set(FIELD_COPIES) == {"room", "phone"}
    assert TrainOptions(field_copies=["room", "phone"]).field_copies == ("room", "phone")  # as read from metadata
    with pytest.raises(ValueError, match="unknown field copy hall; choose from room, phone"):
        TrainOptions(field_copies=("hall",))
    assert check_names([]) == ()


def test_genre_model_takes_field_copies_on_the_command_line() -> None:
    from genre_model.cli import build_parser

    parser = build_parser()
    assert parser.parse_args(["train", "d", "--field-copies", "room,phone"]).field_copies == ("room", "phone")
    assert parser.parse_args(["cv", "d", "--field-copies", "none"]).field_copies == ()
    assert parser.parse_args(["fit-detector", "m", "--sounds", "s", "--field-copies", "phone"]).field_copies == ("phone",)
    with pytest.raises(SystemExit):
        parser.parse_args(["train", "d", "--field-copies", "hall"])


@pytest.mark.slow
def test_the_trainer_learns_from_copies_in_their_tracks_groups(tmp_path: Path) -> None:
    """Each audio track gets one copy per name, with its label and group (so no fold holds a copy
    of a track it tests on); stored windows get none; the model trains and its head has seen the
    copies (a phone copy of a training song is classified as the song's genre)."""
    from conftest import styled_dataset
    from genre_model.dataset import load_dataset
    from genre_model.train import Trainer, _grouping

    data = styled_dataset(tmp_path / "styled")
    opts = TrainOptions(c=0.1, detector_clips=1, calibration_folds=2, cache_dir=tmp_path / "cache",
                        field_copies=("phone",))
    trainer = Trainer(opts, log=lambda m: None)
    tracks = _grouping(trainer.usable(load_dataset(data)))
    windows = Track(tmp_path / "corr-1.npz", tracks[0].label, "corr-1")  # a member's exported windows
    copies = trainer.field_copies([*tracks, windows])
    assert len(copies) == len(tracks) and windows.path not in {c.path for c in copies}
    assert [(c.label, c.group) for c in copies] == [(t.label, t.group) for t in tracks]
    assert all(c.path.parent == tmp_path / "cache" / "field-copies" / "phone" for c in copies)
    fitted = trainer.fit(tracks)
    probs = trainer.probabilities(fitted, copies)
    right = np.mean(probs.argmax(axis=1) == [trainer.labels.index(c.label) for c in copies])
    assert right == 1.0, right
    plain = Trainer(dataclasses.replace(opts, field_copies=()), log=lambda m: None).fit(tracks)
    assert not np.allclose(plain.head.weights, fitted.head.weights), "the copies are in the head's data"
