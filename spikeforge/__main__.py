"""``python -m spikeforge ...``: the ``spikeforge`` command (run by torchrun's ``-m``)."""

import sys

from spikeforge.cli import main

if __name__ == "__main__":
    sys.exit(main())
