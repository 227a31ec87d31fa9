"""`python -m causerie.rehearse`: the rehearsal process (what `causerie rehearse` runs)."""

import sys

import locust  # noqa: F401 - first: gevent's monkey-patching before anything imports ssl

from .run import main

sys.exit(main())
