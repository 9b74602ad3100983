"""The public namespace is flat, sorted, and exactly what ``__all__`` says."""

from __future__ import annotations

import pickle
import traceback
import types

import pytest

import legnext_async
import legnext_async.redis
from legnext_async import emulator
from legnext_async._models import Task


def test_all_is_sorted() -> None:
    """``__all__`` is kept in sorted order, so a diff shows what was added."""
    assert legnext_async.__all__ == sorted(legnext_async.__all__)


def test_all_matches_public_names() -> None:
    """Every public name the package defines is in ``__all__``, and nothing else is."""
    public = {
        name
        for name, value in vars(legnext_async).items()
        if not name.startswith("_") and not isinstance(value, types.ModuleType)
    }
    assert public | {"__version__"} == set(legnext_async.__all__)


def _exported(package: types.ModuleType) -> dict[str, object]:
    """The classes and functions a package exports."""
    return {
        name: value
        for name in package.__all__
        if isinstance(value := getattr(package, name), type | types.FunctionType)
    }


@pytest.mark.parametrize(
    "package",
    [
        pytest.param(legnext_async, id="legnext_async"),
        pytest.param(emulator, id="legnext_async.emulator"),
        pytest.param(legnext_async.redis, id="legnext_async.redis"),
    ],
)
def test_exported_objects_present_themselves_as_the_package(package: types.ModuleType) -> None:
    """Every exported class and function names the package as its module, not a private one."""
    exported = _exported(package)
    assert exported
    assert {
        name: getattr(value, "__module__", None) for name, value in exported.items()
    } == dict.fromkeys(exported, package.__name__)


def test_an_error_type_shows_its_public_name() -> None:
    """The repr of an exception class names ``legnext_async.ValidationError``."""
    assert repr(legnext_async.ValidationError) == "<class 'legnext_async.ValidationError'>"


def test_a_traceback_names_the_public_error() -> None:
    """The last line of a traceback reads ``legnext_async.ValidationError: ...``."""
    try:
        raise legnext_async.ValidationError("prompt", "must not be empty")
    except legnext_async.ValidationError as exc:
        last = traceback.format_exception(exc)[-1]
    assert last == "legnext_async.ValidationError: prompt: must not be empty\n"


_FAILED = Task.from_json(
    {"job_id": "j-1", "status": "failed", "error": {"code": 10042, "message": "refused"}}
)


@pytest.mark.parametrize(
    "error",
    [
        pytest.param(legnext_async.LegnextError("plain"), id="LegnextError"),
        pytest.param(legnext_async.ValidationError("prompt", "too long"), id="ValidationError"),
        pytest.param(legnext_async.ClientClosedError("closed"), id="ClientClosedError"),
        pytest.param(
            legnext_async.APIConnectionError("refused", method="GET", path="/x", sent=False),
            id="APIConnectionError",
        ),
        pytest.param(
            legnext_async.APITimeoutError("no answer", method="GET", path="/x"),
            id="APITimeoutError",
        ),
        pytest.param(
            legnext_async.MalformedResponseError("not JSON", method="GET", path="/x", status=200),
            id="MalformedResponseError",
        ),
        pytest.param(
            legnext_async.NotFoundError(status=404, message="no job", body={"code": 404}),
            id="NotFoundError",
        ),
        pytest.param(
            legnext_async.EndpointNotFoundError(
                url="http://127.0.0.1:9/v1/x", status=404, message="no endpoint"
            ),
            id="EndpointNotFoundError",
        ),
        pytest.param(
            legnext_async.RateLimitError(status=429, message="slow down", retry_after=2.5),
            id="RateLimitError",
        ),
        pytest.param(
            legnext_async.SubmissionOutcomeUnknownError(
                endpoint="diffusion", payload={"text": "x"}, sent_at=1.0, reason="lost"
            ),
            id="SubmissionOutcomeUnknownError",
        ),
        pytest.param(legnext_async.TaskFailedError(_FAILED), id="TaskFailedError"),
        pytest.param(legnext_async.TaskTimeoutError("j-1", 60.0, _FAILED), id="TaskTimeoutError"),
    ],
)
def test_errors_survive_pickling(error: legnext_async.LegnextError) -> None:
    """An error unpickles (say, from a worker process) as the same type, message and fields."""
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is type(error)
    assert str(copy) == str(error)
    assert vars(copy) == vars(error)


def test_version_is_a_string() -> None:
    """``__version__`` is the installed version string."""
    assert isinstance(legnext_async.__version__, str)
    assert legnext_async.__version__.count(".") >= 2
