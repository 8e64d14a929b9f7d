"""The cepstral stage of the MFCC chain: DCT-II of the log mel energies, then the lifter.

Log mel energies (..., frames, n_mels) in, cepstra (..., frames, n_mfcc) out; the array module
comes from the input.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from audio.backend import Array, array_module
from audio.features.constants import constant, matmul_last

@lru_cache(maxsize=64)
def _dct_matrix_numpy(n_in: int, n_out: int) -> np.ndarray:
    k = np.arange(n_out)[None, :]
    n = np.arange(n_in)[:, None]
    basis = np.sqrt(2.0 / n_in) * np.cos(np.pi * k * (2 * n + 1) / (2 * n_in))
    basis[:, 0] = np.sqrt(1.0 / n_in)  # ortho scaling of the constant term
    basis.setflags(write=False)
    return basis


def dct(x: Array, n_out: int | None = None) -> Array:
    """DCT-II with orthonormal scaling along the last axis, first n_out coefficients.

    y[k] = s_k · Σ_n x[n] · cos(π k (2n + 1) / (2N)), s_0 = sqrt(1/N), s_k = sqrt(2/N):
    scipy.fft.dct(x, type=2, norm="ortho")[..., :n_out], as one matrix product.

    Args:
        x: (..., N), e.g. (frames, n_mels) log energies.
        n_out: coefficients kept (n_mfcc); None keeps N.
    Returns:
        (..., n_out), same module and dtype.
    """
    n_in = x.shape[-1]
    n_out = n_in if n_out is None else int(n_out)
    if not 0 < n_out <= n_in:
        raise ValueError(f"dct: n_out must be between 1 and the input size {n_in}, got {n_out}")
    xp = array_module(x)
    return matmul_last(x, constant(xp, _dct_matrix_numpy, (n_in, n_out), x.dtype))



def lifter(cepstra: Array, lifter: float = 22.0, first_index: int = 0) -> Array:
    """Sinusoidal cepstral lifter: c_n · (1 + (L/2) · sin(π (n + first_index) / L)).

    Args:
        cepstra: (..., frames, n_mfcc).
        lifter: L; 0 returns the cepstra unchanged. 22 is HTK's and python_speech_features'.
        first_index: 0 numbers coefficients from 0 (HTK, python_speech_features, leaves C0);
            1 from 1 (librosa.feature.mfcc's lifter argument).
    Returns:
        (..., frames, n_mfcc), same module and dtype.
    """
    if lifter == 0:
        return cepstra
    if lifter < 0:
        raise ValueError(f"lifter: L must be >= 0 (0 disables it), got {lifter}")
    args = (cepstra.shape[-1], float(lifter), int(first_index))
    return cepstra * constant(array_module(cepstra), _lifter_numpy, args, cepstra.dtype)


@lru_cache(maxsize=64)
def _lifter_numpy(n_mfcc: int, lifter: float, first_index: int) -> np.ndarray:
    n = np.arange(n_mfcc) + first_index
    weights = 1.0 + (lifter / 2.0) * np.sin(np.pi * n / lifter)
    weights.setflags(write=False)
    return weights


__all__ = ["dct", "lifter"]
