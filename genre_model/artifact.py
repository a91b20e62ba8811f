"""Model artifacts: a directory holding Keras models, their LiteRT export and metadata.

Layout of a model directory::

    metadata.json     labels, feature config, temperature, tag names, training summary, metrics
    embedder.keras    windows (n, mels, frames, ch) -> embeddings (n, d)
    embedder.tflite   the same network exported for the LiteRT runtime (what serving runs)
    head.npz          linear genre head: embedding (d) -> logits (n_labels)
    detector.npz      optional linear sound detector: embedding (d) -> music / speech / tone / noise / sound

A track's prediction is ``softmax(head(mean(embeddings)) / temperature)``; a window's
is the head applied to that window's embedding alone. When ``tags`` names are given, the
last ``len(tags)`` columns of an embedding are those tags' probabilities (musicnn's MSD
tags). Loading checks the metadata and the files' checksums and fails with
:class:`~genre_model.errors.ArtifactError`. Saving imports TensorFlow; loading does not.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from genre_model.config import ARTIFACT_FORMAT
from genre_model.errors import ArtifactError
from genre_model.features import FeatureConfig
from genre_model.linear import Linear

METADATA = "metadata.json"
FILES = ("embedder.keras", "embedder.tflite", "head.npz")
DETECTOR = "detector.npz"


@dataclasses.dataclass(frozen=True)
class ModelInfo:
    """What ``metadata.json`` says about a model."""

    version: str
    arch: str
    labels: tuple[str, ...]
    features: FeatureConfig
    temperature: float
    #: Names of the tag columns at the end of each embedding (empty: the embedding has none).
    tags: tuple[str, ...]
    #: The sound detector's settings (``sounds``, ``threshold``), or None for a model without one.
    detector: dict[str, Any] | None
    created_at: str
    training: dict[str, Any]
    metrics: dict[str, Any]
    checksums: dict[str, str]
    directory: Path

    def path(self, name: str) -> Path:
        """Path of one of the artifact's files."""
        return self.directory / name

    @property
    def files(self) -> tuple[str, ...]:
        """The files this artifact consists of (besides its metadata)."""
        return FILES + ((DETECTOR,) if self.detector else ())


def sha256(path: Path) -> str:
    """Hex SHA-256 of a file."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def load_info(model_dir: Path, *, verify: bool = True) -> ModelInfo:
    """Read and check a model directory's metadata (and, by default, file checksums)."""
    model_dir = Path(model_dir)
    meta_path = model_dir / METADATA
    if not meta_path.is_file():
        raise ArtifactError(f"{model_dir}: not a model directory (no {METADATA})")
    try:
        meta = json.loads(meta_path.read_text())
    except (OSError, ValueError) as exc:
        raise ArtifactError(f"{meta_path}: unreadable metadata ({exc})") from exc
    if not isinstance(meta, dict) or meta.get("format") != ARTIFACT_FORMAT:
        raise ArtifactError(f"{model_dir}: artifact format {meta.get('format') if isinstance(meta, dict) else '?'}"
                            f" is not the supported format {ARTIFACT_FORMAT}")
    try:
        labels = tuple(str(x) for x in meta["labels"])
        info = ModelInfo(
            version=str(meta["version"]), arch=str(meta["arch"]), labels=labels,
            features=FeatureConfig.from_dict(meta["feature_config"]),
            temperature=float(meta["temperature"]), tags=tuple(str(t) for t in meta.get("tags", ())),
            detector=dict(meta["detector"]) if meta.get("detector") else None, created_at=str(meta["created_at"]),
            training=dict(meta.get("training", {})), metrics=dict(meta.get("metrics", {})),
            checksums=dict(meta["checksums"]), directory=model_dir,
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise ArtifactError(f"{meta_path}: incomplete or invalid metadata ({exc})") from exc
    if len(labels) < 2 or len(set(labels)) != len(labels):
        raise ArtifactError(f"{meta_path}: labels must be at least two distinct names")
    if not info.temperature > 0:
        raise ArtifactError(f"{meta_path}: temperature must be positive")
    if verify:
        for name in info.files:
            path = model_dir / name
            if not path.is_file():
                raise ArtifactError(f"{model_dir}: missing {name}")
            expected = info.checksums.get(name)
            if expected is None or sha256(path) != expected:
                raise ArtifactError(f"{model_dir}: {name} is corrupt (checksum mismatch)")
    return info


def save_artifact(
    out_dir: Path,
    *,
    embedder: Any,
    head: Linear,
    arch: str,
    labels: tuple[str, ...],
    features: FeatureConfig,
    temperature: float,
    training: dict[str, Any],
    metrics: dict[str, Any],
    detector: Any | None = None,
    tags: tuple[str, ...] = (),
    version: str | None = None,
) -> ModelInfo:
    """Write the Keras embedder, its LiteRT export, the linear head (and detector) and metadata
    atomically into ``out_dir``. ``detector`` is a :class:`genre_model.detector.SoundDetector`."""
    out_dir = Path(out_dir)
    created = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
    version = version or created.strftime("%Y%m%d-%H%M%S")
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}-", dir=out_dir.parent))
    try:
        if head.n_classes != len(labels):
            raise ValueError(f"the head has {head.n_classes} outputs for {len(labels)} labels")
        embedder.save(staging / "embedder.keras")
        (staging / "embedder.tflite").write_bytes(to_tflite(embedder))
        (staging / "head.npz").write_bytes(head.to_bytes())
        files = FILES
        if detector is not None:
            (staging / DETECTOR).write_bytes(detector.linear.to_bytes())
            files += (DETECTOR,)
        meta = {
            "format": ARTIFACT_FORMAT, "version": version, "arch": arch, "labels": list(labels),
            "feature_config": features.to_dict(), "temperature": float(temperature), "tags": list(tags),
            "detector": {"sounds": list(detector.sounds), "threshold": detector.threshold} if detector else None,
            "created_at": created.isoformat(), "training": training, "metrics": metrics,
            "checksums": {name: sha256(staging / name) for name in files},
        }
        (staging / METADATA).write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
        if out_dir.exists():
            shutil.rmtree(out_dir)
        staging.chmod(0o755)  # mkdtemp makes it private
        staging.rename(out_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return load_info(out_dir)


def update_training(model_dir: Path, **fields: Any) -> None:
    """Add fields to the training summary recorded in an artifact's metadata (files stay untouched)."""
    meta_path = Path(model_dir) / METADATA
    meta = json.loads(meta_path.read_text())
    meta["training"].update(fields)
    tmp = meta_path.with_suffix(".tmp")
    tmp.write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
    tmp.replace(meta_path)


def replace_detector(model_dir: Path, detector: Any, **training: Any) -> ModelInfo:
    """Give an existing model a new sound detector (``detector.npz``, the metadata's ``detector``
    settings and checksums; ``training`` fields are added to the summary under ``detector``).

    The model is copied, changed and swapped in whole, so a reader sees the old model or the new
    one, never a mix; the embedder and head stay byte for byte as they were."""
    model_dir = Path(model_dir)
    info = load_info(model_dir)  # refuse to touch a corrupt model
    if detector.linear.n_features != load_head(info).n_features:
        raise ValueError(f"the detector takes {detector.linear.n_features} features, the head {load_head(info).n_features}")
    staging = Path(tempfile.mkdtemp(prefix=f".{model_dir.name}-", dir=model_dir.parent))
    old = model_dir.with_name(f".{model_dir.name}-old-{os.getpid()}")
    try:
        shutil.copytree(model_dir, staging, dirs_exist_ok=True)
        (staging / DETECTOR).write_bytes(detector.linear.to_bytes())
        meta = json.loads((staging / METADATA).read_text())
        meta["detector"] = {"sounds": list(detector.sounds), "threshold": detector.threshold}
        meta["training"]["detector"] = training
        meta["checksums"] = {name: sha256(staging / name) for name in FILES + (DETECTOR,)}
        (staging / METADATA).write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
        staging.chmod(0o755)
        model_dir.rename(old)
        staging.rename(model_dir)
        shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        if old.exists() and not model_dir.exists():
            old.rename(model_dir)
        raise
    return load_info(model_dir)


def to_tflite(model: Any) -> bytes:
    """Convert a Keras model with a dynamic batch dimension to a LiteRT flatbuffer."""
    import tensorflow as tf  # training/export only

    with tempfile.TemporaryDirectory() as tmp:
        model.export(tmp, format="tf_saved_model", verbose=False)
        converter = tf.lite.TFLiteConverter.from_saved_model(tmp)
        return converter.convert()


def load_head(info: ModelInfo) -> Linear:
    """The artifact's linear genre head."""
    from genre_model.linear import load_linear

    head = load_linear(info.path("head.npz"))
    if head.n_classes != len(info.labels):
        raise ArtifactError(f"{info.directory}: head has {head.n_classes} outputs for {len(info.labels)} labels")
    return head


def load_detector(info: ModelInfo) -> Any | None:
    """The artifact's :class:`~genre_model.detector.SoundDetector`, or None if it has none."""
    if not info.detector:
        return None
    from genre_model.detector import SoundDetector
    from genre_model.linear import load_linear

    linear = load_linear(info.path(DETECTOR))
    try:
        return SoundDetector(linear, tuple(info.detector["sounds"]), float(info.detector["threshold"]))
    except (KeyError, TypeError, ValueError) as exc:
        raise ArtifactError(f"{info.directory}: unusable detector ({exc})") from exc
