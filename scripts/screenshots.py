"""Screenshots of the playground for the README: docs/images/playground-image.png and playground-live.png.

Starts the service over the browser tests' oracle models (``tests/oracles.py``) on loopback and
drives Debian's headless Chromium with selenium, as ``tests/browser`` does: the image mode after
an upload of three oracle people with a keypoint's score on hover, and the live mode with the
fake webcam playing a walking oracle person. Each PNG is kept under 200 KB.

    .venv/bin/python scripts/screenshots.py
"""

from __future__ import annotations

import shutil
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from selenium import webdriver  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.action_chains import ActionChains  # noqa: E402

from tests.browser.clips import walking_clip  # noqa: E402
from tests.browser.conftest import CHROMIUM_FLAGS, FAKE_CAMERA_FLAGS, browser_repository  # noqa: E402
from tests.helpers import start_server  # noqa: E402
from tests.streams import frame, markers  # noqa: E402

OUT = ROOT / "docs" / "images"
MAX_BYTES = 200_000
PEOPLE = [(40, 70, 170, 420), (250, 40, 390, 450), (460, 110, 590, 400)]


def chromium(work: Path, fake_video: Path | None = None) -> webdriver.Chrome:
    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium") or "/usr/bin/chromium"
    for flag in (*CHROMIUM_FLAGS, f"--user-data-dir={tempfile.mkdtemp(dir=work)}"):
        options.add_argument(flag)
    if fake_video is not None:
        for flag in (*FAKE_CAMERA_FLAGS, f"--use-file-for-fake-video-capture={fake_video}"):
            options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=Service(executable_path=shutil.which("chromedriver")))
    driver.set_window_size(1280, 760)
    return driver


def wait(condition, what: str, timeout: float = 120) -> None:  # type: ignore[no-untyped-def]
    end = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > end:
            raise TimeoutError(what)
        time.sleep(0.1)


def save(driver: webdriver.Chrome, name: str) -> Path:
    """The page as PNG, scaled down until it is under MAX_BYTES."""
    image = cv2.imdecode(np.frombuffer(driver.get_screenshot_as_png(), np.uint8), cv2.IMREAD_COLOR)
    scale = 1.0
    while True:
        shown = image if scale == 1.0 else cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        data = cv2.imencode(".png", shown, [cv2.IMWRITE_PNG_COMPRESSION, 9])[1].tobytes()
        if len(data) < MAX_BYTES:
            break
        scale *= 0.9
    path = OUT / name
    path.write_bytes(data)
    print(f"{path.relative_to(ROOT)}: {shown.shape[1]}x{shown.shape[0]}, {len(data) // 1000} KB")
    return path


def ready(driver: webdriver.Chrome) -> bool:
    return bool(driver.execute_script("return document.body.dataset.ready === 'true'"))


def image_mode(driver: webdriver.Chrome, url: str, work: Path) -> None:
    path = work / "three-people.png"
    cv2.imwrite(str(path), frame(PEOPLE, (640, 480)))
    driver.get(url)
    wait(lambda: ready(driver), "the page")
    driver.find_element("css selector", '[data-testid="upload-input"]').send_keys(str(path))
    wait(lambda: driver.execute_script("return document.getElementById('canvas').dataset.people"), "the answer")
    canvas = driver.find_element("id", "canvas")
    scale = canvas.size["width"] / int(canvas.get_attribute("width"))
    x, y = markers(PEOPLE[1])[0]
    ActionChains(driver).move_to_element_with_offset(canvas, (x - 320) * scale, (y - 240) * scale).perform()
    save(driver, "playground-image.png")


def live_mode(driver: webdriver.Chrome, url: str) -> None:
    driver.get(url)
    wait(lambda: ready(driver), "the page")
    driver.find_element("id", "tab-live").click()
    driver.find_element("css selector", '[data-testid="camera-start"]').click()
    answered = '[data-testid="frames-answered"]'
    wait(lambda: int(driver.find_element("css selector", answered).text or 0) >= 40, "40 answered frames")
    save(driver, "playground-live.png")


def main() -> int:
    OUT.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as temp:
        work = Path(temp)
        repo = browser_repository(work / "repo")
        server = start_server(repo, work / "server.log", POSE_MODEL="pose", POSE_DETECTOR="det", grpc=False)
        try:
            driver = chromium(work)
            try:
                image_mode(driver, server.url + "/", work)
            finally:
                driver.quit()
            driver = chromium(work, walking_clip(work / "walk.y4m", size=(640, 480), frames=60))
            try:
                live_mode(driver, server.url + "/")
            finally:
                driver.quit()
        finally:
            server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
