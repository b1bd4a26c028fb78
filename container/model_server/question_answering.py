"""Extractive question answering, which transformers 5 has no pipeline for any more.

The toolkit's README opens with a question-answering model
(``{"inputs": {"question": ..., "context": ...}}``), so migrating users have
them. This module does what transformers 4's question-answering pipeline did,
on a whole batch at once: question and context tokenized as a pair (long
contexts split into overlapping windows), one forward pass of an
``AutoModelForQuestionAnswering``, and the best spans scored with
transformers' own span selection (``select_starts_ends``, still shipped with
the document-question-answering pipeline). Answers are the pipeline's:
``{"score", "start", "end", "answer"}`` with character offsets into the context,
one object per input (a list of ``top_k`` objects when ``top_k`` > 1).
"""

from __future__ import annotations

from typing import Any

from .errors import BadRequest

# The defaults of transformers 4's QuestionAnsweringPipeline.
_DEFAULTS = {"top_k": 1, "max_answer_len": 15, "max_seq_len": 384, "doc_stride": 128, "handle_impossible_answer": False}
_POSITIVE_INTS = ("top_k", "max_answer_len", "max_seq_len", "doc_stride", "max_question_len")


class QuestionAnsweringModel:
    task = "question-answering"

    def __init__(self, model: Any, tokenizer: Any, device: Any) -> None:
        if not getattr(tokenizer, "is_fast", False):
            # Character offsets of the answer come from a fast tokenizer's offset mapping.
            raise ValueError("question-answering needs a fast tokenizer (tokenizer.json) in the model directory")
        self.model = model
        self.tokenizer = tokenizer
        self.device = device

    # -- called on the event loop: cheap checks only -----------------------------------------
    def validate(self, inputs: list[Any], parameters: dict[str, Any]) -> None:
        for position, item in enumerate(inputs):
            where = '"inputs"' if len(inputs) == 1 else f'"inputs"[{position}]'
            if not isinstance(item, dict) or not all(
                isinstance(item.get(key), str) and item[key].strip() for key in ("question", "context")
            ):
                raise BadRequest(
                    f'{where} for question-answering is {{"question": "...", "context": "..."}} '
                    "with two non-empty strings"
                )
        unknown = set(parameters) - set(_DEFAULTS) - {"max_question_len"}
        if unknown:
            raise BadRequest(
                f"unknown parameters for question-answering: {sorted(unknown)}; "
                f"allowed: {sorted({*_DEFAULTS, 'max_question_len'})}"
            )
        for name in _POSITIVE_INTS:
            value = parameters.get(name)
            if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
                raise BadRequest(f'"parameters.{name}" must be a positive integer, not {value!r}')
        if not isinstance(parameters.get("handle_impossible_answer", False), bool):
            raise BadRequest('"parameters.handle_impossible_answer" must be true or false')

    # -- called on the inference thread ---------------------------------------------------------
    def predict_batch(self, inputs: list[dict[str, str]], parameters: dict[str, Any]) -> list[Any]:
        import numpy as np
        import torch
        from transformers.pipelines.document_question_answering import select_starts_ends

        options = {**_DEFAULTS, **parameters}
        max_seq_len = min(options["max_seq_len"], self.tokenizer.model_max_length)
        stride = min(options["doc_stride"], max_seq_len // 2)
        # The question goes first unless the tokenizer pads on the left (XLNet-style).
        question_first = self.tokenizer.padding_side == "right"
        questions = [x["question"].lstrip() for x in inputs]
        contexts = [x["context"] for x in inputs]
        encoded = self.tokenizer(
            questions if question_first else contexts,
            contexts if question_first else questions,
            truncation="only_second" if question_first else "only_first",
            max_length=max_seq_len,
            stride=stride,
            return_overflowing_tokens=True,
            return_offsets_mapping=True,
            padding=True,
            return_tensors="pt",
        )
        windows_of = encoded["overflow_to_sample_mapping"].tolist()
        offsets = encoded["offset_mapping"].tolist()
        attention = encoded["attention_mask"].numpy()
        model_inputs = {k: v.to(self.device) for k, v in encoded.items() if k in self.tokenizer.model_input_names}
        with torch.inference_mode():
            output = self.model(**model_inputs)
        starts = output.start_logits.float().cpu().numpy()
        ends = output.end_logits.float().cpu().numpy()

        context_sequence = 1 if question_first else 0
        answers: list[list[dict[str, Any]]] = [[] for _ in inputs]
        null_scores = [1_000_000.0 for _ in inputs]
        for window, sample in enumerate(windows_of):
            sequence_ids = encoded.sequence_ids(window)
            # 1 where a token cannot be part of the answer: the question, special tokens, padding.
            p_mask = np.array([0 if sid == context_sequence else 1 for sid in sequence_ids])
            if encoded["input_ids"][window][0].item() == self.tokenizer.cls_token_id:
                # The CLS token stands for "no answer" (its score is the null score), as in the old pipeline.
                p_mask[0] = 0
            span_starts, span_ends, scores, null_scores[sample] = select_starts_ends(
                starts[window][None],
                ends[window][None],
                p_mask,
                attention[window],
                null_scores[sample],
                options["top_k"],
                options["handle_impossible_answer"],
                options["max_answer_len"],
            )
            for s, e, score in zip(span_starts, span_ends, scores, strict=False):
                if sequence_ids[s] != context_sequence or sequence_ids[e] != context_sequence:
                    continue  # the CLS token: "no answer" is added below when asked for
                begin, finish = offsets[window][s][0], offsets[window][e][1]
                answers[sample].append(
                    {"score": float(score), "start": begin, "end": finish, "answer": contexts[sample][begin:finish]}
                )
        results: list[Any] = []
        for sample, found in enumerate(answers):
            if options["handle_impossible_answer"]:
                found.append({"score": null_scores[sample], "start": 0, "end": 0, "answer": ""})
            # The same span can win in two overlapping windows: keep its best score.
            best: dict[tuple[int, int], dict[str, Any]] = {}
            for answer in sorted(found, key=lambda a: -a["score"]):
                best.setdefault((answer["start"], answer["end"]), answer)
            top = list(best.values())[: options["top_k"]]
            results.append(top[0] if options["top_k"] == 1 and top else top)
        return results

    def warmup(self) -> None:
        self.predict_batch([{"question": "warm up?", "context": "warm up"}], {})

    def __call__(self, inputs: Any, **parameters: Any) -> Any:
        """Pipeline-style call for user ``predict_fn``s: a dict gives a dict, a list a list."""
        batch = inputs if isinstance(inputs, list) else [inputs]
        self.validate(batch, parameters)
        outputs = self.predict_batch(batch, parameters)
        return outputs if isinstance(inputs, list) else outputs[0]
