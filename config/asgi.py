import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
# Statements of a web server get the request-path time limits (config/settings/database.py).
os.environ.setdefault("DATABASE_PROCESS_KIND", "web")
application = get_asgi_application()
