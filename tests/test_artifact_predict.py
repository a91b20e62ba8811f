"""Artifacts, the LiteRT Classifier, the prediction image and the command line.

Uses the session's tiny untrained model (``tiny_model_dir``, built with TensorFlow once),
so every test here carries the ``slow`` marker.
"""

from __future__ import annotations

import json
import shutil
import struct
from pathlib import Path

import numpy as np
import pytest

from conftest import TINY_FEATURES, encode, run_python, synth_music
from genre_model.artifact import FILES, METADATA, load_info, sha256
from genre_model.config import GENRES
from genre_model.errors import ArtifactError, AudioError
from genre_model.features import extract_windows, save_windows

pytestmark = pytest.mark.slow

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
JSON_KEYS = {"file", "music", "sound", "genre", "close_call", "probabilities", "tags", "timeline", "segments",
             "duration_s", "analysed_s", "file_s", "music_p", "doubtful", "n_windows",
             "model_version"}
SEGMENT_KEYS = {"start_s", "end_s", "genre", "p"}


@pytest.fixture(scope="module")
def classifier(tiny_model_dir: Path):
    from genre_model.predict import Classifier

    return Classifier(tiny_model_dir)


@pytest.fixture
def model_copy(tiny_model_dir: Path, tmp_path: Path) -> Path:
    """A private copy of the tiny model that a test may damage."""
    return Path(shutil.copytree(tiny_model_dir, tmp_path / "model"))


@pytest.fixture(scope="module")
def song(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return encode(synth_music(7.0, 44100, seed=21), tmp_path_factory.mktemp("songs") / "song.wav", 44100, "wav")


def _png_size(png: bytes) -> tuple[int, int]:
    assert png[:8] == PNG_MAGIC
    return struct.unpack(">II", png[16:24])


# --- artifact metadata ---------------------------------------------------------------

def test_load_info_round_trip(tiny_model_dir: Path) -> None:
    info = load_info(tiny_model_dir)
    assert info.labels == GENRES
    assert info.features == TINY_FEATURES
    assert info.features.fingerprint() == TINY_FEATURES.fingerprint()
    assert info.temperature == 1.5
    assert info.arch == "cnn"
    assert info.version == "test-tiny"
    assert info.training["epochs"] == 0 and info.metrics == {"accuracy": 0.1}
    assert set(info.checksums) == set(FILES)
    for name in FILES:
        assert info.path(name).is_file()
        assert info.checksums[name] == sha256(info.path(name))
    assert not any(p.name.startswith(".") for p in tiny_model_dir.parent.iterdir())  # no staging left over


def test_corrupted_file_is_detected(model_copy: Path) -> None:
    from genre_model.predict import Classifier

    path = model_copy / "head.npz"
    data = bytearray(path.read_bytes())
    for i in range(100, 110):
        data[i] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(ArtifactError, match="corrupt"):
        load_info(model_copy)
    with pytest.raises(ArtifactError, match="corrupt"):
        Classifier(model_copy)
    assert load_info(model_copy, verify=False).labels == GENRES  # metadata itself is fine


def test_missing_file(model_copy: Path) -> None:
    (model_copy / "embedder.tflite").unlink()
    with pytest.raises(ArtifactError, match="missing embedder.tflite"):
        load_info(model_copy)


def test_missing_metadata(model_copy: Path, tmp_path: Path) -> None:
    (model_copy / METADATA).unlink()
    with pytest.raises(ArtifactError, match="not a model directory"):
        load_info(model_copy)
    with pytest.raises(ArtifactError):
        load_info(tmp_path / "nowhere")


def test_bad_json(model_copy: Path) -> None:
    (model_copy / METADATA).write_text('{"format": 1, "labels": [')
    with pytest.raises(ArtifactError, match="unreadable metadata"):
        load_info(model_copy)


@pytest.mark.parametrize("change, words", [
    (lambda m: m.update(format=1), "format"),
    (lambda m: m.pop("labels"), "incomplete"),
    (lambda m: m.update(labels=["rock"]), "labels"),
    (lambda m: m.update(labels=["rock", "rock"]), "labels"),
    (lambda m: m.update(temperature=0), "temperature"),
    (lambda m: m["feature_config"].update(n_mels=-1), "invalid"),
    (lambda m: m["feature_config"].update(colour="blue"), "invalid"),
])
def test_invalid_metadata(model_copy: Path, change, words: str) -> None:
    meta_path = model_copy / METADATA
    meta = json.loads(meta_path.read_text())
    change(meta)
    meta_path.write_text(json.dumps(meta))
    with pytest.raises(ArtifactError, match=words):
        load_info(model_copy)


def test_metadata_not_an_object(model_copy: Path) -> None:
    (model_copy / METADATA).write_text("[1, 2, 3]")
    with pytest.raises(ArtifactError):
        load_info(model_copy)


def test_unloadable_flatbuffer_with_matching_checksum(model_copy: Path) -> None:
    from genre_model.predict import Classifier

    (model_copy / "embedder.tflite").write_bytes(b"not a flatbuffer at all" * 10)
    meta = json.loads((model_copy / METADATA).read_text())
    meta["checksums"]["embedder.tflite"] = sha256(model_copy / "embedder.tflite")
    (model_copy / METADATA).write_text(json.dumps(meta))
    with pytest.raises(ArtifactError, match="LiteRT"):
        Classifier(model_copy)


def test_a_detector_of_the_wrong_width_is_refused_at_load(tmp_path: Path) -> None:
    """Not at the first upload, with a ValueError from deep inside."""
    from genre_model.config import DEFAULT_MODEL_DIR
    from genre_model.linear import Linear
    from genre_model.predict import Classifier

    model = Path(shutil.copytree(DEFAULT_MODEL_DIR, tmp_path / "model"))
    meta = json.loads((model / METADATA).read_text())
    classes = len(meta["detector"]["sounds"])
    (model / "detector.npz").write_bytes(Linear(np.zeros((7, classes)), np.zeros(classes)).to_bytes())
    meta["checksums"]["detector.npz"] = sha256(model / "detector.npz")
    (model / METADATA).write_text(json.dumps(meta))
    with pytest.raises(ArtifactError, match="sound detector takes 7 features"):
        Classifier(model, lazy=True)


def test_feature_config_must_match_the_network(model_copy: Path) -> None:
    from genre_model.predict import Classifier

    meta = json.loads((model_copy / METADATA).read_text())
    meta["feature_config"]["n_mels"] = 64
    (model_copy / METADATA).write_text(json.dumps(meta))
    with pytest.raises(ArtifactError, match="does not match"):
        Classifier(model_copy)


# --- prediction ------------------------------------------------------------------------

def _span_seconds(cfg) -> float:
    """Audio one window reads: window_frames centred frames of n_fft samples, hop apart."""
    return ((cfg.window_frames - 1) * cfg.hop_length + cfg.n_fft) / cfg.sample_rate


def test_predict_spreads_capped_windows_over_the_clip(classifier, song: Path) -> None:
    pred = classifier.predict(song, max_windows=4)
    assert len(pred.timeline) == pred.windows.shape[0] == pred.n_windows == 4
    assert pred.timeline[0].start_s == 0.0
    assert pred.timeline[-1].end_s == pytest.approx(pred.duration_s, abs=1e-3)  # from the very start to the very end
    assert all(a.end_s < b.start_s for a, b in zip(pred.timeline, pred.timeline[1:]))  # capped: gaps between
    gaps = np.diff([s.start_s for s in pred.timeline])
    assert gaps.max() - gaps.min() < 0.05  # evenly spread
    heard = sum(s.end_s - s.start_s for s in pred.timeline)
    assert pred.analysed_s == pytest.approx(heard, abs=0.01) and pred.analysed_s < pred.duration_s - 2.0


def test_whole_song_windows_through_predict(classifier, tmp_path: Path) -> None:
    """A long clip: the cap's windows spread from start to end; the drawn timeline shows what they heard."""
    long_song = encode(synth_music(40.0, 22050, seed=5), tmp_path / "long.wav", 22050, "wav")
    pred = classifier.predict(long_song, max_windows=16)
    assert pred.n_windows == 16
    assert pred.timeline[0].start_s == 0.0 and pred.timeline[-1].end_s == pytest.approx(40.0, abs=1e-3)
    assert pred.analysed_s == pytest.approx(16 * _span_seconds(TINY_FEATURES), abs=0.05)
    segments = pred.segments
    assert segments[0].start_s == 0.0 and segments[-1].end_s == pytest.approx(pred.duration_s, abs=1e-3)
    assert all(a.end_s <= b.start_s for a, b in zip(segments, segments[1:]))  # in order, no overlaps
    assert sum(s.end_s - s.start_s for s in segments) == pytest.approx(pred.analysed_s, abs=0.01)  # only what was heard
    for window in pred.timeline:  # each window's own genre colours its middle
        middle = (window.start_s + window.end_s) / 2
        assert next(s for s in segments if s.start_s <= middle < s.end_s).genre == window.genre
    record = pred.to_json("long.wav")
    assert record["n_windows"] == 16 and record["analysed_s"] == pytest.approx(pred.analysed_s, abs=1e-3)
    assert record["duration_s"] == pytest.approx(40.0, abs=1e-3)
    assert [s["start_s"] for s in record["timeline"]] == [s.start_s for s in pred.timeline]


def test_predict_through_litert(classifier, song: Path) -> None:
    pred = classifier.predict(song, max_windows=1000)
    assert set(pred.probabilities) == set(GENRES)
    assert sum(pred.probabilities.values()) == pytest.approx(1.0, abs=1e-6)
    assert all(0.0 <= p <= 1.0 for p in pred.probabilities.values())
    assert pred.genre == max(pred.probabilities, key=pred.probabilities.get)
    assert pred.confidence == pred.probabilities[pred.genre]
    assert [g for g, _ in pred.top_k(3)] == sorted(GENRES, key=lambda g: -pred.probabilities[g])[:3]
    assert pred.duration_s == pytest.approx(7.0, abs=0.01)
    assert pred.model_version == "test-tiny"
    # Uncapped, the windows hear the whole clip: from 0 to the end, each touching or overlapping the next.
    cfg = TINY_FEATURES
    assert len(pred.timeline) == pred.windows.shape[0] > 1
    assert pred.timeline[0].start_s == 0.0
    assert pred.timeline[-1].end_s == pytest.approx(pred.duration_s, abs=1e-3)
    for a, b in zip(pred.timeline, pred.timeline[1:]):
        assert b.start_s <= a.end_s + 1e-3
    assert pred.analysed_s == pytest.approx(pred.duration_s, abs=1e-2)
    # ... with no more windows than that takes: end to end, one fewer could not reach.
    assert (len(pred.timeline) - 1) * _span_seconds(cfg) < pred.duration_s
    for seg in pred.timeline:
        assert seg.genre in GENRES and 0.0 < seg.p <= 1.0
    for seg in pred.timeline[1:-1]:
        assert seg.end_s - seg.start_s == pytest.approx(_span_seconds(cfg), abs=2e-3)
    assert pred.windows.shape[1:] == cfg.input_shape
    assert pred.spectrogram.shape[0] == cfg.n_mels


def test_prediction_json_record(classifier, song: Path) -> None:
    record = classifier.predict(song).to_json(str(song))
    assert set(record) == JSON_KEYS
    assert record["file"] == str(song)
    assert record["genre"] in GENRES
    assert set(record["probabilities"]) == set(GENRES)
    assert sum(record["probabilities"].values()) == pytest.approx(1.0, abs=1e-4)
    assert record["timeline"] and all(set(s) == SEGMENT_KEYS for s in record["timeline"])
    assert record["segments"] and all(set(s) == SEGMENT_KEYS for s in record["segments"])
    assert record["segments"][0]["start_s"] == 0.0 and record["segments"][-1]["end_s"] == record["duration_s"]
    assert isinstance(record["duration_s"], float) and isinstance(record["analysed_s"], float)
    assert record["n_windows"] == len(record["timeline"])
    json.dumps(record)  # serialisable as is


def test_predict_bytes_equals_path(classifier, song: Path) -> None:
    a = classifier.predict(song)
    b = classifier.predict(song.read_bytes())
    assert a.probabilities == pytest.approx(b.probabilities, abs=1e-6)


def test_max_windows_and_max_seconds(classifier, song: Path) -> None:
    pred = classifier.predict(song, max_windows=3)
    assert len(pred.timeline) == 3
    assert pred.timeline[-1].end_s == pytest.approx(pred.duration_s, abs=1e-3)
    short = classifier.predict(song, max_seconds=2.0)
    assert short.duration_s == pytest.approx(2.0, abs=1e-3)


def test_predict_rejects_unusable_audio(classifier, tmp_path: Path) -> None:
    with pytest.raises(AudioError, match="I need at least"):
        classifier.predict(encode(synth_music(0.3, 22050, seed=1), tmp_path / "tiny.wav", 22050, "wav"))
    with pytest.raises(AudioError, match="silent"):
        classifier.predict(encode(np.zeros(22050 * 3, np.float32), tmp_path / "silence.wav", 22050, "wav"))


def test_probabilities_are_temperature_scaled(classifier, song: Path) -> None:
    from genre_model.linear import softmax

    windows = classifier.predict(song).windows
    emb = classifier.embed(windows)
    logits = classifier.logits(emb.mean(axis=0, keepdims=True))[0]
    track, per_window = classifier.probabilities(windows)
    np.testing.assert_allclose(track, softmax(logits[None], 1.5)[0], atol=1e-6)
    assert per_window.shape == (len(windows), len(GENRES))
    np.testing.assert_allclose(per_window.sum(axis=1), 1.0, atol=1e-6)
    assert track.max() > 0.15  # the tiny model is not uniform, so the comparisons below mean something


def test_keras_and_litert_agree(classifier, tiny_model_dir: Path, song: Path) -> None:
    import keras

    from genre_model.linear import softmax

    windows, _ = extract_windows(synth_music(6.0, 22050, seed=22), TINY_FEATURES)
    from genre_model.artifact import load_head

    embedder = keras.saving.load_model(tiny_model_dir / "embedder.keras")
    head = load_head(load_info(tiny_model_dir))
    emb = np.asarray(embedder(windows, training=False))
    logits = head(np.concatenate([emb.mean(axis=0, keepdims=True), emb]))
    expected = softmax(logits, 1.5)
    track, per_window = classifier.probabilities(windows)
    assert np.max(np.abs(track - expected[0])) < 1e-4
    assert np.max(np.abs(per_window - expected[1:])) < 1e-4
    np.testing.assert_allclose(classifier.embed(windows), emb, atol=1e-4)


def test_serving_path_does_not_import_tensorflow(tmp_path: Path) -> None:
    code = ("import sys, genre_model.predict, genre_model.plots, genre_model.audio, genre_model.features; "
            "assert 'tensorflow' not in sys.modules, 'tensorflow imported'; "
            "assert 'keras' not in sys.modules, 'keras imported'")
    result = run_python(["-c", code], cwd=tmp_path)
    assert result.returncode == 0, result.stderr


def test_prediction_image(classifier, song: Path) -> None:
    png = classifier.predict(song).image(classifier.labels, "song.wav")
    width, height = _png_size(png)
    assert width == 800 and 360 <= height <= 480
    assert 5_000 < len(png) < 300_000


# --- command line ------------------------------------------------------------------------

def test_cli_predict_json_and_image(tiny_model_dir: Path, song: Path, tmp_path: Path) -> None:
    image = tmp_path / "out" / "pred.png"
    image.parent.mkdir()
    result = run_python(["-m", "genre_model.cli", "predict", str(song), "--model", str(tiny_model_dir),
                         "--json", "--image", str(image)], cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 1
    record = json.loads(lines[0])
    assert set(record) == JSON_KEYS and record["file"] == str(song)
    assert sum(record["probabilities"].values()) == pytest.approx(1.0, abs=1e-4)
    assert _png_size(image.read_bytes())[0] == 800


def test_cli_predict_reports_bad_files(tiny_model_dir: Path, song: Path, tmp_path: Path) -> None:
    bad = tmp_path / "broken.mp3"
    bad.write_text("not audio")
    image = tmp_path / "pred.png"
    result = run_python(["-m", "genre_model.cli", "predict", str(song), str(bad), "--model", str(tiny_model_dir),
                         "--json", "--image", str(image)], cwd=tmp_path)
    assert result.returncode != 0
    records = [json.loads(line) for line in result.stdout.strip().splitlines()]
    assert len(records) == 2
    good, error = records
    assert set(good) == JSON_KEYS and good["file"] == str(song)
    assert error["file"] == str(bad) and set(error) == {"file", "error"}
    assert "not audio" in error["error"]
    assert (tmp_path / "pred-song.png").is_file()  # several files: the stem is appended
    assert not (tmp_path / "pred-broken.png").exists()


def test_cli_predict_plain_text_and_missing_model(tiny_model_dir: Path, song: Path, tmp_path: Path) -> None:
    result = run_python(["-m", "genre_model.cli", "predict", str(song), "--model", str(tiny_model_dir)], cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"{song}: ") and "analysed" in result.stdout
    missing = run_python(["-m", "genre_model.cli", "predict", str(song), "--model", str(tmp_path / "nope")],
                         cwd=tmp_path)
    assert missing.returncode == 2
    assert "not a model directory" in missing.stderr and "Traceback" not in missing.stderr


def test_cli_evaluate_json(tiny_model_dir: Path, tmp_path: Path) -> None:
    data = tmp_path / "data"
    for g, genre in enumerate(("blues", "metal")):
        for i in range(2):
            encode(synth_music(4.0, 22050, seed=50 + 10 * g + i), data / genre / f"{genre}-{i}.wav", 22050, "wav")
    # One track as stored feature windows (the bot's correction export) and one unusable file.
    windows, _ = extract_windows(synth_music(4.0, 22050, seed=70), TINY_FEATURES)
    save_windows(data / "metal" / "pred-1.npz", windows, TINY_FEATURES)
    (data / "blues" / "broken.wav").write_bytes(b"RIFF????WAVEjunk" * 10)
    confusion = tmp_path / "confusion.png"
    result = run_python(["-m", "genre_model.cli", "evaluate", str(data), "--model", str(tiny_model_dir),
                         "--json", "--confusion", str(confusion)], cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    rep = json.loads(result.stdout)
    for key in ("accuracy", "balanced_accuracy", "macro_f1", "n_tracks", "per_genre", "confusion"):
        assert key in rep
    assert rep["n_tracks"] == 5
    assert [s["file"] for s in rep["skipped"]] == [str(data / "blues" / "broken.wav")]
    confusion_matrix = np.array(rep["confusion"])
    assert confusion_matrix.shape == (10, 10) and confusion_matrix.sum() == 5
    shown = {g for i, g in enumerate(GENRES) if confusion_matrix[i].sum() or confusion_matrix[:, i].sum()}
    assert set(rep["per_genre"]) == shown and {"blues", "metal"} <= shown  # absent genres get no row
    assert 0.0 <= rep["accuracy"] <= 1.0
    assert rep["model_version"] == "test-tiny"
    assert confusion.read_bytes()[:8] == PNG_MAGIC
