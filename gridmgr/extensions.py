"""Extension objects, created once and bound to the app in ``create_app``."""

from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_migrate import Migrate
from flask_socketio import SocketIO
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy.orm import DeclarativeBase


class Base(DeclarativeBase):
    pass


db = SQLAlchemy(model_class=Base)
migrate = Migrate()


# Rate limits on public intake and login; storage is RATELIMIT_STORAGE_URI (Redis when set).
limiter = Limiter(key_func=get_remote_address, default_limits=[])

# The live channel; bound in ``create_app`` (threading mode, Redis message queue when set).
socketio = SocketIO()
