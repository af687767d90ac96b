#!/usr/bin/env bash
# The corpora of the real-singing runs (docs/experiments/2026-12-03-real-singing.md), each made once:
# the music pool, MIR-1K and SSVD mixes (train and val singers), the synthesized corpus over pool music,
# instrumental music of the training packages (labeled unvoiced) and of the validation packages, and MIR-1K
# train and val singers mixed 5 dB under their accompaniment (the loud-accompaniment run's extra corpus).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
[ -f data/music/inventory.csv ] || $PY synth_testset.py fetch-music -o data/music
[ -f data/mir1k/manifest.csv ] || $PY synth_testset.py mir1k -o data/mir1k
[ -f data/ssvd/manifest.csv ] || $PY synth_testset.py ssvd --music data/music --splits train val -o data/ssvd
[ -f data/synth_music/manifest.csv ] || \
    $PY synth_testset.py compose --minutes 120 --seed 0 --music data/music -o data/synth_music
[ -f data/instrumental_train/manifest.csv ] || $PY synth_testset.py compose --minutes 40 --seed 11 \
    --music data/music --instrumental-share 1 --splits train -o data/instrumental_train
[ -f data/instrumental_val/manifest.csv ] || $PY synth_testset.py compose --minutes 150 --seed 21 \
    --music data/music --instrumental-share 1 --splits val -o data/instrumental_val
[ -f data/mir1k_m5/manifest.csv ] || $PY synth_testset.py mir1k --ratio-db -5 --splits train val -o data/mir1k_m5
