"""The controlled visual-signal study (issue 24) as one function: its grid per profile, its jobs, and
their training through the one runner (:func:`~vmhan_lib.train.runner.run_jobs`).

The transformation of the inputs is :mod:`vmhan_lib.train.visual_signal`. The study changes no
configuration field: its settings are its grid (:class:`SignalStudy`), which tags every job
(:class:`~vmhan_lib.train.visual_signal.VisualSignal` in the job's name, identity and record), and
the stage-2 epochs (``train.epochs``, in the identity as for every run). Runs go to
``controlled_signal/`` beside the runs folder of their inputs (:class:`~vmhan_lib.train.jobs.RunPaths`):
``results/controlled_signal/`` for the ``cpu`` study (on the committed stage-1 encoder),
``results/tiny/controlled_signal/`` for ``tiny``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Sequence

from vmhan_lib.config import RunConfig
from vmhan_lib.config_tree import ConfigError
from vmhan_lib.model.variants import FULL_MODEL
from vmhan_lib.train.jobs import Job, RunPaths
from vmhan_lib.train.runner import run_jobs
from vmhan_lib.train.visual_signal import VisualSignal

BASELINE = "Text-only"
"""The model that reads no visual node: trained once (at s = 0), the line every other model is held against."""
LATE_FUSION = "Late fusion"


@dataclass(frozen=True)
class SignalBlock:
    """One block of the study's grid: every variant at every strength of one arm, for every seed.

    Attributes:
        variants: models (most informative first).
        arm: ``image`` or ``object`` (an object arm's s = 0 runs are the image arm's: without a signal
            the two arms are the same inputs, so object blocks list strengths > 0 only).
        strengths: s (multiples of the mean visual norm).
        seeds: seeds (each seed also draws its own prototypes and noise).
    """

    variants: tuple[str, ...]
    arm: str
    strengths: tuple[float, ...]
    seeds: tuple[int, ...]


@dataclass(frozen=True)
class SignalStudy:
    """The grid of the study in one profile.

    Attributes:
        blocks: the runs, block by block in the order they are trained (a grid cut short loses its
            last blocks).
        train_instances: the fixed subsample of train every run trains on (``None``: all of train).
        epochs: stage-2 epochs of every run (``train.epochs``).
    """

    blocks: tuple[SignalBlock, ...]
    train_instances: int | None
    epochs: int


STRENGTHS = (0.0, 0.1, 0.3, 1.0)
"""The ``cpu`` study's grid of s."""
ABLATIONS = ("w/o Multi-Modal Hypergraph", "w/o V-HAN", "repl. HGNN", "repl. GAT", "w/o Inter-modal Hypergraph")
"""The image-arm models after VM-HAN and late fusion (issue 24's list)."""
STUDIES: dict[str, SignalStudy] = {
    "tiny": SignalStudy((SignalBlock((FULL_MODEL, LATE_FUSION), "image", (0.0, 1.0), (0,)),
                         SignalBlock((BASELINE,), "image", (0.0,), (0,)),
                         SignalBlock((FULL_MODEL,), "object", (1.0,), (0,))), None, 2),
    "cpu": SignalStudy((SignalBlock((FULL_MODEL, LATE_FUSION), "image", STRENGTHS, (0, 1, 2)),
                        SignalBlock((BASELINE,), "image", (0.0,), (0, 1, 2)),
                        SignalBlock(ABLATIONS, "image", STRENGTHS, (0,)),
                        SignalBlock(ABLATIONS, "image", STRENGTHS, (1,)),
                        SignalBlock((FULL_MODEL, LATE_FUSION), "object", STRENGTHS[1:], (0, 1, 2)),
                        SignalBlock(ABLATIONS, "image", STRENGTHS, (2,))),
                       1700, 4),
}
"""The study's grid of each profile (``cpu``: cut to fit about an hour of 2 cores: one fixed random
subsample of 1,700 train instances, 4 epochs; dev, test and the stage-1 encoder those of the tables)."""


def study_of(config: RunConfig) -> SignalStudy:
    """The study of ``config``'s profile.

    Raises:
        ConfigError: a profile without one (``full``: its ``joint`` training has no frozen inputs to add a signal to).
    """
    if config.profile not in STUDIES:
        raise ConfigError(f"no controlled visual-signal study for profile {config.profile!r}; "
                          f"studies: {', '.join(STUDIES)}")
    return STUDIES[config.profile]


def study_config(config: RunConfig, study: SignalStudy) -> RunConfig:
    """``config`` with the study's stage-2 epochs."""
    return replace(config, train=replace(config.train, epochs=study.epochs))


def signal_jobs(variants: Sequence[str], arm: str, strengths: Sequence[float], seeds: Sequence[int],
                train_instances: int | None = None) -> list[Job]:
    """Every variant at every strength of ``arm`` and every seed (variant, then seed, then strength),
    trained on ``train_instances`` of train (all: ``None``)."""
    return [Job(v, seed, signal=VisualSignal(arm, float(s), train_instances))
            for v in dict.fromkeys(variants) for seed in seeds for s in strengths]


def study_jobs(study: SignalStudy) -> list[Job]:
    """The study's runs, block by block (:attr:`SignalStudy.blocks`)."""
    jobs = [job for block in study.blocks for job in signal_jobs(block.variants, block.arm, block.strengths,
                                                                  block.seeds, study.train_instances)]
    return list(dict.fromkeys(jobs))


def run_signal_study(config: RunConfig, jobs: Sequence[Job] | None = None, paths: RunPaths | None = None,
                     need_models: bool = False, progress: bool = True) -> list[dict[str, Any]]:
    """Train (or read) the study's runs (``jobs``, default :func:`study_jobs` of the profile's study)
    with the study's epochs; their records in order."""
    study = study_of(config)
    return run_jobs(study_config(config, study), study_jobs(study) if jobs is None else jobs,
                    need_models=need_models, paths=paths, progress=progress)
