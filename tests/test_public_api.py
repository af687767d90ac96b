"""The public API is typed, and every engine is an :class:`~vocal_melody.inference.engines.Engine`."""

from __future__ import annotations

import importlib
import inspect

import numpy as np
import pytest

PUBLIC_MODULES = ("vocal_melody.inference.extractor", "vocal_melody.inference.decoding",
                  "vocal_melody.inference.engines", "vocal_melody.evaluation", "vocal_melody.formats.readers",
                  "vocal_melody.formats.writers", "vocal_melody.formats.tracks", "vocal_melody.bundle",
                  "vocal_melody.labels", "vocal_melody.features", "vocal_melody.batch")


def public_callables():
    for name in PUBLIC_MODULES:
        module = importlib.import_module(name)
        for attribute, value in vars(module).items():
            if attribute.startswith("_") or getattr(value, "__module__", None) != name:
                continue
            if inspect.isfunction(value):
                yield f"{name}.{attribute}", value
            elif inspect.isclass(value) and not issubclass(value, Exception) and not getattr(value, "_is_protocol", 0):
                for method_name, method in vars(value).items():
                    if inspect.isfunction(method) and (not method_name.startswith("_") or method_name == "__init__"):
                        yield f"{name}.{attribute}.{method_name}", method


def test_public_functions_are_typed_and_documented():
    untyped, undocumented = [], []
    for name, function in public_callables():
        signature = inspect.signature(function)
        parameters = [p for p in signature.parameters.values() if p.name not in ("self", "cls")]
        if any(p.annotation is inspect.Parameter.empty for p in parameters) or \
                signature.return_annotation is inspect.Signature.empty:
            untyped.append(name)
        if not function.__doc__ and not name.endswith("__init__"):
            undocumented.append(name)
    assert untyped == [] and undocumented == []


def test_the_public_api_is_the_package_root():
    import vocal_melody
    from vocal_melody.inference import extractor

    assert vocal_melody.extract_melody is extractor.extract_melody
    assert vocal_melody.MelodyExtractor is extractor.MelodyExtractor
    assert vocal_melody.DEFAULT_WEIGHTS.is_file()
    with pytest.raises(AttributeError):
        vocal_melody.no_such_name  # noqa: B018


@pytest.mark.parametrize("engine", ["tf", "openvino"])
def test_every_engine_satisfies_the_engine_protocol(engine, tiny_bundle):
    if engine == "openvino":
        pytest.importorskip("openvino")
    from vocal_melody.bundle import read_bundle
    from vocal_melody.inference.engines import Engine, make_engine

    made = make_engine(read_bundle(tiny_bundle), engine)
    assert isinstance(made, Engine) and made.name == engine
    output = made(np.zeros((2, 31, 513, 1), np.float32))
    assert output.shape == (2, 31, 442) and output.dtype == np.float32
