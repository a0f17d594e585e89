"""Prompt → feature code shared by training and serving: pure functions and fitted transforms, no I/O."""
