"""``models:/`` URIs: how MLflow's forms split into a model reference and an artifact path, the names
``models:`` and ``runs:`` filesystems give back, and the options the backend takes."""

from __future__ import annotations

import os

import pytest

from artifact_fs import backends, uris
from artifact_fs.backends import models, runs
from artifact_fs.uris import ModelReference, parse, split_models_path

MODEL_ID = "m-074689226d3b40bfbbdf4c3ff35832cd"

SPLITS = [
    (f"/{MODEL_ID}", ModelReference(model_id=MODEL_ID), ""),
    (f"/{MODEL_ID}/", ModelReference(model_id=MODEL_ID), ""),
    (f"/{MODEL_ID}/MLmodel", ModelReference(model_id=MODEL_ID), "MLmodel"),
    (f"/{MODEL_ID}/data/x.parquet", ModelReference(model_id=MODEL_ID), "data/x.parquet"),
    ("/anything-else", ModelReference(model_id="anything-else"), ""),
    ("/clf/1", ModelReference(name="clf", version="1"), ""),
    ("/clf/12/MLmodel", ModelReference(name="clf", version="12"), "MLmodel"),
    ("/clf/latest", ModelReference(name="clf"), ""),
    ("/clf/LATEST/a/b", ModelReference(name="clf"), "a/b"),
    ("/clf/Production/MLmodel", ModelReference(name="clf", stage="Production"), "MLmodel"),
    ("/clf@champion", ModelReference(name="clf", alias="champion"), ""),
    ("/clf@champion/MLmodel", ModelReference(name="clf", alias="champion"), "MLmodel"),
    ("/a@b@c/x", ModelReference(name="a@b", alias="c"), "x"),
    ("///clf@champion/x/", ModelReference(name="clf", alias="champion"), "x"),
    ("/my model/3/x", ModelReference(name="my model", version="3"), "x"),
]


@pytest.mark.parametrize(("path", "reference", "relative"), SPLITS, ids=[s[0] for s in SPLITS])
def test_a_models_path_splits_as_mlflow_splits_it(
    path: str, reference: ModelReference, relative: str
) -> None:
    assert split_models_path(path) == (reference, relative)


@pytest.mark.parametrize("path", ["/", "", "/@alias", "/name@", "/clf//MLmodel"])
def test_a_models_path_that_names_no_model_is_a_value_error(path: str) -> None:
    with pytest.raises(ValueError, match="expected models:/<model_id>"):
        split_models_path(path)


@pytest.mark.parametrize(
    ("reference", "spec"),
    [
        (ModelReference(model_id=MODEL_ID), MODEL_ID),
        (ModelReference(name="clf", version="4"), "clf/4"),
        (ModelReference(name="clf"), "clf/latest"),
        (ModelReference(name="clf", stage="Staging"), "clf/Staging"),
        (ModelReference(name="clf", alias="champion"), "clf@champion"),
    ],
)
def test_the_spec_of_a_reference_splits_back_to_it(reference: ModelReference, spec: str) -> None:
    assert reference.spec == spec
    assert str(reference) == f"models:/{spec}"
    assert split_models_path(f"{spec}/MLmodel") == (reference, "MLmodel")


def test_models_uris_parse_to_the_models_backend() -> None:
    parsed = parse("models:/clf@champion/data/x.parquet")
    assert parsed.backend == "models"
    assert parsed.model == ModelReference(name="clf", alias="champion")
    assert parsed.model_relative_path == "data/x.parquet"
    assert str(parsed) == "models:/clf@champion/data/x.parquet"
    triple = parse(f"models:///{MODEL_ID}/MLmodel")
    assert (triple.model, triple.model_relative_path) == (ModelReference(model_id=MODEL_ID), "MLmodel")
    assert parse("s3://b/k").model is None
    assert "models" in uris.SUPPORTED_SCHEMES


@pytest.mark.parametrize(
    ("uri", "message"),
    [
        ("models:/", "Not a proper models:/ URI"),
        ("models:clf/1", "Not a proper models:/ URI"),
        ("models://profile@databricks/clf/1", "Databricks profile forms are not supported"),
        ("models:/clf@", "Not a proper models:/ URI"),
    ],
)
def test_malformed_models_uris_are_clear_value_errors(uri: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse(uri)


@pytest.mark.parametrize(
    ("uri", "path"),
    [
        ("models:/clf/1", "clf/1"),
        ("models:/clf/Latest/MLmodel", "clf/latest/MLmodel"),
        ("models:/clf@champion/", "clf@champion"),
        (f"models:/{MODEL_ID}/a/b.txt", f"{MODEL_ID}/a/b.txt"),
    ],
)
def test_fs_path_is_the_spec_then_the_artifact_path(uri: str, path: str) -> None:
    assert models.fs_path(parse(uri), {}) == path


def test_strip_protocol_takes_every_slash_form() -> None:
    for url in (
        "models:/clf/1/MLmodel",
        "models:///clf/1/MLmodel",
        "MODELS:/clf/1/MLmodel",
        "clf/1/MLmodel/",
    ):
        assert models.ModelsFileSystem._strip_protocol(url) == "clf/1/MLmodel"
    assert runs.RunsFileSystem._strip_protocol("runs:///abc/x") == "abc/x"


def test_unstrip_protocol_gives_names_that_strip_back() -> None:
    """DuckDB re-opens what ``glob`` returns through ``unstrip_protocol``; it matches ``scheme://``."""
    model_fs = models.ModelsFileSystem("http://127.0.0.1:1", environ={}, skip_instance_cache=True)
    run_fs = runs.RunsFileSystem("http://127.0.0.1:1", environ={}, skip_instance_cache=True)
    for fs, name in ((model_fs, "clf@champion/data/x.parquet"), (run_fs, "abc123/texts/a.txt")):
        url = fs.unstrip_protocol(name)
        assert url == f"{fs.scheme}:///{name}"
        assert fs._strip_protocol(url) == name
        assert parse(url).scheme == fs.scheme


def test_options_keep_the_lookup_apart_from_the_stores_options() -> None:
    result = models.options(
        parse("models:/clf/1"), {"X": "1"}, tracking_uri="http://t", registry_uri="http://r", anon=True
    )
    assert result == {
        "environ": {"X": "1"},
        "tracking_uri": "http://t",
        "registry_uri": "http://r",
        "storage_options": {"anon": True},
    }
    assert "environ" not in models.options(parse("models:/clf/1"), os.environ)
    assert backends.option_names("models") == frozenset()  # handed on to the model's store


def test_a_registry_reference_is_read_only() -> None:
    fs = models.ModelsFileSystem("http://127.0.0.1:1", environ={}, skip_instance_cache=True)
    from artifact_fs.backends.resolved import Located

    for spec in ("clf/1", "clf@champion", "clf/latest"):
        with pytest.raises(PermissionError, match="read-only"):
            fs.check_writable(Located(spec, None, "x"))  # type: ignore[arg-type]
    fs.check_writable(Located(MODEL_ID, None, "x"))  # type: ignore[arg-type]


def test_a_non_http_tracking_uri_without_mlflow_is_a_clear_error() -> None:
    pytest.importorskip("artifact_fs")
    try:
        import mlflow  # type: ignore[import-not-found]  # noqa: F401
    except ImportError:
        pass
    else:
        pytest.skip("MLflow is importable here, so it would resolve the model itself")
    with pytest.raises(ValueError, match="cannot resolve models:/clf/1: .* or install mlflow"):
        models.artifact_uri_of_model("models:/clf/1", "sqlite:///mlflow.db", environ={})
