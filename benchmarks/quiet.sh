#!/usr/bin/env bash
# The speed records of the README, rerun in one go on a quiet machine (nothing else running):
# blas_kernel.py, then engine.py, conv.py, recurrent.py, ctc.py (each library's default
# threads) and steady.py, then summary.py, which rewrites the README's results section from
# benchmarks/results/*.json.
#
#     bash benchmarks/quiet.sh              # from the repository root; 5-6 minutes on 2 cores
#     PYTHON=/path/to/python bash benchmarks/quiet.sh   # default: .venv/bin/python if there is one
#     KEEP_OPENBLAS_ENV=1 bash benchmarks/quiet.sh      # time with OPENBLAS_CORETYPE/L2_SIZE as set
#                                                       # (0 or empty: unset them, the default)
#
# OPENBLAS_CORETYPE makes NumPy's OpenBLAS run the kernels of the core it names instead of the
# ones it picks for the CPU (some of these machines set it to Haswell on CPUs with AVX-512, which
# costs minidl's steps 1.2-1.4x: blas_kernel.json). blas_kernel.py measures that first, and the
# other records are then timed without OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE, as OpenBLAS runs
# on a machine that does not set them; each record keeps the environment it ran with.
#
# Rounds and repeats are chosen so that the whole script stays within 15 minutes on this
# project's 2-core machines: most of the time is imports, one per worker process (CPU seconds
# measured here: Keras with the torch backend 12.6 s, torch 4.6 s, minidl 1.0 s), and Keras'
# LSTM over 1,000 steps (25 s a step in recurrent.json). Estimated: 40 s for blas_kernel.py,
# 25 s for engine.py, 150 s for conv.py, 330 s for recurrent.py, 30 s for ctc.py, 40 s for
# steady.py; two runs on 2026-12-03 took 312 and 348 s (without engine.py), as the Keras LSTM
# over 1,000 steps ran 22-31 s, not the estimate's. Every record keeps at least 3 interleaved
# rounds and 40 repeats for its minimum and median (lstm_1000: 2 repeats, a memory record).
# The limits below (940 s in all) bound the total: conv.py, ctc.py and steady.py write their
# JSON only at the end, so a cut-off run keeps the previous record; recurrent.py rewrites its
# file after each model, so a cut-off there leaves a file without the models not yet run.
set -u
cd "$(dirname "$0")/.."
# the project's virtual environment unless told otherwise (the workers run under the same Python)
if [ -z "${PYTHON:-}" ]; then
    if [ -x .venv/bin/python ]; then PYTHON=.venv/bin/python; else PYTHON=python; fi
fi
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

# 3 settings x 3 measurements x 5 rounds = 45 processes, minidl only (about 40 s)
run 120 benchmarks/blas_kernel.py --rounds 5 --repeats 20
if [ "${KEEP_OPENBLAS_ENV:-0}" = 0 ]; then
    for name in OPENBLAS_CORETYPE OPENBLAS_L2_SIZE; do
        if [ -n "${!name:-}" ]; then echo "unsetting $name=${!name} for the records below"; unset "$name"; fi
    done
fi
# 4 ops and the MLP step, 3 libraries, one process each (about 25 s)
run 60 benchmarks/engine.py
# 2 models x 3 libraries x 4 rounds = 24 processes, 25 timed steps each: 100 per record
run 220 benchmarks/conv.py --rounds 4 --repeats 25
# lstm and gru: 3 libraries x 3 rounds, 16 steps each (48 per record); lstm_1000: one process
# per library, 1 warm-up + 2 timed steps (its record is mostly about memory). 300 s was too short
# for all of it (the lstm_1000 record dropped out on 2026-12-01): Keras alone takes about 90 s there
run 380 benchmarks/recurrent.py --rounds 3 --repeats 16 --long-repeats 2
# 2 libraries x 5 rounds x 40 steps (200 per record)
run 60 benchmarks/ctc.py --rounds 5 --repeats 40
# 4 configurations x 3 rounds x 30 steps (90 per record)
run 80 benchmarks/steady.py --rounds 3 --repeats 30
run 20 benchmarks/summary.py

echo "quiet.sh: done in $((SECONDS - start)) s; commit benchmarks/results/*.json and README.md"
