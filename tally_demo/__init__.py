"""The one-command demo: API on SQLite, a registered demo camera, one worker on a real clip."""
