"""Training: data folders -> a calibrated model artifact, and grouped cross-validation.

The recipe, for either architecture:

1. read the tracks (genre folders or a manifest; exported corrections are ``.npz``
   windows) and split them **by group** (a track plus its known near-duplicates) into
   train and validation, stratified by genre;
2. ``musicnn``: embed every window with the frozen pretrained network (cached on disk),
   then train a small head on *bags*, the mean embedding of a random run of 1..n
   consecutive windows of one track, sampled class-balanced, with mixup;
   ``cnn``: train the custom CNN end to end on windows, class-balanced, with
   SpecAugment-style masking, gain jitter and mixup;
3. early stopping on validation loss with the best weights restored;
4. temperature scaling fitted on validation *tracks* so the reported probabilities
   are calibrated;
5. export embedder + head (Keras and LiteRT) with metadata and training curves.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import sys
import time
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from genre_model.artifact import ModelInfo, save_artifact
from genre_model.audio import load_audio
from genre_model.config import GENRES, MAX_AUDIO_SECONDS
from genre_model.dataset import Track, group_folds, has_artists, load_dataset, regroup, split_tracks, summarise
from genre_model.errors import AudioError, DatasetError, TrainingUnavailable
from genre_model.evaluate import TrackResult, fit_temperature, metrics, report
from genre_model.nativelog import native_stderr_to_log
from genre_model.features import CNN_FEATURES, MUSICNN_FEATURES, FeatureConfig, extract_windows, load_windows
from genre_model.predict import softmax

Progress = Callable[[str], None]

#: How to get what training needs on top of a serving install.
TRAIN_EXTRA = "pip install 'genrebot[train]'"


def import_keras() -> Any:
    """Keras (with TensorFlow under it), or :class:`TrainingUnavailable` saying how to install them.

    TensorFlow's C++ INFO and WARNING lines stay off the terminal unless ``TF_CPP_MIN_LOG_LEVEL``
    says otherwise; what it prints while it loads goes to the DEBUG log.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        with native_stderr_to_log("TensorFlow", logging.getLogger(__name__)):  # its start-up lines
            import keras
            import tensorflow as tf

            tf.config.list_physical_devices()  # looks for GPUs now ("failed call to cuInit" on a CPU machine)
    except ImportError as exc:
        raise TrainingUnavailable(f"training needs TensorFlow and Keras, which are not installed; "
                                  f"get them with: {TRAIN_EXTRA}") from exc
    return keras


@dataclasses.dataclass
class TrainOptions:
    """Hyper-parameters; every one is a ``genre-model train`` flag."""

    arch: str = "musicnn"
    epochs: int = 0  # 0 = the architecture's default
    batch_size: int = 64
    learning_rate: float = 0.0  # 0 = the architecture's default
    val_fraction: float = 0.2
    seed: int = 1234
    patience: int = 0  # 0 = the architecture's default
    dropout: float = 0.5
    l2: float = 1e-3
    hidden: int = 0
    mixup: float = 0.2
    pooling: str = "mean_max"
    transform: str = "sqrt"  # per-window embedding transform: "none" or "sqrt" (signed square root)
    ensemble: int = 5  # musicnn: average the logits of this many heads trained with different seeds
    max_seconds: float = MAX_AUDIO_SECONDS
    cache_dir: Path | None = None

    def resolved(self) -> "TrainOptions":
        """Fill architecture defaults."""
        defaults = {"musicnn": (300, 3e-3, 30), "cnn": (60, 1e-3, 10)}
        if self.arch not in defaults:
            raise ValueError(f"unknown architecture {self.arch!r}; choose from {sorted(defaults)}")
        epochs, lr, patience = defaults[self.arch]
        return dataclasses.replace(self, epochs=self.epochs or epochs, learning_rate=self.learning_rate or lr,
                                   patience=self.patience or patience)


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# ----------------------------------------------------------------------------- features

def features_for(arch: str) -> FeatureConfig:
    """The feature preset an architecture is trained on."""
    return MUSICNN_FEATURES if arch == "musicnn" else CNN_FEATURES


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
                 max_seconds: float, cache_dir: Path | None, tag: str, log: Progress = _log) -> list[np.ndarray]:
    """Embeddings ``(n_windows, d)`` of every track, cached under ``cache_dir``."""
    from tqdm import tqdm

    out = []
    for track in tqdm(tracks, desc="embedding", unit="track", disable=None, file=sys.stderr):
        key = _cache_key(track, tag, features.fingerprint(), str(hop_frames), str(max_seconds))
        cached = cache_dir / f"{key}.npy" if cache_dir else None
        if cached is not None and cached.is_file():
            out.append(np.load(cached))
            continue
        windows = track_windows(track, features, hop_frames, max_seconds)
        emb = np.asarray(embedder.predict(windows, batch_size=32, verbose=0), dtype=np.float32)
        if cached is not None:
            cached.parent.mkdir(parents=True, exist_ok=True)
            np.save(cached, emb)
        out.append(emb)
    return out


def usable_tracks(tracks: Sequence[Track], features: FeatureConfig, max_seconds: float,
                  log: Progress = _log) -> list[Track]:
    """Drop tracks that cannot be decoded, saying which and why."""
    keep = []
    for t in tracks:
        try:
            if not t.is_windows:
                load_audio(t.path, 8000, max_seconds=1.0)
            keep.append(t)
        except AudioError as exc:
            log(f"skipping {t.path.name}: {exc}")
    return keep


# ----------------------------------------------------------------------------- musicnn head

class _BagSequence:
    """Class-balanced batches of window-run mean embeddings, with mixup (a keras PyDataset)."""

    def __new__(cls, *args, **kwargs):  # build the subclass lazily so keras is imported only when training
        import keras

        class BagSequence(keras.utils.PyDataset):
            def __init__(self, embeddings, targets, n_classes, batch_size, steps, mixup, seed):
                super().__init__()
                self.embeddings, self.targets = embeddings, np.asarray(targets)
                self.n_classes, self.batch_size, self.steps, self.mixup = n_classes, batch_size, steps, mixup
                self.rng = np.random.default_rng(seed)
                self.by_class = [np.flatnonzero(self.targets == c) for c in range(n_classes)]
                self.present = [c for c in range(n_classes) if self.by_class[c].size]

            def __len__(self):
                return self.steps

            def _bag(self, i):
                emb = self.embeddings[i]
                k = int(self.rng.integers(1, len(emb) + 1))
                start = int(self.rng.integers(0, len(emb) - k + 1))
                return emb[start:start + k].mean(axis=0)

            def __getitem__(self, _):
                classes = self.rng.choice(self.present, size=self.batch_size)
                idx = [int(self.rng.choice(self.by_class[c])) for c in classes]
                x = np.stack([self._bag(i) for i in idx]).astype(np.float32)
                y = np.eye(self.n_classes, dtype=np.float32)[classes]
                if self.mixup > 0:
                    lam = self.rng.beta(self.mixup, self.mixup, size=(self.batch_size, 1)).astype(np.float32)
                    perm = self.rng.permutation(self.batch_size)
                    x = lam * x + (1 - lam) * x[perm]
                    y = lam * y + (1 - lam) * y[perm]
                return x, y

        return BagSequence(*args, **kwargs)


def fit_head(train_emb: Sequence[np.ndarray], train_y: np.ndarray, val_emb: Sequence[np.ndarray], val_y: np.ndarray,
             n_classes: int, opts: TrainOptions, verbose: int = 0) -> tuple[Any, dict[str, list[float]]]:
    """Train the head on bags; early stopping on validation tracks' loss."""
    import keras

    from genre_model.model import average_heads, build_head

    stacked = np.concatenate(train_emb)
    x_val = np.stack([e.mean(axis=0) for e in val_emb]).astype(np.float32)
    y_val = np.eye(n_classes, dtype=np.float32)[val_y]
    heads, histories = [], []
    for member in range(max(1, opts.ensemble)):
        head = build_head(stacked.shape[1], n_classes, mean=stacked.mean(axis=0),
                          variance=stacked.var(axis=0) + 1e-6, hidden=opts.hidden, dropout=opts.dropout,
                          l2=opts.l2, name=f"head_{member}")
        head.compile(optimizer=keras.optimizers.Adam(opts.learning_rate),
                     loss=keras.losses.CategoricalCrossentropy(from_logits=True, label_smoothing=0.05),
                     metrics=["accuracy"])
        bags = _BagSequence(list(train_emb), train_y, n_classes, opts.batch_size, 20, opts.mixup,
                            opts.seed + 1000 * member)
        # val_loss includes the L2 penalty, which grows as the head learns: never stop in the first epochs.
        callbacks = [keras.callbacks.EarlyStopping("val_loss", patience=opts.patience, restore_best_weights=True,
                                                   start_from_epoch=min(20, opts.epochs // 4)),
                     keras.callbacks.ReduceLROnPlateau("val_loss", factor=0.5, patience=max(3, opts.patience // 3))]
        history = head.fit(bags, validation_data=(x_val, y_val), epochs=opts.epochs, callbacks=callbacks,
                           verbose=verbose)
        heads.append(head)
        histories.append({k: [float(v) for v in vals] for k, vals in history.history.items()})
    return average_heads(heads, stacked.shape[1]), histories[0]


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
    """A trained (embedder, head) pair with its calibration and history."""

    embedder: Any
    head: Any
    features: FeatureConfig
    temperature: float
    history: dict[str, list[float]]

    def track_probabilities(self, embeddings: Sequence[np.ndarray]) -> np.ndarray:
        """Calibrated track probabilities from per-window embeddings (Keras path)."""
        means = np.stack([e.mean(axis=0) for e in embeddings]).astype(np.float32)
        return softmax(np.asarray(self.head.predict(means, verbose=0)), self.temperature)


def _targets(tracks: Sequence[Track], labels: Sequence[str]) -> np.ndarray:
    index = {label: i for i, label in enumerate(labels)}
    return np.array([index[t.label] for t in tracks], dtype=np.int64)


class Trainer:
    """Holds per-track inputs (embeddings or windows) so folds and retrains reuse them."""

    def __init__(self, opts: TrainOptions, labels: Sequence[str] = GENRES, log: Progress = _log) -> None:
        keras = import_keras()

        self.opts = opts.resolved()
        self.labels = tuple(labels)
        self.log = log
        keras.utils.set_random_seed(self.opts.seed)
        self.features = features_for(self.opts.arch)
        self.embedder = None
        if self.opts.arch == "musicnn":
            from genre_model.model import build_musicnn_embedder

            self.embedder = build_musicnn_embedder(self.features, self.opts.pooling, self.opts.transform)
        self._inputs: dict[Path, np.ndarray] = {}

    def inputs(self, tracks: Sequence[Track]) -> list[np.ndarray]:
        """Embeddings (musicnn) or un-normalised windows (cnn) for each track."""
        missing = [t for t in tracks if t.path not in self._inputs]
        if missing:
            if self.embedder is not None:
                hop = self.features.window_frames // 2
                values = embed_tracks(missing, self.embedder, self.features, hop_frames=hop,
                                      max_seconds=self.opts.max_seconds, cache_dir=self.opts.cache_dir,
                                      tag=f"musicnn-{self.opts.pooling}"
                                          + ("" if self.opts.transform == "none" else f"-{self.opts.transform}"),
                                      log=self.log)
            else:
                values = [track_windows(t, self.features, self.features.window_frames // 2, self.opts.max_seconds)
                          for t in missing]
            self._inputs.update({t.path: v for t, v in zip(missing, values)})
        return [self._inputs[t.path] for t in tracks]

    def fit(self, train: Sequence[Track], val: Sequence[Track], verbose: int = 0) -> Fitted:
        """Train on ``train``, early-stop and calibrate on ``val``."""
        y_train, y_val = _targets(train, self.labels), _targets(val, self.labels)
        if self.opts.arch == "musicnn":
            train_in, val_in = self.inputs(train), self.inputs(val)
            head, history = fit_head(train_in, y_train, val_in, y_val, len(self.labels), self.opts, verbose)
            fitted = Fitted(self.embedder, head, self.features, 1.0, history)
            logits = np.asarray(head.predict(np.stack([e.mean(axis=0) for e in val_in]), verbose=0))
        else:
            from genre_model.model import split_cnn

            mean, std = channel_stats(self.inputs(train))
            features = self.features.with_normalisation(mean, std)
            train_in = [(w - mean) / std for w in self.inputs(train)]
            val_in = [(w - mean) / std for w in self.inputs(val)]
            model, history = fit_cnn(train_in, y_train, val_in, y_val, features, len(self.labels), self.opts, verbose)
            embedder, head = split_cnn(model)
            fitted = Fitted(embedder, head, features, 1.0, history)
            emb = [np.asarray(embedder.predict(w, verbose=0)) for w in val_in]
            logits = np.asarray(head.predict(np.stack([e.mean(axis=0) for e in emb]), verbose=0))
        fitted.temperature = fit_temperature(logits, y_val)
        return fitted

    def probabilities(self, fitted: Fitted, tracks: Sequence[Track]) -> np.ndarray:
        """Calibrated track probabilities (Keras path, windows as in training)."""
        if self.opts.arch == "musicnn":
            return fitted.track_probabilities(self.inputs(tracks))
        norm = fitted.features
        mean, std = np.asarray(norm.norm_mean, np.float32), np.asarray(norm.norm_std, np.float32)
        emb = [np.asarray(fitted.embedder.predict((w - mean) / std, verbose=0)) for w in self.inputs(tracks)]
        return fitted.track_probabilities(emb)


def cross_validate(data: Sequence[Path], opts: TrainOptions, folds: int = 5, *, group_by: str = "auto",
                   seeds: Sequence[int] | None = None, log: Progress = _log) -> dict[str, Any]:
    """Grouped, genre-balanced k-fold estimate: every track is scored by a model that never saw it.

    ``group_by="artist"`` keeps every artist (with its near-duplicates) inside one fold, so
    the estimate is for artists the model never heard; ``"track"`` keeps only near-duplicates
    together; ``"auto"`` is ``"artist"`` whenever the data names artists. With several
    ``seeds`` the whole k-fold run is repeated with other fold assignments and the metrics
    pool all repeats (the bootstrap intervals resample tracks, not repeats). Within each
    fold, a further split of the training part (grouped the same way) does model selection
    and calibration, so nothing of the scored fold takes part in either.
    """
    tracks = _load_all(data, GENRES)  # a wrong folder is said before TensorFlow loads
    trainer = Trainer(opts, log=log)
    tracks = usable_tracks(tracks, trainer.features, trainer.opts.max_seconds, log)
    grouping = ("artist" if has_artists(tracks) else "track") if group_by == "auto" else group_by
    if grouping == "artist" and not has_artists(tracks):
        raise DatasetError("grouping by artist needs an 'artist' column in the manifest; use --group-by track")
    tracks = regroup(tracks, grouping)
    seeds = list(seeds or [trainer.opts.seed])
    results: list[TrackResult] = []
    fold_acc = []
    for seed in seeds:
        for k, groups in enumerate(group_folds(tracks, folds, seed)):
            held = set(groups)
            test = [t for t in tracks if t.group in held]
            rest = [t for t in tracks if t.group not in held]
            train, val = split_tracks(rest, trainer.opts.val_fraction, seed + k)
            fitted = trainer.fit(train, val)
            probs = trainer.probabilities(fitted, test)
            results += [TrackResult(str(t.path), t.label, p) for t, p in zip(test, probs)]
            acc = float(np.mean(probs.argmax(axis=1) == _targets(test, trainer.labels)))
            fold_acc.append(acc)
            log(f"seed {seed} fold {k + 1}/{folds}: {len(test)} tracks, accuracy {acc:.3f}, "
                f"temperature {fitted.temperature:.2f}")
    rep = report(results, trainer.labels)
    rep.update(folds=folds, grouping=grouping, seeds=seeds, fold_accuracy=[round(a, 4) for a in fold_acc],
               options=_jsonable(dataclasses.asdict(trainer.opts)))
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
    tracks = usable_tracks(tracks, trainer.features, trainer.opts.max_seconds, log)
    train_set, val_set = split_tracks(tracks, trainer.opts.val_fraction, trainer.opts.seed)
    log(f"{len(tracks)} tracks: {len(train_set)} train / {len(val_set)} validation (split by track group)")
    fitted = trainer.fit(train_set, val_set, verbose=verbose)
    val_probs = trainer.probabilities(fitted, val_set)
    val_metrics = metrics(val_probs, _targets(val_set, trainer.labels), trainer.labels)
    log(f"validation: accuracy {val_metrics['accuracy']:.3f}, balanced {val_metrics['balanced_accuracy']:.3f}, "
        f"ECE {val_metrics['ece']:.3f}, temperature {fitted.temperature:.2f}")
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
                         training=training, metrics={"validation": _summary(val_metrics)}, version=version)
    from genre_model import plots

    plots.write(Path(out_dir) / "training_curves.png", plots.curves_image(fitted.history, f"{trainer.opts.arch} training"))
    log(f"model {info.version} written to {out_dir} in {time.time() - started:.0f} s")
    return info


def _summary(m: dict[str, Any]) -> dict[str, Any]:
    return {k: m[k] for k in ("n_tracks", "accuracy", "balanced_accuracy", "macro_f1", "ece")}


__all__ = ["TrainOptions", "Trainer", "cross_validate", "train", "features_for"]
