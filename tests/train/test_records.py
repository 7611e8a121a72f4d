"""Run records: the identity comparison that decides whether a finished run is still this run."""

from __future__ import annotations

from pathlib import Path

from vmhan_lib.identity import differences as identity_differences
from vmhan_lib.train.records import Prediction, run_differences, write_run

IDENTITY = {"seed": 0, "train": {"lr": 0.001, "epochs": 8},
            "data": {"files": {"text/mnre_test.txt": "aa", "captions/cogvlm_test.txt": "bb"}}}


def test_identity_differences_name_settings_and_data_files() -> None:
    assert identity_differences(IDENTITY, IDENTITY) == []
    changed = {**IDENTITY, "train": {"lr": 0.002, "epochs": 8},
               "data": {"files": {"text/mnre_test.txt": "aa", "captions/cogvlm_test.txt": "cc",
                                  "captions/qwen_test.txt": "dd"}}}
    assert identity_differences(IDENTITY, changed) == [
        "data file captions/cogvlm_test.txt changed", "data file captions/qwen_test.txt was not read",
        "train.lr: 0.001 -> 0.002"]
    assert identity_differences(changed, IDENTITY)[1] == "data file captions/qwen_test.txt is not read now"
    assert identity_differences(None, IDENTITY) == ["no identity stored (a record older than run identities)"]
    assert identity_differences({**IDENTITY, "seed": (0,)}, {**IDENTITY, "seed": [0]}) == []  # JSON round trip


def test_run_differences_only_for_finished_runs(tmp_path: Path) -> None:
    assert run_differences(tmp_path / "nothing", IDENTITY) is None
    write_run(tmp_path / "run", {"identity": IDENTITY, "complete": False}, [Prediction(0, "None", "None", (1.0,))])
    assert run_differences(tmp_path / "run", IDENTITY) is None
    write_run(tmp_path / "run", {"identity": IDENTITY, "complete": True}, [Prediction(0, "None", "None", (1.0,))])
    assert run_differences(tmp_path / "run", IDENTITY) == []
    assert run_differences(tmp_path / "run", {**IDENTITY, "seed": 1}) == ["seed: 0 -> 1"]
