"""audio.datasets: an alias only; every name is the very object of audio.fsdd or audio.cache."""

from __future__ import annotations

from audio import cache, connected_digits, datasets, fsdd


def test_every_name_is_the_new_modules_object():
    for name in datasets.__all__:
        home = next(m for m in (fsdd, cache, connected_digits) if hasattr(m, name))
        assert getattr(datasets, name) is getattr(home, name), name
    assert {"FSDD", "Recording", "cached_features", "locate_fsdd"} <= set(datasets.__all__)
