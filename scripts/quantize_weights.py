"""Make the int8 model of a weights bundle (``<bundle>.int8/``), calibrated on training audio.

    python scripts/quantize_weights.py                       # the shipped weights, data/synth train split
    python scripts/quantize_weights.py -w runs/ns/iter1/best.npz --calibration data/synth/manifest.csv

``melodyExtraction_NS.py`` then uses it by default (``--engine auto``) while it
matches the bundle. Check it against the float32 reference with
``python bench/accuracy.py --compare-engines`` before shipping it.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from vocal_melody import features
from vocal_melody.bundle import DEFAULT_WEIGHTS
from vocal_melody.cli.argtypes import positive_int
from vocal_melody.cli.common import OneLineParser, run_cli
from vocal_melody.errors import MelodyError

ROOT = Path(__file__).resolve().parents[1]

DEFAULT_WINDOWS = 600


def calibration_windows(manifest: Path, split: str, n_windows: int, bundle, seed: int = 0) -> list[np.ndarray]:
    """``n_windows`` normalised windows (31, 513, 1) drawn evenly from the tracks of a manifest split."""
    from vocal_melody.lab.corpora.datasets import read_manifest

    tracks = read_manifest(manifest, splits=(split,))
    if not tracks:
        raise MelodyError(f"{manifest}: no tracks in split {split!r}")
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(tracks))
    per_track = max(1, -(-n_windows // len(tracks)))
    chosen: list[np.ndarray] = []
    for index in order:
        windows, _ = features.feature_windows(features.load_audio(tracks[index].audio))
        picks = rng.choice(len(windows), size=min(per_track, len(windows)), replace=False)
        normalised = features.normalize(windows[np.sort(picks)], bundle.mean, bundle.std)
        chosen.extend(normalised[..., None])
        if len(chosen) >= n_windows:
            break
    return chosen[:n_windows]


def main(argv=None) -> int:
    parser = OneLineParser(prog="quantize_weights.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("-w", "--weights", default=str(DEFAULT_WEIGHTS))
    parser.add_argument("--calibration", default=str(ROOT / "data" / "synth" / "manifest.csv"),
                        help="a synth_testset.py compose manifest (its training split is used)")
    parser.add_argument("--split", default="train")
    parser.add_argument("--windows", type=positive_int, default=DEFAULT_WINDOWS, help="calibration windows")
    parser.add_argument("--debug", action="store_true")
    args = parser.parse_args(argv)
    from vocal_melody.bundle import read_bundle
    from vocal_melody.inference.quantize import quantize_bundle

    bundle = read_bundle(args.weights, expected_features=features.FEATURE_DEFINITION)
    manifest = Path(args.calibration)
    if not manifest.exists():
        raise MelodyError(f"calibration manifest {manifest} not found (make it with synth_testset.py compose)")
    windows = calibration_windows(manifest, args.split, args.windows, bundle)
    xml = quantize_bundle(bundle, windows, {"calibration": f"{manifest.name} ({args.split} split)"})
    print(f"wrote {xml.parent} ({len(windows)} calibration windows)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    run_cli(main)
