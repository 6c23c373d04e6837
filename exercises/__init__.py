"""Graded exercises: write the loops yourself, then run ``pytest exercises``. See README.md."""
