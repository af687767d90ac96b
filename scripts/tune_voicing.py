"""Choose a bundle's voicing rule on validation data and store it in the bundle.

    python scripts/tune_voicing.py runs/teacher/best.npz --val data/synth/manifest.csv

Candidates: the paper's argmax rule and thresholds 0.20-0.95 on the voicing probability
``1 - p(no voice)``; the one with the best mean validation OA is written into the bundle's
``decoding`` entry, which ``melodyExtraction_NS.py`` uses by default (``--voicing-threshold tuned``).
The trainers do this by themselves for the bundles they write.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from melody.errors import OneLineParser, run_cli  # noqa: E402


def main(argv=None) -> int:
    parser = OneLineParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("bundle")
    parser.add_argument("--val", required=True, help="manifest (its --val-split) or folder of labeled audio")
    parser.add_argument("--val-split", default="val")
    parser.add_argument("--cache-dir", default="cache/features")
    parser.add_argument("--debug", action="store_true")
    args = parser.parse_args(argv)
    from melody.datasets import FeatureCache
    from melody.trainer_cli import labeled_tracks
    from melody.training import load_frame_data, tune_voicing

    tracks = labeled_tracks(args.val, args.val_split, "f0")
    data = load_frame_data(tracks, FeatureCache(args.cache_dir), progress=False)
    decoding = tune_voicing(Path(args.bundle), data)
    print(f"{args.bundle}: voicing threshold {decoding['voicing_threshold']} "
          f"(validation OA {decoding['val_OA_tuned']:.4f}; argmax rule {decoding['val_OA_argmax']:.4f})")
    return 0


if __name__ == "__main__":
    run_cli(main)
