"""A job for the worker tests: what the work horse sees of its inherited heap."""

import gc


def frozen_objects() -> int:
    """How many objects the horse's collector skips (frozen before the fork)."""
    return gc.get_freeze_count()
