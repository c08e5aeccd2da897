"""``python -m percept`` (and ``torchrun -m percept``) run the command-line interface."""

import sys

from .cli import main

sys.exit(main())
