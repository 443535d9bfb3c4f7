"""`evalfleet flower`: Flower for the workers and tasks of EVALFLEET_BROKER_URL."""

from __future__ import annotations

import os
import sys

import click

from evalfleet.cli.options import load_settings, stderr
from evalfleet.flower import AUTH_ENV, DEFAULT_PORT, check_bind, flower_argv, flower_url
from evalfleet.services import require_broker_url


@click.command()
@click.option(
    "--address",
    default="127.0.0.1",
    show_default=True,
    help="Where to listen; anything but 127.0.0.1, ::1 or localhost needs basic auth.",
)
@click.option("--port", type=int, default=DEFAULT_PORT, show_default=True)
@click.option(
    "--basic-auth",
    envvar=AUTH_ENV,
    default=None,
    metavar="USER:PASSWORD",
    help=f"Ask for this user and password (several: comma-separated). {AUTH_ENV} in the "
    "environment keeps the password out of `ps`.",
)
def flower(address: str, port: int, basic_auth: str | None) -> None:
    """Watch the workers and tasks of EVALFLEET_BROKER_URL in Flower, a web page."""
    settings = load_settings()
    require_broker_url(
        settings,
        "Flower watches the broker the workers use (a local run: `evalfleet run --flower`)",
    )
    check_bind(address, basic_auth or None)
    if basic_auth:
        os.environ[AUTH_ENV] = basic_auth  # Flower reads its options from its environment
    else:
        os.environ.pop(AUTH_ENV, None)  # an empty one would be read as a user without password
    from evalfleet.workers.app import app  # the broker and task names of the workers' app

    protected = "basic auth" if basic_auth else "no password: loopback only"
    stderr.print(f"Flower on {flower_url(address, port)} ({protected}); Ctrl-C stops it")
    sys.exit(app.start(flower_argv(address, port)) or 0)
