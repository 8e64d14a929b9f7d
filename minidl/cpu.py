"""What the CPU can do, as NumPy sees it, and whether OpenBLAS was told to do less.

OpenBLAS chooses its kernels for the CPU when NumPy is imported, unless ``OPENBLAS_CORETYPE``
names a core: then it runs that core's kernels whatever the CPU is. Some machines set it to
``Haswell`` (AVX2) on CPUs with AVX-512: on an AMD EPYC, NumPy's GEMMs then took 1.5-2.0x as
long as with OpenBLAS's own choice, and minidl's CNN and LSTM training steps 1.2-1.4x, in four
runs of ``benchmarks/blas_kernel.py`` (the last: benchmarks/results/blas_kernel.json). OpenBLAS
reads it once, as NumPy is imported, so minidl cannot undo it in a running process;
``coretype_note`` says so, in words, for the command line to print.
"""
from __future__ import annotations

import os
from collections.abc import Mapping

# OpenBLAS's names (case-insensitive) of the x86-64 cores it has kernels for (driver/others/
# dynamic.c), and of those whose kernels use AVX-512. A name it does not know is ignored:
# OpenBLAS 0.3.31 then picks its own kernels, as without the variable.
X86_CORES = frozenset({"katmai", "coppermine", "northwood", "prescott", "banias", "atom", "core2", "penryn",
                       "dunnington", "nehalem", "athlon", "opteron", "opteron_sse3", "barcelona", "nano",
                       "sandybridge", "bobcat", "bulldozer", "piledriver", "haswell", "steamroller", "excavator",
                       "zen", "skylakex", "cooperlake", "sapphirerapids"})
AVX512_CORES = frozenset({"skylakex", "cooperlake", "sapphirerapids"})


def cpu_features() -> dict[str, bool]:
    """NumPy's CPU-dispatch table: feature name ("AVX2", "AVX512F", "AVX512_SKX", ...) -> whether
    this CPU has it; empty where this NumPy does not expose it."""
    try:
        from numpy._core._multiarray_umath import __cpu_features__  # noqa: PLC0415
    except ImportError:  # NumPy 1.x keeps it in numpy.core
        try:
            from numpy.core._multiarray_umath import __cpu_features__  # noqa: PLC0415
        except ImportError:
            return {}
    return dict(__cpu_features__)


def coretype_note(environ: Mapping[str, str] | None = None,
                  features: Mapping[str, bool] | None = None) -> str | None:
    """A sentence for the user when OPENBLAS_CORETYPE chooses NumPy's BLAS kernels, else None.

    Args:
        environ: the environment to read (default: os.environ).
        features: CPU features as ``cpu_features`` returns them (default: this CPU's).
    Returns:
        None when OPENBLAS_CORETYPE is unset or empty; otherwise a sentence naming it, and,
        where it names a core without AVX-512 on a CPU that has it, what that costs.

    The environment is read when called; OpenBLAS read it when NumPy was imported, which is the
    same in any process that does not change it in between.
    """
    environ = os.environ if environ is None else environ
    core = (environ.get("OPENBLAS_CORETYPE") or "").strip()
    if not core:
        return None
    features = cpu_features() if features is None else features
    if features.get("SSE2") and core.lower() not in X86_CORES:  # an x86-64 CPU, a name OpenBLAS ignores
        return (f"OPENBLAS_CORETYPE={core} is set, but names no core OpenBLAS has kernels for; "
                "OpenBLAS then picks its own, as without it.")
    if features.get("AVX512F") and core.lower() not in AVX512_CORES:
        return (f"OPENBLAS_CORETYPE={core} is set: NumPy's OpenBLAS runs the {core} kernels, without "
                "AVX-512, on a CPU that has it (on one such machine matrix products took 1.5-2.0x "
                "as long, and training steps 1.2-1.4x: benchmarks/blas_kernel.py). Unset it before "
                "Python starts (env -u OPENBLAS_CORETYPE ...) for full speed.")
    return (f"OPENBLAS_CORETYPE={core} is set: NumPy's OpenBLAS runs the {core} kernels rather "
            "than the ones it would choose for this CPU.")
