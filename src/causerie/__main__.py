"""`python -m causerie` is the `causerie` command."""

import sys

from .cli import main

sys.exit(main())
