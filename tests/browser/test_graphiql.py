"""GraphiQL works with no internet: the page, React and GraphiQL come from the app itself."""

from __future__ import annotations

import json
from typing import Any

from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait

from tests.browser.conftest import Server


def _type_into(driver: Any, editor: Any, text: str) -> None:
    """Click a CodeMirror editor, select everything in it and type over it, key by key."""
    ActionChains(driver).click(editor).perform()
    ActionChains(driver).key_down(Keys.CONTROL).send_keys("a").key_up(Keys.CONTROL).perform()
    ActionChains(driver).send_keys(Keys.DELETE).perform()
    ActionChains(driver).send_keys(text).perform()


def _visible(driver: Any, selector: str) -> Any:
    shown = [e for e in driver.find_elements(By.CSS_SELECTOR, selector) if e.is_displayed()]
    return shown[0] if shown else None


def test_graphiql_runs_a_query_typed_into_it_without_internet(chrome: Any, server: Server) -> None:
    driver = chrome
    driver.get(f"{server.url}/graphql")
    wait = WebDriverWait(driver, 60)
    query_editor = wait.until(
        ec.visibility_of_element_located((By.CSS_SELECTOR, ".graphiql-query-editor .CodeMirror"))
    )

    # Every resource the page loaded came from our server: nothing from a CDN.
    resources = driver.execute_script(
        "return performance.getEntriesByType('resource').map(e => e.name)"
    )
    assert resources, "the page loaded no assets"
    assert all(name.startswith(server.url) for name in resources), resources

    # The key goes into the Headers tab, as a user would paste it.
    driver.find_element(By.XPATH, "//button[normalize-space()='Headers']").click()
    headers_editor = wait.until(lambda d: _visible(d, ".graphiql-editor-tool .CodeMirror"))
    _type_into(driver, headers_editor, json.dumps({"X-API-Key": server.api_key}))
    typed_headers = json.loads(
        driver.execute_script("return arguments[0].CodeMirror.getValue()", headers_editor)
    )
    assert typed_headers == {"X-API-Key": server.api_key}

    _type_into(driver, query_editor, "query Probe { __typename ")
    driver.find_element(By.CSS_SELECTOR, ".graphiql-execute-button").click()

    def result(d: Any) -> str | None:
        text: str = d.execute_script(
            "const e = document.querySelector('.result-window .CodeMirror');"
            "return e ? e.CodeMirror.getValue() : ''"
        )
        return text if text.strip() else None

    body = json.loads(wait.until(result))
    assert body["data"] == {"__typename": "Query"}, body
    # No script error; the only failed loads allowed are the schema fetch made before the key
    # was typed (401) and the favicon the browser asks for on its own.
    severe = [
        e["message"]
        for e in driver.get_log("browser")
        if e["level"] == "SEVERE"
        and not ("/favicon.ico" in e["message"] or "status of 401" in e["message"])
    ]
    assert not severe, severe


def test_graphiql_without_a_key_shows_the_typed_unauthenticated_error(
    chrome: Any, server: Server
) -> None:
    driver = chrome
    driver.get(f"{server.url}/graphql")
    wait = WebDriverWait(driver, 60)
    query_editor = wait.until(
        ec.visibility_of_element_located((By.CSS_SELECTOR, ".graphiql-query-editor .CodeMirror"))
    )
    _type_into(driver, query_editor, "{ __typename ")
    driver.find_element(By.CSS_SELECTOR, ".graphiql-execute-button").click()

    def result(d: Any) -> str | None:
        text: str = d.execute_script(
            "return document.querySelector('.result-window .CodeMirror').CodeMirror.getValue()"
        )
        return text if "errors" in text else None

    body = json.loads(wait.until(result))
    assert body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
