#!/usr/bin/env bash
# Transformer core speed (no HTTP): random-weight Llama models of llama2.c's stories15M
# (and, with BENCH_SHAPES="15M 110M", stories110M) shape, in llama2.c model.bin and HF
# safetensors (F32, and F16 for comparison) form, and model.bin quantized at load to q8_0
# (the model setting "weights": "q8_0"), timed by bench/generate/tf_bench.c: single-stream
# greedy decode tokens/s, a 128-token prefill, and 8 sequences decoded in one batched step
# (aggregate tokens/s).
#
#   bench/generate/run.sh
#   BENCH_THREADS=2 BENCH_SHAPES="15M 110M" BENCH_REPS=3 bench/generate/run.sh
#
# Side by side with llama2.c: build its run.c and runq.c yourself (they are not part of
# modeld; e.g. `gcc -Ofast -fopenmp -march=native run.c -lm -o run` and the same for runq
# in a folder of your own) and set LLAMA2C_RUN=/path/to/run and/or LLAMA2C_RUNQ=/path/to/runq;
# this script then runs run.c on the same model.bin and runq.c on model_q80.bin (the same
# weights in llama2.c's int8 "version 2" checkpoint, written by make_model.py --q80), at
# OMP_NUM_THREADS=BENCH_THREADS, temperature 0, 256 steps, with a dummy tokenizer.bin,
# alternately with tf_bench in every round, and prints the load average before each round
# (the machine may be shared). Each program gets BENCH_TIMEOUT seconds (default 300);
# BENCH_TF_ARGS passes options to tf_bench (e.g. "--batch 0 --prompt 0": decode only).
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

TIMEOUT=${BENCH_TIMEOUT:-300}
llama2c() { # binary checkpoint label
    OMP_NUM_THREADS=$THREADS timeout "$TIMEOUT" "$1" "$2" -z "$TMP/$shape/tokenizer.bin" -t 0 -n 256 \
        2>&1 >/dev/null | grep -o 'achieved tok/s: .*' | sed "s/^/$shape $3: /" || echo "$shape $3: failed or timed out"
}
modeld() { # model label [tf_bench options]
    local model=$1 label=$2
    shift 2
    # shellcheck disable=SC2086
    timeout "$TIMEOUT" "$TMP/tf_bench" "$model" --threads "$THREADS" --reps 1 ${BENCH_TF_ARGS:-} "$@" \
        | sed "s/^/$shape $label: /" \
        || echo "$shape $label: failed or timed out"
}

for shape in $SHAPES; do
    log "making random $shape model"
    $PY bench/generate/make_model.py "$TMP/$shape" --shape "$shape" --tokenizer-bin --q80
    $PY bench/generate/make_model.py "$TMP/$shape-f16" --shape "$shape" --dtype f16
    rm -f "$TMP/$shape-f16/model.bin"
    for rep in $(seq "$REPS"); do
        log "$shape round $rep, load average $(cut -d' ' -f1-3 /proc/loadavg)"
        echo "$shape round $rep: load average $(cut -d' ' -f1-3 /proc/loadavg)"
        [ -z "${LLAMA2C_RUN:-}" ] || llama2c "$LLAMA2C_RUN" "$TMP/$shape/model.bin" "llama2.c run.c"
        modeld "$TMP/$shape/model.bin" model.bin
        [ -z "${LLAMA2C_RUNQ:-}" ] || llama2c "$LLAMA2C_RUNQ" "$TMP/$shape/model_q80.bin" "llama2.c runq.c"
        modeld "$TMP/$shape/model.bin" model.bin-q8_0 --weights q8_0
        modeld "$TMP/$shape" safetensors-f32
        modeld "$TMP/$shape-f16" safetensors-f16
    done
done
