"""The migrations check for a Flask-Migrate project (was ``Dockerflow(app, migrate=migrate)``)."""

from alembic.config import Config
from sqlalchemy import create_engine

from dockerflow_wsgi import checks
from dockerflow_wsgi.checks.alembic import check_migrations_applied


def register_migrations_check(database_url, directory="migrations"):
    # Flask-Migrate's alembic.ini has no script_location: Flask-Migrate sets it at run time.
    alembic_config = Config(f"{directory}/alembic.ini")
    alembic_config.set_main_option("script_location", directory)
    engine = create_engine(database_url, pool_pre_ping=True)
    return checks.register_partial(check_migrations_applied, engine, alembic_config)
