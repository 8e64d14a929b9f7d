"""The old home of FSDD and the feature cache, kept as an alias: import audio.fsdd and
audio.cache instead.

Every name that lived here is the same object as in its new module, so ``isinstance`` and
identity hold; to replace one in a test (monkeypatch), patch the new module, where the code
that calls it looks it up.
"""

from audio.cache import cache_root, cached_features, feature_cache_key
from audio.connected_digits import ConnectedDigits
from audio.fsdd import (FSDD, FSDD_COMMIT, FSDD_SAMPLE_RATE, FSDD_SHA256SUMS, FSDD_URL, Recording,
                        download_fsdd, locate_fsdd, read_checksums, sha256_of)

__all__ = ["FSDD", "FSDD_COMMIT", "FSDD_SAMPLE_RATE", "FSDD_SHA256SUMS", "FSDD_URL",
           "ConnectedDigits", "Recording", "cache_root", "cached_features", "download_fsdd",
           "feature_cache_key", "locate_fsdd", "read_checksums", "sha256_of"]
