"""``python -m cvsearch ...``: the ``cre`` command where its console script is not on ``PATH``
(a checkout used without ``pip install -e .``); the same :func:`cvsearch.cli.main`."""

import sys

from cvsearch.cli import main

if __name__ == "__main__":
    sys.exit(main())
