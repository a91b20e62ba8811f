"""Training: data folders -> a calibrated model artifact, and cross-validation by artist.

The recipe:

1. read the tracks (genre folders or a manifest; exported corrections are ``.npz``
   windows); where the data names artists, every split keeps an artist on one side;
2. ``musicnn`` (the default): embed every window with the frozen pretrained network
   (pooled mid-level features, penultimate layer and MSD tags; cached on disk); a song is
   the mean of its windows' embeddings; the head is a strongly regularised logistic
   regression on songs, with every genre weighing the same (optionally every artist of a
   genre too), chosen on folds grouped by artist (see the README);
   ``cnn`` (the original study): train the custom CNN end to end on windows,
   class-balanced, with SpecAugment-style masking, gain jitter and mixup, early stopping on
   a validation split;
3. temperature scaling for calibrated probabilities, fitted on predictions for artists the
   model had not seen (musicnn: out-of-fold predictions of folds grouped by artist;
   cnn: the validation split);
4. a sound detector (music / speech / tone / noise) on the same embedding, trained on the
   training songs against generated non-music (:mod:`genre_model.sounds`);
5. export: embedder (Keras and LiteRT), linear head, detector, metadata, training curves.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from genre_model.artifact import ModelInfo, save_artifact
from genre_model.audio import load_audio
from genre_model.config import GENRES
from genre_model.dataset import (
    Track, default_grouping, group_folds, has_artists, load_dataset, regroup, split_tracks, summarise,
)
from genre_model.detector import SoundDetector, fit_detector
from genre_model.errors import AudioError, DatasetError, TrainingUnavailable
from genre_model.evaluate import TrackResult, fit_temperature, metrics, report
from genre_model.features import (
    CNN_FEATURES, MUSICNN_FEATURES, FeatureConfig, extract_windows, load_windows, normalise,
)
from genre_model.linear import Linear, softmax, song_probabilities
from genre_model.nativelog import native_stderr_to_log
from genre_model.recipe import TrainOptions

Progress = Callable[[str], None]

#: How to get what training needs on top of a serving install.
TRAIN_EXTRA = "pip install '.[train]'"


def import_keras() -> Any:
    """Keras (with TensorFlow under it), or :class:`TrainingUnavailable` saying how to install the
    training extra (TensorFlow, Keras, scikit-learn).

    TensorFlow's C++ INFO and WARNING lines stay off the terminal unless ``TF_CPP_MIN_LOG_LEVEL``
    says otherwise; what it prints while it loads goes to the DEBUG log.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        import sklearn  # noqa: F401

        with native_stderr_to_log("TensorFlow", logging.getLogger(__name__)):  # its start-up lines
            import keras
            import tensorflow as tf

            tf.config.list_physical_devices()  # looks for GPUs now ("failed call to cuInit" on a CPU machine)
    except ImportError as exc:
        raise TrainingUnavailable(f"training needs TensorFlow, Keras and scikit-learn, which are not installed; "
                                  f"get them with: {TRAIN_EXTRA}") from exc
    return keras
def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# ----------------------------------------------------------------------------- features

def features_for(arch: str, loudness_target: float | None = None) -> FeatureConfig:
    """The feature preset an architecture is trained on, songs scaled to ``loudness_target`` LUFS (None: not)."""
    preset = MUSICNN_FEATURES if arch == "musicnn" else CNN_FEATURES
    return dataclasses.replace(preset, loudness_target=loudness_target)


def track_windows(track: Track, features: FeatureConfig, hop_frames: int, max_seconds: float) -> np.ndarray:
    """All windows of one track (audio decoded, or stored windows loaded)."""
    if track.is_windows:
        return load_windows(track.path, features)
    samples = load_audio(track.path, features.sample_rate, max_seconds=max_seconds,
                         min_seconds=features.min_samples / features.sample_rate)
    return extract_windows(samples, features, hop_frames=hop_frames)[0]


def _cache_key(track: Track, *parts: str) -> str:
    stat = track.path.stat()
    text = "|".join([str(track.path.resolve()), str(stat.st_size), str(int(stat.st_mtime)), *parts])
    return hashlib.sha256(text.encode()).hexdigest()[:24]


def embed_tracks(tracks: Sequence[Track], embedder: Any, features: FeatureConfig, *, hop_frames: int,
                 max_seconds: float, cache_dir: Path | None, tag: str, log: Progress = _log) -> list[np.ndarray | None]:
    """Embeddings ``(n_windows, d)`` of every track, cached under ``cache_dir``; None for unusable audio.

    Audio files are cached; stored windows (``.npz``, the bot's exported corrections) are not: they
    are re-exported for every retrain, so never a cache hit, and they are members' data, which
    must not outlive the export (``/genre-forget``)."""
    from tqdm import tqdm

    out: list[np.ndarray | None] = []
    for track in tqdm(tracks, desc="embedding", unit="track", disable=None, file=sys.stderr):
        cached = None
        if cache_dir is not None and not track.is_windows:
            cached = cache_dir / f"{_cache_key(track, tag, features.fingerprint(), str(hop_frames), str(max_seconds))}.npy"
        if cached is not None and cached.is_file():
            out.append(np.load(cached))
            continue
        try:
            windows = track_windows(track, features, hop_frames, max_seconds)
        except (AudioError, DatasetError) as exc:
            log(f"skipping {track.path.name}: {exc}")
            out.append(None)
            continue
        emb = np.asarray(embedder.predict(windows, batch_size=32, verbose=0), dtype=np.float32)
        if cached is not None:
            cached.parent.mkdir(parents=True, exist_ok=True)
            np.save(cached, emb)
        out.append(emb)
    return out


# ----------------------------------------------------------------------------- musicnn head

def sample_weights(tracks: Sequence[Track], weighting: str) -> np.ndarray:
    """Per-track weights: every genre the same total ("class"), and within a genre every
    artist group the same ("artist+class"); mean weight 1."""
    w = np.ones(len(tracks))
    if weighting == "artist+class":
        groups = [t.group for t in tracks]
        for g in set(groups):
            members = [i for i, x in enumerate(groups) if x == g]
            w[members] = 1.0 / len(members)
    if weighting in ("class", "artist+class"):
        labels = np.array([t.label for t in tracks])
        for label in set(labels):
            w[labels == label] /= w[labels == label].sum()
    return w * len(tracks) / w.sum()


def fit_logistic(x: np.ndarray, y: np.ndarray, weights: np.ndarray, n_classes: int, c: float) -> Linear:
    """Standardised multinomial logistic regression (scikit-learn, L-BFGS) as a :class:`Linear` head."""
    from sklearn.linear_model import LogisticRegression

    mean, scale = x.mean(axis=0), x.std(axis=0) + 1e-6
    present = np.unique(y)
    if len(present) == 1:  # (a fold of very little data) nothing to tell apart: always that genre
        bias = np.full(n_classes, -30.0)
        bias[present[0]] = 0.0
        return Linear(np.zeros((x.shape[1], n_classes)), bias)
    model = LogisticRegression(C=c, max_iter=5000).fit((x - mean) / scale, y, sample_weight=weights)
    w, b = model.coef_.T, model.intercept_
    if len(model.classes_) == 2:  # sklearn keeps one column (class 1 vs 0); +-half of it gives the same softmax
        w, b = np.hstack([-w / 2, w / 2]), np.array([-b[0] / 2, b[0] / 2])
    coef = np.zeros((x.shape[1], n_classes))
    bias = np.full(n_classes, -30.0)  # a genre missing from the data gets a hopeless logit
    coef[:, model.classes_] = w
    bias[model.classes_] = b
    return Linear.from_standardised(coef, bias, mean, scale)


# ----------------------------------------------------------------------------- custom CNN

def _cnn_batches(windows: np.ndarray, targets: np.ndarray, n_classes: int, opts: TrainOptions, steps: int):
    import keras

    class WindowSequence(keras.utils.PyDataset):
        def __init__(self):
            super().__init__()
            self.rng = np.random.default_rng(opts.seed)
            self.by_class = [np.flatnonzero(targets == c) for c in range(n_classes)]
            self.present = [c for c in range(n_classes) if self.by_class[c].size]

        def __len__(self):
            return steps

        def __getitem__(self, _):
            rng, b = self.rng, opts.batch_size
            classes = rng.choice(self.present, size=b)
            x = windows[[int(rng.choice(self.by_class[c])) for c in classes]].copy()
            y = np.eye(n_classes, dtype=np.float32)[classes]
            x[..., 0] += rng.normal(0, 0.15, size=(b, 1, 1)).astype(np.float32)  # gain jitter (standardised dB)
            for i in range(b):  # SpecAugment-style masks: one band of mels, one of frames
                f0, fw = rng.integers(0, x.shape[1]), rng.integers(0, x.shape[1] // 8)
                t0, tw = rng.integers(0, x.shape[2]), rng.integers(0, x.shape[2] // 8)
                x[i, f0:f0 + fw] = 0.0
                x[i, :, t0:t0 + tw] = 0.0
            if opts.mixup > 0:
                lam = rng.beta(opts.mixup, opts.mixup, size=(b, 1)).astype(np.float32)
                perm = rng.permutation(b)
                x = lam[:, :, None, None] * x + (1 - lam[:, :, None, None]) * x[perm]
                y = lam * y + (1 - lam) * y[perm]
            return x, y

    return WindowSequence()


def fit_cnn(train_windows: Sequence[np.ndarray], train_y: np.ndarray, val_windows: Sequence[np.ndarray],
            val_y: np.ndarray, features: FeatureConfig, n_classes: int, opts: TrainOptions,
            verbose: int = 1) -> tuple[Any, dict[str, list[float]]]:
    """Train the custom CNN end to end on windows."""
    import keras

    from genre_model.model import build_cnn

    x_train = np.concatenate(train_windows)
    y_train = np.concatenate([np.full(len(w), y) for w, y in zip(train_windows, train_y)])
    x_val = np.concatenate(val_windows)
    y_val = np.eye(n_classes, dtype=np.float32)[np.concatenate([np.full(len(w), y) for w, y in zip(val_windows, val_y)])]
    model = build_cnn(features, n_classes, dropout=min(opts.dropout, 0.4))
    model.compile(optimizer=keras.optimizers.Adam(opts.learning_rate),
                  loss=keras.losses.CategoricalCrossentropy(from_logits=True, label_smoothing=0.05),
                  metrics=["accuracy"])
    steps = max(20, len(x_train) // opts.batch_size)
    callbacks = [keras.callbacks.EarlyStopping("val_loss", patience=opts.patience, restore_best_weights=True),
                 keras.callbacks.ReduceLROnPlateau("val_loss", factor=0.5, patience=max(2, opts.patience // 3))]
    history = model.fit(_cnn_batches(x_train, y_train, n_classes, opts, steps), validation_data=(x_val, y_val),
                        epochs=opts.epochs, callbacks=callbacks, verbose=verbose)
    return model, {k: [float(v) for v in vals] for k, vals in history.history.items()}


def channel_stats(windows: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel mean and std over all windows ``(n, mels, frames, ch)``."""
    stacked = np.concatenate(windows)
    return stacked.mean(axis=(0, 1, 2)), stacked.std(axis=(0, 1, 2))


# ----------------------------------------------------------------------------- the pipeline

@dataclasses.dataclass
class Fitted:
    """A trained (embedder, head) pair with its calibration, detector and history."""

    embedder: Any
    head: Linear
    features: FeatureConfig
    temperature: float
    detector: SoundDetector | None = None
    tags: tuple[str, ...] = ()
    history: dict[str, list[float]] = dataclasses.field(default_factory=dict)
    #: Metrics of the held-out predictions the temperature was fitted on (artists the model had not seen).
    held_out: dict[str, Any] = dataclasses.field(default_factory=dict)

    def track_probabilities(self, embeddings: Sequence[np.ndarray]) -> np.ndarray:
        """Calibrated track probabilities from per-window embeddings."""
        return np.stack([song_probabilities(self.head, e, self.temperature) for e in embeddings])


def _song_means(embeddings: Sequence[np.ndarray]) -> np.ndarray:
    return np.stack([e.mean(axis=0) for e in embeddings]).astype(np.float64)


def _targets(tracks: Sequence[Track], labels: Sequence[str]) -> np.ndarray:
    index = {label: i for i, label in enumerate(labels)}
    return np.array([index[t.label] for t in tracks], dtype=np.int64)


def _grouping(tracks: Sequence[Track]) -> list[Track]:
    """Groups for every split: whole artists when the data names them."""
    return regroup(tracks, default_grouping(tracks))


class Trainer:
    """Holds per-track inputs (embeddings or windows) so folds and retrains reuse them."""

    def __init__(self, opts: TrainOptions, labels: Sequence[str] = GENRES, log: Progress = _log) -> None:
        keras = import_keras()

        self.opts = opts
        self.labels = tuple(labels)
        self.log = log
        keras.utils.set_random_seed(opts.seed)
        self.features = features_for(opts.arch, opts.loudness_target)
        self.embedder = None
        self.tags: tuple[str, ...] = ()
        if opts.arch == "musicnn":
            from genre_model.model import build_musicnn_embedder
            from genre_model.musicnn import MSD_TAGS

            self.embedder = build_musicnn_embedder(self.features, opts.pooling, opts.transform, tags=True)
            self.tags = tuple(MSD_TAGS)
        self._inputs: dict[Path, np.ndarray | None] = {}
        self._generated: tuple[list[np.ndarray], list[str]] | None = None
        self._copy_folder: Path | None = None

    @property
    def _tag(self) -> str:
        return f"musicnn-{self.opts.pooling}-{self.opts.transform}-tags"

    def inputs(self, tracks: Sequence[Track]) -> list[np.ndarray | None]:
        """Window embeddings (musicnn) or un-normalised windows (cnn) per track; None if unusable."""
        missing = [t for t in tracks if t.path not in self._inputs]
        if missing:
            hop = self.features.window_frames // 2
            if self.embedder is not None:
                values = embed_tracks(missing, self.embedder, self.features, hop_frames=hop,
                                      max_seconds=self.opts.max_seconds, cache_dir=self.opts.cache_dir,
                                      tag=self._tag, log=self.log)
            else:
                values = []
                for t in missing:
                    try:
                        values.append(track_windows(t, self.features, hop, self.opts.max_seconds))
                    except (AudioError, DatasetError) as exc:
                        self.log(f"skipping {t.path.name}: {exc}")
                        values.append(None)
            self._inputs.update({t.path: v for t, v in zip(missing, values)})
        return [self._inputs[t.path] for t in tracks]

    def usable(self, tracks: Sequence[Track]) -> list[Track]:
        """The tracks whose audio (or stored windows) could be read."""
        return [t for t, x in zip(tracks, self.inputs(tracks)) if x is not None]

    def field_copies(self, tracks: Sequence[Track]) -> list[Track]:
        """The recipe's field copies of every audio track (same label and group), made once and embedded
        like any track; a copy ffmpeg cannot make is left out. Stored windows get none."""
        if not self.opts.field_copies:
            return []
        from genre_model.augment import CACHE_FOLDER, copies_of

        if self._copy_folder is None:
            if self.opts.cache_dir is not None:
                self._copy_folder = Path(self.opts.cache_dir) / CACHE_FOLDER
            else:  # removed with the trainer
                self._scratch = tempfile.TemporaryDirectory(prefix="genre_model-copies-")
                self._copy_folder = Path(self._scratch.name)

        return self.usable(copies_of(tracks, self.opts.field_copies, self._copy_folder, self.log))

    def fit(self, train: Sequence[Track], val: Sequence[Track] = (), verbose: int = 0) -> Fitted:
        """Train on ``train`` and its field copies (cnn: early-stop and calibrate on ``val``)."""
        train = _grouping(train)
        copies = self.field_copies(train)  # each in its track's group
        if self.opts.arch == "musicnn":
            fitted = self._fit_musicnn(train, copies)
        else:
            fitted = self._fit_cnn([*train, *copies], val, verbose)
        fitted.detector = self._fit_detector(fitted, [*train, *copies])
        return fitted

    def _fit_musicnn(self, train: Sequence[Track], copies: Sequence[Track] = ()) -> Fitted:
        x, y = _song_means(self.inputs(train)), _targets(train, self.labels)
        cx = _song_means(self.inputs(copies)) if copies else np.zeros((0, x.shape[1]))
        cy = _targets(copies, self.labels)
        head = self._head([*train, *copies], np.concatenate([x, cx]), np.concatenate([y, cy]))
        # Temperature from out-of-fold logits: every track scored by a head that never heard its artist
        # (nor a copy of it); only the tracks themselves are scored.
        n_folds = min(self.opts.calibration_folds, len({t.group for t in train}))
        oof = np.zeros((len(train), len(self.labels)))
        for held in group_folds(train, n_folds, self.opts.seed):
            test = np.array([t.group in set(held) for t in train])
            keep = np.array([t.group not in set(held) for t in copies], dtype=bool)
            fold_tracks = [t for t, m in zip(train, test) if not m] + [t for t, k in zip(copies, keep) if k]
            oof[test] = self._head(fold_tracks, np.concatenate([x[~test], cx[keep]]),
                                   np.concatenate([y[~test], cy[keep]]))(x[test])
        temperature = fit_temperature(oof, y)
        held_out = metrics(softmax(oof, temperature), y, self.labels)
        return Fitted(self.embedder, head, self.features, temperature, tags=self.tags, held_out=held_out)

    def _head(self, tracks: Sequence[Track], x: np.ndarray, y: np.ndarray) -> Linear:
        weights = sample_weights(tracks, self.opts.weighting)
        return fit_logistic(x, y, weights, len(self.labels), self.opts.c)

    def _fit_cnn(self, train: Sequence[Track], val: Sequence[Track], verbose: int) -> Fitted:
        from genre_model.model import split_cnn

        if not val:
            raise ValueError("the cnn architecture needs validation tracks for early stopping")
        mean, std = channel_stats(self.inputs(train))
        features = self.features.with_normalisation(mean, std)
        train_in = [normalise(w, features) for w in self.inputs(train)]  # exactly as served
        val_in = [normalise(w, features) for w in self.inputs(val)]
        y_train, y_val = _targets(train, self.labels), _targets(val, self.labels)
        model, history = fit_cnn(train_in, y_train, val_in, y_val, features, len(self.labels), self.opts, verbose)
        embedder, head = split_cnn(model)
        logits = head(_song_means([np.asarray(embedder.predict(w, verbose=0)) for w in val_in]))
        temperature = fit_temperature(logits, y_val)
        held_out = metrics(softmax(logits, temperature), y_val, self.labels)
        return Fitted(embedder, head, features, temperature, history=history, held_out=held_out)

    def _fit_detector(self, fitted: Fitted, train: Sequence[Track]) -> SoundDetector:
        clips, sounds = self._generated_embeddings(fitted)
        songs = _song_means(self._embedded(fitted, train))
        generated = _song_means(clips)
        return fit_detector(np.concatenate([songs, generated]), ["music"] * len(songs) + sounds)

    def _generated_embeddings(self, fitted: Fitted) -> tuple[list[np.ndarray], list[str]]:
        """Embeddings of the generated detector clips and their sounds (cached with the musicnn embeddings)."""
        from genre_model.sounds import detector_set

        n, seed = self.opts.detector_clips, self.opts.seed
        cached = None
        if self.opts.arch == "musicnn":  # a cnn embedder changes with every fit
            if self._generated is not None:
                return self._generated
            if self.opts.cache_dir is not None:
                key = hashlib.sha256(f"detector-set-2|{self._tag}|{self.features.fingerprint()}|{n}|{seed}".encode())
                cached = Path(self.opts.cache_dir) / f"detector-set-{key.hexdigest()[:24]}.npz"
                if cached.is_file():
                    with np.load(cached) as data:
                        self._generated = ([data[f"e{i}"] for i in range(int(data["n"]))], [str(x) for x in data["sounds"]])
                    return self._generated
        clips = detector_set(n, self.features.sample_rate, part="train", seed=seed)
        self.log(f"embedding {len(clips)} generated clips for the sound detector")
        embedded = []
        for clip in clips:
            windows = extract_windows(clip.samples, self.features, hop_frames=self.features.window_frames)[0]
            embedded.append(np.asarray(fitted.embedder.predict(normalise(windows, fitted.features), verbose=0)))
        result = (embedded, [c.sound for c in clips])
        if self.opts.arch == "musicnn":
            self._generated = result
            if cached is not None:
                cached.parent.mkdir(parents=True, exist_ok=True)
                np.savez(cached, n=len(embedded), sounds=np.array(result[1]),
                         **{f"e{i}": e for i, e in enumerate(embedded)})
        return result

    def _embedded(self, fitted: Fitted, tracks: Sequence[Track]) -> list[np.ndarray]:
        if self.opts.arch == "musicnn":
            return self.inputs(tracks)
        return [np.asarray(fitted.embedder.predict(normalise(w, fitted.features), verbose=0)) for w in self.inputs(tracks)]

    def probabilities(self, fitted: Fitted, tracks: Sequence[Track]) -> np.ndarray:
        """Calibrated track probabilities (Keras path, windows as in training)."""
        return fitted.track_probabilities(self._embedded(fitted, tracks))


def _split_for(trainer: Trainer, tracks: Sequence[Track], seed: int) -> tuple[list[Track], list[Track]]:
    """musicnn trains on everything (it calibrates by cross-fitting); cnn keeps a validation split."""
    if trainer.opts.arch == "musicnn":
        return list(tracks), []
    return split_tracks(tracks, trainer.opts.val_fraction, seed)


def cross_validate(data: Sequence[Path], opts: TrainOptions, folds: int = 5, *, group_by: str = "auto",
                   seeds: Sequence[int] | None = None, log: Progress = _log) -> dict[str, Any]:
    """Grouped, genre-balanced k-fold estimate: every track is scored by a model that never saw it.

    ``group_by="artist"`` keeps every artist (with its near-duplicates) inside one fold, so
    the estimate is for artists the model never heard; ``"track"`` keeps only near-duplicates
    together; ``"auto"`` is ``"artist"`` whenever the data names artists. With several
    ``seeds`` the whole k-fold run is repeated with other fold assignments and the metrics
    pool all repeats (the bootstrap intervals resample tracks, not repeats). Calibration
    (and, for cnn, early stopping) happen inside each fold's training part.
    """
    tracks = _load_all(data, GENRES)  # a wrong folder is said before TensorFlow loads
    trainer = Trainer(opts, log=log)
    tracks = trainer.usable(tracks)
    grouping = default_grouping(tracks) if group_by == "auto" else group_by
    if grouping == "artist" and not has_artists(tracks):
        raise DatasetError("grouping by artist needs an 'artist' column in the manifest; use --group-by track")
    tracks = regroup(tracks, grouping)
    seeds = list(seeds or [trainer.opts.seed])
    results: list[TrackResult] = []
    fold_acc, not_music = [], []
    for seed in seeds:
        for k, groups in enumerate(group_folds(tracks, folds, seed)):
            held = set(groups)
            test = [t for t in tracks if t.group in held]
            train, val = _split_for(trainer, [t for t in tracks if t.group not in held], seed + k)
            fitted = trainer.fit(train, val)
            embedded = trainer._embedded(fitted, test)
            probs = fitted.track_probabilities(embedded)
            if fitted.detector is not None:  # a real song called "not music" is the detector's worst mistake
                songs = _song_means(embedded)
                not_music += [str(t.path) for t, x in zip(test, songs) if fitted.detector.judge(x)[0] != "music"]
            results += [TrackResult(str(t.path), t.label, p) for t, p in zip(test, probs)]
            acc = float(np.mean(probs.argmax(axis=1) == _targets(test, trainer.labels)))
            fold_acc.append(acc)
            log(f"seed {seed} fold {k + 1}/{folds}: {len(test)} tracks, accuracy {acc:.3f}, "
                f"temperature {fitted.temperature:.2f}")
    rep = report(results, trainer.labels)
    rep.update(folds=folds, grouping=grouping, seeds=seeds, fold_accuracy=[round(a, 4) for a in fold_acc],
               flagged_not_music=sorted(set(not_music)), options=_jsonable(dataclasses.asdict(trainer.opts)))
    return rep


def _load_all(data: Sequence[Path], labels: Sequence[str]) -> list[Track]:
    tracks: list[Track] = []
    for source in data:
        tracks += load_dataset(Path(source), labels)
    if len({t.path for t in tracks}) != len(tracks):
        raise DatasetError("the same file is listed twice in the training data")
    return tracks


def _jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))


def train(data: Sequence[Path], out_dir: Path, opts: TrainOptions, *, version: str | None = None,
          log: Progress = _log, verbose: int = 1) -> ModelInfo:
    """Train, calibrate and export a model artifact to ``out_dir``; returns its metadata."""
    started = time.time()
    tracks = _load_all(data, GENRES)  # a wrong folder is said before TensorFlow loads
    trainer = Trainer(opts, log=log)
    tracks = _grouping(trainer.usable(tracks))
    train_set, val_set = _split_for(trainer, tracks, trainer.opts.seed)
    split = ("validation split" if val_set else
             f"{trainer.opts.calibration_folds} folds grouped by {default_grouping(tracks)}")
    log(f"{len(tracks)} tracks: {len(train_set)} train" +
        (f" / {len(val_set)} validation" if val_set else f", calibrated on {split}"))
    fitted = trainer.fit(train_set, val_set, verbose=verbose)
    held = fitted.held_out
    log(f"held-out: accuracy {held['accuracy']:.3f}, balanced {held['balanced_accuracy']:.3f}, "
        f"ECE {held['ece']:.3f}, temperature {fitted.temperature:.2f}")
    training = {
        "data": [str(Path(d).name) for d in data], "tracks": summarise(tracks),
        "n_train": len(train_set), "n_val": len(val_set),
        "val_groups": sorted({t.group for t in val_set}),
        "options": _jsonable(dataclasses.asdict(trainer.opts)),
        "epochs_run": len(next(iter(fitted.history.values()), [])),
        "seconds": round(time.time() - started, 1),
    }
    info = save_artifact(out_dir, embedder=fitted.embedder, head=fitted.head, arch=trainer.opts.arch,
                         labels=trainer.labels, features=fitted.features, temperature=fitted.temperature,
                         training=training, metrics={"held_out": {**_summary(held), "split": split}},
                         detector=fitted.detector, tags=fitted.tags, version=version)
    if fitted.history:
        from genre_model import plots

        plots.write(Path(out_dir) / "training_curves.png",
                    plots.curves_image(fitted.history, f"{trainer.opts.arch} training"))
    log(f"model {info.version} written to {out_dir} in {time.time() - started:.0f} s")
    return info


def _summary(m: dict[str, Any]) -> dict[str, Any]:
    return {k: m[k] for k in ("n_tracks", "accuracy", "balanced_accuracy", "macro_f1", "ece")}


__all__ = ["TrainOptions", "Trainer", "cross_validate", "train", "features_for", "fit_logistic", "sample_weights"]
