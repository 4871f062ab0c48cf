#!/usr/bin/env bash
# Transformer core speed (no HTTP): random-weight Llama models of llama2.c's stories15M
# (and, with BENCH_SHAPES="15M 110M", stories110M) shape, in llama2.c model.bin and HF
# safetensors (F32, and F16 for comparison) form, timed by bench/generate/tf_bench.c:
# single-stream greedy decode tokens/s, a 128-token prefill, and 8 sequences decoded in one
# batched step (aggregate tokens/s).
#
#   bench/generate/run.sh
#   BENCH_THREADS=2 BENCH_SHAPES="15M 110M" BENCH_REPS=3 bench/generate/run.sh
#
# Side by side with llama2.c: build its run.c yourself (it is not part of modeld; e.g.
# `gcc -Ofast -fopenmp -march=native run.c -lm -o run` in a folder of your own) and set
# LLAMA2C_RUN=/path/to/run; this script then runs it on the same model.bin
# (OMP_NUM_THREADS=BENCH_THREADS, temperature 0, 256 steps, with a dummy tokenizer.bin that
# make_model.py writes) alternately with tf_bench, and reports both.
set -euo pipefail
cd "$(dirname "$0")/../.."
BENCH_TAG=generate
BENCH_STOP_VARS=""
. bench/lib.sh

THREADS=${BENCH_THREADS:-2}
SHAPES=${BENCH_SHAPES:-15M}
REPS=${BENCH_REPS:-3}
PY=/usr/bin/python3

bench_tmp modeld-bench-generate
make -s all
cc -std=c11 -D_GNU_SOURCE -O2 -g -Wall -Wextra -Werror -I. -o "$TMP/tf_bench" bench/generate/tf_bench.c \
    build/release/libmodeld.a -lpthread -lm

for shape in $SHAPES; do
    log "making random $shape model"
    $PY bench/generate/make_model.py "$TMP/$shape" --shape "$shape" --tokenizer-bin
    $PY bench/generate/make_model.py "$TMP/$shape-f16" --shape "$shape" --dtype f16
    rm -f "$TMP/$shape-f16/model.bin"
    for rep in $(seq "$REPS"); do
        log "$shape round $rep"
        "$TMP/tf_bench" "$TMP/$shape/model.bin" --threads "$THREADS" --reps 1 | sed "s/^/$shape model.bin: /"
        "$TMP/tf_bench" "$TMP/$shape" --threads "$THREADS" --reps 1 | sed "s/^/$shape safetensors-f32: /"
        "$TMP/tf_bench" "$TMP/$shape-f16" --threads "$THREADS" --reps 1 | sed "s/^/$shape safetensors-f16: /"
        if [ -n "${LLAMA2C_RUN:-}" ]; then
            OMP_NUM_THREADS=$THREADS timeout 300 "$LLAMA2C_RUN" "$TMP/$shape/model.bin" \
                -z "$TMP/$shape/tokenizer.bin" -t 0 -n 256 2>&1 >/dev/null | grep -o 'achieved tok/s: .*' \
                | sed "s/^/$shape llama2.c run.c: /"
        fi
    done
done
