import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "workbench.settings")
application = get_wsgi_application()

import logging  # noqa: E402

from workbench.checks import require_secret_key, require_valid_settings, uncollected_static_warning  # noqa: E402

require_secret_key()  # gunicorn stops at its start, not at the first request it signs
require_valid_settings()  # nor at the first request that reads a mistyped setting (workbench.checks.SETTING_CHOICES)
if warning := uncollected_static_warning():  # pages, not /healthz: the server starts and says so at once
    logging.getLogger("workbench.wsgi").error(warning)
