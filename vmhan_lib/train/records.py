"""Run records: what every training run leaves in ``results/runs/<run_id>/``.

- ``record.json``: config, seed, git revision, package versions, device, wall time per epoch, the
  dev curve, the dev and test metrics of the selected checkpoint, ``complete``;
- ``test_predictions.jsonl``: one line per test instance in file order with its index, gold and
  predicted relation, the class probabilities and (variational models) the predicted variance.

A record also stores its run's ``identity``: the settings that shape the result, the data
fingerprint (sha256 of every data file read) and the feature key. A run counts as finished only
while its stored identity equals the current one (:func:`vmhan_lib.identity.differences`): a run made from
other data or settings is never returned as if it were this one.

Tables and figures are built from these files only. :func:`write_run` is the one writer (the
predictions first, then the record, each atomically: a record exists only beside its
predictions), :func:`read_record` / :func:`read_predictions` / :func:`iter_records` the readers.
"""

from __future__ import annotations

import json
import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Sequence

from vmhan_lib.features.config import PACKAGED_MINILM
from vmhan_lib.identity import differences
from vmhan_lib.io import StorageError, atomic_write_json, atomic_write_text

RECORD_FILE = "record.json"
PREDICTIONS_FILE = "test_predictions.jsonl"
DEFAULT_SETTING: tuple[str, str, str] = ("two-stage", PACKAGED_MINILM, "pair")
"""(training mode, text encoder, hypergraph scope) of every record written before records named
them (the only setting there was); their run ids carry no setting tag."""


def record_setting(record: dict[str, Any]) -> tuple[str, str, str]:
    """The (training mode, text encoder, hypergraph scope) of a run record (:data:`DEFAULT_SETTING`
    for what older records do not name)."""
    return (record.get("training", DEFAULT_SETTING[0]), record.get("text_encoder", DEFAULT_SETTING[1]),
            record.get("scope", DEFAULT_SETTING[2]))


def run_id(profile: str, variant: str, seed: int) -> str:
    """A file-system-safe id, e.g. ``cpu__w-o-kl-loss__seed1``."""
    slug = re.sub(r"[^a-z0-9]+", "-", variant.lower().replace("/", "-")).strip("-")
    return f"{profile}__{slug}__seed{seed}"


@dataclass(frozen=True)
class Prediction:
    """One test instance's outcome."""

    index: int
    gold: str
    predicted: str
    probabilities: tuple[float, ...]
    variance: float | None = None


def _write_predictions(run_dir: Path, predictions: Sequence[Prediction]) -> Path:
    lines = []
    for p in predictions:
        row: dict[str, Any] = {
            "index": p.index, "gold": p.gold, "predicted": p.predicted,
            "probabilities": [round(x, 5) for x in p.probabilities],
        }
        if p.variance is not None:
            row["variance"] = round(p.variance, 6)
        lines.append(json.dumps(row))
    return atomic_write_text(run_dir / PREDICTIONS_FILE, "\n".join(lines) + "\n")


def read_predictions(run_dir: Path) -> list[Prediction]:
    path = Path(run_dir) / PREDICTIONS_FILE
    predictions = []
    with path.open(encoding="utf-8") as handle:
        for line_no, line in enumerate(handle, start=1):
            try:
                row = json.loads(line)
                predictions.append(Prediction(
                    row["index"], row["gold"], row["predicted"], tuple(row["probabilities"]), row.get("variance")
                ))
            except (json.JSONDecodeError, KeyError, TypeError) as err:
                raise StorageError(f"{path}:{line_no}: the test predictions cannot be read ({err}); {RESTORE}") from err
    return predictions


def write_run(run_dir: Path, record: dict[str, Any], predictions: Sequence[Prediction]) -> Path:
    """Write a run's test predictions, then its record (both atomically); returns the record file."""
    _write_predictions(Path(run_dir), predictions)
    return atomic_write_json(Path(run_dir) / RECORD_FILE, record)


RESTORE = "restore it (`git checkout` for a committed run), or delete the run's folder to train it again"


def read_record(run_dir: Path) -> dict[str, Any]:
    """A run's record.

    Raises:
        StorageError: the record is damaged (cut, edited, a merge conflict): one line naming it.
    """
    path = Path(run_dir) / RECORD_FILE
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise StorageError(f"{path}: the run record cannot be read ({err}); {RESTORE}") from err
    if not isinstance(record, dict):
        raise StorageError(f"{path}: the run record cannot be read (not a JSON object); {RESTORE}")
    return record


def is_complete(run_dir: Path) -> bool:
    path = Path(run_dir) / RECORD_FILE
    return path.is_file() and (Path(run_dir) / PREDICTIONS_FILE).is_file() and read_record(run_dir).get("complete", False)


def iter_records(runs_dir: Path) -> Iterator[tuple[Path, dict[str, Any]]]:
    """Every complete run under ``runs_dir``, sorted by run id."""
    for run_dir in sorted(Path(runs_dir).glob("*/")):
        if is_complete(run_dir):
            yield run_dir, read_record(run_dir)


def run_differences(run_dir: Path, identity: dict[str, Any]) -> list[str] | None:
    """``None`` when ``run_dir`` holds no finished run, else :func:`identity_differences` of its
    record's identity and ``identity``."""
    if not is_complete(run_dir):
        return None
    return differences(read_record(run_dir).get("identity"), identity)


def current_identity(run_dir: Path, identity: dict[str, Any]) -> dict[str, Any]:
    """A run's identity: the one its record stores while that is current (equal to ``identity``
    once fields retired since it was written are set aside, :func:`vmhan_lib.identity.upgrade`), else
    ``identity``. Everything keyed by a run's digest (its resumable state, exported model, analysis
    rows, the stage-2 identities naming a stage-1 run) so stays valid across such a translation."""
    if run_differences(run_dir, identity) == []:
        return read_record(run_dir)["identity"]
    return identity


class RerunMismatchWarning(UserWarning):
    """A run trained again (to recover a model that is not committed) does not score what its
    committed record says."""


def warn_if_rerun_differs(committed_dir: Path, rerun: dict[str, Any], what: str) -> None:
    """Compare a rerun's test scores with the committed record of the same run; warn, naming both
    F1s, when they differ (the same seed and settings agree on one machine, floating point may not
    across machines)."""
    committed = read_record(committed_dir)["test"]
    if committed != rerun["test"]:
        warnings.warn(RerunMismatchWarning(
            f"{Path(committed_dir).name}: the retrained model scores test F1 {100 * rerun['test']['f1']:.2f}, the "
            f"committed record {100 * committed['f1']:.2f}; {what}"
        ), stacklevel=3)
