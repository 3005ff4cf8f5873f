"""eventwatch: a calendar-and-reminder daemon."""

__version__ = "0.1.0"
