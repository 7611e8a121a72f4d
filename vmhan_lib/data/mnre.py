"""MNRE-2 text splits: typed instances, the label vocabulary, and sentence grouping.

Each line of ``mnre_{split}.txt`` is one Python-literal dict (single quotes, so it is parsed with
:func:`ast.literal_eval`, never ``eval``)::

    {'token': [...], 'h': {'name': 'Circle Undone', 'pos': [8, 10]},
     't': {'name': 'Arkham Horror LCG', 'pos': [2, 5]},
     'img_id': 'twitter_19_31_16_6.jpg', 'relation': '/misc/misc/part_of'}

``pos`` is a half-open token span ``[start, end)``. Every unordered entity pair of a sentence is
labelled, so one sentence (and its one image) carries 1-21 instances; :func:`group_by_sentence`
recovers those groups, which the paper's hypergraphs and analyses are built on.
"""

from __future__ import annotations

import ast
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator, Sequence

from vmhan_lib.config_tree import UserError

SPLITS: tuple[str, ...] = ("train", "val", "test")
NEGATIVE_LABEL = "None"
REL2ID_FILE = "ours_rel2id.json"
# Upstream (thecharm/MNRE) names the dev split with a stray space; both spellings are accepted.
SPLIT_FILE_NAMES: dict[str, tuple[str, ...]] = {
    "train": ("mnre_train.txt",),
    "val": ("mnre_val.txt", "mnre_val .txt"),
    "test": ("mnre_test.txt",),
}


class DataFormatError(UserError):
    """A data file is missing or malformed; the message names the file (and line)."""


def require_data_dir(data_dir: str | Path) -> Path:
    """``data_dir`` when it is a directory, else a :class:`DataFormatError` that says the data
    directory itself is missing (not some file in it) and where the directory comes from."""
    path = Path(data_dir)
    if not path.is_dir():
        raise DataFormatError(
            f"MNRE data directory not found: {path.resolve()} (it is the data_dir parameter, else $VMHAN_DATA, "
            "else data/mnre in the repository: point one of them at a copy, or run `python -m vmhan_lib download`)")
    return path


def read_lines(path: Path) -> Iterator[tuple[int, str]]:
    """``(line number, text)`` of every non-blank line of a UTF-8 file; a byte that is not UTF-8
    is a :class:`DataFormatError` naming the file, line and column."""
    with Path(path).open("rb") as handle:
        for line_no, raw in enumerate(handle, start=1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as err:
                raise DataFormatError(
                    f"{path}:{line_no}: not UTF-8 (byte 0x{raw[err.start]:02x} at column {err.start + 1})") from err
            if line.strip():
                yield line_no, line


@dataclass(frozen=True)
class Entity:
    """An entity mention: its surface name and half-open token span ``[start, end)``."""

    name: str
    start: int
    end: int

    @property
    def span(self) -> tuple[int, int]:
        return (self.start, self.end)


@dataclass(frozen=True)
class Instance:
    """One MNRE example: a tokenised sentence, its image, an entity pair and the gold relation.

    ``index`` is the 0-based position in the split file (the key the auxiliary files use).
    ``image_objects`` is MORE's: the annotated objects of the image as ``(name, (cx, cy, w, h))``
    normalised to [0, 1], the tail among them (its name is appended to the tokens, where ``tail``
    points, so the text encoder marks it; see :mod:`vmhan_lib.data.more`); ``None`` for MNRE.
    """

    index: int
    tokens: tuple[str, ...]
    head: Entity
    tail: Entity
    img_id: str
    relation: str
    image_objects: tuple[tuple[str, tuple[float, float, float, float]], ...] | None = None

    @property
    def tail_object(self) -> bool:
        """Whether the tail is an object of the image (MORE), not a span of the sentence."""
        return self.image_objects is not None

    @property
    def sentence_key(self) -> tuple[str, tuple[str, ...]]:
        """Identity of the sentence (image and tokens) this instance belongs to."""
        return (self.img_id, self.tokens)

    @property
    def text(self) -> str:
        return " ".join(self.tokens)


@dataclass(frozen=True)
class RelationVocab:
    """The 23 MNRE labels in the order every peer uses (``None`` has id 0)."""

    labels: tuple[str, ...]

    def __post_init__(self) -> None:
        if not self.labels or self.labels[0] != NEGATIVE_LABEL:
            raise DataFormatError(f"label 0 must be {NEGATIVE_LABEL!r}, got {self.labels[:1]}")
        if len(set(self.labels)) != len(self.labels):
            raise DataFormatError("relation labels are not unique")

    def __len__(self) -> int:
        return len(self.labels)

    def ids(self, labels: Iterable[str]) -> list[int]:
        """The id of each label; a KeyError names an unknown one and the known labels."""
        lookup = {label: i for i, label in enumerate(self.labels)}
        try:
            return [lookup[label] for label in labels]
        except KeyError as err:
            raise KeyError(f"unknown relation {err.args[0]!r}; known: {', '.join(self.labels)}") from None


def load_relation_vocab(data_dir: str | Path) -> RelationVocab:
    """Read ``text/ours_rel2id.json`` (label -> id) into a :class:`RelationVocab`."""
    path = require_data_dir(data_dir) / "text" / REL2ID_FILE
    if not path.is_file():
        raise DataFormatError(f"relation vocabulary not found: {path}")
    try:
        rel2id = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise DataFormatError(f"{path}: not valid UTF-8 JSON ({err})") from err
    ids = sorted(rel2id.values())
    if ids != list(range(len(ids))):
        raise DataFormatError(f"{path}: ids must be 0..{len(ids) - 1} without gaps, got {ids}")
    return RelationVocab(tuple(sorted(rel2id, key=rel2id.__getitem__)))


def split_path(data_dir: str | Path, split: str) -> Path:
    """The file of ``split`` under ``data_dir/text``, accepting the upstream ``mnre_val .txt``."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; allowed: {', '.join(SPLITS)}")
    text_dir = require_data_dir(data_dir) / "text"
    for name in SPLIT_FILE_NAMES[split]:
        if (text_dir / name).is_file():
            return text_dir / name
    tried = " or ".join(repr(n) for n in SPLIT_FILE_NAMES[split])
    raise DataFormatError(
        f"MNRE {split} split not found: looked for {tried} in {text_dir.resolve()} "
        "(set the data directory with data_dir=..., the VMHAN_DATA environment variable, "
        "or run `python -m vmhan_lib download`)"
    )


def parse_entity(raw: object, role: str, n_tokens: int, where: str) -> Entity:
    """The ``h`` / ``t`` field of a split line as an :class:`Entity` inside ``n_tokens`` tokens."""
    if not isinstance(raw, dict) or not isinstance(raw.get("name"), str) or "pos" not in raw:
        raise DataFormatError(f"{where}: {role!r} must be a dict with 'name' (a string) and 'pos'")
    pos = raw["pos"]
    if not (isinstance(pos, (list, tuple)) and len(pos) == 2 and all(type(p) is int for p in pos)):
        raise DataFormatError(f"{where}: {role} 'pos' must be two integers, got {pos!r}")
    start, end = pos
    if not 0 <= start < end <= n_tokens:
        raise DataFormatError(f"{where}: {role} span [{start}, {end}) is outside the {n_tokens} tokens")
    return Entity(name=raw["name"], start=start, end=end)


def parse_literal_dict(line: str, where: str) -> dict:
    """A line holding one Python-literal dict (split and caption files), read with
    :func:`ast.literal_eval`; errors name ``where`` (file:line)."""
    try:
        raw = ast.literal_eval(line)
    except (ValueError, SyntaxError, MemoryError, RecursionError) as err:
        raise DataFormatError(f"{where}: not a Python-literal dict ({err.__class__.__name__})") from err
    if not isinstance(raw, dict):
        raise DataFormatError(f"{where}: expected a dict, got {type(raw).__name__}")
    return raw


def parse_record(line: str, where: str) -> tuple[dict, list[str]]:
    """A split line (MNRE or MORE) as its dict and its tokens: a Python literal with ``token``,
    ``h``, ``t``, ``img_id`` and ``relation`` (both strings), the tokens a non-empty list of strings; errors name
    ``where`` (file:line)."""
    raw = parse_literal_dict(line, where)
    missing = [k for k in ("token", "h", "t", "img_id", "relation") if k not in raw]
    if missing:
        raise DataFormatError(f"{where}: missing field(s) {', '.join(missing)}")
    wrong = [k for k in ("img_id", "relation") if not isinstance(raw[k], str)]
    if wrong:
        raise DataFormatError(f"{where}: {' and '.join(wrong)} must be string(s), got "
                              f"{', '.join(type(raw[k]).__name__ for k in wrong)}")
    tokens = raw["token"]
    if not isinstance(tokens, list) or not tokens or not all(isinstance(t, str) for t in tokens):
        raise DataFormatError(f"{where}: 'token' must be a non-empty list of strings")
    return raw, tokens


def parse_line(line: str, index: int, labels: frozenset[str], where: str) -> Instance:
    """Parse one split line into an :class:`Instance`; errors name ``where`` (file:line)."""
    raw, tokens = parse_record(line, where)
    relation = raw["relation"]
    if relation not in labels:
        raise DataFormatError(f"{where}: unknown relation label {relation!r}")
    return Instance(index=index, tokens=tuple(tokens), head=parse_entity(raw["h"], "h", len(tokens), where),
                    tail=parse_entity(raw["t"], "t", len(tokens), where), img_id=raw["img_id"], relation=relation)


def load_mnre(data_dir: str | Path, split: str, vocab: RelationVocab | None = None) -> list[Instance]:
    """Load one MNRE-2 split as typed instances in file order.

    Args:
        data_dir: the MNRE directory holding ``text/`` (see :func:`vmhan_lib.paths.resolve_data_dir`).
        split: ``train``, ``val`` or ``test``.
        vocab: label vocabulary to validate against; read from ``data_dir`` when omitted.

    Raises:
        DataFormatError: the data directory or split file is missing, the file holds no instance,
            or a line is malformed or not UTF-8 (the message has file:line).
    """
    path = split_path(data_dir, split)
    labels = frozenset((vocab or load_relation_vocab(data_dir)).labels)
    instances = [parse_line(line, position, labels, f"{path}:{line_no}")
                 for position, (line_no, line) in enumerate(read_lines(path))]
    if not instances:
        raise DataFormatError(f"{path}: the {split} split holds no instance (empty file)")
    return instances


@dataclass(frozen=True)
class SentenceGroup:
    """All instances (entity pairs) of one sentence and its image, in file order."""

    img_id: str
    tokens: tuple[str, ...]
    instance_indices: tuple[int, ...]

    @property
    def n_pairs(self) -> int:
        return len(self.instance_indices)


def group_by_sentence(instances: Sequence[Instance]) -> list[SentenceGroup]:
    """Group instances by (image, tokens), in order of first appearance."""
    groups: dict[tuple[str, tuple[str, ...]], list[int]] = {}
    for position, instance in enumerate(instances):
        groups.setdefault(instance.sentence_key, []).append(position)
    return [SentenceGroup(img_id, tokens, tuple(members)) for (img_id, tokens), members in groups.items()]


def entity_relation_categories(instances: Sequence[Instance]) -> dict[str, set[str]]:
    """Map each entity name (head or tail, any pair) to the non-None relations it takes part in.

    The paper's Fig. 3 splits entities into those seen with one relation category and those seen
    with several.
    """
    categories: dict[str, set[str]] = {}
    for instance in instances:
        for entity in (instance.head, instance.tail):
            bucket = categories.setdefault(entity.name, set())
            if instance.relation != NEGATIVE_LABEL:
                bucket.add(instance.relation)
    return categories
