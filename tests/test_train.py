"""genre_model.train: the musicnn recipe end to end on synthetic genres, cross-validation by artist,
sample weights and the logistic head."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from conftest import STYLES, encode, run_python, styled_dataset, styled_music as styled
from genre_model.dataset import Track
from genre_model.recipe import TrainOptions

pytestmark = pytest.mark.slow
SR = 16000
@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    return styled_dataset(tmp_path_factory.mktemp("styled"))


def test_sample_weights_balance_genres_and_artists() -> None:
    from genre_model.train import sample_weights

    tracks = [Track(Path(f"{i}.wav"), label, group) for i, (label, group) in
              enumerate([("a", "x")] * 6 + [("a", "y")] * 2 + [("b", "z")] * 2)]
    for weighting in ("class", "artist+class"):
        w = sample_weights(tracks, weighting)
        assert w.mean() == pytest.approx(1.0)
        assert w[:8].sum() == pytest.approx(w[8:].sum())  # every genre weighs the same
    w = sample_weights(tracks, "artist+class")
    assert w[:6].sum() == pytest.approx(w[6:8].sum())  # and every artist within a genre
    assert np.all(sample_weights(tracks, "none") == 1.0)


def test_embeddings_of_audio_are_cached_but_not_of_members_exported_windows(tmp_path: Path) -> None:
    """Exported corrections are members' data: no embedding of them may outlive the retrain."""
    from genre_model.features import FeatureConfig, extract_windows, save_windows
    from genre_model.train import embed_tracks

    class MeanEmbedder:  # stands in for musicnn: one number per window
        def predict(self, windows: np.ndarray, **_: object) -> np.ndarray:
            return windows.reshape(len(windows), -1).mean(axis=1, keepdims=True)

    features = FeatureConfig(sample_rate=SR, n_mels=32, window_frames=32)
    audio = encode(styled("metal", 6.0, 1), tmp_path / "metal.wav", SR)
    windows = tmp_path / "corr-1.npz"
    save_windows(windows, extract_windows(styled("classical", 6.0, 2), features)[0], features)
    tracks = [Track(audio, "metal", "a"), Track(windows, "classical", "corr-1")]
    cache = tmp_path / "cache"
    for _ in range(2):  # the second pass reads the audio's embedding back
        embs = embed_tracks(tracks, MeanEmbedder(), features, hop_frames=features.window_frames, max_seconds=60,
                            cache_dir=cache, tag="t")
        assert [e.shape[1] for e in embs] == [1, 1]
    assert len(list(cache.iterdir())) == 1, "only the audio file's embedding is cached"


def test_fit_logistic_is_the_standardised_sklearn_model() -> None:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from genre_model.train import fit_logistic

    rng = np.random.default_rng(0)
    x = rng.normal(size=(60, 8)) * rng.uniform(0.1, 10, 8) + rng.normal(size=8) * 5
    y = np.repeat([0, 2], 30)  # class 1 never seen
    head = fit_logistic(x, y, np.ones(60), n_classes=3, c=0.1)
    ref = make_pipeline(StandardScaler(), LogisticRegression(C=0.1, max_iter=5000)).fit(x, y)
    scores = head(x)
    np.testing.assert_allclose(scores[:, [0, 2]] - scores[:, [0, 2]].mean(1, keepdims=True),
                               ref.decision_function(x)[:, None] * [-0.5, 0.5], atol=1e-6)
    assert (scores.argmax(1) == ref.predict(x)).all() and (scores[:, 1] < -20).all()


def test_train_musicnn_end_to_end(dataset: Path, tmp_path: Path) -> None:
    from genre_model.artifact import load_info
    from genre_model.predict import Classifier, tags_speak_of
    from genre_model.train import train

    opts = TrainOptions(c=0.1, detector_clips=1, calibration_folds=2, cache_dir=tmp_path / "cache")
    info = train([dataset], tmp_path / "model", opts, version="styled-1", log=lambda m: None)
    assert load_info(tmp_path / "model").version == "styled-1" and info.detector and len(info.tags) == 50
    held = info.metrics["held_out"]
    assert held["n_tracks"] == 12 and held["split"] == "2 folds grouped by artist"
    assert held["accuracy"] >= 0.75, held  # new artists of three very different synthetic styles
    clf = Classifier(tmp_path / "model")
    for genre in STYLES:
        clip = encode(styled(genre, 6.0, seed=900 + len(genre)), tmp_path / f"new-{genre}.wav", SR)
        pred = clf.predict(clip)
        assert pred.music and pred.genre in STYLES
        if tags_speak_of(pred.genre, info.tags):  # MSD's tags have words for blues and metal, none for classical
            assert len(pred.tags) == 3 and pred.to_json("x")["tags"][0]["tag"] in info.tags
        else:
            assert pred.tags == [] and pred.genre == "classical"
    assert any(p.name.startswith("detector-set-") for p in (tmp_path / "cache").iterdir())  # cached for the next retrain


def test_train_cnn_end_to_end_serves_what_keras_learnt(dataset: Path, tmp_path: Path) -> None:
    """``--arch cnn`` (the original study's network) trains, keeps its standardisation in the
    artifact, and LiteRT serves a song as the exported Keras network scores it."""
    import keras

    from genre_model.artifact import load_head
    from genre_model.audio import load_audio
    from genre_model.features import extract_windows, normalise
    from genre_model.linear import softmax
    from genre_model.predict import Classifier
    from genre_model.train import train

    opts = TrainOptions(arch="cnn", epochs=2, batch_size=8, patience=2, detector_clips=1, seed=3)
    info = train([dataset], tmp_path / "model", opts, version="cnn-1", log=lambda m: None, verbose=0)
    assert info.arch == "cnn" and info.detector and info.training["epochs_run"] == 2
    assert len(info.features.norm_mean) == info.features.channels  # training statistics travel with the model
    assert info.metrics["held_out"]["split"] == "validation split"
    clf = Classifier(tmp_path / "model")
    song = encode(styled("metal", 6.0, seed=77), tmp_path / "metal.wav", SR)
    windows = extract_windows(load_audio(song, info.features.sample_rate), info.features)[0]
    served = clf.probabilities(windows)[0]
    embedder = keras.models.load_model(tmp_path / "model" / "embedder.keras")
    song_embedding = np.asarray(embedder.predict(normalise(windows, info.features), verbose=0)).mean(axis=0)
    learnt = softmax(load_head(info)(song_embedding[None, :]), info.temperature)[0]
    np.testing.assert_allclose(served, learnt, atol=1e-4)
    pred = clf.predict(song)
    assert pred.genre in STYLES or not pred.music


def test_cv_groups_by_artist_with_intervals(dataset: Path, tmp_path: Path) -> None:
    result = run_python(["-m", "genre_model.cli", "cv", str(dataset), "--folds", "2", "--seeds", "1,2", "--json",
                         "--c", "0.1", "--detector-clips", "1", "--calibration-folds", "2",
                         "--cache", str(tmp_path / "cache")], cwd=tmp_path, timeout=900)
    assert result.returncode == 0, result.stderr[-2000:]
    rep = json.loads(result.stdout)
    assert rep["grouping"] == "artist" and rep["seeds"] == [1, 2] and len(rep["fold_accuracy"]) == 4
    assert rep["n_tracks"] == 12
    low, high = rep["accuracy_ci"]
    assert 0.0 <= low <= rep["accuracy"] <= high <= 1.0
    assert len(rep["balanced_accuracy_ci"]) == 2
    text = run_python(["-m", "genre_model.cli", "cv", str(dataset), "--folds", "2", "--group-by", "track", "--c", "0.1",
                       "--detector-clips", "1", "--calibration-folds", "2", "--cache", str(tmp_path / "cache")],
                      cwd=tmp_path, timeout=900)
    assert text.returncode == 0, text.stderr[-2000:]
    assert "grouped by track" in text.stdout and "95% CI" in text.stdout
