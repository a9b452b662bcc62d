"""What operators and browsers need: health, readiness, metrics, the web page."""
