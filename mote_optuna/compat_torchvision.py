"""The private torchvision APIs mote_optuna relies on (see ``compat``; tests/test_compat.py)."""

from __future__ import annotations

from typing import Any

from torchvision.models.mobilenetv3 import _make_divisible, _mobilenet_v3_conf

__all__ = ["make_divisible", "mobilenet_v3_large_blocks"]


def make_divisible(value: float, divisor: int) -> int:
    """torchvision's rounding of a channel count to a multiple of ``divisor``."""
    return int(_make_divisible(value, divisor))


def mobilenet_v3_large_blocks() -> tuple[list[Any], int]:
    """torchvision's MobileNetV3-Large block table and last channel count."""
    setting, last_channel = _mobilenet_v3_conf("mobilenet_v3_large")
    return list(setting), int(last_channel)
