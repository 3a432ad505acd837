"""The page in a real browser (headless Chromium through chromedriver): upload a clip and see transcribe.py's words;
record through Chromium's fake microphone (which plays a clip) and see partial, then final text."""

from __future__ import annotations

import importlib
import json
import shutil

import pytest

from tests.integration.conftest import SERVE_OPTIONS

pytestmark = pytest.mark.mindspore

CHROMIUM = next((shutil.which(n) for n in ("chromium", "chromium-browser") if shutil.which(n)), None)
DRIVER = shutil.which("chromedriver")
if CHROMIUM is None or DRIVER is None:
    pytest.skip(
        "no Chromium/chromedriver installed (apt-get install chromium chromium-driver; scripts/setup.sh does it)",
        allow_module_level=True,
    )
webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is missing (scripts/setup.sh installs it)")
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402


@pytest.fixture()
def browser(speech_clips):
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in (
        "--headless=new",
        "--no-sandbox",  # CI runs as root
        "--disable-dev-shm-usage",
        "--window-size=900,700",
        "--use-fake-device-for-media-stream",
        "--use-fake-ui-for-media-stream",  # grant the microphone without a prompt
        f"--use-file-for-fake-audio-capture={speech_clips['wav']}",
    ):
        options.add_argument(arg)
    driver = webdriver.Chrome(options=options, service=Service(DRIVER))
    yield driver
    driver.quit()


def transcript_done(driver) -> bool:
    return driver.find_element(By.ID, "transcript").get_attribute("data-state") == "done"


def test_upload_shows_the_transcript_with_word_times(browser, serve_url, tiny_model, speech_clips, tmp_path) -> None:
    clip = speech_clips["flac"]
    out = tmp_path / "out"
    argv = [str(clip), "--model_path", str(tiny_model), "--format", "json", "--output_dir", str(out)]
    assert importlib.import_module("transcribe").main([*argv, *SERVE_OPTIONS[:2]]) == 0
    reference = json.loads((out / "speech.json").read_text())

    browser.get(serve_url + "/")
    WebDriverWait(browser, 10).until(lambda d: d.find_element(By.ID, "model").text == "tiny.ckpt")
    browser.find_element(By.ID, "file").send_keys(str(clip))
    WebDriverWait(browser, 60).until(transcript_done)
    assert browser.find_element(By.ID, "text").text == reference["text"]
    spans = browser.find_elements(By.CSS_SELECTOR, "#transcript .word")
    assert [s.find_element(By.TAG_NAME, "b").text for s in spans] == [w["word"] for w in reference["words"]]
    assert [float(s.get_attribute("data-start")) for s in spans] == [w["start"] for w in reference["words"]]
    assert browser.find_element(By.ID, "player").get_attribute("src").startswith("blob:")


def test_recording_shows_partial_then_final_text(browser, serve_url) -> None:
    browser.get(serve_url + "/")
    browser.find_element(By.ID, "record").click()
    WebDriverWait(browser, 60).until(
        lambda d: int(d.find_element(By.TAG_NAME, "body").get_attribute("data-partials") or 0) >= 2
    )
    partial = browser.find_element(By.ID, "partial").text
    assert partial and partial != "…"
    assert not transcript_done(browser)
    browser.find_element(By.ID, "record").click()
    WebDriverWait(browser, 60).until(transcript_done)
    final = browser.find_element(By.ID, "text").text
    assert final and final != "(no speech recognised)"
    assert browser.find_elements(By.CSS_SELECTOR, "#transcript .word")
    assert browser.find_element(By.ID, "status").text.startswith("recorded")
    assert browser.find_element(By.ID, "player").get_attribute("src").startswith("blob:")  # the WAV made in the page
