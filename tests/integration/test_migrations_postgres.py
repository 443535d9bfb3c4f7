"""The migrations on PostgreSQL, on a database that holds rows."""

from __future__ import annotations

import pytest
from unit.schema.samples_migration import check_samples_migration

pytestmark = pytest.mark.integration


def test_the_samples_migration_upgrades_a_postgres_database_holding_rows(postgres_url: str) -> None:
    check_samples_migration(postgres_url)
