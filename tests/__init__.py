"""eventwatch tests, one module per source module."""
