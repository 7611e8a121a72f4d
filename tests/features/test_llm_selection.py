"""LLM node selection: the paper's prompts verbatim, answer parsing, fallback, cache, backends."""

from __future__ import annotations

import json
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Iterator, Sequence

import pytest

from vmhan_lib.config import REPO_ROOT
from vmhan_lib.data.mnre import Entity, Instance
from vmhan_lib.features.llm_selection import (
    AnswerCache,
    BackendError,
    EmbeddingRankSelector,
    LLMNodeSelector,
    NodeSelector,
    OpenAIChatBackend,
    SelectionStats,
    TransformersChatBackend,
    clean_phrases,
    content_chunks,
    make_node_selector,
    match_candidates,
    match_text_spans,
    parse_answer_items,
)
from vmhan_lib.features.prompts import (
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
SENTENCE = "Obama and his wife Michelle visited Paris on Monday ."
CAPTION = "Two people wave from the steps of a plane, a man in a dark suit and a woman in a red dress."


def _instance(tokens: str = SENTENCE, head: tuple[str, int, int] = ("Obama", 0, 1),
              tail: tuple[str, int, int] = ("Michelle", 4, 5)) -> Instance:
    return Instance(index=7, tokens=tuple(tokens.split()), head=Entity(*head), tail=Entity(*tail),
                    img_id="x.jpg", relation="/per/per/couple")


def _squash(text: str) -> str:
    return " ".join(text.split())


class CountingBackend:
    """A fake chat model: answers from a function of the prompt, counts its calls."""

    name = "fake"
    settings: dict[str, Any] = {"decoding": "greedy"}

    def __init__(self, answer: Any = "1. Paris\n2. his wife", model: str = "fake-1") -> None:
        self.answer = answer
        self.model = model
        self.prompts: list[str] = []

    @property
    def calls(self) -> int:
        return len(self.prompts)

    def complete(self, prompt: str) -> str:
        self.prompts.append(prompt)
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer(prompt) if callable(self.answer) else self.answer


class MarkerFallback:
    """A fallback selector whose answers are recognisable."""

    name = "marker"

    def __init__(self) -> None:
        self.stats = SelectionStats()

    def select_text_nodes(self, instance: Instance, m: int) -> list[str]:
        return ["FALLBACK-TEXT"]

    def select_visual_nodes(self, instance: Instance, caption: str, n: int) -> list[str]:
        return ["FALLBACK-VISUAL"]

    def select_objects(self, instance: Instance, candidates: Sequence[str], k: int) -> list[str]:
        return ["FALLBACK-OBJECT"]


def _selector(tmp_path: Path, backend: CountingBackend) -> LLMNodeSelector:
    return LLMNodeSelector(backend, AnswerCache(tmp_path / "llm"), fallback=MarkerFallback())


# --------------------------------------------------------------------------- prompts


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
    instance = _instance()
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


# --------------------------------------------------------------------------- parsing


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
    assert match_text_spans(items, _instance()) == ["Paris", "his wife", "visited Paris on", "Michelle visited"]
    tweet = _instance("RT @cnnsport : Rafael Nadal 's engagement", ("Rafael Nadal", 3, 5), ("@cnnsport", 1, 2))
    assert match_text_spans(["Nadal's engagement", "cnnsport"], tweet) == ["Nadal 's engagement"]


def test_candidates_by_name_or_number_each_used_once() -> None:
    candidates = ["person", "person", "tie"]
    assert match_candidates(["Person", "PERSON", "person", "car"], candidates) == ["person", "person"]
    assert match_candidates(["3", "1", "3", "9"], candidates) == ["tie", "person"]


def test_content_chunks_skip_entities_stopwords_and_urls() -> None:
    tokens = "RT @cnn : Obama and his wife visited Paris http://t.co/x".split()
    spans = content_chunks(tokens, blocked=[(3, 4)])
    assert [" ".join(tokens[s:e]) for s, e in spans] == ["@cnn", "wife visited Paris"]


# --------------------------------------------------------------------------- selector, cache, fallback


def test_llm_selector_keeps_valid_answers(tmp_path: Path) -> None:
    selector = _selector(tmp_path, CountingBackend(lambda p: "1. person\n2. tie" if "Objects" in p else "1. Paris\n2. his wife\n3. Monday"))
    instance = _instance()
    assert isinstance(selector, NodeSelector)
    assert selector.select_text_nodes(instance, 2) == ["Paris", "his wife"]
    assert selector.select_visual_nodes(instance, CAPTION, 3) == ["Paris", "his wife", "Monday"]
    assert selector.select_objects(instance, ["tie", "person", "car"], 1) == ["person"]
    assert selector.stats.total_fallbacks == 0 and selector.stats.backend_calls == 3
    assert selector.select_text_nodes(instance, 0) == [] and selector.select_objects(instance, [], 3) == []


@pytest.mark.parametrize("answer", ["", "I cannot help with that.", "1. London\n2. Berlin", "[]",
                                    "The top 3 entities and actions that are most relevant for relation extraction are"])
def test_unusable_answers_fall_back_and_are_counted(tmp_path: Path, answer: str) -> None:
    selector = _selector(tmp_path, CountingBackend(answer))
    instance = _instance()
    assert selector.select_text_nodes(instance, 3) == ["FALLBACK-TEXT"]
    assert selector.select_objects(instance, ["person", "tie"], 1) == ["FALLBACK-OBJECT"]
    assert selector.stats.fallbacks == {"text": 1, "objects": 1}
    assert selector.stats.fallback_examples[0][:2] == ("text", instance.index)


def test_visual_phrases_need_a_content_word_and_few_words() -> None:
    answer = "1. The man and woman are kissing\n2. The\n3. a red dress\n4. -\n5. The man in the dark suit waves to the crowd"
    assert clean_phrases(parse_answer_items(answer)) == ["The man and woman are kissing", "a red dress"]


def test_long_visual_answers_fall_back(tmp_path: Path) -> None:
    selector = _selector(tmp_path, CountingBackend("1. The man in the dark suit waves to the crowd from the plane."))
    assert selector.select_visual_nodes(_instance(), CAPTION, 2) == ["FALLBACK-VISUAL"]
    assert selector.stats.fallbacks == {"visual": 1}


def test_backend_errors_fall_back_and_are_not_cached(tmp_path: Path) -> None:
    backend = CountingBackend(BackendError("server down"))
    selector = _selector(tmp_path, backend)
    assert selector.select_text_nodes(_instance(), 2) == ["FALLBACK-TEXT"]
    assert selector.select_text_nodes(_instance(), 2) == ["FALLBACK-TEXT"]
    assert backend.calls == 2 and selector.stats.backend_errors == 2 and selector.stats.fallbacks["text"] == 2
    assert len(AnswerCache(tmp_path / "llm")) == 0


def test_rerun_is_served_from_the_disk_cache(tmp_path: Path) -> None:
    instance = _instance()
    first_backend = CountingBackend()
    first = _selector(tmp_path, first_backend)
    answer = first.select_text_nodes(instance, 2)
    assert first_backend.calls == 1 and first.stats.cache_hit_rate == 0.0
    assert len(first.stats.backend_seconds) == 1

    rerun_backend = CountingBackend(answer="never used")
    rerun = _selector(tmp_path, rerun_backend)
    assert rerun.select_text_nodes(instance, 2) == answer
    assert rerun_backend.calls == 0
    assert rerun.stats.cache_hits == 1 and rerun.stats.cache_hit_rate == 1.0
    assert "cache hit rate 100.0%" in str(rerun.stats)

    other_model = CountingBackend(model="fake-2")
    _selector(tmp_path, other_model).select_text_nodes(instance, 2)
    assert other_model.calls == 1  # the key includes the model
    record = json.loads((tmp_path / "llm" / "answers.jsonl").read_text().splitlines()[0])
    assert record["model"] == "fake-1" and record["prompt"] == text_node_prompt(instance, 2).text


def test_cache_skips_a_torn_line(tmp_path: Path) -> None:
    _selector(tmp_path, CountingBackend()).select_text_nodes(_instance(), 2)
    cache_file = tmp_path / "llm" / "answers.jsonl"
    with cache_file.open("a") as handle:
        handle.write('{"key": "abc", "answ')
    cache = AnswerCache(tmp_path / "llm")
    assert len(cache) == 1 and cache.skipped_lines == 1


def test_make_node_selector_rejects_unknown_kinds() -> None:
    with pytest.raises(ValueError, match="allowed: embedding, smollm2, transformers, openai"):
        make_node_selector("llama")
    with pytest.raises(ValueError, match="needs base_url"):
        make_node_selector("openai", model="m")


# --------------------------------------------------------------------------- OpenAI-compatible backend


class _FakeChatServer(BaseHTTPRequestHandler):
    requests: list[dict[str, Any]] = []

    def do_POST(self) -> None:  # noqa: N802 (http.server's name)
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).requests.append({"path": self.path, "auth": self.headers.get("Authorization"), "body": body})
        if self.path.startswith("/broken"):
            self._reply(500, {"error": "boom"})
        elif self.path.startswith("/slow"):
            time.sleep(1.5)
            self._reply(200, {"choices": [{"message": {"content": "late"}}]})
        elif self.path.startswith("/odd"):
            self._reply(200, {"result": "no choices"})
        else:
            self._reply(200, {"choices": [{"message": {"role": "assistant", "content": '["Paris", "his wife"]'}}]})

    def _reply(self, status: int, payload: dict[str, Any]) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: Any) -> None:
        return


@pytest.fixture
def chat_server() -> Iterator[str]:
    _FakeChatServer.requests = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _FakeChatServer)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_openai_backend_against_a_local_server(chat_server: str, tmp_path: Path) -> None:
    backend = OpenAIChatBackend(f"{chat_server}/v1", "tiny-llm", api_key="sk-test", timeout_s=5)
    selector = LLMNodeSelector(backend, AnswerCache(tmp_path / "llm"), fallback=MarkerFallback())
    assert selector.select_text_nodes(_instance(), 2) == ["Paris", "his wife"]
    (request,) = _FakeChatServer.requests
    assert request["path"] == "/v1/chat/completions" and request["auth"] == "Bearer sk-test"
    assert request["body"]["model"] == "tiny-llm" and request["body"]["temperature"] == 0
    assert request["body"]["messages"] == [{"role": "user", "content": text_node_prompt(_instance(), 2).text}]


def test_openai_backend_errors_are_clear(chat_server: str, tmp_path: Path) -> None:
    with pytest.raises(BackendError, match=r"/broken/chat/completions.*2 attempt\(s\): HTTP 500"):
        OpenAIChatBackend(f"{chat_server}/broken", "m", retries=1).complete("hi")
    with pytest.raises(BackendError, match="failed after 1 attempt"):
        OpenAIChatBackend(f"{chat_server}/slow", "m", timeout_s=0.3, retries=0).complete("hi")
    with pytest.raises(BackendError, match="no choices"):
        OpenAIChatBackend(f"{chat_server}/odd", "m").complete("hi")
    with pytest.raises(ValueError, match="http"):
        OpenAIChatBackend("127.0.0.1:9", "m")
    selector = LLMNodeSelector(OpenAIChatBackend(f"{chat_server}/broken", "m", retries=0),
                               AnswerCache(tmp_path / "llm"), fallback=MarkerFallback())
    assert selector.select_objects(_instance(), ["person"], 1) == ["FALLBACK-OBJECT"]
    assert selector.stats.backend_errors == 1


# --------------------------------------------------------------------------- real models


@pytest.fixture(scope="module")
def ranker() -> EmbeddingRankSelector:
    return EmbeddingRankSelector()


def test_embedding_ranker_selects_spans_phrases_and_objects(ranker: EmbeddingRankSelector) -> None:
    instance = _instance("RT @cnnsport : Tennis star Rafael Nadal gets engaged to girlfriend of 14 years , Mery Perello",
                         ("Rafael Nadal", 5, 7), ("Mery Perello", 15, 17))
    text_nodes = ranker.select_text_nodes(instance, 3)
    assert len(text_nodes) == 3 and all(span in instance.text for span in text_nodes)
    assert not any(name in span for span in text_nodes for name in ("Rafael", "Nadal", "Mery", "Perello"))
    visual = ranker.select_visual_nodes(instance, "A tennis player kisses a woman in a white dress near a court.", 2)
    assert len(visual) == 2 and all(phrase.lower() in "a tennis player kisses a woman in a white dress near a court."
                                    for phrase in visual)
    assert ranker.select_objects(instance, ["toilet", "tennis racket", "fire hydrant"], 1) == ["tennis racket"]
    assert ranker.select_visual_nodes(instance, "", 2) == [] and ranker.select_objects(instance, [], 2) == []
    assert ranker.stats.selections == {"text": 1, "visual": 2, "objects": 2}


def test_smollm2_gguf_loads_and_answers_one_prompt(tmp_path: Path) -> None:
    backend = TransformersChatBackend.smollm2(max_new_tokens=24)
    selector = LLMNodeSelector(backend, AnswerCache(tmp_path / "llm"), fallback=MarkerFallback())
    chosen = selector.select_objects(_instance(), ["person", "tie", "airplane"], 2)
    assert selector.stats.backend_calls == 1 and backend.load_seconds > 0
    assert 1 <= len(chosen) <= 2
    (record,) = [json.loads(line) for line in (tmp_path / "llm" / "answers.jsonl").read_text().splitlines()]
    assert record["model"] == "SmolLM2-135M-Instruct-Q4_1" and record["answer"].strip()
