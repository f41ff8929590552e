"""The dashboard in a real headless Chromium (Debian's chromium + chromedriver, driven by
Selenium): it loads with no console errors, its KPI numbers equal Admin.GetKpis, and a
screenshot is written as a test artifact ($AFTERCARE_ARTIFACTS, else var/artifacts)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from aftercare.v1 import admin_pb2, admin_pb2_grpc, support_pb2, support_pb2_grpc
from server.kpis_cli import kpis_dict
from tests.conftest import ROOT
from tests.functional.harness import ServerThread
from tests.functional.observe_harness import observed_server

CHROMIUM = os.environ.get("AFTERCARE_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("AFTERCARE_CHROMEDRIVER", "/usr/bin/chromedriver")
KPI_KEYS = ("conversations", "responses", "containment_rate", "escalation_rate", "csat_avg",
            "csat_count", "nps", "nps_count", "fcr_rate", "resolution_time_p50_s",
            "resolution_time_p90_s", "conversion_rate", "post_interaction_revenue",
            "reopen_rate", "draft_acceptance_rate")

webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed")
if not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()):
    pytest.skip(f"headless browser test needs {CHROMIUM} and {CHROMEDRIVER} "
                "(apt-get install chromium chromium-driver)", allow_module_level=True)


@pytest.fixture(scope="module")
def server(server_overrides: dict, tmp_path_factory: pytest.TempPathFactory
           ) -> Iterator[ServerThread]:
    base = tmp_path_factory.mktemp("dashboard")
    srv, _ = observed_server({**server_overrides,
                              "records": {"path": str(base / "records.sqlite")}})
    with grpc.insecure_channel(srv.address) as ch:
        support = support_pb2_grpc.SupportStub(ch)
        for text in ("where is my order?", "I want to speak to a real person please",
                     "can I change my delivery address?"):
            final = None
            for ev in support.Respond(support_pb2.RespondRequest(text=text), timeout=60):
                if ev.HasField("final"):
                    final = ev.final
            assert final is not None
            support.Feedback(support_pb2.FeedbackRequest(
                decision_id=final.decision_id, csat=4, nps=9, resolved=True))
    yield srv
    srv.stop()


@pytest.fixture()
def browser() -> Iterator[object]:
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    opts = Options()
    opts.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=1400,1100"):
        opts.add_argument(arg)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=opts)
    try:
        yield driver
    finally:
        driver.quit()


def test_dashboard_shows_getkpis_without_console_errors(
        server: ServerThread, browser: object, tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    driver: object = browser
    assert server.app is not None
    with grpc.insecure_channel(server.address) as ch:
        want = kpis_dict(admin_pb2_grpc.AdminStub(ch).GetKpis(admin_pb2.GetKpisRequest()))
    assert want["responses"] == 3
    driver.get(f"http://127.0.0.1:{server.app.metrics_port}/dashboard")  # type: ignore[attr-defined]
    WebDriverWait(driver, 30).until(  # type: ignore[arg-type]
        lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-loaded") == "1")
    for key in KPI_KEYS:
        cell = driver.find_element(By.ID, f"kpi-{key}")  # type: ignore[attr-defined]
        assert float(cell.get_attribute("data-value")) == pytest.approx(want[key]), key
        assert cell.text.strip(), key
    shown = driver.find_element(By.ID, "kpi-containment_rate").text  # type: ignore[attr-defined]
    assert shown == f"{100 * want['containment_rate']:.1f}%"
    assert "refresh failed" not in driver.find_element(  # type: ignore[attr-defined]
        By.ID, "status").text
    # The charts were drawn: latency rows for the RPCs made, bars for the handoff.
    assert driver.find_elements(By.CSS_SELECTOR, "#latency tbody tr")  # type: ignore[attr-defined]
    assert driver.find_elements(By.CSS_SELECTOR, "#handoffs-chart rect")  # type: ignore[attr-defined]
    errors = [e for e in driver.get_log("browser")  # type: ignore[attr-defined]
              if e.get("level") == "SEVERE"]
    assert errors == []
    shot = tmp_path / "dashboard.png"
    assert driver.save_screenshot(str(shot))  # type: ignore[attr-defined]
    assert shot.stat().st_size > 10_000
    artifacts = Path(os.environ.get("AFTERCARE_ARTIFACTS", ROOT / "var" / "artifacts"))
    artifacts.mkdir(parents=True, exist_ok=True)
    shutil.copy(shot, artifacts / "dashboard.png")
