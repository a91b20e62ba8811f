"""genre_model.sounds: the generated not-music sounds the detector learns from."""

from __future__ import annotations

import numpy as np
import pytest

from genre_model.errors import GenreModelError
from genre_model.sounds import GENERATORS, SOUND_KINDS, band, detector_set, espeak_available, speech

SR = 16000


@pytest.mark.parametrize("kind", sorted(GENERATORS))
def test_generators_make_bounded_signals_of_the_asked_length(kind: str) -> None:
    sound, make = GENERATORS[kind]
    assert sound in SOUND_KINDS
    x = make(4.0, SR, np.random.default_rng(1))
    assert x.shape == (4 * SR,) and np.isfinite(x).all() and np.abs(x).max() > 0
    y = make(4.0, SR, np.random.default_rng(1))
    assert np.array_equal(x, y)  # a seed makes the same clip


def test_tone_is_one_dominant_frequency() -> None:
    x = GENERATORS["tone"][1](2.0, SR, np.random.default_rng(3))
    spectrum = np.abs(np.fft.rfft(x))
    top = np.sort(spectrum)[::-1]
    assert top[0] > 5 * np.median(spectrum) and top[0] > 0.3 * spectrum.sum() / 20


def test_white_and_brown_noise_differ_in_slope() -> None:
    rng = np.random.default_rng(0)
    slopes = set()
    for _ in range(12):
        x = GENERATORS["noise"][1](2.0, SR, rng)
        spec = np.abs(np.fft.rfft(x)) ** 2
        low, high = spec[50:500].mean(), spec[5000:15000].mean()
        slopes.add(round(float(np.log10(low / high))))
    assert len(slopes) >= 3  # several colours, from flat to steep


def test_speech_is_synthesised_in_the_asked_length() -> None:
    assert espeak_available(), "scripts/setup.sh installs espeak-ng"
    x = speech(5.0, SR, np.random.default_rng(2), languages=("de",), voices=("f1",))
    assert x.shape == (5 * SR,) and np.abs(x).max() > 0.01


def test_sets_are_reproducible_and_heldout_differs() -> None:
    a = detector_set(2, SR, part="train", seed=4, seconds=(3.0, 4.0), with_speech=False)
    b = detector_set(2, SR, part="train", seed=4, seconds=(3.0, 4.0), with_speech=False)
    c = detector_set(2, SR, part="heldout", seed=4, seconds=(3.0, 4.0), with_speech=False)
    assert [x.kind for x in a] == [x.kind for x in b] and len(a) == 2 * len(GENERATORS) + 4
    assert [x.sound for x in a].count("music") == 4  # synthesised bands
    assert all(np.array_equal(x.samples, y.samples) for x, y in zip(a, b))
    assert not any(np.array_equal(x.samples, y.samples) for x, y in zip(a, c) if len(x.samples) == len(y.samples))
    for clip in a:
        assert clip.samples.dtype == np.float32 and np.abs(clip.samples).max() <= 1.0
        assert 3.0 * SR <= len(clip.samples) <= 4.0 * SR + 1
    with pytest.raises(ValueError):
        detector_set(1, SR, part="test")


def test_speech_without_espeak_says_how_to_get_it(monkeypatch) -> None:
    monkeypatch.setattr("shutil.which", lambda name: None)
    with pytest.raises(GenreModelError, match="apt-get install espeak-ng"):
        speech(3.0, SR, np.random.default_rng(0))


def test_band_has_a_beat_and_changing_notes() -> None:
    """A synthesised band is music by structure: energy pulses at the beat and the pitch content moves."""
    x = band(8.0, SR, np.random.default_rng(11))
    assert x.shape == (8 * SR,) and np.isfinite(x).all()
    frame = SR // 50
    energy = np.array([np.sum(x[i:i + frame] ** 2) for i in range(0, len(x) - frame, frame)])
    assert energy.max() > 4 * np.median(energy)  # onsets stand out
    spectra = [np.abs(np.fft.rfft(x[i:i + SR // 2])) for i in range(0, len(x) - SR // 2, SR // 2)]
    peaks = {int(np.argmax(s[20:1000])) for s in spectra}
    assert len(peaks) >= 4  # not one held tone
