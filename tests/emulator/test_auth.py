"""Authentication, per-key accounts, whitelist gating and error body shapes."""

from __future__ import annotations

from typing import Any

import pytest

from .conftest import KEY, OTHER_KEY, Api, EmulatorFactory

AUTH_MESSAGE = "Failed to verify api key"


@pytest.mark.parametrize(
    "key", [pytest.param(None, id="missing"), pytest.param("wrong", id="unknown")]
)
async def test_bad_key_is_401(api: Api, key: str | None) -> None:
    """A missing or unknown key answers 401 "Failed to verify api key" and creates nothing."""
    status, body = await api.post("diffusion", {"text": "x"}, key=key)
    assert status == 401
    assert body["error"] == {
        "code": 401,
        "raw_message": "",
        "message": AUTH_MESSAGE,
        "detail": None,
    }
    assert api.emulator.jobs == []


async def test_header_name_is_case_insensitive(api: Api) -> None:
    """``X-API-KEY`` works like ``x-api-key``."""
    async with api.session.get(
        f"{api.emulator.base_url}/account/balance", headers={"X-API-KEY": KEY}
    ) as response:
        assert response.status == 200


async def test_job_get_needs_a_key(api: Api) -> None:
    """GET /v1/job without a key is 401 by default."""
    job_id = (await api.create("diffusion", {"text": "x"}))["job_id"]
    status, _ = await api.get(f"/v1/job/{job_id}", key=None)
    assert status == 401


async def test_anonymous_job_get_flag(make_emulator: EmulatorFactory, api: Api) -> None:
    """With allow_anonymous_job_get a job can be read without a key."""
    api.emulator = await make_emulator(allow_anonymous_job_get=True)
    job_id = (await api.create("diffusion", {"text": "x"}))["job_id"]
    status, body = await api.get(f"/v1/job/{job_id}", key=None)
    assert status == 200
    assert body["job_id"] == job_id


async def test_any_key_mode_gives_each_key_an_account(
    make_emulator: EmulatorFactory, api: Api
) -> None:
    """Without api_key any non-empty key works, and another key's job is 404."""
    api.emulator = await make_emulator(api_key=None)
    job_id = (await api.create("diffusion", {"text": "x"}))["job_id"]
    assert (await api.get(f"/v1/job/{job_id}", key="someone-else"))[0] == 404
    assert (await api.get(f"/v1/job/{job_id}", key=""))[0] == 401
    _, mine = await api.get("/account/balance")
    _, theirs = await api.get("/account/balance", key="someone-else")
    assert mine["data"]["account_id"] != theirs["data"]["account_id"]


async def test_extra_keys_are_separate_accounts(make_emulator: EmulatorFactory, api: Api) -> None:
    """Keys in extra_api_keys are accepted and cannot see each other's jobs or parents."""
    api.emulator = await make_emulator(extra_api_keys=[OTHER_KEY])
    parent = (await api.finished("diffusion", {"text": "x"}))["job_id"]
    status, _ = await api.post("upscale", {"jobId": parent, "imageNo": 0, "type": 0}, key=OTHER_KEY)
    assert status == 404


@pytest.mark.parametrize("route", ["edit", "upload-paint"])
async def test_whitelist_gate(api: Api, route: str) -> None:
    """edit and upload-paint answer the live 403 for accounts not whitelisted."""
    status, body = await api.post(route, {})
    assert status == 403
    assert body["error"]["message"].startswith(
        "This feature is only available for whitelisted accounts."
    )
    assert body["job_id"] == ""
    assert body["output"] is None


async def test_whitelisted_keys_open_edit(make_emulator: EmulatorFactory, api: Api) -> None:
    """A key in whitelisted_keys may use /v1/edit."""
    api.emulator = await make_emulator(whitelisted_keys=[KEY])
    parent = api.emulator.seed_job()
    body: dict[str, Any] = {
        "jobId": parent,
        "imageNo": 1,
        "canvas": {"width": 1024, "height": 1024},
        "imgPos": {"width": 512, "height": 512, "x": 256, "y": 256},
        "remixPrompt": "mountains",
    }
    assert (await api.create("edit", body))["task_type"] == "edit"


async def test_unknown_route_is_404(api: Api) -> None:
    """An unknown path answers 404 in the configured error shape."""
    status, body = await api.post("imagine", {"text": "x"})
    assert status == 404
    assert body["error"]["code"] == 404


async def test_unknown_job_is_404(api: Api) -> None:
    """GET of an id that does not exist answers 404."""
    status, body = await api.get("/v1/job/00000000-0000-4000-8000-000000000000")
    assert status == 404
    assert body["error"]["code"] == 404


async def test_flat_error_shape(make_emulator: EmulatorFactory, api: Api) -> None:
    """error_shape="flat" answers {code, message, raw_message, detail}."""
    api.emulator = await make_emulator(error_shape="flat")
    status, body = await api.post("diffusion", {"text": "x"}, key="wrong")
    assert status == 401
    assert body == {
        "code": 401,
        "message": AUTH_MESSAGE,
        "raw_message": AUTH_MESSAGE,
        "detail": None,
    }


async def test_nested_error_shape(make_emulator: EmulatorFactory, api: Api) -> None:
    """error_shape="nested" answers {"error": {code, message}} like the docs sample."""
    api.emulator = await make_emulator(error_shape="nested")
    _, body = await api.post("diffusion", {"text": "x"}, key="wrong")
    assert body == {"error": {"code": 401, "message": AUTH_MESSAGE}}


async def test_envelope_matches_live_403_shape(api: Api) -> None:
    """The default error body has exactly the keys of the live 403 capture."""
    import json

    from .test_lifecycle import SAMPLES, keys

    sample = json.loads((SAMPLES / "error-403-task-envelope.live.json").read_text())
    _, body = await api.post("edit", {})
    assert body == sample
    _, body = await api.post("diffusion", {}, key=None)
    assert keys(body) == keys(sample)


async def test_a_job_seeded_without_a_key_serves_every_key_when_any_key_works(
    make_emulator: EmulatorFactory, api: Api
) -> None:
    """On an emulator that takes any key, ``seed_job()`` needs no key: every account, opened
    before or after, may read the job and follow it up."""
    api.emulator = await make_emulator(api_key=None)
    assert (await api.get("/account/balance"))[0] == 200  # KEY's account exists already
    parent = api.emulator.seed_job()
    assert api.emulator.job(parent).account_id == 0
    for key in (KEY, OTHER_KEY):
        assert (await api.get(f"/v1/job/{parent}", key=key))[0] == 200
        status, child = await api.post("upscale", {"jobId": parent, "imageNo": 0, "type": 0},
                                       key=key)  # fmt: skip
        assert status == 200, child
        assert api.emulator.job(child["job_id"]).parent_id == parent


async def test_a_job_seeded_with_a_key_is_that_accounts_alone(
    make_emulator: EmulatorFactory, api: Api
) -> None:
    """On an emulator that takes any key, a job seeded with ``api_key`` is only that key's."""
    api.emulator = await make_emulator(api_key=None)
    parent = api.emulator.seed_job(api_key=KEY)
    assert (await api.get(f"/v1/job/{parent}", key=KEY))[0] == 200
    assert (await api.get(f"/v1/job/{parent}", key=OTHER_KEY))[0] == 404
