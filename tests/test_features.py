"""genre_model.features: log-mel windows, presets, config round trips, stored windows."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest

from conftest import TINY_FEATURES, synth_music
from genre_model.errors import AudioError, DatasetError
from genre_model.features import (
    CNN_FEATURES, MUSICNN_FEATURES, Excerpts, FeatureConfig, cut_windows, extract_windows, load_windows, log_mel,
    mel_edges, mel_filterbank, needed_spans, save_windows, song_features, song_window_starts, window_spans, window_starts,
)

@pytest.fixture(scope="module")
def song30() -> dict[int, np.ndarray]:
    """30 s of synthetic music at both presets' rates."""
    return {sr: synth_music(30.0, sr, seed=1) for sr in (22050, 16000)}


def _expected_windows(n_samples: int, cfg: FeatureConfig) -> int:
    n_frames = 1 + n_samples // cfg.hop_length  # centred STFT
    return (n_frames - cfg.window_frames) // cfg.window_frames + 1


@pytest.mark.parametrize("cfg, shape", [(CNN_FEATURES, (128, 128, 3)), (MUSICNN_FEATURES, (96, 187, 1))],
                         ids=["cnn", "musicnn"])
def test_preset_shapes_and_30s_window_count(song30, cfg: FeatureConfig, shape) -> None:
    assert cfg.input_shape == shape
    samples = song30[cfg.sample_rate]
    windows, times = extract_windows(samples, cfg)
    assert windows.dtype == np.float32
    assert windows.shape[1:] == shape
    assert windows.shape[0] == _expected_windows(samples.size, cfg) == 10
    assert np.isfinite(windows).all()
    np.testing.assert_allclose(np.diff(times), cfg.window_seconds, rtol=1e-9)
    assert times[0] == 0.0
    assert times[-1] + cfg.window_seconds <= 30.0 + cfg.hop_length / cfg.sample_rate


def test_log_mel_layout_and_scales(song30) -> None:
    x = song30[22050][: 22050 * 4]
    spec = log_mel(x, CNN_FEATURES)
    assert spec.shape == (3, 128, 1 + x.size // 512)
    assert spec.dtype == np.float32
    assert -120.0 < spec[0].min() < spec[0].max() < 80.0  # dB (power, ref 1, no top_db clip)
    quieter = log_mel(0.1 * x, CNN_FEATURES)[0]
    np.testing.assert_allclose(quieter, spec[0] - 20.0, atol=0.05)  # dB scale: x0.1 amplitude = -20 dB
    m = log_mel(song30[16000][: 16000 * 4], MUSICNN_FEATURES)
    assert m.shape[0] == 1 and m.shape[1] == 96
    assert m.min() >= 0.0  # log10(10000 x + 1) is never negative


def test_window_seconds_of_presets() -> None:
    assert CNN_FEATURES.window_seconds == pytest.approx(128 * 512 / 22050)
    assert MUSICNN_FEATURES.window_seconds == pytest.approx(3.0, abs=0.01)


def test_max_windows_caps_and_spreads_evenly() -> None:
    cfg = CNN_FEATURES
    n_frames = 5000
    all_starts = window_starts(n_frames, cfg)
    assert all_starts.size == (n_frames - 128) // 128 + 1
    capped = window_starts(n_frames, cfg, max_windows=7)
    assert capped.size == 7
    assert capped[0] == 0 and capped[-1] == n_frames - cfg.window_frames  # covers the whole song
    gaps = np.diff(capped)
    assert gaps.max() - gaps.min() <= 1  # evenly spread
    assert np.all(capped + cfg.window_frames <= n_frames)
    # No cap needed: unchanged.
    np.testing.assert_array_equal(window_starts(n_frames, cfg, max_windows=10_000), all_starts)


def test_max_windows_through_extract(song30) -> None:
    windows, times = extract_windows(song30[22050], CNN_FEATURES, max_windows=4)
    assert windows.shape[0] == 4
    assert times[0] == 0.0 and times[-1] > 25.0


def _heard(starts: np.ndarray, cfg: FeatureConfig, n_samples: int) -> np.ndarray:
    """Which samples at least one window at ``starts`` reads."""
    heard = np.zeros(n_samples, dtype=bool)
    for begin, end in np.round(window_spans(starts, cfg, n_samples) * cfg.sample_rate).astype(int):
        heard[begin:end] = True
    return heard


@pytest.mark.parametrize("cfg", [MUSICNN_FEATURES, CNN_FEATURES, TINY_FEATURES], ids=["musicnn", "cnn", "tiny"])
@pytest.mark.parametrize("seconds", [3.01, 4.5, 7.0, 29.9, 30.013, 44.0])
def test_song_windows_hear_every_sample_of_a_song_they_can_cover(cfg: FeatureConfig, seconds: float) -> None:
    n_samples = int(seconds * cfg.sample_rate)
    n_frames = 1 + n_samples // cfg.hop_length
    starts = song_window_starts(n_frames, cfg, max_windows=1000)
    assert starts[0] == 0 and starts[-1] == n_frames - cfg.window_frames
    assert np.all(np.diff(starts) > 0)
    if starts.size > 2:
        assert np.ptp(np.diff(starts)) <= 1  # the overlap shared evenly
    assert _heard(starts, cfg, n_samples).all(), "a stretch of the song is in no window"
    if starts.size > 1:  # and no more windows than that takes
        fewer = song_window_starts(n_frames, cfg, max_windows=starts.size - 1)
        assert not _heard(fewer, cfg, n_samples).all()


def test_song_windows_of_a_long_song_spread_from_start_to_end() -> None:
    cfg = MUSICNN_FEATURES
    n_samples = 180 * cfg.sample_rate
    n_frames = 1 + n_samples // cfg.hop_length
    starts = song_window_starts(n_frames, cfg, max_windows=16)
    assert starts.size == 16
    assert starts[0] == 0 and starts[-1] == n_frames - cfg.window_frames  # the very start and the very end
    assert np.ptp(np.diff(starts)) <= 1  # equal gaps
    spans = window_spans(starts, cfg, n_samples)
    assert spans[0, 0] == 0.0 and spans[-1, 1] == pytest.approx(180.0)
    assert np.all(spans[1:, 0] > spans[:-1, 1])  # spread: gaps between the windows
    assert _heard(starts, cfg, n_samples).mean() == pytest.approx(16 * 3.008 / 180, abs=0.002)


def test_song_windows_edge_cases() -> None:
    cfg = MUSICNN_FEATURES
    assert song_window_starts(cfg.window_frames - 1, cfg, 16).size == 0  # not one window fits
    np.testing.assert_array_equal(song_window_starts(cfg.window_frames, cfg, 16), [0])
    np.testing.assert_array_equal(song_window_starts(10_000, cfg, 1), [0])
    with pytest.raises(ValueError):
        song_window_starts(10_000, cfg, 0)


def test_window_spans_are_the_samples_each_window_reads(song30) -> None:
    """A window cut from the whole clip equals the log-mel of just its span's samples."""
    cfg = MUSICNN_FEATURES
    samples = song30[16000]
    spectrogram = log_mel(samples, cfg)
    start = 500
    (begin, end), = window_spans(np.array([start]), cfg, samples.size)
    assert end - begin == pytest.approx(((cfg.window_frames - 1) * cfg.hop_length + cfg.n_fft) / cfg.sample_rate)
    alone = log_mel(samples[round(begin * cfg.sample_rate):round(end * cfg.sample_rate)], cfg)
    # The excerpt starts n_fft / 2 = one hop early: its frame k + 1 is frame start + k of the clip
    # (its first frame is padded with zeros; its last ones fully inside it match too).
    inner = alone[:, :, 1:cfg.window_frames + 1]
    np.testing.assert_allclose(inner, spectrogram[:, :, start:start + cfg.window_frames], rtol=1e-3, atol=1e-3)


def test_log_mel_of_chosen_frames_equals_the_whole(song30) -> None:
    samples = song30[16000]
    whole = log_mel(samples, MUSICNN_FEATURES)
    frames = np.array([0, 1, 2, 500, 777, whole.shape[-1] - 1])
    np.testing.assert_allclose(log_mel(samples, MUSICNN_FEATURES, frames), whole[:, :, frames], rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="delta"):
        log_mel(song30[22050], CNN_FEATURES, frames)


@pytest.mark.parametrize("max_windows, overview_frames", [(4, 300), (16, 3000), (3, 5000)])
def test_song_features_equal_the_full_spectrogram_cut(song30, max_windows: int, overview_frames: int) -> None:
    """Whether or not only the needed frames are computed, windows and overview are the same numbers."""
    cfg = MUSICNN_FEATURES
    samples = song30[16000]
    whole = log_mel(samples, cfg)
    starts = song_window_starts(whole.shape[-1], cfg, max_windows)
    windows, overview, step = song_features(samples, cfg, starts, overview_frames)
    np.testing.assert_allclose(windows, cut_windows(whole, cfg, starts), rtol=1e-5, atol=1e-5)
    assert step == -(-whole.shape[-1] // overview_frames)
    np.testing.assert_allclose(overview, whole[0, :, ::step], rtol=1e-5, atol=1e-5)
    assert overview.shape[1] <= overview_frames


def test_mel_edges_are_the_filterbank_peaks() -> None:
    edges = mel_edges(16000, 96)
    assert edges[0] == 0.0 and edges[-1] == pytest.approx(8000.0)
    assert np.all(np.diff(edges) > 0)
    freqs = np.fft.rfftfreq(512, 1 / 16000)
    peaks = freqs[mel_filterbank(16000, 512, 96).argmax(axis=1)]
    np.testing.assert_allclose(peaks, edges[1:-1], atol=16000 / 512)


def test_hop_frames_overlap() -> None:
    starts = window_starts(1000, CNN_FEATURES, hop_frames=64)
    assert np.all(np.diff(starts) == 64)
    with pytest.raises(ValueError):
        window_starts(1000, CNN_FEATURES, hop_frames=-1)


def test_too_short_input_raises_audio_error() -> None:
    short = synth_music(1.0, 22050, seed=2)
    with pytest.raises(AudioError, match="I need at least 3 s"):
        extract_windows(short, CNN_FEATURES)
    with pytest.raises(AudioError, match="1.0 s"):
        log_mel(short, CNN_FEATURES)
    assert window_starts(10, CNN_FEATURES).size == 0


def test_exactly_min_samples_gives_one_window() -> None:
    cfg = CNN_FEATURES
    x = synth_music(cfg.min_samples / cfg.sample_rate + 0.001, cfg.sample_rate, seed=3)[: cfg.min_samples]
    windows, _ = extract_windows(x, cfg)
    assert windows.shape == (1, *cfg.input_shape)


def test_stereo_samples_rejected() -> None:
    with pytest.raises(ValueError):
        log_mel(np.zeros((22050 * 4, 2), np.float32), CNN_FEATURES)


def test_config_round_trips() -> None:
    for cfg in (CNN_FEATURES, MUSICNN_FEATURES, TINY_FEATURES):
        again = FeatureConfig.from_dict(json.loads(json.dumps(cfg.to_dict())))
        assert again == cfg
        assert again.fingerprint() == cfg.fingerprint()


@pytest.mark.parametrize("bad", [
    {"n_mels": 0}, {"sample_rate": -1}, {"hop_length": 0}, {"window_frames": -5}, {"n_fft": 0},
    {"log_scale": "ln"}, {"norm_mean": (0.0,), "norm_std": ()},
    {"norm_mean": (0.0, 0.0), "norm_std": (1.0, 1.0)},  # 3 channels need 3 values
])
def test_config_rejects_bad_values(bad: dict) -> None:
    with pytest.raises(ValueError):
        FeatureConfig(**bad)
    with pytest.raises(ValueError):
        FeatureConfig.from_dict({**CNN_FEATURES.to_dict(), **bad})


def test_from_dict_rejects_unknown_settings() -> None:
    with pytest.raises(ValueError, match="unknown"):
        FeatureConfig.from_dict({**CNN_FEATURES.to_dict(), "fmax": 8000})


def test_fingerprint_changes_with_every_setting() -> None:
    base = CNN_FEATURES
    changed = [
        dataclasses.replace(base, sample_rate=16000), dataclasses.replace(base, n_fft=1024),
        dataclasses.replace(base, hop_length=256), dataclasses.replace(base, n_mels=96),
        dataclasses.replace(base, window_frames=64), dataclasses.replace(base, log_scale="log10p"),
        dataclasses.replace(base, deltas=False), base.with_normalisation(np.zeros(3), np.ones(3)),
    ]
    prints = {c.fingerprint() for c in changed}
    assert len(prints) == len(changed)
    assert base.fingerprint() not in prints
    assert FeatureConfig().fingerprint() == base.fingerprint()  # stable


def test_normalisation_is_applied(song30) -> None:
    x = song30[22050][: 22050 * 7]
    raw, _ = extract_windows(x, CNN_FEATURES)
    mean, std = np.array([-20.0, 0.5, -0.1]), np.array([15.0, 2.0, 0.5])
    cfg = CNN_FEATURES.with_normalisation(mean, std)
    norm, _ = extract_windows(x, cfg)
    np.testing.assert_allclose(norm, (raw - mean.astype(np.float32)) / std.astype(np.float32), rtol=1e-5, atol=1e-5)
    # Statistics computed from the windows standardise them.
    stats = raw.reshape(-1, 3)
    own = CNN_FEATURES.with_normalisation(stats.mean(axis=0), stats.std(axis=0))
    z = cut_windows(log_mel(x, own), own, window_starts(log_mel(x, own).shape[-1], own)).reshape(-1, 3)
    np.testing.assert_allclose(z.mean(axis=0), 0.0, atol=1e-3)
    np.testing.assert_allclose(z.std(axis=0), 1.0, atol=1e-3)


def test_with_normalisation_floors_std() -> None:
    cfg = CNN_FEATURES.with_normalisation(np.zeros(3), np.zeros(3))
    assert min(cfg.norm_std) > 0


def test_save_load_windows_round_trip(tmp_path: Path) -> None:
    x = synth_music(4.0, 22050, seed=4)
    windows, _ = extract_windows(x, TINY_FEATURES)
    path = tmp_path / "w.npz"
    save_windows(path, windows, TINY_FEATURES)
    np.testing.assert_array_equal(load_windows(path, TINY_FEATURES), windows)


def test_load_windows_restandardises_for_other_statistics(tmp_path: Path) -> None:
    x = synth_music(4.0, 22050, seed=5)
    old = TINY_FEATURES
    new = TINY_FEATURES.with_normalisation(np.array([-10.0, 1.0, 0.0]), np.array([5.0, 1.0, 2.0]))
    unnorm = dataclasses.replace(TINY_FEATURES, norm_mean=(), norm_std=())
    save_windows(tmp_path / "w.npz", extract_windows(x, old)[0], old)
    np.testing.assert_allclose(load_windows(tmp_path / "w.npz", new), extract_windows(x, new)[0], atol=1e-4)
    np.testing.assert_allclose(load_windows(tmp_path / "w.npz", unnorm), extract_windows(x, unnorm)[0], atol=1e-3)


def test_load_windows_refuses_other_settings(tmp_path: Path) -> None:
    x = synth_music(4.0, 22050, seed=6)
    path = tmp_path / "w.npz"
    save_windows(path, extract_windows(x, TINY_FEATURES)[0], TINY_FEATURES)
    for other in (CNN_FEATURES, dataclasses.replace(TINY_FEATURES, hop_length=256),
                  dataclasses.replace(TINY_FEATURES, n_mels=40)):
        with pytest.raises(DatasetError, match="other feature settings"):
            load_windows(path, other)


def test_load_windows_refuses_wrong_shape(tmp_path: Path) -> None:
    path = tmp_path / "w.npz"
    save_windows(path, np.zeros((2, 10, 10, 3), np.float32), TINY_FEATURES)
    with pytest.raises(DatasetError, match="shape"):
        load_windows(path, TINY_FEATURES)


def test_load_windows_refuses_non_window_files(tmp_path: Path) -> None:
    plain = tmp_path / "plain.npz"
    np.savez(plain, something=np.zeros(3))
    with pytest.raises(DatasetError):
        load_windows(plain, TINY_FEATURES)
    text = tmp_path / "text.npz"
    text.write_text("not numpy")
    with pytest.raises(DatasetError):
        load_windows(text, TINY_FEATURES)


def test_load_windows_truncated_file_is_dataset_error(tmp_path: Path) -> None:
    path = tmp_path / "w.npz"
    save_windows(path, extract_windows(synth_music(4.0, 22050, seed=7), TINY_FEATURES)[0], TINY_FEATURES)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(DatasetError):
        load_windows(path, TINY_FEATURES)


@pytest.mark.parametrize("config", [CNN_FEATURES, MUSICNN_FEATURES], ids=["cnn", "musicnn"])
def test_log_mel_equals_librosa(config):
    """The numpy front end computes what librosa computes (it only avoids librosa's numba start-up cost)."""
    import librosa

    rng = np.random.default_rng(3)
    t = np.arange(int(4.0 * config.sample_rate)) / config.sample_rate
    y = (0.3 * np.sin(2 * np.pi * 440 * t) + 0.05 * rng.standard_normal(t.size)).astype(np.float32)
    power = librosa.feature.melspectrogram(y=y, sr=config.sample_rate, n_fft=config.n_fft,
                                           hop_length=config.hop_length, n_mels=config.n_mels)
    if config.log_scale == "db":
        expected = librosa.power_to_db(power, ref=1.0, amin=1e-10, top_db=None)
    else:
        expected = np.log10(10000.0 * power + 1.0)
    ours = log_mel(y, config)
    np.testing.assert_allclose(ours[0], expected, rtol=1e-4, atol=1e-3)
    if config.deltas:
        np.testing.assert_allclose(ours[1], librosa.feature.delta(ours[0], width=9, order=1, mode="nearest"),
                                   atol=1e-4)
        np.testing.assert_allclose(ours[2], librosa.feature.delta(ours[0], width=9, order=2, mode="nearest"),
                                   atol=1e-4)


def test_windows_format_has_one_writer_and_one_reader(tmp_path: Path) -> None:
    """save_windows writes to a path or an open file, with a FeatureConfig or its dict; read_windows
    reads either back; load_windows (the trainer's view) is built on it."""
    import io

    from genre_model.features import read_windows

    windows, _ = extract_windows(synth_music(4.0, 22050, seed=4), TINY_FEATURES)
    buffer = io.BytesIO()
    save_windows(buffer, windows, TINY_FEATURES.to_dict())
    with open(tmp_path / "w.pending", "wb") as handle:  # any name: nothing is appended to it
        save_windows(handle, windows, TINY_FEATURES)
    assert (tmp_path / "w.pending").read_bytes()[:2] == b"PK" and not (tmp_path / "w.pending.npz").exists()
    for source in (io.BytesIO(buffer.getvalue()), tmp_path / "w.pending"):
        loaded, settings = read_windows(source)
        np.testing.assert_array_equal(loaded, windows)
        assert FeatureConfig.from_dict(settings) == TINY_FEATURES
    save_windows(tmp_path / "plain", windows, TINY_FEATURES)
    assert (tmp_path / "plain").is_file() and not (tmp_path / "plain.npz").exists()
    with pytest.raises(DatasetError, match="not a feature-windows file"):
        read_windows(io.BytesIO(b"garbage"))


@pytest.mark.parametrize("cfg", [MUSICNN_FEATURES, dataclasses.replace(MUSICNN_FEATURES, loudness_target=-18.0),
                                 CNN_FEATURES], ids=["musicnn", "levelled", "cnn-deltas"])
def test_pieces_at_the_needed_spans_give_the_whole_songs_windows(cfg: FeatureConfig) -> None:
    """A song decoded only where its windows read (plus nothing) gives the windows of the whole
    song, deltas and loudness included; the overview is NaN where nothing was decoded."""
    samples = synth_music(150.0, cfg.sample_rate, seed=8)
    starts = song_window_starts(1 + samples.size // cfg.hop_length, cfg, 10)
    spans = needed_spans(starts, cfg, samples.size)
    assert len(spans) == 10 and sum(b - a for a, b in spans) < 0.3 * samples.size
    # Pieces start on a frame boundary: widen each span's start down to one.
    pieces = tuple((a // cfg.hop_length * cfg.hop_length, samples[a // cfg.hop_length * cfg.hop_length:b])
                   for a, b in spans)
    song = Excerpts(samples.size, pieces)
    windows, overview, step = song_features(song, cfg, starts, 3000)
    whole_windows, whole_overview, whole_step = song_features(samples, cfg, starts, 3000)
    np.testing.assert_allclose(windows, whole_windows, rtol=1e-5, atol=1e-5)
    assert step == whole_step and overview.shape == whole_overview.shape
    heard = ~np.isnan(overview)
    assert 0.05 < heard.mean() < 0.3 and not np.isnan(whole_overview).any()
    np.testing.assert_allclose(overview[heard], whole_overview[heard], rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="not decoded"):  # a piece too short for its window
        song_features(Excerpts(samples.size, pieces[:-1] + ((pieces[-1][0] + 2 * cfg.hop_length,
                                                             pieces[-1][1][2 * cfg.hop_length:]),)), cfg, starts, 3000)


def test_excerpts_refuse_overlapping_or_outside_pieces() -> None:
    x = np.zeros(1000, np.float32)
    with pytest.raises(ValueError):
        Excerpts(1500, ((0, x), (500, x)))
    with pytest.raises(ValueError):
        Excerpts(1500, ((600, x),))
    assert Excerpts(1600, ((0, x[:400]), (512, x))).span(600, 700).size == 100
