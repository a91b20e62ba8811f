"""Prediction: a :class:`Classifier` that serves an artifact with the LiteRT runtime.

No TensorFlow is imported here: LiteRT starts in a fraction of a second and uses a
fraction of the memory, which matters in every worker process of the bot. LiteRT's
own log lines (written by its C++ code straight to the process's stderr) are caught
while a model loads and passed to :mod:`logging` at DEBUG level.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from pathlib import Path
from typing import Any

import numpy as np

from genre_model.artifact import ModelInfo, load_info
from genre_model.audio import Decoding
from genre_model.config import DEFAULT_MODEL_DIR, MAX_AUDIO_SECONDS, MAX_WINDOWS, TOP_K, WINDOWS_EXTENSION
from genre_model.errors import ArtifactError
from genre_model.features import cut_windows, load_windows, log_mel, window_starts
from genre_model.nativelog import native_stderr_to_log

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class Segment:
    """One window of the timeline and its most likely genre."""

    start_s: float
    end_s: float
    genre: str
    p: float


@dataclasses.dataclass
class Prediction:
    """A whole-song prediction plus what the bot stores and draws."""

    genre: str
    probabilities: dict[str, float]
    timeline: list[Segment]
    duration_s: float
    model_version: str
    #: The model-input windows (kept by the bot for retraining; never the raw audio).
    windows: np.ndarray = dataclasses.field(repr=False)
    #: Log-mel spectrogram ``(n_mels, frames)`` of the analysed audio, for the image.
    spectrogram: np.ndarray = dataclasses.field(repr=False)
    seconds_per_frame: float = 0.0

    @property
    def confidence(self) -> float:
        return self.probabilities[self.genre]

    def top_k(self, k: int = TOP_K) -> list[tuple[str, float]]:
        """The ``k`` most likely genres, most likely first."""
        return sorted(self.probabilities.items(), key=lambda kv: -kv[1])[:k]

    def probabilities_array(self, labels: tuple[str, ...]) -> np.ndarray:
        """Probabilities as a vector in ``labels`` order."""
        return np.array([self.probabilities[label] for label in labels])

    def image(self, labels: tuple[str, ...], name: str = "") -> bytes:
        """PNG: the analysed spectrogram with the per-window genre timeline under it."""
        from genre_model.plots import prediction_image

        ranked = "  ".join(f"{g} {p:.0%}" for g, p in self.top_k())
        title = f"{name + ': ' if name else ''}{ranked}"
        segments = [(s.start_s, s.end_s, s.genre, s.p) for s in self.timeline]
        return prediction_image(self.spectrogram, self.seconds_per_frame, segments, labels, title)

    def to_json(self, file: str) -> dict[str, Any]:
        """The ``genre-model predict --json`` record."""
        return {
            "file": file, "genre": self.genre,
            "probabilities": {k: round(v, 6) for k, v in self.probabilities.items()},
            "timeline": [dataclasses.asdict(s) for s in self.timeline],
            "duration_s": round(self.duration_s, 3), "model_version": self.model_version,
        }


def softmax(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """Row-wise softmax of ``logits / temperature``."""
    z = np.asarray(logits, dtype=np.float64) / temperature
    z = z - z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


class _Runner:
    """A LiteRT model with a resizable batch dimension and any number of named outputs."""

    def __init__(self, path: Path, num_threads: int) -> None:
        from ai_edge_litert.interpreter import Interpreter  # here, so a caller can decode while it loads

        try:
            with native_stderr_to_log("LiteRT", log):
                self._interp = Interpreter(model_path=str(path), num_threads=num_threads)
                self._interp.allocate_tensors()  # XNNPACK is applied (and logs) here
        except Exception as exc:  # LiteRT raises ValueError/RuntimeError on bad flatbuffers
            raise ArtifactError(f"{path.name}: not a loadable LiteRT model ({exc})") from exc
        self._input = self._interp.get_input_details()[0]
        by_index = {d["index"]: d for d in self._interp.get_output_details()}
        signatures = self._interp.get_signature_list()
        if len(signatures) == 1:  # Keras exports name their outputs output_0, output_1, ... in this map
            (signature,) = signatures.values()
            self._outputs = {name: by_index[self._interp.get_signature_runner().get_output_details()[name]["index"]]
                             for name in signature["outputs"]}
        else:
            self._outputs = {d["name"]: d for d in by_index.values()}
        self._batch = int(self._input["shape"][0])

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(int(x) for x in self._input["shape"][1:])

    @property
    def output_shapes(self) -> dict[str, tuple[int, ...]]:
        """Each output's shape without the batch dimension."""
        return {name: tuple(int(x) for x in d["shape"][1:]) for name, d in self._outputs.items()}

    def __call__(self, batch: np.ndarray) -> dict[str, np.ndarray]:
        """Every output for ``batch``, by name."""
        batch = np.ascontiguousarray(batch, dtype=np.float32)
        if batch.shape[0] != self._batch:
            self._interp.resize_tensor_input(self._input["index"], list(batch.shape))
            self._interp.allocate_tensors()
            self._batch = batch.shape[0]
        self._interp.set_tensor(self._input["index"], batch)
        self._interp.invoke()
        return {name: self._interp.get_tensor(d["index"]).copy() for name, d in self._outputs.items()}


class Classifier:
    """Loads a model directory once and classifies audio files or bytes."""

    def __init__(self, model_dir: Path | str = DEFAULT_MODEL_DIR, *, num_threads: int | None = None,
                 lazy: bool = False) -> None:
        """Read and check the model's metadata, then load it into LiteRT (with ``lazy=True``: at the
        first prediction, while ffmpeg decodes that song)."""
        self.info: ModelInfo = load_info(Path(model_dir))
        self._threads = num_threads or min(2, os.cpu_count() or 1)
        self._embedder: _Runner | None = None
        self._head: _Runner | None = None
        self._embedding = ""
        if not lazy:
            self.load()

    def load(self) -> None:
        """Load both networks into LiteRT and check them against the metadata (once)."""
        if self._head is not None:
            return
        embedder = _Runner(self.info.path("embedder.tflite"), self._threads)
        head = _Runner(self.info.path("head.tflite"), self._threads)
        where = self.info.directory
        if embedder.input_shape != self.info.features.input_shape:
            raise ArtifactError(f"{where}: embedder input {embedder.input_shape} does not match "
                                f"the feature config {self.info.features.input_shape}")
        shapes = list(head.output_shapes.values())
        if shapes != [(len(self.info.labels),)]:
            raise ArtifactError(f"{where}: head has {shapes[0][-1] if len(shapes) == 1 else shapes} outputs for "
                                f"{len(self.info.labels)} labels")
        # The embedding is the embedder output the head takes; other outputs (tags, ...) may sit beside it.
        matching = [name for name, shape in embedder.output_shapes.items() if shape == head.input_shape]
        if not matching:
            raise ArtifactError(f"{where}: no embedder output has the head's input shape {head.input_shape}")
        self._embedding = next((n for n in matching if "embed" in n), matching[0])
        self._embedder, self._head = embedder, head

    @property
    def labels(self) -> tuple[str, ...]:
        return self.info.labels

    @property
    def version(self) -> str:
        return self.info.version

    def embed(self, windows: np.ndarray) -> np.ndarray:
        """Embeddings of model-input windows ``(n, mels, frames, ch)``, one window per call.

        LiteRT keeps its working memory at the largest batch it has seen (about 10 MB a
        window for musicnn); a fixed batch of one bounds it and costs no speed on the CPU.
        """
        self.load()
        assert self._embedder is not None
        return np.concatenate([self._embedder(windows[i:i + 1])[self._embedding] for i in range(len(windows))])

    def logits(self, embeddings: np.ndarray) -> np.ndarray:
        """Uncalibrated head logits of embeddings ``(m, d)``."""
        self.load()
        assert self._head is not None
        (logits,) = self._head(embeddings).values()
        return logits

    def probabilities(self, windows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(track probabilities ``(labels,)``, per-window probabilities ``(n, labels)``)."""
        emb = self.embed(windows)
        logits = self.logits(np.concatenate([emb.mean(axis=0, keepdims=True), emb]))
        probs = softmax(logits, self.info.temperature)
        return probs[0], probs[1:]

    def file_probabilities(self, path: str | os.PathLike) -> np.ndarray:
        """Track probabilities (labels order) of an audio file or of stored ``.npz`` windows."""
        path = Path(path)
        if path.suffix.lower() == WINDOWS_EXTENSION:
            return self.probabilities(load_windows(path, self.info.features))[0]
        return self.predict(path).probabilities_array(self.labels)

    def predict(self, source: str | os.PathLike | bytes, *, max_seconds: float = MAX_AUDIO_SECONDS,
                max_windows: int = MAX_WINDOWS) -> Prediction:
        """Decode, window and classify one song. Raises AudioError for unusable input."""
        cfg = self.info.features
        with Decoding(source, cfg.sample_rate, max_seconds=max_seconds) as decoding:
            self.load()  # a lazy classifier loads while ffmpeg decodes
            samples = decoding.samples(min_seconds=cfg.min_samples / cfg.sample_rate)
        spectrogram = log_mel(samples, cfg)
        starts = window_starts(spectrogram.shape[-1], cfg, max_windows=max_windows)
        windows = cut_windows(spectrogram, cfg, starts)
        track, per_window = self.probabilities(windows)
        seconds_per_frame = cfg.hop_length / cfg.sample_rate
        timeline = [
            Segment(round(float(s * seconds_per_frame), 3), round(float((s + cfg.window_frames) * seconds_per_frame), 3),
                    self.labels[int(p.argmax())], round(float(p.max()), 4))
            for s, p in zip(starts, per_window)
        ]
        probabilities = {label: float(p) for label, p in zip(self.labels, track)}
        return Prediction(
            genre=self.labels[int(track.argmax())], probabilities=probabilities, timeline=timeline,
            duration_s=samples.size / cfg.sample_rate, model_version=self.version, windows=windows,
            spectrogram=spectrogram[0], seconds_per_frame=seconds_per_frame,
        )


__all__ = ["Classifier", "Prediction", "Segment", "softmax"]
