"""`python -m causerie.rehearse`: the rehearsal process (what `causerie rehearse` runs)."""

import sys

try:
    import locust  # noqa: F401 - first: gevent's monkey-patching before anything imports ssl
except ImportError:
    sys.stderr.write(
        "causerie rehearse needs Locust, an optional part of causerie; install it with\n"
        "  pip install 'causerie[rehearse]'\n"
        "(in a checkout: .venv/bin/pip install -e '.[rehearse]')\n"
    )
    sys.exit(2)

from .run import main

sys.exit(main())
