"""``torch.backends.cpu`` on the shim: ``get_cpu_capability()``."""
from __future__ import annotations

import platform

from shim.torch._unsupported import module_getattr as _module_getattr

__all__ = ["get_cpu_capability"]


def get_cpu_capability() -> str:
    """The widest SIMD level the host CPU reports, in torch's spelling ("AVX512", "AVX2", "DEFAULT"; "NEON"/"SVE256"
    on Arm): read from the CPU flags (``/proc/cpuinfo`` on Linux)."""
    machine = platform.machine().lower()
    flags = set()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith(("flags", "Features")):
                    flags = set(line.split(":", 1)[1].split())
                    break
    except OSError:
        pass
    if machine in ("aarch64", "arm64"):
        return "SVE256" if "sve" in flags else "NEON"
    if {"avx512f", "avx512bw", "avx512vl", "avx512dq"} <= flags:
        return "AVX512"
    if "avx2" in flags:
        return "AVX2"
    return "DEFAULT"


__getattr__ = _module_getattr("torch.backends.cpu")
