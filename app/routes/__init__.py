"""HTTP routes, one module per concern; each handler is a few lines."""
