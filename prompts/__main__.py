"""Entry point of ``python -m inferflux.prompts``."""

import sys

from inferflux.prompts.cli import main

sys.exit(main())
