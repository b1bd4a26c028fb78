"""Logic of the client API, kept free of the Lambda entry point so that it is testable
and importable both as `async_api` (Lambda asset root) and `api_handler.async_api` (tests).
Modules here use relative imports only."""
