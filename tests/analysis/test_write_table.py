"""The one writer of a result table (:func:`vmhan_lib.analysis.tables.write_table`), as notebook 06
uses it for Table 2: another setting's csv and markdown are written together, beside the default's."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from vmhan_lib.analysis.tables import tables_suffix, to_markdown, write_table
from vmhan_lib.config import run_config


def test_a_table_of_another_setting_is_written_as_csv_and_md_beside_the_default_ones(tmp_path: Path) -> None:
    committed = {tmp_path / f"table2_ablations.{ext}": f"committed {ext}\n" for ext in ("csv", "md")}
    for path, text in committed.items():
        path.write_text(text)
    table = pd.DataFrame({"Model": ["VM-HAN (Ours)", "w/o LLM"], "F1": ["62.67 ± 0.96", "61.00 ± 1.00"]})
    suffix = tables_suffix(run_config("tiny", overrides={"experiment.training": "joint"}))
    written = write_table(table, tmp_path, "table2_ablations", suffix)

    assert suffix == "__joint-all-minilm-l6-v2"
    assert written == [tmp_path / f"table2_ablations{suffix}.{ext}" for ext in ("csv", "md")]
    assert written[0].read_text() == table.to_csv(index=False) and written[1].read_text() == to_markdown(table)
    assert all(path.read_text() == text for path, text in committed.items())  # the default's files untouched
    assert write_table(table, tmp_path, "table2_ablations") == list(committed)  # the default setting: no suffix
