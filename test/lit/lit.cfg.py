import os
import sys

import lit.formats

config.name = "lutc"
config.test_format = lit.formats.ShTest()
config.suffixes = [".mlir"]
config.test_source_root = os.path.dirname(__file__)
# lutc-opt and filecheck live next to the Python running lit (the project's venv).
bindir = os.path.dirname(sys.executable)
config.environment["PATH"] = bindir + os.pathsep + config.environment.get("PATH", os.environ["PATH"])
