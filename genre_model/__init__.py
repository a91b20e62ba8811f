"""genre_model: from an audio file to a calibrated music-genre prediction.

A plain library and command line (``genre-model``); it knows nothing about Discord.
The serving path (:mod:`genre_model.audio`, :mod:`genre_model.features`,
:mod:`genre_model.predict`, :mod:`genre_model.plots`) never imports TensorFlow and
runs on a plain ``pip install genrebot``; training and export (:mod:`genre_model.train`,
:mod:`genre_model.artifact` saving) need ``pip install 'genrebot[train]'`` and say so
(:class:`TrainingUnavailable`) when it is missing.
"""

from genre_model.errors import ArtifactError, AudioError, DatasetError, GenreModelError, TrainingUnavailable

__version__ = "0.1.0"

__all__ = ["ArtifactError", "AudioError", "DatasetError", "GenreModelError", "TrainingUnavailable", "__version__"]
