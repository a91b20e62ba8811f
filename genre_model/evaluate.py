"""Track-level evaluation: accuracy, balanced accuracy, F1, confusion, calibration.

Pure numpy on (true label, probability vector) pairs, so the same code scores a
LiteRT artifact (``genre-model evaluate``), a cross-validation fold, or a retrain
candidate against the live model.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from genre_model.dataset import Track
from genre_model.errors import AudioError, DatasetError


@dataclasses.dataclass
class TrackResult:
    """One scored track."""

    path: str
    label: str
    probabilities: np.ndarray


def fit_temperature(logits: np.ndarray, targets: np.ndarray) -> float:
    """Temperature minimising the negative log-likelihood of ``softmax(logits / T)``.

    Golden-section search on log T in [1/20, 20]; a standard post-hoc calibration
    (Guo et al. 2017) that changes confidence, never the ranking.
    """
    logits = np.asarray(logits, dtype=np.float64)
    targets = np.asarray(targets, dtype=np.int64)
    if logits.ndim != 2 or logits.shape[0] != targets.shape[0] or logits.shape[0] == 0:
        raise ValueError("need one row of logits per target")

    def nll(log_t: float) -> float:
        z = logits / np.exp(log_t)
        z = z - z.max(axis=1, keepdims=True)
        log_p = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
        return float(-log_p[np.arange(len(targets)), targets].mean())

    lo, hi = np.log(1 / 20), np.log(20.0)
    ratio = (np.sqrt(5) - 1) / 2
    a, b = hi - ratio * (hi - lo), lo + ratio * (hi - lo)
    fa, fb = nll(a), nll(b)
    for _ in range(60):
        if fa < fb:
            hi, b, fb = b, a, fa
            a = hi - ratio * (hi - lo)
            fa = nll(a)
        else:
            lo, a, fa = a, b, fb
            b = lo + ratio * (hi - lo)
            fb = nll(b)
    return float(np.exp((lo + hi) / 2))


def expected_calibration_error(probabilities: np.ndarray, targets: np.ndarray, n_bins: int = 10) -> float:
    """ECE: mean |accuracy - confidence| over equal-width confidence bins, weighted by size."""
    probabilities = np.asarray(probabilities)
    confidence = probabilities.max(axis=1)
    correct = probabilities.argmax(axis=1) == np.asarray(targets)
    bins = np.minimum((confidence * n_bins).astype(int), n_bins - 1)
    ece = 0.0
    for b in range(n_bins):
        mask = bins == b
        if mask.any():
            ece += mask.mean() * abs(correct[mask].mean() - confidence[mask].mean())
    return float(ece)


def metrics(probabilities: np.ndarray, targets: np.ndarray, labels: Sequence[str]) -> dict[str, Any]:
    """Accuracy, balanced accuracy, macro F1, per-genre P/R/F1, confusion and ECE."""
    probabilities = np.asarray(probabilities, dtype=np.float64)
    targets = np.asarray(targets, dtype=np.int64)
    n = len(labels)
    predicted = probabilities.argmax(axis=1)
    confusion = np.zeros((n, n), dtype=np.int64)
    np.add.at(confusion, (targets, predicted), 1)
    per_genre: dict[str, dict[str, float]] = {}
    recalls, f1s = [], []
    for i, label in enumerate(labels):
        tp = confusion[i, i]
        support = int(confusion[i].sum())
        precision = tp / confusion[:, i].sum() if confusion[:, i].sum() else 0.0
        recall = tp / support if support else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        per_genre[label] = {"precision": round(float(precision), 4), "recall": round(float(recall), 4),
                            "f1": round(float(f1), 4), "support": support,
                            "predicted": int(confusion[:, i].sum())}
        if support:
            recalls.append(recall)
            f1s.append(f1)
    return {
        "n_tracks": int(len(targets)),
        "accuracy": round(float((predicted == targets).mean()), 4) if len(targets) else 0.0,
        "balanced_accuracy": round(float(np.mean(recalls)), 4) if recalls else 0.0,
        "macro_f1": round(float(np.mean(f1s)), 4) if f1s else 0.0,
        "ece": round(expected_calibration_error(probabilities, targets), 4) if len(targets) else 0.0,
        "labels": list(labels),
        "per_genre": per_genre,
        "confusion": confusion.tolist(),
    }


def bootstrap_intervals(probabilities: np.ndarray, targets: np.ndarray, *, tracks: Sequence[int] | None = None,
                        n_resamples: int = 2000, level: float = 0.95, seed: int = 0) -> dict[str, list[float]]:
    """Percentile bootstrap intervals for accuracy and balanced accuracy, resampling *tracks*.

    ``tracks`` gives each row's track index when a track has several rows (repeated
    cross-validation): a resampled track brings all its rows. Returns
    ``{"accuracy_ci": [low, high], "balanced_accuracy_ci": [low, high]}``.
    """
    predicted = np.asarray(probabilities).argmax(axis=1)
    targets = np.asarray(targets, dtype=np.int64)
    track_of = np.arange(len(targets)) if tracks is None else np.asarray(tracks)
    ids, track_of = np.unique(track_of, return_inverse=True)
    n_tracks, n_classes = len(ids), int(targets.max()) + 1 if len(targets) else 0
    # Per track and class: rows, and correct rows (a track keeps one label across repeats).
    rows = np.zeros((n_tracks, n_classes))
    hits = np.zeros((n_tracks, n_classes))
    np.add.at(rows, (track_of, targets), 1.0)
    np.add.at(hits, (track_of, targets), (predicted == targets).astype(float))
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, n_tracks, size=(n_resamples, n_tracks))
    weights = np.zeros((n_resamples, n_tracks))
    np.add.at(weights, (np.arange(n_resamples)[:, None], draws), 1.0)
    class_rows, class_hits = weights @ rows, weights @ hits
    accuracy = class_hits.sum(axis=1) / class_rows.sum(axis=1)
    present = class_rows > 0
    recall = np.divide(class_hits, class_rows, out=np.zeros_like(class_hits), where=present)
    balanced = recall.sum(axis=1) / present.sum(axis=1)
    tail = (1.0 - level) / 2 * 100
    interval = lambda x: [round(float(v), 4) for v in np.percentile(x, [tail, 100 - tail])]  # noqa: E731
    return {"accuracy_ci": interval(accuracy), "balanced_accuracy_ci": interval(balanced)}


def worst_misclassifications(results: Sequence[TrackResult], labels: Sequence[str], k: int = 10) -> list[dict]:
    """The ``k`` wrong predictions made with the most confidence."""
    index = {label: i for i, label in enumerate(labels)}
    wrong = []
    for r in results:
        guess = int(np.argmax(r.probabilities))
        if guess != index[r.label]:
            wrong.append({"file": r.path, "true": r.label, "predicted": labels[guess],
                          "p_predicted": round(float(r.probabilities[guess]), 4),
                          "p_true": round(float(r.probabilities[index[r.label]]), 4)})
    return sorted(wrong, key=lambda w: -w["p_predicted"])[:k]


def score_tracks(tracks: Sequence[Track], labels: Sequence[str],
                 probabilities_of: Callable[[Track], np.ndarray | None],
                 progress: Callable[[int, int], None] | None = None) -> tuple[list[TrackResult], list[dict]]:
    """Run ``probabilities_of`` on every track; unusable tracks are reported, not fatal. A track for
    which it returns None was set aside by the caller (e.g. judged not music): neither scored nor skipped."""
    results, skipped = [], []
    for i, track in enumerate(tracks):
        if track.label not in labels:
            raise DatasetError(f"{track.path.name}: genre {track.label!r} is not one the model knows")
        try:
            probabilities = probabilities_of(track)
            if probabilities is not None:
                results.append(TrackResult(str(track.path), track.label, probabilities))
        except (AudioError, DatasetError) as exc:
            skipped.append({"file": str(track.path), "error": str(exc)})
        if progress:
            progress(i + 1, len(tracks))
    return results, skipped


def report(results: Sequence[TrackResult], labels: Sequence[str]) -> dict[str, Any]:
    """Metrics, 95 % bootstrap intervals and the worst misclassifications for scored tracks.

    A track scored more than once (repeated cross-validation) counts once per score in the
    metrics, and is resampled as one unit for the intervals.
    """
    if not results:
        raise DatasetError("no track could be scored")
    index = {label: i for i, label in enumerate(labels)}
    probs = np.stack([r.probabilities for r in results])
    targets = np.array([index[r.label] for r in results])
    track_ids = {path: i for i, path in enumerate(dict.fromkeys(r.path for r in results))}
    out = metrics(probs, targets, labels)
    out.update(bootstrap_intervals(probs, targets, tracks=[track_ids[r.path] for r in results]))
    out["n_tracks"] = len(track_ids)
    out["worst"] = worst_misclassifications(results, labels)
    return out


def format_report(rep: dict[str, Any]) -> str:
    """Human-readable summary of :func:`report`'s output."""
    def with_ci(name: str) -> str:
        low, high = rep[f"{name}_ci"]
        return f"{rep[name]:.3f} (95% CI {low:.3f}-{high:.3f})"

    lines = [f"tracks {rep['n_tracks']}  accuracy {with_ci('accuracy')}  balanced {with_ci('balanced_accuracy')}",
             f"macro-F1 {rep['macro_f1']:.3f}  ECE {rep['ece']:.3f}", "",
             f"{'genre':<10} {'prec':>6} {'recall':>6} {'f1':>6} {'n':>4}"]
    for label, m in rep["per_genre"].items():
        if not m["support"] and not m.get("predicted", 1):  # a genre neither in the data nor predicted
            continue
        lines.append(f"{label:<10} {m['precision']:>6.2f} {m['recall']:>6.2f} {m['f1']:>6.2f} {m['support']:>4}")
    if rep.get("worst"):
        lines += ["", "most confident mistakes:"]
        lines += [f"  {Path(w['file']).name}: {w['true']} -> {w['predicted']} ({w['p_predicted']:.0%})"
                  for w in rep["worst"]]
    return "\n".join(lines)
