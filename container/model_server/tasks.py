"""Which task a model serves: ``HF_TASK`` when set, else inferred from its config.

transformers 5 removed the ``summarization``, ``text2text-generation`` and
``translation`` pipelines; those tasks are served by ``seq2seq.py`` through
``generate``. Every other task goes through a transformers pipeline.
"""

from __future__ import annotations

from typing import Any

SEQ2SEQ_TASKS = ("summarization", "text2text-generation", "translation")

# Suffix of the config's architecture name -> pipeline task. Order matters:
# the first matching suffix wins. (transformers 5 has no question-answering
# pipeline either: such models need HF_TASK or user code.)
_ARCHITECTURE_SUFFIXES = (
    ("ForConditionalGeneration", "text2text-generation"),
    ("ForSequenceClassification", "text-classification"),
    ("ForTokenClassification", "token-classification"),
    ("ForCausalLM", "text-generation"),
    ("LMHeadModel", "text-generation"),
    ("ForMaskedLM", "fill-mask"),
)


def is_seq2seq(task: str) -> bool:
    # "translation_en_to_de" and friends are translation too.
    return task.split("_", 1)[0] in SEQ2SEQ_TASKS


def output_key(task: str) -> str:
    """The key the removed pipelines used, so clients' parsing keeps working."""
    return {"summarization": "summary_text", "translation": "translation_text"}.get(
        task.split("_", 1)[0], "generated_text"
    )


def infer_task(config: Any) -> str:
    """Guess the task from a ``PretrainedConfig``; feature extraction as last resort."""
    specific = getattr(config, "task_specific_params", None) or {}
    architectures = getattr(config, "architectures", None) or []
    for arch in architectures:
        for suffix, task in _ARCHITECTURE_SUFFIXES:
            if arch.endswith(suffix):
                if task == "text2text-generation" and not getattr(config, "is_encoder_decoder", False):
                    # e.g. vision-language "ForConditionalGeneration" decoders.
                    continue
                # A BART summariser declares its one task in task_specific_params.
                if task == "text2text-generation" and len(specific) == 1:
                    return next(iter(specific))
                return task
    if getattr(config, "is_encoder_decoder", False):
        return "text2text-generation"
    return "feature-extraction"
