"""The request core, protocol-neutral: models, batching, preprocessing calls, explanations."""
