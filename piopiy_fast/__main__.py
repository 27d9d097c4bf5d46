"""``python -m piopiy_fast``: the same as the ``piopiy-fast`` command."""

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
