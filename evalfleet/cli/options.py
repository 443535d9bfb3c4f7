"""Options and output helpers shared by several commands."""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING, Any

from rich.console import Console

if TYPE_CHECKING:
    from evalfleet.schema.settings import Settings

# Progress and tables go to stderr when stdout carries JSON, so pipes stay parseable.
stdout = Console()
stderr = Console(stderr=True)


def print_json(value: Any) -> None:
    sys.stdout.write(json.dumps(value, indent=2, ensure_ascii=False) + "\n")


def load_settings() -> Settings:
    # pydantic-settings is imported here: `evalfleet sim` and `--help` read no settings.
    from evalfleet.schema.settings import Settings

    return Settings()
