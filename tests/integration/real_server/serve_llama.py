"""`python serve_llama.py CONFIG.json`: llama-cpp-python's OpenAI-compatible server (its own
`python -m llama_cpp.server --config_file`), with the weights' extra buffer types off.

On this project's CPUs llama.cpp's extra (repacked, AMX) weight buffer types crashed the
server at start or gave wrong output; the plain CPU buffers serve SmolLM2 as well. The
Python API has no option for it, so the model parameters' default is changed here."""

from __future__ import annotations

import sys

import llama_cpp.llama_cpp as llama_lib
from llama_cpp.server.__main__ import main

_defaults = llama_lib.llama_model_default_params


def _without_extra_buffer_types() -> llama_lib.llama_model_params:
    params = _defaults()
    params.use_extra_bufts = False
    return params


if __name__ == "__main__":
    llama_lib.llama_model_default_params = _without_extra_buffer_types
    if len(sys.argv) != 2:
        sys.exit("usage: serve_llama.py CONFIG.json")
    sys.argv = [sys.argv[0], "--config_file", sys.argv[1]]
    main()
