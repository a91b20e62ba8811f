"""The bot's words for close calls, tags and uploads that are not music (bot/replies.py)."""

from __future__ import annotations

from bot.discord_adapter import replies
from genre_model.predict import verdict

TOP = [("reggae", 0.46), ("hiphop", 0.40), ("pop", 0.08)]


def fields(embed) -> dict[str, str]:
    return {f.name: f.value for f in embed.fields}


def test_a_close_call_is_said_in_words_not_as_a_bare_label() -> None:
    words = verdict("reggae", dict(TOP))
    assert words == "could be Reggae or Hip-hop"
    embed = replies.prediction_embed(file_name="song.mp3", genre="reggae", confidence=0.46, top_k=TOP,
                                     duration_s=30.0, model_version="v1", close_call=words)
    assert embed.title == "Could be Reggae or Hip-hop"
    assert embed.description == "It's a close call: **song.mp3** could be Reggae or Hip-hop."
    assert fields(embed)["Top genres"].splitlines()[1].endswith("  Hip-hop")


def test_a_clear_call_names_the_genre_and_tags_are_marked_as_tags() -> None:
    top = [("reggae", 0.86), ("hiphop", 0.10), ("pop", 0.04)]
    assert verdict("reggae", dict(top)) == "Reggae"
    embed = replies.prediction_embed(file_name="song.mp3", genre="reggae", confidence=0.86, top_k=top,
                                     duration_s=30.0, model_version="v1", tags=["electronic", "dance", "House"])
    assert embed.title == "Reggae \N{EM DASH} 86%"
    assert embed.description == "I'm confident that **song.mp3** is **Reggae**."
    assert fields(embed)["Tags (not genres)"] == "electronic, dance, House"
    untagged = replies.prediction_embed(file_name="song.mp3", genre="reggae", confidence=0.86, top_k=top,
                                        duration_s=30.0, model_version="v1")
    assert not any("Tags" in name for name in fields(untagged))


def test_not_music_is_a_sentence_with_the_picture_and_nothing_to_vote_on() -> None:
    embed = replies.not_music_embed(file_name="voice note.ogg", verdict=verdict(None, dict(TOP), "speech"),
                                    duration_s=21.0, analysed_s=21.0, n_windows=7, model_version="v1")
    assert embed.title == "This sounds like speech, not music."
    assert embed.description == "So I won't name a genre for **voice note.ogg**."
    assert embed.image.url == f"attachment://{replies.IMAGE_NAME}"
    assert set(fields(embed)) == {"Analysed"}, "no genres, no feedback line"
    assert replies.not_music_embed(file_name="beep.wav", verdict=verdict(None, {}, "tone"), duration_s=5.0,
                                   model_version="v1").title == "This sounds like a tone or beeps, not music."


def test_vote_outcomes_are_worded_for_the_voter() -> None:
    from bot.votes import VoteOutcome

    assert "**Hip-hop**, not Jazz" in replies.vote_outcome(VoteOutcome("corrected", "hiphop", "jazz"))
    assert "**Jazz** is what I said" in replies.vote_outcome(VoteOutcome("right", "jazz", "jazz"))
    assert replies.vote_outcome(VoteOutcome("failed", "jazz")) == replies.VOTE_NOT_SAVED
    assert replies.vote_outcome(VoteOutcome("refused", problem="value 'x'")) == replies.NOT_OFFERED
    assert replies.vote_outcome(VoteOutcome("not_tracked")) == replies.NOT_TRACKED
    assert replies.vote_outcome(VoteOutcome("not_music")) == replies.NOTHING_TO_VOTE


def test_a_doubtful_genre_says_it_may_not_be_music_and_still_takes_votes() -> None:
    top = [("jazz", 0.81), ("blues", 0.12), ("pop", 0.04)]
    embed = replies.prediction_embed(file_name="owl.ogg", genre="jazz", confidence=0.81, top_k=top,
                                     duration_s=12.0, model_version="v1", doubtful=True)
    assert embed.title == "Jazz \N{EM DASH} 81% (may not be music)"
    assert embed.description.endswith(replies.DOUBT) and "**owl.ogg** is **Jazz**" in embed.description
    assert "Feedback" in fields(embed)
    plain = replies.prediction_embed(file_name="owl.ogg", genre="jazz", confidence=0.81, top_k=top,
                                     duration_s=12.0, model_version="v1")
    assert "may not be music" not in plain.title and replies.DOUBT not in plain.description


def test_a_refused_size_differs_from_the_limit_in_what_the_member_reads() -> None:
    """Issue 16: a file one byte over 25 MB was told "25.0 MB; limit 25.0 MB"."""
    from bot.uploads import refusal

    limit = 25 * 1024 * 1024
    for size, shown in [(limit + 1, "26,214,401 bytes; the limit is 26,214,400 bytes"),
                        (limit + 200, "25.0002 MB; the limit is 25.0000 MB"),
                        (limit + 6_000, "25.01 MB; the limit is 25.00 MB"),
                        (40 * 1024 * 1024, "40.0 MB; the limit is 25.0 MB")]:
        text = replies.refusal_text("big.wav", refusal("big.wav", size, "audio/wav", limit), limit)
        assert shown in text, text
    assert refusal("ok.wav", limit, "audio/wav", limit) is None  # the limit itself is allowed
