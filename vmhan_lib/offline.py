"""Offline defaults for the libraries that would otherwise reach for the network.

Without them transformers retries the hub for ~46 s before failing, and ultralytics tries to
download fonts and weights and writes its settings to the user's home (docs/offline_adaptations.md#offline-variables).
"""

from __future__ import annotations

import os

from vmhan_lib.paths import REPO_ROOT

CACHE_DIR = REPO_ROOT / ".cache"


def offline_defaults() -> dict[str, str]:
    return {
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "HF_HUB_DISABLE_TELEMETRY": "1",
        "YOLO_OFFLINE": "1",
        "YOLO_AUTOINSTALL": "false",
        "YOLO_CONFIG_DIR": str(CACHE_DIR / "ultralytics"),
        "MPLCONFIGDIR": str(CACHE_DIR / "matplotlib"),
        "TORCH_HOME": str(CACHE_DIR / "torch"),
    }


def apply_offline_defaults() -> None:
    """Set each variable of :func:`offline_defaults` unless the user already set it."""
    for name, value in offline_defaults().items():
        os.environ.setdefault(name, value)
