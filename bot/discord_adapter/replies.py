"""What the bot says: embeds and short messages, built from plain data (easy to test)."""

from __future__ import annotations

from pathlib import PurePath
from typing import Sequence

import discord

from genre_model.config import coverage, display_name

RIGHT = "\N{WHITE HEAVY CHECK MARK}"
WRONG = "\N{CROSS MARK}"
FEEDBACK_EMOJI = {RIGHT: "right", WRONG: "wrong"}
IMAGE_NAME = "spectrogram.png"
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


def _analysed(duration_s: float, analysed_s: float | None, n_windows: int) -> str:
    """How much of the decoded song the windows heard."""
    return coverage(analysed_s, duration_s, n_windows) if analysed_s is not None and n_windows else f"{duration_s:.1f} s"


def prediction_embed(*, file_name: str, genre: str, confidence: float, top_k: list[tuple[str, float]],
                     duration_s: float, model_version: str, analysed_s: float | None = None,
                     n_windows: int = 0, close_call: str | None = None, tags: Sequence[str] = ()) -> discord.Embed:
    """The reply to /genre: top genre and confidence, runners-up with bars, and the image.

    Genres arrive as labels ("hiphop") and are shown with their display names ("Hip-hop");
    ``close_call`` is the verdict in words when the top genres are close ("could be Reggae or
    Hip-hop"), said instead of a bare label; ``tags`` (musicnn's MSD tags) are shown marked as
    tags, not genres; "Analysed" says how much of the decoded song the windows heard."""
    shown = display_name(genre)
    name = safe_filename(file_name)
    if close_call:
        title = sentence(close_call).rstrip(".")
        description = f"It's a close call: **{name}** {close_call}."
    else:
        title = f"{shown} \N{EM DASH} {confidence:.0%}"
        description = f"I'm {describe_confidence(confidence)} that **{name}** is **{shown}**."
    embed = discord.Embed(title=title, description=description, colour=discord.Colour.blurple())
    embed.add_field(name="Top genres", inline=False, value=top_genre_lines(top_k))
    if tags:
        embed.add_field(name="Tags (not genres)", inline=False, value=", ".join(tags))
    embed.add_field(name="Analysed", value=_analysed(duration_s, analysed_s, n_windows), inline=True)
    embed.add_field(name="Feedback", inline=True,
                    value=f"{RIGHT} right \N{MIDDLE DOT} {WRONG} wrong \N{MIDDLE DOT} pick the right genre below")
    embed.set_image(url=f"attachment://{IMAGE_NAME}")
    embed.set_footer(text=f"model {model_version}")
    return embed


def not_music_embed(*, file_name: str, verdict: str, duration_s: float, model_version: str,
                    analysed_s: float | None = None, n_windows: int = 0) -> discord.Embed:
    """The reply to an upload that does not sound like music: the words ("This sounds like speech,
    not music.") and the picture; no genre, and nothing to vote on."""
    embed = discord.Embed(title=sentence(verdict),
                          description=f"So I won't name a genre for **{safe_filename(file_name)}**.",
                          colour=discord.Colour.light_grey())
    embed.add_field(name="Analysed", value=_analysed(duration_s, analysed_s, n_windows), inline=True)
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


def vote_thanks(genre: str) -> str:
    """The answer to a menu choice that agrees with the prediction."""
    return f"Thanks! Counted as a {RIGHT}: **{display_name(genre)}** is what I said."


def correction_thanks(genre: str, predicted: str) -> str:
    """The answer to a menu choice that corrects the prediction."""
    return f"Thanks! Noted: this is **{display_name(genre)}**, not {display_name(predicted)}."


def mb(n_bytes: int) -> str:
    return f"{n_bytes / (1024 * 1024):.1f} MB"
