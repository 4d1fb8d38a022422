import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "workbench.settings")
application = get_wsgi_application()

from workbench.checks import require_secret_key  # noqa: E402

require_secret_key()  # gunicorn stops at its start, not at the first request it signs
