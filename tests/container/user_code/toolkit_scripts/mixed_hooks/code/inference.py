def transform_fn(model, input_data, content_type, accept):
    return input_data


def predict_fn(data, model):
    return data
