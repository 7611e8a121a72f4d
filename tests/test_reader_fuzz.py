"""Seeded random corruptions of real lines for the MNRE and MORE split readers and the caption
reader (issue 22): truncations, byte flips, inserted bytes, wrong types, missing fields, spans and
boxes out of range. Every case either loads equal to an independent reference reading (written
here from the formats' rules) or raises the one data-format error naming the file and the line,
never another exception. ``VMHAN_FUZZ_CASES`` sets the cases per reader (default 1000)."""

from __future__ import annotations

import ast
import json
import os
import random
from pathlib import Path
from typing import Any, Callable

import pytest

from vmhan_lib.data.captions import load_captions
from vmhan_lib.data.mnre import DataFormatError, RelationVocab, load_mnre, load_relation_vocab
from vmhan_lib.data.more import load_more

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::SyntaxWarning")  # invalid escapes in corrupted lines
CASES = int(os.environ.get("VMHAN_FUZZ_CASES", "1000"))
WRONG_VALUES: tuple[Any, ...] = (None, 0, -1, 7, 2.5, True, "", "x", [], [1], [0, 99], ["a", 1], {}, {"name": 1},
                                 (0, 1), [0.5, 0.5, 0.2, 0.2], [0.5, 0.5, 0, 0.1], [2, 0.5, 0.1, 0.1], 1e999)
MORE_NEGATIVE = "none"
OBJECTS = {"man": [0.3, 0.5, 0.4, 0.8], "logo": [0.75, 0.25, 0.3, 0.3]}


def _mutate(line: str, rng: random.Random) -> bytes:
    """One corruption of a real line (a dict literal), as the bytes of the line."""
    raw = line.encode("utf-8")
    kind = rng.randrange(6)
    if kind == 0:  # truncated
        return raw[: rng.randrange(len(raw))]
    if kind == 1:  # one byte flipped
        at = rng.randrange(len(raw))
        return raw[:at] + bytes([rng.randrange(256)]) + raw[at + 1:]
    if kind == 2:  # bytes inserted
        at = rng.randrange(len(raw) + 1)
        return raw[:at] + rng.choice([b"{", b"}", b"'", b",", b"\x00", b"\n", b"\xff", b"\\", b" ", b"]"]) + raw[at:]
    record = ast.literal_eval(line)
    path = _random_path(record, rng)
    parent = record
    for key in path[:-1]:
        parent = parent[key]
    if kind == 3:  # a wrong type or value anywhere
        parent[path[-1]] = rng.choice(WRONG_VALUES)
    elif kind == 4 and isinstance(parent, dict):  # a field missing
        del parent[path[-1]]
    else:  # spans (and boxes) moved, maybe out of range
        for entity in ("h", "t"):
            if isinstance(record.get(entity), dict) and "pos" in record[entity]:
                start = rng.randrange(-2, len(record["token"]) + 3)
                record[entity]["pos"] = [start, start + rng.randrange(-1, 4)]
            if isinstance(record.get(entity), dict) and "box" in record[entity]:
                record[entity]["box"] = [round(rng.uniform(-0.2, 1.2), 2) for _ in range(4)]
    return repr(record).encode("utf-8")


def _random_path(record: dict, rng: random.Random) -> list:
    """A random key path into the record (a field, or a field of ``h`` / ``t``, or an element of a list)."""
    path: list = [rng.choice(list(record))]
    value = record[path[0]]
    while isinstance(value, (dict, list)) and value and rng.random() < 0.6:
        key = rng.choice(list(value)) if isinstance(value, dict) else rng.randrange(len(value))
        path.append(key)
        value = value[key]
    return path


def _lines_of(data: bytes) -> list[tuple[int, str | None]]:
    """(line number, text or None where not UTF-8) of every non-blank line, as files iterate them."""
    lines = []
    for number, raw in enumerate(data.split(b"\n"), start=1):
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            lines.append((number, None))
            continue
        if text.strip():
            lines.append((number, text))
    return lines


def _literal(text: str) -> dict | None:
    try:
        raw = ast.literal_eval(text)
    except Exception:  # noqa: BLE001 -- any failure is a malformed line in the reference
        return None
    return raw if isinstance(raw, dict) else None


def _span(entity: Any, n_tokens: int) -> tuple | None:
    if not (isinstance(entity, dict) and isinstance(entity.get("name"), str)):
        return None
    pos = entity.get("pos")
    if not (isinstance(pos, (list, tuple)) and len(pos) == 2 and all(type(p) is int for p in pos)):
        return None
    return (entity["name"], pos[0], pos[1]) if 0 <= pos[0] < pos[1] <= n_tokens else None


def _record(text: str, labels: frozenset[str]) -> tuple[dict, list[str]] | None:
    raw = _literal(text)
    if raw is None or not {"token", "h", "t", "img_id", "relation"} <= raw.keys():
        return None
    tokens = raw["token"]
    if not (isinstance(tokens, list) and tokens and all(isinstance(t, str) for t in tokens)):
        return None
    if not (isinstance(raw["img_id"], str) and isinstance(raw["relation"], str)):
        return None
    return raw, tokens


def reference_mnre(text: str, labels: frozenset[str]) -> tuple | None:
    """An MNRE line as (tokens, head, tail, image, relation), or None where it must be refused."""
    found = _record(text, labels)
    if found is None or found[0]["relation"] not in labels:
        return None
    raw, tokens = found
    head, tail = _span(raw["h"], len(tokens)), _span(raw["t"], len(tokens))
    return None if head is None or tail is None else (tuple(tokens), head, tail, raw["img_id"], raw["relation"])


def _box_ok(box: Any) -> bool:
    numbers = isinstance(box, (list, tuple)) and len(box) == 4 and all(
        isinstance(v, (int, float)) and not isinstance(v, bool) for v in box)
    return numbers and all(0 <= v <= 1 for v in box) and box[2] > 0 and box[3] > 0


def reference_more(text: str, labels: frozenset[str]) -> tuple | None:
    """A MORE line as (tokens with the tail appended, head, tail, image, relation), or None."""
    found = _record(text, labels)
    if found is None:
        return None
    raw, tokens = found
    relation = "None" if raw["relation"] == MORE_NEGATIVE else raw["relation"]
    tail = raw["t"]
    if relation not in labels or _span(raw["h"], len(tokens)) is None:
        return None
    if not (isinstance(tail, dict) and isinstance(tail.get("name"), str) and "box" in tail and _box_ok(tail["box"])):
        return None
    if raw["img_id"] != "a.jpg" or tail["name"] not in OBJECTS:
        return None
    names = tail["name"].split() or [tail["name"]]
    return ((*tokens, *names), _span(raw["h"], len(tokens)), (tail["name"], len(tokens), len(tokens) + len(names)),
            raw["img_id"], relation)


def reference_caption(text: str, labels: frozenset[str]) -> tuple | None:
    raw = _literal(text)
    if raw is None or not isinstance(raw.get("img_id"), str) or not isinstance(raw.get("text", 0), (str, type(None))):
        return None
    return raw["img_id"], (raw["text"] or "").strip()


def _reading(instance) -> tuple:
    return (instance.tokens, (instance.head.name, instance.head.start, instance.head.end),
            (instance.tail.name, instance.tail.start, instance.tail.end), instance.img_id, instance.relation)


def _fuzz(lines: list[str], path: Path, load: Callable[[], list[tuple]], reference: Callable, labels: frozenset[str],
          seed: int, capsys: pytest.CaptureFixture, what: str) -> None:
    rng = random.Random(seed)
    outcomes = {"loaded": 0, "refused": 0}
    for case in range(CASES):
        good, bad = rng.sample(lines, 2)
        data = good.encode("utf-8") + b"\n" + _mutate(bad, rng) + b"\n"
        path.write_bytes(data)
        expected, refused_at = [], None
        for number, text in _lines_of(data):
            reading = None if text is None else reference(text, labels)
            if reading is None:
                refused_at = number
                break
            expected.append(reading)
        try:
            got = load()
        except DataFormatError as err:
            assert refused_at is not None and str(err).startswith(f"{path}:{refused_at}:"), (case, data, str(err))
            outcomes["refused"] += 1
            continue
        assert refused_at is None and got == expected, (case, data)
        outcomes["loaded"] += 1
    with capsys.disabled():
        print(f"\n{what}: {CASES} corrupted files, {outcomes['loaded']} loaded equal to the reference, "
              f"{outcomes['refused']} refused naming file and line")


@pytest.fixture(scope="module")
def real_lines(mnre_dir: Path) -> dict[str, list[str]]:
    text = (mnre_dir / "text" / "mnre_test.txt").read_text(encoding="utf-8").splitlines()[:200]
    captions = (mnre_dir / "captions" / "qwen_test.txt").read_text(encoding="utf-8").splitlines()[:200]
    return {"mnre": [line for line in text if line.strip()], "captions": [line for line in captions if line.strip()]}


def test_mnre_split_reader(real_lines, mnre_dir: Path, tmp_path: Path, capsys) -> None:
    vocab = load_relation_vocab(mnre_dir)
    root = tmp_path / "mnre"
    (root / "text").mkdir(parents=True)
    path = root / "text" / "mnre_test.txt"
    _fuzz(real_lines["mnre"], path, lambda: [_reading(i) for i in load_mnre(root, "test", vocab)], reference_mnre,
          frozenset(vocab.labels), 1, capsys, "MNRE split reader")


def test_more_split_reader(real_lines, tmp_path: Path, capsys) -> None:
    rng = random.Random(0)
    lines = []
    for line in real_lines["mnre"]:  # real sentences and heads, as MORE lines: an object of image a.jpg as tail
        record = ast.literal_eval(line)
        name = rng.choice(list(OBJECTS))
        lines.append(repr({"token": record["token"], "h": record["h"], "t": {"name": name, "box": OBJECTS[name]},
                           "img_id": "a.jpg", "relation": rng.choice([MORE_NEGATIVE, "/per/loc/place_of_residence"])}))
    root = tmp_path / "more"
    (root / "txt").mkdir(parents=True)
    (root / "rel2id.json").write_text(json.dumps({MORE_NEGATIVE: 0, "/per/loc/place_of_residence": 1}) + "\n")
    (root / "ent_test_dict.json").write_text(json.dumps({"a.jpg": OBJECTS}))
    vocab = RelationVocab(("None", "/per/loc/place_of_residence"))
    _fuzz(lines, root / "txt" / "test.txt", lambda: [_reading(i) for i in load_more(root, "test")], reference_more,
          frozenset(vocab.labels), 2, capsys, "MORE split reader")


def test_caption_reader(real_lines, tmp_path: Path, capsys) -> None:
    root = tmp_path / "mnre"
    (root / "captions").mkdir(parents=True)
    path = root / "captions" / "qwen_test.txt"

    def load() -> list[tuple]:
        return list(load_captions(root, "qwen", "test").items())

    def reference(text: str, labels: frozenset[str]) -> tuple | None:
        return reference_caption(text, labels)

    _fuzz(real_lines["captions"], path, load, reference, frozenset(), 3, capsys, "caption reader")
