"""A worker container's healthcheck: `python -m workbench.worker_probe` exits 0 when a Celery worker of this host
beat into Redis recently (``workbench.health.local_worker_alive``), 1 with the reason otherwise.

Reads settings only (no ``django.setup()``): it runs every 30 s beside the worker and should cost little.
"""

from __future__ import annotations

import os
import sys


def main() -> int:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "workbench.settings")
    from workbench.health import local_worker_alive

    alive, message = local_worker_alive()
    print(message)
    return 0 if alive else 1


if __name__ == "__main__":
    sys.exit(main())
