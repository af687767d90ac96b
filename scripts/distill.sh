#!/usr/bin/env bash
# A smaller capacity (--model small / tiny) distilled from the shipped full model: one command.
#
#   bash scripts/distill.sh tiny        # MINUTES=90 per call; rerun (it resumes) until it prints "done"
#   LR=3e-4 PATIENCE=10 bash scripts/distill.sh tiny  # go on at another learning rate or patience (6 epochs
#                                                     # without gain end a run), after "done" too
#   SOFT=0.5 INIT=vocal_melody/weights/melody_crnn_tiny.npz bash scripts/distill.sh tiny
#       # soft targets: each frame's target is SOFT x the teacher's distribution + (1 - SOFT) x the label's;
#       # a run of its own (runs/distill_tiny_soft), started from INIT (default: scratch)
#   EXTRA="data/mir1k_m5/manifest.csv" TAG=loud INIT=... bash scripts/distill.sh tiny
#       # more labeled corpora (their training splits to learn, their validation splits as more validation
#       # groups), in a run of its own (runs/distill_tiny_loud)
#
# The student has the full model's input, labels and decoding with narrower layers (small: half the
# filters and LSTM units, tiny: a quarter; vocal_melody.model.CAPACITIES), starts from scratch and learns
# as the paper's Noisy Student (setup ns: it hears randAudioAugment-ed audio): ground-truth labels on the
# labeled corpora (MIR-1K and SSVD training singers, the synthesized corpus over training-package music,
# training-package instrumental music) and the
# shipped model's pseudo labels (its tuned voicing threshold) on real unlabeled songs (../shared/data/songs and
# the sung tracks of the training packages). It is chosen on the mostly-real validation groups, as the full
# model (docs/experiments/2026-12-03-real-singing.md). Redo it from whichever full model is shipped last.
# Checkpoints: runs/distill_MODEL/; a run started elsewhere goes on from checkpoints/distill_MODEL/{last,best}.npz.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
MODEL=${1:?usage: bash scripts/distill.sh small|tiny}
MINUTES=${MINUTES:-90}
AGAIN=${LR:-}${PATIENCE:-}  # either given: train on from the last checkpoint, even after "done"
PATIENCE=${PATIENCE:-6}
LR=${LR:-}  # unset: a new run starts at 1e-3, a resumed one keeps its own
TEACHER=${TEACHER:-vocal_melody/weights/melody_crnn.npz}
SOFT=${SOFT:-}
INIT=${INIT:-scratch}
case "$MODEL" in
    small | tiny) ;;
    *) echo "error: unknown capacity $MODEL (small or tiny)" >&2; exit 2 ;;
esac
EXTRA=${EXTRA:-}
TAG=${TAG:-}
NAME=distill_$MODEL${SOFT:+_soft}${TAG:+_$TAG}
RUN_DIR=runs/$NAME
CARRIED=checkpoints/$NAME  # a run carried across machines: its last and best bundles, committed
if [ ! -f "$RUN_DIR/iter1/last.npz" ] && [ -f "$CARRIED/last.npz" ]; then
    mkdir -p "$RUN_DIR/iter1"
    cp "$CARRIED/last.npz" "$RUN_DIR/iter1/last.npz"
    [ -f "$CARRIED/best.npz" ] && cp "$CARRIED/best.npz" "$RUN_DIR/iter1/best.npz"
fi

bash scripts/real_corpora.sh
TRAIN="data/mir1k/manifest.csv data/ssvd/manifest.csv data/synth_music/manifest.csv data/instrumental_train/manifest.csv"
VAL="data/mir1k/manifest.csv data/ssvd/manifest.csv data/synth_music/manifest.csv data/instrumental_val/manifest.csv"
if [ -n "$EXTRA" ]; then TRAIN="$TRAIN $EXTRA"; VAL="$VAL $EXTRA"; fi

if [ ! -f "$RUN_DIR/iterations.csv" ] || [ -n "$AGAIN" ]; then
    rm -f "$RUN_DIR/iterations.csv"
    RESUME=$([ -f "$RUN_DIR/iter1/last.npz" ] && echo --resume || true)
    # shellcheck disable=SC2046,SC2086
    $PY train_student.py --teacher "$TEACHER" --setup ns --iterations 1 --init "$INIT" --capacity "$MODEL" \
        --labeled $TRAIN --val $VAL --val-mean groups \
        --unlabeled ../shared/data/songs $($PY scripts/screen_music.py data/music --list voice --split train) \
        --pseudo-voicing tuned --run-dir "$RUN_DIR" --mixed-precision bf16 --voicing-loss-weight 1 \
        --steps-per-epoch 250 --patience "$PATIENCE" --seed 0 ${LR:+--lr "$LR"} ${SOFT:+--soft-targets "$SOFT"} \
        --max-minutes "$MINUTES" $RESUME
fi
if [ ! -f "$RUN_DIR/iterations.csv" ]; then
    echo "$RUN_DIR: still training; rerun this script to continue"
    exit 0
fi
echo "done: $RUN_DIR/iter1/best.npz. Score it and the shipped model by the same rule:"
echo "  $PY scripts/validation_report.py $RUN_DIR/iter1/best.npz --val $VAL --val-mean groups --thresholds 0.2 0.95 0.05"
echo "ship it as vocal_melody/weights/melody_crnn_$MODEL.npz only if it is within 0.02 OA of the full model there; then"
echo "  $PY scripts/quantize_weights.py -w vocal_melody/weights/melody_crnn_$MODEL.npz --calibration data/synth_music/manifest.csv"
