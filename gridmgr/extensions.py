"""Extension objects, created once and bound to the app in ``create_app``."""

from flask_limiter import Limiter
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy.orm import DeclarativeBase


class Base(DeclarativeBase):
    pass


db = SQLAlchemy(model_class=Base)
migrate = Migrate()


def _client_address() -> str:
    from flask_limiter.util import get_remote_address

    return get_remote_address()


# Rate limits on public intake and login; storage is RATELIMIT_STORAGE_URI (Redis when set).
limiter = Limiter(key_func=_client_address, default_limits=[])
