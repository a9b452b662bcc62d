"""The service's own REST API, /v1."""
