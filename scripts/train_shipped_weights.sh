#!/usr/bin/env bash
# The recipe of the shipped weights (vocal_melody/weights/melody_crnn.npz): named steps, each training from
# the model the step before it made, starting from the released teacher checkpoint checkpoints/teacher_last.npz.
#
#   bash scripts/train_shipped_weights.sh             # the next unfinished step (rerun until it prints "done")
#   bash scripts/train_shipped_weights.sh pool        # one step (the step before it must have finished)
#   bash scripts/train_shipped_weights.sh --list      # the steps and which have finished
#
# Steps (the commit that shipped each model, for docs/experiments/2026-11-25-model-history.md):
#   teacher  the paper's teacher on the synthesized corpus, from checkpoints/teacher_last.npz
#   ns       a Noisy Student iteration from it (6805111)
#   pool     a Noisy Student iteration with real instrumental music of the Debian music pool as labeled,
#            unvoiced data and the pool's sung tracks among the unlabeled audio (d7bb41b)
#   soup     the mean of two students of pool: A with the training voices' original recordings among the
#            unlabeled audio (shipped alone as 528b1cd), B with them as labeled data (744d2d0)
#   head     soup's BiLSTM and output layer fine-tuned (ResNet blocks frozen) with more labeled
#            instrumental music (5088428)
#   whole    one Noisy Student epoch of the whole model from head, with more instrumental music (the
#            current model)
#   small, tiny  the smaller capacities, distilled from the shipped full model (scripts/distill.sh)
# A step's model is runs/steps/STEP.npz once it has finished. Every training call has a time budget
# (MINUTES, default 100) and resumes where it stopped: on these 2-core CPUs a step takes one or more sessions.
# Models are chosen on validation data only, never on a test set.
#
# Data: ../shared/data (voice/, voice_research/, accompaniment/, songs/). NO_RESEARCH=1 leaves out the
# research-only voice_research/ folder (the weights then carry no research-only terms).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
MINUTES=${MINUTES:-100}
RESEARCH_FLAG=$([ "${NO_RESEARCH:-0}" = 1 ] && echo --no-research || true)
STEPS=(teacher ns pool soup head whole)
OUT=runs/steps
mkdir -p "$OUT"

# ----------------------------------------------------------------------------- helpers
step_input() {  # the model a step starts from: the previous step's
    local step=$1 i
    [ "$step" = teacher ] && { echo checkpoints/teacher_last.npz; return; }
    for i in "${!STEPS[@]}"; do
        if [ "${STEPS[$i]}" = "$step" ]; then echo "$OUT/${STEPS[$((i - 1))]}.npz"; return; fi
    done
}
resume_flag() { [ -f "$1/last.npz" ] && echo --resume || true; }
run_finished() {  # a run whose training ended (early stop or its last epoch), not one its time budget stopped
    [ -f "$1/last.npz" ] && $PY - "$1/last.npz" <<'PY'
import sys
from vocal_melody.bundle import read_bundle
record = read_bundle(sys.argv[1]).training_record
state, training = record["state"], record["training"]
sys.exit(0 if state.get("finished") or state.get("epoch", 0) >= training.get("max_epochs", float("inf")) else 1)
PY
}
finish_step() {  # STEP BUNDLE: the step's model, or a "rerun" when its run is still training
    if [ ! -f "$2" ]; then echo "$1: still training; rerun this script to continue"; exit 0; fi
    cp "$2" "$OUT/$1.npz.tmp" && mv "$OUT/$1.npz.tmp" "$OUT/$1.npz"
    echo "$1: done -> $OUT/$1.npz"
}
voice_music() { $PY scripts/screen_music.py data/music --list voice --split train; }

# ----------------------------------------------------------------------------- corpora (each made once)
synth_corpora() {  # the synthesized labeled corpus and unlabeled synthesized mixes (labels unused)
    [ -f data/synth/manifest.csv ] || $PY synth_testset.py compose --minutes 120 --seed 0 -o data/synth $RESEARCH_FLAG
    [ -f data/unlabeled_synth/manifest.csv ] || \
        $PY synth_testset.py compose --minutes 40 --seed 1 -o data/unlabeled_synth $RESEARCH_FLAG
}
pool_corpora() {  # the pool corpus (labeled), its unlabeled mixes, the training voices' original recordings
    [ -f data/music/inventory.csv ] || $PY synth_testset.py fetch-music -o data/music
    [ -f data/synth_music/manifest.csv ] || \
        $PY synth_testset.py compose --minutes 120 --seed 0 --music data/music -o data/synth_music $RESEARCH_FLAG
    [ -f data/synth_music_val2/manifest.csv ] || $PY synth_testset.py compose --minutes 300 --seed 5 \
        --music data/music --splits val -o data/synth_music_val2 $RESEARCH_FLAG
    [ -f data/unlabeled_synth_music/manifest.csv ] || $PY synth_testset.py compose --minutes 40 --seed 1 \
        --music data/music --instrumental-share 0 -o data/unlabeled_synth_music $RESEARCH_FLAG
    [ -f data/unlabeled_originals/manifest.csv ] || $PY synth_testset.py originals --music data/music --seed 3 \
        -o data/unlabeled_originals $RESEARCH_FLAG -q
    [ -f data/labeled_originals/manifest.csv ] || $PY synth_testset.py originals --music data/music --seed 3 \
        --labels -o data/labeled_originals $RESEARCH_FLAG -q
    [ -f data/originals_val/manifest.csv ] || $PY synth_testset.py originals --music data/music --split val \
        --labels --mixes-per-voice 12 --seed 7 -o data/originals_val $RESEARCH_FLAG -q
}
instrumental_corpora() {  # training-package instrumental music, unvoiced on every frame (lead guitars among it)
    [ -f data/instrumental_train/manifest.csv ] || $PY synth_testset.py compose --minutes 40 --seed 11 \
        --music data/music --instrumental-share 1 --splits train -o data/instrumental_train $RESEARCH_FLAG
    [ -f data/instrumental_train2/manifest.csv ] || $PY synth_testset.py compose --minutes 80 --seed 12 \
        --music data/music --instrumental-share 1 --splits train -o data/instrumental_train2 $RESEARCH_FLAG
    [ -f data/leads_train/manifest.csv ] || $PY synth_testset.py compose --minutes 14 --seed 13 \
        --music data/music --instrumental-share 1 --instrumental-leads --splits train -o data/leads_train \
        $RESEARCH_FLAG
    [ -f data/instrumental_train3/manifest.csv ] || $PY synth_testset.py compose --minutes 80 --seed 14 \
        --music data/music --instrumental-share 1 --splits train -o data/instrumental_train3 $RESEARCH_FLAG
}
# the pool corpus's val split, a larger one over val-package music and the validation voices' original
# recordings: 155 tracks (107 synthesized, 48 real singing)
VAL_155="data/synth_music/manifest.csv data/synth_music_val2/manifest.csv data/originals_val/manifest.csv"
LABELED_INSTRUMENTAL="data/instrumental_train/manifest.csv data/instrumental_train2/manifest.csv
    data/leads_train/manifest.csv"

# ----------------------------------------------------------------------------- the steps
step_teacher() {  # Adam 1e-3, bf16, the synthesized corpus; early stop after 8 epochs without progress
    synth_corpora
    local start="--init $(step_input teacher)"
    [ -f runs/teacher/last.npz ] && start=--resume
    # shellcheck disable=SC2086
    run_finished runs/teacher || $PY train_teacher.py --train data/synth/manifest.csv --run-dir runs/teacher \
        --mixed-precision bf16 --steps-per-epoch 250 --patience 8 --seed 0 --max-minutes "$MINUTES" $start
    run_finished runs/teacher && finish_step teacher runs/teacher/best.npz || finish_step teacher ""
}

step_ns() {  # fine-tuned from its teacher at a third of the teacher's learning rate
    synth_corpora
    # shellcheck disable=SC2046
    [ -f runs/ns/iterations.csv ] || $PY train_student.py --teacher "$(step_input ns)" --setup ns --iterations 1 \
        --labeled data/synth/manifest.csv --unlabeled ../shared/data/songs \
        --unlabeled-manifest data/unlabeled_synth/manifest.csv --run-dir runs/ns --mixed-precision bf16 \
        --steps-per-epoch 250 --patience 4 --seed 0 --lr 3e-4 --max-minutes "$MINUTES" $(resume_flag runs/ns/iter1)
    finish_step ns "$([ -f runs/ns/iterations.csv ] && echo runs/ns/iter1/best.npz)"
}

step_pool() {  # instrumental tracks are labeled data, never pseudo-labeled; validated on the pool's val packages
    pool_corpora
    # shellcheck disable=SC2046
    [ -f runs/pool/iterations.csv ] || $PY train_student.py --teacher "$(step_input pool)" --setup ns \
        --iterations 1 --labeled data/synth_music/manifest.csv --unlabeled ../shared/data/songs $(voice_music) \
        --unlabeled-manifest data/unlabeled_synth_music/manifest.csv --run-dir runs/pool \
        --mixed-precision bf16 --steps-per-epoch 150 --patience 3 --seed 0 --lr 3e-4 --max-minutes "$MINUTES" \
        $(resume_flag runs/pool/iter1)
    finish_step pool "$([ -f runs/pool/iterations.csv ] && echo runs/pool/iter1/best.npz)"
}

soup_member() {  # RUN_DIR "MORE UNLABELED" ARGS...: a Noisy Student of pool with the voicing loss, one thread
    local run_dir=$1 more_unlabeled=$2
    shift 2
    [ -f "$run_dir/iterations.csv" ] && return 0
    # shellcheck disable=SC2046,SC2086
    TF_NUM_INTRAOP_THREADS=${THREADS:-1} TF_NUM_INTEROP_THREADS=1 $PY train_student.py \
        --teacher "$(step_input soup)" --setup ns --iterations 1 \
        --unlabeled ../shared/data/songs $(voice_music) $more_unlabeled \
        --unlabeled-manifest data/unlabeled_synth_music/manifest.csv --run-dir "$run_dir" \
        --mixed-precision bf16 --steps-per-epoch 150 --patience 3 --seed 0 --lr 3e-4 --voicing-loss-weight 1 \
        --max-minutes "$MINUTES" $(resume_flag "$run_dir/iter1") "$@"
}
step_soup() {  # B alone is better on real singing, worse on synthesized mixtures; their mean beats both
    pool_corpora
    soup_member runs/soup_a data/unlabeled_originals --max-epochs 1 --labeled data/synth_music/manifest.csv
    soup_member runs/soup_b "" --max-epochs 2 \
        --labeled data/synth_music/manifest.csv data/labeled_originals/manifest.csv \
        --val data/synth_music/manifest.csv data/originals_val/manifest.csv
    if [ ! -f runs/soup_a/iterations.csv ] || [ ! -f runs/soup_b/iterations.csv ]; then
        finish_step soup ""
    fi
    rm -f runs/soup_mean.npz
    $PY scripts/average_weights.py runs/soup_a/iter1/best.npz runs/soup_b/iter1/best.npz -o runs/soup_mean.npz
    # shellcheck disable=SC2086
    $PY scripts/tune_voicing.py runs/soup_mean.npz --val $VAL_155
    finish_step soup runs/soup_mean.npz
}

step_head() {  # setup bts: the teacher labels the clean audio the student learns from; lr 3e-5, two threads
    pool_corpora
    instrumental_corpora
    # shellcheck disable=SC2046,SC2086
    [ -f runs/head/iterations.csv ] || $PY train_student.py --teacher "$(step_input head)" --setup bts \
        --iterations 1 --freeze-backbone \
        --labeled data/synth_music/manifest.csv data/labeled_originals/manifest.csv $LABELED_INSTRUMENTAL \
        --val $VAL_155 --unlabeled ../shared/data/songs $(voice_music) \
        --unlabeled-manifest data/unlabeled_synth_music/manifest.csv --run-dir runs/head \
        --mixed-precision bf16 --steps-per-epoch 500 --patience 2 --seed 0 --lr 3e-5 --voicing-loss-weight 1 \
        --max-epochs 2 --max-minutes "$MINUTES" $(resume_flag runs/head/iter1)
    finish_step head "$([ -f runs/head/iterations.csv ] && echo runs/head/iter1/best.npz)"
}

step_whole() {  # Adam 1e-4, 300 steps of 32 windows; the run went on two more epochs, both lower: epoch 1 it is
    pool_corpora
    instrumental_corpora
    # shellcheck disable=SC2046,SC2086
    [ -f runs/whole/iterations.csv ] || TF_NUM_INTRAOP_THREADS=${THREADS:-2} TF_NUM_INTEROP_THREADS=1 \
        $PY train_student.py --teacher "$(step_input whole)" --setup ns --iterations 1 \
        --labeled data/synth_music/manifest.csv data/labeled_originals/manifest.csv $LABELED_INSTRUMENTAL \
        data/instrumental_train3/manifest.csv --val $VAL_155 --unlabeled ../shared/data/songs $(voice_music) \
        --unlabeled-manifest data/unlabeled_synth_music/manifest.csv --run-dir runs/whole \
        --mixed-precision bf16 --steps-per-epoch 300 --patience 2 --seed 0 --lr 1e-4 --voicing-loss-weight 1 \
        --max-epochs 1 --max-minutes "$MINUTES" $(resume_flag runs/whole/iter1)
    finish_step whole "$([ -f runs/whole/iterations.csv ] && echo runs/whole/iter1/best.npz)"
    echo "Ship $OUT/whole.npz only if its validation OA beats $PY scripts/tune_voicing.py on a copy of the shipped"
    echo "model (--val the same 155 tracks); then $PY scripts/quantize_weights.py --calibration data/synth_music/manifest.csv"
}

step_small() { MINUTES=$MINUTES bash scripts/distill.sh small; }
step_tiny() { MINUTES=$MINUTES bash scripts/distill.sh tiny; }

# ----------------------------------------------------------------------------- which step
if [ "${1:-}" = --list ]; then
    for step in "${STEPS[@]}"; do
        echo "$step $([ -f "$OUT/$step.npz" ] && echo "finished: $OUT/$step.npz" || echo "not finished")"
    done
    exit 0
fi
if [ -n "${1:-}" ]; then
    case " ${STEPS[*]} small tiny " in
        *" $1 "*) ;;
        *) echo "error: unknown step $1 (steps: ${STEPS[*]} small tiny)" >&2; exit 2 ;;
    esac
    input=$(step_input "$1")
    if [ -n "$input" ] && [ "$1" != small ] && [ "$1" != tiny ] && [ ! -f "$input" ]; then
        echo "error: step $1 starts from $input, which its previous step has not made yet" >&2
        exit 2
    fi
    "step_$1"
    exit 0
fi
for step in "${STEPS[@]}"; do
    [ -f "$OUT/$step.npz" ] || { "step_$step"; exit 0; }
done
echo "done: every step has finished ($OUT/whole.npz is the full model); the capacities: $0 small, $0 tiny"
