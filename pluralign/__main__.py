"""``python -m pluralign``: the ``pluralign`` command."""

import sys

from pluralign.cli import main

sys.exit(main())
