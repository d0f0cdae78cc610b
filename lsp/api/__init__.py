"""The HTTP edge: thin routers, dependencies, and the one domain-error -> HTTP mapping."""
