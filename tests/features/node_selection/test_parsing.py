"""Answer parsing (lists, numbered lines, commas, quotes) and matching items to the instance."""

from __future__ import annotations

import pytest
from node_selection_fixtures import make_instance

from vmhan_lib.features.node_selection.parsing import (
    clean_phrases,
    match_candidates,
    match_text_spans,
    parse_answer_items,
)


@pytest.mark.parametrize("answer, expected", [
    ('["Paris", "his wife"]', ["Paris", "his wife"]),
    ("```json\n[\"Paris\", 'his wife']\n```", ["Paris", "his wife"]),
    ("['Paris', 'his wife']", ["Paris", "his wife"]),
    ('Sure! Here you go: ["Paris", "Paris", "visited"] hope it helps', ["Paris", "visited"]),
    ('[{"entity": "Paris"}, {"entity": "Monday"}]', ["Paris", "Monday"]),
    ("1. Paris\n2) his wife\n- visited", ["Paris", "his wife", "visited"]),
    ("Here are the entities:\n1. **Paris** - the city\n2. Monday: the day", ["Paris", "Monday"]),
    ("Paris, his wife; Monday.", ["Paris", "his wife", "Monday"]),
    ('"Paris", "his wife"', ["Paris", "his wife"]),
    ('["Paris", "his wi', ["Paris", "his wi"]),
    ("Paris\nvisited", ["Paris", "visited"]),
    ("", []),
    ("   \n  ", []),
    ("[]", []),
    ("The answer is:", []),
])
def test_parse_answer_items(answer: str, expected: list[str]) -> None:
    assert parse_answer_items(answer) == expected


def test_text_spans_must_occur_in_the_sentence_and_not_be_entities() -> None:
    items = ["paris", "His Wife", "Obama", "visited Paris on", "London", "Michelle visited",
             "Obama and his wife Michelle visited Paris on Monday", "Pari"]
    assert match_text_spans(items, make_instance()) == ["Paris", "his wife", "visited Paris on", "Michelle visited"]
    tweet = make_instance("RT @cnnsport : Rafael Nadal 's engagement", ("Rafael Nadal", 3, 5), ("@cnnsport", 1, 2))
    assert match_text_spans(["Nadal's engagement", "cnnsport"], tweet) == ["Nadal 's engagement"]


def test_candidates_by_name_or_number_each_used_once() -> None:
    candidates = ["person", "person", "tie"]
    assert match_candidates(["Person", "PERSON", "person", "car"], candidates) == ["person", "person"]
    assert match_candidates(["3", "1", "3", "9"], candidates) == ["tie", "person"]


def test_visual_phrases_need_a_content_word_and_few_words() -> None:
    answer = "1. The man and woman are kissing\n2. The\n3. a red dress\n4. -\n5. The man in the dark suit waves to the crowd"
    assert clean_phrases(parse_answer_items(answer)) == ["The man and woman are kissing", "a red dress"]
