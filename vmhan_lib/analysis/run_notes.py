"""What the tables' notes say of each run: its feature fallbacks, and the settings in which it differs
from its profile's (before, a run retrained with another learning rate showed as the default row)."""

from __future__ import annotations

from dataclasses import asdict, replace
from typing import Any

import pandas as pd

from vmhan_lib.config import ENCODER_VARIANT, preset
from vmhan_lib.features.build import describe_fallbacks, feature_key
from vmhan_lib.identity import upgrade
from vmhan_lib.model.variants import FULL_MODEL, VARIANTS, variant_config
from vmhan_lib.paths import PROFILES
from vmhan_lib.train.jobs import encoder_settings, train_identity
from vmhan_lib.train.records import DEFAULT_SETTING

SETTING_NAMES = {"features.settings.": "features.", "text_encoder.": "features.text.", "data.": "data."}
"""Identity places -> configuration fields, for :func:`settings_differences`."""


def settings_differences(record: dict[str, Any]) -> list[str]:
    """Which settings of a run record differ from its profile's preset in the record's own setting
    (training mode, text encoder, visual source and dataset kept as the record has them), as
    ``"field value (profile: value)"``; ``[]`` when none does. Data files and code versions are left
    out (a stale run is refused elsewhere); read from the stored identity, so no data is needed."""
    stored = record.get("identity") or {}
    profile = record["run_id"].split("__")[0]
    if profile not in PROFILES:
        return []
    dataset = stored.get("data", {}).get("dataset", "mnre")
    visual_source = stored.get("features", {}).get("settings", {}).get(  # stage 1 reads no visual input
        "visual_source", "images" if dataset == "more" else "captions")
    config = preset(profile).with_training(record.get("training", DEFAULT_SETTING[0]))
    config = replace(config, data=replace(config.data, dataset=dataset),
                     features=replace(config.features, visual_source=visual_source,
                                      text=replace(config.features.text, model=record.get("text_encoder", DEFAULT_SETTING[1]))))
    data = {"max_instances": config.data.max_instances, "captioners": list(config.data.captioners)}
    if record["variant"] == ENCODER_VARIANT:
        reference = {**encoder_settings(config), "data": data}
    else:
        variant = record["variant"] if record["variant"] in VARIANTS else FULL_MODEL  # a Fig. 5 run: VM-HAN
        reference = {"model": asdict(variant_config(variant, config.model)),
                     "train": train_identity(config), "data": data,
                     "features": {"settings": feature_key(config.features, "")["settings"]}}
    ours, theirs = upgrade(stored), upgrade(reference)
    said = []
    for key in sorted(theirs):
        if key in ours and ours[key] != theirs[key]:
            name = next((key.replace(old, new, 1) for old, new in SETTING_NAMES.items() if key.startswith(old)), key)
            said.append(f"{name} {ours[key]!r} (profile: {theirs[key]!r})")
    return said


def settings_note(record: dict[str, Any]) -> str:
    """The settings in which a run differs from its profile's (:func:`settings_differences`)."""
    differing = settings_differences(record)
    return f"seed {record['seed']}: settings differ from the profile's: {', '.join(differing)}" if differing else ""


def fallback_note(record: dict[str, Any]) -> str:
    """The feature fallbacks of a run's build, for the table notes (the stage-1 encoder reads
    text only and has none to report)."""
    if record["variant"] == ENCODER_VARIANT:
        return ""
    if "build" not in record:
        return "feature fallbacks not recorded (run made before build reports were stored)"
    lines = describe_fallbacks(record["build"])
    return "feature fallbacks: " + " | ".join(lines) if lines else "no feature fallbacks"


def row_notes(runs: pd.DataFrame, variant: str) -> list[str]:
    """The feature fallbacks and differing settings of a variant's runs, each said once."""
    rows = runs.loc[runs["variant"] == variant]
    return list(filter(None, dict.fromkeys([*rows["fallbacks"], *rows["settings"]])))
