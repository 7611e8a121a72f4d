"""The paper's three node-selection prompts (section 4.1), verbatim, and how they are filled in.

The constants below are the paper's text exactly; the only change is that the first prompt,
which the paper typesets over four lines, is written on one line (the test compares them with
the paper with whitespace normalised). A prompt sent to a model is built in three parts:

1. the verbatim prompt with the count (m, n or k) and the entity pair (h,t) filled in,
2. the context the paper's models saw: the sentence (text nodes), a description of the image
   (visual nodes; here a VLM caption stands in for the image, docs/offline_adaptations.md#llm-node-selection), or the
   candidate objects (object selection),
3. an instruction for the answer format, appended separately so that the paper's words are
   never edited.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from vmhan_lib.data.mnre import Instance

PAPER_TEXT_NODE_PROMPT = (
    "Please identify and extract the top m entities and actions that are most relevant for relation "
    "extraction involving the given entity pair (h,t)."
)
"""Section 4.1, text nodes (the paper sends it to LLaMA3 with the sentence)."""

PAPER_VISUAL_NODE_PROMPT = (
    "Please identify and extract the top n entities and actions from the image that are most relevant "
    "to the given entity pair (h,t)."
)
"""Section 4.1, visual nodes (the paper sends it to LLaVA with the image)."""

PAPER_OBJECT_PROMPT = (
    "Please identify and select the top k objects in the image that are semantically most relevant to "
    "the given entity pair (h,t)."
)
"""Section 4.1, the k objects among the detected ones (the paper uses LLaVA)."""

_PAPER_PROMPTS: dict[str, tuple[str, str, str]] = {
    # kind -> (verbatim prompt, the symbol standing for the count in it, what the answer lists)
    "text": (PAPER_TEXT_NODE_PROMPT, "m",
             "short spans copied exactly from the sentence, not the two entities themselves"),
    "visual": (PAPER_VISUAL_NODE_PROMPT, "n", "short phrases (entities or actions seen in the image)"),
    "objects": (PAPER_OBJECT_PROMPT, "k", "object names copied exactly from the list of detected objects"),
}
PAIR_PLACEHOLDER = "(h,t)"
ANSWER_FORMAT = ("Answer with a numbered list of at most {count} {items}, one per line, most relevant first. "
                 "Output only the list.")
"""The answer-format instruction appended after the paper's prompt and the context."""


@dataclass(frozen=True)
class NodePrompt:
    """One prompt as sent to a chat model.

    Attributes:
        kind: ``text``, ``visual`` or ``objects``.
        instruction: the paper's prompt with count and pair filled in.
        context: what the model reads (sentence, image description, detected objects).
        answer_format: the separately appended instruction for the answer's form.
    """

    kind: str
    instruction: str
    context: str
    answer_format: str

    @property
    def text(self) -> str:
        """The full user message: instruction, context, answer format, separated by blank lines."""
        return "\n\n".join((self.instruction, self.context, self.answer_format))


def fill_paper_prompt(kind: str, count: int, head: str, tail: str) -> str:
    """The paper's prompt of ``kind`` with its count symbol replaced by ``count`` and (h,t) by the pair.

    Raises:
        ValueError: unknown ``kind`` (allowed: text, visual, objects) or a negative count.
    """
    if kind not in _PAPER_PROMPTS:
        raise ValueError(f"unknown prompt kind {kind!r}; allowed: {', '.join(_PAPER_PROMPTS)}")
    if count < 0:
        raise ValueError(f"count must be >= 0, got {count}")
    template, symbol, _ = _PAPER_PROMPTS[kind]
    filled = template.replace(f" top {symbol} ", f" top {count} ", 1)
    return filled.replace(PAIR_PLACEHOLDER, f"({head}, {tail})", 1)


def _node_prompt(kind: str, instance: Instance, count: int, context: str) -> NodePrompt:
    """The prompt of ``kind`` for ``instance``: the paper's words filled in, ``context``, the answer format."""
    items = _PAPER_PROMPTS[kind][2]
    return NodePrompt(kind, fill_paper_prompt(kind, count, instance.head.name, instance.tail.name), context,
                      ANSWER_FORMAT.format(count=count, items=items))


def text_node_prompt(instance: Instance, m: int) -> NodePrompt:
    """Prompt for the m text nodes of ``instance`` (context: the sentence)."""
    return _node_prompt("text", instance, m, f"Sentence: {instance.text}")


def visual_node_prompt(instance: Instance, caption: str, n: int) -> NodePrompt:
    """Prompt for the n visual nodes of ``instance`` (context: the image description and the sentence)."""
    return _node_prompt("visual", instance, n,
                        f"Image description: {caption.strip()}\nSentence posted with the image: {instance.text}")


def object_prompt(instance: Instance, candidates: Sequence[str], k: int) -> NodePrompt:
    """Prompt for choosing k of the detected objects ``candidates`` (numbered in the context)."""
    listing = "\n".join(f"{i}. {name}" for i, name in enumerate(candidates, start=1))
    return _node_prompt("objects", instance, k,
                        f"Objects detected in the image:\n{listing}\nSentence posted with the image: {instance.text}")
