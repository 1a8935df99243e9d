"""Apply each service's Alembic migrations: ``python -m shared.migrate [service …]``.

Every service keeps its migrations in ``services/<name>/migrations`` and its version table
in its own schema (PostgreSQL) or file (SQLite).
"""

from __future__ import annotations

import argparse
import importlib
import logging
from pathlib import Path

from alembic import command
from alembic.config import Config

from shared.events import Service
from shared.settings import ServiceSettings

ROOT = Path(__file__).resolve().parent.parent


def service_settings(service: Service) -> ServiceSettings:
    module = importlib.import_module(f"services.{service.value}.settings")
    settings: ServiceSettings = module.Settings()
    return settings


def alembic_config(service: Service, database_url: str | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(ROOT / "services" / service.value / "migrations"))
    config.set_main_option("service", service.value)
    if database_url:
        config.set_main_option("database_url", database_url)
    return config


def upgrade(service: Service, database_url: str | None = None, revision: str = "head") -> None:
    command.upgrade(alembic_config(service, database_url), revision)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    names = [s.value for s in Service]
    parser.add_argument(
        "services", nargs="*", metavar="service", help=f"any of {', '.join(names)} (default: all)"
    )
    args = parser.parse_args()
    unknown = sorted(set(args.services) - set(names))
    if unknown:
        parser.error(f"unknown service(s): {', '.join(unknown)}")
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    for name in args.services or names:
        upgrade(Service(name))
        logging.getLogger(__name__).info("%s: migrated to head", name)


if __name__ == "__main__":
    main()
