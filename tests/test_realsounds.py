"""genre_model.realsounds: the committed manifest, the .deb reader and corpus builder, and refitting
a model's sound detector (``genre-model fit-detector``). No package is downloaded here: the .deb is
made in the test, the corpus is synthesised."""

from __future__ import annotations

import csv
import io
import json
import lzma
import shutil
import tarfile
from pathlib import Path

import numpy as np
import pytest

from conftest import encode, run_python, synth_music
from genre_model import realsounds
from genre_model.realsounds import CATEGORIES, Clip, read_manifest, sha256_bytes, write_manifest

SR = 22050


def test_the_committed_manifest_is_well_formed() -> None:
    clips = read_manifest()  # validates every row: side, category, licence, sha256, >= 3 s
    assert len(clips) >= 300
    music = [c for c in clips if c.side == "music"]
    sounds = [c for c in clips if c.side == "not_music"]
    assert len(music) >= 50 and len(sounds) >= 200
    assert {c.category for c in sounds} <= set(CATEGORIES)
    assert len({c.source_package for c in sounds}) >= 5 and len({c.source_package for c in music}) >= 5
    assert len({(c.source_package, c.file_in_package) for c in clips}) == len(clips)
    for c in clips:  # one version per package: the builder downloads one .deb each
        assert {x.version for x in clips if x.source_package == c.source_package} == {c.version}


@pytest.mark.parametrize("row, problem", [
    ({"category": "birds"}, "unknown category"),
    ({"sha256": "abc"}, "bad sha256"),
    ({"licence": " "}, "licence"),
    ({"duration_s": 1.5}, "shorter"),
    ({"side": "music"}, "category is 'music'"),
    ({"file_in_package": "../etc/passwd"}, "inside"),
])
def test_bad_manifest_rows_are_refused(row: dict, problem: str) -> None:
    good = dict(side="not_music", category="animals", source_package="pkg", version="1.0", file_in_package="a.wav",
                licence="GPL-2+", duration_s=4.0, sha256="0" * 64)
    with pytest.raises(ValueError, match=problem):
        realsounds.validate(Clip(**{**good, **row}))


def _tar_xz(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(f"./{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return lzma.compress(buffer.getvalue())


def _deb(path: Path, files: dict[str, bytes]) -> Path:
    """A minimal .deb: an ar archive of debian-binary, control.tar.xz and data.tar.xz."""
    members = [("debian-binary", b"2.0\n"), ("control.tar.xz", _tar_xz({"control": b"Package: fake\n"})),
               ("data.tar.xz", _tar_xz(files))]
    out = bytearray(b"!<arch>\n")
    for name, data in members:
        out += f"{name + '/':<16}{0:<12}{0:<6}{0:<6}{'100644':<8}{len(data):<10}`\n".encode()
        out += data + (b"\n" if len(data) % 2 else b"")
    path.write_bytes(bytes(out))
    return path


def test_builder_reads_a_deb_and_keeps_only_listed_files_with_the_right_sha(tmp_path: Path) -> None:
    good, changed = b"RIFF good clip", b"RIFF other clip"
    debs = tmp_path / "debs"
    debs.mkdir()
    _deb(debs / "fake-sounds_1.0-1_all.deb", {"usr/share/sounds/dog.wav": good, "usr/share/sounds/cat.wav": changed,
                                               "usr/share/doc/fake-sounds/copyright": b"License: CC0-1.0\n"})
    assert set(realsounds.deb_files(debs / "fake-sounds_1.0-1_all.deb")) == {
        "usr/share/sounds/dog.wav", "usr/share/sounds/cat.wav", "usr/share/doc/fake-sounds/copyright"}
    clip = dict(side="not_music", category="animals", source_package="fake-sounds", version="1.0-1",
                licence="CC0-1.0", duration_s=4.0)
    manifest = tmp_path / "manifest.csv"
    write_manifest(manifest, [Clip(**clip, file_in_package="usr/share/sounds/dog.wav", sha256=sha256_bytes(good)),
                              Clip(**clip, file_in_package="usr/share/sounds/cat.wav", sha256=sha256_bytes(b"x"))])
    kept = realsounds.build(tmp_path / "corpus", manifest, debs)  # the .deb is there: no download
    assert [c.file_in_package for c in kept] == ["usr/share/sounds/dog.wav"]
    assert (tmp_path / "corpus/fake-sounds/usr/share/sounds/dog.wav").read_bytes() == good
    assert not (tmp_path / "corpus/fake-sounds/usr/share/sounds/cat.wav").exists()
    assert [c.file_in_package for c in read_manifest(tmp_path / "corpus/MANIFEST.csv")] == ["usr/share/sounds/dog.wav"]


def test_fit_detector_learns_the_classes_it_has_examples_of() -> None:
    from genre_model.detector import fit_detector

    rng = np.random.default_rng(0)
    x = np.concatenate([rng.normal(0, 1, (20, 5)), rng.normal(4, 1, (20, 5)), rng.normal(-4, 1, (20, 5))])
    det = fit_detector(x, ["music"] * 20 + ["sound"] * 20 + ["speech"] * 20)
    assert det.sounds == ("music", "speech", "sound")
    assert det.judge(np.full(5, 8.0))[0] == "sound" and det.judge(np.zeros(5))[0] == "music"
    two = fit_detector(x[:40], ["music"] * 20 + ["sound"] * 20)  # two classes: still a softmax over both
    assert two.sounds == ("music", "sound") and two.linear.n_classes == 2
    assert two.judge(np.full(5, 8.0))[0] == "sound" and two.judge(np.zeros(5))[0] == "music"
    with pytest.raises(ValueError):
        fit_detector(x[20:], ["sound"] * 20 + ["speech"] * 20)  # no music


def _corpus(root: Path) -> Path:
    """A small corpus in the builder's layout: two synthesised songs and four noises, two 'packages' each."""
    rng = np.random.default_rng(1)
    clips = []
    for i in range(2):
        path = encode(0.5 * synth_music(6.0, SR, seed=i), root / f"band{i}" / "song.wav", SR)
        clips.append(Clip("music", "music", f"band{i}", "1", "song.wav", "CC0-1.0", 6.0, sha256_bytes(path.read_bytes())))
    for i in range(4):
        noise = rng.standard_normal(int(5 * SR)) * 0.2
        path = encode(noise.astype(np.float32), root / f"noises{i % 2}" / f"n{i}.wav", SR)
        clips.append(Clip("not_music", "machines", f"noises{i % 2}", "1", f"n{i}.wav", "CC0-1.0", 5.0,
                          sha256_bytes(path.read_bytes())))
    write_manifest(root / "MANIFEST.csv", clips)
    return root


def test_fit_detector_command_rewrites_only_the_detector(tmp_path: Path) -> None:
    from genre_model.artifact import load_info
    from genre_model.config import DEFAULT_MODEL_DIR

    model = Path(shutil.copytree(DEFAULT_MODEL_DIR, tmp_path / "model"))
    before = load_info(model)
    corpus = _corpus(tmp_path / "corpus")
    result = run_python(["-m", "genre_model.cli", "fit-detector", str(model), "--sounds", str(corpus),
                         "--cache", str(tmp_path / "cache")], cwd=tmp_path, timeout=300)
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert out["detector"]["sounds"] == ["music", "sound"] and out["examples"] == {"music": 2, "sound": 4}
    after = load_info(model)  # checksums verified
    assert after.detector["sounds"] == ["music", "sound"]
    for name in ("embedder.keras", "embedder.tflite", "head.npz"):
        assert after.checksums[name] == before.checksums[name]
    assert after.checksums["detector.npz"] != before.checksums["detector.npz"]
    assert after.training["detector"]["sounds"] == [str(corpus)]
    assert any((tmp_path / "cache").iterdir())  # embeddings kept for the next refit


def test_a_sound_verdict_flows_through_predict_json(tmp_path: Path) -> None:
    from genre_model.artifact import load_head, load_info, replace_detector
    from genre_model.config import DEFAULT_MODEL_DIR
    from genre_model.detector import SoundDetector
    from genre_model.linear import Linear

    model = Path(shutil.copytree(DEFAULT_MODEL_DIR, tmp_path / "model"))
    width = load_head(load_info(model)).n_features
    always_sound = SoundDetector(Linear(np.zeros((width, 5)), np.array([0.0, 0, 0, 0, 9.0])),
                                 ("music", "speech", "tone", "noise", "sound"))
    replace_detector(model, always_sound, note="test")
    song = encode(0.5 * synth_music(5.0, SR, seed=3), tmp_path / "song.wav", SR)
    result = run_python(["-m", "genre_model.cli", "predict", str(song), "--model", str(model), "--json"], cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    record = json.loads(result.stdout)
    assert record["music"] is False and record["sound"] == "sound" and record["genre"] is None
    plain = run_python(["-m", "genre_model.cli", "predict", str(song), "--model", str(model)], cwd=tmp_path)
    assert "real-world sound" in plain.stdout and "not music" in plain.stdout


@pytest.mark.parametrize("p_music, doubtful", [(0.3, True), (0.8, False), (0.05, None)])
def test_a_song_barely_heard_as_music_gets_its_genre_with_a_doubt(tmp_path: Path, p_music: float, doubtful) -> None:
    """Between the threshold (0.1) and 0.5 the detector's "music" comes with "may not be music";
    below the threshold it is not music, above 0.5 a plain genre."""
    from genre_model.artifact import load_head, load_info, replace_detector
    from genre_model.config import DEFAULT_MODEL_DIR
    from genre_model.detector import MUSIC_THRESHOLD, SoundDetector
    from genre_model.linear import Linear

    assert MUSIC_THRESHOLD < 0.3 and MUSIC_THRESHOLD > 0.05
    model = Path(shutil.copytree(DEFAULT_MODEL_DIR, tmp_path / "model"))
    width = load_head(load_info(model)).n_features
    bias = np.log(p_music * 4 / (1 - p_music))  # softmax over music and four sounds at 0
    detector = SoundDetector(Linear(np.zeros((width, 5)), np.array([bias, 0, 0, 0, 0.0])),
                             ("music", "speech", "tone", "noise", "sound"), threshold=MUSIC_THRESHOLD)
    replace_detector(model, detector, note="test")
    song = encode(0.5 * synth_music(5.0, SR, seed=3), tmp_path / "song.wav", SR)
    record = json.loads(run_python(["-m", "genre_model.cli", "predict", str(song), "--model", str(model), "--json"],
                                   cwd=tmp_path).stdout)
    assert record["music_p"] == pytest.approx(p_music, abs=1e-3)
    plain = run_python(["-m", "genre_model.cli", "predict", str(song), "--model", str(model)], cwd=tmp_path).stdout
    if doubtful is None:
        assert record["music"] is False and record["genre"] is None and not record["doubtful"]
        return
    assert record["music"] is True and record["genre"] is not None and record["doubtful"] is doubtful
    assert ("may not be music" in plain) is doubtful


def test_benchmark_answers_help_without_pytest() -> None:
    import subprocess
    import sys

    script = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_not_music.py"
    code = ("import runpy, sys; sys.argv = ['bench', '--help']\n"
            "try:\n    runpy.run_path(%r, run_name='__main__')\nexcept SystemExit:\n    pass\n"
            "assert 'pytest' not in sys.modules, 'pytest imported'\n"
            "assert not any(p.rstrip('/').endswith('tests') for p in sys.path)\n") % str(script)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "grouped" in result.stdout


def test_manifest_csv_columns_are_the_documented_ones() -> None:
    with open(realsounds.MANIFEST, newline="") as f:
        assert tuple(next(csv.reader(f))) == realsounds.COLUMNS
