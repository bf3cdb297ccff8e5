"""Training models: datasets (datasets.py) and jobs, checkpoints, model versions (jobs.py)."""

from .datasets import *  # noqa: F401,F403
from .jobs import *  # noqa: F401,F403,E402
from .registry import *  # noqa: F401,F403,E402
