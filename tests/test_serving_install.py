"""A plain ``pip install genrebot`` serves: prediction never needs TensorFlow, Keras or (without a
picture) matplotlib, and says nothing on the terminal but its answer; training, cross-validation
and retraining without the ``train`` extra say in one line how to get it.

"Not installed" is made real in a subprocess by putting ``None`` in ``sys.modules`` for
``tensorflow`` and ``keras``: any import of them then fails exactly as on a plain install.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import sys
import tomllib
from pathlib import Path

import numpy as np
import pytest

from conftest import REPO, encode, run_python, synth_music
from genre_model.artifact import METADATA, sha256

HINT = "pip install '.[train]'"
WITHOUT_TRAINING = "import sys; sys.modules.update(tensorflow=None, keras=None, sklearn=None)\n"
#: Runs the CLI with argv[2:], then writes which heavy modules got imported to argv[1].
CLI_AND_REPORT = WITHOUT_TRAINING + """
import json
from genre_model.cli import main
try:
    code = main(sys.argv[2:])
finally:
    loaded = {name: sys.modules.get(name) is not None
              for name in ("tensorflow", "keras", "matplotlib", "librosa", "scipy", "sklearn")}
    open(sys.argv[1], "w").write(json.dumps(loaded))
sys.exit(code)
"""


@pytest.fixture
def song(tmp_path: Path) -> Path:
    return encode(synth_music(8.0, 44100, seed=11, channels=2), tmp_path / "song.mp3", 44100, "mp3")


@pytest.fixture
def tiny_data(tmp_path: Path) -> Path:
    for genre, seed in (("blues", 1), ("rock", 2)):
        encode(synth_music(4.0, 22050, seed=seed), tmp_path / "data" / genre / f"{genre}.wav", 22050, "wav")
    return tmp_path / "data"


def _cli(args: list[str], cwd: Path):
    report = cwd / "modules.json"
    result = run_python(["-c", CLI_AND_REPORT, str(report), *args], cwd=cwd)
    return result, json.loads(report.read_text())


def test_predict_needs_no_training_stack_and_prints_only_its_answer(song: Path, tmp_path: Path) -> None:
    result, loaded = _cli(["predict", str(song), "--json"], tmp_path)
    assert result.returncode == 0, result.stderr
    record = json.loads(result.stdout)  # stdout is exactly one JSON line
    assert record["file"] == str(song) and len(record["probabilities"]) == 10  # (synthetic: may be "not music")
    assert result.stderr == "", f"predict is not quiet: {result.stderr!r}"  # no LiteRT "INFO: Created ... XNNPACK"
    assert not any(loaded.values()), loaded


def test_predict_with_a_picture_needs_no_training_stack_nor_matplotlib(song: Path, tmp_path: Path) -> None:
    result, loaded = _cli(["predict", str(song), "--image", str(tmp_path / "song.png")], tmp_path)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "song.png").read_bytes().startswith(b"\x89PNG")
    assert not any(loaded.values()), loaded  # the picture is drawn with Pillow


@pytest.mark.parametrize("command", [["train", "{data}", "--out", "{tmp}/model"], ["cv", "{data}", "--folds", "2"]])
def test_training_without_the_extra_says_how_to_get_it(command: list[str], tiny_data: Path, tmp_path: Path) -> None:
    args = [a.format(data=tiny_data, tmp=tmp_path) for a in command]
    result, _ = _cli(args, tmp_path)
    assert result.returncode == 2
    assert result.stdout == ""
    assert HINT in result.stderr and "Traceback" not in result.stderr, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert not (tmp_path / "model").exists()


def test_train_names_a_wrong_folder_before_loading_tensorflow(tmp_path: Path) -> None:
    # TensorFlow is installed here (test extra); the folder is checked before it is imported.
    report = tmp_path / "modules.json"
    result = run_python(["-c", CLI_AND_REPORT.replace(WITHOUT_TRAINING, "import sys\n"), str(report),
                         "train", "nodir"], cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip() == "genre-model: nodir: not a data folder or manifest CSV"
    assert not json.loads(report.read_text())["tensorflow"]


def test_retrain_without_the_extra_reports_one_line(tiny_data: Path, tmp_path: Path) -> None:
    from genre_model.config import DEFAULT_MODEL_DIR

    code = WITHOUT_TRAINING + "import runpy; runpy.run_module('genre_model.retrain', run_name='__main__')"
    result = run_python(["-c", code, "--base", str(tiny_data), "--live", str(DEFAULT_MODEL_DIR),
                         "--out", str(tmp_path / "candidate")], cwd=tmp_path)
    assert result.returncode == 1
    events = [json.loads(line) for line in result.stdout.splitlines()]
    assert events[-1]["event"] == "error" and HINT in events[-1]["message"]
    assert "Traceback" not in result.stderr, result.stderr


def test_a_plain_install_has_no_training_stack() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    names = lambda specs: {s.split("[")[0].split(">")[0].split("<")[0].split("=")[0].strip().lower() for s in specs}  # noqa: E731
    base = names(project["dependencies"])
    assert not base & {"tensorflow", "keras", "librosa", "scipy", "scikit-learn", "tqdm", "soxr", "soundfile",
                       "psutil"}, base
    assert {"ai-edge-litert", "numpy", "pydub", "pillow"} <= base
    assert {"tensorflow", "keras", "scikit-learn"} <= names(project["optional-dependencies"]["train"])
    assert "genrebot[train]" in project["optional-dependencies"]["test"]


def test_litert_log_lines_go_to_the_debug_log(capfd: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture) -> None:
    from genre_model.nativelog import native_stderr_to_log

    log = logging.getLogger("genre_model.predict")
    with caplog.at_level(logging.DEBUG, logger="genre_model.predict"):
        with native_stderr_to_log("LiteRT", log):
            os.write(2, b"INFO: Created TensorFlow Lite XNNPACK delegate for CPU.\n")
        os.write(2, b"after\n")
    assert capfd.readouterr().err == "after\n"
    assert "LiteRT: INFO: Created TensorFlow Lite XNNPACK delegate for CPU." in caplog.messages


def test_lazy_classifier_loads_at_the_first_prediction(tiny_model_dir: Path, song: Path, tmp_path: Path) -> None:
    from genre_model.errors import ArtifactError
    from genre_model.predict import Classifier

    eager = Classifier(tiny_model_dir).predict(song)
    lazy = Classifier(tiny_model_dir, lazy=True).predict(song)
    assert lazy.probabilities == eager.probabilities
    broken = Path(shutil.copytree(tiny_model_dir, tmp_path / "broken"))
    (broken / "embedder.tflite").write_bytes(b"not a flatbuffer" * 20)
    meta = json.loads((broken / METADATA).read_text())
    meta["checksums"]["embedder.tflite"] = sha256(broken / "embedder.tflite")
    (broken / METADATA).write_text(json.dumps(meta))
    clf = Classifier(broken, lazy=True)  # metadata and checksums are still checked at once
    with pytest.raises(ArtifactError, match="LiteRT"):
        clf.predict(song)


def test_embedder_with_more_outputs_serves_the_one_the_head_takes(tiny_model_dir: Path, song: Path,
                                                                  tmp_path: Path) -> None:
    """An embedder may have other outputs beside the embedding; the classifier finds it by the head's width."""
    import keras

    from genre_model.artifact import load_head, load_info, save_artifact
    from genre_model.predict import Classifier

    info = load_info(tiny_model_dir)
    embedder = keras.saving.load_model(tiny_model_dir / "embedder.keras")
    tags = keras.layers.Dense(5, activation="sigmoid", name="tags")(embedder.output)
    two = keras.Model(embedder.input, [tags, embedder.output], name="embedder_with_tags")
    out = save_artifact(tmp_path / "two", embedder=two, head=load_head(info), arch=info.arch, labels=info.labels,
                        features=info.features, temperature=info.temperature, training={}, metrics={},
                        version="two-outputs")
    expected = Classifier(tiny_model_dir).predict(song)
    got = Classifier(out.directory).predict(song)
    np.testing.assert_allclose(got.probabilities_array(info.labels), expected.probabilities_array(info.labels),
                               atol=1e-5)


def test_setup_script_makes_sure_venv_works() -> None:
    script = (REPO / "scripts" / "setup.sh").read_text()
    assert "import ensurepip, venv" in script and "-venv" in script  # Debian's python3 needs python3.X-venv
    assert "pip install -q -e" not in script  # the long install shows its progress
    assert shutil.which("bash")
    assert sys.version_info >= (3, 11)


def test_tensorflow_loads_quietly(tmp_path: Path) -> None:
    """Its start-up lines (oneDNN, "Could not find cuda drivers", "failed call to cuInit") go to the DEBUG log."""
    import subprocess

    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    env["PYTHONPATH"] = str(REPO)
    code = ("import logging, sys; logging.basicConfig(level=logging.DEBUG, stream=sys.stdout)\n"
            "from genre_model.train import import_keras; import_keras().ops.zeros(1)")
    result = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr
    assert result.stderr == "", result.stderr
    assert "TensorFlow: " in result.stdout  # what it said is kept, at DEBUG level


def test_inference_workers_do_not_load_discord(tmp_path: Path) -> None:
    """A spawned worker imports the parent's main module again: the genre-bot script's (bot.__main__)
    must not pull in discord.py and aiohttp, and neither may what a worker runs."""
    import subprocess
    import sys

    probe = ("import sys, bot.__main__, bot.inference.worker\n"
             "print(sorted(m for m in ('discord', 'aiohttp', 'aiosqlite', 'asyncpg', 'ray') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=tmp_path, check=True)
    assert out.stdout.strip() == "[]", out.stdout
