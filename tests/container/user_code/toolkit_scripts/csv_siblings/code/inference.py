"""A CSV-sending client's script: the body is a str of lines, processed with str methods.

No model_fn: the server's default model (what the toolkit's default load returns)
is called like a pipeline. A sibling module is imported from code/.
"""

from text_utils import clean


def input_fn(input_data, content_type):
    if content_type == "text/csv":
        rows = [clean(line) for line in input_data.splitlines() if line.strip()]
        return {"inputs": ["summarize: " + row for row in rows], "parameters": {"max_new_tokens": 2}}
    raise ValueError("send text/csv")


def predict_fn(data, model):
    outputs = model(data["inputs"], **data["parameters"])
    return {"rows": len(data["inputs"]), "first_input": data["inputs"][0], "outputs": outputs}


def output_fn(prediction, accept):
    if accept == "text/csv":
        return "rows\n" + str(prediction["rows"]) + "\n"
    import json

    return json.dumps(prediction)
