"""The client API Lambda. Deployed as the asset root: `app.handler` is the entry point.

This file only makes the folder importable as `api_handler` for tests and local runs;
Lambda imports `app` as a top-level module from the asset root.
"""
