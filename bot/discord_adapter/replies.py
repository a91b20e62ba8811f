"""Every word the bot says: embeds and short messages, built from plain data (easy to test).

The service layer returns outcomes (a prediction, a refusal, a retrain outcome, counts); this
module is the one place that turns them into what members read."""

from __future__ import annotations

from pathlib import PurePath
from typing import Sequence

import discord

from bot.retraining import RetrainOutcome
from bot.storage.base import Stats
from bot.uploads import Refusal
from bot.votes import VoteOutcome
from genre_model.config import coverage, display_name
from genre_model.predict import Prediction, verdict

RIGHT = "\N{WHITE HEAVY CHECK MARK}"
WRONG = "\N{CROSS MARK}"
FEEDBACK_EMOJI = {RIGHT: "right", WRONG: "wrong"}
IMAGE_NAME = "spectrogram.png"
DOUBT = "\N{WARNING SIGN} It may not be music, though: parts of it sound like speech or everyday sounds."
_BAR = 12


def safe_filename(name: str) -> str:
    """A display/attachment-safe file name: no path parts, no control characters, bounded."""
    base = PurePath(name.replace("\\", "/")).name or "upload"
    cleaned = "".join(ch if ch.isprintable() and ch not in '/\\<>:"|?*`' else "_" for ch in base).strip(". ")
    return (cleaned or "upload")[:80]


def bar(p: float) -> str:
    filled = round(max(0.0, min(1.0, p)) * _BAR)
    return "\N{FULL BLOCK}" * filled + "\N{LIGHT SHADE}" * (_BAR - filled)


def describe_confidence(p: float) -> str:
    return "confident" if p >= 0.75 else "fairly sure" if p >= 0.5 else "unsure"


def top_genre_lines(top_k: list[tuple[str, float]]) -> str:
    """One line per genre: a bar, the probability and the genre as people write it."""
    return "\n".join(f"`{bar(p)}` {p:5.1%}  {display_name(g)}" for g, p in top_k)


def sentence(words: str) -> str:
    """Words as a sentence: "this sounds like speech, not music" -> "This sounds like speech, not music."."""
    return words[:1].upper() + words[1:] + ("" if words.endswith((".", "!", "?")) else ".")


def _analysed(duration_s: float, analysed_s: float | None, n_windows: int, file_s: float | None = None) -> str:
    """How much of the song the windows heard (and of the file, when only its start was analysed)."""
    if analysed_s is None or not n_windows:
        return f"{duration_s:.1f} s"
    return coverage(analysed_s, duration_s, n_windows, file_s)


def prediction_embed(*, file_name: str, genre: str, confidence: float, top_k: list[tuple[str, float]],
                     duration_s: float, model_version: str, analysed_s: float | None = None,
                     n_windows: int = 0, close_call: str | None = None, tags: Sequence[str] = (),
                     file_s: float | None = None, doubtful: bool = False) -> discord.Embed:
    """The reply to /genre: top genre and confidence, runners-up with bars, and the image.

    Genres arrive as labels ("hiphop") and are shown with their display names ("Hip-hop");
    ``close_call`` is the verdict in words when the top genres are close ("could be Reggae or
    Hip-hop"), said instead of a bare label; ``tags`` (musicnn's MSD tags) are shown marked as
    tags, not genres; "Analysed" says how much of the decoded song the windows heard; ``doubtful``
    (the sound detector only just heard music) adds that it may not be music."""
    shown = display_name(genre)
    name = safe_filename(file_name)
    if close_call:
        title = sentence(close_call).rstrip(".")
        description = f"It's a close call: **{name}** {close_call}."
    else:
        title = f"{shown} \N{EM DASH} {confidence:.0%}"
        description = f"I'm {describe_confidence(confidence)} that **{name}** is **{shown}**."
    if doubtful:
        title += " (may not be music)"
        description += f"\n{DOUBT}"
    embed = discord.Embed(title=title, description=description, colour=discord.Colour.blurple())
    embed.add_field(name="Top genres", inline=False, value=top_genre_lines(top_k))
    if tags:
        embed.add_field(name="Tags (not genres)", inline=False, value=", ".join(tags))
    embed.add_field(name="Analysed", value=_analysed(duration_s, analysed_s, n_windows, file_s), inline=True)
    embed.add_field(name="Feedback", inline=True,
                    value=f"{RIGHT} right \N{MIDDLE DOT} {WRONG} wrong \N{MIDDLE DOT} pick the right genre below")
    embed.set_image(url=f"attachment://{IMAGE_NAME}")
    embed.set_footer(text=f"model {model_version}")
    return embed


def not_music_embed(*, file_name: str, verdict: str, duration_s: float, model_version: str,
                    analysed_s: float | None = None, n_windows: int = 0,
                    file_s: float | None = None) -> discord.Embed:
    """The reply to an upload that does not sound like music: the words ("This sounds like speech,
    not music.") and the picture; no genre, and nothing to vote on."""
    embed = discord.Embed(title=sentence(verdict),
                          description=f"So I won't name a genre for **{safe_filename(file_name)}**.",
                          colour=discord.Colour.light_grey())
    embed.add_field(name="Analysed", value=_analysed(duration_s, analysed_s, n_windows, file_s), inline=True)
    embed.set_image(url=f"attachment://{IMAGE_NAME}")
    embed.set_footer(text=f"model {model_version}")
    return embed


def error_text(problem: str) -> str:
    """A short, friendly failure reply."""
    problem = problem.rstrip(".")
    if not problem.startswith(("I ", "I'")):
        problem = problem[:1].lower() + problem[1:]
    return f"\N{WARNING SIGN} Sorry, I couldn't classify that: {problem}."


SORRY = "\N{WARNING SIGN} Something went wrong on my side; please try again later."


NOT_TRACKED = "That reply is no longer tracked."
NOT_OFFERED = "\N{NO ENTRY SIGN} That isn't a choice I offered; nothing was recorded."
NOTHING_TO_VOTE = "There is nothing to vote on in that reply."
VOTE_NOT_SAVED = "\N{WARNING SIGN} I couldn't save your vote right now; please try again in a minute."


def vote_thanks(genre: str) -> str:
    """The answer to a menu choice that agrees with the prediction."""
    return f"Thanks! Counted as a {RIGHT}: **{display_name(genre)}** is what I said."


def correction_thanks(genre: str, predicted: str) -> str:
    """The answer to a menu choice that corrects the prediction."""
    return f"Thanks! Noted: this is **{display_name(genre)}**, not {display_name(predicted)}."


def vote_outcome(outcome: VoteOutcome) -> str:
    """The answer to a menu pick (the voter alone reads it)."""
    if outcome.status == "right":
        return vote_thanks(outcome.genre or "")
    if outcome.status == "corrected":
        return correction_thanks(outcome.genre or "", outcome.predicted or "")
    if outcome.status == "failed":
        return VOTE_NOT_SAVED
    if outcome.status == "not_music":
        return NOTHING_TO_VOTE
    if outcome.status == "not_tracked":
        return NOT_TRACKED
    return NOT_OFFERED


def sizes(size: int, limit: int) -> tuple[str, str]:
    """``size`` and ``limit`` in MB with just enough decimals to tell them apart ("25.0001 MB" vs
    "25.0 MB"), or in bytes when even 4 decimals would not."""
    mb = 1024 * 1024
    for decimals in range(1, 5):
        a, b = f"{size / mb:.{decimals}f}", f"{limit / mb:.{decimals}f}"
        if (a != b) == (size != limit):
            return f"{a} MB", f"{b} MB"
    return f"{size:,} bytes", f"{limit:,} bytes"


def refusal_text(name: str, refusal: Refusal, max_bytes: int) -> str:
    """Why an attachment was refused before download, as the member reads it."""
    if refusal.reason == "too_large":
        size, limit = sizes(refusal.size, max_bytes)
        return error_text(f"**{name}** is {size}; the limit is {limit}")
    if refusal.reason == "empty":
        return error_text(f"**{name}** is empty")
    return error_text(f"**{name}** doesn't look like an audio file ({refusal.kind})")


def download_failed(name: str, status: int | None = None) -> str:
    return error_text(f"I couldn't download **{name}**{f' (HTTP {status})' if status else ''}; please try again")


def cooldown(wait_s: float) -> str:
    return f"\N{HOURGLASS} One song at a time, please: try again in {wait_s:.0f} s."


def forgotten(predictions: int, votes: int) -> str:
    return f"Done: I deleted {predictions} of your predictions and {votes} votes."


BUSY = "\N{HOURGLASS} I'm busy with other songs right now; please try again in a minute."
RESTARTING = "I'm restarting; please try again in a minute."
NO_AUDIO_ATTACHMENT = error_text("that message has no audio attachment")


def reply_embed(prediction: Prediction, file_name: str) -> discord.Embed:
    """The reply to /genre for a prediction: a genre (or a close call), or "not music"."""
    if not prediction.music:
        return not_music_embed(file_name=file_name, verdict=prediction.verdict(), duration_s=prediction.duration_s,
                               analysed_s=prediction.analysed_s, n_windows=prediction.n_windows,
                               model_version=prediction.model_version, file_s=prediction.file_s)
    return prediction_embed(
        file_name=file_name, genre=prediction.genre, confidence=prediction.confidence, top_k=prediction.top_k(),
        duration_s=prediction.duration_s, analysed_s=prediction.analysed_s, n_windows=prediction.n_windows,
        model_version=prediction.model_version,
        close_call=verdict(prediction.genre, prediction.probabilities) if prediction.close_call() else None,
        tags=[tag for tag, _ in prediction.tags], file_s=prediction.file_s, doubtful=prediction.doubtful)


# ---------------------------------------------------------------------------------------- administration

ADMINS_ONLY = "\N{NO ENTRY SIGN} Only the bot's admins can do that; nothing was changed."
RETRAIN_NOT_CONFIGURED = "Retraining is not configured: set GENREBOT_BASE_DATA to the base training data."
RETRAIN_RUNNING = "A retrain is already running; wait for it to finish."


def retrain_progress(message: str) -> str:
    return f"\N{GEAR} Retraining: {message}"


def retrain_outcome(outcome: RetrainOutcome) -> str:
    """The final word on a /retrain. Never an exception's text, an error number or a path: a failure
    names the error id the bot's log holds the detail under."""
    if outcome.status == "promoted":
        return f"\N{WHITE HEAVY CHECK MARK} Promoted model {outcome.candidate}: {outcome.reason}."
    if outcome.status == "kept":
        return f"\N{NO ENTRY} Not promoted: {outcome.reason}. Model {outcome.serving} keeps serving."
    if outcome.status == "discarded":
        return (f"\N{CROSS MARK} Retrain discarded: a member asked to be forgotten while it ran, so nothing it "
                f"made was kept; model {outcome.serving} keeps serving. Run /retrain again.")
    what = f"Model {outcome.candidate} was not promoted" if outcome.candidate else "Retrain failed"
    return f"\N{CROSS MARK} {what} ({retrain_error(outcome.error_id)}); model {outcome.serving} keeps serving."


def retrain_error(error_id: str) -> str:
    return f"error {error_id}, see the bot's log" if error_id else "see the bot's log"


RETRAIN_INTERRUPTED = ("\N{CROSS MARK} Retrain interrupted by a restart of the bot; nothing was kept and the live "
                       "model keeps serving. Run /retrain again.")


def storage_unavailable(error_id: str) -> str:
    return (f"\N{WARNING SIGN} I can't reach my database right now ({retrain_error(error_id)}); nothing was "
            "started. Please try again in a minute.")


def stats_embed(st: Stats, *, live: str, pending: int, worst_stall_s: float) -> discord.Embed:
    """/genre-stats: predictions, votes, accuracy by feedback, the live model and the queue."""
    accuracy = "n/a" if st.feedback_accuracy is None else f"{st.feedback_accuracy:.0%}"
    embed = discord.Embed(title="genrebot statistics", colour=discord.Colour.dark_teal())
    embed.add_field(name="Predictions", value=str(st.n_predictions))
    embed.add_field(name="Not music", value=str(st.n_not_music))
    embed.add_field(name="Votes", value=f"{RIGHT} {st.n_votes_right} \N{MIDDLE DOT} "
                                        f"{WRONG} {st.n_votes_wrong} \N{MIDDLE DOT} {st.n_corrections} corrections")
    embed.add_field(name="Accuracy by feedback", value=f"{accuracy} of {st.n_predictions_with_feedback} rated")
    embed.add_field(name="Live model", value=live)
    embed.add_field(name="Queue", value=f"{pending} running or waiting")
    embed.add_field(name="Worst event-loop stall", value=f"{worst_stall_s * 1000:.0f} ms")
    return embed
