"""Session-wide settings. The packages are importable through the editable install (pyproject.toml);
`import app` (the CDK app at the repository root) works because pytest puts the root directory of
the `tests` package on sys.path (its rootdir-based import mode)."""

import os

os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
# The tests share a machine with each other (and CI's with other jobs): OpenMP threads that spin at
# barriers while preempted make inference tens of times slower there (docs/benchmarks.md). Model
# servers the tests start inherit this; torch reads it once, so it is set before any import of it.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
