"""Constants and defaults shared by the whole library, kept in one place."""

from pathlib import Path

#: The ten GTZAN genres, in the order the models use.
GENRES: tuple[str, ...] = (
    "blues", "classical", "country", "disco", "hiphop",
    "jazz", "metal", "pop", "reggae", "rock",
)

#: How people write the genres; labels stay as they are in data, models and JSON.
DISPLAY_NAMES: dict[str, str] = {"hiphop": "Hip-hop", "rnb": "R&B"}


def display_name(label: str) -> str:
    """A label as people write it ("hiphop" -> "Hip-hop", "rock" -> "Rock")."""
    return DISPLAY_NAMES.get(label, label[:1].upper() + label[1:])


def _clock(seconds: float) -> str:
    whole = int(round(seconds))
    return f"{whole} s" if whole < 60 else f"{whole // 60}:{whole % 60:02d}"


def coverage(analysed_s: float, duration_s: float, n_windows: int, file_s: float | None = None) -> str:
    """How much of a song was analysed, as people read it: "48 s of 3:00 (16 windows)", "all 30 s
    (10 windows)", "30 s of the first 10:00 of 20:00 (10 windows)" (only the file's start analysed)."""
    windows = f"{n_windows} window{'' if n_windows == 1 else 's'}"
    if file_s is not None and _clock(file_s) != _clock(duration_s) and file_s > duration_s:
        heard = "all" if _clock(analysed_s) == _clock(duration_s) else _clock(analysed_s)
        return f"{heard} of the first {_clock(duration_s)} of {_clock(file_s)} ({windows})"
    if _clock(analysed_s) == _clock(duration_s):
        return f"all {_clock(duration_s)} ({windows})"
    return f"{_clock(analysed_s)} of {_clock(duration_s)} ({windows})"


PACKAGE_DIR = Path(__file__).resolve().parent
#: The model shipped with the package.
DEFAULT_MODEL_DIR = PACKAGE_DIR / "models" / "default"
#: Converted musicnn (MSD) weights shipped with the package.
MUSICNN_WEIGHTS = PACKAGE_DIR / "pretrained" / "msd_musicnn.weights.h5"
#: A tiny example clip (synthesised, ours) for the README's first command.
EXAMPLE_CLIP = PACKAGE_DIR / "examples" / "example.ogg"

#: Read at most this many seconds of any input; the rest is never decoded.
MAX_AUDIO_SECONDS = 600.0
#: At serving time a song is covered end to end by windows (3 s for musicnn) up to this many;
#: a longer one gets this many, spread evenly from its start to its end. Each window costs an
#: embedder call (~23 ms on 2 threads); 10 hear all of a 30-s clip and keep a 3-minute song's
#: end-to-end time below the 8-window version's (benchmarks/bench_song_windows.py measures caps).
MAX_WINDOWS = 10
#: Integrated loudness (LUFS, ITU-R BS.1770-4) songs are scaled to before their features, in models
#: trained from now on (the median of GTZAN's excerpts, measured at 16 kHz mono, is -18 LUFS; see genre_model.loudness).
LOUDNESS_TARGET = -18.0
#: Number of runners-up reported with a prediction (including the top genre).
TOP_K = 3
#: Below this peak amplitude (full scale = 1.0) a clip counts as silent.
SILENCE_PEAK = 1e-4

#: Audio file extensions the library accepts when scanning a data folder.
AUDIO_EXTENSIONS = (".wav", ".mp3", ".ogg", ".oga", ".opus", ".flac", ".m4a", ".aac", ".au", ".webm", ".mp4")
#: Pre-computed feature windows (from the bot's correction export) are read from these.
WINDOWS_EXTENSION = ".npz"

#: Artifact format version; loading refuses other major versions.
ARTIFACT_FORMAT = 2
