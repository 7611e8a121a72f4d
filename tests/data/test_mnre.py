from __future__ import annotations

from pathlib import Path

import pytest

from vmhan_lib.data.mnre import (
    DataFormatError,
    Entity,
    entity_relation_categories,
    group_by_sentence,
    load_mnre,
    load_relation_vocab,
)


def test_tiny_fixture_parses_into_typed_instances(tiny_mnre: Path) -> None:
    train = load_mnre(tiny_mnre, "train")
    assert [x.index for x in train] == [0, 1, 2, 3]
    first = train[0]
    assert first.tokens == ("Alice", "met", "Bob", "at", "Acme", ".")
    assert first.head == Entity("Alice", 0, 1)
    assert first.tail.span == (2, 3)
    assert first.img_id == "a.jpg" and first.relation == "/per/per/peer"
    assert train[3].head.name == "Expo 2020" and train[3].tokens[slice(*train[3].head.span)] == ("Expo", "2020")


def test_upstream_val_name_with_space_is_accepted(tmp_path: Path) -> None:
    from tests.conftest import write_tiny_mnre

    root = write_tiny_mnre(tmp_path / "mnre", val_name="mnre_val .txt")
    assert [x.relation for x in load_mnre(root, "val")] == ["None"]


def test_vocab_order_and_none_first(tiny_mnre: Path) -> None:
    vocab = load_relation_vocab(tiny_mnre)
    assert vocab.labels[0] == "None"
    assert vocab.ids(["None", "/per/org/member_of", "/misc/loc/held_on"]) == [0, 2, 3]
    with pytest.raises(KeyError, match="unknown relation '/nope'"):
        vocab.ids(["None", "/nope"])


def _corrupt(root: Path, split_file: str, line_no: int, new_line: str) -> None:
    path = root / "text" / split_file
    lines = path.read_text().splitlines()
    lines[line_no - 1] = new_line
    path.write_text("\n".join(lines) + "\n")


@pytest.mark.parametrize(
    "bad_line, message",
    [
        ("{'token': ['a', 'b'", "not a Python-literal dict"),
        ("__import__('os').system('echo pwned')", "not a Python-literal dict"),
        ("['a', 'list']", "expected a dict"),
        ("{'token': ['a'], 'h': {'name': 'a', 'pos': [0, 1]}, 't': {'name': 'a', 'pos': [0, 1]}, 'img_id': 'x'}",
         "missing field"),
        ("{'token': ['a', 'b'], 'h': {'name': 'a', 'pos': [0, 1]}, 't': {'name': 'c', 'pos': [1, 5]}, "
         "'img_id': 'x', 'relation': 'None'}", r"t span \[1, 5\) is outside the 2 tokens"),
        ("{'token': ['a', 'b'], 'h': {'name': 'a', 'pos': [0, 1]}, 't': {'name': 'b', 'pos': [1, 2]}, "
         "'img_id': 'x', 'relation': '/made/up'}", "unknown relation label '/made/up'"),
    ],
)
def test_malformed_line_names_file_and_line(tiny_mnre: Path, bad_line: str, message: str) -> None:
    _corrupt(tiny_mnre, "mnre_train.txt", 3, bad_line)
    with pytest.raises(DataFormatError, match=message) as info:
        load_mnre(tiny_mnre, "train")
    assert "mnre_train.txt:3" in str(info.value)


def test_missing_split_names_directory_searched(tmp_path: Path) -> None:
    from tests.conftest import write_tiny_mnre

    root = write_tiny_mnre(tmp_path / "mnre")
    (root / "text" / "mnre_test.txt").unlink()
    with pytest.raises(DataFormatError, match="'mnre_test.txt'") as info:
        load_mnre(root, "test")
    assert str((root / "text").resolve()) in str(info.value)


def test_non_utf8_byte_names_file_line_and_column(tiny_mnre: Path) -> None:
    path = tiny_mnre / "text" / "mnre_train.txt"
    lines = path.read_bytes().splitlines(keepends=True)
    lines[1] = lines[1][:5] + b"\xff" + lines[1][5:]
    path.write_bytes(b"".join(lines))
    with pytest.raises(DataFormatError, match=r"mnre_train.txt:2: not UTF-8 \(byte 0xff at column 6\)"):
        load_mnre(tiny_mnre, "train")


def test_empty_split_file_is_an_error_not_an_empty_list(tiny_mnre: Path) -> None:
    (tiny_mnre / "text" / "mnre_val.txt").write_text("\n  \n")
    with pytest.raises(DataFormatError, match=r"mnre_val.txt: the val split holds no instance"):
        load_mnre(tiny_mnre, "val")


@pytest.mark.parametrize("load", [lambda d: load_mnre(d, "train"), load_relation_vocab])
def test_missing_data_directory_is_said_as_such(tmp_path: Path, load) -> None:
    missing = tmp_path / "nowhere"
    with pytest.raises(DataFormatError, match="MNRE data directory not found: ") as info:
        load(missing)
    assert str(missing.resolve()) in str(info.value) and "VMHAN_DATA" in str(info.value)


def test_unknown_split_lists_allowed(tiny_mnre: Path) -> None:
    with pytest.raises(ValueError, match="allowed: train, val, test"):
        load_mnre(tiny_mnre, "dev")


def test_grouping_by_sentence_and_entity_categories(tiny_mnre: Path) -> None:
    train = load_mnre(tiny_mnre, "train")
    groups = group_by_sentence(train)
    assert [g.n_pairs for g in groups] == [3, 1]
    assert groups[0].instance_indices == (0, 1, 2) and groups[0].img_id == "a.jpg"
    categories = entity_relation_categories(train)
    assert categories["Alice"] == {"/per/per/peer", "/per/org/member_of"}
    assert categories["Bob"] == {"/per/per/peer"}
    assert categories["Dubai"] == {"/misc/loc/held_on"}


@pytest.mark.real_data
def test_real_split_counts_and_facts(mnre_dir: Path) -> None:
    vocab = load_relation_vocab(mnre_dir)
    assert len(vocab) == 23
    splits = {s: load_mnre(mnre_dir, s, vocab) for s in ("train", "val", "test")}
    assert {s: len(v) for s, v in splits.items()} == {"train": 12247, "val": 1624, "test": 1614}
    test = splits["test"]
    assert sum(x.relation == "None" for x in test) == 974
    first = splits["train"][0]
    assert first.head == Entity("Circle Undone", 8, 10) and first.img_id == "twitter_19_31_16_6.jpg"
    for rows in splits.values():  # every span covers exactly the entity's name
        for x in rows:
            for entity in (x.head, x.tail):
                assert " ".join(x.tokens[entity.start:entity.end]) == entity.name
    pairs = [g.n_pairs for g in group_by_sentence(splits["train"])]
    assert min(pairs) == 1 and max(pairs) == 21
