"""The client API Lambda and the callback notifier, shipped as one asset.

The asset root holds this package (inference_constructs/lambda_code.py), so Lambda imports
`api_handler.app.handler` exactly as the tests and the local stack do.
"""
