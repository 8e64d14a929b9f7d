"""Spoken-digit accuracy and training time: minidl beside Keras (torch backend), same features.

    python benchmarks/digits.py                        # official split: minidl cnn/lstm/crnn, keras cnn
    python benchmarks/digits.py --split speaker        # cnn, each speaker held out in turn, both libraries
    python benchmarks/digits.py --only minidl:cnn      # one entry
    python benchmarks/digits.py --split speaker --only minidl:crnn --augment   # with augmentation
    python benchmarks/digits.py --split speaker --recipe baseline trim vtlp draws voices specaug --seeds 1 2 3 --jobs 2
                                                       # the ablation: each recipe, each speaker held out
    python benchmarks/digits.py --split speaker --recipe trim draws --library keras --seeds 1 2 3 --jobs 2
                                                       # their Keras anchors (benchmarks/digits_keras.py)
    python benchmarks/digits.py --ensemble voices voices_cmvn --seeds 1 2 3   # the two recipes' models together
    python benchmarks/digits.py --ensemble ensemble --seeds 4 5 6     # the recommended ensemble's members together
    python benchmarks/digits.py --tta trim --seeds 1 2 3    # the trim runs' models, each test recording also
                                                       # heard at speed 0.9 and 1.1 (minidl.apps.tta)
    python benchmarks/digits.py --noise [--model runs/demo]   # examples/digits_noise.py -> results/noise.json
    python benchmarks/digits.py --ctc                  # examples/connected_digits_ctc.py -> results/connected_digits.json

Each training runs in a process of its own (``--worker``), so NumPy's and torch's thread pools
never share one. Both libraries get the same features (minidl.apps.digits: HTK MFCC + deltas,
from the feature cache, standardised by a Normalization layer adapted on the training frames), the same fixed length (98% coverage) for the CNN, the same
architecture, optimiser (Adam 1e-3), batch size, epochs (each model's default: CNN 25, LSTM and
CRNN 15) and 10% validation hold-out. Records go
to benchmarks/results/digits.json, replacing earlier records of the same run.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results" / "digits.json"


def keras_cnn(frames: int, n_features: int, train_frames):
    """minidl.apps.digits.build_cnn, layer for layer, in Keras (its Normalization adapted alike)."""
    import keras  # noqa: PLC0415
    from keras import layers  # noqa: PLC0415
    normalization = layers.Normalization(axis=-1)
    normalization.adapt(train_frames)
    return keras.Sequential([
        keras.Input((frames, n_features)),
        normalization,
        layers.Reshape((frames, n_features, 1)),
        layers.Conv2D(32, (3, 3), padding="same", activation="relu"),
        layers.MaxPooling2D((2, 2)),
        layers.Conv2D(64, (3, 3), padding="same", activation="relu"),
        layers.MaxPooling2D((2, 2)),
        layers.Flatten(),
        layers.Dense(128, activation="relu"),
        layers.Dropout(0.3),
        layers.Dense(10, activation="softmax"),
    ])


def worker(library: str, model: str, split: str, held_out: str | None, epochs: int, seed: int,
           augment: bool = False) -> dict:
    import numpy as np  # noqa: PLC0415
    from _timing import environment  # noqa: PLC0415 (benchmarks/, the script's folder; BLAS kernel, threads, OPENBLAS_*)
    from minidl.apps import digits  # noqa: PLC0415
    from minidl.apps.features import FeatureSettings  # noqa: PLC0415
    settings = digits.TrainSettings(model=model, epochs=epochs, seed=seed, split=split, held_out=held_out,
                                    augment=augment)
    features = FeatureSettings()
    record = {"name": "fsdd_digits", "library": library, "model": model, "split": split, "held_out": held_out,
              "epochs": epochs, "seed": seed, "batch_size": settings.batch_size, "augment": augment}
    if library == "minidl":
        import minidl  # noqa: PLC0415
        metrics = digits.train(settings, ROOT / "runs" / "benchmark" / f"{model}_{split}_{held_out}_{seed}",
                               features=features, verbose=0, progress=False)
        record.update(version=minidl.__version__, test_accuracy=metrics["test_accuracy"],
                      training_seconds=metrics["training_seconds"], parameters=metrics["parameters"],
                      environment=environment())
        return record
    os.environ.setdefault("KERAS_BACKEND", "torch")
    import keras  # noqa: PLC0415
    import torch  # noqa: PLC0415
    if model != "cnn" or augment:
        raise SystemExit("the Keras comparison trains the CNN only, without augmentation")
    train_x, train_y, test_x, test_y, _ = digits.load_data(settings, features, progress=False)
    frames = digits.coverage_length([len(f) for f in train_x])
    x = digits.fixed_length(train_x, frames)
    order = np.random.default_rng(seed).permutation(len(train_y))
    cut = int(0.9 * len(order))
    keras.utils.set_random_seed(seed)
    net = keras_cnn(frames, features.n_features, np.concatenate(train_x)[None])
    net.compile(optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    start = time.perf_counter()
    net.fit(x[order[:cut]], train_y[order[:cut]], epochs=epochs, batch_size=settings.batch_size,
            validation_data=(x[order[cut:]], train_y[order[cut:]]), verbose=0)
    seconds = time.perf_counter() - start
    predicted = net.predict(digits.fixed_length(test_x, frames), verbose=0).argmax(1)
    record.update(version=f"keras {keras.__version__}, torch {torch.__version__}",
                  test_accuracy=float(np.mean(predicted == test_y)), training_seconds=round(seconds, 2),
                  parameters=int(net.count_params()), torch_threads=torch.get_num_threads(),
                  environment=environment())
    return record


def recipe_worker(name: str, split: str, held_out: str | None, seed: int, threads: int) -> dict:
    """One training of a named recipe (minidl.apps.recipes) on one split, as a record; an ensemble
    name trains each of its members, one after the other, as ``minidl-digits train`` does."""
    import minidl  # noqa: PLC0415
    from _timing import environment  # noqa: PLC0415 (benchmarks/, the script's folder)
    from minidl.apps import digits  # noqa: PLC0415
    from minidl.apps.ensemble import train_ensemble  # noqa: PLC0415
    from minidl.apps.recipes import ENSEMBLES, members_of, recipe  # noqa: PLC0415
    out = ROOT / "runs" / "benchmark" / f"recipe_{name}_{split}_{held_out}_{seed}"
    settings, features = recipe(members_of(name)[0], split=split, held_out=held_out, seed=seed)
    start = time.perf_counter()
    if name in ENSEMBLES:
        metrics = train_ensemble(name, out, verbose=0, progress=False, split=split, held_out=held_out, seed=seed)
    else:
        metrics = digits.train(settings, out, features=features, verbose=0, progress=False)
    record = {"name": "fsdd_digits", "library": "minidl", "model": settings.model, "recipe": name, "split": split,
              "held_out": held_out, "epochs": settings.epochs, "seed": seed, "batch_size": settings.batch_size,
              "augment": settings.augment, "version": minidl.__version__,
              "test_accuracy": metrics["test_accuracy"], "training_seconds": metrics["training_seconds"],
              "feature_seconds": metrics["feature_seconds"], "wall_seconds": round(time.perf_counter() - start, 2),
              "parameters": metrics["parameters"], "threads": threads, "load_average": round(os.getloadavg()[0], 2),
              "features": features.to_dict(), "augmentation": settings.augmentation.to_dict(),
              "environment": environment()}
    if name in ENSEMBLES:
        record.update(members=metrics["members"], combine=metrics["combine"])
    return record


def run_recipes(names: list[str], split: str, seeds: list[int], jobs: int) -> None:
    """Every (recipe, seed, held-out speaker) in a process of its own, ``jobs`` at a time, each
    with one thread per job's share of the cores; each record is saved as soon as it is done,
    so an interrupted evaluation keeps what it finished (and re-running replaces those)."""
    from concurrent.futures import ThreadPoolExecutor, as_completed  # noqa: PLC0415
    from audio.fsdd import FSDD  # noqa: PLC0415
    held_outs = FSDD().speakers() if split == "speaker" else [None]
    threads = max(1, (os.cpu_count() or 1) // jobs)
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "OPENBLAS_NUM_THREADS": str(threads),
           "MKL_NUM_THREADS": str(threads)}
    for name in names:
        for seed in seeds:  # one seed's folds together: they share the seed's augmented copies
            commands = [[sys.executable, __file__, "--recipe-worker", name, split, held_out or "-", str(seed),
                         str(threads)] for held_out in held_outs]
            first, rest = commands[0], commands[1:]
            def run(command):
                done = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, env=env)
                if done.returncode != 0:
                    raise RuntimeError(f"{' '.join(command[2:])} failed:\n{done.stderr[-3000:]}")
                return json.loads(done.stdout.strip().splitlines()[-1])
            def report(record):
                save([record])
                print(f"{record['recipe']:9s} {split} {record['held_out'] or '':9s} seed {seed}: "
                      f"{100 * record['test_accuracy']:.2f}% in {record['wall_seconds']:.0f} s", flush=True)
            report(run(first))  # alone first: it builds the seed's augmented copies into the cache
            with ThreadPoolExecutor(jobs) as pool:
                for future in as_completed([pool.submit(run, command) for command in rest]):
                    report(future.result())


def run_keras_recipes(names: list[str], split: str, seeds: list[int], jobs: int, epochs: int | None) -> None:
    """run_recipes for the Keras anchors (benchmarks/digits_keras.py): every (recipe, seed,
    held-out speaker) in a process of its own, ``jobs`` at a time, each record saved when done;
    ``epochs`` replaces the recipes' own (a short trial run)."""
    from concurrent.futures import ThreadPoolExecutor, as_completed  # noqa: PLC0415
    from audio.fsdd import FSDD  # noqa: PLC0415
    held_outs = FSDD().speakers() if split == "speaker" else [None]
    threads = max(1, (os.cpu_count() or 1) // jobs)
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "OPENBLAS_NUM_THREADS": str(threads),
           "MKL_NUM_THREADS": str(threads), "KERAS_BACKEND": "torch"}
    def run(command):
        done = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, env=env)
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(command[2:])} failed:\n{done.stderr[-3000:]}")
        return json.loads(done.stdout.strip().splitlines()[-1])
    for name in names:
        for seed in seeds:
            commands = [[sys.executable, __file__, "--keras-recipe-worker", name, split, held_out or "-", str(seed),
                         str(threads), str(epochs or "-")] for held_out in held_outs]
            def report(record):
                save([record])
                print(f"keras {record['recipe']:9s} {split} {record['held_out'] or '':9s} seed {seed}, "
                      f"{record['epochs']} epochs: {100 * record['test_accuracy']:.2f}% in "
                      f"{record['wall_seconds']:.0f} s", flush=True)
            report(run(commands[0]))  # alone first: it builds the seed's augmented copies if not cached yet
            with ThreadPoolExecutor(jobs) as pool:
                for future in as_completed([pool.submit(run, command) for command in commands[1:]]):
                    report(future.result())


def run_ensemble(names: list[str], seeds: list[int]) -> None:
    """Every held-out-speaker fold of each seed, scored by the ensemble of the models that the runs
    of ``names`` (``--recipe``, same seeds) saved; one record per fold, its recipe "A+B" (or the
    ensemble's name when ``names`` is one name of recipes.ENSEMBLES, which stands for its members)."""
    import minidl  # noqa: PLC0415
    from audio.fsdd import FSDD  # noqa: PLC0415
    import numpy as np  # noqa: PLC0415
    from minidl.apps.ensemble import COMBINE, Ensemble  # noqa: PLC0415
    from minidl.apps.recipes import ENSEMBLES  # noqa: PLC0415
    label = names[0] if len(names) == 1 and names[0] in ENSEMBLES else "+".join(names)
    names = list(ENSEMBLES[names[0]]) if label in ENSEMBLES else names
    fsdd = FSDD()
    for seed in seeds:
        for held_out in fsdd.speakers():
            _, test = fsdd.split("speaker", held_out=held_out)
            folders = [ROOT / "runs" / "benchmark" / f"recipe_{name}_speaker_{held_out}_{seed}" for name in names]
            members = [json.loads((folder / "metrics.json").read_text()) for folder in folders]
            ensemble = Ensemble([folder / "model.npz" for folder in folders])
            predicted = ensemble.recording_probabilities(fsdd, test, progress=False).argmax(axis=1)
            accuracy = float(np.mean(predicted == np.array([r.digit for r in test])))
            models = [m["model"] for m in members]  # "crnn", or "crnn+gapcnn" where the members differ
            record = {"name": "fsdd_digits", "library": "minidl",
                      "model": models[0] if len(set(models)) == 1 else "+".join(models),
                      "recipe": label, "split": "speaker", "held_out": held_out, "combine": COMBINE,
                      "epochs": members[0]["settings"]["epochs"], "seed": seed, "version": minidl.__version__,
                      "test_accuracy": accuracy, "members": {n: m["test_accuracy"] for n, m in zip(names, members)},
                      "training_seconds": round(sum(m["training_seconds"] for m in members), 2)}
            save([record])
            print(f"{record['recipe']} speaker {held_out:9s} seed {seed}: {100 * accuracy:.2f}% "
                  f"(members {', '.join(f'{100 * a:.1f}%' for a in record['members'].values())})", flush=True)


def run_tta(name: str, seeds: list[int]) -> None:
    """Every held-out-speaker fold of each seed, scored with test-time augmentation
    (minidl.apps.tta: the clean recording and its speed-0.9 and 1.1 versions, their
    log-probabilities averaged) by the model the ``--recipe name`` run of that seed saved; one
    record per fold, its recipe "name+tta", the same model's plain accuracy beside it."""
    import minidl  # noqa: PLC0415
    from audio.fsdd import FSDD  # noqa: PLC0415
    import numpy as np  # noqa: PLC0415
    from minidl.apps import digits, tta  # noqa: PLC0415
    from minidl.apps.ensemble import COMBINE  # noqa: PLC0415
    fsdd = FSDD()
    for seed in seeds:
        for held_out in fsdd.speakers():
            _, test = fsdd.split("speaker", held_out=held_out)
            digit = np.array([r.digit for r in test])
            folder = ROOT / "runs" / "benchmark" / f"recipe_{name}_speaker_{held_out}_{seed}"
            trained = json.loads((folder / "metrics.json").read_text())
            versions = tta.version_probabilities(digits.Recogniser(folder / "model.npz"), fsdd, test,
                                                 tta.SPEEDS, progress=False)
            alone = {f"{factor:g}": float(np.mean(p.argmax(axis=1) == digit))   # each version on its own
                     for factor, p in zip(tta.SPEEDS, versions)}
            if alone["1"] != trained["test_accuracy"]:
                raise RuntimeError(f"{folder}: the clean recordings score {alone['1']}, but the run measured "
                                   f"{trained['test_accuracy']}: the model or the features changed since")
            accuracy = float(np.mean(tta.combine_versions(versions).argmax(axis=1) == digit))
            record = {"name": "fsdd_digits", "library": "minidl", "model": trained["model"],
                      "recipe": f"{name}+tta", "split": "speaker", "held_out": held_out, "combine": COMBINE,
                      "speeds": list(tta.SPEEDS), "epochs": trained["settings"]["epochs"], "seed": seed,
                      "version": minidl.__version__, "test_accuracy": accuracy,
                      "plain_accuracy": trained["test_accuracy"], "version_accuracies": alone,
                      "training_seconds": trained["training_seconds"]}
            save([record])
            print(f"{record['recipe']} speaker {held_out:9s} seed {seed}: {100 * accuracy:.2f}% (plain "
                  f"{100 * record['plain_accuracy']:.2f}%; alone at speed "
                  f"{', '.join(f'{k}: {100 * a:.1f}%' for k, a in alone.items())})", flush=True)


def run_in_subprocess(library, model, split, held_out, epochs, seed, augment=False) -> dict:
    command = [sys.executable, __file__, "--worker", library, model, split, held_out or "-", str(epochs), str(seed),
               "augment" if augment else "plain"]
    done = subprocess.run(command, capture_output=True, text=True, cwd=ROOT)
    if done.returncode != 0:
        raise RuntimeError(f"{library} {model} {split} {held_out} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def save(records: list[dict]) -> None:
    old = json.loads(RESULTS.read_text()) if RESULTS.is_file() else []
    key = lambda r: (r["library"], r["model"], r["split"], r["held_out"], r["seed"], r["epochs"],  # noqa: E731
                     r.get("augment", False), r.get("recipe"))
    fresh = {key(r) for r in records}
    merged = [r for r in old if key(r) not in fresh] + records
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(merged, indent=1))


def run_example(script: str, out: Path, *options: str) -> None:
    """Run one example in a process of its own; its own JSON lands in ``out``."""
    done = subprocess.run([sys.executable, str(ROOT / "examples" / script), "--out", str(out), *options],
                          capture_output=True, text=True, cwd=ROOT)
    if done.returncode != 0:
        raise RuntimeError(f"{script} failed:\n{done.stderr[-3000:]}")
    print(done.stdout.strip())


def noise(model: str | None = None) -> None:
    out = ROOT / "runs" / "benchmark" / "noise"
    run_example("digits_noise.py", out, "--verbose", "0", *(["--model", model] if model else []))
    (RESULTS.parent / "noise.json").write_text(json.dumps([json.loads((out / "noise.json").read_text())], indent=1))


def ctc() -> None:
    out = ROOT / "runs" / "benchmark" / "connected_digits_ctc"
    run_example("connected_digits_ctc.py", out)
    metrics = json.loads((out / "metrics.json").read_text())
    test = metrics["test"]
    record = {"name": "connected_digits_ctc", "library": "minidl", "split": metrics.get("split"),
              "greedy_wer": test["greedy"]["wer"], "greedy_sequence_accuracy": test["greedy"]["sequence_accuracy"],
              "beam_wer": test["beam"]["wer"], "beam_sequence_accuracy": test["beam"]["sequence_accuracy"],
              "beam_width": test.get("beam_width"), "test_utterances": test.get("utterances"),
              "test_digits": test.get("digits"), "epochs": metrics["epochs"],
              "training_seconds": metrics["training_seconds"], "parameters": metrics.get("parameters")}
    (RESULTS.parent / "connected_digits.json").write_text(json.dumps([record], indent=1))


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--noise", action="store_true", help="run the noise-robustness story instead")
    parser.add_argument("--ctc", action="store_true", help="run the connected-digit CTC story instead")
    parser.add_argument("--model", default=None,
                        help="with --noise: a saved model or ensemble folder (e.g. runs/demo) tested beside the CNNs")
    parser.add_argument("--split", choices=("official", "speaker"), default="official")
    parser.add_argument("--epochs", type=int, default=None, help="default: each model's, digits.DEFAULT_EPOCHS")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--only", nargs="*", default=None, help="library:model entries, e.g. keras:cnn")
    parser.add_argument("--augment", action="store_true", help="train minidl with noisy, speed-perturbed copies")
    parser.add_argument("--recipe", nargs="+", default=None,
                        help="named recipes of minidl.apps.recipes (the CRNN), instead of --only")
    parser.add_argument("--library", choices=("minidl", "keras"), default="minidl",
                        help="with --recipe: train the recipes in minidl, or their Keras anchors (same data, "
                             "batches and CRNN; benchmarks/digits_keras.py; --epochs replaces the recipes' epochs)")
    parser.add_argument("--jobs", type=int, default=1, help="recipe trainings at a time (threads split between them)")
    parser.add_argument("--ensemble", nargs="+", default=None,
                        help="recipes whose saved held-out-speaker models (--recipe runs, same seeds) are "
                             "scored together, by their mean probabilities")
    parser.add_argument("--tta", default=None, metavar="RECIPE",
                        help="score the recipe's saved held-out-speaker models (--recipe runs, same seeds) with "
                             "test-time augmentation: each recording clean and at speed 0.9 and 1.1")
    args = parser.parse_args(argv)
    if args.tta:
        return run_tta(args.tta, args.seeds)
    if args.ensemble:
        return run_ensemble(args.ensemble, args.seeds)
    if args.recipe and args.library == "keras":
        return run_keras_recipes(args.recipe, args.split, args.seeds, args.jobs, args.epochs)
    if args.recipe:
        return run_recipes(args.recipe, args.split, args.seeds, args.jobs)
    if args.noise:
        return noise(args.model)
    if args.ctc:
        return ctc()
    if args.split == "official":
        entries = [("minidl", "cnn"), ("keras", "cnn"), ("minidl", "lstm"), ("minidl", "crnn")]
        held_outs = [None]
    else:
        from audio.fsdd import FSDD  # noqa: PLC0415
        entries = [("minidl", "cnn"), ("keras", "cnn")]
        held_outs = FSDD().speakers()
    if args.only:
        entries = [tuple(item.split(":")) for item in args.only]
    for seed in args.seeds:
        for library, model in entries:
            for held_out in held_outs:
                from minidl.apps.digits import DEFAULT_EPOCHS  # noqa: PLC0415
                epochs = args.epochs or DEFAULT_EPOCHS[model]
                record = run_in_subprocess(library, model, args.split, held_out, epochs, seed, args.augment)
                save([record])
                print(f"{library:7s} {model:5s} {args.split} {held_out or '':9s} seed {seed}"
                      f"{' augmented' if args.augment else ''}: "
                      f"{100 * record['test_accuracy']:.2f}% in {record['training_seconds']:.0f} s", flush=True)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--recipe-worker":
        name, split, held_out, seed, threads = sys.argv[2:7]
        print(json.dumps(recipe_worker(name, split, None if held_out == "-" else held_out, int(seed), int(threads))))
    elif len(sys.argv) > 1 and sys.argv[1] == "--keras-recipe-worker":
        from digits_keras import keras_recipe_worker  # benchmarks/ is the script's folder, first on sys.path
        name, split, held_out, seed, threads, epochs = sys.argv[2:8]
        print(json.dumps(keras_recipe_worker(name, split, None if held_out == "-" else held_out, int(seed),
                                             int(threads), None if epochs == "-" else int(epochs))))
    elif len(sys.argv) > 1 and sys.argv[1] == "--worker":
        library, model, split, held_out, epochs, seed, augment = sys.argv[2:9]
        print(json.dumps(worker(library, model, split, None if held_out == "-" else held_out, int(epochs), int(seed),
                                augment == "augment")))
    else:
        main()
