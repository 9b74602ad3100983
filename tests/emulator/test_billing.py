"""Billing: frozen at submit, consumed on success, released on failure; 402 when short."""

from __future__ import annotations

import re

import pytest

from .conftest import KEY, Api, EmulatorFactory


@pytest.fixture
async def poor(make_emulator: EmulatorFactory, api: Api) -> Api:
    """``api`` on an emulator whose accounts start with 100 credits and 50 points."""
    api.emulator = await make_emulator(initial_credits=100, initial_points=50)
    return api


async def test_balance_shape(poor: Api) -> None:
    """The balance answer has the live wrapper and fields."""
    status, body = await poor.get("/account/balance")
    assert status == 200
    assert list(body) == ["code", "data", "message"]
    assert body["code"] == 200
    assert body["message"] == "success"
    data = body["data"]
    assert set(data) == {
        "account_id",
        "balance_usd",
        "available_credits",
        "available_points",
        "alert_threshold",
        "low_balance_alert",
        "updated_at",
    }
    assert data["balance_usd"] == 0.15
    assert data["available_credits"] == 100
    assert data["available_points"] == 50
    assert data["low_balance_alert"] is True
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z", data["updated_at"])


async def test_cost_is_frozen_at_submit(poor: Api) -> None:
    """A diffusion freezes 80, taken from points first, visible at once in the balance."""
    await poor.create("diffusion", {"text": "x"})
    data = (await poor.get("/account/balance"))[1]["data"]
    assert (data["available_points"], data["available_credits"]) == (0, 70)
    assert poor.emulator.balance(KEY).frozen == 80


async def test_success_consumes(poor: Api) -> None:
    """A finished job consumes its frozen cost: the balance stays reduced."""
    await poor.finished("diffusion", {"text": "x"})
    data = (await poor.get("/account/balance"))[1]["data"]
    assert data["available_points"] + data["available_credits"] == 70
    assert poor.emulator.balance(KEY).used == 80
    assert poor.emulator.balance(KEY).frozen == 0


async def test_failure_releases(poor: Api) -> None:
    """A failed job gives its frozen cost back."""
    poor.emulator.fail_next()
    await poor.finished("diffusion", {"text": "x"})
    data = (await poor.get("/account/balance"))[1]["data"]
    assert (data["available_points"], data["available_credits"]) == (50, 100)


async def test_short_balance_is_402(poor: Api) -> None:
    """A job costing more than the available balance answers 402 and creates nothing."""
    await poor.create("diffusion", {"text": "x"})
    status, body = await poor.post("diffusion", {"text": "x"})
    assert status == 402
    assert body["error"]["code"] == 402
    assert len(poor.emulator.jobs) == 1


async def test_set_balance(poor: Api) -> None:
    """set_balance refills an account."""
    poor.emulator.set_balance(KEY, credits=1000, points=0)
    data = (await poor.get("/account/balance"))[1]["data"]
    assert data["balance_usd"] == 1.0


@pytest.mark.parametrize(
    ("route", "body", "frozen"),
    [
        pytest.param("diffusion", {"text": "x"}, 80, id="diffusion"),
        pytest.param("diffusion", {"text": "x --turbo"}, 160, id="diffusion-turbo"),
        pytest.param("diffusion", {"text": "x --v 7 --draft"}, 40, id="draft"),
        pytest.param("diffusion", {"text": "x --draft --turbo"}, 80, id="draft-turbo"),
        pytest.param("upscale", {"jobId": "P", "imageNo": 0, "type": 0}, 120, id="upscale-subtle"),
        pytest.param(
            "upscale", {"jobId": "P", "imageNo": 0, "type": 1}, 160, id="upscale-creative"
        ),
        pytest.param("variation", {"jobId": "P", "imageNo": 0, "type": 1}, 120, id="variation"),
        pytest.param("inpaint", {"jobId": "P", "imageNo": 0, "mask": {"url": "http://a/b"}}, 120),
        pytest.param(
            "remix",
            {"jobId": "P", "imageNo": 0, "remixPrompt": "y --turbo"},
            240,
            id="remix-turbo",
        ),
        pytest.param("pan", {"jobId": "P", "imageNo": 0, "direction": 0, "scale": 2}, 80, id="pan"),
        pytest.param("describe", {"imgUrl": "https://a/b.png"}, 20, id="describe"),
        pytest.param("shorten", {"prompt": "p"}, 20, id="shorten"),
        pytest.param("remove-background", {"imgUrl": "https://a/b.png"}, 80, id="remove-bg"),
        pytest.param("retexture", {"imgUrl": "https://a/b.png", "remixPrompt": "y"}, 120),
        pytest.param("video-diffusion", {"prompt": "https://a/b.png go"}, 480, id="video-480p"),
        pytest.param(
            "video-diffusion", {"prompt": "https://a/b.png go", "videoType": 1}, 1536, id="720p"
        ),
        pytest.param("reroll", {"jobId": "P"}, 80, id="reroll"),
    ],
)
async def test_price_table(api: Api, route: str, body: dict[str, object], frozen: int) -> None:
    """meta.usage.frozen follows the vendor price table."""
    if body.get("jobId") == "P":
        body = {**body, "jobId": api.emulator.seed_job()}
    assert (await api.create(route, body))["meta"]["usage"]["frozen"] == frozen


async def test_reroll_of_a_draft_costs_a_draft(api: Api) -> None:
    """A reroll re-runs the parent's prompt, so rerolling a draft costs 40."""
    parent = api.emulator.seed_job(draft=True)
    assert (await api.create("reroll", {"jobId": parent}))["meta"]["usage"]["frozen"] == 40


async def test_account_info(api: Api) -> None:
    """GET /account/info answers the web-app account shape with the concurrency limit."""
    status, body = await api.get("/account/info")
    assert status == 200
    assert body["data"]["max_concurrent_task_count"] == 6
    assert "wallet" in body["data"]
