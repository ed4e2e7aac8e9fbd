"""`python -m t2igan …` (and `torchrun -m t2igan train …`) runs the CLI."""

import sys

from t2igan.cli import main

sys.exit(main())
