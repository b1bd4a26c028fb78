"""Pure functions and the batcher in isolation: fast, no server process."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
import types
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from model_server import codec
from model_server.batching import DynamicBatcher
from model_server.errors import BadRequest, InsufficientStorage, ModelError, NotAcceptable, UnsupportedMediaType
from model_server.settings import Settings
from model_server.tasks import check_servable, infer_task, is_seq2seq, output_key


def config(**kw) -> types.SimpleNamespace:
    return types.SimpleNamespace(
        **{"architectures": None, "is_encoder_decoder": False, "task_specific_params": None, **kw}
    )


# The toolkit's rule (transformers_utils.infer_task_from_model_architecture): the
# first architecture's suffix decides; task_specific_params do not.
@pytest.mark.parametrize(
    ("cfg", "task"),
    [
        (config(architectures=["BartForConditionalGeneration"], is_encoder_decoder=True), "text2text-generation"),
        # A BART summarizer without HF_TASK: the toolkit answers generated_text, so do we.
        (
            config(
                architectures=["BartForConditionalGeneration"],
                is_encoder_decoder=True,
                task_specific_params={"summarization": {"max_length": 142}},
            ),
            "text2text-generation",
        ),
        (
            config(
                architectures=["T5ForConditionalGeneration"],
                is_encoder_decoder=True,
                task_specific_params={"summarization": {}, "translation_en_to_de": {}},
            ),
            "text2text-generation",
        ),
        (config(architectures=["MarianMTModel"], is_encoder_decoder=True), "text2text-generation"),
        (config(architectures=["DistilBertForSequenceClassification"]), "text-classification"),
        (config(architectures=["DistilBertForQuestionAnswering"]), "question-answering"),
        (config(architectures=["TapasForQuestionAnswering"]), "table-question-answering"),
        (config(architectures=["BertForMultipleChoice"]), "multiple-choice"),
        (config(architectures=["RobertaForMaskedLM"]), "fill-mask"),
        (config(architectures=["GPT2LMHeadModel"]), "text-generation"),
        (config(architectures=["LlamaForCausalLM"]), "text-generation"),
        (config(architectures=["BertForTokenClassification"]), "token-classification"),
        # Audio and image heads share text suffixes; transformers' auto tables tell them apart.
        (config(architectures=["Wav2Vec2ForSequenceClassification"]), "audio-classification"),
        (
            config(architectures=["WhisperForConditionalGeneration"], is_encoder_decoder=True),
            "automatic-speech-recognition",
        ),
        (config(architectures=["ViTForImageClassification"]), "image-classification"),
        (config(architectures=["LlavaForConditionalGeneration"]), "image-text-to-text"),
        (config(architectures=["BertModel"]), "feature-extraction"),
        (config(), "feature-extraction"),
    ],
)
def test_task_is_inferred_from_the_config(cfg, task: str) -> None:
    assert infer_task(cfg) == task


# A decoder-only "...ForConditionalGeneration" is no text2text model.
@pytest.mark.parametrize("arch", ["SomethingNobodyKnows", "MadeUpForConditionalGeneration"])
def test_an_architecture_without_a_task_fails_with_a_message_naming_it(arch: str) -> None:
    with pytest.raises(ValueError, match=f"{arch}.*HF_TASK"):
        infer_task(config(architectures=[arch]))


@pytest.mark.parametrize("task", ["image-to-text", "visual-question-answering", "multiple-choice", "conversational"])
def test_a_task_without_a_pipeline_fails_the_load_with_its_name(task: str) -> None:
    with pytest.raises(ValueError, match=f"task '{task}' cannot be served.*code/inference.py"):
        check_servable(task)
    for servable in (
        "summarization",
        "translation_en_to_de",
        "question-answering",
        "fill-mask",
        "sentiment-analysis",
        "ner",
    ):
        check_servable(servable)


# Every task the toolkit served (transformers 4's pipeline tasks, and diffusers' text-to-image).
TOOLKIT_TASKS = [
    "audio-classification",
    "automatic-speech-recognition",
    "conversational",
    "depth-estimation",
    "document-question-answering",
    "feature-extraction",
    "fill-mask",
    "image-classification",
    "image-feature-extraction",
    "image-segmentation",
    "image-to-image",
    "image-to-text",
    "mask-generation",
    "ner",
    "object-detection",
    "question-answering",
    "sentiment-analysis",
    "summarization",
    "table-question-answering",
    "text-classification",
    "text-generation",
    "text-to-audio",
    "text-to-image",
    "text2text-generation",
    "token-classification",
    "translation",
    "translation_en_to_fr",
    "video-classification",
    "visual-question-answering",
    "zero-shot-audio-classification",
    "zero-shot-classification",
    "zero-shot-image-classification",
    "zero-shot-object-detection",
]
REMOVED_IN_TRANSFORMERS_5 = {
    "conversational",
    "image-to-image",
    "image-to-text",
    "text-to-image",
    "visual-question-answering",
}


@pytest.mark.parametrize("task", TOOLKIT_TASKS)
def test_every_toolkit_task_is_served_or_refused_by_name(task: str) -> None:
    if task in REMOVED_IN_TRANSFORMERS_5:
        with pytest.raises(ValueError, match=f"'{task}' cannot be served"):
            check_servable(task)
    else:
        check_servable(task)


def test_seq2seq_tasks_and_their_output_keys() -> None:
    assert is_seq2seq("translation_en_to_de") and is_seq2seq("summarization") and not is_seq2seq("text-generation")
    assert output_key("translation_en_to_fr") == "translation_text"
    assert output_key("summarization") == "summary_text"
    assert output_key("text2text-generation") == "generated_text"


def test_settings_use_sagemaker_and_toolkit_names(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SAGEMAKER_BIND_TO_PORT", "9001")
    monkeypatch.setenv("MODEL_DIR", "/models/x")
    monkeypatch.setenv("HF_TASK", "summarization")
    monkeypatch.setenv("HF_API_TOKEN", "hf_secret")
    monkeypatch.setenv("MODEL_SERVER_MAX_BATCH_SIZE", "4")
    s = Settings()
    assert (s.port, s.model_dir, s.hf_task, s.max_batch_size) == (9001, Path("/models/x"), "summarization", 4)
    assert "hf_secret" not in str(s.public_dict())
    assert Settings(_env_file=None).port == 9001
    monkeypatch.delenv("SAGEMAKER_BIND_TO_PORT")
    assert Settings().port == 8080


def test_accept_and_content_type_rules() -> None:
    for ok in (None, "", "*/*", "application/json", "application/json; charset=utf-8", "text/html, */*;q=0.1"):
        assert codec.negotiate(ok) == codec.JSON
    assert codec.negotiate("text/csv") == codec.CSV
    assert codec.negotiate("application/x-npy, application/json;q=0.5") == codec.NPY
    assert codec.negotiate("text/*") == codec.CSV
    for bad in ("text/html", "application/json;q=0", "image/png, text/html"):
        with pytest.raises(NotAcceptable):
            codec.check_accept(bad)
    assert codec.request_kind("Application/JSON; charset=utf-8") == codec.KIND_JSON
    assert codec.request_kind(None) == codec.KIND_JSON
    assert codec.request_kind("text/plain") == codec.KIND_TEXT
    assert codec.request_kind("image/webp") == codec.KIND_IMAGE
    assert codec.request_kind("audio/x-flac") == codec.KIND_AUDIO
    with pytest.raises(UnsupportedMediaType, match="application/octet-stream"):
        codec.request_kind("application/octet-stream")


def test_decode_keeps_the_shape_of_inputs() -> None:
    single = codec.decode(b'{"inputs": "a"}', codec.KIND_JSON)
    assert single.inputs == ["a"] and not single.is_batch
    batch = codec.decode(b'{"inputs": ["a", "b"], "parameters": {"x": 1}}', codec.KIND_JSON)
    assert batch.inputs == ["a", "b"] and batch.is_batch and batch.parameters == {"x": 1}
    assert codec.encode([{"o": 1}], is_batch=False) == b'{"o":1}'
    assert codec.encode([{"o": 1}], is_batch=True) == b'[{"o":1}]'
    with pytest.raises(BadRequest):
        codec.decode(b'{"inputs": "a", "parameters": null, "extra": 1', codec.KIND_JSON)


def test_parameters_key_ignores_key_order() -> None:
    assert codec.parameters_key({"a": 1, "b": 2}) == codec.parameters_key({"b": 2, "a": 1})
    assert codec.parameters_key({"a": 1}) != codec.parameters_key({"a": 2})


# ---------------------------------------------------------------- the batcher
class RecordingModel:
    """Upper-cases inputs; records every call; fails on "boom" / "oom"."""

    def __init__(self, delay: float = 0.0) -> None:
        self.calls: list[tuple[list, dict]] = []
        self.threads: set[str] = set()
        self.delay = delay

    def __call__(self, inputs, parameters):
        self.calls.append((list(inputs), parameters))
        self.threads.add(threading.current_thread().name)
        time.sleep(self.delay)  # stands in for compute on the inference thread
        if "boom" in inputs:
            raise ValueError("boom")
        if "oom" in inputs:
            raise MemoryError()
        return [x.upper() for x in inputs]


async def until_called(model: RecordingModel) -> None:
    while not model.calls:
        await asyncio.sleep(0.001)


@contextlib.asynccontextmanager
async def running(model: RecordingModel, *, max_batch_size: int, max_wait_s: float) -> AsyncIterator[DynamicBatcher]:
    """A started batcher in front of ``model``, closed on the way out (also when the test fails,
    so no inference thread outlives it)."""
    batcher = DynamicBatcher(model, max_batch_size=max_batch_size, max_wait_s=max_wait_s)
    batcher.start()
    try:
        yield batcher
    finally:
        await batcher.close()


async def behind_a_busy_model(batcher: DynamicBatcher, model: RecordingModel) -> asyncio.Future:
    """Submit "first" and return once the model is computing it: what is submitted next queues."""
    first = asyncio.ensure_future(batcher.submit(["first"], {}))
    await until_called(model)
    return first


def run(coro):
    return asyncio.run(coro)


def test_lone_request_does_not_wait_for_company() -> None:
    model = RecordingModel()

    async def scenario():
        # A wait of an hour: had the batcher waited for company, wait_for would give up first.
        async with running(model, max_batch_size=8, max_wait_s=3600.0) as batcher:
            return await asyncio.wait_for(batcher.submit(["a"], {}), timeout=60)

    outputs, info = run(scenario())
    assert outputs == ["A"] and info.requests == 1
    assert model.threads == {"inference_0"}


def test_an_oversized_request_reaches_the_model_in_chunks_of_the_maximum() -> None:
    model = RecordingModel()
    inputs = [f"x{i}" for i in range(11)]

    async def scenario():
        async with running(model, max_batch_size=4, max_wait_s=0.0) as batcher:
            return await batcher.submit(inputs, {})

    outputs, info = run(scenario())
    assert [len(call_inputs) for call_inputs, _ in model.calls] == [4, 4, 3]
    assert outputs == [x.upper() for x in inputs] and info.requests == 1


def test_queued_requests_batch_by_parameters_and_get_their_own_outputs() -> None:
    model = RecordingModel(delay=0.05)

    async def scenario():
        async with running(model, max_batch_size=4, max_wait_s=0.01) as batcher:
            first = await behind_a_busy_model(batcher, model)
            rest = [asyncio.ensure_future(batcher.submit([f"x{i}"], {"p": i % 2})) for i in range(6)]
            big = asyncio.ensure_future(batcher.submit([f"y{i}" for i in range(6)], {"p": 0}))
            return await asyncio.gather(first, *rest, big)

    results = run(scenario())
    for i, (outputs, _info) in enumerate(results[1:7]):
        assert outputs == [f"X{i}"]
    assert results[7][0] == [f"Y{i}" for i in range(6)]
    for inputs, _parameters in model.calls:
        assert len(inputs) <= 4  # the oversized request was chunked
    # Every call saw one parameter set; groups of queued requests were batched.
    assert any(len(inputs) == 3 for inputs, _ in model.calls)


def test_a_failing_input_fails_only_its_own_request() -> None:
    model = RecordingModel(delay=0.02)

    async def scenario():
        async with running(model, max_batch_size=8, max_wait_s=0.01) as batcher:
            blocker = await behind_a_busy_model(batcher, model)
            futures = [asyncio.ensure_future(batcher.submit([x], {})) for x in ("ok1", "boom", "oom", "ok2")]
            return await asyncio.gather(blocker, *futures, return_exceptions=True)

    _, ok1, boom, oom, ok2 = run(scenario())
    assert ok1[0] == ["OK1"] and ok2[0] == ["OK2"]
    assert isinstance(boom, ModelError) and isinstance(oom, InsufficientStorage)
