"""Model artifacts: a directory holding Keras models, their LiteRT export and metadata.

Layout of a model directory::

    metadata.json     labels, feature config, temperature, training summary, metrics
    embedder.keras    windows (n, mels, frames, ch) -> embeddings (n, d)
    head.keras        embeddings (m, d) -> logits (m, n_labels)
    embedder.tflite   the same two networks exported for the LiteRT runtime
    head.tflite

A track's prediction is ``softmax(head(mean(embeddings)) / temperature)``; a window's
is the head applied to that window's embedding alone. Loading checks the metadata and
the files' checksums and fails with :class:`~genre_model.errors.ArtifactError`.
Saving imports TensorFlow; loading does not.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

from genre_model.config import ARTIFACT_FORMAT
from genre_model.errors import ArtifactError
from genre_model.features import FeatureConfig

METADATA = "metadata.json"
FILES = ("embedder.keras", "head.keras", "embedder.tflite", "head.tflite")


@dataclasses.dataclass(frozen=True)
class ModelInfo:
    """What ``metadata.json`` says about a model."""

    version: str
    arch: str
    labels: tuple[str, ...]
    features: FeatureConfig
    temperature: float
    created_at: str
    training: dict[str, Any]
    metrics: dict[str, Any]
    checksums: dict[str, str]
    directory: Path

    def path(self, name: str) -> Path:
        """Path of one of the artifact's files."""
        return self.directory / name


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
            temperature=float(meta["temperature"]), created_at=str(meta["created_at"]),
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
        for name in FILES:
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
    head: Any,
    arch: str,
    labels: tuple[str, ...],
    features: FeatureConfig,
    temperature: float,
    training: dict[str, Any],
    metrics: dict[str, Any],
    version: str | None = None,
) -> ModelInfo:
    """Write Keras models, their LiteRT export and metadata atomically into ``out_dir``."""
    out_dir = Path(out_dir)
    created = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
    version = version or created.strftime("%Y%m%d-%H%M%S")
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}-", dir=out_dir.parent))
    try:
        embedder.save(staging / "embedder.keras")
        head.save(staging / "head.keras")
        (staging / "embedder.tflite").write_bytes(to_tflite(embedder))
        (staging / "head.tflite").write_bytes(to_tflite(head))
        meta = {
            "format": ARTIFACT_FORMAT, "version": version, "arch": arch, "labels": list(labels),
            "feature_config": features.to_dict(), "temperature": float(temperature),
            "created_at": created.isoformat(), "training": training, "metrics": metrics,
            "checksums": {name: sha256(staging / name) for name in FILES},
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


def update_metrics(model_dir: Path, metrics: dict[str, Any]) -> None:
    """Replace the metrics recorded in an artifact's metadata (files stay untouched)."""
    meta_path = Path(model_dir) / METADATA
    meta = json.loads(meta_path.read_text())
    meta["metrics"] = metrics
    tmp = meta_path.with_suffix(".tmp")
    tmp.write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
    tmp.replace(meta_path)


def to_tflite(model: Any) -> bytes:
    """Convert a Keras model with a dynamic batch dimension to a LiteRT flatbuffer."""
    import tensorflow as tf  # training/export only

    with tempfile.TemporaryDirectory() as tmp:
        model.export(tmp, format="tf_saved_model", verbose=False)
        converter = tf.lite.TFLiteConverter.from_saved_model(tmp)
        return converter.convert()
