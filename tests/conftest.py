"""Session-wide settings. The packages are importable through the editable install (pyproject.toml);
`import app` (the CDK app at the repository root) works because pytest puts the root directory of
the `tests` package on sys.path (its rootdir-based import mode)."""

import os

os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
