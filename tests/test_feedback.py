"""The vote -> label rule and the uploader/file grouping of corrections (pure functions)."""

from __future__ import annotations

import pytest

from bot.feedback import Correction, Rated, Vote, corrections, label_from_votes, uploader_groups

R, W = "right", "wrong"


@pytest.mark.parametrize("votes,expected", [
    ([], None),
    ([Vote(1, R)], ("rock", "confirmed")),
    ([Vote(1, R), Vote(2, W, "jazz")], None),                                   # a tie
    ([Vote(1, W)], None),                                                        # wrong, nothing named
    ([Vote(1, W, "pop"), Vote(2, W, "jazz"), Vote(3, W, "jazz"), Vote(4, R)], ("jazz", "corrected")),
    ([Vote(1, W, "metal"), Vote(2, W, "blues")], ("metal", "corrected")),        # named first wins a tie
    ([Vote(2, W, "blues"), Vote(1, W, "metal")], ("blues", "corrected")),
    ([Vote(1, R), Vote(2, R), Vote(3, W, "pop")], ("rock", "confirmed")),
    ([Vote(1, W), Vote(2, W), Vote(3, R), Vote(4, W, "pop")], ("pop", "corrected")),  # one name is enough
])
def test_label_from_votes(votes, expected):
    assert label_from_votes("rock", votes) == expected


def test_uploader_groups_are_components_of_same_uploader_or_same_file():
    items = [(5, 100, "x"), (3, 100, "y"), (9, 200, "y"), (12, 200, "z"),  # 100 and 200 share file y
             (7, 300, "w"),
             (20, 400, "v"), (15, 500, "v"), (30, 500, "u")]                   # 400 and 500 share file v
    assert uploader_groups(items) == {5: "corr-3", 3: "corr-3", 9: "corr-3", 12: "corr-3", 7: "corr-7",
                                      20: "corr-15", 15: "corr-15", 30: "corr-15"}
    assert uploader_groups(reversed(items)) == uploader_groups(items), "independent of order"
    assert uploader_groups([]) == {}


def test_corrections_label_and_group_only_clear_majorities():
    rated = [Rated(4, 100, "a", "rock", (Vote(1, W, "jazz"),)),
             Rated(2, 100, "b", "pop", (Vote(1, R), Vote(2, W, "jazz"))),    # tie: no example, no group
             Rated(8, 100, "d", "pop", (Vote(3, R),)),                      # same uploader as 4
             Rated(6, 300, "c", "blues", (Vote(3, R), Vote(4, R)))]
    assert corrections(rated) == [Correction(4, "jazz", "corrected", "corr-4"),
                                  Correction(6, "blues", "confirmed", "corr-6"),
                                  Correction(8, "pop", "confirmed", "corr-4")]


def test_one_example_per_file_and_none_for_a_file_labelled_two_ways():
    rated = [Rated(1, 100, "same", "rock", (Vote(9, R),)),
             Rated(2, 200, "same", "rock", (Vote(9, R),)),                   # same file, same label: dropped
             Rated(3, 200, "other", "pop", (Vote(9, R),)),                   # linked to 1 through 2's uploader
             Rated(4, 300, "torn", "rock", (Vote(9, R),)),
             Rated(5, 400, "torn", "rock", (Vote(9, W, "jazz"),))]          # same file, other label: both out
    assert corrections(rated) == [Correction(1, "rock", "confirmed", "corr-1"),
                                  Correction(3, "pop", "confirmed", "corr-1")]
