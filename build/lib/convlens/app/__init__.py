"""The convlens HTTP service: knows FastAPI and images; imports `model` for the network."""
