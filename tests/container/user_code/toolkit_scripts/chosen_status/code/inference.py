"""Scripts raise Multi Model Server's PredictionException(message, error_code) to choose a status."""


class PredictionException(Exception):
    # The same shape as mms.service.PredictionException (MMS is not installed here).
    def __init__(self, message, error_code=500):
        self.message = message
        self.error_code = error_code
        super().__init__(message)


def model_fn(model_dir):
    return "model"


def predict_fn(data, model):
    if len(data["inputs"]) > 10:
        raise PredictionException("inputs longer than 10 characters", 400)
    return {"ok": data["inputs"]}
