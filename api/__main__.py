"""`python -m api`."""

from api.cli import main

raise SystemExit(main())
