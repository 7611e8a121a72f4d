"""Caption-based visual nodes: the image node and the k objects most relevant to (h, t).

The MNRE images are not reachable here; VLM captions of all 9,201 images are
(docs/offline_adaptations.md#visual-nodes-from-captions). So:

- **image node** v_I = sentence embedding of the image's caption (mean-pooled all-MiniLM-L6-v2,
  L2-normalised, as sentence-transformers computes it). With several captioners it is the
  normalised mean of their (normalised) caption embeddings; empty captions are skipped.
- **object nodes** v_o = noun phrases the captions name (:func:`extract_object_phrases`, a
  deterministic stop-word and pattern chunker, below), embedded the same way, and ranked per
  instance by *pair relevance* = mean of the cosine similarities to the head-name and tail-name
  embeddings (:func:`rank_objects`); the top k (default 3, the paper's) become nodes.

Object-phrase chunker (:func:`extract_object_phrases`), in order:

1. split the caption into words (letters, apostrophes and hyphens), numbers and punctuation;
2. a chunk is a maximal run of content words; it breaks at punctuation, numbers, function words
   (:data:`STOP_WORDS`: determiners, pronouns, prepositions, conjunctions, auxiliaries, caption
   verbs such as *wearing* or *shows*), adverbs in *-ly*, and verb forms in *-ing*/*-ed* -- except
   that an *-ing*/*-ed* word directly followed by a content word is kept as a modifier
   ("parking lot", "crossed legs"), as are the -ing nouns of :data:`ING_NOUNS` ("building");
3. a chunk keeps its last ``max_phrase_words`` words (English noun phrases end in their head noun);
4. chunks made only of generic words (:data:`GENERIC_WORDS`: "image", "background", colours,
   plain adjectives, ...) are dropped; the rest are deduplicated case-insensitively in order of
   first appearance.

The default captioner is chosen on dev by
:func:`vmhan_lib.analysis.captioner_choice.compare_captioners` (``python -m
vmhan_lib.analysis.captioner_choice``), which writes ``results/captioner_choice.json``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import torch

from vmhan_lib.data.captions import CAPTIONERS, captions_path, load_captions
from vmhan_lib.features.cache import FeatureCache
from vmhan_lib.features.config import MAX_CAPTION_TOKENS, MAX_PHRASE_WORDS, CaptionNodeConfig
from vmhan_lib.features.text_encoder import SentenceEmbedder
from vmhan_lib.identity import CODE_VERSIONS, digest, files_sha256


STOP_WORDS: frozenset[str] = frozenset("""
a an the this that these those some any each every either neither no both all another other such
i me my mine we us our ours you your yours he him his she her hers it its they them their theirs
one ones someone something anyone anything everyone everything nobody nothing somebody itself
himself herself themselves myself yourself ourselves what which who whom whose where when why how
whether while whilst as than then there here thus so too very also just only even still yet not
nor or and but if because though although since until unless however perhaps possibly likely
of in on at by for with without within into onto upon from to toward towards over under above
below beneath behind beside besides between among amongst around about across along against
through throughout during before after near nearby off out up down like via per amid inside
outside alongside atop underneath past beyond
is are was were be been being am has have had having do does did done doing can could may might
must shall should will would
shows show showing shown depicts depict depicting depicted features feature featuring featured
displays display displaying displayed contains contain containing appears appear appearing
seems seem seeming looks look looking sits sit sitting stands stand standing holds hold holding
wears wear wearing smiles smile smiling poses pose posing walks walk walking plays play playing
raises raise raising celebrates celebrate celebrating talks talk talking speaks speak speaking
performs perform performing sings sing singing gives give giving uses use using carries carry
carrying waves wave waving rides ride riding runs run running lies lie lying leans lean leaning
faces facing points pointing reads read reading eats eat eating drinks drink drinking dances
dance dancing watches watch watching takes take taking gets get getting makes make making
includes include including surrounds surround surrounding suggests suggest suggesting indicates
indicate indicating captures capture capturing captured says say saying said reads
gathered gathering smiling laughing looking posed seen taken visible located placed positioned
set holding stood sat held wore took made gave came went worn add adds amidst upwards downwards
overhead identifiable two three four five six seven eight nine ten dozen
""".split())

ING_NOUNS: frozenset[str] = frozenset("""
building buildings clothing painting paintings ceiling wedding evening morning meeting ring rings
king thing things string sibling siblings wing wings spring swing earring earrings railing
pudding stuffing frosting icing topping filling lettering writing drawing drawings sing awning
bedding lighting housing ending feeling opening sling shilling viking vikings duckling darling
""".split())

LY_NOUNS: frozenset[str] = frozenset("""
family rally italy july jelly belly lily fly ally holly bully reply supply assembly butterfly
""".split())

GENERIC_WORDS: frozenset[str] = frozenset("""
image images picture pictures photo photos photograph photographs scene scenes view views shot
background foreground setting left right top bottom side sides middle center centre front back
part parts area areas kind sort type types lot lots number numbers couple group groups piece
pieces way ways moment time something style overall
red orange yellow green blue purple pink brown black white gray grey silver gold golden beige
dark light bright colorful colourful large small big little tall short long wide narrow huge
tiny young old new clear blurry blurred various several many few multiple different same
other main visible prominent possible likely close distant full empty high low
""".split())

_WORD_PATTERN = re.compile(r"[^\W\d_](?:[\w'\-]*[^\W_])?|\d[\d.,:]*|\S")


def _is_word(token: str) -> bool:
    return token[0].isalpha()


def _is_verb_form(word: str) -> bool:
    lower = word.lower()
    if lower in ING_NOUNS:
        return False
    if lower.endswith("ing") and len(lower) > 4:
        return True
    return lower.endswith("ed") and len(lower) > 4 and not lower.endswith("eed")


def _breaks_chunk(word: str, next_token: str | None) -> bool:
    lower = word.lower()
    if lower in STOP_WORDS or lower.endswith("'s") or lower == "'":
        return True
    if lower.endswith("ly") and len(lower) > 3 and lower not in LY_NOUNS:
        return True
    if _is_verb_form(word):
        followed_by_content = (
            next_token is not None and _is_word(next_token) and next_token.lower() not in STOP_WORDS
            and not _is_verb_form(next_token)
        )
        return not followed_by_content
    return False


def extract_object_phrases(caption: str, max_phrase_words: int = MAX_PHRASE_WORDS) -> list[str]:
    """Candidate object phrases named by ``caption`` (see the module docstring for the method).

    Example: ``"A snowy parking lot with a white car parked. The sky is clear and blue."`` gives
    ``["snowy parking lot", "white car", "sky"]``.
    """
    tokens = _WORD_PATTERN.findall(caption)
    chunks: list[list[str]] = []
    current: list[str] = []
    for position, token in enumerate(tokens):
        next_token = tokens[position + 1] if position + 1 < len(tokens) else None
        if _is_word(token) and not _breaks_chunk(token, next_token):
            current.append(token)
            continue
        owner = token[:-2] if _is_word(token) and token.lower().endswith("'s") else ""
        if owner and owner.lower() not in STOP_WORDS:  # "Bayern Munich's jersey": the owner ends a chunk
            current.append(owner)
        if current:
            chunks.append(current)
        current = []
    if current:
        chunks.append(current)
    phrases: list[str] = []
    seen: set[str] = set()
    for chunk in chunks:
        words = chunk[-max_phrase_words:]
        if all(w.lower() in GENERIC_WORDS for w in words) or all(len(w) < 2 for w in words):
            continue
        phrase = " ".join(words)
        if phrase.lower() not in seen:
            seen.add(phrase.lower())
            phrases.append(phrase)
    return phrases


def pair_relevance(object_embeddings: torch.Tensor, head: torch.Tensor, tail: torch.Tensor) -> torch.Tensor:
    """Relevance of each object to the pair: mean of its cosine similarities to head and tail.

    Args:
        object_embeddings: ``[n, d]``; head, tail: ``[d]`` (any norm; cosines are computed).
    """
    objects = torch.nn.functional.normalize(object_embeddings, dim=-1)
    pair = torch.nn.functional.normalize(torch.stack([head, tail]), dim=-1)
    return (objects @ pair.T).mean(dim=-1)


def rank_objects(object_embeddings: torch.Tensor, head: torch.Tensor, tail: torch.Tensor, k: int) -> list[int]:
    """Indices of the ``k`` objects most relevant to (head, tail), best first (ties: earlier first)."""
    if object_embeddings.shape[0] == 0 or k == 0:
        return []
    scores = pair_relevance(object_embeddings, head, tail)
    order = sorted(range(len(scores)), key=lambda i: (-float(scores[i]), i))
    return order[:k]


@dataclass
class CaptionIndex:
    """Caption-based visual material of a set of images (one split, one captioner choice).

    Attributes:
        img_ids: the images, in order.
        image_embeddings: ``[n_images, d]`` image-node features (zeros where no caption).
        missing_reason: per image, ``""`` if it has a caption, else why not
            (``"no caption line"`` or ``"empty caption"``).
        object_phrases: per image, its object phrases (empty when objects were not computed).
        object_embeddings: per image, ``[n_objects, d]``.
    """

    img_ids: list[str]
    image_embeddings: torch.Tensor
    missing_reason: list[str]
    object_phrases: list[list[str]]
    object_embeddings: list[torch.Tensor]

    def __post_init__(self) -> None:
        self._rows = {image: i for i, image in enumerate(self.img_ids)}

    def row(self, img_id: str) -> int:
        """Row of ``img_id`` in :attr:`image_embeddings` and the per-image lists."""
        return self._rows[img_id]


def check_captioners(captioners: Sequence[str]) -> tuple[str, ...]:
    """``captioners`` as a tuple; raises ``ValueError`` unless it is a non-empty subset of :data:`CAPTIONERS`."""
    unknown = [c for c in captioners if c not in CAPTIONERS]
    if not captioners or unknown:
        raise ValueError(f"captioners must be a non-empty subset of {', '.join(CAPTIONERS)}; got {list(captioners)}")
    return tuple(captioners)


def caption_texts(
    data_dir: str | Path, split: str, img_ids: Sequence[str], captioners: Sequence[str]
) -> tuple[list[list[str]], list[str]]:
    """Per image, its non-empty captions (one per captioner that has one), and the reason when none."""
    tables = {name: load_captions(data_dir, name, split) for name in check_captioners(captioners)}
    texts: list[list[str]] = []
    reasons: list[str] = []
    for img_id in img_ids:
        present = [tables[name].get(img_id) for name in tables]
        non_empty = [text for text in present if text]
        texts.append(non_empty)
        reasons.append("" if non_empty else ("no caption line" if all(t is None for t in present) else "empty caption"))
    return texts, reasons


def _embed_images(embedder: SentenceEmbedder, texts: list[list[str]], captioners: Sequence[str],
                  progress: bool) -> dict[str, torch.Tensor]:
    """Image-node features ``[n_images, d]``: per image, the L2-normalised mean of its caption
    embeddings (zeros for an image without caption); every caption is embedded in one pass."""
    flat = [text for image_texts in texts for text in image_texts]
    flat_embeddings = embedder.embed(flat, show_progress=progress, desc=f"embed {'+'.join(captioners)} captions")
    image_embeddings = torch.zeros((len(texts), embedder.dimension))
    offset = 0
    for row, image_texts in enumerate(texts):
        if image_texts:
            mean = flat_embeddings[offset:offset + len(image_texts)].mean(0)
            image_embeddings[row] = torch.nn.functional.normalize(mean, dim=-1)
        offset += len(image_texts)
    return {"image_embeddings": image_embeddings}


def _embed_objects(embedder: SentenceEmbedder, texts: list[list[str]], progress: bool) -> dict[str, Any]:
    """Per image, its object phrases (deduplicated over its captions), how many, and their
    embeddings stacked ``[sum of counts, d]``; each distinct phrase is embedded once."""
    phrases = [
        list(dict.fromkeys(p for text in image_texts for p in extract_object_phrases(text, MAX_PHRASE_WORDS)))
        for image_texts in texts
    ]
    unique_phrases = list(dict.fromkeys(p for image_phrases in phrases for p in image_phrases))
    embeddings = embedder.embed(unique_phrases, show_progress=progress, desc="embed object phrases")
    row_of = {p: i for i, p in enumerate(unique_phrases)}
    counts = [len(p) for p in phrases]
    flat_rows = torch.tensor([row_of[p] for image_phrases in phrases for p in image_phrases], dtype=torch.long)
    return {"phrases": phrases, "counts": counts, "embeddings": embeddings[flat_rows]}


def build_caption_index(
    data_dir: str | Path,
    split: str,
    img_ids: Sequence[str],
    captioners: Sequence[str],
    config: CaptionNodeConfig = CaptionNodeConfig(),
    cache: FeatureCache | None = None,
    with_objects: bool = True,
) -> CaptionIndex:
    """Embed the captions (and, with ``with_objects``, the object phrases) of ``img_ids``, cached.

    The cache key holds the embedder identity (weights sha256), the captioners, the sha256 of their
    caption files, the image set, the chunker version and its settings.
    """
    captioners = check_captioners(captioners)
    unique_ids = list(dict.fromkeys(img_ids))
    active = cache or FeatureCache(enabled=False)
    embedder = SentenceEmbedder(config.embedder, MAX_CAPTION_TOKENS, active.batch_size, active.device)
    key = {
        "embedder": embedder.identity,
        "captioners": list(captioners),
        "caption_files": files_sha256([captions_path(data_dir, c, split) for c in captioners]),
        "images": digest({"ids": unique_ids}),
        "max_caption_tokens": MAX_CAPTION_TOKENS,
    }
    texts, reasons = caption_texts(data_dir, split, unique_ids, captioners)
    images = active.load_or_compute(
        "caption-images", split, key, lambda: _embed_images(embedder, texts, captioners, active.progress))
    if with_objects:
        objects = active.load_or_compute(
            "caption-objects", split,
            {**key, "chunker": CODE_VERSIONS["chunker"], "max_phrase_words": MAX_PHRASE_WORDS},
            lambda: _embed_objects(embedder, texts, active.progress),
        )
        object_embeddings = list(torch.split(objects["embeddings"], objects["counts"]))
        object_phrases = objects["phrases"]
    else:
        object_phrases = [[] for _ in unique_ids]
        object_embeddings = [torch.zeros((0, embedder.dimension)) for _ in unique_ids]
    return CaptionIndex(unique_ids, images["image_embeddings"], reasons, object_phrases, object_embeddings)
