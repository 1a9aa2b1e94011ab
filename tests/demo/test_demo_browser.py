"""End to end in headless Chromium: the demo page on a served instance, the renal-failure
patient, baclofen 10 mg three times daily, a critical card, its suggestion accepted, and the
accepted feedback in the store. The page is kept as tests/artifacts/demo.png."""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from sqlalchemy import select

from service.store.schema import feedback as feedback_table

ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
TIMEOUT_MS = 15_000


@pytest.fixture(scope="module")
def browser():
    if not shutil.which(CHROMIUM):
        pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install chromium; .ci/run does)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1440, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    # The page is served with a Content-Security-Policy: a blocked script, style or call
    # shows only as a console error, so those count too.
    page.on("console", lambda message: errors.append(message.text)
            if message.type == "error" and "Content Security Policy" in message.text else None)
    yield page
    context.close()
    assert not errors, f"JavaScript or CSP errors on the page: {errors}"


def test_sign_baclofen_for_renal_failure_and_accept_the_suggestion(
        page, served_demo, demo_app, renal_failure_story):
    patient_id = renal_failure_story["patient"]["id"]
    page.goto(f"{served_demo.url}/demo")
    page.click(f'.patient-pick[data-patient-id="{patient_id}"]')
    assert page.locator(f'.chart[data-patient-id="{patient_id}"]').is_visible()

    page.select_option("#product", "197391")
    page.fill("#dose", "10")
    page.select_option("#frequency", "TID")
    assert "10 mg by mouth three times daily" in page.inner_text("#order-summary")
    page.click("#sign")

    card = page.locator('.card[data-indicator="critical"]').first
    card.wait_for()
    assert card.locator(".badge").inner_text().lower() == "critical"
    assert card.locator(".card-summary").inner_text()
    assert card.locator(".card-detail").inner_html().strip()  # Markdown rendered to HTML
    assert card.locator(".card-source").inner_text().startswith("Source:")
    card_uuid = card.get_attribute("data-card-uuid")

    card.locator("button.suggestion").first.click()
    page.wait_for_selector("#action-view:not([hidden])")
    assert '"type"' in page.inner_text("#action-json")
    outcome = card.locator(".card-outcome")
    outcome.filter(has_text="feedback sent").wait_for()
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "demo.png"))

    rows = stored_feedback(demo_app, card_uuid)
    assert [row.outcome for row in rows] == ["accepted"]
    assert rows[0].card_known and rows[0].accepted_suggestions


def test_dismissing_a_card_asks_for_a_reason_and_posts_overridden(
        page, served_demo, demo_app, renal_failure_story):
    page.goto(f"{served_demo.url}/demo?patient={renal_failure_story['patient']['id']}")
    page.click("#sign")
    card = page.locator('.card[data-indicator="critical"]').first
    card.wait_for()
    card_uuid = card.get_attribute("data-card-uuid")
    card.locator("button.dismiss").click()
    reasons = card.locator("select.override-reason option")
    assert reasons.count() > 1, "a critical card offers override reasons"
    card.locator("select.override-reason").select_option(index=1)
    card.locator("button.confirm-dismiss").click()
    card.locator(".card-outcome").filter(has_text="Overridden").wait_for()

    rows = stored_feedback(demo_app, card_uuid)
    assert [row.outcome for row in rows] == ["overridden"] and rows[0].reason_code


def test_patient_view_next_steps_and_feedback_to_the_patient_view_service(page, served_demo, demo_app):
    page.goto(f"{served_demo.url}/demo?patient=pv-cirrhosis-30-older")
    page.locator('.chart[data-patient-id="pv-cirrhosis-30-older"] button.patient-view').click()
    card = page.locator('.card[data-indicator="info"]').first
    card.wait_for()
    assert "albumin" in card.locator(".card-summary").inner_text()
    assert "Orphenadrine is not suggested at age 72" in card.locator(".card-detail").inner_text()
    card_uuid = card.get_attribute("data-card-uuid")
    card.locator("button.suggestion").filter(has_text="Refer to a specialist").click()
    page.wait_for_selector("#action-view:not([hidden])")
    assert '"3457005"' in page.inner_text("#action-json")
    card.locator(".card-outcome").filter(has_text="feedback sent").wait_for()

    rows = stored_feedback(demo_app, card_uuid)
    assert [row.outcome for row in rows] == ["accepted"] and rows[0].card_known


def test_rules_page_renders_under_its_content_security_policy(page, served_demo):
    response = page.goto(f"{served_demo.url}/demo/rules")
    assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
    assert page.locator("table").count() > 0  # the catalog's tables, styled by demo.css
    assert page.evaluate("getComputedStyle(document.body).fontFamily") != ""


def stored_feedback(app, card_uuid: str) -> list:
    store = app.extensions["baclofen_cds"].store
    with store.engine.connect() as connection:
        return list(connection.execute(
            select(feedback_table).where(feedback_table.c.card_uuid == card_uuid)))
