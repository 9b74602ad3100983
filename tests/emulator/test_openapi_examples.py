"""Every request example of the vendor's openapi.yaml is accepted by the emulator.

The examples are copied here by hand (PyYAML is not a dependency); when PyYAML is
installed, a second test checks the copy against the YAML file.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Final

import pytest
import yaml

from .conftest import Api, EmulatorFactory

OPENAPI = Path(__file__).parent.parent / "reference" / "legnext-openapi.yaml"
HOOK_A: Final = "https://webhook.site/d0ca59bc-35a6-4a1e-b1b1-aea7faeb7f67"
HOOK_B: Final = "https://webhook.site/c98cb890-fb92-439f-8d60-42c8a51eb52d"
GRID_ID: Final = "5dd94ec3-7282-4f04-9445-59e850ef1822"
EDIT_ID: Final = "c6821434-5e41-408f-b42b-2562306b109c"
VIDEO_ID: Final = "b24ffa07-7b76-49a2-963e-f6c527f7cec7"

EXAMPLES: Final[dict[str, dict[str, Any]]] = {
    "/api/v1/diffusion": {
        "text": "A beautiful sunset over the snow mountains --v 7 --draft",
        "callback": HOOK_A,
    },
    "/api/v1/upscale": {"jobId": GRID_ID, "imageNo": 0, "type": 0, "callback": HOOK_B},
    "/api/v1/reroll": {"jobId": GRID_ID, "callback": HOOK_B},
    "/api/v1/variation": {
        "jobId": GRID_ID,
        "imageNo": 1,
        "type": 1,
        "remixPrompt": "A beautiful sunset over the snow mountains",
        "callback": HOOK_B,
    },
    "/api/v1/inpaint": {
        "jobId": GRID_ID,
        "imageNo": 0,
        "mask": {
            "areas": [{"width": 500, "height": 500, "points": [10, 10, 10, 100, 100, 100, 100, 10]}]
        },
        "remixPrompt": "Add a tree in the center",
        "callback": HOOK_B,
    },
    "/api/v1/outpaint": {
        "jobId": GRID_ID,
        "imageNo": 0,
        "scale": 1.5,
        "remixPrompt": "clouds over the sky",
        "callback": HOOK_B,
    },
    "/api/v1/pan": {
        "jobId": GRID_ID,
        "imageNo": 0,
        "direction": 1,
        "scale": 1.5,
        "remixPrompt": "a lake near the mountain",
        "callback": HOOK_B,
    },
    "/api/v1/remix": {
        "jobId": GRID_ID,
        "imageNo": 0,
        "mode": 0,
        "remixPrompt": "Change style to watercolor painting",
        "callback": HOOK_B,
    },
    "/api/v1/edit": {
        "jobId": EDIT_ID,
        "imageNo": 1,
        "canvas": {"width": 1024, "height": 1024},
        "imgPos": {"width": 512, "height": 512, "x": 256, "y": 256},
        "remixPrompt": "A beautiful landscape with mountains",
    },
    "/api/v1/shorten": {
        "prompt": "A cyberpunk hacker workspace filled with holographic screens, glowing code "
        "streams, mechanical keyboards, neon reflections, cables and circuit boards "
        "everywhere, volumetric lighting, ultra-detailed sci-fi aesthetic, cinematic "
        "atmosphere, inspired by Ghost in the Shell and Blade Runner, rendered in octane, 8k "
        "resolution --ar 21:9 --v 7 --style raw --q 2"
    },
    "/api/v1/describe": {
        "imgUrl": "https://i.ibb.co/GQLwfvYV/aiony-haust-3-TLl-97-HNJo-unsplash.jpg",
        "callback": HOOK_A,
    },
    # Declared as a */* string in the YAML (a Postman artefact); the string is this JSON.
    "/api/v1/blend": {
        "imgUrls": ["https://example.com/image1.png", "https://example.com/image2.png"],
        "aspect_ratio": "1:1",
        "callback": HOOK_A,
    },
    "/api/v1/video-diffusion": {
        "prompt": "https://i.ibb.co/yc7NvSqH/kling.jpg A beautiful woman playing music",
        "callback": HOOK_B,
        "videoType": 1,
    },
    "/api/v1/extend-video": {
        "jobId": VIDEO_ID,
        "videoNo": 0,
        "prompt": "Continue with more dynamic movement and effects",
        "callback": HOOK_B,
    },
    "/api/v1/video-upscale": {"jobId": VIDEO_ID, "videoNo": 0, "callback": HOOK_B},
}


@pytest.mark.parametrize("path", list(EXAMPLES))
async def test_example_is_accepted(make_emulator: EmulatorFactory, api: Api, path: str) -> None:
    """The example body is accepted once its jobId names a real completed parent."""
    emu = await make_emulator(whitelisted=True)
    api.emulator = emu
    body = dict(EXAMPLES[path])
    if body.get("jobId") == VIDEO_ID:
        body["jobId"] = emu.seed_job("video_diffusion")
    elif "jobId" in body:
        body["jobId"] = emu.seed_job("diffusion")
    task = await api.create(path.rsplit("/", 1)[1], body)
    assert task["config"]["webhook_config"]["endpoint"] == body.get("callback", "")
    emu.advance(3600)
    await emu.flush_callbacks()
    # The docs' webhook.site callbacks must be refused, never contacted.
    assert all(record.outcome == "refused" for record in emu.callback_log)


def test_examples_match_the_yaml() -> None:
    """The hand-copied table equals the request examples in openapi.yaml."""
    spec = yaml.safe_load(OPENAPI.read_text())
    found: dict[str, Any] = {}
    for path, item in spec["paths"].items():
        body = item.get("post", {}).get("requestBody")
        if body is None:
            continue
        for content in body["content"].values():
            example = content.get("example", content.get("schema", {}).get("example"))
            if isinstance(example, str):  # blend: a JSON string holding the JSON body
                example = json.loads(json.loads(example))
            found[path] = example
    assert found == EXAMPLES
