"""The music pool: fetching from a .deb built here (no network), licences, split by package, compose over it."""

import csv
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
import soundfile
from conftest import ROOT, harmonic_tone

from vocal_melody.lab.corpora import music_pool
from vocal_melody.errors import MelodyError
from vocal_melody.lab.synth import compose as synth

RATE = 16000
DEP5 = """Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: tiny

Files: *
Copyright: 2026 Someone
License: GPL-2+

Files: music/theme.ogg
Copyright: 2026 Someone Else
License: CC-BY-SA-3.0
"""

needs_dpkg = pytest.mark.skipif(shutil.which("dpkg-deb") is None, reason="needs dpkg-deb")


def build_deb(folder, name="tiny-music", version="1.0-1"):
    """A real Debian package: an Ogg track, a symlink to it, a jingle, a .pk3 with an Ogg, a DEP-5 copyright."""
    root = folder / "root"
    music = root / "usr" / "share" / "games" / "tiny" / "music"
    music.mkdir(parents=True)
    soundfile.write(str(music / "theme.ogg"), harmonic_tone(220.0, 24.0, RATE), RATE, format="OGG")
    (music / "theme_link.ogg").symlink_to("theme.ogg")
    soundfile.write(str(music / "jingle.ogg"), harmonic_tone(330.0, 2.0, RATE), RATE, format="OGG")
    member = folder / "battle.ogg"
    soundfile.write(str(member), harmonic_tone(147.0, 21.0, RATE), RATE, format="OGG")
    with zipfile.ZipFile(root / "usr" / "share" / "games" / "tiny" / "music.pk3", "w") as archive:
        archive.write(member, "sound/cdtracks/battle.ogg")
    doc = root / "usr" / "share" / "doc" / name
    doc.mkdir(parents=True)
    (doc / "copyright").write_text(DEP5)
    (root / "DEBIAN").mkdir()
    (root / "DEBIAN" / "control").write_text(
        f"Package: {name}\nVersion: {version}\nArchitecture: all\nMaintainer: Test <t@example.org>\n"
        "Description: tiny music\n")
    deb = folder / f"{name}_{version}_all.deb"
    subprocess.run(["dpkg-deb", "--root-owner-group", "-b", str(root), str(deb)], check=True, capture_output=True)
    return deb


@needs_dpkg
def test_fetcher_extracts_dedupes_and_inventories_a_local_package(tmp_path):
    deb = build_deb(tmp_path)
    out = tmp_path / "music"
    rows = music_pool.fetch_music(out, local_debs=[deb], progress=False)
    by_file = {r["file"]: r for r in rows}
    assert set(by_file) == {"/usr/share/games/tiny/music/theme.ogg",
                            "/usr/share/games/tiny/music.pk3!sound/cdtracks/battle.ogg"}  # link and jingle left out
    theme = by_file["/usr/share/games/tiny/music/theme.ogg"]
    battle = by_file["/usr/share/games/tiny/music.pk3!sound/cdtracks/battle.ogg"]
    assert theme["licence"] == "CC-BY-SA-3.0" and battle["licence"] == "GPL-2+"
    assert theme["version"] == "1.0-1" and theme["package"] == "tiny-music"
    assert float(theme["minutes"]) == pytest.approx(24 / 60, abs=0.002)
    audio, rate = soundfile.read(str(out / battle["audio"]))
    assert rate == music_pool.POOL_RATE and len(audio) == pytest.approx(21 * rate, abs=rate // 50)
    spectrum = np.abs(np.fft.rfft(audio[rate:3 * rate]))
    assert np.fft.rfftfreq(2 * rate, 1 / rate)[np.argmax(spectrum)] == pytest.approx(147.0, abs=1.0)
    inventory = list(csv.DictReader(open(out / "inventory.csv")))
    assert tuple(inventory[0]) == music_pool.INVENTORY_FIELDS and len(inventory) == 2
    # idempotent: a second run extracts nothing again
    stamp = (out / theme["audio"]).stat().st_mtime_ns
    assert len(music_pool.fetch_music(out, local_debs=[deb], progress=False)) == 2
    assert (out / theme["audio"]).stat().st_mtime_ns == stamp


@needs_dpkg
def test_fetch_music_cli_and_its_errors(tmp_path):
    deb = build_deb(tmp_path)
    cli = [sys.executable, str(ROOT / "synth_testset.py"), "fetch-music", "-q", "-o", str(tmp_path / "m")]
    result = subprocess.run(cli + ["--deb", str(deb)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "m" / "inventory.csv").is_file()
    result = subprocess.run(cli + ["--packages", "vorbis-tools"], capture_output=True, text=True)
    assert result.returncode == 1 and "not one of the music packages" in result.stderr
    assert result.stderr.count("\n") == 1
    not_a_deb = tmp_path / "x.deb"
    not_a_deb.write_text("no")
    result = subprocess.run(cli + ["--deb", str(not_a_deb)], capture_output=True, text=True)
    assert result.returncode == 1 and "x.deb: not a Debian package" in result.stderr


@pytest.mark.skipif(shutil.which("apt-get") is None, reason="needs apt-get")
def test_apt_download_names_an_unknown_package_clearly(tmp_path):
    with pytest.raises(MelodyError, match="apt-get does not know a package"):
        music_pool.apt_download(["no-such-music-package-xyz"], tmp_path)


def test_licence_of_free_form_copyright_files():
    assert music_pool.licence_of("Permission is hereby granted, free of charge, to any person", "/a.ogg") == "Expat"
    assert music_pool.licence_of("licensed under the Creative Commons Attribution ShareAlike licence 3.0:",
                                 "/a.ogg") == "CC-BY-SA-3.0"
    assert music_pool.licence_of("under the terms of the GNU General Public License version 2\n or at your "
                                 "option any later version.", "/a.ogg") == "GPL-2+"


def test_every_package_is_in_one_split_and_each_held_out_split_has_two_kinds():
    splits = {}
    for name, package in music_pool.PACKAGES.items():
        assert package.split in synth.SPLITS
        splits.setdefault(package.split, set()).add(package.kind)
    assert set(splits) == set(synth.SPLITS)
    for split in ("val", "test"):
        assert len(splits[split]) >= 2 and splits[split] & {"rock", "electronic"}


def write_pool(folder, tracks, seconds=40.0):
    """A fetched-pool folder: (package, name, role, f0) tracks with inventory; a screening table."""
    rows, screening = [], {}
    for package, name, role, f0 in tracks:
        (folder / package).mkdir(parents=True, exist_ok=True)
        soundfile.write(str(folder / package / f"{name}.flac"), harmonic_tone(f0, seconds, RATE, amplitude=0.3),
                        RATE, subtype="PCM_16")
        info = music_pool.PACKAGES[package]
        rows.append({"track": f"{package}/{name}", "package": package, "version": "1", "file": f"/{name}.ogg",
                     "audio": f"{package}/{name}.flac", "minutes": seconds / 60, "licence": "GPL-2+",
                     "kind": info.kind, "split": info.split, "role": role, "sha1": name})
        screening[f"{package}/{name}"] = ("voice" if name.startswith("sung") else "instrumental", "test")
    with open(folder / "inventory.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=music_pool.INVENTORY_FIELDS)
        writer.writeheader()
        writer.writerows(rows)
    return screening


POOL_TRACKS = [("wesnoth-1.16-music", "march", "music", 110.0), ("nexuiz-music", "pads", "music", 130.0),
               ("wesnoth-1.16-music", "sung_hymn", "music", 196.0),
               ("fretsonfire-songs-muldjord", "song_guitar", "guitar", 330.0),
               ("singularity-music", "strings", "music", 165.0),
               ("fretsonfire-songs-sectoid", "x_guitar", "guitar", 440.0),
               ("hyperrogue-music", "caves", "music", 123.0), ("asc-music", "frontiers", "music", 98.0)]


def test_pool_splits_by_package_and_keeps_voices_aside(tmp_path):
    screening = write_pool(tmp_path, POOL_TRACKS)
    pool = music_pool.load_pool(tmp_path, screening)
    packages = {split: {p.parent.name for p in pool.accompaniment[split] + pool.distractors[split]
                        + pool.vocal[split]} for split in synth.SPLITS}
    assert packages["train"] == {"wesnoth-1.16-music", "nexuiz-music", "fretsonfire-songs-muldjord"}
    assert packages["val"] == {"singularity-music", "fretsonfire-songs-sectoid"}
    assert packages["test"] == {"hyperrogue-music", "asc-music"}
    assert not any(packages[a] & packages[b] for a in synth.SPLITS for b in synth.SPLITS if a < b)
    assert [p.name for p in pool.vocal["train"]] == ["sung_hymn.flac"]  # never accompaniment
    assert all("sung" not in p.name for s in synth.SPLITS for p in pool.accompaniment[s] + pool.distractors[s])
    assert [p.name for p in pool.distractors["train"]] == ["song_guitar.flac"]
    unscreened = music_pool.load_pool(tmp_path, {})
    assert unscreened.unscreened == len(POOL_TRACKS) and not unscreened.accompaniment["train"]


def _sources_with_pool(voices, pool_folder, screening, share):
    sources = synth.discover_sources([voices], [])
    sources.pool = music_pool.load_pool(pool_folder, screening)
    sources.instrumental_share = share
    return sources


@pytest.mark.heavy
def test_compose_over_the_pool_labels_only_the_voice(tmp_path):
    screening = write_pool(tmp_path / "pool_a", POOL_TRACKS)
    other = [(package, name, role, f0 * 1.5) for package, name, role, f0 in POOL_TRACKS]
    write_pool(tmp_path / "pool_b", other)  # same names, other music
    from test_synth import _voice_folder

    voices = _voice_folder(tmp_path / "voices")
    cache = synth.SourceCache(tmp_path / "cache", RATE)
    kinds = set()
    for share in (0.0, 1.0):
        a = _sources_with_pool(voices, tmp_path / "pool_a", screening, share)
        b = _sources_with_pool(voices, tmp_path / "pool_b", screening, share)
        for index in range(6):
            for split in ("train", "test"):
                mix_a, label_a, fields_a = synth.compose_item(index, split, 3, 6.0, a, cache)
                mix_b, label_b, fields_b = synth.compose_item(index, split, 3, 6.0, b, cache)
                kinds.add(fields_a["kind"])
                assert fields_a == fields_b
                np.testing.assert_array_equal(label_a, label_b)  # the music never changes the label
                if fields_a["kind"] == "instrumental":
                    assert not label_a.any() and fields_a["voices"] == ""
                    assert fields_a["accompaniment"].split("/")[0] in {
                        p for p, info in music_pool.PACKAGES.items() if info.split == split}
                else:
                    assert label_a.any()
                if "/" in fields_a["accompaniment"]:
                    assert not np.array_equal(mix_a, mix_b)
                    assert "sung_hymn" not in fields_a["accompaniment"]
                    for part in fields_a["accompaniment"].split("+"):
                        if "/" in part:
                            assert music_pool.PACKAGES[part.split("/")[0]].split == split
    assert kinds >= {"instrumental"} and kinds & {"sung", "resung"}


def test_instrumental_leads_cuts_instrumental_items_from_lead_stems_only(tmp_path):
    screening = write_pool(tmp_path / "pool", POOL_TRACKS)
    from test_synth import _voice_folder

    sources = _sources_with_pool(_voice_folder(tmp_path / "voices"), tmp_path / "pool", screening, 1.0)
    sources.instrumental_leads = True
    cache = synth.SourceCache(tmp_path / "cache", RATE)
    picked = {split: {synth.compose_item(index, split, 4, 3.0, sources, cache)[2]["accompaniment"]
                      for index in range(8)} for split in ("train", "test")}
    assert picked["train"] == {"fretsonfire-songs-muldjord/song_guitar.flac"}
    assert len(picked["test"]) == 2  # no lead stems there: all its instrumental tracks


def test_vibrato_changes_the_music_and_never_the_label(tmp_path):
    screening = write_pool(tmp_path / "pool", POOL_TRACKS)
    from test_synth import _voice_folder

    voices = _voice_folder(tmp_path / "voices")
    plain = _sources_with_pool(voices, tmp_path / "pool", screening, 0.5)
    shaken = _sources_with_pool(voices, tmp_path / "pool", screening, 0.5)
    shaken.vibrato_share = 1.0
    cache = synth.SourceCache(tmp_path / "cache", RATE)
    names = []
    for index in range(16):
        mix_a, label_a, fields_a = synth.compose_item(index, "train", 6, 4.0, plain, cache)
        mix_b, label_b, fields_b = synth.compose_item(index, "train", 6, 4.0, shaken, cache)
        np.testing.assert_array_equal(label_a, label_b)
        assert mix_b.shape == mix_a.shape and not np.array_equal(mix_a, mix_b)
        assert fields_b["voices"] == fields_a["voices"] and fields_b["kind"] == fields_a["kind"]
        base, _, effect = fields_b["accompaniment"].rpartition("+")
        assert base == fields_a["accompaniment"] and effect.startswith("vibrato")
        assert label_b.any() == (fields_b["kind"] != "instrumental")
        names.append((fields_b["kind"] == "instrumental", effect))
    assert {instrumental for instrumental, _ in names} == {True, False}
    assert {"vibrato"} < {effect for _, effect in names} and any(e.startswith("vibrato-lead-gm") for _, e in names)


def test_compose_without_a_pool_uses_no_pool_material(tmp_path):
    from test_synth import _voice_folder

    sources = synth.discover_sources([_voice_folder(tmp_path / "voices")], [])
    cache = synth.SourceCache(tmp_path / "cache", RATE)
    mix, label, fields = synth.compose_item(2, "train", 5, 5.0, sources, cache)
    again = synth.compose_item(2, "train", 5, 5.0, sources, cache)
    np.testing.assert_array_equal(mix, again[0])
    assert "/" not in fields["accompaniment"] and fields["kind"] != "instrumental"


@pytest.mark.skipif(shutil.which("apt-get") is None or subprocess.run(
    ["apt-cache", "show", "xblast-tnt-musics"], capture_output=True).returncode != 0,
    reason="needs apt-get and the archive's package lists")
def test_apt_download_says_when_the_archive_cannot_be_reached(tmp_path, monkeypatch):
    config = tmp_path / "apt.conf"  # every download through a port where nothing listens
    config.write_text('Acquire::http::Proxy "http://127.0.0.1:9";\nAcquire::https::Proxy "http://127.0.0.1:9";\n'
                      'Acquire::Retries "0";\n')
    monkeypatch.setenv("APT_CONFIG", str(config))
    with pytest.raises(MelodyError, match="cannot reach the Debian package archive"):
        music_pool.apt_download(["xblast-tnt-musics"], tmp_path)


def test_original_mixes_use_only_training_voices_and_music_at_the_stated_ratio(tmp_path):
    """Unlabeled real singing over real music: training voices over training packages, deterministic, resumable."""
    from test_synth import _voice_folder

    from vocal_melody.audio import load_audio
    from vocal_melody.lab.synth import originals

    screening = write_pool(tmp_path / "pool", POOL_TRACKS)
    voices = _voice_folder(tmp_path / "voices")
    sources = synth.discover_sources([voices], [])
    pool = music_pool.load_pool(tmp_path / "pool", screening)
    rows = originals.original_mixes(sources, pool, tmp_path / "a", seed=4, mixes_per_voice=2, sample_rate=RATE,
                                    progress=False)
    train_voices = {str(v.path) for v in sources.voices["train"]}
    assert len(rows) == 2 * len(train_voices) and {r["voice"] for r in rows} == train_voices
    assert {Path(r["accompaniment"]).parent.name for r in rows} <= {"wesnoth-1.16-music", "nexuiz-music"}
    assert not any("sung" in r["accompaniment"] or "guitar" in r["accompaniment"] for r in rows)
    for row in rows:
        mix = soundfile.read(str(tmp_path / "a" / row["audio"]), dtype="float32")[0]
        vocal = load_audio(row["voice"], RATE)[:len(mix)]
        scale = float(mix @ vocal / (vocal @ vocal))  # the mix is scale x (vocal + gain x music)
        music = mix - scale * vocal
        active = originals.singing_frames(vocal, RATE)
        ratio = 10 * np.log10(np.mean((scale * vocal[active]) ** 2) / np.mean(music ** 2))
        assert ratio == pytest.approx(row["ratio_db"], abs=0.3)
        assert originals.RATIO_DB[0] <= row["ratio_db"] <= originals.RATIO_DB[1]
    first = tmp_path / "a" / rows[0]["audio"]
    stamp = first.stat().st_mtime_ns
    again = originals.original_mixes(sources, pool, tmp_path / "a", seed=4, mixes_per_voice=2, sample_rate=RATE,
                                     progress=False)
    assert again == rows and first.stat().st_mtime_ns == stamp  # kept, not rewritten
    with pytest.raises(MelodyError, match="holds mixes made with other settings"):
        originals.original_mixes(sources, pool, tmp_path / "a", seed=5, mixes_per_voice=2, sample_rate=RATE,
                                 progress=False)
    assert first.stat().st_mtime_ns == stamp
    assert originals.original_mixes(sources, pool, tmp_path / "c", seed=4, mixes_per_voice=2, sample_rate=RATE,
                                    progress=False) == rows
    np.testing.assert_array_equal(soundfile.read(str(first))[0], soundfile.read(str(tmp_path / "c" / first.name))[0])


def test_original_mixes_with_a_vibrato_change_the_music_and_never_the_label(tmp_path):
    """--vibrato-share on originals: the same voices, music excerpts, ratios and labels, the music shaken and marked;
    a rerun keeps the mixes, and a folder made with another vibrato setting is refused."""
    from test_synth import _voice_folder

    from vocal_melody.lab.synth import originals
    from vocal_melody.lab.synth.compose import SourceCache

    screening = write_pool(tmp_path / "pool", POOL_TRACKS)
    voices = _voice_folder(tmp_path / "voices")
    pool = music_pool.load_pool(tmp_path / "pool", screening)
    cache = SourceCache(tmp_path / "cache", RATE)
    plain_sources, shaken_sources = synth.discover_sources([voices], []), synth.discover_sources([voices], [])
    shaken_sources.vibrato_share = 1.0
    plain = originals.original_mixes(plain_sources, pool, tmp_path / "plain", seed=4, mixes_per_voice=3,
                                     sample_rate=RATE, progress=False, voice_cache=cache)
    shaken = originals.original_mixes(shaken_sources, pool, tmp_path / "shaken", seed=4, mixes_per_voice=3,
                                      sample_rate=RATE, progress=False, voice_cache=cache)
    effects = set()
    for a, b in zip(plain, shaken):
        base, _, effect = b["accompaniment"].rpartition("+")
        assert base == a["accompaniment"] and effect.startswith("vibrato")
        effects.add(effect.split("-gm")[0])
        assert (a["voice"], a["ratio_db"], a["id"]) == (b["voice"], b["ratio_db"], b["id"])
        assert (tmp_path / "plain" / a["label"]).read_text() == (tmp_path / "shaken" / b["label"]).read_text()
        mix_a = soundfile.read(str(tmp_path / "plain" / a["audio"]))[0]
        mix_b = soundfile.read(str(tmp_path / "shaken" / b["audio"]))[0]
        assert mix_a.shape == mix_b.shape and not np.allclose(mix_a, mix_b)
    assert effects == {"vibrato", "vibrato-lead"}
    first = tmp_path / "shaken" / shaken[0]["audio"]
    stamp = first.stat().st_mtime_ns
    assert originals.original_mixes(shaken_sources, pool, tmp_path / "shaken", seed=4, mixes_per_voice=3,
                                    sample_rate=RATE, progress=False, voice_cache=cache) == shaken
    assert first.stat().st_mtime_ns == stamp
    for sources, folder in ((plain_sources, "shaken"), (shaken_sources, "plain")):
        with pytest.raises(MelodyError, match="holds mixes made with other music settings"):
            originals.original_mixes(sources, pool, tmp_path / folder, seed=4, mixes_per_voice=3,
                                     sample_rate=RATE, progress=False, voice_cache=cache)
    assert first.stat().st_mtime_ns == stamp


def test_original_mixes_cli_errors_are_one_line(tmp_path):
    """A folder that is no pool, and a pool with no screened training music: one line each, exit 1, no output."""
    write_pool(tmp_path / "pool", POOL_TRACKS)  # its tracks are in no screening list the CLI reads
    for music, message in ((tmp_path / "nowhere", "no music inventory"),
                           (tmp_path / "pool", "no screened instrumental tracks in its train split")):
        result = subprocess.run([sys.executable, str(ROOT / "synth_testset.py"), "originals", "--music", str(music),
                                 "-o", str(tmp_path / "out")], capture_output=True, text=True)
        assert result.returncode == 1 and message in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr
        assert not (tmp_path / "out").exists()


def test_labeled_original_mixes_of_the_val_split_score_real_singing(tmp_path):
    """--split val --labels: validation voices over validation packages, each with its WORLD analysis label, in a
    manifest the trainers read (several manifests together)."""
    from test_synth import _voice_folder

    from vocal_melody.lab.cli.training_options import labeled_tracks
    from vocal_melody.lab.synth import originals
    from vocal_melody.lab.synth.compose import SourceCache

    screening = write_pool(tmp_path / "pool", POOL_TRACKS)
    voices = _voice_folder(tmp_path / "voices")
    sources = synth.discover_sources([voices], [])
    pool = music_pool.load_pool(tmp_path / "pool", screening)
    cache = SourceCache(tmp_path / "cache", RATE)
    rows = originals.original_mixes(sources, pool, tmp_path / "val", seed=4, mixes_per_voice=2, sample_rate=RATE,
                                    progress=False, split="val", voice_cache=cache)
    val_voices = {str(v.path) for v in sources.voices["val"]}
    assert {r["voice"] for r in rows} == val_voices and len(rows) == 2 * len(val_voices)
    assert {Path(r["accompaniment"]).parent.name for r in rows} <= {"singularity-music", "fretsonfire-songs-sectoid"}
    assert all(r["split"] == "val" and r["id"].startswith("original_val_") for r in rows)
    tracks = labeled_tracks(str(tmp_path / "val" / "manifest.csv"), "val", "f0")
    assert [t.name for t in tracks] == [r["id"] for r in rows]
    for track in tracks:
        voiced = track.f0 > 0
        assert 0.15 < voiced.mean() < 0.35  # each 0.8 s phrase sings its middle 0.2 s
        cents = 1200 * np.log2(track.f0[voiced] / 260.0)  # singer1 (the val voice) sings 260 Hz
        assert np.median(np.abs(cents)) < 50
        mix = soundfile.read(str(track.audio))[0]
        np.testing.assert_allclose(track.f0, originals.analysis_label(cache, Path(rows[0]["voice"]), len(mix)),
                                   atol=1e-4)  # written with 4 decimals
    train = originals.original_mixes(sources, pool, tmp_path / "train", seed=4, mixes_per_voice=1, sample_rate=RATE,
                                     progress=False, voice_cache=cache)
    both = [str(tmp_path / "train" / "manifest.csv"), str(tmp_path / "val" / "manifest.csv")]
    assert len(labeled_tracks(both, "train", "f0")) == len(train)  # the val manifest adds no training item
    assert len(labeled_tracks(both, "val", "f0")) == len(rows)
    with pytest.raises(MelodyError, match="no tracks in split 'test'"):
        labeled_tracks(both, "test", "f0")
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(MelodyError, match="empty.csv: empty manifest"):  # not silently nothing among several
        labeled_tracks([*both, str(tmp_path / "empty.csv")], "train", "f0")
