"""Execution of IR in Python: the xDSL interpreter with numpy ops, and the real-MLIR oracle."""
