"""The GraphQL examples in the README are valid against the schema, and those marked
`# runnable as <role>` run without errors against an app (a customer registered by the README's
own RegisterIvan is what `$customer` refers to)."""

import re
from pathlib import Path

from graphql import OperationDefinitionNode, parse, validate

from api.schema.build import build_schema

README = Path(__file__).resolve().parents[2] / "README.md"
RUNNABLE = re.compile(r"^# runnable as (\w+)\n")


def _blocks() -> list[str]:
    return re.findall(r"```graphql\n(.*?)```", README.read_text(), re.S)


def test_readme_graphql_blocks_validate():
    blocks = _blocks()
    assert len(blocks) >= 2
    schema = build_schema(production=False)._schema
    for block in blocks:
        assert validate(schema, parse(block)) == [], block


def _operations(block: str) -> list[tuple[str, list[str]]]:
    """(name, variable names) of each operation in a block, mutations first (they create what
    the queries then read)."""
    found = []
    for node in parse(block).definitions:
        assert isinstance(node, OperationDefinitionNode) and node.name, block
        names = [v.variable.name.value for v in node.variable_definitions or ()]
        found.append((node.operation.value, node.name.value, names))
    return [(name, names) for _, name, names in sorted(found, key=lambda f: f[0] != "mutation")]


async def test_runnable_readme_examples_run_without_errors(gql):
    runnable = [(m.group(1), b) for b in _blocks() if (m := RUNNABLE.match(b))]
    assert len(runnable) >= 3, "the README marks no runnable examples"
    roles = {role for role, _ in runnable}
    assert roles <= {"app", "operator", "admin", "compliance"}, roles
    # Ivan, as the README registers him: `$customer` in the examples.
    [register] = [b for _, b in runnable if "mutation RegisterIvan" in b]
    ran = 0
    variables: dict[str, str] = {}
    for role, block in sorted(runnable, key=lambda rb: rb[1] is not register):
        for name, names in _operations(block):
            response = await gql.client.post(
                "/graphql",
                json={
                    "query": block,
                    "operationName": name,
                    "variables": {k: variables[k] for k in names},
                },
                headers=gql.headers(as_=role, token=None, customer=None),
            )
            assert response.status_code == 200, (name, response.text)
            body = response.json()
            assert "errors" not in body, (name, body["errors"])
            [payload] = body["data"].values()
            if isinstance(payload, dict):
                assert not payload.get("errors"), (name, payload["errors"])
            if name == "RegisterIvan":
                variables["customer"] = payload["customer"]["id"]
            ran += 1
    assert ran >= 4
