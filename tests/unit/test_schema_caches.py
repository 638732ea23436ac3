"""Parsing and validation are cached across requests (and bounded)."""

from strawberry.extensions.parser_cache import _get_parse_cache
from strawberry.extensions.validation_cache import _get_validate_cache

from api.schema.build import CACHE_SIZE, build_schema

QUERY = "query Cached { __typename }"


async def test_the_second_request_hits_both_caches():
    schema = build_schema(production=False)
    validation, parsing = _get_validate_cache(CACHE_SIZE), _get_parse_cache(CACHE_SIZE)
    assert validation.cache_info().maxsize == CACHE_SIZE
    await schema.execute(QUERY)
    hits = validation.cache_info().hits, parsing.cache_info().hits
    result = await schema.execute(QUERY)
    assert result.errors is None
    assert validation.cache_info().hits == hits[0] + 1
    assert parsing.cache_info().hits == hits[1] + 1


async def test_limits_still_apply_with_cached_rules():
    schema = build_schema(production=False)
    deep = "query { me { " + "referredBy { referrer { " * 10 + "id" + " } }" * 10 + " } }"
    for _ in range(2):
        result = await schema.execute(deep)
        assert result.errors and "depth" in result.errors[0].message
