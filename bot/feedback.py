"""What people's votes on a prediction become as training data: pure rules, no Discord, no storage.

Every storage backend fetches a prediction's votes (oldest first) and hands them here, so the
rule is written once and is the same on SQLite and PostgreSQL:

* :func:`label_from_votes` -- the vote -> label rule;
* :func:`uploader_groups` -- which corrected examples a train/holdout split must keep together.

It lives in the service layer, not in ``genre_model``: votes, voters and uploaders are the bot's
notions; the library only sees the result, labelled examples in a manifest.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from typing import Iterable, Sequence

def check_label(genre: str) -> str:
    """A genre must be usable as a folder name in an export."""
    label = genre.strip() if isinstance(genre, str) else ""
    if not label or label in (".", "..") or any(c in label for c in "/\\\0") or len(label) > 100:
        raise ValueError(f"not a usable genre label: {genre!r}")
    return label


#: The two votes a person can give a prediction.
VOTES = frozenset({"right", "wrong"})


@dataclasses.dataclass(frozen=True)
class Vote:
    """One person's current vote on a prediction; ``corrected_genre`` only with ``"wrong"``."""

    user_id: int
    vote: str
    corrected_genre: str | None = None


@dataclasses.dataclass(frozen=True)
class Rated:
    """A prediction with feature windows and its votes, oldest first: the rule's input."""

    prediction_id: int
    uploader_id: int
    file_sha256: str
    genre: str
    votes: tuple[Vote, ...]


@dataclasses.dataclass(frozen=True)
class Correction:
    """One labelled example for retraining.

    ``source`` is ``"corrected"`` (people named another genre) or ``"confirmed"`` (people agreed
    with the prediction); ``group`` is shared by every example linked by uploader or by file
    (see :func:`uploader_groups`).
    """

    prediction_id: int
    label: str
    source: str
    group: str


def label_from_votes(predicted: str, votes: Sequence[Vote]) -> tuple[str, str] | None:
    """The label people gave a prediction, as ``(label, source)``, or None without a clear majority.

    'wrong' outnumbers 'right' and someone named a genre -> the most named genre ('corrected';
    a tie goes to the genre named first in ``votes``, which is oldest first). 'right' outnumbers
    'wrong' -> the predicted genre ('confirmed'). Anything else (a tie, 'wrong' with no genre
    named, no votes) gives no label.
    """
    right = sum(v.vote == "right" for v in votes)
    wrong = len(votes) - right
    # Counter keeps first-seen order and most_common() is stable: ties go to the earliest.
    named = Counter(v.corrected_genre for v in votes if v.vote == "wrong" and v.corrected_genre)
    if wrong > right and named:
        return named.most_common(1)[0][0], "corrected"
    if right > wrong:
        return predicted, "confirmed"
    return None


def uploader_groups(items: Iterable[tuple[int, int, str]]) -> dict[int, str]:
    """Group ``(prediction id, uploader id, file sha256)`` items: the connected components of
    "same uploader OR same file".

    Each component is named ``corr-<its smallest prediction id>``, a name that does not change as
    long as that example stays, and that reveals no Discord id. A holdout split by these groups
    keeps all of one person's uploads, and every copy of one file, on the same side.
    """
    items = list(items)
    parent = {pid: pid for pid, _, _ in items}

    def find(pid: int) -> int:
        while parent[pid] != pid:
            parent[pid] = parent[parent[pid]]
            pid = parent[pid]
        return pid

    first_by_key: dict[tuple[str, object], int] = {}
    for pid, uploader, sha in items:
        for key in (("uploader", uploader), ("file", sha)):
            other = first_by_key.setdefault(key, pid)
            a, b = find(pid), find(other)
            if a != b:
                parent[max(a, b)] = min(a, b)
    return {pid: f"corr-{find(pid)}" for pid, _, _ in items}


def corrections(rated: Iterable[Rated]) -> list[Correction]:
    """The correction dataset, in prediction id order: one example per uploaded file.

    Each prediction is labelled by its own votes (:func:`label_from_votes`). Predictions of one
    file (same sha256) that got the same label give one example (the earliest prediction); files
    whose predictions got different labels give none: the trainer must not see one recording
    under two genres. Groups (:func:`uploader_groups`) are computed over every labelled
    prediction, so a duplicate that is left out still links its uploader's other examples.
    """
    labelled = []
    for item in sorted(rated, key=lambda r: r.prediction_id):
        verdict = label_from_votes(item.genre, item.votes)
        if verdict is not None:
            labelled.append((item, *verdict))
    groups = uploader_groups((item.prediction_id, item.uploader_id, item.file_sha256) for item, _, _ in labelled)
    labels_of_file: dict[str, set[str]] = {}
    for item, label, _ in labelled:
        labels_of_file.setdefault(item.file_sha256, set()).add(label)
    seen: set[str] = set()
    result = []
    for item, label, source in labelled:
        if len(labels_of_file[item.file_sha256]) > 1 or item.file_sha256 in seen:
            continue
        seen.add(item.file_sha256)
        result.append(Correction(item.prediction_id, label, source, groups[item.prediction_id]))
    return result
