"""The ``genre-model`` command line: arguments, messages, what goes to stdout, pictures.

Argument checks run ``main()`` in-process (no model is loaded before they fail); the
rest uses the session's tiny model (``tiny_model_dir``), so those tests are ``slow``.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from conftest import encode, run_python, synth_music
from genre_model import __version__
from genre_model.cli import build_parser, main
from genre_model.config import DISPLAY_NAMES, GENRES


def _run(capsys, *argv: str) -> tuple[int, str, str]:
    """``main(argv)`` -> (exit status, stdout, stderr), also for argparse's own exits."""
    try:
        code = main(list(argv))
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def song(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return encode(synth_music(7.0, 22050, seed=21), tmp_path_factory.mktemp("cli") / "song.wav", 22050, "wav")


# --- arguments: refused before any work, with a usage message ---------------------------

@pytest.mark.parametrize("argv, words", [
    (["predict", "--top", "0"], "--top: must be at least 1, got 0"),
    (["predict", "--top", "-3"], "--top: must be at least 1, got -3"),
    (["predict", "--top", "two"], "--top: expected a whole number"),
    (["predict", "--max-seconds", "0"], "--max-seconds: must be a number of seconds above 0, got 0"),
    (["predict", "--max-seconds", "-5"], "--max-seconds: must be a number of seconds above 0"),
    (["predict", "--max-seconds", "nan"], "--max-seconds: must be a number of seconds above 0"),
    (["predict", "--image", "out.gif"], "--image: 'out.gif': name the picture with one of .png"),
    (["predict", "--image", "out"], "name the picture with one of .png"),
    (["evaluate", "data", "--confusion", "c.pdf"], "--confusion: 'c.pdf'"),
    (["cv", "data", "--folds", "1"], "--folds: must be at least 2, got 1"),
    (["train", "data", "--batch-size", "0"], "--batch-size: must be at least 1, got 0"),
    (["train", "data", "--max-seconds", "0"], "--max-seconds: must be a number of seconds above 0"),
])
def test_bad_arguments_are_usage_errors(capsys, argv: list[str], words: str) -> None:
    code, out, err = _run(capsys, *argv)
    assert code == 2 and out == ""
    assert words in err and "usage: genre-model" in err and "Traceback" not in err


def test_image_in_a_missing_folder_is_refused_not_created(capsys, tmp_path: Path) -> None:
    target = tmp_path / "no" / "such" / "pred.png"
    code, _, err = _run(capsys, "predict", "--image", str(target))
    assert code == 2 and f"folder {str(target.parent)!r} does not exist" in err
    assert not (tmp_path / "no").exists()


def test_version(capsys) -> None:
    code, out, _ = _run(capsys, "--version")
    assert code == 0 and out.startswith(f"genre-model {__version__}") and "bundled model" in out


def test_help_is_plain_text_with_defaults(capsys) -> None:
    top = build_parser().format_help()
    assert "``" not in top and "--version" in top and "predict" in top
    sub = build_parser()._subparsers._group_actions[0].choices  # noqa: SLF001 - the subcommands' parsers
    predict, cv, train = (" ".join(sub[name].format_help().split()) for name in ("predict", "cv", "train"))
    assert "genres listed per file (default: 3)" in predict
    assert "(default: 600)" in predict and "(default: the bundled model)" in predict
    assert "number of folds (default: 5)" in cv
    assert "windows per batch (default: 64)" in train and "inverse L2 strength of the logistic regression (default: 0.001)" in train
    for text in (top, predict, cv, train, sub["evaluate"].format_help()):
        assert "``" not in text
    for name, parser in sub.items():  # every option says what it is for
        for action in parser._actions:  # noqa: SLF001
            assert action.help, f"{name} {action.option_strings or action.dest} has no help"


# --- predict -----------------------------------------------------------------------------------

def test_predict_plain_text_names_genres_for_people_and_what_was_analysed(capsys, tiny_model_dir: Path,
                                                                          song: Path) -> None:
    code, out, _ = _run(capsys, "predict", str(song), "--model", str(tiny_model_dir), "--top", "2")
    assert code == 0
    line = out.strip()
    assert line.startswith(f"{song}: ")
    ranked = line.split("(", 1)[1].split(")", 1)[0]
    assert len(ranked.split(", ")) == 2  # --top 2: two genres
    shown = {DISPLAY_NAMES.get(g, g.capitalize()) for g in GENRES}
    assert all(part.rsplit(" ", 1)[0] in shown for part in ranked.split(", "))
    assert "hiphop" not in line  # labels are shown as people write them
    assert line.endswith("windows)") and "analysed all 7 s (" in line


def test_predict_top_larger_than_the_labels_lists_each_once(capsys, tiny_model_dir: Path, song: Path) -> None:
    code, out, _ = _run(capsys, "predict", str(song), "--model", str(tiny_model_dir), "--top", "50")
    assert code == 0 and out.split("(", 1)[1].split(")", 1)[0].count("%") == len(GENRES)


def test_predict_a_folder_says_so(capsys, tiny_model_dir: Path, tmp_path: Path) -> None:
    folder = tmp_path / "album"
    folder.mkdir()
    code, out, err = _run(capsys, "predict", str(folder), "--model", str(tiny_model_dir))
    assert code == 1 and out == ""
    assert err.strip() == f"{folder}: a folder, not an audio file"
    code, _, err = _run(capsys, "predict", ".", "--model", str(tiny_model_dir))
    assert err.strip() == ".: a folder, not an audio file"  # never a blank name


def test_max_seconds_below_one_window_blames_the_setting(capsys, tiny_model_dir: Path, song: Path) -> None:
    code, out, err = _run(capsys, "predict", str(song), "--model", str(tiny_model_dir), "--max-seconds", "0.5")
    assert code == 2 and out == ""
    assert "--max-seconds 0.5 is shorter than one analysis window (0.7 s): use at least 1" in err
    assert "clip is" not in err and "Traceback" not in err
    code, out, _ = _run(capsys, "predict", str(song), "--model", str(tiny_model_dir), "--max-seconds", "2")
    assert code == 0 and "analysed all of the first 2 s of 7 s" in out  # --max-seconds cuts the clip; not its fault


@pytest.mark.parametrize("suffix, fmt", [(".png", "PNG"), (".jpg", "JPEG"), (".webp", "WEBP")])
def test_image_is_written_in_the_format_its_name_says(capsys, tiny_model_dir: Path, song: Path, tmp_path: Path,
                                                      suffix: str, fmt: str) -> None:
    out = tmp_path / f"pred{suffix}"
    code, _, _ = _run(capsys, "predict", str(song), "--model", str(tiny_model_dir), "--image", str(out))
    assert code == 0
    with Image.open(out) as picture:
        assert picture.format == fmt and picture.width == 800


def test_image_per_file_keeps_the_suffix(capsys, tiny_model_dir: Path, song: Path, tmp_path: Path) -> None:
    other = encode(synth_music(5.0, 22050, seed=3), tmp_path / "other.flac", 22050, "flac")
    code, _, _ = _run(capsys, "predict", str(song), str(other), "--model", str(tiny_model_dir),
                      "--image", str(tmp_path / "pred.jpg"))
    assert code == 0
    assert sorted(p.name for p in tmp_path.glob("pred-*")) == ["pred-other.jpg", "pred-song.jpg"]
    with Image.open(tmp_path / "pred-other.jpg") as picture:
        assert picture.format == "JPEG"


def test_image_that_cannot_be_written_is_a_short_message(capsys, tiny_model_dir: Path, song: Path,
                                                         tmp_path: Path) -> None:
    (tmp_path / "taken.png").mkdir()  # a folder where the picture should go
    code, _, err = _run(capsys, "predict", str(song), "--model", str(tiny_model_dir),
                        "--image", str(tmp_path / "taken.png"))
    assert code == 2 and f"genre-model: cannot write {tmp_path / 'taken.png'}: Is a directory" in err
    assert "Traceback" not in err


# --- evaluate ----------------------------------------------------------------------------------

def test_plain_evaluate_lists_the_files_it_skipped(capsys, tiny_model_dir: Path, tmp_path: Path) -> None:
    data = tmp_path / "data"
    for g, genre in enumerate(("blues", "metal")):
        for i in range(2):
            encode(synth_music(4.0, 22050, seed=50 + 10 * g + i), data / genre / f"{genre}-{i}.wav", 22050, "wav")
    broken = data / "blues" / "broken.wav"
    broken.write_bytes(b"RIFF????WAVEjunk" * 10)
    code, out, _ = _run(capsys, "evaluate", str(data), "--model", str(tiny_model_dir),
                        "--confusion", str(tmp_path / "confusion.png"))
    assert code == 0
    assert out.startswith("tracks 4 ")
    assert "skipped 1 unreadable file (not scored):" in out
    assert f"  {broken}: this file is not audio I can read" in out


def test_evaluate_sets_not_music_apart_skips_absent_genres_and_writes_only_when_asked(
        capsys, monkeypatch, tmp_path: Path) -> None:
    """The shipped model on a folder of two songs and a dial tone, all labelled blues: the tone is
    listed as not music instead of counting as a genre mistake, only genres in the data or
    predicted get a row, and no confusion.png appears unless --confusion names one."""
    import json
    import numpy as np

    data = tmp_path / "data"
    for i in range(2):
        encode(synth_music(8.0, 22050, seed=80 + i), data / "blues" / f"song-{i}.wav", 22050, "wav")
    t = np.arange(10 * 22050) / 22050
    encode(0.4 * (np.sin(2 * np.pi * 350 * t) + np.sin(2 * np.pi * 440 * t)), data / "blues" / "dial.wav", 22050)
    monkeypatch.chdir(tmp_path)
    code, out, _ = _run(capsys, "evaluate", str(data), "--json")
    assert code == 0 and not list(tmp_path.glob("*.png"))
    rep = json.loads(out)
    assert rep["n_tracks"] == 2 and [m["file"] for m in rep["not_music"]] == [str(data / "blues" / "dial.wav")]
    assert all(m["support"] or m["predicted"] for m in rep["per_genre"].values())
    assert "blues" in rep["per_genre"] and len(rep["per_genre"]) <= 3
    code, out, _ = _run(capsys, "evaluate", str(data), "--confusion", str(tmp_path / "c.png"))
    assert code == 0 and (tmp_path / "c.png").is_file()
    assert "1 of 3 songs called not music (set apart, not counted as genre errors):" in out
    rows = [line.split()[0] for line in out.split("\n\n")[1].splitlines()[1:]]
    assert set(rows) <= set(rep["per_genre"])


# --- train: only the result on stdout ------------------------------------------------------------

@pytest.mark.slow
def test_keras_epoch_logs_and_native_output_go_to_stderr_during_training(tmp_path: Path) -> None:
    """What ``train`` and ``cv`` wrap their work in: a real Keras fit, plus a native write to fd 1."""
    code = (
        "import os, sys, numpy as np, keras\n"
        "from genre_model.cli import _stdout_to_stderr\n"
        "model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])\n"
        "model.compile(optimizer='sgd', loss='mse')\n"
        "with _stdout_to_stderr():\n"
        "    model.fit(np.ones((8, 4)), np.ones((8, 2)), epochs=2, verbose=2)\n"
        "    print('a progress line')\n"
        "    os.write(1, b'native\\n')\n"
        "print('{\"result\": 1}')\n"
    )
    result = run_python(["-c", code], cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout == '{"result": 1}\n'
    assert "Epoch 1/2" in result.stderr and "a progress line" in result.stderr and "native" in result.stderr


def test_stdout_is_restored_after_a_failure(capsys) -> None:
    from genre_model.cli import _stdout_to_stderr

    with pytest.raises(RuntimeError):
        with _stdout_to_stderr():
            print("during")
            raise RuntimeError("boom")
    print("after")
    out, err = capsys.readouterr()
    assert out == "after\n" and "during" in err
