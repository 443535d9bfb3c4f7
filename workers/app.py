"""The workers' Celery app (`celery --app workers.app:app ...`, used by Flower too)."""

from __future__ import annotations

from typing import Any

from celery.signals import worker_process_init, worker_ready

from schema.queue import make_celery
from schema.settings import get_settings
from workers.resources import reset_after_fork

DEFAULT_BROKER_URL = "redis://127.0.0.1:6379/0"

app = make_celery(get_settings(), get_settings().broker_url or DEFAULT_BROKER_URL)
app.conf.include = ["workers.tasks"]


@worker_ready.connect
def _start_sweeper(**_kwargs: Any) -> None:
    from workers.sweep import start_sweeper

    start_sweeper(app, get_settings().sweep_interval_s)


@worker_process_init.connect
def _fresh_resources_per_child(**_kwargs: Any) -> None:
    reset_after_fork()
