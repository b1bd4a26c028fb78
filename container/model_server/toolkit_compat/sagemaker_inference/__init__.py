"""Import-compatible stand-in for the generic SageMaker inference toolkit's helpers.

Scripts written for the Hugging Face containers also import the package the
Hugging Face toolkit is built on (``from sagemaker_inference import encoder,
decoder, content_types, errors, utils``): it is installed in those containers.
The same functions exist here, on this server's codecs. The real package is not
installed because its ``decoder`` imports SciPy (for ``.npz`` sparse matrices,
which this stand-in refuses with a 415) and it ships a model-server launcher
for Multi Model Server. Appended to ``sys.path`` last, so a real installation wins.
"""
