"""Choose a bundle's voicing rule on validation data and store it in the bundle.

    python scripts/tune_voicing.py runs/teacher/best.npz --val data/synth/manifest.csv
    python scripts/tune_voicing.py CANDIDATE.npz --val data/synth_music/manifest.csv data/synth_music_val2/manifest.csv

Candidates: the paper's argmax rule and thresholds 0.20-0.95 on the voicing probability
``1 - p(no voice)``; the one with the best mean validation OA is written into the bundle's
``decoding`` entry, which ``melodyExtraction_NS.py`` uses by default (``--voicing-threshold tuned``).
The trainers do this by themselves for the bundles they write.
"""

from __future__ import annotations

from pathlib import Path

from vocal_melody.cache import DEFAULT_CACHE_ROOT
from vocal_melody.cli.common import OneLineParser, run_cli

ROOT = Path(__file__).resolve().parents[1]


def main(argv=None) -> int:
    parser = OneLineParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("bundle")
    parser.add_argument("--val", required=True, nargs="+",
                        help="manifests (their --val-split) or folders of labeled audio, scored together")
    parser.add_argument("--val-split", default="val")
    parser.add_argument("--cache-dir", default=str(DEFAULT_CACHE_ROOT))
    parser.add_argument("--debug", action="store_true")
    args = parser.parse_args(argv)
    from vocal_melody.lab.cli.training_options import labeled_tracks
    from vocal_melody.lab.corpora.datasets import FeatureCache
    from vocal_melody.lab.training.frames import load_frame_data
    from vocal_melody.lab.training.voicing import tune_voicing

    tracks = [track for source in args.val for track in labeled_tracks(source, args.val_split, "f0")]
    data = load_frame_data(tracks, FeatureCache.under(args.cache_dir), progress=False)
    decoding = tune_voicing(Path(args.bundle), data)
    print(f"{args.bundle}: voicing threshold {decoding['voicing_threshold']} "
          f"(validation OA {decoding['val_OA_tuned']:.4f} over {len(tracks)} tracks; "
          f"argmax rule {decoding['val_OA_argmax']:.4f})")
    return 0


if __name__ == "__main__":
    run_cli(main)
