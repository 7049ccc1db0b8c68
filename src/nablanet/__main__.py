"""``python -m nablanet``: the same entry point as the ``nablanet`` script."""
import sys

from .cli.main import main

sys.exit(main())
