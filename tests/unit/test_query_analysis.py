"""Query analysis is linear in the document and counts what the executor would meet."""

import pytest
from graphql import parse

from api.schema.analysis import LIMITS, AnalysisError, analyse


def bomb(levels: int, leaf: str = "id") -> str:
    fragments = " ".join(
        f"fragment F{i} on Customer {{ ...F{i + 1} ...F{i + 1} }}" for i in range(levels)
    )
    return f"{{ me {{ ...F0 }} }} {fragments} fragment F{levels} on Customer {{ {leaf} }}"


def test_a_fragment_bomb_is_measured_by_its_expansion_without_expanding_it():
    # 2^60 copies of `id`: expanding them would never finish; memoised it is one visit each.
    with pytest.raises(AnalysisError) as refused:
        analyse(parse(bomb(60)), None, {})
    assert refused.value.code == "QUERY_TOO_COSTLY"
    assert str(2**60 + 1) in refused.value.message


def test_fragments_cost_what_their_inline_expansion_costs():
    spread = (
        "query { customers(first: 5) { edges { node { ...C ...C } } } }"
        " fragment C on Customer { id events(first: 3) { edges { node { id } } } }"
    )
    inline = (
        "query { customers(first: 5) { edges { node {"
        " id events(first: 3) { edges { node { id } } } id events(first: 3) { edges { node { id } } }"
        " } } } }"
    )
    assert analyse(parse(spread), None, {}) == analyse(parse(inline), None, {})


def test_aliases_inside_a_repeated_fragment_count_once_per_copy():
    query = bomb(5, leaf="a: id b: id")  # 32 copies of two aliases
    with pytest.raises(AnalysisError) as refused:
        analyse(parse(query), None, {})
    assert "64 aliases" in refused.value.message


def test_depth_through_fragments():
    fragments = " ".join(
        f"fragment N{i} on Customer {{ referredBy {{ referrer {{ ...N{i + 1} }} }} }}" for i in range(8)
    )
    query = "{ me { ...N0 } } " + fragments + " fragment N8 on Customer { id }"
    with pytest.raises(AnalysisError) as refused:
        analyse(parse(query), None, {})
    assert "depth" in refused.value.message


def test_a_fragment_cycle_does_not_hang():
    query = "{ me { ...A } } fragment A on Customer { id ...B } fragment B on Customer { ...A }"
    assert analyse(parse(query), None, {}).cost == 2


def test_variables_and_their_defaults_are_costed():
    query = (
        "query($n: Int = 100) { customers(first: $n) { edges { node {"
        " events(first: $n) { edges { node { id ... on Purchase { lines { sku } } } } } } } } }"
    )
    with pytest.raises(AnalysisError):
        analyse(parse(query), None, {})
    with pytest.raises(AnalysisError):
        analyse(parse(query), None, {"n": 100})
    assert analyse(parse(query), None, {"n": 5}).cost < LIMITS.max_cost


def test_several_operations_need_a_name():
    document = parse("query A { __typename } mutation B { __typename }")
    with pytest.raises(AnalysisError):
        analyse(document, None, {})
    assert analyse(document, "A", {}).cost == 1
    with pytest.raises(AnalysisError):
        analyse(document, "C", {})
