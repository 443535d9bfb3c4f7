"""`evalfleet run`'s check of the endpoint before anything is written or enqueued: an
unreachable URL, a refused key or an unknown model is one line and a non-zero exit, instead
of a run that sits at 0% while its workers retry.

One GET /v1/models through the official client (its URL, key and error types; D8): it
proves the URL answers, the key is accepted, and lists the models. A model missing from the
list (a Together fine-tune on a dedicated endpoint is not listed) is asked once with
max_tokens=1: only a 404 fails it; one that answers is noted with the close names listed.
Short timeouts, no retries: a few seconds at most."""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import together

from evalfleet.schema.errors import ConfigurationError
from evalfleet.schema.settings import Settings
from evalfleet.workers.api import make_client
from evalfleet.workers.connection_cause import DNS_FAILED, TIMEOUT, connection_cause
from evalfleet.workers.errors import redact

TIMEOUT_S = 5.0  # per request; a healthy endpoint lists its models well within it
CLOSE_NAMES = 3


class PreflightError(ConfigurationError):
    """The endpoint cannot serve this run; the message is the one line the user sees."""


@dataclass(frozen=True)
class PreflightResult:
    url: str
    listed: int | None  # models the endpoint lists; None when it lists none (no /v1/models)
    notes: tuple[str, ...] = field(default=())  # what was not proven, said once


def check_endpoint(
    settings: Settings,
    base_url: str | None,
    models: Mapping[str, str],
    timeout_s: float | None = None,
    client: together.Together | None = None,
) -> PreflightResult:
    """Raise PreflightError naming the URL and the cause, or return what was checked.
    `models` maps labels to model names; `client` is for tests (a mock transport)."""
    timeout_s = TIMEOUT_S if timeout_s is None else timeout_s
    quick = settings.model_copy(update={"api_timeout_s": timeout_s, "api_max_retries": 0})
    own = client is None
    api = client or make_client(quick, base_url, connections=2)
    url = base_url or str(api.base_url).rstrip("/")
    try:
        return _check(api, url, models, timeout_s, settings)
    finally:
        if own:
            api.close()


def _check(
    api: together.Together,
    url: str,
    models: Mapping[str, str],
    timeout_s: float,
    settings: Settings,
) -> PreflightResult:
    try:
        listed = _listed_models(api.get("/v1/models", cast_to=object))
    except together.APIStatusError as exc:
        if exc.status_code in (401, 403):
            raise _refused_key(url, exc.status_code) from None
        listed = None  # no model list here (404, 405, a 5xx): each model is asked instead
    except together.APIConnectionError as exc:
        raise PreflightError(_unreachable(url, exc, timeout_s, settings)) from None
    except (together.APIError, ValueError):
        listed = None  # a body that is not a model list: each model is asked instead
    notes: list[str] = []
    unknown: list[str] = []
    labels: dict[str, list[str]] = {}  # two labels may name one model (an A/A run)
    for label, name in models.items():
        labels.setdefault(name, []).append(label)
    for name, named_by in labels.items():
        if listed is not None and name in listed:
            continue
        verdict = _ask_once(api, url, name, timeout_s, settings)
        if verdict == "unknown":
            unknown.append(_unknown_model(", ".join(named_by), name, listed))
        elif verdict:
            notes.append(verdict)
        elif listed:
            # Answered, yet not listed: a dedicated endpoint's fine-tune, or a typo that a
            # server answering any name with its default model (llama.cpp does) let through.
            notes.append(_unlisted_but_answered(name, listed))
    if unknown:
        raise PreflightError(f"the API at {url} does not know " + "; ".join(unknown))
    return PreflightResult(url, None if listed is None else len(listed), tuple(notes))


def _ask_once(
    api: together.Together, url: str, model: str, timeout_s: float, settings: Settings
) -> str | None:
    """One chat request of one token: 'unknown' on a 404; a note when it proved nothing;
    None when the model answered."""
    try:
        api.chat.completions.create(
            model=model, messages=[{"role": "user", "content": "Say OK."}], max_tokens=1
        )
    except together.NotFoundError:
        return "unknown"
    except together.APIStatusError as exc:
        if exc.status_code in (401, 403):
            raise _refused_key(url, exc.status_code) from None
        # A 429, 5xx or 400 names a model the endpoint knows; the run's retries handle it.
        return f"model {model}: a 1-token request got {exc.status_code}; going on"
    except together.APIConnectionError as exc:
        if connection_cause(exc) == TIMEOUT:  # a cold dedicated endpoint may take longer
            return f"model {model}: no answer to a 1-token request within {timeout_s:g}s"
        raise PreflightError(_unreachable(url, exc, timeout_s, settings)) from None
    return None


def _listed_models(body: Any) -> set[str] | None:
    """The ids of GET /v1/models: Together's bare list, or OpenAI's {"data": [...]}."""
    entries = body.get("data") if isinstance(body, dict) else body
    if not isinstance(entries, list):
        return None
    return {e["id"] for e in entries if isinstance(e, dict) and isinstance(e.get("id"), str)}


def _refused_key(url: str, status: int) -> PreflightError:
    phrase = "401 Unauthorized" if status == 401 else f"{status} Forbidden"
    return PreflightError(f"the API refused the key at {url} ({phrase}); check TOGETHER_API_KEY")


def _unreachable(url: str, exc: BaseException, timeout_s: float, settings: Settings) -> str:
    cause = connection_cause(exc)
    if cause == TIMEOUT:
        return f"the API at {url} did not answer within {timeout_s:g}s (timeout)"
    if cause == DNS_FAILED:
        host = urlsplit(url).hostname
        return f"cannot reach the API at {url}: {DNS_FAILED} for {host}; check TOGETHER_BASE_URL"
    root = cause or redact(" ".join(str(exc.__cause__ or exc).split()), settings)[:200]
    return f"cannot reach the API at {url}: {root}; check TOGETHER_BASE_URL"


def _unlisted_but_answered(name: str, listed: set[str]) -> str:
    close = difflib.get_close_matches(name, sorted(listed), n=CLOSE_NAMES, cutoff=0.6)
    nearby = f" (close names it lists: {', '.join(close)})" if close else ""
    return (
        f"model {name} is not in the endpoint's model list{nearby} but answered a 1-token "
        "request; going on (some servers answer any name with their default model)"
    )


def _unknown_model(label: str, name: str, listed: set[str] | None) -> str:
    what = f"the model {name!r} ({label})"
    if listed is None:
        return f"{what}: 404 to a 1-token request"
    close = difflib.get_close_matches(name, sorted(listed), n=CLOSE_NAMES, cutoff=0.6)
    if close:
        return f"{what}; close names it lists: {', '.join(close)}"
    listing = f"{len(listed)} model{'' if len(listed) == 1 else 's'}"
    return f"{what}; it lists {listing}, none close to it (GET /v1/models)"
