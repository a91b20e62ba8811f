"""genre_model.audio.load_audio: every promised format decodes; every bad input is an AudioError."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from conftest import FORMATS, encode, synth_music
from genre_model.audio import load_audio
from genre_model.errors import AudioError

SR_IN = 44100
SR_OUT = 22050
SECONDS = 3.0

def _rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(x, dtype=np.float64))))


def _check_decoded(y: np.ndarray, seconds: float, reference: np.ndarray) -> None:
    assert y.dtype == np.float32
    assert y.ndim == 1
    assert abs(y.size / SR_OUT - seconds) <= 0.1
    assert np.isfinite(y).all()
    assert float(np.max(np.abs(y))) <= 1.0 + 1e-6
    # Non-trivial content at the right level (garbage or silence would fail this).
    assert _rms(y) > 0.02
    assert 0.6 < _rms(y) / _rms(reference) < 1.4


@pytest.mark.parametrize(
    "fmt",
    ["mp3", "wav", "wav24",
     "wav_float",
     "ogg", "opus", "flac", "m4a", "au", "webm"],
)
def test_formats_decode_to_mono_float32(tmp_path: Path, fmt: str) -> None:
    samples = synth_music(SECONDS, SR_IN, seed=3)
    path = encode(samples, tmp_path / f"clip-{fmt}.{FORMATS[fmt][0]}", SR_IN, fmt)
    y = load_audio(path, SR_OUT)
    _check_decoded(y, SECONDS, samples)


def test_plain_float_wav(tmp_path: Path) -> None:
    """A WAVE_FORMAT_IEEE_FLOAT (format 3) WAV, as soundfile writes it, goes through ffmpeg fine."""
    samples = synth_music(SECONDS, SR_IN, seed=4)
    path = tmp_path / "float.wav"
    sf.write(str(path), samples, SR_IN, subtype="FLOAT")
    y = load_audio(path, SR_OUT)
    _check_decoded(y, SECONDS, samples)


def test_lossless_decode_matches_source(tmp_path: Path) -> None:
    """FLAC at the output rate: the samples come back (to 16-bit precision), not just 'something'."""
    samples = synth_music(2.0, SR_OUT, seed=5)
    y = load_audio(encode(samples, tmp_path / "x.flac", SR_OUT, "flac"), SR_OUT)
    assert y.shape == samples.shape
    assert np.max(np.abs(y - samples)) < 2e-4


def test_stereo_is_averaged_to_mono(tmp_path: Path) -> None:
    samples = synth_music(2.0, SR_OUT, seed=6, channels=2)
    y = load_audio(encode(samples, tmp_path / "stereo.wav", SR_OUT, "wav"), SR_OUT)
    assert y.ndim == 1 and y.size == samples.shape[0]
    assert np.max(np.abs(y - samples.mean(axis=1))) < 2e-4


def test_bytes_input_works_like_a_path(make_tone) -> None:
    for fmt in ("ogg", "wav"):
        path = make_tone(2.0, fmt, SR_IN, seed=7)
        from_path = load_audio(path, SR_OUT)
        from_bytes = load_audio(path.read_bytes(), SR_OUT)
        assert from_bytes.dtype == np.float32
        assert from_bytes.shape == from_path.shape
        np.testing.assert_allclose(from_bytes, from_path, atol=1e-6)


def test_pathlike_and_str_accepted(make_tone) -> None:
    path = make_tone(1.5, "wav", SR_OUT)
    np.testing.assert_array_equal(load_audio(str(path), SR_OUT), load_audio(path, SR_OUT))


@pytest.mark.parametrize("fmt", ["wav", "mp3"])
def test_max_seconds_bounds_the_output(make_tone, fmt: str) -> None:
    path = make_tone(20.0, fmt, SR_OUT, seed=8)
    y = load_audio(path, SR_OUT, max_seconds=5)
    assert y.size == 5 * SR_OUT
    full = load_audio(path, SR_OUT)
    assert abs(full.size / SR_OUT - 20.0) <= 0.1


def test_high_rate_multichannel_wav(tmp_path: Path) -> None:
    """192 kHz, 8 channels (WAVE_FORMAT_EXTENSIBLE) -> mono at the requested rate."""
    sr = 192000
    mono = synth_music(2.0, sr, seed=9)
    samples = np.stack([mono * (0.5 + 0.06 * c) for c in range(8)], axis=1)
    path = tmp_path / "hires.wav"
    sf.write(str(path), samples, sr, subtype="PCM_24")
    assert sf.info(str(path)).channels == 8
    y = load_audio(path, SR_OUT)
    assert y.dtype == np.float32 and y.ndim == 1
    assert abs(y.size / SR_OUT - 2.0) <= 0.1
    assert 0.6 < _rms(y) / _rms(samples.mean(axis=1)) < 1.4


def test_video_container_audio_is_decoded(tmp_path: Path) -> None:
    path = tmp_path / "video.mp4"
    subprocess.run(
        ["ffmpeg", "-nostdin", "-v", "error", "-y",
         "-f", "lavfi", "-i", "testsrc=size=160x120:rate=10:duration=3",
         "-f", "lavfi", "-i", "sine=frequency=330:duration=3:sample_rate=44100",
         "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest", str(path)],
        check=True, capture_output=True, timeout=60,
    )
    y = load_audio(path, SR_OUT)
    assert y.dtype == np.float32
    assert abs(y.size / SR_OUT - 3.0) <= 0.1
    assert _rms(y) > 0.05
    # It is the 330 Hz sine, not noise from the video stream.
    segment = y[SR_OUT // 2: SR_OUT // 2 + SR_OUT]
    freqs = np.fft.rfftfreq(segment.size, 1.0 / SR_OUT)
    assert abs(freqs[np.argmax(np.abs(np.fft.rfft(segment)))] - 330.0) <= 2.0


# --- bad input: one exception type, readable messages ---------------------------------

def test_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.mp3"
    path.write_bytes(b"")
    with pytest.raises(AudioError, match="empty"):
        load_audio(path, SR_OUT)


def test_empty_bytes() -> None:
    with pytest.raises(AudioError, match="empty"):
        load_audio(b"", SR_OUT)


def test_text_file_named_mp3(tmp_path: Path) -> None:
    path = tmp_path / "notes.mp3"
    path.write_text("this is a shopping list, not a song\n" * 30)
    with pytest.raises(AudioError, match="not audio"):
        load_audio(path, SR_OUT)


def test_random_bytes_named_wav(tmp_path: Path) -> None:
    path = tmp_path / "noise.wav"
    path.write_bytes(np.random.default_rng(0).bytes(50_000))
    with pytest.raises(AudioError, match="not audio"):
        load_audio(path, SR_OUT)


def test_random_bytes_as_bytes() -> None:
    with pytest.raises(AudioError, match="not audio"):
        load_audio(np.random.default_rng(1).bytes(20_000), SR_OUT)


def test_truncated_mp3(make_tone, tmp_path: Path) -> None:
    data = make_tone(4.0, "mp3", SR_IN, seed=10).read_bytes()
    # Cut inside the first frame: nothing decodable is left.
    header_only = tmp_path / "cut.mp3"
    header_only.write_bytes(data[:300])
    with pytest.raises(AudioError, match="not audio"):
        load_audio(header_only, SR_OUT)
    # Cut in the middle: what is there decodes (a partial upload is still a song) ...
    half = tmp_path / "half.mp3"
    half.write_bytes(data[: len(data) // 2])
    y = load_audio(half, SR_OUT)
    assert 1.0 < y.size / SR_OUT < 3.0
    # ... but it is too short when a minimum length is asked for, and says so.
    with pytest.raises(AudioError, match=r"I need at least 3 s"):
        load_audio(half, SR_OUT, min_seconds=3)


def test_too_short_clip_message(tmp_path: Path) -> None:
    path = encode(synth_music(0.4, SR_OUT, seed=11), tmp_path / "short.wav", SR_OUT, "wav")
    with pytest.raises(AudioError) as err:
        load_audio(path, SR_OUT, min_seconds=3)
    message = str(err.value)
    assert "0.4 s" in message and "3 s" in message


def test_digital_silence(tmp_path: Path) -> None:
    path = encode(np.zeros(2 * SR_OUT, dtype=np.float32), tmp_path / "silence.wav", SR_OUT, "wav")
    with pytest.raises(AudioError, match="silent"):
        load_audio(path, SR_OUT)


def test_silence_in_a_lossy_container(tmp_path: Path) -> None:
    path = encode(np.zeros(2 * SR_OUT, dtype=np.float32), tmp_path / "silence.ogg", SR_OUT, "ogg")
    with pytest.raises(AudioError, match="silent"):
        load_audio(path, SR_OUT)


def test_nonexistent_path(tmp_path: Path) -> None:
    with pytest.raises(AudioError, match="no such file"):
        load_audio(tmp_path / "missing.mp3", SR_OUT)


def test_directory_is_not_a_file(tmp_path: Path) -> None:
    with pytest.raises(AudioError):
        load_audio(tmp_path, SR_OUT)


def test_bad_arguments_are_value_errors(make_tone) -> None:
    path = make_tone(1.0, "wav", SR_OUT)
    with pytest.raises(ValueError):
        load_audio(path, 0)
    with pytest.raises(ValueError):
        load_audio(path, SR_OUT, max_seconds=0)



# --- one ffmpeg process: names, missing ffmpeg, an ffmpeg without libsoxr ------------------


def test_names_ffmpeg_could_read_as_protocols_are_plain_files(tmp_path: Path) -> None:
    samples = synth_music(SECONDS, SR_IN, seed=12)
    path = encode(samples, tmp_path / "concat:subfile,,start,0,end,1,,:data.wav", SR_IN, "wav")
    _check_decoded(load_audio(path, SR_OUT), SECONDS, samples)


def test_missing_ffmpeg_is_said_plainly(make_tone, monkeypatch: pytest.MonkeyPatch) -> None:
    from pydub import AudioSegment

    path = make_tone(1.5, "wav", SR_OUT)
    monkeypatch.setattr(AudioSegment, "converter", "/nonexistent/ffmpeg")
    with pytest.raises(AudioError, match="ffmpeg is not installed"):
        load_audio(path, SR_OUT)


def test_an_ffmpeg_without_soxr_falls_back_to_its_own_resampler(make_tone, tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """An ffmpeg built without libsoxr refuses resampler=soxr; decoding goes on with ffmpeg's own."""
    import shutil

    from pydub import AudioSegment

    import genre_model.audio as audio

    fake = tmp_path / "ffmpeg-without-soxr"
    fake.write_text("#!/bin/sh\n"
                    "case \"$*\" in *resampler=soxr*)\n"
                    "  echo 'Requested resampling engine is unavailable' >&2; exit 1;;\n"
                    "esac\n"
                    f"exec {shutil.which('ffmpeg')} \"$@\"\n")
    fake.chmod(0o755)
    path = make_tone(2.0, "wav", SR_IN, seed=13)
    expected = load_audio(path, SR_OUT)
    monkeypatch.setattr(AudioSegment, "converter", str(fake))
    monkeypatch.setattr(audio, "_resampler", "soxr")
    y = load_audio(path, SR_OUT)
    assert audio._resampler == "swr"
    assert y.shape == expected.shape
    assert np.max(np.abs(y - expected)) < 0.05  # a different resampler, the same signal
