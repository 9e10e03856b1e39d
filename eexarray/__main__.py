"""``python -m eexarray``: the ``eexarray`` command line."""

import sys

from eexarray.cli import main

if __name__ == "__main__":
    sys.exit(main())
