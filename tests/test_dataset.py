"""genre_model.dataset: scanning data, near-duplicate groups, and leak-free splits."""

from __future__ import annotations

import csv
import hashlib
import shutil
import dataclasses
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from conftest import TINY_FEATURES, synth_music
from genre_model.audio import load_audio
from genre_model.dataset import (
    Track, group_folds, has_artists, load_dataset, merge_near_duplicates, regroup, split_tracks, summarise, track_id,
)
from genre_model.errors import DatasetError
from genre_model.features import extract_windows, save_windows

GENRES4 = ("blues", "jazz", "metal", "pop")
SR = 22050


def _write(path: Path, samples: np.ndarray) -> Path:
    import soundfile as sf

    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), samples, SR, subtype="PCM_16")
    return path


def _gtzan_like(root: Path, per_genre: int = 10, seconds: float = 2.0) -> Path:
    """``root/<genre>/<genre>.000NN.wav``, every file different, plus two kinds of duplicates:

    * the known GTZAN near-duplicates ``pop.00056`` / ``pop.00059`` (different audio), and
    * ``jazz.00003.wav`` copied byte-for-byte to ``jazz.00090.wav``.
    """
    for g, genre in enumerate(GENRES4):
        for i in range(per_genre):
            number = 56 if (genre == "pop" and i == 0) else 59 if (genre == "pop" and i == 1) else i
            _write(root / genre / f"{genre}.{number:05d}.wav", synth_music(seconds, SR, seed=100 * g + i))
    shutil.copyfile(root / "jazz" / "jazz.00003.wav", root / "jazz" / "jazz.00090.wav")
    return root


@pytest.fixture(scope="module")
def gtzan(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _gtzan_like(tmp_path_factory.mktemp("gtzan"))


def test_track_id_plain_names() -> None:
    assert track_id(Path("song.mp3")) == "song"
    assert track_id(Path("dir/pred-12.npz")) == "pred-12"


def test_track_id_keeps_dotted_names() -> None:
    """Regression: GTZAN names must keep their number, or a whole genre becomes one group."""
    assert track_id(Path("blues.00042.wav")) == "blues.00042"
    assert track_id(Path("data/pop.00056.ogg")) == "pop.00056"


def test_folder_layout_scan(tmp_path: Path, make_tone) -> None:
    make_tone(1.0, "wav", name="a.wav", directory=tmp_path / "blues", seed=1)
    make_tone(1.0, "mp3", name="b.mp3", directory=tmp_path / "blues" / "live", seed=2)  # nested
    make_tone(1.0, "ogg", name="c.ogg", directory=tmp_path / "rock", seed=3)
    save_windows(tmp_path / "rock" / "d.npz", np.zeros((1, *TINY_FEATURES.input_shape), np.float32), TINY_FEATURES)
    (tmp_path / "rock" / "notes.txt").write_text("ignored")
    (tmp_path / "rock" / "cover.jpg").write_bytes(b"\xff\xd8")
    make_tone(1.0, "wav", name="x.wav", directory=tmp_path / ".hidden", seed=4)
    make_tone(1.0, "wav", name="loose.wav", directory=tmp_path, seed=5)  # not in a genre folder

    tracks = load_dataset(tmp_path)
    found = {(t.label, t.path.name) for t in tracks}
    assert found == {("blues", "a.wav"), ("blues", "b.mp3"), ("rock", "c.ogg"), ("rock", "d.npz")}
    assert summarise(tracks) == {"blues": 2, "rock": 2}
    assert [t.is_windows for t in tracks if t.label == "rock"].count(True) == 1
    assert len({t.group for t in tracks}) == 4  # four different songs
    assert all(t.path.is_file() for t in tracks)


def test_unknown_genre_and_empty_folder(tmp_path: Path, make_tone) -> None:
    make_tone(1.0, "wav", name="a.wav", directory=tmp_path / "polka", seed=1)
    with pytest.raises(DatasetError, match="polka"):
        load_dataset(tmp_path, labels=GENRES4)
    empty = tmp_path / "empty"
    (empty / "blues").mkdir(parents=True)
    with pytest.raises(DatasetError, match="no audio"):
        load_dataset(empty)
    with pytest.raises(DatasetError):
        load_dataset(tmp_path / "missing")


def test_manifest_with_group_column(tmp_path: Path) -> None:
    for i in range(4):
        _write(tmp_path / "audio" / f"s{i}.wav", synth_music(1.0, SR, seed=i))
    manifest = tmp_path / "MANIFEST.csv"
    with manifest.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["path", "genre", "group"])
        w.writerow(["audio/s0.wav", "blues", "session-A"])
        w.writerow(["audio/s1.wav", "blues", "session-A"])
        w.writerow(["audio/s2.wav", "blues", ""])  # empty group -> its own
        w.writerow(["audio/s3.wav", "jazz", ""])
    tracks = load_dataset(manifest, labels=GENRES4)
    group = {t.path.name: t.group for t in tracks}
    assert group["s0.wav"] == group["s1.wav"] == "session-A"
    assert len({group["s0.wav"], group["s2.wav"], group["s3.wav"]}) == 3
    assert {t.path.name: t.label for t in tracks}["s3.wav"] == "jazz"


def test_manifest_errors(tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("name,label\nx.wav,blues\n")
    with pytest.raises(DatasetError, match="columns"):
        load_dataset(bad)
    missing = tmp_path / "missing.csv"
    missing.write_text("path,genre\nnope.wav,blues\n")
    with pytest.raises(DatasetError, match="nope.wav"):
        load_dataset(missing)


def test_folder_with_manifest_is_read_through_it(tmp_path: Path) -> None:
    """A folder holding MANIFEST.csv (the bot's correction export) honours its group column."""
    for i in range(2):
        _write(tmp_path / "blues" / f"s{i}.wav", synth_music(1.0, SR, seed=i))
    (tmp_path / "MANIFEST.csv").write_text("path,genre,group\nblues/s0.wav,blues,g1\nblues/s1.wav,blues,g1\n")
    tracks = load_dataset(tmp_path)
    assert {t.group for t in tracks} == {"g1"}


def test_byte_identical_files_share_a_group(tmp_path: Path) -> None:
    a = _write(tmp_path / "rock" / "original.wav", synth_music(1.0, SR, seed=1))
    shutil.copyfile(a, tmp_path / "rock" / "reupload.wav")
    _write(tmp_path / "rock" / "other.wav", synth_music(1.0, SR, seed=2))
    group = {t.path.name: t.group for t in load_dataset(tmp_path)}
    assert group["original.wav"] == group["reupload.wav"]
    assert group["other.wav"] != group["original.wav"]


def test_gtzan_names_near_duplicates_and_distinct_groups(gtzan: Path) -> None:
    tracks = load_dataset(gtzan)
    group = {t.path.name: t.group for t in tracks}
    assert group["pop.00056.wav"] == group["pop.00059.wav"]  # known near-duplicates
    assert group["jazz.00003.wav"] == group["jazz.00090.wav"]  # byte-identical
    assert group["pop.00002.wav"] != group["pop.00003.wav"]  # ordinary tracks are their own group
    assert len(set(group.values())) == len(tracks) - 2


def test_merge_near_duplicates_across_sources(tmp_path: Path) -> None:
    """The same known pair arriving from two folders still ends up in one group."""
    a = _write(tmp_path / "one" / "x.wav", synth_music(1.0, SR, seed=1))
    b = _write(tmp_path / "two" / "y.wav", synth_music(1.0, SR, seed=2))
    shutil.copyfile(a, tmp_path / "two" / "x-copy.wav")
    tracks = [Track(a, "rock", "one/x"), Track(b, "rock", "two/y"), Track(tmp_path / "two" / "x-copy.wav", "rock", "two/xc")]
    merged = {t.path.name: t.group for t in merge_near_duplicates(tracks)}
    assert merged["x.wav"] == merged["x-copy.wav"] != merged["y.wav"]


def test_same_recording_with_two_genres_stays_one_group_that_folds_accept(tmp_path: Path) -> None:
    """Two members may correct two uploads of one song differently: one group, never split, no error."""
    a = _write(tmp_path / "a.wav", synth_music(1.0, SR, seed=1))
    shutil.copyfile(a, tmp_path / "b.wav")
    c = _write(tmp_path / "c.wav", synth_music(1.0, SR, seed=2))
    tracks = merge_near_duplicates([Track(a, "rock", "ga"), Track(tmp_path / "b.wav", "jazz", "gb"), Track(c, "jazz", "gc")])
    assert tracks[0].group == tracks[1].group != tracks[2].group
    folds = group_folds(tracks, 2, seed=0)
    assert sorted(len(f) for f in folds) == [1, 1]


def _artist_manifest(root: Path) -> Path:
    """24 files in 4 genres by 9 artists: one artist with 8 files, one playing two genres, four unknown."""
    plan = [("blues", "Big Joe")] * 8 + [("blues", "Ann"), ("blues", "")] + [("jazz", "Two-Genre Tom")] * 2 \
        + [("metal", "Two-Genre Tom")] * 2 + [("jazz", "Cy"), ("jazz", ""), ("metal", "Dee"), ("metal", "")] \
        + [("pop", "Eve"), ("pop", "Eve"), ("pop", "Fay"), ("pop", ""), ("pop", "Gus"), ("blues", "Hal")]
    rows = []
    for i, (genre, artist) in enumerate(plan):
        _write(root / genre / f"{genre}-{i:02d}.wav", synth_music(1.0, SR, seed=500 + i))
        rows.append([f"{genre}/{genre}-{i:02d}.wav", genre, artist, "train" if i % 3 else "valid"])
    manifest = root / "MANIFEST.csv"
    with manifest.open("w", newline="") as f:
        csv.writer(f).writerows([["file", "genre", "artist", "ff_split"], *rows])
    return manifest


def test_manifest_artist_and_split_columns(tmp_path: Path) -> None:
    tracks = load_dataset(_artist_manifest(tmp_path))
    assert len(tracks) == 24
    assert Counter(t.artist for t in tracks)["Big Joe"] == 8
    assert sum(1 for t in tracks if not t.artist) == 4
    assert {t.split for t in tracks} == {"train", "valid"}
    assert has_artists(tracks) and not has_artists([dataclasses.replace(t, artist="") for t in tracks])


@pytest.mark.parametrize("seed", range(8))
def test_artist_grouped_folds_never_put_an_artist_on_both_sides(tmp_path_factory, seed: int) -> None:
    tracks = regroup(load_dataset(_artist_manifest(tmp_path_factory.mktemp("artists"))), "artist")
    folds = group_folds(tracks, 3, seed=seed)
    assert sorted(g for fold in folds for g in fold) == sorted({t.group for t in tracks})
    for held in folds:
        test = [t for t in tracks if t.group in set(held)]
        rest = [t for t in tracks if t.group not in set(held)]
        named = lambda ts: {t.artist for t in ts if t.artist}  # noqa: E731
        assert named(test).isdisjoint(named(rest)), "an artist is on both sides"
        _assert_no_leak(rest, test, tracks)
    # Unknown artists are each their own group; the two-genre artist is one group.
    assert len({t.group for t in tracks if not t.artist}) == 4
    assert len({t.group for t in tracks if t.artist == "Two-Genre Tom"}) == 1


def test_track_grouping_lets_an_artist_span_folds(tmp_path: Path) -> None:
    """The control: grouped only by track, the 8-file artist is spread over several folds."""
    tracks = regroup(load_dataset(_artist_manifest(tmp_path)), "track")
    folds = group_folds(tracks, 3, seed=0)
    big = {t.group for t in tracks if t.artist == "Big Joe"}
    assert sum(1 for fold in folds if big & set(fold)) > 1
    with pytest.raises(ValueError, match="grouping"):
        regroup(tracks, "album")


def test_folds_balance_genres_when_groups_are_uneven(tmp_path: Path) -> None:
    tracks = regroup(load_dataset(_artist_manifest(tmp_path)), "artist")
    folds = group_folds(tracks, 3, seed=1)
    for held in folds:  # every fold scores pop and metal (several artists each), whatever lands where
        assert {"pop", "metal"} <= {t.label for t in tracks if t.group in set(held)}


def test_split_argument_checks(gtzan: Path) -> None:
    tracks = load_dataset(gtzan)
    with pytest.raises(ValueError):
        split_tracks(tracks, 0.0, seed=0)
    with pytest.raises(ValueError):
        split_tracks(tracks, 1.0, seed=0)
    with pytest.raises(ValueError):
        group_folds(tracks, 1, seed=0)


def _synthetic_tracks(root: Path) -> list[Track]:
    """~40 tracks in 4 genres with one group per song (names without dots, so the test does not
    depend on ``track_id``) plus a byte-identical copy and a two-file manual group."""
    tracks = []
    for g, genre in enumerate(GENRES4):
        for i in range(10):
            path = _write(root / genre / f"{genre}-{i:02d}.wav", synth_music(1.6, SR, seed=1000 + 10 * g + i))
            tracks.append(Track(path, genre, f"{genre}/{genre}-{i:02d}"))
    copy = root / "metal" / "metal-03-copy.wav"
    shutil.copyfile(root / "metal" / "metal-03.wav", copy)
    tracks.append(Track(copy, "metal", "metal/metal-03-copy"))
    return merge_near_duplicates(tracks)


@pytest.fixture(scope="module")
def synthetic_tracks(tmp_path_factory: pytest.TempPathFactory) -> list[Track]:
    return _synthetic_tracks(tmp_path_factory.mktemp("leak"))


def _assert_no_leak(train: list[Track], val: list[Track], all_tracks: list[Track]) -> None:
    assert train and val
    assert {t.group for t in train}.isdisjoint({t.group for t in val})
    assert {t.path for t in train}.isdisjoint({t.path for t in val})
    assert len(train) + len(val) == len(all_tracks)
    assert {t.path for t in train} | {t.path for t in val} == {t.path for t in all_tracks}
    digests = lambda ts: {hashlib.sha256(t.path.read_bytes()).hexdigest() for t in ts}  # noqa: E731
    assert digests(train).isdisjoint(digests(val))  # the byte-identical copy stayed on one side


@pytest.mark.parametrize("seed", [0, 1, 7, 42, 1234])
def test_split_tracks_never_leaks(synthetic_tracks: list[Track], seed: int) -> None:
    tracks = synthetic_tracks
    copy_group = {t.group for t in tracks if t.path.name.startswith("metal-03")}
    assert len(copy_group) == 1  # the copy was merged with its original
    train, val = split_tracks(tracks, 0.2, seed=seed)
    _assert_no_leak(train, val, tracks)
    assert set(summarise(val)) == set(GENRES4)  # every genre is validated
    assert set(summarise(train)) == set(GENRES4)
    n_val_groups = len({t.group for t in val})
    n_groups = len({t.group for t in tracks})
    assert 0.15 * n_groups <= n_val_groups <= 0.3 * n_groups


@pytest.mark.parametrize("seed", [0, 3, 99])
def test_group_folds_partition_groups(synthetic_tracks: list[Track], seed: int) -> None:
    tracks = synthetic_tracks
    folds = group_folds(tracks, 5, seed=seed)
    assert len(folds) == 5
    flat = [g for fold in folds for g in fold]
    assert len(flat) == len(set(flat)) == len({t.group for t in tracks})  # each group in exactly one fold
    for k, held in enumerate(folds):
        held = set(held)
        test = [t for t in tracks if t.group in held]
        rest = [t for t in tracks if t.group not in held]
        _assert_no_leak(rest, test, tracks)
        assert set(summarise(test)) == set(GENRES4), f"fold {k} misses a genre"
    # Stratified: per fold, each genre has 2 (+-1) groups.
    for fold in folds:
        counts = Counter(g.split("/")[0] for g in fold)
        assert all(1 <= counts[genre] <= 3 for genre in GENRES4)


def test_split_is_deterministic_for_a_seed(synthetic_tracks: list[Track]) -> None:
    a = split_tracks(synthetic_tracks, 0.2, seed=5)
    b = split_tracks(synthetic_tracks, 0.2, seed=5)
    assert [t.path for t in a[1]] == [t.path for t in b[1]]
    assert group_folds(synthetic_tracks, 4, seed=5) == group_folds(list(synthetic_tracks), 4, seed=5)
    others = {tuple(sorted(str(t.path) for t in split_tracks(synthetic_tracks, 0.2, seed=s)[1])) for s in range(6)}
    assert len(others) > 1  # the seed matters


def test_windows_never_cross_the_split(synthetic_tracks: list[Track]) -> None:
    """Cut windows per side: no window's source track, and no identical window, is on both sides."""
    train, val = split_tracks(synthetic_tracks, 0.25, seed=11)

    def windows_of(tracks: list[Track]) -> tuple[np.ndarray, list[str]]:
        blocks, sources = [], []
        for t in tracks:
            w, _ = extract_windows(load_audio(t.path, TINY_FEATURES.sample_rate), TINY_FEATURES)
            blocks.append(w)
            sources += [str(t.path)] * len(w)
        return np.concatenate(blocks), sources

    w_train, src_train = windows_of(train)
    w_val, src_val = windows_of(val)
    assert len(w_train) > len(w_val) > 0
    assert set(src_train).isdisjoint(src_val)
    hashes = lambda w: {hashlib.sha1(x.tobytes()).hexdigest() for x in w}  # noqa: E731
    assert hashes(w_train).isdisjoint(hashes(w_val))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_gtzan_named_split_validates_every_genre(gtzan: Path, seed: int) -> None:
    """The same leakage test on GTZAN-style names as load_dataset reads them."""
    tracks = load_dataset(gtzan)
    train, val = split_tracks(tracks, 0.2, seed=seed)
    _assert_no_leak(train, val, tracks)
    assert set(summarise(val)) == set(GENRES4)


def test_write_manifest_is_read_back_by_load_dataset(tmp_path: Path) -> None:
    """The one manifest writer: what it writes, load_dataset reads (relative and absolute paths)."""
    from genre_model.dataset import MANIFEST_COLUMNS, MANIFEST_NAME, ManifestRow, write_manifest

    a = _write(tmp_path / "data" / "blues" / "a.wav", synth_music(1.0, SR, seed=1))
    b = _write(tmp_path / "elsewhere" / "b, \"odd\".wav", synth_music(1.0, SR, seed=2))
    rows = [ManifestRow("blues/a.wav", "blues", "corr-3", source="corrected"),
            ManifestRow(str(b), "jazz", "", artist="Someone, Jr.", split="valid")]
    assert write_manifest(tmp_path / "data" / MANIFEST_NAME, rows) == 2
    with (tmp_path / "data" / MANIFEST_NAME).open(newline="") as f:
        assert tuple(next(csv.reader(f))) == MANIFEST_COLUMNS
    tracks = {t.path: t for t in load_dataset(tmp_path / "data", labels=GENRES4)}
    assert (tracks[a.resolve()].label, tracks[a.resolve()].group) == ("blues", "corr-3")
    jazz = tracks[b.resolve()]
    assert (jazz.label, jazz.group, jazz.artist, jazz.split) == ("jazz", "jazz/" + track_id(b), "Someone, Jr.", "valid")
    # a Track survives a round trip through ManifestRow.of
    write_manifest(tmp_path / "copy.csv", [ManifestRow.of(t) for t in tracks.values()])
    assert sorted(load_dataset(tmp_path / "copy.csv", labels=GENRES4), key=str) == sorted(tracks.values(), key=str)
