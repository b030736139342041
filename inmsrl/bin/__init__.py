"""Command-line entry points: thin argument parsing over the library layers below."""
