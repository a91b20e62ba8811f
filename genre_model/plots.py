"""Pictures: the spectrogram-with-timeline image, confusion matrices, training curves.

Uses matplotlib's object API with the Agg canvas (no pyplot, no display, thread-safe).
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Sequence

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.patches import Patch

#: One fixed colour per genre index, so the same genre looks the same everywhere.
_PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
            "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf")


def genre_colour(index: int) -> str:
    """Colour used for the genre at ``index`` of a model's labels."""
    return _PALETTE[index % len(_PALETTE)]


def _png(fig: Figure, dpi: int = 100) -> bytes:
    buffer = io.BytesIO()
    FigureCanvasAgg(fig)
    fig.savefig(buffer, format="png", dpi=dpi, pil_kwargs={"compress_level": 3})
    return buffer.getvalue()


def _downsample_columns(image: np.ndarray, max_columns: int) -> np.ndarray:
    """Max-pool time frames so the image has at most ``max_columns`` columns (what the PNG can show)."""
    step = int(np.ceil(image.shape[1] / max_columns)) if image.shape[1] > max_columns else 1
    if step == 1:
        return image
    usable = image.shape[1] // step * step
    return image[:, :usable].reshape(image.shape[0], -1, step).max(axis=2)


def prediction_image(
    spectrogram: np.ndarray,
    seconds_per_frame: float,
    timeline: Sequence[tuple[float, float, str, float]],
    labels: Sequence[str],
    title: str,
) -> bytes:
    """PNG of a log-mel spectrogram with the per-window genre timeline drawn under it.

    ``timeline`` holds ``(start_s, end_s, genre, p)`` for each analysed window; the
    bar's opacity shows the window's confidence.
    """
    width, height = 8.0, 3.6
    fig = Figure(figsize=(width, height))
    spec_ax = fig.add_axes((0.08, 0.42, 0.9, 0.48))
    time_ax = fig.add_axes((0.08, 0.24, 0.9, 0.1), sharex=spec_ax)
    duration = spectrogram.shape[1] * seconds_per_frame
    shown = _downsample_columns(spectrogram, int(width * 100))
    lo, hi = np.percentile(shown, [2, 99.5]) if shown.size else (0.0, 1.0)
    spec_ax.imshow(shown, origin="lower", aspect="auto", cmap="magma", vmin=lo, vmax=hi,
                   extent=(0.0, duration, 0, spectrogram.shape[0]), interpolation="nearest")
    spec_ax.set_ylabel("mel band")
    spec_ax.tick_params(labelbottom=False)
    spec_ax.set_title(title, fontsize=11, loc="left")
    index = {label: i for i, label in enumerate(labels)}
    seen: dict[str, int] = {}
    for start, end, genre, p in timeline:
        i = index.get(genre, 0)
        seen.setdefault(genre, i)
        time_ax.barh(0, end - start, left=start, height=1.0, color=genre_colour(i), alpha=0.35 + 0.65 * p,
                     edgecolor="white", linewidth=0.5)
    time_ax.set_yticks([])
    time_ax.set_ylabel("genre", rotation=0, ha="right", va="center")
    time_ax.set_xlabel("time (s)")
    time_ax.set_xlim(0.0, max(duration, 1e-3))
    if seen:
        handles = [Patch(color=genre_colour(i), label=g) for g, i in sorted(seen.items(), key=lambda kv: kv[1])]
        fig.legend(handles=handles, loc="lower center", ncol=min(6, len(handles)), frameon=False, fontsize=8)
    return _png(fig)


def confusion_image(confusion: np.ndarray, labels: Sequence[str], title: str = "Confusion matrix") -> bytes:
    """PNG of a confusion matrix (rows = true labels), counts annotated, rows shaded by recall."""
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
    """Write PNG bytes, creating the parent folder."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(png)
    return path
