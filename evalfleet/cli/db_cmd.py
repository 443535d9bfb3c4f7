"""`evalfleet db upgrade`: create or migrate the schema."""

from __future__ import annotations

import click

from evalfleet.cli.options import load_settings
from evalfleet.schema.migrate import upgrade


@click.group()
def db() -> None:
    """Database schema commands."""


@db.command(name="upgrade")
def db_upgrade() -> None:
    """Apply every migration to EVALFLEET_DATABASE_URL (default: ./evalfleet.db)."""
    settings = load_settings()
    upgrade(settings.effective_database_url)
    click.echo("database schema is up to date")
