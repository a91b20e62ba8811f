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

from genre_model.artifact import ModelInfo, load_detector, load_head, load_info
from genre_model.config import (
    DEFAULT_MODEL_DIR, MAX_AUDIO_SECONDS, MAX_WINDOWS, TOP_K, WINDOWS_EXTENSION, coverage, display_name,
)
from genre_model.errors import ArtifactError
from genre_model.linear import softmax, song_probabilities
from genre_model.features import FeatureConfig, load_windows, song_features, window_spans
from genre_model.nativelog import native_stderr_to_log
from genre_model.reading import read_song

log = logging.getLogger(__name__)

#: The picture's spectrogram keeps at most about this many frames of a song (the image
#: max-pools ~4 per pixel column); a long song's other frames are never computed.
OVERVIEW_FRAMES = 3000


@dataclasses.dataclass(frozen=True)
class Segment:
    """A stretch of the song and its most likely genre: one analysed window, or a drawn segment."""

    start_s: float
    end_s: float
    genre: str
    p: float


#: Runners-up within this much probability of the top genre make a "could be X or Y" call.
CLOSE_CALL = 0.15
#: How many of musicnn's MSD tags a prediction reports (strongest first).
TOP_TAGS = 3
#: The words a tag list must have for a genre before its tags are worth showing with that genre
#: (the genre's own name otherwise). MSD's 50 tags have none for classical or reggae: for those
#: genres the strongest tags ("instrumental", "beautiful") say nothing about the answer.
GENRE_VOCABULARY = {"hiphop": ("hip-hop", "hip hop", "rap", "rnb"), "disco": ("disco", "dance", "funk")}


def tags_speak_of(genre: str | None, tag_names: tuple[str, ...]) -> bool:
    """Whether a tag list has words for ``genre`` (so its tags carry information next to it)."""
    if genre is None:
        return False
    words = GENRE_VOCABULARY.get(genre, (genre,))
    return any(word in name.lower() for name in tag_names for word in words)


def covered_seconds(timeline: list[Segment], duration_s: float) -> float:
    """Seconds of ``[0, duration_s]`` inside at least one window of ``timeline`` (overlaps counted once)."""
    total, reached = 0.0, 0.0
    for seg in sorted(timeline, key=lambda s: s.start_s):
        start, end = max(seg.start_s, reached), min(seg.end_s, duration_s)
        if end > start:
            total += end - start
        reached = max(reached, end)
    return total


def timeline_segments(timeline: list[Segment], duration_s: float) -> list[Segment]:
    """The drawn timeline: the seconds the analysed windows heard, each in its window's genre.

    Where two windows overlap, the border is halfway between their centres; where they leave a
    gap (a long song, windows spread over it), the gap stays undrawn: nothing was heard there.
    Touching runs of one genre are merged, with the mean of their ``p``.
    """
    windows = sorted(timeline, key=lambda s: s.start_s)
    centres = [(w.start_s + w.end_s) / 2 for w in windows]
    pieces: list[tuple[float, float, str, list[float]]] = []
    for i, w in enumerate(windows):
        start, end = max(w.start_s, 0.0), min(w.end_s, duration_s)
        if i and windows[i - 1].end_s > w.start_s:  # overlaps the previous window: split the overlap
            start = max(start, (centres[i - 1] + centres[i]) / 2)
        if i + 1 < len(windows) and windows[i + 1].start_s < w.end_s:
            end = min(end, (centres[i] + centres[i + 1]) / 2)
        start, end = round(start, 3), round(end, 3)
        if end <= start:
            continue
        if pieces and pieces[-1][2] == w.genre and pieces[-1][1] == start:
            pieces[-1] = (pieces[-1][0], end, w.genre, pieces[-1][3] + [w.p])
        else:
            pieces.append((start, end, w.genre, [w.p]))
    return [Segment(start, end, genre, round(float(np.mean(ps)), 4)) for start, end, genre, ps in pieces]


@dataclasses.dataclass
class Prediction:
    """A whole-song prediction plus what the bot stores and draws.

    ``sound`` is "music", or what the song sounds like instead ("speech", "tone", "noise", "sound");
    then ``genre`` is None and the genre probabilities are only what the head would say.
    """

    genre: str | None
    probabilities: dict[str, float]
    #: The analysed windows, in time order.
    timeline: list[Segment]
    #: Length of the song as analysed: the file's, or its first ``max_seconds``.
    duration_s: float
    #: Seconds of the decoded audio inside at least one analysed window.
    analysed_s: float
    model_version: str
    #: The model-input windows (kept by the bot for retraining; never the raw audio).
    windows: np.ndarray = dataclasses.field(repr=False)
    #: Log-mel spectrogram ``(n_mels, frames)`` of the decoded audio, for the image (a long
    #: song's keeps every few frames: ``seconds_per_frame`` apart).
    spectrogram: np.ndarray = dataclasses.field(repr=False)
    seconds_per_frame: float = 0.0
    #: Sample rate of the analysed audio (puts the spectrogram's mel bands on a frequency axis).
    sample_rate: int = 16000
    sound: str = "music"
    #: The strongest MSD tags of the song (musicnn's 50 tags; not genres), strongest first.
    tags: list[tuple[str, float]] = dataclasses.field(default_factory=list)
    #: The feature settings the windows were made with (kept with them, so they stay usable).
    features: FeatureConfig | None = dataclasses.field(default=None, repr=False)
    #: The whole file's length, when known (longer than ``duration_s`` when only its start was analysed).
    file_s: float | None = None
    #: The sound detector's probability that this is music (None for a model without a detector).
    music_p: float | None = None
    #: Judged music, but only just: the genre is given with "this may not be music".
    doubtful: bool = False

    @property
    def music(self) -> bool:
        return self.sound == "music"

    @property
    def confidence(self) -> float:
        return self.probabilities[self.genre] if self.genre else 0.0

    @property
    def n_windows(self) -> int:
        """How many windows were analysed."""
        return len(self.timeline)

    @property
    def segments(self) -> list[Segment]:
        """The timeline as drawn: only the seconds the analysed windows heard (gaps between spread
        windows stay undrawn)."""
        return timeline_segments(self.timeline, self.duration_s)

    def top_k(self, k: int = TOP_K) -> list[tuple[str, float]]:
        """The ``k`` most likely genres, most likely first."""
        return sorted(self.probabilities.items(), key=lambda kv: -kv[1])[:k]

    def close_call(self) -> list[str]:
        """The top genre and the runners-up within :data:`CLOSE_CALL` of it, when there are any."""
        return close_genres(self.probabilities) if self.music else []

    def verdict(self) -> str:
        """The answer in words: "reggae", "could be reggae or hip-hop", "speech, not music",
        "jazz, but this may not be music"."""
        words = verdict(self.genre, self.probabilities, self.sound)
        return f"{words}, but this may not be music" if self.doubtful and self.music else words

    def probabilities_array(self, labels: tuple[str, ...]) -> np.ndarray:
        """Probabilities as a vector in ``labels`` order."""
        return np.array([self.probabilities[label] for label in labels])

    def without_spectrogram(self) -> "Prediction":
        """A copy without the picture's spectrogram (once the picture is drawn): what a worker sends back."""
        return dataclasses.replace(self, spectrogram=np.zeros((0, 0), np.float32))

    def title(self) -> str:
        """The picture's headline: the top genres with their chances, led by the verdict when the call
        is close ("Could be Reggae or Jazz:  Reggae 35%  Jazz 21%  Pop 13%"), tags after; or the
        not-music sentence."""
        words = self.verdict()
        if not self.music:
            return words[:1].upper() + words[1:]
        title = "  ".join(f"{display_name(g)} {p:.0%}" for g, p in self.top_k())
        if self.close_call() or self.doubtful:
            title = f"{words[:1].upper()}{words[1:]}:  {title}"
        if self.tags:
            title += "   tags: " + ", ".join(t for t, _ in self.tags)
        return title

    def image(self, labels: tuple[str, ...], name: str = "") -> bytes:
        """PNG: the spectrogram with the genre timeline under it (analysed windows marked)."""
        from genre_model.plots import prediction_image

        return prediction_image(
            self.spectrogram, self.seconds_per_frame, self.sample_rate,
            segments=[(s.start_s, s.end_s, s.genre) for s in self.segments] if self.music else [],
            windows=[(s.start_s, s.end_s) for s in self.timeline],
            labels=labels, title=self.title(), name=name,
            caption=f"analysed {coverage(self.analysed_s, self.duration_s, self.n_windows, self.file_s)}")

    def to_json(self, file: str) -> dict[str, Any]:
        """The ``genre-model predict --json`` record. Not music: no genre timeline or tags, only the
        seconds each analysed window read."""
        timeline = [dataclasses.asdict(s) if self.music else {"start_s": s.start_s, "end_s": s.end_s}
                    for s in self.timeline]
        return {
            "file": file, "music": self.music, "sound": self.sound, "genre": self.genre,
            "close_call": self.close_call(),
            "probabilities": {k: round(v, 6) for k, v in self.probabilities.items()},
            "tags": [{"tag": t, "p": round(p, 4)} for t, p in self.tags] if self.music else [],
            "timeline": timeline,
            "segments": [dataclasses.asdict(s) for s in self.segments] if self.music else [],
            "duration_s": round(self.duration_s, 3), "analysed_s": round(self.analysed_s, 3),
            "file_s": None if self.file_s is None else round(self.file_s, 3),
            "music_p": None if self.music_p is None else round(self.music_p, 4), "doubtful": self.doubtful,
            "n_windows": self.n_windows, "model_version": self.model_version,
        }


def close_genres(probabilities: dict[str, float], margin: float = CLOSE_CALL) -> list[str]:
    """The top genre plus every runner-up within ``margin`` of it; empty when the top one stands alone."""
    ranked = sorted(probabilities.items(), key=lambda kv: -kv[1])
    close = [g for g, p in ranked if ranked[0][1] - p < margin]
    return close if len(close) > 1 else []


def verdict(genre: str | None, probabilities: dict[str, float], sound: str = "music") -> str:
    """What the model thinks, in words a channel reads: a genre, a close call, or "not music"."""
    if sound != "music" or genre is None:
        kind = {"tone": "a tone or beeps", "noise": "noise", "sound": "a real-world sound (animals, machines, crowds)"}.get(sound, sound)
        return f"this sounds like {kind}, not music"
    close = close_genres(probabilities)
    if close:
        names = [display_name(g) for g in close[:3]]
        return f"could be {', '.join(names[:-1])} or {names[-1]}"
    return display_name(genre)


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
            details = self._interp.get_signature_runner().get_output_details()
            self._outputs = {name: by_index[details[name]["index"]] for name in signature["outputs"]}
        else:
            self._outputs = {d["name"]: d for d in by_index.values()}
        self._batch = int(self._input["shape"][0])

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(int(x) for x in self._input["shape"][1:])

    @property
    def output_shapes(self) -> dict[str, tuple[int, ...]]:
        """Each output's shape without the batch dimension, by name."""
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
        """Read and check the model's metadata and head, then load the embedder into LiteRT (with
        ``lazy=True``: at the first prediction, while ffmpeg decodes that song)."""
        self.info: ModelInfo = load_info(Path(model_dir))
        self._threads = num_threads or min(2, os.cpu_count() or 1)
        self._head = load_head(self.info)
        self._detector = load_detector(self.info)
        if self._detector is not None and self._detector.linear.n_features != self._head.n_features:
            raise ArtifactError(f"{self.info.directory}: the sound detector takes {self._detector.linear.n_features} "
                                f"features, the head {self._head.n_features}")
        self._embedder: _Runner | None = None
        self._embedding = ""
        if not lazy:
            self.load()

    def load(self) -> None:
        """Load the embedder into LiteRT and check it against the metadata and the head (once)."""
        if self._embedder is not None:
            return
        embedder = _Runner(self.info.path("embedder.tflite"), self._threads)
        where = self.info.directory
        if embedder.input_shape != self.info.features.input_shape:
            raise ArtifactError(f"{where}: embedder input {embedder.input_shape} does not match "
                                f"the feature config {self.info.features.input_shape}")
        # The embedding is the output the head takes (looked up by width; others may sit beside it).
        matching = [name for name, shape in embedder.output_shapes.items() if shape == (self._head.n_features,)]
        if not matching:
            raise ArtifactError(f"{where}: embedder gives {list(embedder.output_shapes.values())} features, "
                                f"the head takes {self._head.n_features}")
        self._embedding = next((n for n in matching if "embed" in n), matching[0])
        self._embedder = embedder

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
        return self._head(embeddings)

    def song_probabilities(self, embeddings: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Window embeddings ``(n, d)`` -> (song probabilities ``(labels,)``, per-window ``(n, labels)``).

        The song's genre is decided by :func:`~genre_model.linear.song_probabilities`, as in training.
        """
        temperature = self.info.temperature
        return (song_probabilities(self._head, embeddings, temperature),
                softmax(self.logits(embeddings), temperature))

    def probabilities(self, windows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(track probabilities ``(labels,)``, per-window probabilities ``(n, labels)``) of model-input windows."""
        return self.song_probabilities(self.embed(windows))

    def sound(self, embeddings: np.ndarray) -> str:
        """"music", or what the song sounds like instead (a model without a detector always says music)."""
        return self.hearing(embeddings)[0]

    def hearing(self, embeddings: np.ndarray) -> tuple[str, float | None, bool]:
        """(what the song sounds like, the detector's probability of music, whether a "music"
        verdict is doubtful); a model without a detector hears music, undoubted."""
        if self._detector is None:
            return "music", None, False
        sound, p = self._detector.judge(embeddings.mean(axis=0))
        return sound, p["music"], sound == "music" and self._detector.doubts(p["music"])

    def tags(self, embeddings: np.ndarray, k: int = TOP_TAGS) -> list[tuple[str, float]]:
        """The ``k`` strongest tags of the song (mean over windows), strongest first; [] without tags."""
        names = self.info.tags
        if not names:
            return []
        scores = embeddings[:, -len(names):].mean(axis=0)
        order = np.argsort(-scores)[:k]
        return [(names[i], round(float(scores[i]), 4)) for i in order]

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
        song = read_song(source, cfg, max_windows, max_seconds=max_seconds, meanwhile=self.load)
        windows, overview, step = song_features(song.excerpts, cfg, song.starts, OVERVIEW_FRAMES)
        embeddings = self.embed(windows)
        track, per_window = self.song_probabilities(embeddings)
        sound, music_p, doubtful = self.hearing(embeddings)
        duration = song.seconds
        timeline = [
            Segment(round(float(begin), 3), round(float(end), 3), self.labels[int(p.argmax())],
                    round(float(p.max()), 4))
            for (begin, end), p in zip(window_spans(song.starts, cfg, song.excerpts.n_samples), per_window)
        ]
        probabilities = {label: float(p) for label, p in zip(self.labels, track)}
        genre = self.labels[int(track.argmax())] if sound == "music" else None
        return Prediction(
            genre=genre, probabilities=probabilities,
            timeline=timeline, duration_s=duration, analysed_s=covered_seconds(timeline, duration),
            file_s=song.file_seconds, music_p=music_p, doubtful=doubtful,
            model_version=self.version, windows=windows, spectrogram=overview,
            seconds_per_frame=step * cfg.hop_length / cfg.sample_rate, sample_rate=cfg.sample_rate,
            sound=sound, features=cfg,
            tags=self.tags(embeddings) if sound == "music" and tags_speak_of(genre, self.info.tags) else [],
        )


__all__ = ["Classifier", "Prediction", "Segment", "close_genres", "covered_seconds", "softmax", "timeline_segments",
           "verdict"]
