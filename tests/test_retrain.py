"""genre_model.retrain: the fixed held-out set (by artist, by uploader/file), the reference, the verdict."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import run_python, styled_dataset, styled_music
from genre_model.dataset import ManifestRow, Track, load_dataset, write_manifest
from genre_model.retrain import (
    Progress, RetrainRequest, RetrainResult, fingerprint, holdout_split, not_worse, read_event,
)

pytestmark = pytest.mark.slow


def _corrections(n_groups: int) -> list[Track]:
    return [Track(Path(f"/x/corr-{g}-{i}.npz"), "rock", f"corr-{g}") for g in range(n_groups) for i in range(3)]


@pytest.fixture(scope="module")
def base(tmp_path_factory) -> Path:
    return styled_dataset(tmp_path_factory.mktemp("base"), per_genre=6, seconds=6.0)


def test_holdout_keeps_artists_and_uploaders_on_one_side_and_never_moves(base: Path) -> None:
    tracks = load_dataset(base)
    corrections = _corrections(40)
    learn, held = holdout_split(tracks, corrections)
    again = holdout_split(list(reversed(tracks)), list(reversed(corrections)))
    assert sorted(str(t.path) for t in held) == sorted(str(t.path) for t in again[1])  # fixed
    artists = lambda ts: {t.artist for t in ts if t.artist}  # noqa: E731
    assert artists(learn).isdisjoint(artists(held)) and artists(held)
    groups = lambda ts: {t.group for t in ts if t.is_windows}  # noqa: E731
    assert groups(learn).isdisjoint(groups(held))  # an uploader's (file's) corrections stay together
    assert 0.1 < len(groups(held)) / 40 < 0.35  # about a fifth held out
    # More corrections later: the groups held out before stay held out.
    assert groups(held) <= groups(holdout_split(tracks, _corrections(60))[1])


def test_fingerprint_names_the_set_not_its_order(base: Path) -> None:
    tracks = load_dataset(base)
    assert fingerprint(tracks[:5]) == fingerprint(tracks[4::-1]) != fingerprint(tracks[:4])


def test_not_worse_needs_both_figures() -> None:
    live = {"accuracy": 0.8, "balanced_accuracy": 0.7}
    assert not_worse({"accuracy": 0.8, "balanced_accuracy": 0.7}, live)[0]
    assert not not_worse({"accuracy": 0.9, "balanced_accuracy": 0.69}, live)[0]


def test_retrain_scores_candidate_against_a_fair_reference(base: Path, tmp_path: Path) -> None:
    """The live model heard the held-out songs, so the candidate is compared with the live recipe
    trained without them; the candidate records the held-out set for the next retrain."""
    from genre_model.artifact import load_info
    from genre_model.features import MUSICNN_FEATURES, extract_windows, save_windows
    from genre_model.recipe import TrainOptions
    from genre_model.train import train

    cache = tmp_path / "cache"
    opts = TrainOptions(c=0.1, detector_clips=1, calibration_folds=2, cache_dir=cache)
    live = tmp_path / "live"
    train([base], live, opts, version="live-1", log=lambda m: None)
    corrections = tmp_path / "corrections"
    rows = []
    for i in range(4):  # corrections from four uploaders: new metal songs
        samples = styled_music("metal", 6.0, seed=700 + i)
        windows, _ = extract_windows(samples, MUSICNN_FEATURES, hop_frames=93)
        path = corrections / "metal" / f"pred-{i}.npz"
        path.parent.mkdir(parents=True, exist_ok=True)
        save_windows(path, windows, MUSICNN_FEATURES)
        rows.append(ManifestRow(f"metal/pred-{i}.npz", "metal", f"corr-{i}", source="corrected"))
    write_manifest(corrections / "MANIFEST.csv", rows)
    out = tmp_path / "candidate"
    request = RetrainRequest(base=base, live=live, out=out, corrections=corrections, cache=cache)
    assert RetrainRequest.parse(request.argv()[3:]) == request  # written and read back by one module
    result = run_python(request.argv()[1:], cwd=tmp_path, timeout=900)
    events = [read_event(line) for line in result.stdout.splitlines()]
    assert result.returncode == 0, result.stderr[-3000:]
    verdict = events[-1]
    assert isinstance(verdict, RetrainResult) and verdict.reference_name == "reference", verdict
    assert verdict.candidate["n_tracks"] == verdict.reference["n_tracks"] > 0
    assert isinstance(verdict.promote, bool) and "held-out songs" in verdict.reason
    assert any("reference" in e.message for e in events if isinstance(e, Progress))
    learn, held = holdout_split(load_dataset(base), load_dataset(corrections))
    assert load_info(out).training["holdout_fingerprint"] == fingerprint(held)


def test_a_retrained_musicnn_candidate_keeps_the_live_real_sound_detector(tmp_path: Path) -> None:
    """train fits its detector on generated clips only; the live one learnt from real sounds on the
    same frozen embedder, so the candidate gets it back. Not across architectures."""
    import json
    import shutil

    import numpy as np

    from genre_model.artifact import load_detector, load_info, replace_detector
    from genre_model.config import DEFAULT_MODEL_DIR
    from genre_model.detector import SoundDetector
    from genre_model.linear import Linear
    from genre_model.retrain import keep_detector

    live = Path(shutil.copytree(DEFAULT_MODEL_DIR, tmp_path / "live"))
    candidate = Path(shutil.copytree(DEFAULT_MODEL_DIR, tmp_path / "candidate"))
    width = load_detector(load_info(live)).linear.n_features
    generated_only = SoundDetector(Linear(np.zeros((width, 4)), np.zeros(4)), ("music", "speech", "tone", "noise"))
    replace_detector(candidate, generated_only, generated_per_kind=20)
    assert keep_detector(live, candidate)
    kept, original = load_detector(load_info(candidate)), load_detector(load_info(live))
    assert kept.sounds == original.sounds and kept.threshold == original.threshold
    np.testing.assert_array_equal(kept.linear.weights, original.linear.weights)
    assert load_info(candidate).training["detector"]["kept_from"] == load_info(live).version

    replace_detector(candidate, generated_only)
    meta = json.loads((candidate / "metadata.json").read_text())
    meta["arch"] = "cnn"
    (candidate / "metadata.json").write_text(json.dumps(meta))
    assert not keep_detector(live, candidate)  # another embedder: the live detector would not fit it
    assert load_detector(load_info(candidate)).sounds == ("music", "speech", "tone", "noise")
    replace_detector(live, generated_only)
    assert not keep_detector(live, candidate)  # nothing learnt from real sounds to keep
