"""The GraphQL examples in the README are valid against the schema."""

import re
from pathlib import Path

from graphql import parse, validate

from api.schema.build import build_schema

README = Path(__file__).resolve().parents[2] / "README.md"


def test_readme_graphql_blocks_validate():
    blocks = re.findall(r"```graphql\n(.*?)```", README.read_text(), re.S)
    assert len(blocks) >= 2
    schema = build_schema(production=False)._schema
    for block in blocks:
        assert validate(schema, parse(block)) == [], block
