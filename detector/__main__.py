"""``python -m detector``: see ``detector.cli``."""

from detector.cli import main

raise SystemExit(main())
