"""Import-compatible stand-in for the Hugging Face toolkit's helper modules.

User scripts written for the SageMaker Hugging Face inference toolkit import
``sagemaker_huggingface_inference_toolkit.decoder_encoder`` (its README shows
``decoder_encoder.decode(...)`` in ``input_fn``) and ``content_types``. Those
names exist here, backed by this server's own codecs, so such scripts load
unchanged. The real package is not installed because importing its
``decoder_encoder`` imports the Multi Model Server package (a Java server and
its 7 MB jar) and ``sagemaker_inference`` (which imports SciPy): a second model
server and a large dependency for two small modules. See docs/container.md,
"Migrating from the Hugging Face toolkit", for the few documented differences.

The directory holding this package is appended to ``sys.path`` only when user
code is loaded, after everything else: a real installation, if a user bakes
one into their image, still wins.
"""
