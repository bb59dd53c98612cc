import os

# The runtime builds into a per-run cache so tests never depend on a stale ~/.cache copy.
os.environ.setdefault("LUTC_CACHE", os.path.join(os.path.dirname(__file__), "..", ".lutc-cache"))
