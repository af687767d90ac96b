#!/usr/bin/env bash
# The recipe of the shipped weights (vocal_melody/weights/melody_crnn.npz), step by step.
# Steps 1-3 made the model of commit 6805111 (Noisy Student iteration 1); POOL=1 runs step 0, which made
# the next one from it (commit d7bb41b): a Noisy Student iteration whose labeled data has real
# instrumental music from the Debian music pool; ORIGINALS=1 runs step 00, which made the one after
# (commit 528b1cd: real singing among the unlabeled audio, the JDC-style voicing loss); SOUP=1 runs step
# 000, which made the next (commit 744d2d0): the mean of step 00's model and a sister run with the real
# singing as labeled data, both students of d7bb41b; HEAD=1 runs step 0000, which made the next one
# from it (commit 5088428): the BiLSTM and output layer fine-tuned with more labeled instrumental music;
# WHOLE=1 runs step 00000, which made the current one from that: one Noisy Student epoch of the whole model.
#
# On these 2-core CPUs each training step needs hours: every step has a time budget
# (MINUTES per call) and resumes where it stopped, so run this script again (and again)
# until it prints "done". On a GPU, set MINUTES high and run it once.
#
#   bash scripts/train_shipped_weights.sh            # MINUTES=100 by default
#
# Data: ../shared/data (voice/, voice_research/, accompaniment/, songs/). Set NO_RESEARCH=1 to
# leave out the research-only voice_research/ folder (the weights then carry no research-only terms).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
MINUTES=${MINUTES:-100}
NS_ITERATIONS=${NS_ITERATIONS:-1}
RESEARCH_FLAG=$([ "${NO_RESEARCH:-0}" = 1 ] && echo --no-research || true)

# The corpora of steps SOUP and 00: the pool corpus (labeled), its larger validation set, the unlabeled
# synthesized mixes and the training voices' original recordings over training-split pool music.
pool_corpora() {
    $PY synth_testset.py fetch-music -o data/music
    [ -f data/synth_music/manifest.csv ] || \
        $PY synth_testset.py compose --minutes 120 --seed 0 --music data/music -o data/synth_music $RESEARCH_FLAG
    [ -f data/synth_music_val2/manifest.csv ] || $PY synth_testset.py compose --minutes 300 --seed 5 \
        --music data/music --splits val -o data/synth_music_val2 $RESEARCH_FLAG
    [ -f data/unlabeled_synth_music/manifest.csv ] || $PY synth_testset.py compose --minutes 40 --seed 1 \
        --music data/music --instrumental-share 0 -o data/unlabeled_synth_music $RESEARCH_FLAG
    $PY synth_testset.py originals --music data/music --seed 3 -o data/unlabeled_originals $RESEARCH_FLAG -q
    PREVIOUS=runs/previous_ns2.npz
    mkdir -p runs
    [ -f "$PREVIOUS" ] || git show d7bb41b:vocal_melody/weights/melody_crnn.npz > "$PREVIOUS"
}
# The training voices' original recordings over training-split pool music, labeled (steps HEAD and SOUP),
# and the validation voices' over validation-split music (48 of the 155 validation tracks).
labeled_originals() {
    [ -f data/labeled_originals/manifest.csv ] || $PY synth_testset.py originals --music data/music --seed 3 \
        --labels -o data/labeled_originals $RESEARCH_FLAG -q
    [ -f data/originals_val/manifest.csv ] || $PY synth_testset.py originals --music data/music --split val \
        --labels --mixes-per-voice 12 --seed 7 -o data/originals_val $RESEARCH_FLAG -q
}
# Training-package instrumental music, unvoiced on every frame (steps HEAD and WHOLE; WHOLE also uses seed 14).
instrumental_corpora() {
    [ -f data/instrumental_train/manifest.csv ] || $PY synth_testset.py compose --minutes 40 --seed 11 \
        --music data/music --instrumental-share 1 --splits train -o data/instrumental_train $RESEARCH_FLAG
    [ -f data/instrumental_train2/manifest.csv ] || $PY synth_testset.py compose --minutes 80 --seed 12 \
        --music data/music --instrumental-share 1 --splits train -o data/instrumental_train2 $RESEARCH_FLAG
    [ -f data/leads_train/manifest.csv ] || $PY synth_testset.py compose --minutes 14 --seed 13 \
        --music data/music --instrumental-share 1 --instrumental-leads --splits train -o data/leads_train \
        $RESEARCH_FLAG
}
# A Noisy Student iteration from PREVIOUS (d7bb41b, its teacher and starting point) with the voicing loss,
# one thread per process (the shipped runs ran so, two side by side).
#   train_ns_member RUN_DIR "MORE UNLABELED FOLDERS" ARGS...   (argparse keeps only the last --unlabeled)
train_ns_member() {
    local run_dir=$1 more_unlabeled=$2
    shift 2
    local resume
    resume=$([ -f "$run_dir/iter1/last.npz" ] && echo --resume || true)
    # shellcheck disable=SC2046
    TF_NUM_INTRAOP_THREADS=${THREADS:-1} TF_NUM_INTEROP_THREADS=1 $PY train_student.py --teacher "$PREVIOUS" \
        --setup ns --iterations 1 \
        --unlabeled ../shared/data/songs $($PY scripts/screen_music.py data/music --list voice --split train) \
        $more_unlabeled --unlabeled-manifest data/unlabeled_synth_music/manifest.csv --run-dir "$run_dir" \
        --mixed-precision bf16 --steps-per-epoch 150 --patience 3 --seed 0 --lr 3e-4 --voicing-loss-weight 1 \
        --max-minutes "$MINUTES" $resume "$@"
}

VAL_155="data/synth_music/manifest.csv data/synth_music_val2/manifest.csv data/originals_val/manifest.csv"

# The end of steps HEAD and WHOLE: "rerun" while RUN_DIR trains, then what to check before shipping.
report_run() {
    local run_dir=$1
    if [ ! -f "$run_dir/iterations.csv" ]; then
        echo "$run_dir: still training; rerun this script to continue"
        exit 0
    fi
    echo "done: $run_dir/iter1/best.npz (threshold tuned on the 155 tracks). Ship it only if its validation"
    echo "OA beats $PY scripts/tune_voicing.py on a copy of the shipped model (--val the same 155 tracks); then"
    echo "$PY scripts/quantize_weights.py --calibration data/synth_music/manifest.csv"
    exit 0
}

# 00000. (WHOLE=1, the current model) step 0000's model (commit 5088428) as teacher and starting point of one
#        Noisy Student epoch of the whole model (no frozen blocks): the same data as step HEAD plus 63.7 more
#        minutes of training-package instrumental music, noisy student (setup ns), Adam 1e-4, 300 steps of 32
#        windows. The run went on for two more epochs, both lower on the 155 validation tracks; epoch 1 is it.
if [ "${WHOLE:-0}" = 1 ]; then
    pool_corpora
    labeled_originals
    instrumental_corpora
    [ -f data/instrumental_train3/manifest.csv ] || $PY synth_testset.py compose --minutes 80 --seed 14 \
        --music data/music --instrumental-share 1 --splits train -o data/instrumental_train3 $RESEARCH_FLAG
    HEAD_MODEL=runs/head_5088428.npz
    [ -f "$HEAD_MODEL" ] || git show 5088428:vocal_melody/weights/melody_crnn.npz > "$HEAD_MODEL"
    RESUME=$([ -f runs/whole/iter1/last.npz ] && echo --resume || true)
    # shellcheck disable=SC2046,SC2086
    TF_NUM_INTRAOP_THREADS=${THREADS:-2} TF_NUM_INTEROP_THREADS=1 $PY train_student.py --teacher "$HEAD_MODEL" \
        --setup ns --iterations 1 \
        --labeled data/synth_music/manifest.csv data/labeled_originals/manifest.csv \
        data/instrumental_train/manifest.csv data/instrumental_train2/manifest.csv data/leads_train/manifest.csv \
        data/instrumental_train3/manifest.csv --val $VAL_155 \
        --unlabeled ../shared/data/songs $($PY scripts/screen_music.py data/music --list voice --split train) \
        --unlabeled-manifest data/unlabeled_synth_music/manifest.csv --run-dir runs/whole \
        --mixed-precision bf16 --steps-per-epoch 300 --patience 2 --seed 0 --lr 1e-4 --voicing-loss-weight 1 \
        --max-epochs 1 --max-minutes "$MINUTES" $RESUME
    report_run runs/whole
fi

# 0000. (HEAD=1, the model before) step 000's model (commit 744d2d0) fine-tuned with its ResNet blocks
#       frozen (--freeze-backbone): only the BiLSTM and the output layer learn, from clean audio (setup
#       bts: 744d2d0 labels the unlabeled audio it learns from), with 103 more minutes of labeled
#       instrumental music from training packages (unvoiced on every frame; lead-guitar stems among them).
#       Chosen on the 155 validation tracks (the trainer tunes the threshold there); two threads.
if [ "${HEAD:-0}" = 1 ]; then
    pool_corpora
    labeled_originals
    instrumental_corpora
    SOUP_MODEL=runs/soup_744d2d0.npz
    [ -f "$SOUP_MODEL" ] || git show 744d2d0:vocal_melody/weights/melody_crnn.npz > "$SOUP_MODEL"
    RESUME=$([ -f runs/head/iter1/last.npz ] && echo --resume || true)
    # shellcheck disable=SC2046,SC2086
    $PY train_student.py --teacher "$SOUP_MODEL" --setup bts --iterations 1 --freeze-backbone \
        --labeled data/synth_music/manifest.csv data/labeled_originals/manifest.csv \
        data/instrumental_train/manifest.csv data/instrumental_train2/manifest.csv data/leads_train/manifest.csv \
        --val $VAL_155 \
        --unlabeled ../shared/data/songs $($PY scripts/screen_music.py data/music --list voice --split train) \
        --unlabeled-manifest data/unlabeled_synth_music/manifest.csv --run-dir runs/head \
        --mixed-precision bf16 --steps-per-epoch 500 --patience 2 --seed 0 --lr 3e-5 --voicing-loss-weight 1 \
        --max-epochs 2 --max-minutes "$MINUTES" $RESUME
    report_run runs/head
fi

# 000. (SOUP=1, the model before it) the mean of the weights of two students of PREVIOUS (d7bb41b):
#      A = step 00's model (real singing among the unlabeled audio), one epoch;
#      B = the same with the training voices' original recordings as *labeled* data (their WORLD analysis
#          labels) instead of unlabeled audio, validated on synthesized and real singing, two epochs.
#      B alone is better on real singing and worse on synthesized mixtures; their mean beats both, and the
#      model before, on the 155 validation tracks (107 synthesized, 48 real singing). Never on a test set.
#      Here the members train one after the other (each run had one thread); rerun until it prints "done".
if [ "${SOUP:-0}" = 1 ]; then
    pool_corpora
    labeled_originals
    [ -f runs/soup_a/iterations.csv ] || train_ns_member runs/soup_a data/unlabeled_originals --max-epochs 1 \
        --labeled data/synth_music/manifest.csv
    [ -f runs/soup_b/iterations.csv ] || train_ns_member runs/soup_b "" --max-epochs 2 \
        --labeled data/synth_music/manifest.csv data/labeled_originals/manifest.csv \
        --val data/synth_music/manifest.csv data/originals_val/manifest.csv
    if [ ! -f runs/soup_a/iterations.csv ] || [ ! -f runs/soup_b/iterations.csv ]; then
        echo "soup: a member is still training; rerun this script to continue"
        exit 0
    fi
    rm -f runs/soup_candidate.npz
    $PY scripts/average_weights.py runs/soup_a/iter1/best.npz runs/soup_b/iter1/best.npz -o runs/soup_candidate.npz
    # shellcheck disable=SC2086
    $PY scripts/tune_voicing.py runs/soup_candidate.npz --val $VAL_155
    echo "done: runs/soup_candidate.npz. Ship it only if its validation OA beats the same command on a copy of"
    echo "the shipped model; then $PY scripts/quantize_weights.py --calibration data/synth_music/manifest.csv"
    exit 0
fi

# 00. (ORIGINALS=1, member A of the current model, shipped alone before it) one more Noisy Student iteration
#     from the model step 0 made (its own teacher), with the training voices' original recordings over
#     training-split pool music among the unlabeled audio (real singing, not re-synthesized) and the
#     JDC-style voicing loss; chosen by validation OA on the pool corpus's val split plus a larger one
#     (compose --splits val, seed 5), never on a test set. Its control (--voicing-loss-weight 0) ran beside it.
if [ "${ORIGINALS:-0}" = 1 ]; then
    pool_corpora
    train_ns_member runs/ns3 data/unlabeled_originals --labeled data/synth_music/manifest.csv
    cp runs/ns3/iter1/best.npz runs/ns3_candidate.npz
    $PY scripts/tune_voicing.py runs/ns3_candidate.npz --val data/synth_music/manifest.csv \
        data/synth_music_val2/manifest.csv
    echo "candidate: runs/ns3_candidate.npz (threshold tuned on both validation sets); ship it only if its"
    echo "validation OA beats the same command on a copy of the shipped model"
    exit 0
fi

# 0. (POOL=1, the model before the current one) the music pool: real instrumental music as labeled, unvoiced data.
#    A Noisy Student iteration from the previous shipped student (its own teacher), fine-tuned at lr 3e-4 on a corpus
#    whose accompaniment and instrumental-only items come from the pool's training packages (validation
#    on the pool's validation packages), with real sung tracks of the pool and ../shared/data/songs
#    among the unlabeled audio. Instrumental tracks are never pseudo-labeled: they are labeled data.
#    On a GPU machine without TensorFlow, this step's training splits in two (README, "On a GPU machine
#    without TensorFlow"): `train_student.py ... --export DIR` here, `KERAS_BACKEND=jax train_student.py
#    --teacher "$PREVIOUS" --data DIR ... -gpu 0` there. The shipped weights were trained on the CPU.
if [ "${POOL:-0}" = 1 ]; then
    $PY synth_testset.py fetch-music -o data/music
    [ -f data/synth_music/manifest.csv ] || \
        $PY synth_testset.py compose --minutes 120 --seed 0 --music data/music -o data/synth_music $RESEARCH_FLAG
    [ -f data/unlabeled_synth_music/manifest.csv ] || $PY synth_testset.py compose --minutes 40 --seed 1 \
        --music data/music --instrumental-share 0 -o data/unlabeled_synth_music $RESEARCH_FLAG
    PREVIOUS=runs/previous_ns1.npz
    mkdir -p runs
    [ -f "$PREVIOUS" ] || git show 6805111:weights/melody_crnn.npz > "$PREVIOUS"
    RESUME=$([ -f runs/ns_pool/iter1/last.npz ] && echo --resume || true)
    # shellcheck disable=SC2046
    $PY train_student.py --teacher "$PREVIOUS" --setup ns --iterations 1 \
        --labeled data/synth_music/manifest.csv \
        --unlabeled ../shared/data/songs $($PY scripts/screen_music.py data/music --list voice --split train) \
        --unlabeled-manifest data/unlabeled_synth_music/manifest.csv --run-dir runs/ns_pool \
        --mixed-precision bf16 --steps-per-epoch 150 --patience 3 --seed 0 --lr 3e-4 --max-minutes "$MINUTES" $RESUME
    echo "pool step: runs/ns_pool/iter1/best.npz is the candidate; ship it only if its validation OA beats"
    echo "the previous model's on data/synth_music (scripts/tune_voicing.py on a copy of it says)"
    exit 0
fi

# 1. labeled corpus (train/val/test) and synthesized unlabeled mixes (their labels are not used)
[ -f data/synth/manifest.csv ] || $PY synth_testset.py compose --minutes 120 --seed 0 -o data/synth $RESEARCH_FLAG
[ -f data/unlabeled_synth/manifest.csv ] || \
    $PY synth_testset.py compose --minutes 40 --seed 1 -o data/unlabeled_synth $RESEARCH_FLAG

# 2. the teacher. A local run resumes; otherwise a new run starts from the committed checkpoint's
#    weights (--init: fresh optimizer and epoch count, scored on this corpus's validation split),
#    or from scratch when there is none (FROM_SCRATCH=1 forces it).
#    New corpora are added with --init, after pitch is learned: from scratch on the pool corpora (a quarter of
#    the frames voiced) pitch had hardly begun after 51,200 windows (docs/experiments/2026-11-25-model-history.md, 2026-12-02, third session).
#    From this checkpoint the vibrato negatives are learned in one epoch, but real singing falls with them
#    (0.796 -> 0.721 on its 48 validation mixes; docs/experiments/2026-11-25-model-history.md, 2026-12-02, fourth session).
if [ -f runs/teacher/last.npz ]; then
    START=--resume
elif [ -f vocal_melody/weights/checkpoints/teacher_last.npz ] && [ "${FROM_SCRATCH:-0}" != 1 ]; then
    START="--init vocal_melody/weights/checkpoints/teacher_last.npz"
else
    START=
fi
if [ ! -f runs/teacher/done ]; then
    $PY train_teacher.py --train data/synth/manifest.csv --run-dir runs/teacher --mixed-precision bf16 \
        --steps-per-epoch 250 --patience 8 --seed 0 --max-minutes "$MINUTES" $START
    echo "teacher: rerun this script to continue training (touch runs/teacher/done to move on)"
    exit 0
fi

# 3. Noisy Student iterations from the teacher (TEACHER=... to start from other weights, e.g. the
#    shipped teacher: git show 3d96f97:weights/melody_crnn.npz > teacher.npz; or the next iteration
#    from the shipped student: TEACHER=vocal_melody/weights/melody_crnn.npz NS_RUN_DIR=runs/ns2). The student starts
#    from its teacher's weights, so it is fine-tuned at a third of the teacher's learning rate.
TEACHER=${TEACHER:-runs/teacher/best.npz}
NS_RUN_DIR=${NS_RUN_DIR:-runs/ns}
RESUME=$([ -f "$NS_RUN_DIR/iter1/last.npz" ] && echo --resume || true)
$PY train_student.py --teacher "$TEACHER" --setup ns --iterations "$NS_ITERATIONS" \
    --labeled data/synth/manifest.csv --unlabeled ../shared/data/songs \
    --unlabeled-manifest data/unlabeled_synth/manifest.csv --run-dir "$NS_RUN_DIR" --mixed-precision bf16 \
    --steps-per-epoch 250 --patience 4 --seed 0 --lr 3e-4 --max-minutes "$MINUTES" $RESUME
FINISHED=$([ -f "$NS_RUN_DIR/iterations.csv" ] && echo $(( $(wc -l < "$NS_RUN_DIR/iterations.csv") - 1 )) || echo 0)
if [ "$FINISHED" -lt "$NS_ITERATIONS" ]; then
    echo "student: $FINISHED of $NS_ITERATIONS iterations finished; rerun this script to continue"
    exit 0
fi
cat "$NS_RUN_DIR/iterations.csv"
# The test sets measure the choice; they do not make it (validation OA does).
echo "done: copy the best.npz of the iteration with the best validation OA above to vocal_melody/weights/melody_crnn.npz"
echo "if it beats the shipped model's validation OA, make its int8 model: $PY scripts/quantize_weights.py"
echo "(calibrated on data/synth's train split), and measure it: $PY bench/accuracy.py --compare-engines"

