"""The project's own CDK constructs, one concern per module.

Not named `constructs`: a top-level package of that name would shadow the
`constructs` library that aws-cdk-lib itself imports.
"""
