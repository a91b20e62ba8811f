"""Sounds generated here to teach the sound detector what is music and what is not.

The detector (:mod:`genre_model.detector`) learns "music" from the training songs, and
"not music" from pure tones, chords of sines, sweeps, telephone tones, noise of several
colours, click trains, mains hum, and speech synthesised by espeak-ng (Debian's
``espeak-ng`` package) in several voices and languages. It also learns "music" from
synthesised bands (:func:`band`: drums, bass, chords, melody): without them the
detector would learn "synthesised timbre = not music", and electronic music, which the
training songs (GTZAN) lack, would come back as "a tone".

Every clip is made from a seed, so a set is reproducible; :func:`detector_set` keeps the
voices, languages and parameter draws of its ``"train"`` and ``"heldout"`` parts apart, so
the held-out part measures the detector on sounds it was not trained on. Signal
generators are small pure functions of (seconds, sample rate, rng); only :func:`speech`
runs a program.
"""

from __future__ import annotations

import dataclasses
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Callable

import numpy as np

from genre_model.errors import GenreModelError

#: What a not-music clip sounds like; the detector reports one of these (or "music").
SOUND_KINDS = ("speech", "tone", "noise")


def _time(seconds: float, sr: int) -> np.ndarray:
    if seconds <= 0 or sr <= 0:
        raise ValueError("seconds and sample rate must be positive")
    return np.arange(int(round(seconds * sr))) / sr


def _fade(x: np.ndarray, sr: int, seconds: float = 0.02) -> np.ndarray:
    n = min(len(x) // 2, int(sr * seconds))
    if n:
        ramp = np.linspace(0.0, 1.0, n)
        x[:n] *= ramp
        x[-n:] *= ramp[::-1]
    return x


def tone(seconds: float, sr: int, rng: np.random.Generator) -> np.ndarray:
    """A steady sine (sometimes with a few harmonics, sometimes gently amplitude-modulated)."""
    t = _time(seconds, sr)
    f = rng.uniform(80.0, 4000.0)
    x = np.sin(2 * np.pi * f * t)
    if rng.random() < 0.4:
        for k in range(2, int(rng.integers(3, 6))):
            x += rng.uniform(0.05, 0.5) / k * np.sin(2 * np.pi * f * k * t)
    if rng.random() < 0.3:
        x *= 1.0 - 0.5 * (0.5 + 0.5 * np.sin(2 * np.pi * rng.uniform(0.5, 6.0) * t))
    return x


def chord(seconds: float, sr: int, rng: np.random.Generator) -> np.ndarray:
    """A held chord of 2-5 sines, or a test-signal-like stack of unrelated frequencies."""
    t = _time(seconds, sr)
    base = rng.uniform(100.0, 800.0)
    ratios = rng.choice([1.0, 1.25, 1.333, 1.5, 1.667, 2.0, 2.5, 3.0], size=int(rng.integers(2, 6)), replace=False)
    if rng.random() < 0.3:
        ratios = rng.uniform(1.0, 6.0, size=len(ratios))
    return sum(np.sin(2 * np.pi * base * r * t + rng.uniform(0, 2 * np.pi)) for r in ratios)


def sweep(seconds: float, sr: int, rng: np.random.Generator) -> np.ndarray:
    """A linear or logarithmic sine sweep, once or repeated."""
    repeats = int(rng.integers(1, 4))
    t = _time(seconds / repeats, sr)
    f0, f1 = sorted(rng.uniform(20.0, 8000.0, size=2))
    if rng.random() < 0.5:
        phase = 2 * np.pi * (f0 * t + (f1 - f0) * t ** 2 / (2 * t[-1]))
    else:
        k = np.log(f1 / f0) / t[-1]
        phase = 2 * np.pi * f0 * (np.exp(k * t) - 1) / k
    one = np.sin(phase)
    return np.tile(one, repeats)


#: Telephone signals: (frequencies in Hz, on seconds, off seconds); off 0 = continuous.
_PHONE = (((350.0, 440.0), 1.0, 0.0), ((425.0,), 1.0, 0.0), ((480.0, 620.0), 0.5, 0.5),
          ((440.0, 480.0), 2.0, 4.0), ((400.0, 450.0), 0.4, 0.2), ((950.0, 1400.0, 1800.0), 0.33, 1.0))
_DTMF = ((697.0, 770.0, 852.0, 941.0), (1209.0, 1336.0, 1477.0))


def phone(seconds: float, sr: int, rng: np.random.Generator) -> np.ndarray:
    """Dial, busy and ring tones, or a string of DTMF key presses."""
    t = _time(seconds, sr)
    if rng.random() < 0.35:  # DTMF digits
        x = np.zeros_like(t)
        step = rng.uniform(0.15, 0.4)
        for start in np.arange(0.0, seconds - 0.1, step):
            lo, hi = rng.choice(_DTMF[0]), rng.choice(_DTMF[1])
            on = (t >= start) & (t < start + step * 0.6)
            x[on] = np.sin(2 * np.pi * lo * t[on]) + np.sin(2 * np.pi * hi * t[on])
        return x
    freqs, on, off = _PHONE[int(rng.integers(len(_PHONE)))]
    x = sum(np.sin(2 * np.pi * f * t) for f in freqs)
    if off:
        x = x * (np.mod(t, on + off) < on)
    return x


def noise(seconds: float, sr: int, rng: np.random.Generator) -> np.ndarray:
    """White, pink, brown, blue or band-passed noise, sometimes swelling like wind or surf."""
    n = int(round(seconds * sr))
    spectrum = np.fft.rfft(rng.standard_normal(n))
    f = np.fft.rfftfreq(n, 1.0 / sr)
    f[0] = f[1]
    colour = rng.choice(["white", "pink", "brown", "blue", "band"])
    if colour == "pink":
        spectrum /= np.sqrt(f)
    elif colour == "brown":
        spectrum /= f
    elif colour == "blue":
        spectrum *= np.sqrt(f)
    elif colour == "band":
        centre = rng.uniform(200.0, 5000.0)
        spectrum *= np.exp(-0.5 * (np.log(f / centre) / rng.uniform(0.2, 0.8)) ** 2)
    x = np.fft.irfft(spectrum, n)
    if rng.random() < 0.4:
        t = _time(seconds, sr)
        x *= 0.4 + 0.6 * (0.5 + 0.5 * np.sin(2 * np.pi * rng.uniform(0.05, 0.5) * t + rng.uniform(0, 6.3)))
    return x


def clicks(seconds: float, sr: int, rng: np.random.Generator) -> np.ndarray:
    """Click trains: regular ticks (a clock), random crackle, or a Geiger-counter-like burst."""
    n = int(round(seconds * sr))
    x = np.zeros(n)
    if rng.random() < 0.5:
        at = np.arange(0, n, int(sr * rng.uniform(0.05, 1.0)))
    else:
        at = np.flatnonzero(rng.random(n) < rng.uniform(2.0, 60.0) / sr)
    width = int(rng.integers(8, 200))
    click = np.exp(-np.arange(width) / (width / 5)) * rng.choice([-1.0, 1.0], size=width)
    for a in at:
        end = min(n, a + width)
        x[a:end] += click[: end - a]
    return x


def hum(seconds: float, sr: int, rng: np.random.Generator) -> np.ndarray:
    """Mains hum (50 or 60 Hz and harmonics) under faint hiss, like an idle recording."""
    t = _time(seconds, sr)
    f = rng.choice([50.0, 60.0])
    x = sum(rng.uniform(0.1, 1.0) / k * np.sin(2 * np.pi * f * k * t) for k in range(1, 6))
    return x + rng.uniform(0.01, 0.1) * rng.standard_normal(len(t))


#: Drum patterns over 8 eighth notes: (kick, snare, hi-hat) steps; one is drawn per band.
_GROOVES = (
    ((0, 4), (2, 6), range(8)),  # backbeat rock/pop
    ((0, 2, 4, 6), (2, 6), (1, 3, 5, 7)),  # four on the floor
    ((0, 3, 5), (2, 6), range(0, 8, 2)),  # syncopated
    ((0,), (4,), range(0, 8, 2)),  # half time
    ((), (), ()),  # no drums: a ballad or ambient piece
)
_PROGRESSIONS = ((0, 7, 9, 5), (0, 5, 7, 0), (9, 5, 0, 7), (0, 3, 5, 7), (0, 0, 5, 7), (2, 7, 0, 0))
_SCALES = ((0, 2, 4, 5, 7, 9, 11), (0, 2, 3, 5, 7, 8, 10), (0, 3, 5, 7, 10), (0, 2, 4, 7, 9))


def band(seconds: float, sr: int, rng: np.random.Generator) -> np.ndarray:
    """Synthesised music: drums, a bass line, chords and a melody over a chord progression.

    Tempo, key, scale, groove, timbres (sine to buzzy), distortion and room are drawn from
    ``rng``, from electronic to band-like; a clip is music by structure, not by timbre.
    """
    n = int(round(seconds * sr))
    t = np.arange(n) / sr
    x = np.zeros(n)
    root = rng.uniform(55.0, 110.0)
    beat = 60.0 / rng.uniform(70.0, 160.0)
    scale = np.array(_SCALES[int(rng.integers(len(_SCALES)))])
    progression = _PROGRESSIONS[int(rng.integers(len(_PROGRESSIONS)))]
    kicks, snares, hats = _GROOVES[int(rng.integers(len(_GROOVES)))]

    def voice(brightness: float) -> np.ndarray:
        k = np.arange(1, 9)
        return k ** -brightness * (rng.random(8) < 0.8)

    bass_voice, pad_voice, lead_voice = voice(rng.uniform(1.0, 2.5)), voice(rng.uniform(1.2, 3.0)), voice(rng.uniform(0.8, 2.0))

    def note(start: float, length: float, freq: float, amp: float, partials: np.ndarray, decay: float,
             attack: float = 0.005) -> None:
        i0, i1 = int(start * sr), min(n, int((start + length) * sr))
        if i0 >= i1:
            return
        tt = t[i0:i1] - start
        env = np.minimum(1.0, tt / attack) * np.exp(-decay * tt)
        vib = 1.0 + 0.003 * np.sin(2 * np.pi * 5.5 * tt) * (rng.random() < 0.5)
        phase = 2 * np.pi * freq * np.cumsum(vib) / sr
        x[i0:i1] += amp * env * sum(a * np.sin(k * phase) for k, a in enumerate(partials, 1) if a)

    def drum(start: float, kind: str) -> None:
        i0 = int(start * sr)
        m = min(n - i0, int(0.3 * sr))
        if m <= 0:
            return
        tt = np.arange(m) / sr
        if kind == "kick":
            hit = np.sin(2 * np.pi * (45 + 90 * np.exp(-tt * 35)) * tt) * np.exp(-tt * 14)
        elif kind == "snare":
            hit = 0.5 * rng.standard_normal(m) * np.exp(-tt * 22) + 0.4 * np.sin(2 * np.pi * 185 * tt) * np.exp(-tt * 28)
        else:
            noise = rng.standard_normal(m)
            hit = 0.35 * (noise - np.convolve(noise, np.ones(3) / 3, mode="same")) * np.exp(-tt * 80)
        x[i0:i0 + m] += hit

    eighth = beat / 2
    for b in range(int(np.ceil(seconds / (8 * eighth)))):
        start = b * 8 * eighth
        degree = progression[b % len(progression)]
        for s in (0, 4, 7) if degree not in (2, 9) else (0, 3, 7):  # the chord, held over the bar
            note(start, 8 * eighth, root * 4 * 2 ** ((degree + s) / 12), 0.08, pad_voice, rng.uniform(0.3, 1.5), 0.04)
        for k in range(8):
            step = start + k * eighth
            if k % 2 == 0 or rng.random() < 0.3:
                note(step, eighth, root * 2 ** (degree / 12) * (2 if rng.random() < 0.2 else 1), 0.3, bass_voice, 6.0)
            if rng.random() < 0.75:
                note(step, eighth * rng.choice([1, 1, 2]), root * 8 * 2 ** ((degree + rng.choice(scale)) / 12) / 2,
                     0.13, lead_voice, rng.uniform(2.0, 8.0))
            if k in kicks:
                drum(step, "kick")
            if k in snares:
                drum(step, "snare")
            if k in hats:
                drum(step, "hat")
    if rng.random() < 0.3:  # overdriven, like a guitar band
        x = np.tanh(x * rng.uniform(2.0, 6.0))
    if rng.random() < 0.6:  # a room: a short noise-tail reverb
        tail = int(sr * rng.uniform(0.2, 0.8))
        ir = rng.standard_normal(tail) * np.exp(-np.arange(tail) / (tail / 5))
        wet = np.convolve(x, ir)[:n]
        x = x + rng.uniform(0.1, 0.4) * wet / max(1e-9, np.abs(wet).max()) * np.abs(x).max()
    return x


#: kind -> (what it sounds like, generator). Speech is separate: it needs espeak-ng.
GENERATORS: dict[str, tuple[str, Callable[[float, int, np.random.Generator], np.ndarray]]] = {
    "tone": ("tone", tone), "chord": ("tone", chord), "sweep": ("tone", sweep), "phone": ("tone", phone),
    "noise": ("noise", noise), "clicks": ("noise", clicks), "hum": ("noise", hum),
}

#: Sentences for the speech synthesiser, by espeak-ng language code (written for this project).
SENTENCES: dict[str, tuple[str, ...]] = {
    "en": ("Welcome back to the show, today we talk about gardening in small city flats.",
           "Please leave a message after the tone and I will call you back as soon as I can.",
           "The meeting has been moved to Thursday afternoon because the room was booked."),
    "en-us": ("So I told him the train was late again, and honestly nobody was surprised.",
              "In this episode we look at how bridges are inspected before the winter."),
    "de": ("Heute sprechen wir über das Wetter und die Pläne für das lange Wochenende.",
           "Bitte denk daran, morgen früh die Fenster zu schließen, bevor du gehst."),
    "fr": ("Bonjour à tous, nous allons parler aujourd'hui de la cuisine de saison.",
           "Le rendez-vous est confirmé pour mardi à dix heures, merci de votre patience."),
    "es": ("Buenas tardes, en el programa de hoy hablamos de viajes en tren por el norte.",
           "Te llamo luego porque ahora estoy en una reunión que no termina nunca."),
    "it": ("Oggi parliamo di come si prepara il pane in casa senza troppa fatica.",
           "Ricordati di comprare il latte e le mele quando torni dal lavoro."),
    "pt": ("Olá a todos, hoje vamos falar sobre livros que lemos durante as férias.",
           "A reunião foi adiada para a próxima semana por causa da chuva."),
    "nl": ("Vandaag praten we over fietsen in de stad en de nieuwe regels daarvoor.",
           "Kun je morgen even bellen als je de sleutels hebt gevonden?"),
    "pl": ("Dzień dobry, dzisiaj rozmawiamy o tym, jak oszczędzać energię w domu.",
           "Zadzwonię do ciebie wieczorem, kiedy skończę pracę."),
    "sv": ("Idag pratar vi om hur man odlar tomater på balkongen under sommaren.",
           "Glöm inte att ta med paraplyet, det ska regna hela eftermiddagen."),
    "fi": ("Tänään puhumme siitä, miten kotona voi säästää sähköä talvella.",
           "Soitan sinulle illalla, kun olen päässyt kotiin töistä."),
    "tr": ("Bugün şehirde bisiklet kullanmanın kolay yollarını konuşacağız.",
           "Akşam seni arayacağım, şimdi toplantıdayım ve konuşamıyorum."),
}
#: Speech voices (espeak-ng variants) and languages of each part of a set.
SPEECH_PARTS = {
    "train": (("en", "de", "fr", "es", "en-us"), ("m1", "m3", "f1", "f2", "klatt", "")),
    "heldout": (("it", "pt", "nl", "pl", "sv", "fi", "tr"), ("m2", "m4", "f3", "f4", "klatt2", "croak")),
}


def espeak_available() -> bool:
    """True when the espeak-ng program is installed."""
    return shutil.which("espeak-ng") is not None


def speech(seconds: float, sr: int, rng: np.random.Generator, *, languages: tuple[str, ...] = ("en",),
           voices: tuple[str, ...] = ("",)) -> np.ndarray:
    """Synthesised speech (espeak-ng) of about ``seconds``: sentences with pauses, one voice.

    Raises :class:`GenreModelError` if espeak-ng is not installed.
    """
    if not espeak_available():
        raise GenreModelError("espeak-ng is not installed (Debian/Ubuntu: apt-get install espeak-ng); "
                              "it synthesises the speech the not-music detector learns from")
    from genre_model.audio import load_audio

    language = str(rng.choice(languages))
    voice = str(rng.choice(voices))
    lines = SENTENCES[language]
    text = " ... ".join(rng.choice(lines, size=max(1, int(seconds // 4)), replace=True))
    args = ["espeak-ng", "-v", f"{language}+{voice}" if voice else language, "-s", str(int(rng.integers(130, 200))),
            "-p", str(int(rng.integers(20, 80))), "-g", str(int(rng.integers(2, 12)))]
    with tempfile.TemporaryDirectory(prefix="genre_model-speech-") as tmp:
        out = Path(tmp) / "speech.wav"
        subprocess.run([*args, "-w", str(out), text], check=True, capture_output=True, timeout=60)
        x = load_audio(out, sr).astype(np.float64)
    reps = int(np.ceil(seconds * sr / max(1, len(x))))
    return np.tile(x, reps)[: int(round(seconds * sr))]


@dataclasses.dataclass(frozen=True)
class Clip:
    """One generated clip."""

    kind: str  # the generator ("tone", "chord", ..., "speech", "band")
    sound: str  # what it sounds like: "music" or one of SOUND_KINDS
    samples: np.ndarray  # mono float32 in [-1, 1]


def finish(x: np.ndarray, sr: int, rng: np.random.Generator) -> np.ndarray:
    """Level, optional faint background hiss, fades: a generated signal as a recording would be."""
    x = np.asarray(x, dtype=np.float64)
    x = x / max(1e-9, float(np.max(np.abs(x))))
    if rng.random() < 0.5:
        x = x + 10 ** (rng.uniform(-50, -25) / 20) * rng.standard_normal(len(x))
    x = _fade(x, sr) * 10 ** (rng.uniform(-20, -1) / 20)
    return np.clip(x, -1.0, 1.0).astype(np.float32)


def detector_set(n_per_kind: int, sr: int, *, part: str = "train", seed: int = 0,
                 seconds: tuple[float, float] = (6.0, 30.0), with_speech: bool = True) -> list[Clip]:
    """``n_per_kind`` clips of every not-music kind, twice as many of speech (the commonest
    upload) and of synthesised bands (music).

    ``part`` is ``"train"`` or ``"heldout"``: the two use other seeds, and speech other
    languages and voices, so the held-out part is sounds the detector never heard.
    """
    if part not in SPEECH_PARTS:
        raise ValueError(f"part must be one of {sorted(SPEECH_PARTS)}")
    rng = np.random.default_rng([seed, list(SPEECH_PARTS).index(part)])
    clips = []
    for kind, (sound, make) in GENERATORS.items():
        for _ in range(n_per_kind):
            clips.append(Clip(kind, sound, finish(make(rng.uniform(*seconds), sr, rng), sr, rng)))
    for _ in range(2 * n_per_kind):
        clips.append(Clip("band", "music", finish(band(rng.uniform(*seconds), sr, rng), sr, rng)))
    if with_speech:
        languages, voices = SPEECH_PARTS[part]
        for _ in range(2 * n_per_kind):
            x = speech(rng.uniform(*seconds), sr, rng, languages=languages, voices=voices)
            if rng.random() < 0.3:  # a room: faint noise under the voice
                x = x + noise(len(x) / sr, sr, rng) * 10 ** (rng.uniform(-35, -20) / 20) / 3
            clips.append(Clip("speech", "speech", finish(x, sr, rng)))
    return clips
