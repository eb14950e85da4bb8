"""The ``ssomotion`` command line."""
