"""Which floating-point precision a network serves in on this CPU."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Literal

import torch

from convlens.app.config import Precision

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16}


@cache
def cpu_has_native_bf16() -> bool:
    """Whether the CPU multiplies bfloat16 in hardware (AVX512-BF16 or AMX). Elsewhere
    bfloat16 is emulated and slower than float32, so "auto" keeps float32 there."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return any(f in flags.split() for f in ("avx512_bf16", "amx_bf16"))


def resolve_precision(choice: Precision) -> Literal["float32", "bfloat16"]:
    if choice == "auto":
        return "bfloat16" if cpu_has_native_bf16() else "float32"
    return choice


def serving_dtype(choice: Precision) -> torch.dtype:
    return DTYPES[resolve_precision(choice)]
