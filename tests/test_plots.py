"""genre_model.plots: the prediction picture (drawn with Pillow), its palette, and writing pictures."""

from __future__ import annotations

import io
import itertools
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import run_python
from genre_model import plots
from genre_model.config import GENRES


def _rgb(colour: str) -> np.ndarray:
    return np.array([int(colour[i:i + 2], 16) for i in (1, 3, 5)], dtype=float)


def _picture(segments, windows=(), duration: float = 60.0, sample_rate: int = 16000, **kw) -> np.ndarray:
    spf = 256 / sample_rate
    rng = np.random.default_rng(0)
    spectrogram = rng.random((96, int(duration / spf))).astype(np.float32)
    png = plots.prediction_image(spectrogram, spf, sample_rate, segments=segments, windows=windows,
                                 labels=GENRES, title=kw.pop("title", "Rock 60%  Pop 30%"), **kw)
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB"), dtype=float)


def _bar_row(image: np.ndarray, x: int, colour: str) -> int:
    """The first row of column ``x`` painted ``colour`` (the top of the timeline bar there)."""
    rows = np.flatnonzero(np.abs(image[:, x] - _rgb(colour)).max(axis=1) <= 6)
    assert rows.size, f"{colour} not found in column {x}"
    return int(rows[0])


def test_palette_ten_distinct_colours_none_grey() -> None:
    colours = [_rgb(plots.genre_colour(i)) for i in range(len(GENRES))]
    for c in colours:
        assert c.max() - c.min() >= 60, "a greyish genre colour reads as 'no data'"
    for a, b in itertools.combinations(colours, 2):
        assert np.abs(a - b).sum() >= 90
    assert plots.genre_colour(len(GENRES)) == plots.genre_colour(0)  # other label sets wrap around


def test_timeline_bar_has_no_gaps_and_each_stretch_its_genre_colour() -> None:
    segments = [(0.0, 8.25, "rock"), (8.25, 21.75, "pop"), (21.75, 60.0, "hiphop")]
    windows = [(0.0, 3.0), (13.5, 16.5), (27.0, 30.0), (57.0, 60.0)]
    image = _picture(segments, windows)
    assert image.shape[1] == 800
    colour = {g: plots.genre_colour(GENRES.index(g)) for g in ("rock", "pop", "hiphop")}
    # Find the bar from the middle of the long last stretch, then read one row (above any label text) across.
    row = _bar_row(image, 700, colour["hiphop"]) + 2
    line = image[row]
    painted = [x for x in range(image.shape[1]) if any(np.abs(line[x] - _rgb(c)).max() <= 6 for c in colour.values())]
    left, right = painted[0], painted[-1]
    assert right - left + 1 == len(painted), "the bar has a gap"
    assert right - left > 650  # it spans the plot
    for start, end, genre in segments:
        middle = left + (right - left) * (start + end) / 2 / 60.0
        assert np.abs(line[round(middle)] - _rgb(colour[genre])).max() <= 6, genre


def test_legend_and_names_use_display_names_large_enough_for_a_preview() -> None:
    # No OCR here: the legend's swatches must be as tall as its 22-px text, i.e. >= 11 px at Discord's 400-px preview.
    image = _picture([(0.0, 60.0, "hiphop")])
    colour = _rgb(plots.genre_colour(GENRES.index("hiphop")))
    mask = np.abs(image - colour).max(axis=2) <= 6
    rows = np.flatnonzero(mask[:, :120].any(axis=1))  # the swatch at the legend's left
    swatch = rows[rows > image.shape[0] - 60]
    assert swatch.size >= 20


def test_frequency_axis_in_khz() -> None:
    ticks = plots._frequency_ticks(16000, 96, 200, min_gap=22)
    labels = [label for _, label in ticks]
    assert labels[0] == "8 kHz" and labels[1:] == ["4", "2", "1", "0.5"]
    heights = [y for y, _ in ticks]
    assert heights[0] == pytest.approx(200) and all(a - b >= 22 for a, b in zip(heights, heights[1:]))
    # The mel scale is linear below 1 kHz: 0.5 kHz sits halfway up to 1 kHz.
    assert heights[4] == pytest.approx(heights[3] / 2, rel=0.05)
    assert [label for _, label in plots._frequency_ticks(22050, 128, 200, min_gap=22)][0] == "8 kHz"


def test_long_title_is_cut_not_the_picture() -> None:
    image = _picture([(0.0, 60.0, "rock")], title="Rock 60%  " + "very long words " * 20, name="x" * 300)
    assert image.shape[1] == 800


def test_many_genres_wrap_the_legend() -> None:
    segments = [(6.0 * i, 6.0 * (i + 1), g) for i, g in enumerate(GENRES)]
    one = _picture(segments[:1] + [(6.0, 60.0, "rock")])
    ten = _picture(segments)
    assert ten.shape[0] > one.shape[0]  # more rows, nothing drawn off the picture


@pytest.mark.parametrize("suffix, magic", [(".png", b"\x89PNG"), (".jpg", b"\xff\xd8\xff"), (".JPEG", b"\xff\xd8\xff"),
                                           (".webp", b"RIFF")])
def test_write_png_or_converted(tmp_path: Path, suffix: str, magic: bytes) -> None:
    png = plots.prediction_image(np.ones((96, 100), np.float32), 0.016, 16000, segments=[(0.0, 1.6, "rock")],
                                 labels=GENRES, title="Rock")
    out = plots.write(tmp_path / f"pic{suffix}", png)
    assert out.read_bytes()[:len(magic)] == magic
    with Image.open(out) as picture:
        assert picture.width == 800


def test_write_refuses_other_endings_and_missing_folders(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=".png"):
        plots.write(tmp_path / "pic.gif", b"\x89PNG")
    with pytest.raises(FileNotFoundError):
        plots.write(tmp_path / "nowhere" / "pic.png", b"\x89PNG")
    assert not (tmp_path / "nowhere").exists()


def test_prediction_picture_does_not_import_matplotlib(tmp_path: Path) -> None:
    code = ("import sys, numpy as np; from genre_model import plots; "
            "plots.prediction_image(np.ones((96, 300), np.float32), 0.016, 16000, segments=[(0.0, 4.8, 'rock')], "
            "labels=('rock',), title='Rock'); "
            "assert 'matplotlib' not in sys.modules, 'matplotlib imported'")
    result = run_python(["-c", code], cwd=tmp_path)
    assert result.returncode == 0, result.stderr
