"""Which task a model serves, what each task takes, and the shape of its answers.

``HF_TASK`` when set; otherwise the task is inferred from ``config.json`` as the
Hugging Face toolkit does (transformers_utils.infer_task_from_model_architecture:
the first architecture's name suffix), so a model deployed without ``HF_TASK``
answers here what it answered there: a BART summarizer is
``text2text-generation`` and answers ``generated_text``.

transformers 5 removed the ``summarization``, ``text2text-generation`` and
``translation`` pipelines; those tasks are served by ``seq2seq.py`` through
``generate``, and ``question-answering`` by ``question_answering.py``. Every
other task goes through a transformers pipeline, and a task that has none
(``visual-question-answering`` in transformers 5, for one) fails the load with
a message naming it: /ping is never healthy for a model that would answer as
something else.

This module is imported on the event loop: transformers is only imported
inside the functions the loader thread calls.
"""

from __future__ import annotations

from typing import Any

from .codec import KIND_AUDIO, KIND_CSV, KIND_IMAGE, KIND_JSON, KIND_NPY, KIND_TEXT

SEQ2SEQ_TASKS = ("summarization", "text2text-generation", "translation")

# The toolkit's ARCHITECTURES_2_TASK, most specific first (the toolkit lets the
# later "ForQuestionAnswering" override "TapasForQuestionAnswering"; a TAPAS
# model is a table model, so here it stays one).
_TOOLKIT_SUFFIXES = (
    ("TapasForQuestionAnswering", "table-question-answering"),
    ("ForQuestionAnswering", "question-answering"),
    ("ForTokenClassification", "token-classification"),
    ("ForSequenceClassification", "text-classification"),
    ("ForMultipleChoice", "multiple-choice"),
    ("ForMaskedLM", "fill-mask"),
    ("ForCausalLM", "text-generation"),
    ("ForConditionalGeneration", "text2text-generation"),
    ("MTModel", "text2text-generation"),
    ("EncoderDecoderModel", "text2text-generation"),
    ("GPT2LMHeadModel", "text-generation"),
    ("T5WithLMHeadModel", "text2text-generation"),
    # Not in the toolkit's table: other GPT-style heads (OpenAIGPTLMHeadModel, ...).
    ("LMHeadModel", "text-generation"),
)
# Image and audio heads share the text suffixes (Wav2Vec2ForSequenceClassification,
# WhisperForConditionalGeneration), so they are recognised first, by transformers'
# own auto-model tables. The toolkit mistakes them for text models.
_AUTO_TABLES = (
    ("MODEL_FOR_AUDIO_CLASSIFICATION_MAPPING_NAMES", "audio-classification"),
    ("MODEL_FOR_CTC_MAPPING_NAMES", "automatic-speech-recognition"),
    ("MODEL_FOR_SPEECH_SEQ_2_SEQ_MAPPING_NAMES", "automatic-speech-recognition"),
    ("MODEL_FOR_IMAGE_CLASSIFICATION_MAPPING_NAMES", "image-classification"),
    ("MODEL_FOR_OBJECT_DETECTION_MAPPING_NAMES", "object-detection"),
    ("MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING_NAMES", "image-text-to-text"),
)

IMAGE_TASKS = frozenset(
    {
        "image-classification",
        "object-detection",
        "image-segmentation",
        "zero-shot-image-classification",
        "depth-estimation",
        "image-feature-extraction",
        "mask-generation",
        "keypoint-matching",
    }
)
AUDIO_TASKS = frozenset({"automatic-speech-recognition", "audio-classification", "zero-shot-audio-classification"})
# The toolkit refuses CSV for these: their inputs are nested (labels, tables).
_NO_CSV_TASKS = frozenset({"zero-shot-classification", "table-question-answering"})
# For one input (not a list), the toolkit returns what pipeline(input) returns.
# A batched call returns a bare object per input where these pipelines return
# a one-element list for a single input (text-classification without top_k;
# the transformers 4 text2text pipelines the toolkit used).
_SINGLE_INPUT_IN_A_LIST = frozenset({"text-classification", *SEQ2SEQ_TASKS})


def base_task(task: str) -> str:
    """``"translation_en_to_de"`` -> ``"translation"``; pipeline aliases to their task."""
    aliases = {"sentiment-analysis": "text-classification", "ner": "token-classification"}
    task = task.split("_", 1)[0] if task.startswith("translation") else task
    return aliases.get(task, task)


def is_seq2seq(task: str) -> bool:
    return base_task(task) in SEQ2SEQ_TASKS


def output_key(task: str) -> str:
    """The key the removed pipelines used, so clients' parsing keeps working."""
    return {"summarization": "summary_text", "translation": "translation_text"}.get(base_task(task), "generated_text")


def input_kinds(task: str | None) -> frozenset[str]:
    """The request kinds (codec.KIND_*) a task's model can take."""
    task = base_task(task or "")
    if task in IMAGE_TASKS:
        return frozenset({KIND_JSON, KIND_IMAGE})
    if task in AUDIO_TASKS:
        return frozenset({KIND_JSON, KIND_AUDIO, KIND_NPY})
    if task in _NO_CSV_TASKS:
        return frozenset({KIND_JSON, KIND_TEXT})
    if task == "question-answering":  # question and context: JSON objects or CSV columns
        return frozenset({KIND_JSON, KIND_CSV})
    return frozenset({KIND_JSON, KIND_TEXT, KIND_CSV, KIND_NPY})


def single_output(task: str | None, output: Any) -> Any:
    """The response to a single (non-list) input, shaped as the toolkit returns it."""
    if base_task(task or "") in _SINGLE_INPUT_IN_A_LIST and isinstance(output, dict):
        return [output]
    return output


def infer_task(config: Any) -> str:
    """The task of a ``PretrainedConfig`` without ``HF_TASK``, or ValueError saying why there is none."""
    architectures = getattr(config, "architectures", None) or []
    if not architectures:
        # No head recorded: an encoder-decoder generates, anything else embeds.
        return "text2text-generation" if getattr(config, "is_encoder_decoder", False) else "feature-extraction"
    # The toolkit looks at the first architecture only.
    arch = architectures[0]
    from transformers.models.auto import modeling_auto

    for table, task in _AUTO_TABLES:
        if arch in getattr(modeling_auto, table, {}).values():
            return task
    for suffix, task in _TOOLKIT_SUFFIXES:
        if arch.endswith(suffix):
            if (
                task == "text2text-generation"
                and suffix == "ForConditionalGeneration"
                and not getattr(config, "is_encoder_decoder", False)
            ):
                break  # e.g. a vision-language decoder: not a text2text model
            return task
    else:
        if arch in modeling_auto.MODEL_MAPPING_NAMES.values():
            # A base model without a head (BertModel, MPNetModel): sentence embeddings.
            # The toolkit refuses these; feature-extraction is their hub pipeline tag.
            return "feature-extraction"
    raise ValueError(
        f"cannot infer the task from the architecture {arch!r}: set HF_TASK "
        f"(architectures recognised: ...{', ...'.join(s for s, _ in _TOOLKIT_SUFFIXES)}, and image / audio heads)"
    )


def check_servable(task: str) -> None:
    """ValueError, naming the task and the alternatives, unless this server can serve ``task``."""
    if is_seq2seq(task) or task == "question-answering":  # served without a pipeline
        return
    import transformers
    from transformers.pipelines import SUPPORTED_TASKS

    if base_task(task) in SUPPORTED_TASKS:
        return
    supported = sorted(
        {*SUPPORTED_TASKS, "question-answering", "summarization", "text2text-generation", "translation_xx_to_yy"}
    )
    raise ValueError(
        f"task {task!r} cannot be served: transformers {transformers.__version__} has no pipeline for it "
        f"(image-to-text and visual-question-answering were removed in transformers 5). "
        f"Serve it with code/inference.py (model_fn and predict_fn), or set HF_TASK to one of: {', '.join(supported)}"
    )
