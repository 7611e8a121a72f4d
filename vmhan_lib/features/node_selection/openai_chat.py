"""Any OpenAI-compatible ``/chat/completions`` endpoint as a chat backend (:class:`OpenAIChatBackend`)."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from typing import Any

from vmhan_lib.features.node_selection.protocol import BackendError


class OpenAIChatBackend:
    """An OpenAI-compatible chat-completions endpoint (vLLM, llama.cpp server, Ollama, OpenAI, ...).

    Args:
        base_url: the API root, e.g. ``http://127.0.0.1:8000/v1`` (``/chat/completions`` is appended).
        model: the served model's name.
        api_key: sent as a bearer token when given.
        timeout_s: seconds per HTTP request.
        max_tokens: answer budget.
        retries: further attempts after a timeout, a connection error, HTTP 429 or 5xx.
    """

    name = "openai"

    def __init__(self, base_url: str, model: str, api_key: str | None = None, timeout_s: float = 60.0,
                 max_tokens: int = 96, retries: int = 2) -> None:
        if not base_url.startswith(("http://", "https://")):
            raise ValueError(f"base_url must start with http:// or https://, got {base_url!r}")
        self.url = base_url.rstrip("/") + "/chat/completions"
        self.model = model
        self.api_key = api_key
        self.timeout_s = timeout_s
        self.retries = retries
        self.settings: dict[str, Any] = {"base_url": base_url.rstrip("/"), "temperature": 0, "max_tokens": max_tokens}

    def complete(self, prompt: str) -> str:
        body = json.dumps({
            "model": self.model, "messages": [{"role": "user", "content": prompt}],
            "temperature": 0, "max_tokens": self.settings["max_tokens"],
        }).encode("utf-8")
        headers = {"Content-Type": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        last_error = ""
        for attempt in range(self.retries + 1):
            if attempt:
                time.sleep(0.5 * 2 ** (attempt - 1))
            request = urllib.request.Request(self.url, data=body, headers=headers, method="POST")
            try:
                with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
                    payload = json.loads(response.read().decode("utf-8"))
            except urllib.error.HTTPError as err:
                last_error = f"HTTP {err.code}: {err.read()[:200].decode('utf-8', 'replace')}"
                if err.code == 429 or err.code >= 500:
                    continue
                break
            except (urllib.error.URLError, TimeoutError, ConnectionError) as err:
                last_error = f"{type(err).__name__}: {getattr(err, 'reason', err)}"
                continue
            except json.JSONDecodeError as err:
                raise BackendError(f"{self.url}: response is not JSON ({err})") from err
            try:
                return str(payload["choices"][0]["message"]["content"] or "").strip()
            except (KeyError, IndexError, TypeError) as err:
                raise BackendError(f"{self.url}: no choices[0].message.content in the response") from err
        raise BackendError(f"{self.url} (model {self.model!r}) failed after {self.retries + 1} attempt(s): {last_error}")
