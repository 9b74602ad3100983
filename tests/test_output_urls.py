"""Output URLs: results hold only absolute http(s) URLs with a host; anything else is dropped
with one warning naming the field and the scheme, and image numbers stay true."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from aiohttp import web

from legnext_async import (
    ImageResult,
    LegnextClient,
    Output,
    Task,
    ValidationError,
    VideoResult,
)

from .conftest import API_KEY, FAST_RETRY, fast_poll
from .hostile import job, recording

GOOD_URLS = [
    pytest.param("https://cdn.legnext.ai/mj/1b2c_0.png", id="cdn"),
    pytest.param(
        "https://image.legnext.ai/20260101/1b2c_0_1.png?Expires=1767506091&Signature=a%2Bb",
        id="signed",
    ),
    pytest.param("http://127.0.0.1:8080/files/a.png", id="loopback-port"),
    pytest.param("HTTPS://CDN.EXAMPLE/A.PNG", id="capitals"),
    pytest.param("https://[::1]:9/x.png", id="ipv6"),
    pytest.param("https://cdn.example", id="no-path"),
    pytest.param("https://cdn.example/x.png#frame", id="fragment"),
    pytest.param("https://cdn.example/caf\u00e9.png", id="non-ascii-path"),
]

BAD_URLS = [
    pytest.param("javascript:alert(document.cookie)", "javascript:", id="javascript"),
    pytest.param("JavaScript:alert(document.cookie)", "javascript:", id="javascript-caps"),
    pytest.param("vbscript:msgbox(document.cookie)", "vbscript:", id="vbscript"),
    pytest.param("file:///etc/passwd", "file:", id="file"),
    pytest.param("data:image/png;base64,iVBORw0KGgo=", "data:", id="data"),
    pytest.param("blob:https://cdn.example/1b2c", "blob:", id="blob"),
    pytest.param("ftp://cdn.example/x.png", "ftp:", id="ftp"),
    pytest.param("ws://cdn.example/stream", "ws:", id="websocket"),
    pytest.param("about:blank", "about:", id="about"),
    pytest.param("/files/secret.png", "no scheme", id="absolute-path"),
    pytest.param("secret.png", "no scheme", id="relative-path"),
    pytest.param("//cdn.example/secret.png", "no scheme", id="scheme-relative"),
    pytest.param(" https://cdn.example/secret.png", "no scheme", id="leading-space"),
    pytest.param("\x00javascript:alert(1)", "no scheme", id="leading-nul"),
    pytest.param("https://", "https: without a host", id="no-host"),
    pytest.param("https:///secret.png", "https: without a host", id="empty-host"),
    pytest.param("http://:80/secret.png", "http: without a host", id="port-only"),
    pytest.param("https://cdn.example/a secret.png", "https: without a host", id="space"),
    pytest.param("https://cdn.example/\nsecret", "https: without a host", id="newline"),
    pytest.param("https://cdn.example\\@evil.example/", "https: without a host", id="backslash"),
    pytest.param("https://cdn.example/a\u00a0secret.png", "https: without a host", id="nbsp"),
    pytest.param("https://cdn.example/\u202egnp.secret", "https: without a host", id="rtl-mark"),
    pytest.param("https://cdn.example/\x85secret", "https: without a host", id="c1-control"),
    pytest.param("not a url at all", "no scheme", id="prose"),
    pytest.param(42, "int", id="number"),
    pytest.param({"href": "https://cdn.example/x.png"}, "dict", id="object"),
]

OK = [f"https://cdn.example/{i}.png" for i in range(4)]


def task_with(output: dict[str, Any], task_type: str = "diffusion") -> Task:
    """A completed task of ``task_type`` whose output is ``output``."""
    return Task.from_json(
        {"job_id": "job-1", "task_type": task_type, "status": "completed", "output": output}
    )


def warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    """The warnings the client logged."""
    return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]


@pytest.mark.parametrize("url", GOOD_URLS)
def test_an_http_url_is_kept(url: str, caplog: pytest.LogCaptureFixture) -> None:
    """An absolute http(s) URL with a host is kept as it came, in every URL field."""
    task = task_with({"image_url": url, "image_urls": [url, url], "video_urls": [url]})
    assert task.output.image_url == url
    assert task.output.image_urls == (url, url)
    assert task.output.video_urls == (url,)
    assert warnings(caplog) == []


@pytest.mark.parametrize(("value", "kind"), BAD_URLS)
def test_a_bad_image_url_is_dropped_with_a_warning(
    value: object, kind: str, caplog: pytest.LogCaptureFixture
) -> None:
    """``image_url`` that is not an absolute http(s) URL becomes None; the warning names the
    field and the scheme, not the URL."""
    task = task_with({"image_url": value, "image_urls": OK})
    assert task.output.image_url is None
    assert task.output.image_urls == tuple(OK)
    [warning] = warnings(caplog)
    assert f"image_url ({kind}" in warning
    assert "job-1" in warning
    assert "secret" not in warning
    assert "cookie" not in warning


@pytest.mark.parametrize(("value", "kind"), BAD_URLS)
def test_a_bad_item_ends_the_image_list_so_numbers_stay_true(
    value: object, kind: str, caplog: pytest.LogCaptureFixture
) -> None:
    """``image_urls`` ends just before a bad item: ``image_urls[i]`` is still image ``i``."""
    task = task_with({"image_url": OK[0], "image_urls": [OK[0], OK[1], value, OK[3]]})
    assert task.output.image_urls == (OK[0], OK[1])
    [warning] = warnings(caplog)
    assert f"image_urls[2] ({kind}" in warning
    assert "and the 1 after it" in warning
    assert "secret" not in warning


@pytest.mark.parametrize(("value", "kind"), BAD_URLS)
def test_a_bad_item_ends_the_video_list(
    value: object, kind: str, caplog: pytest.LogCaptureFixture
) -> None:
    """``video_urls`` follow the same rule as ``image_urls``."""
    task = task_with({"video_urls": [value, OK[1]]}, "video_diffusion")
    assert task.output.video_urls == ()
    [warning] = warnings(caplog)
    assert f"video_urls[0] ({kind}" in warning


def test_one_warning_per_task_names_every_field(caplog: pytest.LogCaptureFixture) -> None:
    """Several bad fields in one answer make one warning that names each of them."""
    task_with(
        {
            "image_url": "file:///etc/passwd",
            "image_urls": [OK[0], "javascript:alert(1)"],
            "video_urls": ["data:video/mp4;base64,AAAA"],
        }
    )
    [warning] = warnings(caplog)
    assert "image_url (file:)" in warning
    assert "image_urls[1] (javascript:)" in warning
    assert "video_urls[0] (data:)" in warning


@pytest.mark.parametrize(
    "output",
    [
        pytest.param({"image_url": "", "image_urls": None, "seed": ""}, id="pending-image"),
        pytest.param({"video_urls": None, "seed": ""}, id="pending-video"),
        pytest.param({"image_url": None, "image_urls": [], "video_urls": []}, id="empty"),
        pytest.param({"image_url": OK[0], "image_urls": OK}, id="all-good"),
    ],
)
def test_unset_url_fields_cause_no_warning(
    output: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    """The service's blank forms of unset fields are no cause for a warning."""
    task_with(output)
    assert warnings(caplog) == []


def test_an_answer_read_again_keeps_and_drops_the_same_urls() -> None:
    """Verdicts on URLs read lately are kept, and each one is that URL's own."""
    good, bad = "https://cdn.example/kept-0.png", "https://cdn.example/kept 1.png"
    for _ in range(3):
        task = task_with({"image_url": bad, "image_urls": [good, bad, good]})
        assert task.output.image_url is None
        assert task.output.image_urls == (good,)


def test_a_long_url_is_checked_every_time_and_never_kept() -> None:
    """A URL past 512 characters (a hostile answer's) is judged afresh, so the kept verdicts
    stay small whatever the service sends."""
    from legnext_async import _validation

    for n in range(50):
        _validation._kept_http_url.cache_clear()
        good = f"https://cdn.example/{'a' * 600}{n}.png"
        assert task_with({"image_url": good, "image_urls": [good + " x"]}).output == Output(
            image_url=good
        )
        assert _validation._kept_http_url.cache_info().currsize == 0


# --- end to end -----------------------------------------------------------------------------


def client_for(base_url: str) -> LegnextClient:
    """A client for a test server, with test-speed polling and retries."""
    return LegnextClient(api_key=API_KEY, base_url=base_url, poll=fast_poll(), retry=FAST_RETRY)


@pytest.mark.parametrize(
    ("value", "kind"),
    [
        pytest.param("javascript:alert(document.cookie)", "javascript:", id="javascript"),
        pytest.param("file:///etc/passwd", "file:", id="file"),
        pytest.param("data:image/png;base64,iVBORw0KGgo=", "data:", id="data"),
        pytest.param("/files/secret.png", "no scheme", id="relative"),
    ],
)
async def test_an_image_result_holds_only_http_urls(
    value: str, kind: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A completed answer with bad URLs gives a result without them, one warning, and no
    request anywhere but the status reads."""

    async def answer(request: web.Request) -> web.Response:
        output = {"image_url": value, "image_urls": [OK[0], value, OK[2], OK[3]]}
        return web.json_response(job("job-1", output=output))

    async with recording(answer) as server, client_for(server.base_url) as client:
        result = await client.task("job-1")
    assert isinstance(result, ImageResult)
    assert result.image_url is None
    assert result.image_urls == (OK[0],)
    [warning] = warnings(caplog)
    assert f"image_url ({kind})" in warning
    assert f"image_urls[1] ({kind}) and the 2 after it" in warning
    assert {(r.method, r.target) for r in server.requests} == {("GET", "/api/v1/job/job-1")}


async def test_a_video_result_holds_only_http_urls(caplog: pytest.LogCaptureFixture) -> None:
    """A completed video answer keeps the http(s) videos before the first bad one."""

    async def answer(request: web.Request) -> web.Response:
        output = {"video_urls": [OK[0], "file:///etc/passwd"]}
        return web.json_response(job("job-1", task_type="video_diffusion", output=output))

    async with recording(answer) as server, client_for(server.base_url) as client:
        result = await client.task("job-1")
    assert isinstance(result, VideoResult)
    assert result.video_urls == (OK[0],)
    [warning] = warnings(caplog)
    assert "video_urls[1] (file:)" in warning


async def test_an_image_whose_url_was_dropped_cannot_be_animated() -> None:
    """Animating image 2 of a result whose list ended before it is refused before sending."""

    async def answer(request: web.Request) -> web.Response:
        output = {"image_url": OK[0], "image_urls": [OK[0], OK[1], "javascript:x", OK[3]]}
        return web.json_response(job("job-1", output=output))

    async with recording(answer) as server, client_for(server.base_url) as client:
        result = await client.task("job-1")
        assert isinstance(result, ImageResult)
        with pytest.raises(ValidationError, match="no image 2"):
            await result.video_diffusion(2)
    assert server.sent("POST") == []
