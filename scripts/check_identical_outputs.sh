#!/usr/bin/env bash
# Extraction outputs of this checkout against those of another commit, byte for byte, on the demo song and the
# benchmark sets' audio (data/bench, built by bench/accuracy.py): a refactoring must not change a melody.
#   bash scripts/check_identical_outputs.sh COMMIT [OUT]      # OUT: default runs/identical
set -euo pipefail
cd "$(dirname "$0")/.."
HERE=$PWD
COMMIT=${1:?usage: check_identical_outputs.sh COMMIT [OUT]}
OUT=$HERE/${2:-runs/identical}
PY=${PY:-$HERE/.venv/bin/python}
mkdir -p "$OUT"
{ echo audio/demo_song.wav
  find data/bench/anasyn data/bench/instrumental data/bench/mir1k data/bench/real data/bench/ssvd \
       data/bench/straight data/bench/synth/test data/bench/synth_music/test \
       \( -name '*.flac' -o -name '*.wav' \) 2>/dev/null | grep -v '_vocal\.wav$' | sort
} > "$OUT/inputs.txt" || true  # without data/bench (find and grep fail): the demo song alone
OLD=$OUT/checkout
[ -d "$OLD" ] || git worktree add -q --detach "$OLD" "$COMMIT"
git -C "$OLD" checkout -q --detach "$COMMIT"
for side in old new; do
    checkout=$([ $side = old ] && echo "$OLD" || echo "$HERE")
    rm -rf "${OUT:?}/$side"
    # one call per folder (files of two folders may share a name), from the checkout's own package
    for folder in $(xargs -n1 dirname < "$OUT/inputs.txt" | sort -u); do
        grep "^$folder/[^/]*$" "$OUT/inputs.txt" | sed "s#^#$HERE/#" > "$OUT/folder.txt"
        (cd "$checkout" && PYTHONPATH="$checkout" xargs "$PY" melodyExtraction_NS.py -q \
            -o "$OUT/$side/$(echo "$folder" | tr '/' '_')" -p < "$OUT/folder.txt")
    done
done
if diff -r "$OUT/old" "$OUT/new" > "$OUT/diff.txt"; then
    echo "identical: $(find "$OUT/new" -type f | wc -l) melody files from $(wc -l < "$OUT/inputs.txt") inputs" \
         "($COMMIT against this checkout)"
else
    echo "DIFFERENT ($COMMIT against this checkout): $OUT/diff.txt"
    exit 1
fi
