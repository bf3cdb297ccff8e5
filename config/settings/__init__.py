"""Settings, split by concern. Each module reads its own environment variables."""

from .base import *  # noqa: F401,F403
from .database import *  # noqa: F401,F403
from .celery import *  # noqa: F401,F403
from .storage import *  # noqa: F401,F403
from .models import *  # noqa: F401,F403
from .security import *  # noqa: F401,F403
from .limits import *  # noqa: F401,F403
