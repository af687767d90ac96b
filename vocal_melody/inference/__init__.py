"""Inference: engines (TensorFlow, OpenVINO, int8), quantization, decoding, and the extractor."""
