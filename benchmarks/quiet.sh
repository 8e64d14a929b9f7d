#!/usr/bin/env bash
# The speed records of the README, rerun in one go on a quiet machine (nothing else running):
# conv.py, recurrent.py, ctc.py (each library's default threads) and steady.py, then summary.py,
# which rewrites the README's results section from benchmarks/results/*.json.
#
#     bash benchmarks/quiet.sh              # from the repository root; about 8 minutes on 2 cores
#     PYTHON=.venv/bin/python bash benchmarks/quiet.sh
#
# Rounds and repeats are chosen so that the whole script stays within 12 minutes on this
# project's 2-core machines (each worker process pays its library's import: Keras with the torch
# backend about 10 s, torch 3 s, minidl 1 s; Keras' LSTM over 1,000 steps about 25 s a step),
# while every record still has at least 3 interleaved rounds and 40 repeats for its minimum and
# median. Each benchmark writes its JSON only when it has finished, so a cut-off run leaves the
# previous record in place; the per-benchmark limits below keep the total bounded.
set -u
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python}
export KERAS_BACKEND=torch
start=$SECONDS

load=$(cut -d' ' -f1 /proc/loadavg 2>/dev/null || echo "?")
echo "1-minute load average before the run: $load (the records are meant for a quiet machine)"

run() {  # run LIMIT_SECONDS COMMAND...: one benchmark, timed, cut off at its limit
    local limit=$1; shift
    local begun=$SECONDS
    echo "== $* (limit ${limit} s)"
    if ! timeout "$limit" "$PYTHON" "$@"; then
        echo "!! $* failed or passed ${limit} s; its previous record is kept" >&2
    fi
    echo "   took $((SECONDS - begun)) s (total $((SECONDS - start)) s)"
}

# 2 models x 3 libraries x 4 rounds = 24 processes, 25 timed steps each: 100 per record
run 240 benchmarks/conv.py --rounds 4 --repeats 25
# lstm and gru: 3 libraries x 4 rounds, 12 steps each (48 per record); lstm_1000: one process
# per library, 1 warm-up + 2 timed steps (its record is mostly about memory)
run 270 benchmarks/recurrent.py --rounds 4 --repeats 12 --long-repeats 2
# 2 libraries x 5 rounds x 40 steps (200 per record)
run 60 benchmarks/ctc.py --rounds 5 --repeats 40
# 4 configurations x 3 rounds x 30 steps (90 per record)
run 90 benchmarks/steady.py --rounds 3 --repeats 30
run 30 benchmarks/summary.py

echo "quiet.sh: done in $((SECONDS - start)) s; commit benchmarks/results/*.json and README.md"
