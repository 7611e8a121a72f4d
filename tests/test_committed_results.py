"""The committed ``cpu`` results regenerate byte for byte from the committed run records (issue 21).

Notebooks 05-07 and ``tables`` read the run records only (every run is complete, so nothing trains;
the per-run analysis rows of runs whose models are not at hand are read back while their run is
current). They run here, as a user runs them, on a copy of the checkout's tracked files; every
committed table, result CSV, figure and the README's results section must come out unchanged.
A difference names the files, and the copy stays for inspection.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from vmhan_lib.paths import REPO_ROOT

NOTEBOOKS = ("05_main_results", "06_ablations", "07_analyses")
"""The notebooks that read run records only (04 trains when a record is missing; 08 explores a bundle)."""
OTHER_SETTINGS = (("experiment.training=joint",), ("experiment.training=out-of-fold",),
                  ("features.text.model=all-mpnet-base-v2",), ("model.hypergraph.scope=sentence",))
"""The committed tables of settings other than the default, written by ``tables --set ...``."""
COMPARED = ("results", "figures", "README.md")


def _tracked(root: Path) -> list[str]:
    listed = subprocess.run(["git", "ls-files", "-z"], cwd=root, capture_output=True, check=True).stdout
    return [name for name in listed.decode().split("\0") if name]


def _copy_checkout(target: Path) -> list[str]:
    """The tracked files of this checkout, as they are in its working tree, under ``target``."""
    names = _tracked(REPO_ROOT)
    for name in names:
        if (REPO_ROOT / name).is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO_ROOT / name, target / name)
    return names


def _run(copy: Path, data: Path, *command: str) -> None:
    env = {**os.environ, "PYTHONPATH": str(copy), "VMHAN_PROFILE": "cpu", "VMHAN_DATA": str(data),
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    done = subprocess.run(command, cwd=copy, env=env, capture_output=True, text=True)
    assert done.returncode == 0, f"{' '.join(command)} failed:\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}"


def test_committed_cpu_results_regenerate_byte_identical(tmp_path: Path, mnre_dir: Path) -> None:
    copy = tmp_path / "checkout"
    names = _copy_checkout(copy)
    for notebook in NOTEBOOKS:
        _run(copy, mnre_dir, sys.executable, "-m", "papermill", f"notebooks/{notebook}.ipynb",
             str(tmp_path / f"{notebook}.ipynb"), "-k", "python3", "-p", "profile", "cpu", "--cwd", "notebooks",
             "--log-level", "ERROR", "--no-progress-bar")
    for assignments in OTHER_SETTINGS:
        _run(copy, mnre_dir, sys.executable, "-m", "vmhan_lib", "tables", "--profile", "cpu",
             *(part for a in assignments for part in ("--set", a)))
    _run(copy, mnre_dir, sys.executable, "-m", "vmhan_lib", "tables", "--profile", "cpu", "--readme")

    compared = [n for n in names if n.startswith(COMPARED) and (REPO_ROOT / n).is_file()]
    changed = [n for n in compared if (copy / n).read_bytes() != (REPO_ROOT / n).read_bytes()]
    written = {p.relative_to(copy).as_posix() for folder in ("results", "figures") for p in (copy / folder).rglob("*")
               if p.is_file() and "executed" not in p.parts}
    new = sorted(written - set(names))
    assert len(compared) > 100  # tables, CSVs, figures and every run record are compared
    assert not changed and not new, (f"regenerated from the committed records, {len(changed)} committed file(s) "
                                     f"differ: {changed[:10]}; {len(new)} new file(s): {new[:10]} (see {copy})")
