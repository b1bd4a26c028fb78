def predict_fn(data):
    return data
