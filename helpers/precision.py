"""Arithmetic precision of the model's forward and backward passes: ``fp32`` (the book's recorded numbers) or
``bf16`` (bfloat16 matrix products through ``torch.autocast``; measured in ``benchmarks/precision.py``).

bf16 keeps fp32's exponent range with an 8-bit mantissa, so sums stay finite and the matrix products that
dominate a transformer run on the bf16 units of recent CPUs (AVX-512 BF16, AMX) and GPUs. Everything a
number is *checked* against stays fp32: the completeness gap compares the bf16 attributions with f(X) - f(X')
computed in fp32, so the stated gap includes the rounding (the book's Eq. eq-ig-norm).

Where the hardware has no bf16 units, torch emulates bf16 in software: correct but slower. :func:`hardware`
says which units it found; :func:`resolve` turns ``"auto"`` into ``bf16`` only where they exist.
"""
from __future__ import annotations

import contextlib
import os
import platform
from functools import lru_cache
from pathlib import Path

import torch

__all__ = ["PRECISIONS", "ENV", "BOOK", "DEFAULT", "check_precision", "autocast", "hardware", "resolve"]

PRECISIONS = ("fp32", "bf16")
#: The environment variable that sets the default arithmetic of every computation the chapters run (training,
#: IG, SHAP, word pairs, ``Encoder.encode``, the sweep): ``fp32`` or ``bf16``. Unset: :data:`BOOK`.
ENV = "SENTENCE_PRECISION"
#: The book's own default: the precision its recorded numbers were made with.
BOOK = "fp32"
#: CPU flags (Linux /proc/cpuinfo) of units that compute bf16 products natively.
BF16_CPU_FLAGS = ("amx_bf16", "avx512_bf16")


def check_precision(precision: str, allow_auto: bool = False) -> str:
    """``precision`` checked: one of :data:`PRECISIONS` (and ``"auto"`` where allowed), else an error naming it."""
    allowed = PRECISIONS + (("auto",) if allow_auto else ())
    if precision not in allowed:
        hint = " (torch's names: 'float32' is 'fp32', 'bfloat16' is 'bf16')" if precision in (
            "float32", "bfloat16", "float16", "fp16", "half") else ""
        raise ValueError(f"precision must be one of {allowed}, got {precision!r}{hint}.")
    return precision


def autocast(precision: str, device=None):
    """A context in which the model computes in ``precision``: nothing for fp32, ``torch.autocast`` to bfloat16
    for bf16 (matrix products in bf16, reductions and norms in fp32, as torch's autocast lists decide)."""
    check_precision(precision)
    if precision == "fp32":
        return contextlib.nullcontext()
    kind = torch.device(device).type if device is not None else "cpu"
    return torch.autocast(kind if kind in ("cpu", "cuda") else "cpu", dtype=torch.bfloat16)


@lru_cache(maxsize=4)
def hardware(device: str = "cpu") -> dict:
    """What computes bf16 here: ``device``, ``units`` (the CPU flags of :data:`BF16_CPU_FLAGS` found, or
    ``cuda`` for a GPU that supports bf16), ``native`` (True when bf16 products run on such units, False when
    torch would emulate them) and ``cpu`` (the processor's name)."""
    name = platform.processor() or platform.machine()
    flags: set = set()
    info = Path("/proc/cpuinfo")
    if info.is_file():
        for line in info.read_text(errors="replace").splitlines():
            if line.startswith("flags"):
                flags = set(line.split(":", 1)[1].split())
            elif line.startswith("model name") and name in ("", platform.machine()):
                name = line.split(":", 1)[1].strip()
    if torch.device(device).type == "cuda":
        native = torch.cuda.is_available() and torch.cuda.is_bf16_supported()
        return {"device": device, "units": ["cuda"] if native else [], "native": bool(native),
                "cpu": name, "gpu": torch.cuda.get_device_name() if torch.cuda.is_available() else None}
    units = [f for f in BF16_CPU_FLAGS if f in flags]
    return {"device": device, "units": units, "native": bool(units), "cpu": name, "gpu": None}


def resolve(precision: str, device=None) -> str:
    """``precision`` with ``"auto"`` resolved: bf16 where :func:`hardware` finds native bf16 units, else fp32."""
    check_precision(precision, allow_auto=True)
    if precision != "auto":
        return precision
    kind = torch.device(device).type if device is not None else "cpu"
    return "bf16" if hardware(kind).get("native") else "fp32"


def _default() -> str:
    value = os.environ.get(ENV, "").strip() or BOOK
    if value not in PRECISIONS + ("auto",):
        raise ValueError(f"${ENV}={value!r}: set it to one of {PRECISIONS + ('auto',)} (or unset it for the "
                         f"book's {BOOK!r}).")
    return resolve(value)


#: The default ``precision`` of the functions that run a model, read once at import: ``$SENTENCE_PRECISION``
#: (``auto``: bf16 where :func:`hardware` finds native bf16 units, else fp32; the lab path's setting), else
#: :data:`BOOK`. An explicit ``precision=`` argument always wins.
DEFAULT = _default()
