"""``python -m cvsearch``: the ``cre`` command."""

import sys

from cvsearch.cli import main

sys.exit(main())
