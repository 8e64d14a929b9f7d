"""benchmarks/summary.py: a recipe's Keras anchor gets an ablation row of its own, below the recipe's."""
from __future__ import annotations

from benchmarks import summary


def fold(recipe, library, held_out, accuracy, **extra):
    return {"name": "fsdd_digits", "library": library, "model": "crnn", "recipe": recipe, "split": "speaker",
            "held_out": held_out, "seed": 1, "epochs": 15, "test_accuracy": accuracy, **extra}


def test_keras_anchor_rows_are_their_own_and_sit_below_their_recipe(monkeypatch):
    rows = [fold("trim", "keras", s, 0.5) for s in ("ann", "ben")]
    rows += [fold("draws", "minidl", s, 0.9) for s in ("ann", "ben")]
    rows += [fold("trim", "minidl", s, 0.8) for s in ("ann", "ben")]
    rows += [fold("trim", "keras", s, 0.1, epochs=2, epochs_override=True) for s in ("ann", "ben")]
    monkeypatch.setattr(summary, "records", lambda name: rows if name == "digits" else [])
    table = [line for line in summary.ablation_section() if line.startswith("| ") and "%" in line]
    assert [line.split(" | ")[0] for line in table] == ["| trim", "| trim (keras)", "| trim (keras, 2 epochs)",
                                                        "| draws"]
    assert table[0].split(" | ")[2].startswith("80.0%")
    assert table[1].split(" | ")[2].startswith("50.0%")
    assert table[2].split(" | ")[2].startswith("10.0%")


def test_every_recipe_has_its_place_and_the_levers_follow_the_chain_in_their_order():
    from minidl.apps.recipes import CHAIN, FEATURE_LEVERS, LEVERS, MODEL_LEVERS, RECIPES
    assert set(RECIPES) <= set(summary.RECIPE_ORDER)
    order = summary.RECIPE_ORDER
    positions = [order.index(name) for name in LEVERS]
    assert positions == sorted(positions) and min(positions) > max(order.index(name) for name in CHAIN)
    assert set(MODEL_LEVERS) | set(FEATURE_LEVERS) <= set(LEVERS)
