"""genre_model: from an audio file to a calibrated music-genre prediction.

A plain library and command line (``genre-model``); it knows nothing about Discord.
The serving path (:mod:`genre_model.audio`, :mod:`genre_model.features`,
:mod:`genre_model.predict`, :mod:`genre_model.plots`) never imports TensorFlow and
runs on a plain ``pip install genrebot``; training and export (:mod:`genre_model.train`,
:mod:`genre_model.artifact` saving) need ``pip install '.[train]'`` and say so
(:class:`TrainingUnavailable`) when it is missing.
"""

import os

# numpy's OpenBLAS starts a thread per core for every matrix product; the products here are
# small (mel filters x one block of frames), and on a busy 2-core machine waking those threads
# made the log-mel 50 times slower. One thread, unless the user chose otherwise; this holds
# when genre_model is imported before numpy (the CLI, the bot and its workers), and for every
# process started from here.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

from genre_model.errors import ArtifactError, AudioError, DatasetError, GenreModelError, TrainingUnavailable

__version__ = "0.1.0"

__all__ = ["ArtifactError", "AudioError", "DatasetError", "GenreModelError", "TrainingUnavailable", "__version__"]
