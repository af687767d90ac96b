"""Real instrumental music from Debian's game-music packages: fetch, extract, inventory, splits.

``fetch_music`` runs ``apt-get download`` of the allowed packages (or takes
local ``.deb`` files), extracts their audio (Ogg, Opus, MP3, tracker modules,
the raw PCM of xblast, and audio inside ``.pk3`` zip archives), decodes each
track once to mono 16 kHz FLAC under ``data/music/PACKAGE/`` and writes
``data/music/inventory.csv``. Whole packages belong to one split, so model
selection and tests see accompaniment that training never heard.

Every track is screened for singing by hand (``music_screening.csv`` beside
this module: decision and reason per track); only tracks screened
``instrumental`` are used as accompaniment labeled unvoiced, tracks with a
voice are kept aside as unlabeled vocal music.
"""

from __future__ import annotations

import csv
import fnmatch
import gzip
import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from vocal_melody.audio import decode_audio, to_mono_rate
from vocal_melody.errors import MelodyError
from vocal_melody.fileio import atomic_path, csv_text, ensure_output_dir, write_text_atomic

POOL_RATE = 16000
"""Sample rate of the stored tracks (the synthesized material's rate, twice the model's)."""
MIN_TRACK_SECONDS = 20.0
"""Shorter files are jingles and sound effects, not accompaniment."""
SCREENING_LIST = Path(__file__).with_name("music_screening.csv")
DECISIONS = ("instrumental", "voice", "exclude")


@dataclass(frozen=True)
class Package:
    """An allowed music package: its musical kind and the one split all its tracks belong to."""

    kind: str
    split: str


PACKAGES: dict[str, Package] = {
    "wesnoth-1.16-music": Package("orchestral", "train"),
    "planetblupi-music-ogg": Package("other", "train"),
    "drascula-music": Package("other", "train"),
    "nexuiz-music": Package("electronic", "train"),
    "fretsonfire-songs-muldjord": Package("rock", "train"),
    "xblast-tnt-musics": Package("chiptune", "train"),
    "fb-music-high": Package("chiptune", "train"),
    "singularity-music": Package("electronic", "val"),
    "fretsonfire-songs-sectoid": Package("rock", "val"),
    "hyperrogue-music": Package("orchestral", "test"),
    "asc-music": Package("electronic", "test"),
}
"""The only music packages this project takes from the archive (others are kept for an independent
check). Kinds as seen in the screening's spectrograms. Each held-out split has two kinds with sustained
melodic instruments: val electronic pads and leads (singularity) and rock guitars with lead-guitar stems
(sectoid); test a synthesized orchestra (hyperrogue) and electronic music (asc)."""

RAW_PCM = {"xblast-tnt-musics": 22050}
"""Packages whose ``.raw`` files are headerless unsigned 8-bit mono PCM, at this rate (their notes fall on
the A440 grid at 22050 or 11025 Hz, not at 16000)."""
ARCHIVE_EXTENSIONS = (".pk3", ".zip")
TRACK_EXTENSIONS = (".ogg", ".oga", ".opus", ".mp3", ".flac", ".wav", ".xm", ".mod", ".it", ".s3m", ".raw")
INVENTORY_FIELDS = ("track", "package", "version", "file", "audio", "minutes", "licence", "kind", "split",
                    "role", "sha1")


# ----------------------------------------------------------------------------- licences

def _dep5_stanzas(text: str) -> list[tuple[list[str], str]]:
    """(file patterns, licence) of each ``Files:`` stanza of a machine-readable copyright file."""
    stanzas = []
    for block in re.split(r"\n\s*\n", text):
        fields: dict[str, str] = {}
        key = None
        for line in block.splitlines():
            if line[:1] in (" ", "\t") and key:
                fields[key] += " " + line.strip()
            elif ":" in line:
                key, _, value = line.partition(":")
                key = key.strip().lower()
                fields[key] = value.strip()
        if "files" in fields and fields.get("license"):
            stanzas.append((fields["files"].split(), fields["license"].split("\n")[0].strip()))
    return stanzas


FREE_FORM_LICENCES = (
    ("Expat", ("permission is hereby granted, free of charge",)),
    ("CC-BY-SA-3.0", ("by-sa/3.0", "attribution-sharealike 3.0", "attribution sharealike licence 3.0",
                      "license elements as this license (e.g., attribution-sharealike 3.0")),
    ("CC-BY-SA-4.0", ("by-sa/4.0", "attribution-sharealike 4.0")),
    ("CC-BY-3.0", ("by/3.0", "attribution 3.0")),
    ("GPL", ("gnu general public license", "under the gpl")),
)
"""Licence texts of free-form copyright files, as (SPDX-like name, phrases that name it)."""


def licence_of(copyright_text: str, installed_path: str) -> str:
    """The licence of one installed file, read from its package's ``copyright`` file.

    Machine-readable (DEP-5) files: the last ``Files:`` stanza whose pattern
    matches the path (patterns name source paths, so they are matched as path
    suffixes). Free-form files: recognised by their licence text.
    """
    if copyright_text.lstrip().lower().startswith("format:"):
        found = None
        for patterns, licence in _dep5_stanzas(copyright_text):
            if any(fnmatch.fnmatch(installed_path, p) or fnmatch.fnmatch(installed_path, f"*/{p}")
                   for p in patterns):
                found = licence
        if found:
            return found
    lower = " ".join(copyright_text.split()).lower()
    named = []  # (position, licence): the licence named first is the one of the package's own files
    for licence, patterns in FREE_FORM_LICENCES:
        positions = [lower.find(p) for p in patterns if p in lower]
        if positions:
            named.append((min(positions), licence))
    if named:
        licence = min(named)[1]
        if licence == "GPL":
            version = ("3" if re.search(r"version 3|gpl-3", lower)
                       else "2" if re.search(r"version 2|gpl-2", lower) else "")
            later = re.search(r"or later|later version|any later", lower) is not None
            licence = f"GPL-{version}{'+' if later else ''}" if version else "GPL"
        return licence
    return "unknown (see the package's copyright file)"


# ----------------------------------------------------------------------------- fetching

def _run(command: Sequence[str], cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(list(command), cwd=cwd, capture_output=True, text=True, check=False)


def apt_download(packages: Sequence[str], folder: Path) -> list[Path]:
    """``apt-get download`` of ``packages`` into ``folder``; one clear error when it cannot."""
    if shutil.which("apt-get") is None:
        raise MelodyError("fetching the music needs apt-get (Debian or Ubuntu); or pass the .deb files with --deb")
    command = ["apt-get", "download", *packages]
    if os.geteuid() == 0:  # apt's sandbox user cannot write a root-owned temporary folder
        command[1:1] = ["-o", "APT::Sandbox::User=root"]
    result = _run(command, cwd=folder)
    if result.returncode != 0:
        message = (result.stderr or result.stdout).strip().splitlines()
        last = next((line for line in reversed(message) if line.startswith("E:")), message[-1] if message else "")
        if "Unable to locate package" in last or "has no installation candidate" in last:
            raise MelodyError(f"apt-get does not know a package ({last.removeprefix('E: ')}); "
                              "run 'apt-get update' (as root) and try again")
        raise MelodyError(f"cannot reach the Debian package archive: apt-get download failed "
                          f"({last.removeprefix('E: ') or 'exit code ' + str(result.returncode)})")
    debs = []
    for package in packages:
        found = sorted(folder.glob(f"{package}_*.deb"))
        if not found:
            raise MelodyError(f"apt-get download gave no file for {package}")
        debs.append(found[-1])
    return debs


def deb_field(deb: Path, field: str) -> str:
    """A control field (``Package``, ``Version``) of a ``.deb`` file."""
    result = _run(["dpkg-deb", "-f", str(deb), field])
    if result.returncode != 0:
        raise MelodyError(f"{deb}: not a Debian package ({result.stderr.strip() or 'dpkg-deb failed'})")
    return result.stdout.strip()


def _copyright_text(root: Path, package: str) -> str:
    for name in ("copyright", "copyright.gz"):
        path = root / "usr" / "share" / "doc" / package / name
        if path.is_file():
            data = path.read_bytes()
            return (gzip.decompress(data) if name.endswith(".gz") else data).decode("utf-8", "replace")
    return ""


@dataclass
class FoundTrack:
    """An audio file found in an extracted package (inside an archive: ``member`` is set)."""

    installed: str
    path: Path
    member: str | None = None


def find_tracks(root: Path) -> list[FoundTrack]:
    """Audio files of an extracted package, archives opened; symlinks skipped (they point at real files)."""
    found = []
    for path in sorted(root.rglob("*")):
        if path.is_symlink() or not path.is_file() or "/usr/share/doc/" in f"/{path.relative_to(root)}":
            continue
        installed = "/" + str(path.relative_to(root))
        suffix = path.suffix.lower()
        if suffix in TRACK_EXTENSIONS:
            found.append(FoundTrack(installed, path))
        elif suffix in ARCHIVE_EXTENSIONS:
            try:
                with zipfile.ZipFile(path) as archive:
                    for member in sorted(archive.namelist()):
                        if Path(member).suffix.lower() in TRACK_EXTENSIONS:
                            found.append(FoundTrack(f"{installed}!{member}", path, member))
            except zipfile.BadZipFile:
                raise MelodyError(f"{installed}: a damaged {suffix} archive") from None
    return found


def _decode(track: FoundTrack, package: str, folder: Path) -> tuple[np.ndarray, int]:
    """Mono float32 samples of one track at its own rate."""
    if track.member is not None:
        source = folder / ("member" + Path(track.member).suffix.lower())
        with zipfile.ZipFile(track.path) as archive:
            source.write_bytes(archive.read(track.member))
    else:
        source = track.path
    if source.suffix.lower() == ".raw":
        if package not in RAW_PCM:
            raise MelodyError(f"{track.installed}: raw audio of unknown format")
        rate = RAW_PCM[package]
        samples = (np.frombuffer(source.read_bytes(), dtype=np.uint8).astype(np.float32) - 128.0) / 128.0
    else:
        samples, rate = decode_audio(source)
        samples = to_mono_rate(samples, rate, rate, track.installed)
    return samples, rate


def track_name(installed: str) -> str:
    """A short file name for a track: its folder and file name (the distinguishing part), sanitised."""
    parts = re.split(r"[/!]", installed.strip("/"))
    stem = "_".join(parts[-2:])
    stem = stem.rsplit(".", 1)[0]
    return re.sub(r"[^A-Za-z0-9._-]+", "_", stem).strip("_")


def role_of(installed: str) -> str:
    """``guitar`` for a Frets on Fire lead-guitar stem, ``backing`` for its song without it, else ``music``."""
    name = Path(installed).name.lower()
    if "fretsonfire" in installed:
        return {"guitar.ogg": "guitar", "song.ogg": "backing"}.get(name, "music")
    return "music"


def extract_package(deb: Path, package: str, output_dir: Path, progress: bool = True) -> list[dict]:
    """Extract one package's tracks to ``output_dir/package/*.flac``; its inventory rows."""
    import soundfile
    import soxr
    from tqdm import tqdm

    version = deb_field(deb, "Version")
    info = PACKAGES.get(package, Package("other", "train"))
    rows = []
    with tempfile.TemporaryDirectory(prefix="music-") as temp:
        root = Path(temp) / "root"
        result = _run(["dpkg-deb", "-x", str(deb), str(root)])
        if result.returncode != 0:
            raise MelodyError(f"{deb}: cannot extract ({result.stderr.strip() or 'dpkg-deb failed'})")
        copyright_text = _copyright_text(root, package)
        tracks = find_tracks(root)
        target = ensure_output_dir(output_dir / package)
        seen: set[str] = set()
        names: set[str] = set()
        for track in tqdm(tracks, desc=package, unit="file", disable=not progress, file=sys.stderr, leave=False):
            samples, rate = _decode(track, package, Path(temp))
            digest = hashlib.sha1(samples.tobytes()).hexdigest()[:16]
            if digest in seen or len(samples) < MIN_TRACK_SECONDS * rate:
                continue  # the same music installed twice, or a jingle
            seen.add(digest)
            name = track_name(track.installed)
            if name in names:
                name = f"{name}_{digest[:6]}"
            names.add(name)
            audio = soxr.resample(samples, rate, POOL_RATE, quality="HQ") if rate != POOL_RATE else samples
            peak = float(np.max(np.abs(audio))) if len(audio) else 0.0
            if peak > 1.0:
                audio = audio / peak
            flac = target / f"{name}.flac"
            with atomic_path(flac) as temp_flac:
                soundfile.write(str(temp_flac), audio, POOL_RATE, subtype="PCM_16", format="FLAC")
            rows.append({"track": f"{package}/{name}", "package": package, "version": version,
                         "file": track.installed, "audio": f"{package}/{name}.flac",
                         "minutes": round(len(audio) / POOL_RATE / 60.0, 3),
                         "licence": licence_of(copyright_text, track.installed.split("!")[0]),
                         "kind": info.kind, "split": info.split, "role": role_of(track.installed),
                         "sha1": digest})
    if not rows:
        raise MelodyError(f"{deb}: no audio tracks of at least {MIN_TRACK_SECONDS:.0f} s in the package")
    return rows


def _write_csv(path: Path, rows: Iterable[dict], fields: Sequence[str]) -> None:
    write_text_atomic(path, csv_text(rows, fields))


def _package_rows_path(output_dir: Path, package: str) -> Path:
    return output_dir / package / "tracks.csv"


def fetch_music(output_dir: str | os.PathLike, packages: Sequence[str] | None = None,
                local_debs: Sequence[str | os.PathLike] = (), progress: bool = True) -> list[dict]:
    """Download (or take ``local_debs``), extract and inventory the music; idempotent.

    A package whose tracks were extracted before at the same version is not
    fetched again. Returns the rows of ``output_dir/inventory.csv``.
    """
    output_dir = ensure_output_dir(output_dir)
    local = {}
    for deb in map(Path, local_debs):
        if not deb.is_file():
            raise MelodyError(f"{deb}: no such file")
        local[deb_field(deb, "Package")] = deb
    wanted = list(packages) if packages is not None else (list(local) if local else list(PACKAGES))
    for package in wanted:
        if package not in PACKAGES and package not in local:
            raise MelodyError(f"{package}: not one of the music packages this project may use "
                              f"({', '.join(PACKAGES)})")
    done = {p for p in wanted if _package_rows_path(output_dir, p).is_file()}
    missing = [p for p in wanted if p not in done]
    with tempfile.TemporaryDirectory(prefix="debs-") as temp:
        to_download = [p for p in missing if p not in local]
        if to_download:
            if progress:
                print(f"downloading {len(to_download)} packages with apt-get", file=sys.stderr)
            local.update(zip(to_download, apt_download(to_download, Path(temp))))
        for package in missing:
            rows = extract_package(local[package], package, output_dir, progress)
            _write_csv(_package_rows_path(output_dir, package), rows, INVENTORY_FIELDS)  # written last
            if progress:
                print(f"{package}: {len(rows)} tracks, {sum(r['minutes'] for r in rows):.1f} min", file=sys.stderr)
    rows = []
    for package in sorted(set(wanted) | {p.parent.name for p in output_dir.glob("*/tracks.csv")}):
        for row in csv.DictReader(open(_package_rows_path(output_dir, package), newline="")):
            if package in PACKAGES:  # the table here decides, also for tracks extracted before a change
                row.update(kind=PACKAGES[package].kind, split=split_of(row))
            rows.append(row)
    _write_csv(output_dir / "inventory.csv", rows, INVENTORY_FIELDS)
    return rows


# ----------------------------------------------------------------------------- using the pool

def read_screening(path: Path = SCREENING_LIST) -> dict[str, tuple[str, str]]:
    """track -> (decision, reason) from the committed screening list."""
    if not path.is_file():
        return {}
    table = {}
    for row in csv.DictReader(open(path, newline="")):
        if row["decision"] not in DECISIONS:
            raise MelodyError(f"{path}: unknown decision {row['decision']!r} for {row['track']}")
        table[row["track"]] = (row["decision"], row["reason"])
    return table


def read_inventory(folder: str | os.PathLike) -> list[dict]:
    """The inventory rows of a fetched pool, with ``path`` (absolute audio path) and ``minutes`` as float."""
    folder = Path(folder)
    inventory = folder / "inventory.csv"
    if not inventory.is_file():
        raise MelodyError(f"{folder}: no music inventory (run: python synth_testset.py fetch-music -o {folder})")
    rows = list(csv.DictReader(open(inventory, newline="")))
    for row in rows:
        row["path"] = folder / row["audio"]
        row["minutes"] = float(row["minutes"])
    return rows


@dataclass
class MusicPool:
    """Screened pool tracks per split: accompaniment, lead-guitar distractors and tracks with a voice."""

    accompaniment: dict[str, list[Path]]
    distractors: dict[str, list[Path]]
    vocal: dict[str, list[Path]]
    unscreened: int


def split_of(row: dict) -> str:
    """An inventory row's split: the table in this module decides, so a changed split needs no new fetch."""
    return PACKAGES[row["package"]].split if row["package"] in PACKAGES else row["split"]


def load_pool(folder: str | os.PathLike, screening: dict[str, tuple[str, str]] | None = None) -> MusicPool:
    """The screened tracks of a fetched pool, by split (unscreened tracks are not used)."""
    screening = read_screening() if screening is None else screening
    pool = MusicPool({}, {}, {}, 0)
    for table in (pool.accompaniment, pool.distractors, pool.vocal):
        table.update({split: [] for split in ("train", "val", "test")})
    for row in sorted(read_inventory(folder), key=lambda r: r["track"]):
        decision = screening.get(row["track"], (None, ""))[0]
        if decision is None:
            pool.unscreened += 1
            continue
        split = split_of(row)
        if decision == "voice":
            pool.vocal[split].append(row["path"])
        elif decision == "instrumental":
            target = pool.distractors if row["role"] == "guitar" else pool.accompaniment
            target[split].append(row["path"])
    return pool
