from services.triage.models import metadata
from services.triage.settings import Settings
from shared.alembic_env import run_migrations

run_migrations(metadata, Settings())
