"""The paper's three prompts verbatim, and how count, pair and context are filled in."""

from __future__ import annotations

import re

import pytest
from node_selection_fixtures import CAPTION, SENTENCE, make_instance

from vmhan_lib.paths import REPO_ROOT
from vmhan_lib.features.node_selection.prompts import (
    PAPER_OBJECT_PROMPT,
    PAPER_TEXT_NODE_PROMPT,
    PAPER_VISUAL_NODE_PROMPT,
    fill_paper_prompt,
    object_prompt,
    text_node_prompt,
    visual_node_prompt,
)

PAPER_FILE = REPO_ROOT.parent / "shared" / "paper" / "vmhan-paper.md"
# Section 4.1 of the paper as typeset (the first prompt spans four lines there).
PAPER_PROMPTS_AS_TYPESET = [
    "Please identify and extract the top m\nentities and actions that are most\nrelevant for relation extraction\n"
    "involving the given entity pair (h,t).",
    "Please identify and extract the top n entities and actions from the image that are most relevant to the "
    "given entity pair (h,t).",
    "Please identify and select the top k objects in the image that are semantically most relevant to the "
    "given entity pair (h,t).",
]


def _squash(text: str) -> str:
    return " ".join(text.split())


def test_prompt_constants_are_the_papers_text() -> None:
    constants = [PAPER_TEXT_NODE_PROMPT, PAPER_VISUAL_NODE_PROMPT, PAPER_OBJECT_PROMPT]
    assert constants == [_squash(p) for p in PAPER_PROMPTS_AS_TYPESET]
    if not PAPER_FILE.is_file():
        pytest.skip(f"paper text not found at {PAPER_FILE}")
    paper = PAPER_FILE.read_text(encoding="utf-8")
    section = paper[paper.index("# 4.1 Multi-Modal Hypergraph Construction"):paper.index("# 4.2 ")]
    blocks = re.findall(r"```\n(.*?)\n```", section, flags=re.S)
    assert blocks == PAPER_PROMPTS_AS_TYPESET
    assert constants == [_squash(block) for block in blocks]


def test_prompts_fill_count_and_pair_and_keep_the_papers_words() -> None:
    instance = make_instance()
    assert fill_paper_prompt("text", 5, "Obama", "Michelle") == (
        "Please identify and extract the top 5 entities and actions that are most relevant for relation "
        "extraction involving the given entity pair (Obama, Michelle).")
    prompt = text_node_prompt(instance, 3)
    assert prompt.text.startswith(fill_paper_prompt("text", 3, "Obama", "Michelle") + "\n\n")
    assert f"Sentence: {SENTENCE}" in prompt.text and "at most 3" in prompt.answer_format
    visual = visual_node_prompt(instance, CAPTION, 2)
    assert visual.instruction == PAPER_VISUAL_NODE_PROMPT.replace("top n", "top 2").replace("(h,t)", "(Obama, Michelle)")
    assert CAPTION in visual.context
    objects = object_prompt(instance, ["person", "tie"], 1)
    assert objects.instruction == PAPER_OBJECT_PROMPT.replace("top k", "top 1").replace("(h,t)", "(Obama, Michelle)")
    assert "1. person\n2. tie" in objects.context
    with pytest.raises(ValueError, match="allowed: text, visual, objects"):
        fill_paper_prompt("audio", 1, "a", "b")
