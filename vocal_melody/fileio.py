"""File-system helpers: atomic writes and finding input audio files."""

from __future__ import annotations

import contextlib
import csv
import glob
import io
import os
import shutil
import tempfile
from pathlib import Path
from typing import Iterable, Iterator, Sequence

from vocal_melody.errors import MelodyError

AUDIO_EXTENSIONS = (
    ".wav", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".aif", ".aiff", ".au",
    ".mp4", ".m4a", ".aac", ".wma", ".webm", ".mka", ".caf", ".w64", ".rf64",
)
"""Extensions picked up when a directory is given as input."""


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_FILE_MODE = 0o666 & ~_current_umask()


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; rename it onto ``path`` on success.

    Readers never see a half-written file: if the block raises (or the
    process is killed), ``path`` is untouched and the temporary is removed
    (or, after a kill, left as an ignorable ``.tmp`` file).
    """
    path = Path(path)
    try:
        handle, temp_name = tempfile.mkstemp(
            prefix=f".{path.name}.", suffix=".tmp", dir=path.parent or ".")
    except OSError as error:
        raise MelodyError(f"cannot write to folder {path.parent}: {error.strerror}") from error
    os.close(handle)
    temp = Path(temp_name)
    os.chmod(temp, _FILE_MODE)  # mkstemp makes 0600 files; outputs get the usual permissions
    try:
        yield temp
        os.replace(temp, path)
    except OSError as error:
        temp.unlink(missing_ok=True)
        raise MelodyError(f"cannot write {path}: {error.strerror}") from error
    except BaseException:
        temp.unlink(missing_ok=True)
        raise


def write_sound_atomic(path: str | os.PathLike, audio, sample_rate: int, subtype: str | None = None) -> None:
    """Write audio (format from the suffix) so that it appears whole or not at all; libsndfile's errors
    (a full disk is only "System error." there) become one line naming the file and the free space."""
    import soundfile

    path = Path(path)
    try:
        with atomic_path(path) as temp:
            soundfile.write(str(temp), audio, sample_rate, subtype=subtype, format=path.suffix[1:].upper())
    except (soundfile.LibsndfileError, RuntimeError) as error:
        try:
            free = f"; {shutil.disk_usage(path.parent).free / 1e6:.0f} MB free there"
        except OSError:
            free = ""
        raise MelodyError(f"cannot write {path}: {error}{free}") from None


def write_text_atomic(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` to ``path`` so that it appears whole or not at all."""
    with atomic_path(path) as temp:
        with open(temp, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())


def csv_text(rows: Iterable[dict], fields: Sequence[str]) -> str:
    """Rows as CSV text under a header of ``fields`` (``\n`` line ends); a key a row lacks is written empty."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(fields), lineterminator="\n")
    writer.writeheader()
    writer.writerows({key: row.get(key, "") for key in fields} for row in rows)
    return buffer.getvalue()


_MADE_DIRS: list[Path] = []  # folders ensure_output_dir created, so a command that fails can take them back


def ensure_output_dir(path: str | os.PathLike) -> Path:
    """Create ``path`` if needed and check that files can be written in it."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise MelodyError(f"output folder {path} is a file, not a folder")
    missing = [folder for folder in (path, *path.parents) if not folder.exists()]
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise MelodyError(f"cannot create output folder {path}: {error.strerror}") from error
    _MADE_DIRS.extend(reversed(missing))
    if not os.access(path, os.W_OK | os.X_OK):
        raise MelodyError(f"output folder {path} is not writable")
    return path


def forget_made_dirs() -> None:
    """Start a new command: the folders made so far are no longer its own."""
    _MADE_DIRS.clear()


def remove_made_dirs_left_empty() -> None:
    """Remove the folders ensure_output_dir made that are still empty (a failed command leaves no empty folder)."""
    for folder in reversed(_MADE_DIRS):
        with contextlib.suppress(OSError):  # not empty, or gone: leave it
            folder.rmdir()
    _MADE_DIRS.clear()


def check_output_file(path: str | os.PathLike, inputs: Sequence[str | os.PathLike] = ()) -> Path:
    """An output file that can be written: its folder exists and is writable, it is no folder and no input."""
    path = Path(path)
    if path.is_dir():
        raise MelodyError(f"output {path} is a folder; give a file name")
    folder = path.parent
    if not folder.is_dir():
        raise MelodyError(f"output {path}: no such folder {folder}")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise MelodyError(f"output {path}: folder {folder} is not writable")
    if any(Path(item).resolve() == path.resolve() for item in inputs):
        raise MelodyError(f"{path}: the output would overwrite the input; choose another file")
    return path


def collect_audio_files(inputs: Sequence[str], recursive: bool = False) -> tuple[list[Path], list[str]]:
    """Expand files, directories and glob patterns: ``(files, problems)``.

    A named file is kept whatever its extension (it may be audio with an odd
    name); directories contribute files with a known audio extension. The
    same file reached twice (two paths, a folder and a pattern) is kept once.
    A pattern or directory that matches nothing, or a path that does not
    exist, is a one-line problem; the other inputs are still collected.
    """
    found: list[Path] = []
    problems: list[str] = []
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            pattern = "**/*" if recursive else "*"
            files = sorted(p for p in path.glob(pattern)
                           if p.is_file() and p.suffix.lower() in AUDIO_EXTENSIONS)
            if not files:
                problems.append(f"no audio files found in folder {path}")
            found.extend(files)
        elif path.exists():
            found.append(path)
        elif glob.has_magic(item):
            files = sorted(Path(p) for p in glob.glob(item, recursive=True) if Path(p).is_file())
            if not files:
                problems.append(f"no files match {item}")
            found.extend(files)
        else:
            problems.append(f"{item}: no such file or folder")
    unique: dict[Path, Path] = {}
    for path in found:
        unique.setdefault(path.resolve(), path)
    return list(unique.values()), problems
