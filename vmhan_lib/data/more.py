"""MORE (He et al., ACM MM 2023): multimodal object-entity relation extraction, in its release's format.

The layout of the release (NJUNLP/MORE, ``run.py`` and ``processor/dataset.py``), under one directory::

    txt/{train,valid,test}.txt          one Python-literal dict per line
    ent_{train,valid,test}_dict.pth     torch.save'd {img_id: {object name: box}}  (.json accepted too)
    rel2id.json                         {relation: id} on its first line
    img_org/{train,valid,test}/<img_id> the images

A line: ``{'token': [...], 'relation': '...', 'img_id': '....jpg', 'h': {'name': ..., 'pos': [s, e]},
't': {'name': ..., 'box': [cx, cy, w, h]}}``: the head is a half-open token span of the title, the
tail an object of the image, its box normalised to [0, 1] (centre x, centre y, width, height),
named as in the image's object dictionary. Here each line becomes an :class:`Instance` whose
``image_objects`` are the image's annotated objects (dictionary order) and whose tail name is
appended to the tokens, where ``tail`` points: the text encoder marks it like an MNRE tail, and the
feature builder crops every annotated object from the image, the tail's object first
(:mod:`vmhan_lib.features.build`). The relation with id 0 is the negative class; its name (``None``,
``none``, ``NA``, ...) is read as ``None``, as in MNRE.

Bad input gets the same errors as MNRE (:class:`DataFormatError` naming the file and line): a
malformed line, a span outside the tokens, an unknown relation, a box that is not four numbers in
[0, 1], a tail missing from its image's objects, a missing file (naming the directory searched), a
split without instances.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Mapping

from vmhan_lib.data.mnre import (
    NEGATIVE_LABEL, DataFormatError, Entity, Instance, RelationVocab, parse_entity, parse_record, read_lines,
)

MORE_SPLIT_NAMES: dict[str, str] = {"train": "train", "val": "valid", "test": "test"}
"""Our split names -> the release's file names."""
NEGATIVE_ALIASES: frozenset[str] = frozenset({"None", "none", "NA", "N/A", "no_relation", "Other", "other"})
"""Names the release may give the negative relation (id 0); all are read as ``None``."""
REL2ID_FILE = "rel2id.json"

Box = tuple[float, float, float, float]


def more_split_path(data_dir: str | Path, split: str) -> Path:
    """``txt/<split>.txt`` of the MORE release under ``data_dir``."""
    if split not in MORE_SPLIT_NAMES:
        raise ValueError(f"unknown split {split!r}; allowed: {', '.join(MORE_SPLIT_NAMES)}")
    path = Path(data_dir) / "txt" / f"{MORE_SPLIT_NAMES[split]}.txt"
    if not path.is_file():
        raise DataFormatError(f"MORE {split} split not found: {path.resolve()} (point data.data_dir at your copy "
                              "of the MORE release, with data.dataset=more)")
    return path


def _relations_by_id(data_dir: str | Path) -> list[str]:
    """The relation names of ``rel2id.json`` in id order, as the release spells them (id 0 the
    negative one: one of :data:`NEGATIVE_ALIASES`)."""
    path = Path(data_dir) / REL2ID_FILE
    if not path.is_file():
        raise DataFormatError(f"MORE relation vocabulary not found: {path.resolve()}")
    try:
        rel2id = json.loads(path.read_text(encoding="utf-8").splitlines()[0])
    except (json.JSONDecodeError, IndexError) as err:
        raise DataFormatError(f"{path}:1: not a JSON object of relation -> id ({err})") from err
    if not isinstance(rel2id, dict) or sorted(rel2id.values()) != list(range(len(rel2id))):
        raise DataFormatError(f"{path}:1: ids must be 0..{len(rel2id) - 1} without gaps")
    labels = sorted(rel2id, key=rel2id.__getitem__)
    if labels[0] not in NEGATIVE_ALIASES:
        raise DataFormatError(f"{path}: the relation with id 0 must be the negative one "
                              f"({', '.join(sorted(NEGATIVE_ALIASES))}), got {labels[0]!r}")
    return labels


def load_more_vocab(data_dir: str | Path) -> RelationVocab:
    """The relations of ``rel2id.json`` by id, the id-0 (negative) one read as ``None``."""
    return RelationVocab((NEGATIVE_LABEL, *_relations_by_id(data_dir)[1:]))


def check_box(raw: object, where: str, what: str) -> Box:
    """``raw`` as a normalised (cx, cy, w, h) box; :class:`DataFormatError` naming ``where`` unless it
    is four numbers in [0, 1] with a positive width and height."""
    if not (isinstance(raw, (list, tuple)) and len(raw) == 4 and all(isinstance(v, (int, float)) and not isinstance(v, bool)
                                                                    for v in raw)):
        raise DataFormatError(f"{where}: {what} box must be four numbers (cx, cy, w, h), got {raw!r}")
    box = tuple(float(v) for v in raw)
    if not all(0.0 <= v <= 1.0 for v in box):
        raise DataFormatError(f"{where}: {what} box {list(box)} is outside [0, 1] (boxes are normalised cx, cy, w, h)")
    if box[2] <= 0 or box[3] <= 0:
        raise DataFormatError(f"{where}: {what} box {list(box)} has no area")
    return box  # type: ignore[return-value]


def object_dict_path(data_dir: Path, split: str) -> Path:
    """``ent_<split>_dict.pth`` (or ``.json``) under ``data_dir``; :class:`DataFormatError` when neither exists."""
    stem = data_dir / f"ent_{MORE_SPLIT_NAMES[split]}_dict"
    for suffix in (".pth", ".json"):
        if stem.with_suffix(suffix).is_file():
            return stem.with_suffix(suffix)
    raise DataFormatError(f"MORE object dictionary not found: {stem}.pth or .json in {data_dir.resolve()}")


def load_object_dict(data_dir: str | Path, split: str) -> dict[str, dict[str, Box]]:
    """``img_id -> {object name: box}`` of ``split`` (``ent_<split>_dict.pth``, or ``.json``), boxes checked."""
    path = object_dict_path(Path(data_dir), split)
    if path.suffix == ".json":
        try:
            raw: Any = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as err:
            raise DataFormatError(f"{path}: not valid JSON ({err})") from err
    else:
        import torch  # the release saves it with torch.save; plain containers load with weights_only

        try:
            raw = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as err:  # noqa: BLE001 -- any unpickling failure is a bad file
            raise DataFormatError(f"{path}: not a torch-saved dict of plain values ({type(err).__name__}: {err})") from err
    if not isinstance(raw, Mapping):
        raise DataFormatError(f"{path}: expected a dict img_id -> {{object name: box}}, got {type(raw).__name__}")
    objects: dict[str, dict[str, Box]] = {}
    for img_id, items in raw.items():
        if not isinstance(items, Mapping):
            raise DataFormatError(f"{path}: image {img_id!r}: expected a dict object name -> box")
        objects[str(img_id)] = {str(name): check_box(list(box), f"{path}: image {img_id!r}", f"object {name!r}")
                                for name, box in items.items()}
    return objects


def parse_more_line(line: str, index: int, labels: frozenset[str], objects: Mapping[str, Mapping[str, Box]],
                    where: str, negative: str = NEGATIVE_LABEL) -> Instance:
    """One MORE line as an :class:`Instance` (tail name appended to the tokens); errors name ``where``."""
    raw, tokens = parse_record(line, where)
    relation = NEGATIVE_LABEL if raw["relation"] == negative else raw["relation"]
    if relation not in labels:
        raise DataFormatError(f"{where}: unknown relation label {raw['relation']!r}")
    head = parse_entity(raw["h"], "h", len(tokens), where)
    tail = raw["t"]
    if not isinstance(tail, dict) or not isinstance(tail.get("name"), str) or "box" not in tail:
        raise DataFormatError(f"{where}: 't' must be a dict with 'name' (a string) and 'box' (an object of the image)")
    check_box(tail["box"], where, "t")
    img_id = raw["img_id"]
    image_objects = objects.get(img_id)
    if image_objects is None:
        raise DataFormatError(f"{where}: image {img_id!r} has no entry in the object dictionary")
    name = tail["name"]
    if name not in image_objects:
        raise DataFormatError(f"{where}: tail {name!r} is not an object of image {img_id!r} "
                              f"(its objects: {', '.join(image_objects)})")
    name_tokens = name.split() or [name]
    return Instance(index=index, tokens=(*tokens, *name_tokens), head=head,
                    tail=Entity(name=name, start=len(tokens), end=len(tokens) + len(name_tokens)),
                    img_id=img_id, relation=relation, image_objects=tuple(image_objects.items()))


def load_more(data_dir: str | Path, split: str, vocab: RelationVocab | None = None) -> list[Instance]:
    """Load one MORE split (see the module docstring) as typed instances in file order.

    Raises:
        DataFormatError: a missing file, a file without instances, or a malformed line or box (the
            message has file:line).
    """
    path = more_split_path(data_dir, split)
    has_relations = (Path(data_dir) / REL2ID_FILE).is_file()
    relations = _relations_by_id(data_dir) if vocab is None or has_relations else []
    vocabulary = vocab or RelationVocab((NEGATIVE_LABEL, *relations[1:]))
    negative = relations[0] if relations else NEGATIVE_LABEL  # how this release spells the id-0 relation
    objects = load_object_dict(data_dir, split)
    labels = frozenset(vocabulary.labels)
    instances = [parse_more_line(line, position, labels, objects, f"{path}:{line_no}", negative)
                 for position, (line_no, line) in enumerate(read_lines(path))]
    if not instances:
        raise DataFormatError(f"{path}: the {split} split holds no instance (empty file)")
    return instances
