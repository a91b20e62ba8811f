"""Write genre_model/realsounds.csv from extracted packages (the developer's first step; see README).

    python research/sounds/categorise.py X_DIR genre_model/realsounds.csv DURATIONS.tsv [MORE.tsv ...]

X_DIR holds one folder per package (``dpkg-deb -x PKG.deb X_DIR/PKG``); DURATIONS.tsv is
``package<TAB>path<TAB>seconds`` (a zip member's path is ``ARCHIVE!MEMBER``). Categories come from the path names by the RULES below, written
by hand after reading the file lists; files whose name does not say clearly what they are (e.g.
lincity's Farm*, Health*, colobot's numbered sound*.wav, freedroid's robot voices) are not listed.
Nothing is looped or cut: clips under 3 s are left out. Per package at most CAP clips of a
category (a fixed, seeded sample) keep one package from dominating.
"""
import random
import re
import subprocess
import sys
import zipfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from genre_model.realsounds import MIN_SECONDS, Clip, sha256_bytes, validate, write_manifest  # noqa: E402

M = "music"
RULES = [  # (package, regex on the path inside the package, category); first match wins
    *[(f"asterisk-core-sounds-{lang}-wav", r"/silence/", None) for lang in ("en", "fr", "es", "it", "ru")],  # silent
    ("asterisk-core-sounds-en-wav", r"usr/share/asterisk/sounds/.*\.wav$", "speech"),
    ("asterisk-core-sounds-fr-wav", r"usr/share/asterisk/sounds/.*\.wav$", "speech"),
    ("asterisk-core-sounds-es-wav", r"usr/share/asterisk/sounds/.*\.wav$", "speech"),
    ("asterisk-core-sounds-it-wav", r"usr/share/asterisk/sounds/.*\.wav$", "speech"),
    ("asterisk-core-sounds-ru-wav", r"usr/share/asterisk/sounds/.*\.wav$", "speech"),
    ("asterisk-moh-opsound-wav", r"moh/.*\.wav$", M),
    ("tuxpaint-stamps-default", r"_desc_[a-z_A-Z]+\.ogg$", "speech"),
    ("tuxpaint-stamps-default", r"stamps/animals/", "animals"),
    ("tuxpaint-stamps-default", r"vehicles/emergency/", "alarms"),
    ("tuxpaint-stamps-default", r"naturalforces/lightning", "nature"),
    ("lincity-ng-data", r"music/.*\.ogg$", M),
    ("lincity-ng-data", r"sounds/(SportsCroud|School|MarketFull|MarketMed|University)\d*\.wav$", "crowd"),
    ("lincity-ng-data", r"sounds/(ParklandLake|Water|Green)\d*\.wav$", "nature"),
    ("lincity-ng-data", r"sounds/Fire\d\.wav$", "nature"),
    ("lincity-ng-data", r"sounds/(Industry\w+|Rocket\w*|Trafic\w+|RailTrain|DirtTrack|OreMine|CoalMine|PowerCoal\w+|"
                        r"Mill|WindMill\w*|Recycle|Blacksmith|MonumentConstruction|ParklandPlane|Harbor)\d*\.wav$", "machines"),
    ("lugaru-data", r"Sounds/Music.*\.ogg$", M),
    ("lugaru-data", r"Sounds/(Wind|DesertAmbient|Fire)\.ogg$", "nature"),
    ("lugaru-data", r"Sounds/Alarm\.ogg$", "alarms"),
    ("warzone2100-data", r"base\.wz!(audio/tutorial|sequenceaudio|audio/proxmessages|audio/countdown)/.*\.ogg$", "speech"),
    ("warzone2100-data", r"base\.wz!audio/sfx/vehicle/.*\.ogg$", "machines"),
    ("openarena-data", r"pak0\.pk3!sound/world/(fire1|fire2|firesoft|wind1|drops)\.wav$", "nature"),
    ("openarena-data", r"pak0\.pk3!sound/world/tim_machine\.wav$", "machines"),
    ("fillets-ng-data-cs", r"music", None),
    ("fillets-ng-data-nl", r"music", None),
    ("fillets-ng-data-cs", r"sound/[^/]+/cs/[^/]+\.ogg$", "speech"),  # voice-acted dialogue (Czech)
    ("fillets-ng-data-nl", r"sound/[^/]+/nl/[^/]+\.ogg$", "speech"),  # voice-acted dialogue (Dutch)
    ("fillets-ng-data", r"fillets-ng/music/.*\.ogg$", M),  # not sound/music/: a level of that name
    ("heroes-sound-effects", r"sfx/foule\d*\.wav$", "crowd"),
    ("hedgewars-data", r"Data/Music/.*\.ogg$", M),
    ("hedgewars-data", r"voices/.*/Laugh\.ogg$", "human"),
    ("hedgewars-data", r"voices/.*\.ogg$", "speech"),
    ("hedgewars-data", r"Sounds/(plane|minigun|landgun)\.ogg$", "machines"),
    ("hedgewars-data", r"Sounds/(bee|beewater)\.ogg$", "animals"),
    ("frozen-bubble-data", r"snd/.*zik.*\.ogg$", M),
    ("fb-music-high", r"\.ogg$", M),
    ("colobot-common-sounds", r"music/.*\.ogg$", M),
    ("freedroidrpg-data", r"sound/music/.*\.ogg$", M),
    ("drascula-music", r"drascula/audio/track\d+\.ogg$", M),
    ("hyperrogue-music", r"/music/.*\.ogg$", M),  # not sounds/: effects
    ("asc-music", r"music/.*\.(ogg|mp3)$", M),
    ("wesnoth-1.16-music", r"music/.*\.ogg$", M),
    ("heroes-sound-tracks", r"\.(ogg|xm|mod|wav)$", M),
]
CAP = {"speech": 30, M: 15}
DEFAULT_CAP = 40


def read(root: Path, path: str) -> bytes:
    if "!" in path:
        archive, member = path.split("!", 1)
        with zipfile.ZipFile(root / archive) as z:
            return z.read(member)
    return (root / path).read_bytes()


#: Packages whose copyright file is not machine-readable: the licence read by hand from it.
LICENCE_BY_HAND = {
    "asterisk-moh-opsound-wav": "CC-BY-SA-3.0",
    "wesnoth-1.16-music": "GPL-2",
    "fillets-ng-data": "GPL-2", "fillets-ng-data-cs": "GPL-2", "fillets-ng-data-nl": "GPL-2",
}


def licence(x: Path, package: str) -> str:
    if package in LICENCE_BY_HAND:
        return LICENCE_BY_HAND[package]
    text = (x / package / "usr/share/doc" / package / "copyright").read_text(errors="replace")
    names = sorted({m.strip() for m in re.findall(r"^License:\s*(\S.*)$", text, re.M)} - {""})
    return " / ".join(names) or "see copyright"


def version(package: str) -> str:
    deb = sorted(Path("/work/cache/sounds/debs").glob(f"{package}_*.deb"))
    return subprocess.run(["dpkg-deb", "-f", str(deb[-1]), "Version"], capture_output=True, text=True).stdout.strip()


def main(x_dir: str, out: str, *durations: str) -> None:
    x = Path(x_dir)
    chosen: dict[tuple[str, str], list[tuple[str, float]]] = {}
    for line in (ln for d in durations for ln in Path(d).read_text().splitlines()):
        package, path, seconds = line.split("\t")
        if float(seconds) < MIN_SECONDS:
            continue
        for p, rx, category in RULES:
            if p == package and re.search(rx, path):
                if category is None:
                    break
                chosen.setdefault((package, category), []).append((path, float(seconds)))
                break
    clips = []
    for (package, category), files in sorted(chosen.items()):
        files.sort()
        random.Random(f"{package}|{category}").shuffle(files)
        lic, ver = licence(x, package), version(package)
        for path, seconds in files[:CAP.get(category, DEFAULT_CAP)]:
            clip = Clip("music" if category == M else "not_music", category, package, ver, path, lic,
                        round(seconds, 2), sha256_bytes(read(x / package, path)))
            validate(clip)
            clips.append(clip)
    write_manifest(Path(out), clips)
    print(f"{len(clips)} clips")


if __name__ == "__main__":
    main(*sys.argv[1:])
