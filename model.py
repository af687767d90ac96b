"""The paper's CRNN, under the paper's file name (:mod:`vocal_melody.model`); run it for the model summary.

    python model.py
"""

from vocal_melody.model import PAPER_FILTERS, PAPER_LSTM_UNITS, build_model, model_config, model_from_bundle  # noqa: F401

if __name__ == "__main__":
    build_model().summary()
