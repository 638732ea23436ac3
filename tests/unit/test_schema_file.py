"""schema.graphql is the exported SDL; regenerate it with `make schema` when this fails."""

from pathlib import Path

from api.schema.build import build_schema

SCHEMA_FILE = Path(__file__).resolve().parents[2] / "schema.graphql"


def test_schema_file_is_fresh():
    current = str(build_schema(production=False)).rstrip() + "\n"
    assert SCHEMA_FILE.read_text() == current, "schema.graphql is stale: run `make schema`"
