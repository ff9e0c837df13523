"""Domain logic, free of HTTP: the routers and the CLI both call these."""
