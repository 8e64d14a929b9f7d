"""Several digit models as one: the geometric mean of their probabilities.

Models trained alike but not identically (another normalisation of the same features, other
training voices, another schedule) make different mistakes on a voice none of them has heard,
so their combined opinion is right more often than any one of them; Dietterich (2000,
"Ensemble methods in machine learning") gives the reasons. Each member reads a recording
through its own feature settings (its model file carries them), so members need not share a
front end beyond the MFCCs themselves (or the log mels: every member reads the same kind, since
a stream computes one):

    signal ─member 1's features─► model 1 ─► log p1 ─┐
    signal ─member 2's features─► model 2 ─► log p2 ─┼─ mean ─► softmax ─► argmax ─► digit
    signal ─member 3's features─► model 3 ─► log p3 ─┘

The mean of log-probabilities (a product of experts, renormalised) rather than of probabilities:
a member that is sure a digit is wrong vetoes it. On the held-out-speaker folds of seeds 1-3 it
scored 0.4-0.6 points above the plain mean for every pair and trio of the recipes' models.

On disk an ensemble is a folder: ``ensemble.json`` (task, combine rule, member files relative to
the folder) beside ``members/<recipe>/model.npz``, each an ordinary digit model that ``predict``
can also read alone. The manifest is plain JSON and names files inside its own folder only.
"""
from __future__ import annotations

import json
import pathlib
import time

import numpy as np

import audio
from minidl.apps import digits
from minidl.apps.features import FeatureSettings
from minidl.apps.plots import plot_confusion
from minidl.apps.recipes import members_of, recipe
from minidl.atomic_write import atomic_write_text

MANIFEST = "ensemble.json"
TASK = "fsdd-digits-ensemble"
COMBINE = "mean_log_probability"


class Ensemble:
    """Several saved digit models heard together: ``Ensemble([path_a, path_b]).classify(signal)``.

    It answers like ``digits.Recogniser`` (classify, predict_file, signal_probabilities,
    mfcc_probabilities, recording_probabilities, labels, features), so predict, evaluate and
    stream take either.

    Raises:
        ValueError: fewer than two paths, or members whose labels, sample rate, MFCCs or features
            kind ("mfcc", "logmel") differ.
        As Recogniser for each member file.
    """

    def __init__(self, paths: list[str | pathlib.Path]):
        paths = list(paths)
        if len(paths) < 2:
            raise ValueError(f"Ensemble: needs at least two model files, got {len(paths)}")
        self.members = [digits.Recogniser(path) for path in paths]
        first = self.members[0]
        self.labels = first.labels
        for member in self.members[1:]:
            if member.labels != self.labels:
                raise ValueError(f"Ensemble: {member.path} has labels {member.labels}, {first.path} has {self.labels}")
            ours = (member.features.sample_rate, member.features.preset, member.features.n_mfcc)
            theirs = (first.features.sample_rate, first.features.preset, first.features.n_mfcc)
            if ours != theirs:
                raise ValueError(f"Ensemble: {member.path} reads (sample rate, preset, n_mfcc) {ours}, "
                                 f"{first.path} reads {theirs}; members must start from the same MFCCs")
            if member.features.kind != first.features.kind:
                # a stream computes one kind of frame and hands it to every member (mfcc_probabilities)
                raise ValueError(f"Ensemble: {member.path} reads features of kind {member.features.kind!r}, "
                                 f"{first.path} of kind {first.features.kind!r}; members must share the kind "
                                 f"(a stream computes one)")
        # what every member starts from: the rate to decode at and the frames a stream computes
        self.features = FeatureSettings(sample_rate=first.features.sample_rate, preset=first.features.preset,
                                        n_mfcc=first.features.n_mfcc, kind=first.features.kind)

    @staticmethod
    def combine(member_probabilities: list[np.ndarray]) -> np.ndarray:
        """softmax(mean_m log p_m): (n, labels) from each member's (n, labels) probabilities."""
        log_mean = np.mean([np.log(np.maximum(p, 1e-12)) for p in member_probabilities], axis=0)
        log_mean -= log_mean.max(axis=-1, keepdims=True)
        p = np.exp(log_mean)
        return p / p.sum(axis=-1, keepdims=True)

    def signal_probabilities(self, signals: list[np.ndarray]) -> np.ndarray:
        """(n, labels) for n signals at the members' sample rate."""
        return self.combine([m.signal_probabilities(signals) for m in self.members])

    def mfcc_probabilities(self, mfccs: list[np.ndarray]) -> np.ndarray:
        """(n, labels) for n utterances' (frames, n_mfcc) MFCCs, or log mels for members of
        features kind "logmel" (a stream's segments)."""
        return self.combine([m.mfcc_probabilities(mfccs) for m in self.members])

    def recording_probabilities(self, fsdd, recordings: list, progress: bool = True) -> np.ndarray:
        """(n, labels) for n recordings of ``fsdd``, their MFCCs from its feature cache."""
        return self.combine([m.recording_probabilities(fsdd, recordings, progress) for m in self.members])

    def classify(self, signal: np.ndarray) -> tuple[str, float]:
        """(label, combined probability) for one signal."""
        p = self.signal_probabilities([signal])[0]
        return self.labels[int(p.argmax())], float(p.max())

    def predict_file(self, path, max_seconds: float | None = digits.MAX_PREDICT_SECONDS) -> dict:
        """{path, digit, probability} for one audio file, as Recogniser.predict_file."""
        signal, _ = audio.load(path, sample_rate=self.features.sample_rate, max_seconds=max_seconds)
        label, probability = self.classify(signal)
        return {"path": str(path), "digit": label, "probability": round(probability, 4)}

    @classmethod
    def load(cls, folder: str | pathlib.Path) -> "Ensemble":
        """The ensemble a folder's ensemble.json describes (or that file itself).

        Raises:
            FileNotFoundError: no manifest there.
            ValueError: a manifest that is not JSON, of another task or combine rule, or that
                names a member outside its folder.
        """
        manifest = pathlib.Path(folder)
        manifest = manifest / MANIFEST if manifest.is_dir() else manifest
        try:
            spec = json.loads(manifest.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as error:
            raise ValueError(f"{manifest}: not an ensemble manifest (JSON): {error}") from None
        if not isinstance(spec, dict) or spec.get("task") != TASK:
            task = spec.get("task") if isinstance(spec, dict) else type(spec).__name__
            raise ValueError(f"{manifest}: expected task {TASK!r}, got {task!r}")
        if spec.get("combine") != COMBINE:
            raise ValueError(f"{manifest}: expected combine {COMBINE!r}, got {spec.get('combine')!r}")
        files = spec.get("members")
        if not isinstance(files, list) or not all(isinstance(f, str) for f in files):
            raise ValueError(f"{manifest}: 'members' must be a list of file names, got {files!r}")
        root = manifest.parent.resolve()
        paths = []
        for name in files:
            path = (root / name).resolve()
            if pathlib.PurePath(name).is_absolute() or root not in path.parents:
                raise ValueError(f"{manifest}: member {name!r} is outside the ensemble's folder {root}")
            paths.append(path)
        return cls(paths)


def is_ensemble(path: str | pathlib.Path) -> bool:
    """True for an ensemble folder (it holds ensemble.json) or an ensemble.json itself."""
    path = pathlib.Path(path)
    return (path / MANIFEST).is_file() if path.is_dir() else path.name == MANIFEST


def load_recogniser(path: str | pathlib.Path) -> "digits.Recogniser | Ensemble":
    """An Ensemble for an ensemble folder or manifest; a Recogniser for a model file (or a run
    folder holding model.npz). Errors as Ensemble.load and Recogniser."""
    path = pathlib.Path(path)
    if is_ensemble(path):
        return Ensemble.load(path)
    if path.is_dir() and (path / "model.npz").is_file():
        return digits.Recogniser(path / "model.npz")
    return digits.Recogniser(path)


def write_manifest(out: pathlib.Path, member_files: list[str]) -> None:
    """out/ensemble.json naming ``member_files`` (relative to ``out``), written atomically."""
    spec = {"task": TASK, "combine": COMBINE, "members": member_files}
    atomic_write_text(out / MANIFEST, json.dumps(spec, indent=1) + "\n")


def train_ensemble(name: str, out: str | pathlib.Path, fsdd=None, verbose: int = 1, progress: bool = True,
                   **overrides) -> dict:
    """Train each member recipe of ``name`` (recipes.ENSEMBLES) into out/members/<recipe>/, write
    out/ensemble.json, score the ensemble on the test side and write out/metrics.json and
    out/confusion.png.

    Args:
        overrides: TrainSettings fields for every member (split, held_out, seed, epochs, ...).
    Returns:
        The metrics: the ensemble's test accuracy, per-class scores and confusion matrix, each
        member's test accuracy, and the members' training and feature seconds summed.
    """
    out = pathlib.Path(out)
    fsdd = fsdd or audio.fsdd.FSDD()
    member_metrics = {}
    start = time.perf_counter()
    for member in members_of(name):
        settings, features = recipe(member, **overrides)
        if verbose:
            print(f"ensemble {name}: member {member} ({settings.model}, {settings.epochs} epochs)", flush=True)
        member_metrics[member] = digits.train(settings, out / "members" / member, features=features, fsdd=fsdd,
                                              verbose=verbose, progress=progress)
    wall_seconds = time.perf_counter() - start
    write_manifest(out, [f"members/{member}/model.npz" for member in member_metrics])
    first = next(iter(member_metrics.values()))
    _, test = fsdd.split(first["split"], held_out=first["held_out"])
    p = Ensemble.load(out).recording_probabilities(fsdd, test, progress)
    report = digits.classification_report(np.array([r.digit for r in test]), p)
    metrics = {"model": "ensemble", "recipe": name, "split": first["split"], "held_out": first["held_out"],
               "test_accuracy": report["accuracy"],
               "members": {member: m["test_accuracy"] for member, m in member_metrics.items()},
               "per_class": {"precision": report["precision"], "recall": report["recall"]},
               "confusion_matrix": report["confusion_matrix"], "combine": COMBINE,
               "training_seconds": round(sum(m["training_seconds"] for m in member_metrics.values()), 2),
               "feature_seconds": round(sum(m["feature_seconds"] for m in member_metrics.values()), 2),
               "wall_seconds": round(wall_seconds, 2),
               "parameters": sum(m["parameters"] for m in member_metrics.values()), "versions": digits.versions()}
    atomic_write_text(out / "metrics.json", json.dumps(metrics, indent=1))
    title = f"ensemble {name}, {metrics['split']} split" + (f", {metrics['held_out']} held out"
                                                             if metrics["held_out"] else "")
    plot_confusion(np.array(report["confusion_matrix"]), digits.LABELS, out / "confusion.png",
                   f"{title}: {100 * metrics['test_accuracy']:.1f}% correct")
    return metrics


__all__ = ["COMBINE", "Ensemble", "MANIFEST", "TASK", "is_ensemble", "load_recogniser", "train_ensemble",
           "write_manifest"]
