"""The check of a notebook's parameters, before any work (torch-free).

Every notebook's validation cell (the one after its ``parameters`` cell) calls
:func:`notebook_parameters`: the run configuration of ``profile``, ``data_dir`` and ``overrides``,
and each of the notebook's own parameters checked, so that a papermill user's mistake
(``-p resamples -5``, ``-p profile nope``) is one line naming the parameter and what is allowed, the
cell's only output (:class:`~vmhan_lib.config_tree.UserError`), and a list parameter given one
name (``-p variants GCN``) means the list of that name.
"""

from __future__ import annotations

from typing import Any, Mapping

from vmhan_lib.config import RunConfig, run_config
from vmhan_lib.config_tree import ConfigError

NAMES = "names"
"""The kind of a list parameter: a list of strings, or one string meaning ``[string]``."""


def _names(name: str, value: Any) -> list[str] | None:
    if value is None or isinstance(value, str):
        return None if value is None else [value]
    if isinstance(value, (list, tuple)) and all(isinstance(item, str) for item in value):
        return list(value)
    raise ConfigError(f"{name}: must be a list of names (or one name), got {value!r}")


def _choice(name: str, value: Any, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise ConfigError(f"{name}: must be one of {', '.join(allowed)}, got {value!r}")
    return value


def _integer(name: str, value: Any, low: int, high: int | None, none_allowed: bool) -> int | None:
    if value is None and none_allowed:
        return None
    allowed = f"an integer {'>= ' + str(low) if high is None else f'from {low} to {high}'}" + (
        " or None" if none_allowed else "")
    if isinstance(value, bool) or not isinstance(value, int) or value < low or (high is not None and value > high):
        raise ConfigError(f"{name}: must be {allowed}, got {value!r}")
    return value


def notebook_parameters(profile: str | None, data_dir: str | None, overrides: Mapping[str, Any] | None,
                        need_data: bool = False, **checks: tuple) -> tuple[Any, ...]:
    """``(config, *checked)``: :func:`~vmhan_lib.config.run_config` of the first three (``need_data``:
    the data directory must exist), then each of ``checks`` in the order given, one of

    - ``name=(value, NAMES)``: a list of strings; one string -> ``[string]``; ``None`` stays ``None``;
    - ``name=(value, low, high)``: an integer in ``[low, high]`` (``high`` ``None``: no upper bound);
    - ``name=(value, low, high, None)``: the same, or ``None``;
    - ``name=(value, allowed)``: one of the strings of the tuple ``allowed``.

    Raises:
        ConfigError: a bad profile, field, value or parameter (one line naming it and what is allowed).
        DataFormatError: ``need_data`` and the data directory does not exist.
    """
    config: RunConfig = run_config(profile, data_dir, overrides, need_data=need_data)
    checked = [_names(name, spec[0]) if spec[1:] == (NAMES,) else _choice(name, *spec) if isinstance(spec[1], tuple)
               else _integer(name, spec[0], spec[1], spec[2], len(spec) > 3) for name, spec in checks.items()]
    return (config, *checked)
