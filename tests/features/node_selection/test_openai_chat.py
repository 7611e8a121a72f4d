"""The OpenAI-compatible backend against a local fake server: request shape, retries, clear errors."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Iterator

import pytest
from node_selection_fixtures import MarkerFallback, make_instance

from vmhan_lib.features.node_selection.answer_cache import AnswerCache
from vmhan_lib.features.node_selection.llm import LLMNodeSelector
from vmhan_lib.features.node_selection.openai_chat import OpenAIChatBackend
from vmhan_lib.features.node_selection.prompts import text_node_prompt
from vmhan_lib.features.node_selection.protocol import BackendError


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
    assert selector.select_text_nodes(make_instance(), 2) == ["Paris", "his wife"]
    (request,) = _FakeChatServer.requests
    assert request["path"] == "/v1/chat/completions" and request["auth"] == "Bearer sk-test"
    assert request["body"]["model"] == "tiny-llm" and request["body"]["temperature"] == 0
    assert request["body"]["messages"] == [{"role": "user", "content": text_node_prompt(make_instance(), 2).text}]


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
    assert selector.select_objects(make_instance(), ["person"], 1) == ["FALLBACK-OBJECT"]
    assert selector.stats.backend_errors == 1
