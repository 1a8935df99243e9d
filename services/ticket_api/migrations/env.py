from services.ticket_api.db import complete_metadata
from services.ticket_api.settings import Settings
from shared.alembic_env import run_migrations

run_migrations(complete_metadata(), Settings())
