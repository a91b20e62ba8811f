"""genre_model.evaluate: metrics by hand, temperature scaling, calibration error."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from genre_model.dataset import Track
from genre_model.errors import AudioError, DatasetError
from genre_model.evaluate import (
    TrackResult, expected_calibration_error, fit_temperature, format_report, metrics, report, score_tracks,
)

LABELS = ("a", "b", "c", "d")
#: Rows = true label, columns = predicted. "d" never occurs and is never predicted.
CONFUSION = np.array([
    [4, 2, 0, 0],
    [1, 3, 1, 0],
    [0, 1, 1, 0],
    [0, 0, 0, 0],
])


def _softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def _rows_from_confusion(confusion: np.ndarray, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    probs, targets = [], []
    for true in range(confusion.shape[0]):
        for pred in range(confusion.shape[1]):
            for _ in range(confusion[true, pred]):
                p = rng.uniform(0.0, 0.1, confusion.shape[1])
                p[pred] = 0.6
                probs.append(p / p.sum())
                targets.append(true)
    order = rng.permutation(len(targets))
    return np.array(probs)[order], np.array(targets)[order]


def test_metrics_by_hand() -> None:
    probs, targets = _rows_from_confusion(CONFUSION)
    m = metrics(probs, targets, LABELS)
    assert m["confusion"] == CONFUSION.tolist()
    assert m["n_tracks"] == 13
    assert m["labels"] == list(LABELS)
    assert m["accuracy"] == pytest.approx(8 / 13, abs=1e-4)
    # Precision = diagonal / column sum; recall = diagonal / row sum.
    expected = {
        "a": (4 / 5, 4 / 6, 6), "b": (3 / 6, 3 / 5, 5), "c": (1 / 2, 1 / 2, 2), "d": (0.0, 0.0, 0),
    }
    f1 = {}
    for label, (p, r, support) in expected.items():
        f1[label] = 2 * p * r / (p + r) if p + r else 0.0
        got = m["per_genre"][label]
        assert got["precision"] == pytest.approx(p, abs=1e-4)
        assert got["recall"] == pytest.approx(r, abs=1e-4)
        assert got["f1"] == pytest.approx(f1[label], abs=1e-4)
        assert got["support"] == support
    assert f1["a"] == pytest.approx(8 / 11) and f1["b"] == pytest.approx(6 / 11)
    # Genres absent from the evaluation data ("d") do not drag the averages down.
    assert m["balanced_accuracy"] == pytest.approx((4 / 6 + 3 / 5 + 1 / 2) / 3, abs=1e-4)
    assert m["macro_f1"] == pytest.approx((8 / 11 + 6 / 11 + 1 / 2) / 3, abs=1e-4)
    assert 0.0 <= m["ece"] <= 1.0


def test_metrics_perfect_and_empty() -> None:
    targets = np.array([0, 1, 2, 2])
    m = metrics(np.eye(3)[targets], targets, ("x", "y", "z"))
    assert m["accuracy"] == m["balanced_accuracy"] == m["macro_f1"] == 1.0
    assert m["ece"] == 0.0
    empty = metrics(np.zeros((0, 3)), np.zeros(0, dtype=int), ("x", "y", "z"))
    assert empty["n_tracks"] == 0 and empty["accuracy"] == 0.0


@pytest.mark.parametrize("t_true", [0.5, 1.0, 2.0, 4.0])
def test_fit_temperature_recovers_known_temperature(t_true: float) -> None:
    rng = np.random.default_rng(int(t_true * 10))
    logits = rng.normal(0.0, 3.0, size=(20_000, 10))
    probs = _softmax(logits / t_true)
    targets = (probs.cumsum(axis=1) > rng.uniform(size=(len(probs), 1))).argmax(axis=1)
    t = fit_temperature(logits, targets)
    assert abs(t - t_true) / t_true < 0.15


def test_fit_temperature_scales_with_logits() -> None:
    rng = np.random.default_rng(3)
    logits = rng.normal(0.0, 2.0, size=(5000, 5))
    targets = (_softmax(logits).cumsum(axis=1) > rng.uniform(size=(5000, 1))).argmax(axis=1)
    t1 = fit_temperature(logits, targets)
    t3 = fit_temperature(3.0 * logits, targets)
    assert t3 == pytest.approx(3.0 * t1, rel=1e-3)


def test_fit_temperature_rejects_mismatched_input() -> None:
    with pytest.raises(ValueError):
        fit_temperature(np.zeros((3, 4)), np.zeros(2, dtype=int))
    with pytest.raises(ValueError):
        fit_temperature(np.zeros((0, 4)), np.zeros(0, dtype=int))


def _sampled(probs: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    return (probs.cumsum(axis=1) > rng.uniform(size=(len(probs), 1))).argmax(axis=1)


def test_ece_small_when_calibrated_large_when_overconfident() -> None:
    rng = np.random.default_rng(0)
    logits = rng.normal(0.0, 2.0, size=(20_000, 10))
    true_probs = _softmax(logits)
    targets = _sampled(true_probs, rng)
    calibrated = expected_calibration_error(true_probs, targets)
    overconfident = expected_calibration_error(_softmax(4.0 * logits), targets)
    assert calibrated < 0.02
    assert overconfident > 0.2
    # Temperature scaling repairs the over-confident model.
    t = fit_temperature(4.0 * logits, targets)
    assert expected_calibration_error(_softmax(4.0 * logits / t), targets) < 0.02


def test_ece_by_hand() -> None:
    # Two bins: confidence 0.95 (4 rows, 3 right) and 0.55 (2 rows, both right).
    probs = np.array([[0.95, 0.05]] * 4 + [[0.55, 0.45]] * 2)
    targets = np.array([0, 0, 0, 1, 0, 0])
    expected = 4 / 6 * abs(0.75 - 0.95) + 2 / 6 * abs(1.0 - 0.55)
    assert expected_calibration_error(probs, targets) == pytest.approx(expected)


def test_report_and_score_tracks(tmp_path: Path) -> None:
    labels = ("rock", "jazz")
    tracks = [Track(tmp_path / f"{i}.wav", "rock" if i < 3 else "jazz", str(i)) for i in range(5)]
    outputs = {0: [0.9, 0.1], 1: [0.2, 0.8], 2: [0.6, 0.4], 3: [0.05, 0.95], 4: None}

    def probabilities_of(track: Track) -> np.ndarray:
        value = outputs[int(track.path.stem)]
        if value is None:
            raise AudioError("the clip is silent")
        return np.array(value)

    seen = []
    results, skipped = score_tracks(tracks, labels, probabilities_of, progress=lambda i, n: seen.append((i, n)))
    assert len(results) == 4 and skipped == [{"file": str(tmp_path / "4.wav"), "error": "the clip is silent"}]
    assert seen[-1] == (5, 5)
    rep = report(results, labels)
    assert rep["accuracy"] == 0.75
    assert rep["worst"] == [{"file": str(tmp_path / "1.wav"), "true": "rock", "predicted": "jazz",
                             "p_predicted": 0.8, "p_true": 0.2}]
    text = format_report(rep)
    assert "accuracy 0.750" in text and "1.wav: rock -> jazz (80%)" in text
    with pytest.raises(DatasetError):
        report([], labels)
    with pytest.raises(DatasetError, match="polka"):
        score_tracks([Track(tmp_path / "x.wav", "polka", "x")], labels, probabilities_of)


def test_track_result_is_plain_data() -> None:
    r = TrackResult("f.wav", "rock", np.array([1.0, 0.0]))
    assert r.label == "rock" and r.probabilities.shape == (2,)


def test_bootstrap_interval_brackets_the_estimate_and_narrows_with_data() -> None:
    from genre_model.evaluate import bootstrap_intervals

    rng = np.random.default_rng(3)

    def scored(n: int) -> tuple[np.ndarray, np.ndarray]:
        y = rng.integers(0, 4, n)
        guess = np.where(rng.random(n) < 0.75, y, rng.integers(0, 4, n))
        return np.eye(4)[guess], y

    small, large = scored(60), scored(2000)
    ci_small, ci_large = bootstrap_intervals(*small), bootstrap_intervals(*large)
    for (p, y), ci in ((small, ci_small), (large, ci_large)):
        m = metrics(p, y, ["a", "b", "c", "d"])
        assert ci["accuracy_ci"][0] <= m["accuracy"] <= ci["accuracy_ci"][1]
        assert ci["balanced_accuracy_ci"][0] <= m["balanced_accuracy"] <= ci["balanced_accuracy_ci"][1]
    width = lambda ci: ci["accuracy_ci"][1] - ci["accuracy_ci"][0]  # noqa: E731
    assert width(ci_large) < width(ci_small) / 3
    assert bootstrap_intervals(*small) == ci_small  # seeded: the same numbers every time
    perfect = bootstrap_intervals(np.eye(4)[small[1]], small[1])
    assert perfect == {"accuracy_ci": [1.0, 1.0], "balanced_accuracy_ci": [1.0, 1.0]}


def test_bootstrap_resamples_tracks_not_repeats() -> None:
    """Repeated CV scores a track several times; counting repeats as tracks would shrink the interval."""
    from genre_model.evaluate import bootstrap_intervals

    rng = np.random.default_rng(5)
    y = rng.integers(0, 3, 80)
    p = np.eye(3)[np.where(rng.random(80) < 0.7, y, (y + 1) % 3)]
    once = bootstrap_intervals(p, y)
    repeated = bootstrap_intervals(np.tile(p, (5, 1)), np.tile(y, 5), tracks=np.tile(np.arange(80), 5))
    naive = bootstrap_intervals(np.tile(p, (5, 1)), np.tile(y, 5))
    width = lambda ci: ci["accuracy_ci"][1] - ci["accuracy_ci"][0]  # noqa: E731
    assert abs(width(repeated) - width(once)) < 0.03
    assert width(naive) < width(once) * 0.6


def test_report_gives_intervals_and_counts_tracks_once() -> None:
    labels = ["a", "b"]
    results = [TrackResult(f"t{i % 10}", labels[i % 2], np.array([0.8, 0.2]) if i % 2 == 0 else np.array([0.3, 0.7]))
               for i in range(30)]
    rep = report(results, labels)
    assert rep["n_tracks"] == 10 and rep["accuracy"] == 1.0
    assert rep["accuracy_ci"] == [1.0, 1.0] and rep["balanced_accuracy_ci"] == [1.0, 1.0]
