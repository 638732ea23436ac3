"""The program definition: validation names the field at fault, calendars count in the
program's zone, and earning is exact."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from graph.enums import Channel
from loyalty.definition import parse_definition
from loyalty.program import ProgramFileError, read_program_file
from loyalty.rules import Cart, Line, compute_earning, max_redeemable, share_of

DEMO = Path(__file__).resolve().parents[2] / "loyalty" / "programs" / "demo.yaml"


def base(**overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {"code": "p", "name": "P", "currency": "RUB"}
    data.update(overrides)
    return data


def test_the_demo_program_is_valid() -> None:
    demo = read_program_file(DEMO)
    assert demo.code == "demo"
    assert [level.code for level in demo.tiers.levels] == ["bronze", "silver", "gold"]


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            {
                "earn": {
                    "rules": [
                        {"code": "a", "priority": 1, "multiplier": 2},
                        {"code": "b", "priority": 1, "multiplier": 3},
                    ]
                }
            },
            "share priority 1",
        ),
        ({"earn": {"rules": [{"code": "a", "multiplier": 2}]}}, "earn.rules.0.priority"),
        (
            {
                "earn": {
                    "rules": [
                        {
                            "code": "a",
                            "priority": 1,
                            "multiplier": 2,
                            "valid_from": "2026-01-01T00:00:00",
                        }
                    ]
                }
            },
            "need a time zone",
        ),
        ({"tiers": {"levels": [{"code": "x", "name": "X", "threshold": 5}]}}, "threshold 0"),
        ({"timezone": "Mars/Olympus"}, "unknown time zone"),
        ({"redemption": {"max_share_percent": 0}}, "redemption.max_share_percent"),
        ({"surprise": 1}, "surprise"),
    ],
)
def test_a_bad_program_file_names_the_field(
    tmp_path: Path, overrides: dict[str, Any], message: str
) -> None:
    import yaml

    path = tmp_path / "program.yaml"
    path.write_text(yaml.safe_dump(base(**overrides)))
    with pytest.raises(ProgramFileError, match=message):
        read_program_file(path)


def test_calendar_expiry_counts_in_the_program_zone() -> None:
    # 2026-01-31 22:30 UTC is already February 1st in Moscow.
    earned = datetime(2026, 1, 31, 22, 30, tzinfo=UTC)
    month = parse_definition(base(expiry={"policy": "end_of_month", "months": 0}))
    assert month.expires_at(earned) == datetime(2026, 2, 28, 21, 0, tzinfo=UTC)
    year = parse_definition(base(expiry={"policy": "end_of_year", "years": 1}))
    assert year.expires_at(earned) == datetime(2027, 12, 31, 21, 0, tzinfo=UTC)
    never = parse_definition(base(expiry={"policy": "never"}))
    assert never.expires_at(earned) is None


def test_earning_is_floored_once_per_purchase() -> None:
    rules = parse_definition(base(earn={"points": 1, "per_minor": 10_000}))
    cart = Cart(
        channel=Channel.POS,
        occurred_at=datetime(2026, 5, 1, tzinfo=UTC),
        currency="RUB",
        lines=(Line("a", "x", 1, 5_000), Line("b", "x", 1, 5_000)),
    )
    assert compute_earning(rules, cart, tier="base").points == 1  # 50 + 50 RUB = 1 point
    other_currency = Cart(cart.channel, cart.occurred_at, "EUR", cart.lines)
    assert compute_earning(rules, other_currency, tier="base").points == 0


def test_proportional_shares_add_up_exactly() -> None:
    parts = [share_of(1001, done, 7) - share_of(1001, done - 1, 7) for done in range(1, 8)]
    assert sum(parts) == 1001
    rules = parse_definition(base(redemption={"max_share_percent": 30, "point_value_minor": 100}))
    assert max_redeemable(rules, order_total_minor=100_000) == 300
