"""The web console in headless Chromium, served by `fleetwave serve` at /console/ (issue 13, items 3 and 4):
open the jobs page, start a deployment on a simulated fleet from the form (its validation messages inline),
watch robots move to InSync and one fail, cancel a second job, see the API's error for a refused action.

FLEETWAVE_SCREENSHOTS=<dir> saves the screenshots docs/ shows (docs/console-*.png).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from support.browser import chrome, close
from support.rollouts import SAFE_TIMEOUT, names, unique
from support.waiting import wait_for

# Caps, not expectations: pages refresh every second and each rollout ends within seconds.
PAGE_SECONDS = 30.0
ROLLOUT_SECONDS = 120.0


@pytest.fixture
def browser() -> Iterator[Any]:
    driver = chrome()
    driver.implicitly_wait(0)
    yield driver
    close(driver)


def until(what: str, check: Any, seconds: float = PAGE_SECONDS) -> Any:
    return wait_for(what, check, seconds)


def _screenshot(driver: Any, name: str) -> None:
    folder = os.environ.get("FLEETWAVE_SCREENSHOTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        driver.save_screenshot(str(Path(folder) / f"console-{name}.png"))


def _css(driver: Any, selector: str) -> list[Any]:
    from selenium.webdriver.common.by import By

    return driver.find_elements(By.CSS_SELECTOR, selector)


def _text(driver: Any, selector: str) -> str:
    found = _css(driver, selector)
    try:
        return found[0].text if found else ""
    except Exception:  # re-rendered between find and read: try again on the next poll
        return ""


def _robot_states(driver: Any) -> dict[str, tuple[str, str]]:
    states = {}
    for row in _css(driver, "#robot-table tbody tr"):
        try:
            states[row.get_attribute("data-robot")] = (
                row.get_attribute("data-status"),
                row.find_element("css selector", "td.failure").text,
            )
        except Exception:
            return {}
    return states


def _choose(driver: Any, select: str, text: str) -> None:
    """Pick ``text`` in the select ``select`` (a CSS selector; a bare name means the form field) once the
    page has filled in its options."""
    from selenium.webdriver.support.ui import Select

    selector = select if select.startswith("#") else f'[name="{select}"]'

    def options() -> list[str]:
        try:
            return [option.text for option in _css(driver, f"{selector} option")]
        except Exception:  # re-rendered while read
            return []

    until(f"{text} among the {select} options", lambda: text in options())
    Select(_css(driver, selector)[0]).select_by_visible_text(text)


def _type(driver: Any, name: str, value: str) -> None:
    field = _css(driver, f'[name="{name}"]')[0]
    field.clear()
    field.send_keys(value)


def test_console_deploys_to_a_simulated_fleet_and_cancels_a_second_job(
    browser: Any, serve: Any, rollouts: Any, simulate: Any, api: Any
) -> None:
    # Given a simulated fleet of 4 where one robot fails its pre-launch script, and an application version
    robots = names(unique("console"), 4)
    fleet = rollouts.fleet(robots)
    simulate(fleet, {robots[3]: "fail:PreLaunchFileFailure"}, robots=4)
    version = rollouts.version()
    app_name = version["name"]
    # When the operator opens the jobs page and fills in the form, first with a threshold over 100
    browser.get(f"{serve.api_url}console/#/jobs")
    until("the jobs table", lambda: _css(browser, "table#jobs"))
    _css(browser, "#new-job")[0].click()
    _choose(browser, "fleet", fleet["name"])
    _choose(browser, "deploymentApplicationConfigs[0].application", app_name)
    _choose(browser, "deploymentApplicationConfigs[0].applicationVersion", version["version"])
    _type(browser, "deploymentApplicationConfigs[0].launchConfig.packageName", "nav")
    _type(browser, "deploymentApplicationConfigs[0].launchConfig.launchFile", "nav.launch")
    _type(browser, "deploymentConfig.concurrentDeploymentPercentage", "50")
    _type(browser, "deploymentConfig.failureThresholdPercentage", "150")
    _type(browser, "deploymentConfig.robotDeploymentTimeoutInSeconds", str(SAFE_TIMEOUT))
    _css(browser, "#create-job")[0].click()
    # Then the API's validation message shows next to the field
    threshold_error = '.field-error[data-for="deploymentConfig.failureThresholdPercentage"]'
    until("the inline message", lambda: _text(browser, threshold_error) == "must be at most 100")
    _screenshot(browser, "create-job")
    # When the threshold is fixed and the job created
    _type(browser, "deploymentConfig.failureThresholdPercentage", "30")
    _css(browser, "#create-job")[0].click()
    # Then the job's live view follows it: robots reach InSync, one fails with its code, the job succeeds
    until("the job page", lambda: "#/jobs/" in browser.current_url)
    expected = {name: ("InSync", "") for name in robots[:3]} | {robots[3]: ("Failed", "PreLaunchFileFailure")}

    def settled() -> bool:
        states = {name: (s, failure.split(":")[0]) for name, (s, failure) in _robot_states(browser).items()}
        return states == expected and _text(browser, "#job-status") == "Succeeded"

    wait_for("robots InSync and one Failed", settled, ROLLOUT_SECONDS)
    assert [wave.get_attribute("data-released") for wave in _css(browser, "#waves .wave")] == ["true", "true"]
    assert _css(browser, "#threshold")[0].get_attribute("data-failed") == "25.0"
    _screenshot(browser, "job")

    # Given a second job that cannot finish (a silent robot, a long timeout)
    second_robots = names(unique("console-cancel"), 2)
    second_fleet = rollouts.fleet(second_robots)
    simulate(second_fleet, {name: "silent" for name in second_robots}, robots=2)
    second = rollouts.job(second_fleet, version, robotDeploymentTimeoutInSeconds=SAFE_TIMEOUT)
    # When a sync is asked for its fleet while it runs, Then the page shows the API's refusal
    browser.get(f"{serve.api_url}console/#/jobs")
    _choose(browser, "#sync-fleet", second_fleet["name"])
    _css(browser, "#sync")[0].click()
    until(
        "the sync refusal",
        lambda: _text(browser, "#sync-error").startswith("ConcurrentDeploymentException: "),
        PAGE_SECONDS,
    )
    # When the operator opens the second job and cancels it
    browser.get(f"{serve.api_url}console/#/jobs/{second['arn']}")
    until("the job to run", lambda: _text(browser, "#job-status") in ("Preparing", "InProgress"))
    _css(browser, "#cancel-job")[0].click()
    # Then it ends Canceled, on the page and in the API
    until("the job to be canceled", lambda: _text(browser, "#job-status") == "Canceled")
    assert api.client.call("describeDeploymentJob", {"job": second["arn"]})["status"] == "Canceled"


def test_console_pages_list_the_fleet_and_show_api_errors(browser: Any, serve: Any, rollouts: Any) -> None:
    # Given a fleet with two robots
    robots = names(unique("pages"), 2)
    fleet = rollouts.fleet(robots, architecture="ARM64")
    # When the operator opens the fleets and robots pages
    browser.get(f"{serve.api_url}console/#/fleets")
    row = f'#fleets tr[data-fleet="{fleet["name"]}"]'
    until("the fleet's row", lambda: _text(browser, row))
    assert _text(browser, f"{row} td:nth-child(2)") == "2"
    _screenshot(browser, "fleets")
    browser.get(f"{serve.api_url}console/#/robots")
    robot_row = f'#robots tr[data-robot="{robots[0]}"]'
    until("the robot's row", lambda: _text(browser, robot_row))
    assert "Registered" in _text(browser, robot_row) and "ARM64" in _text(browser, robot_row)
    # And a job that does not exist: the page shows the API's error, not a blank page
    browser.get(
        f"{serve.api_url}console/#/jobs/arn:aws:robomaker:us-east-1:123456789012:deployment-job/deployment-0"
    )
    until("the error banner", lambda: "ResourceNotFoundException" in _text(browser, "#error"))
    # And the Greengrass page lists core devices
    browser.get(f"{serve.api_url}console/#/greengrass")
    until("the core devices", lambda: _text(browser, f'#gg-devices tr[data-device="{robots[0]}"]'))


def test_console_approves_a_gated_wave_pauses_resumes_and_retries_the_failed(
    browser: Any, serve: Any, rollouts: Any, simulate: Any, api: Any
) -> None:
    # Given a simulated fleet of 4 whose last robot fails its first deployment, and a job gated after wave 1
    robots = names(unique("console-control"), 4)
    fleet = rollouts.fleet(robots)
    simulate(fleet, {robots[3]: "fail-once:PreLaunchFileFailure"}, robots=4)
    job = rollouts.job(
        fleet,
        rollouts.version(),
        concurrentDeploymentPercentage=50,
        robotDeploymentTimeoutInSeconds=SAFE_TIMEOUT,
        approval={"after": "FirstWave"},
    )
    # When the operator opens the job: it waits for the approval of wave 2, and the page offers it
    browser.get(f"{serve.api_url}console/#/jobs/{job['arn']}")
    until("the approve button", lambda: _text(browser, "#approve-wave") == "Approve wave 2")
    assert "wave 2, until" in _text(browser, "#rollout")
    # When the job is paused, then wave 2 approved: the pause still holds it
    _css(browser, "#pause-job")[0].click()
    until("the resume button", lambda: _text(browser, "#resume-job") == "Resume")
    _css(browser, "#approve-wave")[0].click()
    until("the approval to be taken", lambda: not _css(browser, "#approve-wave")[0].is_displayed())
    assert api.client.call("describeDeploymentJob", {"job": job["arn"]})["paused"] is True
    # When it is resumed, then the job ends with the one failure, and the page offers a retry
    _css(browser, "#resume-job")[0].click()
    until("the job to end", lambda: _text(browser, "#job-status") == "Succeeded", ROLLOUT_SECONDS)
    until("the retry button", lambda: _text(browser, "#retry-job") == "Retry failed robots")
    _css(browser, "#retry-job")[0].click()
    # Then the retry's page follows it, for the failed robot only, to success
    until(
        "the retry's page", lambda: job["arn"] not in browser.current_url and "#/jobs/" in browser.current_url
    )
    until("the retry to end", lambda: _text(browser, "#job-status") == "Succeeded", ROLLOUT_SECONDS)
    assert set(_robot_states(browser)) == {robots[3]}
    assert "retry of" in _text(browser, "#rollout")
