from services.ticket_api.models import metadata
from services.ticket_api.settings import Settings
from shared.alembic_env import run_migrations

run_migrations(metadata, Settings())
