"""The response cache, in SQL so every worker shares it (lm-evaluation-harness issue 2715:
a key that omits the model lets one model's answers be served for another)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence

from sqlalchemy.orm import Session, sessionmaker

from schema.db import upsert
from schema.models import CachedResponse, utcnow
from workers.api import Completion


def cache_key(
    base_url: str | None,
    model: str,
    messages: Sequence[Mapping[str, str]],
    params: Mapping[str, float | int | None],
) -> str:
    material = {"base_url": base_url or "", "model": model, "messages": messages, "params": params}
    canonical = json.dumps(material, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def lookup(sessions: sessionmaker[Session], key: str) -> Completion | None:
    with sessions() as session:
        row = session.get(CachedResponse, key)
        if row is None:
            return None
        return Completion(
            text=row.text,
            finish_reason=row.finish_reason,
            prompt_tokens=row.prompt_tokens,
            completion_tokens=row.completion_tokens,
            latency_ms=0.0,
        )


def store(session: Session, key: str, model: str, completion: Completion) -> None:
    """Keep a response, in the caller's transaction (the one that stores the answer)."""
    row = {
        "key": key,
        "model": model,
        "text": completion.text,
        "finish_reason": completion.finish_reason,
        "prompt_tokens": completion.prompt_tokens,
        "completion_tokens": completion.completion_tokens,
        "created_at": utcnow(),
    }
    upsert(session, CachedResponse.__table__, [row], ("key",))
