"""Headless Chromium (Debian's ``chromium`` and ``chromium-driver``) driven by selenium, and a service to point it at.

Every test here skips, with the reason, where Chromium, its driver or selenium is missing
(``.ci/run`` and ``make test`` install the first two with apt-get when they run as root).
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.helpers import Server, start_server
from tests.oracles import BANDS, install_detector_oracle
from tests.streams import install_tracking_pose

# the flags this machine needs (/work/.library/env: without the networking ones Chromium keeps calling Google's hosts)
CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--disable-dev-shm-usage", "--window-size=1280,900")  # fmt: skip
FAKE_CAMERA_FLAGS = ("--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream")


def _chromium() -> tuple[str, str]:
    """The paths of chromium and chromedriver (skips the test, with the reason, when either is missing)."""
    try:
        import selenium  # noqa: F401
    except ImportError:
        pytest.skip("selenium is not installed (make install installs the dev extra)")
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    if chromium is None or driver is None:
        pytest.skip("Debian's chromium and chromium-driver are not installed "
                    "(apt-get install chromium chromium-driver; .ci/run does it as root)")  # fmt: skip
    return chromium, driver


def browser_repository(root: Path) -> Path:
    """The stream tests' oracles: a pose model that reads head and feet markers, a detector of colour bands."""
    install_tracking_pose(root, batching={"max_batch_size": 16, "max_queue_delay_ms": 2})
    install_detector_oracle(root, "det", bands=BANDS)
    return root


@pytest.fixture(scope="session")
def chromium_paths() -> tuple[str, str]:
    return _chromium()


@pytest.fixture(scope="module")
def page_server(chromium_paths: tuple[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    repo = browser_repository(tmp_path_factory.mktemp("browser-repo"))
    running = start_server(repo, tmp_path_factory.mktemp("logs") / "server.log", POSE_MODEL="pose",
                           POSE_DETECTOR="det", grpc=False)  # fmt: skip
    yield running
    running.stop()


Browser = Callable[..., object]  # (fake_video: Path | None = None) -> a selenium WebDriver


@pytest.fixture
def browser(chromium_paths: tuple[str, str]) -> Iterator[Browser]:
    """A factory of headless Chromium sessions (each with a fresh profile), all quit after the test."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    chromium, chromedriver = chromium_paths
    drivers = []
    profiles = []

    def start(fake_video: Path | None = None) -> webdriver.Chrome:
        options = webdriver.ChromeOptions()
        options.binary_location = chromium
        profile = tempfile.mkdtemp(prefix="chromium-profile-")
        profiles.append(profile)
        for flag in (*CHROMIUM_FLAGS, f"--user-data-dir={profile}"):
            options.add_argument(flag)
        if fake_video is not None:
            for flag in (*FAKE_CAMERA_FLAGS, f"--use-file-for-fake-video-capture={fake_video}"):
                options.add_argument(flag)
        options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
        driver = webdriver.Chrome(options=options, service=Service(executable_path=chromedriver))
        driver.set_page_load_timeout(60)
        drivers.append(driver)
        return driver

    yield start
    for driver in drivers:
        driver.quit()
    for profile in profiles:
        shutil.rmtree(profile, ignore_errors=True)
