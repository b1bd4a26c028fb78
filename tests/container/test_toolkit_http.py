"""The Hugging Face toolkit's documented HTTP behaviours, table-driven, one tiny model per task.

Source of each expectation: the toolkit's decoder_encoder / handler_service and
their unit tests (github.com/aws/sagemaker-huggingface-inference-toolkit), and
what the transformers pipeline it calls returns for the same input. Where this
server deliberately differs (status codes: the toolkit answers 400 for every
failure), the row says so.
"""

from __future__ import annotations

import io
import json
import threading
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from devtools.tiny_model import build_tiny_seq2seq

from .inprocess import InProcessServer, serve
from .tiny_models import (
    build_tiny_bert,
    build_tiny_gpt2,
    build_tiny_vit,
    build_tiny_wav2vec2_classifier,
    build_tiny_wav2vec2_ctc,
)

pytestmark = pytest.mark.slow

NLI_LABELS = ["entailment", "neutral", "contradiction"]


def _summarizer(path: Path) -> Path:
    """A BART summarizer as the hub ships them: task_specific_params names summarization."""
    build_tiny_seq2seq(path, max_new_tokens=4)
    config = json.loads((path / "config.json").read_text())
    config["task_specific_params"] = {"summarization": {"max_length": 20, "min_length": 1}}
    (path / "config.json").write_text(json.dumps(config))
    return path


MODELS: dict[str, tuple[Callable[[Path], Path], dict[str, str]]] = {
    # No HF_TASK anywhere but zero-shot: the task is inferred as the toolkit infers it.
    "bart-summarizer": (_summarizer, {}),
    "fill-mask": (lambda p: build_tiny_bert(p, "ForMaskedLM"), {}),
    "text-classification": (lambda p: build_tiny_bert(p, "ForSequenceClassification", labels=["NEG", "POS"]), {}),
    "zero-shot": (
        lambda p: build_tiny_bert(p, "ForSequenceClassification", labels=NLI_LABELS),
        {"hf_task": "zero-shot-classification"},
    ),
    "token-classification": (lambda p: build_tiny_bert(p, "ForTokenClassification", labels=["O", "B-PER"]), {}),
    "text-generation": (build_tiny_gpt2, {}),
    "feature-extraction": (lambda p: build_tiny_bert(p, "Model"), {}),
    "image-classification": (build_tiny_vit, {}),
    "audio-classification": (build_tiny_wav2vec2_classifier, {}),
    "speech-recognition": (build_tiny_wav2vec2_ctc, {}),
    "question-answering": (lambda p: build_tiny_bert(p, "ForQuestionAnswering"), {}),
}


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[[str], InProcessServer]]:
    """Each model's server, started on first use and kept for the module."""
    started: dict[str, InProcessServer] = {}
    with ExitStack() as stack:

        def get(name: str) -> InProcessServer:
            if name not in started:
                build, settings = MODELS[name]
                model_dir = build(tmp_path_factory.mktemp(name))
                started[name] = stack.enter_context(serve(model_dir, max_batch_size=8, **settings))
            return started[name]

        yield get


# ------------------------------------------------------------------------------ bodies
def png(size: tuple[int, int] = (40, 30), fmt: str = "PNG") -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", size, (200, 30, 30)).save(buffer, format=fmt)
    return buffer.getvalue()


def audio(fmt: str = "WAV", rate: int = 16000, seconds: float = 0.5, channels: int = 1) -> bytes:
    import soundfile

    t = np.arange(int(rate * seconds)) / rate
    wave = (0.3 * np.sin(2 * np.pi * 440 * t)).astype("float32")
    if channels > 1:
        wave = np.stack([wave] * channels, axis=1)
    buffer = io.BytesIO()
    soundfile.write(buffer, wave, rate, format=fmt, subtype={"OGG": "VORBIS", "MP3": "MPEG_LAYER_III"}.get(fmt))
    return buffer.getvalue()


def npy(array: Any, allow_pickle: bool = False) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=allow_pickle)
    return buffer.getvalue()


def js(value: Any) -> bytes:
    return json.dumps(value).encode()


# ------------------------------------------------------------------------------ checks
def is_list_of(keys: set[str], length: int | None = None) -> Callable[[Any], bool]:
    def check(body: Any) -> bool:
        return (
            isinstance(body, list)
            and (length is None or len(body) == length)
            and all(isinstance(x, dict) and keys <= set(x) for x in body)
        )

    return check


def each(check: Callable[[Any], bool], length: int) -> Callable[[Any], bool]:
    return lambda body: isinstance(body, list) and len(body) == length and all(check(x) for x in body)


LABEL = {"label", "score"}
FILL = {"score", "token", "token_str", "sequence"}


@dataclass
class Case:
    model: str
    body: bytes
    content_type: str | None = "application/json"
    accept: str | None = None
    status: int = 200
    # JSON body check for 2xx; a fragment of the error message otherwise.
    expect: Callable[[Any], bool] | str | None = None
    response_type: str = "application/json"
    raw: Callable[[bytes], bool] | None = None
    note: str = ""
    headers: dict[str, str] = field(default_factory=dict)


CASES = {
    # --- seq2seq without HF_TASK: text2text-generation, "generated_text", as the toolkit infers it
    "bart summarizer without HF_TASK answers generated_text in a one-element list": Case(
        "bart-summarizer", js({"inputs": "The quick brown fox"}), expect=is_list_of({"generated_text"}, 1)
    ),
    "a list in, a list of the same length out": Case(
        "bart-summarizer", js({"inputs": ["a", "The quick brown fox"]}), expect=is_list_of({"generated_text"}, 2)
    ),
    "Accept */* is JSON": Case(
        "bart-summarizer", js({"inputs": "two"}), accept="*/*", expect=is_list_of({"generated_text"}, 1)
    ),
    "CSV with an inputs header: one input per row": Case(
        "bart-summarizer",
        b"inputs\r\nThe quick brown fox\r\nSummaries are short\r\n",
        "text/csv",
        expect=is_list_of({"generated_text"}, 2),
    ),
    "CSV without a header row is refused (toolkit: decode_csv raises 400)": Case(
        "bart-summarizer", b"The quick brown fox\r\nSummaries\r\n", "text/csv", status=400, expect="header"
    ),
    "Accept text/csv: a header row and one row per output": Case(
        "bart-summarizer",
        js({"inputs": ["a", "b"]}),
        accept="text/csv",
        response_type="text/csv",
        raw=lambda b: b.decode().splitlines()[0] == "generated_text" and len(b.decode().splitlines()) == 3,
    ),
    "an .npy array of strings is a list of inputs": Case(
        "bart-summarizer", npy(np.array(["a", "b", "c"])), "application/x-npy", expect=is_list_of({"generated_text"}, 3)
    ),
    "a pickled .npy object array is refused, never unpickled (the toolkit loads it with allow_pickle=True)": Case(
        "bart-summarizer",
        npy(np.array([{"inputs": "x"}], dtype=object), allow_pickle=True),
        "application/x-npy",
        status=400,
        expect="object arrays are refused",
    ),
    "JSON nested 100000 deep is a 400, not a RecursionError 500": Case(
        "bart-summarizer", b"[" * 100_000 + b"]" * 100_000, status=400, expect="nested too deeply"
    ),
    "inputs: 123 is the client's mistake": Case("bart-summarizer", js({"inputs": 123}), status=400, expect="string"),
    "max_new_tokens: -1 is the client's mistake": Case(
        "bart-summarizer",
        js({"inputs": "x", "parameters": {"max_new_tokens": -1}}),
        status=400,
        expect="max_new_tokens",
    ),
    "an unknown generation argument is named": Case(
        "bart-summarizer",
        js({"inputs": "x", "parameters": {"no_such_argument": 1}}),
        status=400,
        expect="no_such_argument",
    ),
    "an image for a text model is 415, naming the task": Case(
        "bart-summarizer", png(), "image/png", status=415, expect="text2text-generation"
    ),
    "Accept text/html is 406": Case(
        "bart-summarizer", js({"inputs": "x"}), accept="text/html", status=406, expect="text/html"
    ),
    # --- fill-mask
    "fill-mask, one input: the top_k candidates (no '5 outputs for 1 input' error)": Case(
        "fill-mask", js({"inputs": "paris is the [MASK] of france."}), expect=is_list_of(FILL, 5)
    ),
    "fill-mask, top_k=2 on one input": Case(
        "fill-mask", js({"inputs": "paris is [MASK].", "parameters": {"top_k": 2}}), expect=is_list_of(FILL, 2)
    ),
    "fill-mask, a list: one candidate list per input": Case(
        "fill-mask",
        js({"inputs": ["paris is [MASK].", "i [MASK] this movie."], "parameters": {"top_k": 3}}),
        expect=each(is_list_of(FILL, 3), 2),
    ),
    "fill-mask without the mask token is the client's mistake": Case(
        "fill-mask", js({"inputs": "no mask here"}), status=400, expect="[MASK]"
    ),
    "fill-mask with an argument it does not take": Case(
        "fill-mask",
        js({"inputs": "a [MASK]", "parameters": {"max_new_tokens": 3}}),
        status=400,
        expect="max_new_tokens",
    ),
    # --- text-classification
    "text-classification, one input: pipeline(input) is a one-element list": Case(
        "text-classification", js({"inputs": "i love this movie"}), expect=is_list_of(LABEL, 1)
    ),
    "text-classification, top_k=2": Case(
        "text-classification", js({"inputs": "i love it", "parameters": {"top_k": 2}}), expect=is_list_of(LABEL, 2)
    ),
    "text-classification, text/csv response": Case(
        "text-classification",
        b"inputs\nI love you\nI hate waiting\n",
        "text/csv",
        accept="text/csv",
        response_type="text/csv",
        raw=lambda b: b.decode().splitlines()[0] == "label,score" and len(b.decode().splitlines()) == 3,
    ),
    "text-classification, tokenizer arguments pass": Case(
        "text-classification",
        js({"inputs": "i love it", "parameters": {"truncation": True}}),
        expect=is_list_of(LABEL, 1),
    ),
    "a list of label objects has no .npy form: 406 (the toolkit pickles it)": Case(
        "text-classification",
        js({"inputs": "i love it"}),
        accept="application/x-npy",
        status=406,
        expect="application/json",
    ),
    # --- zero-shot
    "zero-shot with candidate_labels: the pipeline's object": Case(
        "zero-shot",
        js({"inputs": "i love it", "parameters": {"candidate_labels": ["good", "bad"]}}),
        expect=lambda b: set(b) == {"sequence", "labels", "scores"} and sorted(b["labels"]) == ["bad", "good"],
    ),
    "zero-shot without labels is the client's mistake": Case(
        "zero-shot", js({"inputs": "i love it"}), status=400, expect="candidate_labels"
    ),
    "zero-shot with a hypothesis template that has no {} for the label": Case(
        "zero-shot",
        js({"inputs": "x", "parameters": {"candidate_labels": ["a"], "hypothesis_template": "It is"}}),
        status=400,
        expect="hypothesis_template",
    ),
    "top_k must be a positive integer": Case(
        "text-classification", js({"inputs": "x", "parameters": {"top_k": "three"}}), status=400, expect="top_k"
    ),
    "zero-shot refuses CSV, as the toolkit does": Case(
        "zero-shot", b"inputs\nx\n", "text/csv", status=415, expect="zero-shot-classification"
    ),
    # --- token-classification, text-generation, feature-extraction
    "token-classification, one input: a list of entities": Case(
        "token-classification",
        js({"inputs": "my name is wolfgang"}),
        expect=is_list_of({"entity", "score", "word", "start", "end"}),
    ),
    "token-classification, aggregation_strategy=simple groups entities": Case(
        "token-classification",
        js({"inputs": "my name is wolfgang", "parameters": {"aggregation_strategy": "simple"}}),
        expect=is_list_of({"entity_group", "score", "word", "start", "end"}),
    ),
    "token-classification, an unknown aggregation_strategy": Case(
        "token-classification",
        js({"inputs": "x", "parameters": {"aggregation_strategy": "biggest"}}),
        status=400,
        expect="aggregation_strategy",
    ),
    "text-generation, one input: [{generated_text}]": Case(
        "text-generation",
        js({"inputs": "i love", "parameters": {"max_new_tokens": 2}}),
        expect=is_list_of({"generated_text"}, 1),
    ),
    "text-generation: max_new_tokens -1": Case(
        "text-generation",
        js({"inputs": "i love", "parameters": {"max_new_tokens": -1}}),
        status=400,
        expect="max_new_tokens",
    ),
    "text-generation: an unknown generation argument": Case(
        "text-generation", js({"inputs": "i love", "parameters": {"no_such_arg": 3}}), status=400, expect="no_such_arg"
    ),
    "feature-extraction, Accept application/x-npy: the embeddings as an array": Case(
        "feature-extraction",
        js({"inputs": "i love it"}),
        accept="application/x-npy",
        response_type="application/x-npy",
        raw=lambda b: np.load(io.BytesIO(b)).shape[0] == 1 and np.load(io.BytesIO(b)).shape[-1] == 16,
    ),
    # --- images
    **{
        f"image-classification, an {fmt} body": Case(
            "image-classification", png(fmt=fmt), media, expect=is_list_of(LABEL)
        )
        for fmt, media in [
            ("PNG", "image/png"),
            ("JPEG", "image/jpeg"),
            ("WEBP", "image/webp"),
            ("GIF", "image/gif"),
            ("BMP", "image/bmp"),
            ("TIFF", "image/tiff"),
            ("PNG", "image/x-image"),
        ]
    },
    "image-classification, a local path is never opened": Case(
        "image-classification", js({"inputs": "/etc/hostname"}), status=400, expect="URL"
    ),
    "image-classification, a corrupt image": Case(
        "image-classification", png()[:40], "image/png", status=400, expect="image"
    ),
    "image-classification, text is 415": Case(
        "image-classification", b"hello", "text/plain", status=415, expect="image-classification"
    ),
    # --- audio
    **{
        f"audio-classification, a {fmt} body": Case("audio-classification", audio(fmt), media, expect=is_list_of(LABEL))
        for fmt, media in [
            ("WAV", "audio/wave"),
            ("FLAC", "audio/x-flac"),
            ("OGG", "audio/ogg"),
            ("MP3", "audio/mpeg"),
            ("WAV", "audio/x-audio"),
        ]
    },
    "audio-classification, 44.1 kHz stereo is resampled to the model's 16 kHz": Case(
        "audio-classification", audio("WAV", rate=44100, channels=2), "audio/wav", expect=is_list_of(LABEL)
    ),
    "audio-classification, an .npy waveform at the model's rate": Case(
        "audio-classification", npy(np.zeros(8000, dtype=np.float32)), "application/x-npy", expect=is_list_of(LABEL)
    ),
    "automatic-speech-recognition (inferred from Wav2Vec2ForCTC), a FLAC body: {text}": Case(
        "speech-recognition",
        audio("FLAC", rate=22050),
        "audio/x-flac",
        expect=lambda b: set(b) == {"text"} and isinstance(b["text"], str),
    ),
    "automatic-speech-recognition, JSON samples in the pipeline's own dict form, at 8 kHz": Case(
        "speech-recognition",
        js({"inputs": {"raw": [0.0, 0.1, -0.1] * 2000, "sampling_rate": 8000}}),
        expect=lambda b: set(b) == {"text"},
    ),
    "automatic-speech-recognition, a dict without a sampling rate": Case(
        "speech-recognition", js({"inputs": {"raw": [0.0, 0.1]}}), status=400, expect="sampling_rate"
    ),
    "automatic-speech-recognition, a list of recordings is not a JSON request it can take": Case(
        "speech-recognition", js({"inputs": [1, 2, 3]}), status=400, expect="audio"
    ),
    "audio-classification, a body that is not audio": Case(
        "audio-classification", b"RIFF....not audio", "audio/wave", status=400, expect="audio"
    ),
}


@pytest.mark.parametrize("case", list(CASES.values()), ids=list(CASES))
def test_toolkit_http_behaviour(servers: Callable[[str], InProcessServer], case: Case) -> None:
    server = servers(case.model)
    assert server.state.status == "ready", server.state.error
    response = server.post(case.body, case.content_type, case.accept, **case.headers)
    assert response.status_code == case.status, response.text
    if case.status >= 400:
        body = response.json()
        assert body["status"] == case.status
        assert isinstance(case.expect, str) and case.expect.lower() in body["message"].lower(), body
        return
    assert response.headers["content-type"].split(";")[0] == case.response_type
    if case.raw is not None:
        assert case.raw(response.content), response.content[:300]
    if callable(case.expect):
        assert case.expect(response.json()), response.text[:500]


CONTEXT = "My name is Wolfgang and I live in Berlin. The capital of France is Paris."


def is_answer_in(context: str) -> Callable[[Any], bool]:
    """transformers 4's question-answering output: the span's text at its character offsets."""

    def check(answer: Any) -> bool:
        return (
            isinstance(answer, dict)
            and set(answer) == {"score", "start", "end", "answer"}
            and 0 <= answer["score"] <= 1
            and answer["answer"] == context[answer["start"] : answer["end"]]
            and len(answer["answer"]) > 0
        )

    return check


QA_CASES = {
    "one question: one answer object (the pipeline's shape)": (
        js({"inputs": {"question": "Where do I live?", "context": CONTEXT}}),
        200,
        is_answer_in(CONTEXT),
    ),
    "top_k=3: a list of answers": (
        js({"inputs": {"question": "Where?", "context": CONTEXT}, "parameters": {"top_k": 3}}),
        200,
        lambda b: (
            isinstance(b, list)
            and len(b) == 3
            and all(is_answer_in(CONTEXT)(a) for a in b)
            and b[0]["score"] >= b[1]["score"] >= b[2]["score"]
        ),
    ),
    "a list of questions: one answer each": (
        js({"inputs": [{"question": "Who?", "context": CONTEXT}, {"question": "What?", "context": "I love Paris."}]}),
        200,
        lambda b: is_answer_in(CONTEXT)(b[0]) and is_answer_in("I love Paris.")(b[1]),
    ),
    "a context longer than the model's window is read in overlapping windows": (
        js({"inputs": {"question": "Where?", "context": " ".join([CONTEXT] * 12)}}),
        200,
        is_answer_in(" ".join([CONTEXT] * 12)),
    ),
    "handle_impossible_answer may answer nothing": (
        js(
            {
                "inputs": {"question": "Where?", "context": CONTEXT},
                "parameters": {"handle_impossible_answer": True, "top_k": 40},
            }
        ),
        200,
        lambda b: [(a["start"], a["end"]) for a in b if a["answer"] == ""] == [(0, 0)],
    ),
    "a string instead of question and context": (js({"inputs": "Where do I live?"}), 400, "question"),
    "an unknown parameter": (
        js({"inputs": {"question": "a", "context": "b"}, "parameters": {"max_new_tokens": 2}}),
        400,
        "max_new_tokens",
    ),
    "top_k 0": (js({"inputs": {"question": "a", "context": "b"}, "parameters": {"top_k": 0}}), 400, "top_k"),
}


@pytest.mark.parametrize(("body", "status", "expect"), list(QA_CASES.values()), ids=list(QA_CASES))
def test_question_answering_without_a_pipeline(
    servers: Callable[[str], InProcessServer], body: bytes, status: int, expect: Any
) -> None:
    """A ...ForQuestionAnswering model without HF_TASK is served as question-answering, never as another task."""
    server = servers("question-answering")
    assert server.state.status == "ready", server.state.error
    assert server.state.loaded.task == "question-answering"
    response = server.post(body)
    assert response.status_code == status, response.text
    if status == 200:
        assert expect(response.json()), response.text
    else:
        assert expect in response.json()["message"]


def test_question_answering_from_csv_rows(servers: Callable[[str], InProcessServer]) -> None:
    """The toolkit's CSV form for this task: question and context columns, one object per row."""
    server = servers("question-answering")
    body = f'question,context\r\nwhere do i live?,"{CONTEXT}"\r\nwhat is paris?,The capital of France is Paris.\r\n'
    response = server.post(body.encode(), "text/csv", accept="text/csv")
    assert response.status_code == 200, response.text
    lines = response.text.splitlines()
    assert lines[0] == "score,start,end,answer" and len(lines) == 3


def test_a_task_without_a_pipeline_fails_to_load_with_its_name(tmp_path: Path) -> None:
    """/ping must not say healthy for a task this server cannot serve."""
    model_dir = build_tiny_bert(tmp_path / "vqa", "ForQuestionAnswering")
    with serve(model_dir, hf_task="visual-question-answering") as server:
        ping = server.client.get("/ping")
        assert ping.status_code == 503
        assert ping.json()["status"] == "failed" and "visual-question-answering" in ping.json()["error"]
        response = server.post(js({"inputs": {"question": "q", "context": "c"}}))
        assert response.status_code == 503 and "visual-question-answering" in response.json()["message"]


def test_bad_requests_never_reach_the_batch(
    servers: Callable[[str], InProcessServer], monkeypatch: pytest.MonkeyPatch
) -> None:
    server = servers("fill-mask")
    calls: list[list[Any]] = []
    real = server.model.predict_batch

    def counting(inputs, parameters):
        calls.append(list(inputs))
        return real(inputs, parameters)

    monkeypatch.setattr(server.model, "predict_batch", counting)
    for body in (
        js({"inputs": 123}),
        js({"inputs": "no mask"}),
        js({"inputs": "a [MASK]", "parameters": {"x": 1}}),
        js({"inputs": ["a [MASK]", 5]}),
        b"[" * 5000,
    ):
        assert server.post(body).status_code == 400
    assert calls == []
    assert server.post(js({"inputs": "a [MASK]"})).status_code == 200
    assert calls == [["a [MASK]"]]


@pytest.mark.parametrize(
    ("raised", "status"),
    [
        (RuntimeError("CUDA error: device-side assert triggered"), 500),
        (MemoryError(), 507),
        (RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB"), 507),
    ],
)
def test_model_failures_are_5xx_and_out_of_memory_507(
    servers: Callable[[str], InProcessServer], monkeypatch: pytest.MonkeyPatch, raised: Exception, status: int
) -> None:
    server = servers("text-classification")

    def fail(inputs, parameters):
        raise raised

    monkeypatch.setattr(server.model, "predict_batch", fail)
    response = server.post(js({"inputs": "fine input"}))
    assert response.status_code == status and response.json()["status"] == status


def test_fill_mask_under_concurrency_each_request_gets_its_own_candidates(
    servers: Callable[[str], InProcessServer],
) -> None:
    """Batches of any size (1 included) answer every request with its own top_k list."""
    server = servers("fill-mask")
    # Words the tiny tokenizer knows, so each answer's "sequence" shows whose input it filled.
    words = [
        "paris",
        "berlin",
        "france",
        "movie",
        "amazon",
        "models",
        "wolfgang",
        "capital",
        "name",
        "live",
        "love",
        "hate",
    ]
    texts = [f"{word} is [MASK]." for word in words]
    results: dict[str, Any] = {}

    def send(text: str) -> None:
        response = server.post(js({"inputs": text, "parameters": {"top_k": 2}}))
        results[text] = (response.status_code, response.json())

    threads = [threading.Thread(target=send, args=(t,)) for t in texts]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    for text in texts:
        status, body = results[text]
        assert status == 200, body
        assert is_list_of(FILL, 2)(body), body
        # Each answer fills this request's own sentence.
        assert all(c["sequence"].startswith(text.split(" [")[0]) for c in body), (text, body)
    # Direct: a batch of one, two and three inputs, one candidate list per input.
    for n in (1, 2, 3):
        outputs = server.model.predict_batch(texts[:n], {"top_k": 2})
        assert len(outputs) == n and all(is_list_of(FILL, 2)(o) for o in outputs)


def test_compact_response_shape_is_the_opt_in_for_the_previous_shape(tmp_path: Path) -> None:
    model_dir = build_tiny_bert(tmp_path / "cls", "ForSequenceClassification", labels=["NEG", "POS"])
    with serve(model_dir, response_shape="compact") as server:
        body = server.post(js({"inputs": "i love it"})).json()
        assert isinstance(body, dict) and set(body) == LABEL
        assert is_list_of(LABEL, 2)(server.post(js({"inputs": ["a", "b"]})).json())


def test_a_diffusers_model_fails_to_load_with_the_reason(tmp_path: Path) -> None:
    """The toolkit serves a model_index.json directory as text-to-image; without diffusers that is a clear failure."""
    (tmp_path / "model_index.json").write_text('{"_class_name": "StableDiffusionPipeline"}')
    with serve(tmp_path) as server:
        ping = server.client.get("/ping")
        assert ping.status_code == 503 and "text-to-image" in ping.json()["error"]
