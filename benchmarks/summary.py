"""Write the README's results section from the benchmark JSON (benchmarks/results/*.json).

    python benchmarks/summary.py            # rewrites the part of README.md between the results markers
    python benchmarks/summary.py --print    # prints it instead

Every figure in the section comes from a record in benchmarks/results/, produced by the
benchmark named beside its table; nothing here is typed in by hand.
"""
from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
README = ROOT / "README.md"
BEGIN, END = "<!-- results:begin -->", "<!-- results:end -->"


def records(name: str) -> list[dict]:
    path = RESULTS / f"{name}.json"
    if not path.is_file():
        return []
    data = json.loads(path.read_text())
    return data.get("records", [data]) if isinstance(data, dict) else data


def pick(rows: list[dict], **match) -> dict | None:
    """The last record matching every key (later runs are appended after earlier ones)."""
    found = [r for r in rows if all(str(r.get(k)) == str(v) for k, v in match.items())]
    return found[-1] if found else None


def ms(seconds) -> str:
    if seconds is None:
        return "–"
    return f"{seconds * 1e6:.1f} µs" if seconds < 1e-3 else f"{seconds * 1e3:.1f} ms" if seconds < 1 else f"{seconds:.1f} s"


def pct(value) -> str:
    return "–" if value is None else f"{100 * value:.1f}%"


def digits_section() -> list[str]:
    rows = records("digits")
    if not rows:
        return []
    out = ["### Spoken digits (FSDD)", "",
           "`python benchmarks/digits.py` (official split) and `python benchmarks/digits.py --split speaker` "
           "→ `benchmarks/results/digits.json`. Same features (HTK MFCC + deltas, standardised), same "
           "architecture, Adam 1e-3, batch 32, 25 epochs for the CNN and 15 for the others; each training in its own process on 2 CPU cores.", "",
           "| model | library | split | test accuracy | training time |", "|---|---|---|---|---|"]
    for r in rows:
        if r["split"] == "official" and (not r.get("augment") or r.get("recipe")):
            label = f"{r['model']}, recipe {r['recipe']}" if r.get("recipe") else r["model"]
            out.append(f"| {label} | {r['library']} | official (300 test files) | {pct(r['test_accuracy'])} | "
                       f"{r['training_seconds']:.0f} s |")
    speaker = [r for r in rows if r["split"] == "speaker" and not r.get("recipe")]
    runs: dict[tuple, dict] = {}  # (model, library, augment) -> held-out speaker -> accuracy of each seed
    for r in speaker:
        runs.setdefault((r["model"], r["library"], bool(r.get("augment"))), {}).setdefault(
            r["held_out"], {})[r["seed"]] = r["test_accuracy"]
    groups = {group: {name: statistics.mean(seeds.values()) for name, seeds in by_speaker.items()}
              for group, by_speaker in runs.items()}
    for (model, library, augment), accuracies in groups.items():
        worst = min(accuracies, key=accuracies.get)
        label = f"{model}{' + augmentation' if augment else ''}"
        seeds = max(len(s) for s in runs[(model, library, augment)].values())
        over = f", mean of {seeds} seeds" if seeds > 1 else ""
        out.append(f"| {label} | {library} | each speaker held out in turn ({len(accuracies)}{over}) | mean "
                   f"{pct(statistics.mean(accuracies.values()))}, worst {pct(accuracies[worst])} ({worst}) | "
                   f"see below |")
    out.append("")
    if speaker:
        names = sorted({r["held_out"] for r in speaker})
        out += ["Held-out speaker, test accuracy, the mean over seeds where there are several (some of these "
                "runs shared the machine with other work, so their training times are not reported):", "",
                "| model | library | " + " | ".join(names) + " |", "|---" * (len(names) + 2) + "|"]
        for (model, library, augment), accuracies in groups.items():
            label = f"{model}{' + augmentation' if augment else ''}"
            out.append(f"| {label} | {library} | " + " | ".join(pct(accuracies.get(n)) for n in names) + " |")
        out.append("")
    return out


RECIPE_ORDER = ("baseline", "trim", "vtlp", "draws", "voices", "specaug",   # minidl.apps.recipes.CHAIN
                "voices_cmvn", "voices+voices_cmvn", "ensemble", "trim+trim_gap",
                "trim_speed", "trim_noise", "trim_ko", "trim_pitch", "trim_gain",  # recipes.LEVERS
                "trim_reverb", "trim_colour", "trim_band", "trim_channel", "trim_gap",
                "trim_logmel",   # recipes.MODEL_LEVERS, recipes.FEATURE_LEVERS
                "trim+tta")   # trim's models with test-time augmentation (minidl.apps.tta)
#: seeds that chose the recipes (and report the ablation), and the fresh ones that report the choice
SEED_BLOCKS = (("1-3", (1, 2, 3)), ("4-6", (4, 5, 6)))


def recipe_label(record: dict) -> str:
    """The ablation row of a recipe record: its recipe, "trim (keras)" for a Keras anchor
    (benchmarks/digits_keras.py), and the epochs where a run replaced the recipe's own."""
    notes = ([record["library"]] if record.get("library", "minidl") != "minidl" else []) + (
        [f"{record['epochs']} epochs"] if record.get("epochs_override") else [])
    return f"{record['recipe']} ({', '.join(notes)})" if notes else record["recipe"]


def ablation_section() -> list[str]:
    """What each ingredient of the recipe buys on unheard speakers: one row per recipe and block of
    seeds, the chain on seeds 1-3, the recommended ensemble and its members again on fresh seeds 4-6."""
    rows = [r for r in records("digits") if r.get("recipe") and r["split"] == "speaker"]
    if not rows:
        return []
    by_recipe: dict[str, dict[int, dict[str, float]]] = {}   # recipe -> seed -> speaker -> accuracy
    for r in rows:
        by_recipe.setdefault(recipe_label(r), {}).setdefault(r["seed"], {})[r["held_out"]] = r["test_accuracy"]
    speakers = sorted({r["held_out"] for r in rows})
    out = ["#### What each ingredient buys on unheard speakers", "",
           "`python benchmarks/digits.py --split speaker --recipe baseline trim vtlp draws voices specaug voices_cmvn "
           "--seeds 1 2 3 --jobs 2`, then `--ensemble voices voices_cmvn --seeds 1 2 3` and `--ensemble ensemble "
           "--seeds 1 2 3`; the recommended recipe again on fresh seeds: `--recipe voices voices_cmvn trim --seeds "
           "4 5 6` and `--ensemble ensemble --seeds 4 5 6` → `benchmarks/results/digits.json`. The CRNN; each "
           "recipe of the chain adds one ingredient to the one above it (`minidl/apps/recipes.py`); every speaker "
           "is held out in turn. Seeds 1-3 chose the ensemble (seed 0 chose the chain), so its 1-3 row flatters "
           "it; the rows of seeds 4-6 were run after the choice and report it. Mean: over folds and seeds, with the lowest "
           "and highest seed's mean beside it; worst: the worst speaker's mean over seeds. Two trainings ran at a "
           "time, one thread each. Rows below the chain are not steps of it: `voices_cmvn` is `voices` with "
           "per-utterance CMVN, `A+B` and `ensemble` (voices + voices_cmvn + trim, the recommended recipe) score "
           "the models of their members' runs of the same seed and fold together by the mean of their "
           "log-probabilities (`minidl/apps/ensemble.py`). A row \"R (keras)\" is R's Keras anchor: the same data, "
           "batches, CRNN and schedule trained by Keras 3 on torch (`--recipe R --library keras`, "
           "`benchmarks/digits_keras.py`). The rows `trim_*` (`recipes.LEVERS`, `--recipe trim_speed trim_noise "
           "trim_ko trim_pitch trim_gain trim_reverb trim_colour trim_band trim_channel trim_gap trim_logmel --seeds "
           "1 2 3`) are `trim` with one lever changed: speed "
           "perturbation alone, noise alone, Ko et al.'s fixed speed factors, a pitch shift in place of the speed "
           "change, a random gain, a synthetic room, noise of three colours, a band-pass channel (edges drawn in "
           "100-400 Hz and 2.5-3.8 kHz: a telephone line, a cheap microphone), and `trim_channel` the room, band-pass "
           "and gain together; `trim_gap` (`recipes.MODEL_LEVERS`) is `trim` trained by the GAP-CNN (two Conv1D, then "
           "each filter's maximum over the clip's real frames: where the word sits cannot matter) in place of the "
           "CRNN; `trim_logmel` (`recipes.FEATURE_LEVERS`) is `trim` on the 26 log mel energies (+ deltas) in place of "
           "the 13 MFCCs; `trim+tta` scores trim's own models with test-time augmentation (`--tta trim --seeds 1 2 3`: "
           "each recording also at speeds 0.9 and 1.1, the log-probabilities averaged, `minidl/apps/tta.py`), and "
           "`trim+trim_gap` their two models as an ensemble (`--ensemble trim trim_gap --seeds 1 2 3`); compare them "
           "with `trim` 1-3.", "",
           "| recipe | seeds | mean (seed range) | worst speaker | " + " | ".join(speakers) + " |",
           "|---" * (4 + len(speakers)) + "|"]
    def order(label: str) -> tuple[int, bool]:  # the chain's order; a recipe's Keras anchor right below it
        recipe = label.split(" (")[0]
        return (RECIPE_ORDER.index(recipe) if recipe in RECIPE_ORDER else 99, label != recipe)
    for block, block_seeds in SEED_BLOCKS:
        for name in sorted(by_recipe, key=order):
            seeds = {seed: folds for seed, folds in by_recipe[name].items()
                     if seed in block_seeds and len(folds) == len(speakers)}
            if not seeds:
                continue  # no seed of this block with every fold yet
            per_speaker = {n: statistics.mean(folds[n] for folds in seeds.values()) for n in speakers}
            seed_means = [statistics.mean(folds.values()) for folds in seeds.values()]
            worst = min(per_speaker, key=per_speaker.get)
            label = block if len(seeds) == len(block_seeds) else ", ".join(map(str, sorted(seeds)))
            out.append(f"| {name} | {label} | {pct(statistics.mean(seed_means))} "
                       f"({pct(min(seed_means))}-{pct(max(seed_means))}) | {pct(per_speaker[worst])} ({worst}) | "
                       + " | ".join(pct(per_speaker[n]) for n in speakers) + " |")
    return out + [""]


def noise_section() -> list[str]:
    rows = records("noise")
    if not rows:
        return []
    table = rows[-1]["conditions"]
    snrs = [("clean" if p["clean"] else f"{p['snr_db']} dB") for p in next(iter(table.values()))]
    out = ["### Noise", "", "`python benchmarks/digits.py --noise` (runs `examples/digits_noise.py`) → "
           "`benchmarks/results/noise.json`: the CNN on the 300 official test files with white noise added.", "",
           "| trained / test-time processing | " + " | ".join(snrs) + " |", "|---" * (len(snrs) + 1) + "|"]
    for name, points in table.items():
        out.append(f"| {name} | " + " | ".join(pct(p["accuracy"]) for p in points) + " |")
    return out + [""]


def ctc_section() -> list[str]:
    rows = records("connected_digits")
    if not rows:
        return []
    r = rows[-1]
    return ["### Connected digits (CTC)", "",
            "`python benchmarks/digits.py --ctc` (runs `examples/connected_digits_ctc.py`) → "
            "`benchmarks/results/connected_digits.json`: strings of 2-7 digits from the official test takes.", "",
            "| decoder | digit error rate | strings entirely right |", "|---|---|---|",
            f"| greedy | {pct(r['greedy_wer'])} | {pct(r['greedy_sequence_accuracy'])} |",
            f"| beam search ({r.get('beam_width', 8)}) | {pct(r['beam_wer'])} | {pct(r['beam_sequence_accuracy'])} |",
            "", f"Training: {r['epochs']} epochs, {r['training_seconds']:.0f} s on 2 CPU cores.", ""]


SPEED = [  # (file, record name, extra match, what)
    ("engine", "op/add", {}, "one add, forward + backward (4×4)"),
    ("engine", "mlp_step", {}, "MLP 784-256-256-10 step, batch 128, Adam"),
    ("conv", "conv/cnn2d", {}, "CNN step (2 conv blocks), batch 32 of 40×40×1"),
    ("conv", "conv/conv1d", {}, "Conv1D(64, 5) step, (32, 50, 13)"),
    ("recurrent", "recurrent/lstm", {}, "LSTM(128) step, (32, 50, 13)"),
    ("recurrent", "recurrent/gru", {}, "GRU(128) step, (32, 50, 13)"),
    ("recurrent", "recurrent/lstm_1000", {}, "LSTM(128) step over 1,000 steps, (32, 1000, 13)"),
    ("ctc", "ctc_loss_forward_backward", {"dtype": "float32"}, "CTC loss fwd + bwd, 32×200×11"),
]


def environment_lines() -> list[str]:
    """One sentence on what the speed runs computed with, from the records' ``environment``."""
    files = [name for name in ("engine", "conv", "recurrent", "ctc")
             if any(isinstance(r.get("environment"), dict) for r in records(name))]
    rows = [r for name in files for r in records(name) if isinstance(r.get("environment"), dict)]
    if not rows:
        return []
    blas = next((r["environment"]["blas"] for r in rows if r.get("library") == "minidl"
                 and isinstance(r["environment"].get("blas"), list) and r["environment"]["blas"]), None)
    torch = next((r["environment"]["torch"] for r in rows if r.get("library") == "torch" and r["environment"].get("torch")), None)
    loads = [x for r in rows for x in r.get("load_averages", [])] or [r["environment"]["load_average"][0] for r in rows]
    given = sorted({f"{k}={r['environment']['env'][k]}" for r in rows if r.get("library") == "minidl"
                    for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE") if r["environment"]["env"].get(k)})
    parts = []
    if blas:
        b = blas[0]
        parts.append(f"NumPy ran {b['internal_api']} {b['version']} ({b['architecture']} kernel, "
                     f"{b['num_threads']} {b['threading_layer']} threads)")
    if torch:
        parts.append(f"PyTorch {torch['num_threads']} {torch['backend']} threads")
    text = "; ".join(parts) + ("; OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE were not set in minidl's processes"
                                if not given else f"; minidl's processes ran with {', '.join(given)}")
    return ["", f"In {', '.join(f'`{name}.json`' for name in files)}: {text}. 1-minute load average as the processes ended: {min(loads):.1f} to {max(loads):.1f} "
                "(2 cores; other work shared the machine)."]


BLAS_ROWS = (("lstm_step_product", "GEMM (512, 142)·(142, 32), the LSTM step's"),
             ("lstm_weight_gradient", "GEMM (142, 1600)·(1600, 512), the LSTM's ∂Θ"),
             ("cnn_conv2_forward", "GEMM (8192, 289)·(289, 64), the CNN's second conv"),
             ("cnn_step", "minidl's CNN step (conv.py's)"), ("lstm_step", "minidl's LSTM(128) step (recurrent.py's)"))


def blas_kernel_lines() -> list[str]:
    """A table from blas_kernel.json: minidl's GEMMs and steps with and without the OPENBLAS_*
    variables the machine sets."""
    rows = [r for r in records("blas_kernel") if r.get("results")]
    if not rows:
        return []
    command = "`python benchmarks/blas_kernel.py` (`blas_kernel.json`)"
    if len(rows) == 1:
        return ["", f"{command}: OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE were not set on its machine, so there "
                    f"was no other setting to compare (OpenBLAS ran its {rows[0]['kernel']} kernel)."]
    # the kernel's cost is the first setting against the one without OPENBLAS_CORETYPE alone
    first = rows[0]
    last = next((r for r in rows[1:] if r["setting"] == "OPENBLAS_CORETYPE unset"), rows[-1])
    given = ", ".join(f"{k}={v}" for k, v in first["env"].items() if v)
    where = ", ".join(x for x in (first.get("cpu"), first.get("date")) if x)
    out = ["", f"What the OPENBLAS_* variables cost, {command}: the same work in processes that differ only in them, "
               f"taking turns ({first['rounds']} rounds; separate processes from the table above, so its steps differ "
               f"from the table's by the machine's drift); its machine{f' ({where})' if where else ''} sets {given}. "
               "Each cell is min / median.", "",
           "| what | " + " | ".join(f"{r['setting']} ({r['kernel']} kernel)" for r in rows)
           + f" | {first['setting']} / {last['setting']}, min |", "|---" * (len(rows) + 2) + "|"]
    for name, label in BLAS_ROWS:
        cells = [r["results"].get(name) for r in rows]
        if not all(cells):
            continue
        ratio = cells[0]["min_seconds"] / last["results"][name]["min_seconds"]
        out.append(f"| {label} | " + " | ".join(f"{ms(c['min_seconds'])} / {ms(c['median_seconds'])}" for c in cells)
                   + f" | {ratio:.2f}× |")
    return out


def peak_rss(record: dict | None) -> str:
    """The peak RSS of a record's process in MiB (its library's import included), or –."""
    if not record:
        return "–"
    if record.get("peak_rss_bytes"):
        return f"{record['peak_rss_bytes'] / 2**20:,.0f} MiB"
    return f"{record['peak_rss_mb']:,.0f} MiB" if record.get("peak_rss_mb") else "–"


def speed_section() -> list[str]:
    out = ["### Speed (CPU, 2 cores)", "",
           "Each library in its own process, same machine, same run, rounds interleaved. These machines are "
           "shared, and a median moves with whatever else runs; the best of many repeats is the figure least "
           "disturbed by other load, so the headline ratio is minimum over minimum, with the median ratio "
           "beside it. Commands: `python benchmarks/engine.py`, `conv.py`, `recurrent.py`, `ctc.py` (then "
           "this script); `bash benchmarks/quiet.sh` reruns `blas_kernel.py`, then `engine.py`, `conv.py`, "
           "`recurrent.py`, `ctc.py` (each library's default threads) and `steady.py` without OPENBLAS_CORETYPE "
           "and OPENBLAS_L2_SIZE (below), then this script, on a machine with nothing else running (5-6 minutes "
           "on 2 cores, at most 16). Peak RSS is each process's, the library's "
           "import included (minidl's alone is about 45 MiB, PyTorch's over 200 MiB).", "",
           "| what | minidl min / median | PyTorch min / median | Keras (torch backend) min / median "
           "| minidl / PyTorch, min (median) | peak RSS, minidl / PyTorch |", "|---|---|---|---|---|---|"]
    for file, name, match, what in SPEED:
        rows = records(file)
        got = {lib: pick(rows, name=name, library=lib, **match) for lib in ("minidl", "torch", "keras")}
        if not got["minidl"]:
            continue
        low = {lib: (r or {}).get("min_seconds") for lib, r in got.items()}
        mid = {lib: (r or {}).get("median_seconds") for lib, r in got.items()}
        both = {lib: f"{ms(low[lib])} / {ms(mid[lib])}" if mid[lib] else "–" for lib in got}
        ratio = (f"{low['minidl'] / low['torch']:.2f}× ({mid['minidl'] / mid['torch']:.2f}×)"
                 if low["minidl"] and low["torch"] and mid["torch"] else "–")
        threads = got["minidl"].get("threads")
        label = what if threads in (None, "default") else f"{what} ({threads} thread{'s' if str(threads) != '1' else ''} each)"
        rss = " / ".join(peak_rss(got[lib]) for lib in ("minidl", "torch"))
        out.append(f"| {label} | {both['minidl']} | {both['torch']} | {both['keras']} | {ratio} | {rss} |")
    out += environment_lines()
    out += blas_kernel_lines()
    long = {lib: pick(records("recurrent"), name="recurrent/lstm_1000", library=lib) for lib in ("minidl", "torch", "keras")}
    if all(r and r.get("peak_rss_bytes") for r in long.values()):
        mib = {lib: f"{r['peak_rss_bytes'] / 2**20:,.0f} MiB" for lib, r in long.items()}
        out += ["", f"Peak memory of the process (RSS) training the LSTM over 1,000 steps: minidl {mib['minidl']}, "
                    f"PyTorch {mib['torch']}, Keras {mib['keras']} (each includes its library's own import)."]
    mfcc = records("mfcc")
    if mfcc:
        rate = {r["name"]: r.get("files_per_second") for r in mfcc}
        out += ["", "MFCC over the 3,000 FSDD files, decoding excluded (`python benchmarks/mfcc.py`):", "",
                "| | files per second |", "|---|---|"]
        for name, label in (("audio_htk_per_file", "minidl `audio`, HTK preset, per file"),
                            ("audio_htk_batched", "minidl `audio`, HTK preset, batched"),
                            ("python_speech_features", "python_speech_features"),
                            ("audio_librosa_per_file", "minidl `audio`, librosa preset, per file"),
                            ("librosa", "librosa")):
            if rate.get(name):
                out.append(f"| {label} | {rate[name]:,.0f} |")
    return out + [""]


def section() -> str:
    lines = [BEGIN, "## Results", "",
             "Generated by `python benchmarks/summary.py` from `benchmarks/results/*.json`; every "
             "figure was measured on this project's 2-core CPU machines.", ""]
    lines += digits_section() + ablation_section() + noise_section() + ctc_section() + speed_section()
    lines.append(END)
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--print", action="store_true")
    args = parser.parse_args()
    text = section()
    if args.print:
        print(text)
        return
    readme = README.read_text()
    start, end = readme.index(BEGIN), readme.index(END) + len(END)
    README.write_text(readme[:start] + text + readme[end:])
    print(f"updated {README}")


if __name__ == "__main__":
    main()
