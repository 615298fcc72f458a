"""sb3-mario's tests; the helpers beside them import as ``tests.<module>``."""
