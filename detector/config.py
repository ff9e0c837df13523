"""Where the worker finds its model and token: the command line beats the environment beats
the site file. The site file itself (cameras, lines, zones, ...) is defined in
``contract.site``, which the API reads too."""

from __future__ import annotations

import os

MODEL_ENV = "TALLY_MODEL"
TOKEN_ENV = "TALLY_DEVICE_TOKEN"  # noqa: S105 (a variable name, not a secret)


def resolve_model_path(cli_value: str | None, configured: str) -> str:
    """--model beats TALLY_MODEL beats the config file."""
    return cli_value or os.environ.get(MODEL_ENV) or configured
