"""The workers' Celery app (`celery --app evalfleet.workers.app:app ...`, used by Flower too)."""

from __future__ import annotations

import logging
import os
from typing import Any

from celery.signals import worker_process_init, worker_ready

from evalfleet.schema.queue import make_celery
from evalfleet.schema.settings import get_settings
from evalfleet.schema.startup_gc import freeze_startup_objects
from evalfleet.workers.resources import reset_after_fork

DEFAULT_BROKER_URL = "redis://127.0.0.1:6379/0"
POOL_ENV = "EVALFLEET_WORKER_POOL"  # set by `evalfleet worker --pool`

# httpx logs every request at INFO: a line per API call costs CPU and buries the useful lines.
logging.getLogger("httpx").setLevel(logging.WARNING)

app = make_celery(get_settings(), get_settings().broker_url or DEFAULT_BROKER_URL)
app.conf.include = ["evalfleet.workers.tasks"]


@worker_ready.connect
def _freeze_startup_objects(**_kwargs: Any) -> None:
    freeze_startup_objects()  # the process that runs the tasks, in the threads and solo pools


@worker_ready.connect
def _start_sweeper(**_kwargs: Any) -> None:
    # Not under prefork: a thread in the parent can hold a lock (even stderr's) at the
    # moment a child is forked, and the child then hangs at birth. Prefork workers hand a
    # dead child's task back at once (task_reject_on_worker_lost); threads workers sweep.
    if os.environ.get(POOL_ENV, "threads") != "prefork":
        from evalfleet.workers.sweep import start_sweeper

        start_sweeper(app, get_settings().sweep_interval_s)


@worker_process_init.connect
def _fresh_resources_per_child(**_kwargs: Any) -> None:
    reset_after_fork()
    freeze_startup_objects()
