"""Parametrise the suite over every backend plugin in ``conformance/backends/``."""

from __future__ import annotations

import importlib
import os
import pkgutil
from collections.abc import Iterator
from pathlib import Path

# Must be set before gcsfs is imported anywhere (60 s gRPC timeouts per bucket otherwise).
os.environ.setdefault("GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT", "false")
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
os.environ.setdefault("NO_GCE_CHECK", "true")

import pytest

import artifact_fs
from conformance import backends as backend_plugins
from conformance.harness import BackendSpec, BackendUnderTest, Target

PLUGIN_MODULES = [
    f"conformance.backends.{info.name}"
    for info in pkgutil.iter_modules(backend_plugins.__path__)
    if not info.name.startswith("_")
]
pytest_plugins = PLUGIN_MODULES
# The plugins are imported below (for their SPECS) before pytest loads them as plugins.
pytest.register_assert_rewrite(*PLUGIN_MODULES)

SPECS: list[BackendSpec] = [spec for name in PLUGIN_MODULES for spec in importlib.import_module(name).SPECS]


def _needed_capabilities(metafunc: pytest.Metafunc) -> set[str]:
    needed: set[str] = set()
    for marker in metafunc.definition.iter_markers("need_capability"):
        needed.update(marker.args)
    return needed


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "backend" not in metafunc.fixturenames:
        return
    needed = _needed_capabilities(metafunc)
    only = {m.args[0] for m in metafunc.definition.iter_markers("only_backends") if m.args}
    params = []
    for spec in SPECS:
        if needed and not all(getattr(spec.capabilities, name) for name in needed):
            continue
        if only and spec.mark not in only and spec.id not in only:
            continue
        marks = [getattr(pytest.mark, spec.mark)]
        reason = spec.xfail.get(metafunc.definition.originalname)
        if reason:
            marks.append(pytest.mark.xfail(strict=True, reason=reason))
        params.append(pytest.param(spec, id=spec.id, marks=marks))
    metafunc.parametrize("backend", params, indirect=True)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "only_backends(name): run only on the named backend marks/ids")


# fsspec's abstract copy/get/put tests each run 32 glob edge cases; most of them exercise fsspec's own
# pattern expansion, not the backend. Every backend runs these nine (each wildcard kind, recursion,
# maxdepth, nesting); the local backend, and every backend with ARTIFACT_FS_ALL_GLOB_CASES=1, runs all.
GLOB_CASES_ON_EVERY_BACKEND = {
    ("fil?1", False, None),
    ("file[1-2]", True, None),
    ("*", True, None),
    ("*", True, 2),
    ("**", True, None),
    ("**", False, 2),
    ("**/*1", True, 2),
    ("**/subdir0/nested*", True, 2),
    ("subdir[0-1]/*fil[e]*", True, None),
}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if os.environ.get("ARTIFACT_FS_ALL_GLOB_CASES") == "1":
        return
    kept, dropped = [], []
    for item in items:
        params = getattr(getattr(item, "callspec", None), "params", {})
        spec = params.get("backend")
        if (
            isinstance(spec, BackendSpec)
            and spec.mark != "local"
            and "expected" in params
            and (params["path"], params["recursive"], params["maxdepth"]) not in GLOB_CASES_ON_EVERY_BACKEND
        ):
            dropped.append(item)
        else:
            kept.append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept


@pytest.fixture(scope="session")
def server_log_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("server-logs")


@pytest.fixture
def backend(request: pytest.FixtureRequest) -> BackendUnderTest:
    spec: BackendSpec = request.param
    running: BackendUnderTest = request.getfixturevalue(spec.fixture_name)
    return running


@pytest.fixture
def target(backend: BackendUnderTest) -> Iterator[Target]:
    """A fresh, empty prefix on the backend; removed after the test."""
    url = backend.fresh_url()
    fs, root = artifact_fs.url_to_fs(url, **backend.storage_options)
    yield Target(backend=backend, url=url, fs=fs, root=root)
    try:
        if fs.exists(root):
            fs.rm(root, recursive=True)
    except Exception as exc:  # noqa: BLE001 - cleanup must not mask the test's own result
        print(f"cleanup of {url} failed: {exc!r}")
