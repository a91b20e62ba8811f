"""The few exception types the library raises; every message is readable by an end user."""


class GenreModelError(Exception):
    """Base class of every error genre_model raises on purpose."""


class AudioError(GenreModelError):
    """The input cannot be used as audio (not decodable, empty, silent, too short)."""


class ArtifactError(GenreModelError):
    """A model directory is missing, corrupt, or does not match this library."""


class DatasetError(GenreModelError):
    """A training or evaluation data folder / manifest cannot be used."""


class TrainingUnavailable(GenreModelError):
    """Training was asked for, but TensorFlow and Keras (the ``train`` extra) are not installed."""
