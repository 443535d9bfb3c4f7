"""`python serve_llama.py CONFIG.json`: llama-cpp-python's OpenAI-compatible server (its own
`python -m llama_cpp.server --config_file`), changed in two ways for this tier.

- The weights' extra buffer types are off: on this project's CPUs llama.cpp's extra
  (repacked, AMX) weight buffer types crashed the server at start or gave wrong output;
  the plain CPU buffers serve SmolLM2 as well. The Python API has no option for it, so the
  model parameters' default is changed.
- Every alias stays loaded (the stock server holds one model at a time and reloads the
  weights on every switch of alias, and base and fine-tuned requests alternate), and each
  request is evaluated from an empty context. The stock server reuses the prompt prefix the
  previous request left, and a prompt evaluated in two pieces gives slightly different
  logits than in one: the same request then got a different greedy answer after another
  turn of its story (seen here), so an A/A pair would differ by the order of requests."""

from __future__ import annotations

import sys

import llama_cpp
import llama_cpp.llama_cpp as llama_lib
import llama_cpp.server.app as server_app
from llama_cpp.server.__main__ import main
from llama_cpp.server.model import LlamaProxy
from llama_cpp.server.settings import ModelSettings

_defaults = llama_lib.llama_model_default_params


def _without_extra_buffer_types() -> llama_lib.llama_model_params:
    params = _defaults()
    params.use_extra_bufts = False
    return params


class EveryAliasLoaded(LlamaProxy):
    """A model per alias, each loaded at its first request and kept."""

    def __init__(self, models: list[ModelSettings]) -> None:
        super().__init__(models)
        assert self._current_model is not None and self._current_model_alias is not None
        self._loaded = {self._current_model_alias: self._current_model}

    def __call__(self, model: str | None = None) -> llama_cpp.Llama:
        alias = model if model in self._model_settings_dict else self._default_model_alias
        if alias not in self._loaded:
            settings = self._model_settings_dict[alias]
            self._loaded[alias] = self.load_llama_from_model_settings(settings)
        llama = self._loaded[alias]
        llama.reset()  # no prefix left from another request: the same request, the same answer
        return llama

    def free(self) -> None:
        for loaded in self._loaded.values():
            loaded.close()
        self._loaded.clear()


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: serve_llama.py CONFIG.json")
    llama_lib.llama_model_default_params = _without_extra_buffer_types
    server_app.LlamaProxy = EveryAliasLoaded  # type: ignore[misc]
    sys.argv = [sys.argv[0], "--config_file", sys.argv[1]]
    main()
