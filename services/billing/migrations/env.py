from services.billing.models import metadata
from services.billing.settings import Settings
from shared.alembic_env import run_migrations

run_migrations(metadata, Settings())
