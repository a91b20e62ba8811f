"""The whole song: drawn timeline segments, seconds analysed, and how that is said to people."""

from __future__ import annotations

import random

import pytest

from genre_model.config import coverage
from genre_model.predict import Segment, covered_seconds, timeline_segments


def _tiles(segments: list[Segment], duration: float) -> None:
    assert segments[0].start_s == 0.0
    assert segments[-1].end_s == round(duration, 3)
    for a, b in zip(segments, segments[1:]):
        assert a.end_s == b.start_s, f"gap or overlap between {a} and {b}"
        assert a.end_s > a.start_s


def test_segments_of_spread_windows_draw_only_what_was_heard() -> None:
    # Three 3-s windows spread over 30 s, with gaps of 10.5 s between them: the gaps stay undrawn.
    windows = [Segment(0.0, 3.0, "rock", 0.9), Segment(13.5, 16.5, "jazz", 0.6), Segment(27.0, 30.0, "rock", 0.7)]
    segments = timeline_segments(windows, 30.0)
    assert [(s.start_s, s.end_s, s.genre) for s in segments] == [
        (0.0, 3.0, "rock"), (13.5, 16.5, "jazz"), (27.0, 30.0, "rock")]
    assert segments[1].p == 0.6
    assert sum(s.end_s - s.start_s for s in segments) == covered_seconds(windows, 30.0) == 9.0


def test_segments_of_overlapping_windows_split_the_overlap_and_merge_one_genre() -> None:
    windows = [Segment(0.0, 3.0, "pop", 0.8), Segment(2.0, 5.0, "pop", 0.6), Segment(4.0, 7.0, "disco", 0.5)]
    segments = timeline_segments(windows, 7.0)
    _tiles(segments, 7.0)
    assert [(s.start_s, s.end_s, s.genre) for s in segments] == [(0.0, 4.5, "pop"), (4.5, 7.0, "disco")]
    assert segments[0].p == pytest.approx(0.7)  # the mean of the merged windows


@pytest.mark.parametrize("seed", range(20))
def test_segments_cover_exactly_what_the_windows_heard(seed: int) -> None:
    rng = random.Random(seed)
    duration = rng.uniform(3.0, 600.0)
    n = rng.randint(1, 30)
    starts = sorted(rng.uniform(0.0, duration - 3.0) for _ in range(n))
    windows = [Segment(round(s, 3), round(s + 3.0, 3), rng.choice(["rock", "pop", "jazz"]), 0.5) for s in starts]
    segments = timeline_segments(windows, duration)
    assert all(a.end_s <= b.start_s for a, b in zip(segments, segments[1:]))  # in order, never overlapping
    assert sum(s.end_s - s.start_s for s in segments) == pytest.approx(covered_seconds(windows, duration), abs=0.02)
    assert all(a.genre != b.genre for a, b in zip(segments, segments[1:]) if a.end_s == b.start_s)
    for w in windows:  # every window's centre is drawn in its own genre, unless a window shares that centre
        centre = (w.start_s + w.end_s) / 2
        owner = next(s for s in segments if s.start_s <= centre < s.end_s)
        assert owner.genre == w.genre or any(v is not w and abs((v.start_s + v.end_s) / 2 - centre) < 2e-3
                                             for v in windows)


def test_windows_covering_the_song_tile_it() -> None:
    windows = [Segment(round(2.9 * i, 3), round(2.9 * i + 3.0, 3), ("rock", "pop")[i % 3 == 2], 0.5) for i in range(10)]
    _tiles(timeline_segments(windows, windows[-1].end_s), windows[-1].end_s)


def test_no_windows_no_segments() -> None:
    assert timeline_segments([], 10.0) == []


def test_covered_seconds_counts_overlaps_once_and_stops_at_the_end() -> None:
    windows = [Segment(0.0, 3.0, "pop", 1.0), Segment(2.0, 5.0, "pop", 1.0), Segment(9.0, 12.0, "pop", 1.0),
               Segment(10.0, 10.5, "pop", 1.0)]
    assert covered_seconds(windows, 30.0) == pytest.approx(8.0)
    assert covered_seconds(windows, 11.0) == pytest.approx(7.0)
    assert covered_seconds([], 11.0) == 0.0


@pytest.mark.parametrize("analysed, duration, windows, text", [
    (47.9, 180.0, 16, "48 s of 3:00 (16 windows)"),
    (30.0, 30.0, 10, "all 30 s (10 windows)"),
    (29.98, 30.01, 10, "all 30 s (10 windows)"),
    (3.0, 3.0, 1, "all 3 s (1 window)"),
    (96.2, 600.0, 32, "1:36 of 10:00 (32 windows)"),
    (75.0, 75.0, 25, "all 1:15 (25 windows)"),
])
def test_coverage_says_what_was_analysed(analysed: float, duration: float, windows: int, text: str) -> None:
    assert coverage(analysed, duration, windows) == text


def test_bot_reply_says_what_was_analysed() -> None:
    from bot.discord_adapter import replies

    embed = replies.prediction_embed(file_name="song.mp3", genre="rock", confidence=0.6, top_k=[("rock", 0.6)],
                                     duration_s=180.0, model_version="v1", analysed_s=47.9, n_windows=16)
    assert next(f.value for f in embed.fields if f.name == "Analysed") == "48 s of 3:00 (16 windows)"


def test_the_picture_title_leads_with_a_close_call() -> None:
    import numpy as np
    from genre_model.predict import Prediction

    def title(probabilities, sound="music", tags=()):
        genre = max(probabilities, key=probabilities.get) if sound == "music" else None
        return Prediction(genre, probabilities, [], 30.0, 30.0, "v", np.zeros(0), np.zeros((0, 0)),
                          sound=sound, tags=list(tags)).title()

    assert title({"reggae": 0.4, "hiphop": 0.35, "rock": 0.25}) == (
        "Could be Reggae or Hip-hop:  Reggae 40%  Hip-hop 35%  Rock 25%")
    assert title({"metal": 0.9, "rock": 0.1}, tags=[("metal", 0.8)]) == "Metal 90%  Rock 10%   tags: metal"
    assert title({"rock": 0.9, "pop": 0.1}, sound="speech") == "This sounds like speech, not music"
