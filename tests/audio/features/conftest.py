"""The reference fixtures (tests/reference/fixtures/audio_mfcc.npz), loaded once per module."""

from __future__ import annotations

import pytest

from tests.audio._helpers import fixture_arrays


@pytest.fixture(scope="module")
def reference():
    return fixture_arrays()
