"""The workers' Celery app (`celery --app evalfleet.workers.app:app ...`, used by Flower too)."""

from __future__ import annotations

import logging
import os
from typing import Any

from celery import Task
from celery.signals import worker_process_init, worker_ready

from evalfleet.schema.queue import make_celery
from evalfleet.schema.settings import get_settings
from evalfleet.schema.startup_gc import freeze_startup_objects
from evalfleet.workers.resources import reset_after_fork

DEFAULT_BROKER_URL = "redis://127.0.0.1:6379/0"
POOL_ENV = "EVALFLEET_WORKER_POOL"  # set by `evalfleet worker --pool`

# httpx logs every request at INFO: a line per API call costs CPU and buries the useful lines.
logging.getLogger("httpx").setLevel(logging.WARNING)


class LabelledTask(Task):  # type: ignore[misc]
    """A task whose retries keep the label it was sent with (schema/task_labels.py): Celery
    resends a retry with its arguments' repr, and Flower would show `[18]` from then on."""

    def signature_from_request(
        self, request: Any = None, args: Any = None, kwargs: Any = None, queue: Any = None,
        **extra_options: Any,
    ) -> Any:  # fmt: skip
        request = self.request if request is None else request
        label = getattr(request, "argsrepr", None)
        if label and (args is None or list(args) == list(request.args or ())):
            extra_options.setdefault("argsrepr", label)
        return super().signature_from_request(request, args, kwargs, queue, **extra_options)


app = make_celery(
    get_settings(), get_settings().broker_url or DEFAULT_BROKER_URL, task_cls=LabelledTask
)
app.conf.include = ["evalfleet.workers.tasks", "evalfleet.workers.batch.task"]


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
