"""Pictures: the spectrogram-with-timeline image, confusion matrices, training curves.

The prediction image (drawn for every upload) is drawn with Pillow directly: a few
milliseconds and no matplotlib import. Confusion matrices and training curves use
matplotlib's object API with the Agg canvas (no pyplot, no display, thread-safe),
imported only when one is drawn.
"""

from __future__ import annotations

import functools
import io
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from genre_model.config import display_name
from genre_model.features import mel_edges

if TYPE_CHECKING:
    from matplotlib.figure import Figure

#: One fixed colour per genre index (GTZAN order: blues, classical, country, disco, hiphop,
#: jazz, metal, pop, reggae, rock): ten distinct hues, none grey, told apart also with deuteranopia.
_PALETTE = ("#1f77b4", "#006d6f", "#ff7f0e", "#e7298a", "#7b3fbf",
            "#17becf", "#b2182b", "#f2c200", "#2ca02c", "#8c564b")
#: matplotlib's "magma" at 17 evenly spaced points (interpolated: within 2/255 of the original).
_MAGMA = ("#000004", "#0a0822", "#1d1147", "#36106b", "#51127c", "#6a1c81", "#832681", "#9c2e7f", "#b73779",
          "#d0416f", "#e75263", "#f56b5c", "#fc8961", "#fea772", "#fec488", "#fde2a3", "#fcfdbf")
#: File name endings the pictures can be written as (PNG as drawn; the others converted).
IMAGE_FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".webp": "WEBP"}

# Layout of the prediction image, in pixels. Discord previews it at half size (~400 px wide),
# so no text is smaller than 18 px here (9 px there) and the legend is 22 px.
_WIDTH, _LEFT, _RIGHT = 800, 66, 18
_TITLE_Y, _SPEC_TOP, _SPEC_H = 12, 52, 200
_BAR_GAP, _BAR_H, _MARK_H = 8, 42, 6
_INK, _MUTED, _FAINT = (17, 17, 17), (85, 85, 85), (200, 200, 200)


def genre_colour(index: int) -> str:
    """Colour used for the genre at ``index`` of a model's labels."""
    return _PALETTE[index % len(_PALETTE)]


@functools.lru_cache(maxsize=8)
def _font(size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.load_default(size)


@functools.lru_cache(maxsize=1)
def _magma_lut() -> np.ndarray:
    anchors = np.array([[int(h[i:i + 2], 16) for i in (1, 3, 5)] for h in _MAGMA], dtype=np.float64)
    x = np.linspace(0.0, 1.0, len(anchors))
    grid = np.linspace(0.0, 1.0, 256)
    return np.stack([np.interp(grid, x, anchors[:, c]) for c in range(3)], axis=1).round().astype(np.uint8)


def _rgb(colour: str) -> tuple[int, int, int]:
    return int(colour[1:3], 16), int(colour[3:5], 16), int(colour[5:7], 16)


def _text_on(colour: tuple[int, int, int]) -> tuple[int, int, int]:
    """Black or white, whichever reads better on ``colour``."""
    r, g, b = colour
    return _INK if 0.299 * r + 0.587 * g + 0.114 * b > 150 else (255, 255, 255)


def _downsample_columns(image: np.ndarray, max_columns: int) -> np.ndarray:
    """Max-pool time frames so the image has at most ``max_columns`` columns (what the PNG can show)."""
    step = int(np.ceil(image.shape[1] / max_columns)) if image.shape[1] > max_columns else 1
    if step == 1:
        return image
    usable = image.shape[1] // step * step
    pooled = image[:, 0:usable:step].copy()
    for offset in range(1, step):  # step strided maxima: many times faster than .max() over a short last axis
        np.fmax(pooled, image[:, offset:usable:step], out=pooled)  # NaN (not heard) only where all are
    return pooled


def _fit(text: str, font: ImageFont.FreeTypeFont, width: float) -> str:
    """``text``, cut with an ellipsis to at most ``width`` pixels."""
    if font.getlength(text) <= width:
        return text
    while text and font.getlength(text + "\N{HORIZONTAL ELLIPSIS}") > width:
        text = text[:-1]
    return text + "\N{HORIZONTAL ELLIPSIS}"


def _clock(seconds: float) -> str:
    whole = int(round(seconds))
    return f"{whole // 60}:{whole % 60:02d}"


def _frequency_ticks(sample_rate: int, n_mels: int, height: int, min_gap: int) -> list[tuple[float, str]]:
    """(pixels above the bottom, label) of kHz ticks on a mel axis, top down, none closer than ``min_gap``."""
    edges = mel_edges(sample_rate, n_mels)
    nyquist = sample_rate / 2
    bands = np.concatenate([[0.0], np.arange(n_mels) + 0.5, [n_mels]])
    hz = np.concatenate([[0.0], edges[1:-1], [nyquist]])
    ticks: list[tuple[float, str]] = []
    for khz in (16, 8, 4, 2, 1, 0.5, 0.25, 0.125):
        if khz * 1000 > nyquist:
            continue
        y = float(np.interp(khz * 1000, hz, bands)) / n_mels * height
        if y < min_gap or (ticks and ticks[-1][0] - y < min_gap):
            continue
        ticks.append((y, f"{khz:g}"))
    if ticks:
        ticks[0] = (ticks[0][0], ticks[0][1] + " kHz")
    return ticks


def _time_step(duration: float, max_ticks: int = 8) -> float:
    for step in (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 1800, 3600):
        if duration / step <= max_ticks - 1:
            return float(step)
    return 3600.0


def prediction_image(
    spectrogram: np.ndarray,
    seconds_per_frame: float,
    sample_rate: int,
    *,
    segments: Sequence[tuple[float, float, str]],
    windows: Sequence[tuple[float, float]] = (),
    labels: Sequence[str],
    title: str,
    name: str = "",
    caption: str = "",
) -> bytes:
    """PNG (800 px wide) of a log-mel spectrogram on a kHz axis with the genre timeline under it.

    ``segments`` holds the ``(start_s, end_s, genre)`` stretches that were heard, drawn on one bar
    (grey where nothing was analysed), each
    genre in its colour (named inside the bar where it fits, and in the legend); ``windows``
    holds the ``(start_s, end_s)`` actually analysed, marked under the bar. ``title`` (the
    result) leads the top line, the file's ``name`` gets the rest of it; ``caption`` is set
    beside the legend.
    """
    n_mels = spectrogram.shape[0]
    duration = max(max((end for _, end, _ in segments), default=spectrogram.shape[1] * seconds_per_frame), 1e-3)
    plot_w = _WIDTH - _LEFT - _RIGHT
    bar_top = _SPEC_TOP + _SPEC_H + _BAR_GAP
    mark_top = bar_top + _BAR_H + 2
    ticks_y = mark_top + _MARK_H + 4
    legend_y = ticks_y + 34

    index = {label: i for i, label in enumerate(labels)}
    share: dict[str, float] = {}
    for start, end, genre in segments:
        share[genre] = share.get(genre, 0.0) + end - start
    legend = sorted(share, key=lambda g: (-share[g], index.get(g, len(index))))
    big, small = _font(22), _font(18)

    # Lay out the legend (and the caption, right-aligned on its last row) to know the height.
    rows: list[list[tuple[float, str]]] = [[]]
    x = 0.0
    for genre in legend:
        width = 22 + 8 + big.getlength(display_name(genre))
        if x and x + width > plot_w:
            rows.append([])
            x = 0.0
        rows[-1].append((x, genre))
        x += width + 26
    caption_row = len(rows) - 1
    if caption and x and x + small.getlength(caption) > plot_w:
        caption_row += 1
    height = legend_y + 32 * (max(caption_row, len(rows) - 1) + 1) + 6

    image = Image.new("RGB", (_WIDTH, height), "white")
    draw = ImageDraw.Draw(image)
    title = _fit(title, _font(26), _WIDTH - 32)
    draw.text((16, _TITLE_Y), title, fill=_INK, font=_font(26))
    room = _WIDTH - 32 - _font(26).getlength(title) - 24
    if name and room >= 80:
        draw.text((_WIDTH - 16, _TITLE_Y + 16), _fit(name, small, room), fill=_MUTED, font=small, anchor="rm")

    # Spectrogram: percentiles set the colour range, low frequencies at the bottom.
    # Frames that were never decoded (between a long song's windows) are NaN and stay light grey.
    shown = _downsample_columns(np.asarray(spectrogram, dtype=np.float32), plot_w)
    heard = np.isfinite(shown)
    lo, hi = np.percentile(shown[heard], [2, 99.5]) if heard.any() else (0.0, 1.0)
    scaled = np.clip((np.where(heard, shown, lo) - lo) / max(float(hi - lo), 1e-6), 0.0, 1.0)
    pixels = _magma_lut()[(scaled[::-1] * 255).astype(np.uint8)]
    pixels[~heard[::-1]] = (235, 235, 235)
    picture = Image.fromarray(pixels, "RGB").resize((plot_w, _SPEC_H), Image.Resampling.BILINEAR)
    image.paste(picture, (_LEFT, _SPEC_TOP))
    for y, label in _frequency_ticks(sample_rate, n_mels, _SPEC_H, min_gap=22):
        py = _SPEC_TOP + _SPEC_H - y
        draw.line((_LEFT - 5, py, _LEFT - 1, py), fill=_MUTED, width=1)
        draw.text((_LEFT - 8, py), label, fill=_MUTED, font=small, anchor="rm")

    # Timeline: the heard stretches on one bar, genre names where they fit; analysed windows marked under it.
    def px(t: float) -> float:
        return _LEFT + plot_w * min(max(t / duration, 0.0), 1.0)

    label_font = _font(20)
    draw.rectangle((_LEFT, bar_top, _LEFT + plot_w, bar_top + _BAR_H), fill=(235, 235, 235))  # not analysed
    for start, end, genre in segments:
        colour = _rgb(genre_colour(index.get(genre, 0)))
        x0, x1 = px(start), px(end)
        draw.rectangle((round(x0), bar_top, max(round(x0), round(x1) - 1), bar_top + _BAR_H), fill=colour)
        name = display_name(genre)
        if label_font.getlength(name) + 12 <= x1 - x0:
            draw.text(((x0 + x1) / 2, bar_top + _BAR_H / 2), name, fill=_text_on(colour), font=label_font,
                      anchor="mm")
    draw.rectangle((_LEFT, mark_top, _LEFT + plot_w, mark_top + _MARK_H), fill=(235, 235, 235))
    for start, end in windows:
        draw.rectangle((round(px(start)), mark_top, max(round(px(start)), round(px(end)) - 1), mark_top + _MARK_H),
                       fill=_MUTED)
    draw.text((_LEFT - 8, bar_top + _BAR_H / 2), "genre", fill=_MUTED, font=small, anchor="rm")

    step = _time_step(duration)
    for k in range(int(duration // step) + 1):
        x = px(k * step)
        draw.line((x, ticks_y - 3, x, ticks_y), fill=_MUTED)
        anchor = "la" if k == 0 else "ra" if x >= _LEFT + plot_w - 20 else "ma"
        draw.text((x, ticks_y + 2), _clock(k * step), fill=_MUTED, font=small, anchor=anchor)

    for r, row in enumerate(rows):
        y = legend_y + 32 * r
        for x, genre in row:
            draw.rectangle((_LEFT + x, y + 2, _LEFT + x + 22, y + 24), fill=genre_colour(index.get(genre, 0)))
            draw.text((_LEFT + x + 30, y + 13), display_name(genre), fill=_INK, font=big, anchor="lm")
    if caption:
        draw.text((_LEFT + plot_w, legend_y + 32 * caption_row + 13), caption, fill=_MUTED, font=small, anchor="rm")

    # 256 colours hold it without visible change; the PNG is 4 times smaller and faster to write.
    buffer = io.BytesIO()
    image.quantize(256, method=Image.Quantize.FASTOCTREE).save(buffer, format="PNG", compress_level=3)
    return buffer.getvalue()


def _png(fig: Figure, dpi: int = 100) -> bytes:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    buffer = io.BytesIO()
    FigureCanvasAgg(fig)
    fig.savefig(buffer, format="png", dpi=dpi, pil_kwargs={"compress_level": 3})
    return buffer.getvalue()


def confusion_image(confusion: np.ndarray, labels: Sequence[str], title: str = "Confusion matrix") -> bytes:
    """PNG of a confusion matrix (rows = true labels), counts annotated, rows shaded by recall."""
    from matplotlib.figure import Figure

    confusion = np.asarray(confusion)
    rates = confusion / np.maximum(confusion.sum(axis=1, keepdims=True), 1)
    n = len(labels)
    fig = Figure(figsize=(1.0 + 0.6 * n, 0.8 + 0.55 * n), layout="constrained")
    ax = fig.subplots()
    ax.imshow(rates, cmap="Blues", vmin=0.0, vmax=1.0)
    ax.set_xticks(range(n), labels, rotation=45, ha="right")
    ax.set_yticks(range(n), labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    for i in range(n):
        for j in range(n):
            if confusion[i, j]:
                ax.text(j, i, str(int(confusion[i, j])), ha="center", va="center", fontsize=8,
                        color="white" if rates[i, j] > 0.6 else "black")
    return _png(fig)


def curves_image(history: dict[str, Sequence[float]], title: str = "Training") -> bytes:
    """PNG of training curves: every ``x`` with its ``val_x`` twin on one panel."""
    from matplotlib.figure import Figure

    names = [k for k in history if not k.startswith("val_") and k != "learning_rate"]
    fig = Figure(figsize=(4.0 * max(1, len(names)), 3.2), layout="constrained")
    axes = np.atleast_1d(fig.subplots(1, max(1, len(names))))
    for ax, name in zip(axes, names):
        ax.plot(history[name], label=f"train {name}")
        if f"val_{name}" in history:
            ax.plot(history[f"val_{name}"], label=f"validation {name}")
        ax.set_xlabel("epoch")
        ax.set_title(name)
        ax.legend(fontsize=8)
    fig.suptitle(title)
    return _png(fig)


def write(path: Path, png: bytes) -> Path:
    """Write a picture: PNG bytes as they are for ``.png``, converted for ``.jpg``/``.jpeg``/``.webp``.

    Raises ValueError for any other file name ending; the folder must exist.
    """
    path = Path(path)
    kind = IMAGE_FORMATS.get(path.suffix.lower())
    if kind is None:
        raise ValueError(f"{path.name}: pictures are written as {', '.join(IMAGE_FORMATS)}")
    if kind == "PNG":
        path.write_bytes(png)
    else:
        with Image.open(io.BytesIO(png)) as picture:
            picture.convert("RGB").save(path, format=kind, quality=90)
    return path
