"""Protocol adapters: HTTP requests in, wire formats out; nothing here computes."""
