from services.notifier.models import metadata
from services.notifier.settings import Settings
from shared.alembic_env import run_migrations

run_migrations(metadata, Settings())
