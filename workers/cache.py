"""The response cache, in SQL so every worker shares it (lm-evaluation-harness issue 2715:
a key that omits the model lets one model's answers be served for another)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Collection, Mapping, Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from evalfleet.schema.models import CachedResponse, utcnow
from evalfleet.workers.api import Completion


def cache_key(
    base_url: str | None,
    model: str,
    messages: Sequence[Mapping[str, str]],
    params: Mapping[str, float | int | None],
) -> str:
    material = {"base_url": base_url or "", "model": model, "messages": messages, "params": params}
    canonical = json.dumps(material, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def lookup(sessions: sessionmaker[Session], keys: Collection[str]) -> dict[str, Completion]:
    """The cached responses among `keys`, in one query."""
    if not keys:
        return {}
    with sessions() as session:
        rows = session.scalars(select(CachedResponse).where(CachedResponse.key.in_(keys)))
        return {
            row.key: Completion(
                text=row.text,
                finish_reason=row.finish_reason,
                prompt_tokens=row.prompt_tokens,
                completion_tokens=row.completion_tokens,
                latency_ms=0.0,
            )
            for row in rows
        }


def cache_row(key: str, model: str, completion: Completion) -> dict[str, object]:
    """A response to keep, written with its answer (in the same transaction)."""
    return {
        "key": key,
        "model": model,
        "text": completion.text,
        "finish_reason": completion.finish_reason,
        "prompt_tokens": completion.prompt_tokens,
        "completion_tokens": completion.completion_tokens,
        "created_at": utcnow(),
    }
