"""Inputs that try to break /genre, synthesised on the fly (nothing here is committed as data).

:func:`build_corpus` returns :class:`Case` objects: what to upload (name, bytes, content
type, fake-server options) and what the user must be told (``expect`` is ``"result"``
for a prediction embed, else key words that the error reply must contain).
"""

from __future__ import annotations

import dataclasses
import io
import struct
import subprocess
import zipfile
from pathlib import Path

import numpy as np
import soundfile as sf

from conftest import encode, synth_music

SR = 22050

#: The ids of :func:`build_corpus`'s cases, in order (known at collection time).
CASE_IDS = ("empty", "text-as-mp3", "random-wav", "mp3-cut-40pc", "mp3-cut-300B", "wav-len-x10", "wav-len-0",
            "short-0.3s", "silence-30s", "192k-8ch", "video-mp4", "midi", "zip-as-ogg", "over-limit",
            "dotdot-name", "slashes-name", "markdown-name", "url-hangs", "url-404", "url-500")


@dataclasses.dataclass
class Case:
    """One upload and the reply it must get."""

    id: str
    filename: str
    data: bytes
    content_type: str | None
    expect: str | tuple[str, ...]  # "result", or words the error reply contains (any-of groups via "|")
    server_kwargs: dict = dataclasses.field(default_factory=dict)
    shown_name: str | None = None  # sanitised name the reply must show


def ffmpeg(*args: str) -> None:
    subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-y", *args], check=True, timeout=120)


def wav_bytes(samples: np.ndarray, sr: int) -> bytes:
    buf = io.BytesIO()
    sf.write(buf, samples, sr, format="WAV", subtype="PCM_16")
    return buf.getvalue()


def lie_about_length(wav: bytes, factor: float) -> bytes:
    """Rewrite the WAV ``data`` chunk size to ``factor`` x the real size (0 -> size 0)."""
    pos = wav.find(b"data")
    assert pos > 0, "no data chunk"
    real = struct.unpack_from("<I", wav, pos + 4)[0]
    patched = bytearray(wav)
    struct.pack_into("<I", patched, pos + 4, min(0xFFFFFFFF, int(real * factor)))
    return bytes(patched)


def midi_bytes() -> bytes:
    """A valid one-track Standard MIDI File: middle C for one beat."""
    track = bytes([0x00, 0x90, 0x3C, 0x64, 0x60, 0x80, 0x3C, 0x40, 0x00, 0xFF, 0x2F, 0x00])
    return b"MThd" + struct.pack(">IHHH", 6, 0, 1, 96) + b"MTrk" + struct.pack(">I", len(track)) + track


def zip_bytes() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("song.txt", "not a song\n" * 200)
    return buf.getvalue()


def good_song(tmp: Path, seconds: float = 5.0, seed: int = 11, fmt: str = "mp3") -> bytes:
    return encode(synth_music(seconds, SR, seed=seed), tmp / f"good{seed}-{seconds:g}.{fmt}", SR, fmt).read_bytes()


def long_mp3(tmp: Path, minutes: int = 120) -> bytes:
    """A cheap 2-hour MP3 (8 kbit/s, 8 kHz mono sine, ~7 MB): one minute encoded, its frames repeated."""
    out = tmp / "one-minute.mp3"
    ffmpeg("-f", "lavfi", "-i", "sine=f=220:d=60", "-b:a", "8k", "-ar", "8000", "-ac", "1",
           "-write_xing", "0", "-id3v2_version", "0", str(out))
    return out.read_bytes() * minutes


def video_mp4(tmp: Path, seconds: float = 8.0) -> bytes:
    """An MP4 with a (tiny) H.264/MPEG-4 video track and an AAC music track."""
    song = encode(synth_music(seconds, SR, seed=4), tmp / "video-audio.wav", SR, "wav")
    out = tmp / "clip.mp4"
    ffmpeg("-f", "lavfi", "-i", f"testsrc=size=160x120:rate=10:duration={seconds}", "-i", str(song),
           "-c:v", "mpeg4", "-c:a", "aac", "-shortest", str(out))
    return out.read_bytes()


def build_corpus(tmp: Path, *, max_attachment_bytes: int) -> list[Case]:
    """The whole bad-input corpus (about 20 uploads, a few MB in total except the 2-hour MP3)."""
    tmp.mkdir(parents=True, exist_ok=True)
    ten_s = encode(synth_music(10.0, SR, seed=2), tmp / "ten.mp3", SR, "mp3").read_bytes()
    wav10 = wav_bytes(synth_music(10.0, SR, seed=3), SR)
    hires = wav_bytes(synth_music(5.0, 192000, seed=5, channels=8), 192000)
    good = good_song(tmp)
    not_audio = ("not audio I can read",)
    return [
        Case("empty", "empty.mp3", b"", "audio/mpeg", ("empty",)),
        Case("text-as-mp3", "notes.mp3", b"Dear diary, today I wrote no music.\n" * 50, "audio/mpeg", not_audio),
        Case("random-wav", "noise.wav", np.random.default_rng(0).bytes(64_000), "audio/wav", not_audio),
        Case("mp3-cut-40pc", "cut.mp3", ten_s[: int(len(ten_s) * 0.4)], "audio/mpeg", "result"),
        Case("mp3-cut-300B", "stub.mp3", ten_s[:300], "audio/mpeg", ("not audio I can read|I need at least",)),
        Case("wav-len-x10", "liar10.wav", lie_about_length(wav10, 10), "audio/wav", "result"),
        Case("wav-len-0", "liar0.wav", lie_about_length(wav10, 0), "audio/wav", "result"),
        Case("short-0.3s", "blip.wav", wav_bytes(synth_music(0.3, SR, seed=6), SR), "audio/wav", ("0.3 s", "3 s")),
        Case("silence-30s", "quiet.wav", wav_bytes(np.zeros(30 * SR, np.float32), SR), "audio/wav", ("silent",)),
        Case("192k-8ch", "hires.wav", hires, "audio/wav", "result"),
        Case("video-mp4", "clip.mp4", video_mp4(tmp), "video/mp4", "result"),
        Case("midi", "tune.mid", midi_bytes(), "audio/midi", not_audio),
        Case("zip-as-ogg", "archive.ogg", zip_bytes(), "audio/ogg", not_audio),
        Case("over-limit", "huge.wav", b"\0" * 64, "audio/wav", ("limit",),
             server_kwargs={"size": max_attachment_bytes + 1}),
        Case("dotdot-name", "../../etc/passwd.mp3", good, "audio/mpeg", "result", shown_name="passwd.mp3"),
        Case("slashes-name", "a/b\\c.mp3", good, "audio/mpeg", "result", shown_name="c.mp3"),
        Case("markdown-name", "**@everyone** `x`\n" + "y" * 300 + ".mp3", good, "audio/mpeg", "result"),
        Case("url-hangs", "slow.mp3", good, "audio/mpeg", ("couldn't download",), server_kwargs={"hang": True}),
        Case("url-404", "gone.mp3", good, "audio/mpeg", ("couldn't download", "404"), server_kwargs={"status": 404}),
        Case("url-500", "broken.mp3", good, "audio/mpeg", ("couldn't download", "500"),
             server_kwargs={"status": 500}),
    ]
