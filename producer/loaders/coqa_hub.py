"""CoQA from the Hugging Face hub (`stanfordnlp/coqa`), read with `datasets.load_dataset`."""

from __future__ import annotations

from collections.abc import Iterable
from itertools import islice

import httpx

from evalfleet.producer.dataset import Dataset
from evalfleet.producer.loaders._common import Place, check_limit
from evalfleet.producer.loaders.hub_record import dataset_from_hub_records
from evalfleet.schema.errors import DatasetError

HUB_DATASET = "stanfordnlp/coqa"
PROBE_TIMEOUT_SECONDS = 5.0
_LOCAL_COPY_HINT = "For a local copy, pass --dataset path/to/file.jsonl"


def load_coqa_hub(split: str = "validation", limit: int | None = None) -> Dataset:
    """The first `limit` (default: all) stories of a CoQA split; keys are indexes in the split."""
    check_limit(limit)
    origin = f"{HUB_DATASET} ({split})"
    rows = islice(_fetch_split(split), limit)
    records = ((row, Place(origin, f"record {index}")) for index, row in enumerate(rows))
    return dataset_from_hub_records(records, name="coqa", split=split, origin=origin)


def hub_unreachable_reason(endpoint: str) -> str | None:
    """Why the hub at `endpoint` does not answer, or None if it does; takes seconds at most.

    Without this, an unreachable hub costs about 23 s: huggingface_hub retries the failed
    request 5 times with back-off before `datasets` gives up. One request without retries and
    with a short timeout tells us first; any HTTP answer at all means the hub is reachable.
    """
    try:
        httpx.head(endpoint, timeout=PROBE_TIMEOUT_SECONDS)
    except httpx.HTTPError as exc:
        return f"{type(exc).__name__}: {exc}"
    return None


def _fetch_split(split: str) -> Iterable[object]:
    import datasets  # deferred: a heavy import that only the hub path needs

    # In offline mode `datasets` reads its local cache and never touches the network.
    if not datasets.config.HF_HUB_OFFLINE:
        endpoint = datasets.config.HF_ENDPOINT
        reason = hub_unreachable_reason(endpoint)
        if reason is not None:
            raise DatasetError(
                f"cannot reach the Hugging Face hub at {endpoint} to load '{HUB_DATASET}' "
                f"({reason}). {_LOCAL_COPY_HINT}, or set HF_HUB_OFFLINE=1 to use a copy "
                "already in the local cache."
            )
    try:
        rows: Iterable[object] = datasets.load_dataset(HUB_DATASET, split=split)
    except ConnectionError as exc:  # also offline mode with nothing cached
        raise DatasetError(
            f"cannot reach the Hugging Face hub to load '{HUB_DATASET}' split '{split}' "
            f"({exc}). {_LOCAL_COPY_HINT}."
        ) from exc
    except Exception as exc:  # datasets raises many types: missing repo, unknown split, cache
        raise DatasetError(
            f"cannot load '{HUB_DATASET}' split '{split}' from the Hugging Face hub "
            f"({type(exc).__name__}: {exc}). {_LOCAL_COPY_HINT}."
        ) from exc
    return rows
