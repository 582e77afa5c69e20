"""The playground page (``GET /``) in headless Chromium against the real service over oracle models.

Found by the Testing Library hooks the issue names (``data-testid``): ``upload-input``,
``people-count``, ``camera-start``, ``track-ids``, ``frames-answered``, ``fps``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import cv2
import pytest
from websockets.sync.client import connect

from service.vision.keypoints import KEYPOINT_SETS
from tests.browser.clips import walking_clip
from tests.browser.conftest import Browser, browser_repository
from tests.helpers import Server, start_server
from tests.streams import frame, markers

WAIT_S = 120  # the machine is shared: wait for a state, never for a speed
KEY = "page-key/+="  # no valid subprotocol token as it is: the page sends it base64url-encoded


def by_testid(name: str) -> str:
    return f'[data-testid="{name}"]'


def wait_for(driver: Any, condition: Callable[[], Any], what: str, timeout: float = WAIT_S) -> Any:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    banner = driver.find_element("css selector", by_testid("error"))
    raise AssertionError(f"timed out waiting for {what}; error banner: {banner.text!r}; console: {console(driver)}")


def console(driver: Any) -> list[dict[str, Any]]:
    return list(driver.get_log("browser"))


def open_page(driver: Any, server: Server) -> None:
    driver.get(server.url + "/")
    wait_for(driver, lambda: driver.execute_script("return document.body.dataset.ready === 'true'"), "the page")


def text(driver: Any, name: str) -> str:
    return str(driver.find_element("css selector", by_testid(name)).text)


def test_the_page_loads_everything_from_the_service_without_console_errors(
    browser: Browser, page_server: Server
) -> None:
    driver = browser()
    open_page(driver, page_server)
    errors = [entry for entry in console(driver) if entry["level"] == "SEVERE"]
    assert not errors, errors
    resources = driver.execute_script("return performance.getEntriesByType('resource').map(e => e.name)")
    assert resources, "the page loaded no modules?"
    assert all(url.startswith(page_server.url + "/") for url in resources), resources
    models = [option.get_attribute("value") for option in driver.find_elements("css selector", "#model option")]
    assert models == ["pose"]
    assert not driver.find_element("css selector", by_testid("error")).is_displayed()


def test_an_uploaded_image_shows_its_people_and_draws_their_skeletons(
    browser: Browser, page_server: Server, tmp_path: Path
) -> None:
    boxes = [(30, 40, 150, 330), (250, 60, 370, 350)]
    path = tmp_path / "two.png"
    cv2.imwrite(str(path), frame(boxes, (480, 360)))
    driver = browser()
    open_page(driver, page_server)
    driver.find_element("css selector", by_testid("upload-input")).send_keys(str(path))
    wait_for(driver, lambda: driver.execute_script("return document.getElementById('canvas').dataset.people"),
             "the drawn answer")  # fmt: skip
    assert text(driver, "people-count") == "2"
    # drawn: at each person's head marker, a head keypoint's colour (the image has the red marker there)
    head_colors = {tuple(c) for c in KEYPOINT_SETS["coco17"].keypoint_colors_rgb[:9]}
    for box in boxes:
        x, y = markers(box)[0]
        pixel = driver.execute_script(
            "return Array.from(document.getElementById('canvas').getContext('2d')"
            ".getImageData(arguments[0], arguments[1], 1, 1).data.slice(0, 3))", int(x), int(y))  # fmt: skip
        assert tuple(pixel) in head_colors, (box, pixel)
    assert '"people"' in driver.find_element("css selector", by_testid("json")).get_attribute("textContent")
    assert not [entry for entry in console(driver) if entry["level"] == "SEVERE"]


def test_the_webcam_streams_a_walking_person_with_one_track_id(
    browser: Browser, page_server: Server, tmp_path: Path
) -> None:
    driver = browser(fake_video=walking_clip(tmp_path / "walk.y4m"))
    open_page(driver, page_server)
    driver.find_element("id", "tab-live").click()
    driver.find_element("css selector", by_testid("camera-start")).click()
    wait_for(driver, lambda: int(text(driver, "frames-answered") or 0) >= 20, "20 answered frames")
    seen = driver.find_element("css selector", by_testid("track-ids")).get_attribute("data-seen")
    assert seen == "1", f"track ids over the stream: {seen}"
    assert text(driver, "people-count") == "1"
    assert float(text(driver, "fps")) > 0
    assert not driver.find_element("css selector", by_testid("error")).is_displayed()

    # a setting changed while live reopens the stream with it, and the new stream keeps going (the old one's
    # close must not end it): its answers count from 0 again
    driver.execute_script("const field = document.getElementById('det-interval'); field.value = '5';"
                          "field.dispatchEvent(new Event('change'))")  # fmt: skip
    wait_for(driver, lambda: int(text(driver, "frames-answered") or 0) < 20, "the restarted stream's count")
    wait_for(driver, lambda: int(text(driver, "frames-answered") or 0) >= 20, "20 frames on the restarted stream")
    assert not driver.find_element("css selector", by_testid("error")).is_displayed()
    driver.find_element("css selector", by_testid("live-stop")).click()
    assert not [entry for entry in console(driver) if entry["level"] == "SEVERE"]


@pytest.fixture(scope="module")
def keyed_server(chromium_paths: tuple[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    repo = browser_repository(tmp_path_factory.mktemp("browser-keyed-repo"))
    running = start_server(repo, tmp_path_factory.mktemp("keyed-logs") / "server.log", POSE_MODEL="pose",
                           POSE_DETECTOR="det", POSE_API_KEYS=KEY, POSE_MAX_STREAMS="1", grpc=False)  # fmt: skip
    yield running
    running.stop()


def test_with_a_key_in_the_page_and_readable_errors(browser: Browser, keyed_server: Server, tmp_path: Path) -> None:
    driver = browser(fake_video=walking_clip(tmp_path / "walk.y4m"))
    driver.get(keyed_server.url + "/")
    banner = driver.find_element("css selector", by_testid("error"))
    wait_for(driver, lambda: banner.get_attribute("data-code") == "unauthorized", "the unauthorized banner")
    assert "API key" in banner.text
    key = driver.find_element("css selector", by_testid("api-key"))
    key.send_keys(KEY)
    driver.execute_script("arguments[0].dispatchEvent(new Event('change'))", key)
    wait_for(driver, lambda: driver.execute_script("return document.body.dataset.ready === 'true'"), "the models")
    assert not banner.is_displayed()
    path = tmp_path / "one.png"
    cv2.imwrite(str(path), frame([(30, 40, 150, 330)], (480, 360)))
    driver.find_element("css selector", by_testid("upload-input")).send_keys(str(path))
    wait_for(driver, lambda: driver.execute_script("return document.getElementById('canvas').dataset.people"),
             "the drawn answer")  # fmt: skip
    assert text(driver, "people-count") == "1"

    # the one stream slot (POSE_MAX_STREAMS=1) taken by another client: the page says so
    url = keyed_server.url.replace("http://", "ws://") + "/v1/stream"
    with connect(url, proxy=None, additional_headers={"Authorization": f"Bearer {KEY}"}) as other:
        other.send("{}")
        driver.find_element("id", "tab-live").click()
        driver.find_element("css selector", by_testid("camera-start")).click()
        wait_for(driver, lambda: banner.get_attribute("data-code") == "too_many_streams", "too_many_streams")
        assert "Too many streams" in banner.text
    driver.find_element("css selector", by_testid("camera-start")).click()
    wait_for(driver, lambda: int(text(driver, "frames-answered") or 0) >= 5, "5 answered frames")
    assert KEY not in driver.current_url
    assert KEY not in keyed_server.logs()
