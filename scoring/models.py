"""Tables of scoring: each customer's latest scores and influence, and the runs that wrote them.

Scores are derived data: the raw events they come from stay the record. A batch replaces the
rows it covers; rows of customers no longer permitted for profiling are deleted, not hidden.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Column, ForeignKey, Index, String
from sqlmodel import Field, SQLModel

from core.clock import utcnow
from core.db import UTCDateTime


class ScoringRun(SQLModel, table=True):
    """One `loyalgraph score` (or one online refresh): which models, which cutoff, how many."""

    __tablename__ = "scoring_run"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    cutoff: datetime = Field(sa_type=UTCDateTime)
    started_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, index=True)
    finished_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    scope: str = Field(sa_type=String(16))  # ALL, CUSTOMERS or ONLINE
    churn_model: str | None = Field(default=None, sa_type=String(100))  # name:version
    value_model: str | None = Field(default=None, sa_type=String(100))
    scored: int = Field(default=0)
    not_permitted: int = Field(default=0)  # no profiling consent, or blocked
    not_scorable: int = Field(default=0)  # not active, or no purchase before the cutoff
    removed: int = Field(default=0)  # earlier scores deleted (consent gone, merged, erased)
    actor: str = Field(sa_type=String(100))


class CustomerScore(SQLModel, table=True):
    """The latest score of one kind for one customer (the survivor after merges)."""

    __tablename__ = "customer_score"
    __table_args__ = (
        Index("ix_customer_score_kind_band", "kind", "band"),
        # Ranking one fresh score against the stored ones (online refresh) is a range count.
        Index("ix_customer_score_kind_score", "kind", "score"),
    )

    customer_id: uuid.UUID = Field(
        sa_column=Column(ForeignKey("customer.id"), primary_key=True, nullable=False)
    )
    kind: str = Field(sa_type=String(16), primary_key=True)
    model_name: str = Field(sa_type=String(100))
    model_version: str = Field(sa_type=String(32))
    cutoff: datetime = Field(sa_type=UTCDateTime)
    horizon_days: int
    scored_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    # churn: calibrated probability; value: expected net spend in minor units of `currency`
    score: float
    band: str = Field(sa_type=String(16))  # RiskBand (churn) or ValueSegment (value)
    percentile: float
    currency: str = Field(sa_type=String(3))
    network_value_minor: int | None = Field(default=None, sa_type=BigInteger)
    reasons: list[dict[str, Any]] = Field(
        default_factory=list, sa_column=Column(JSON, nullable=False)
    )
    run_id: uuid.UUID = Field(sa_column=Column(ForeignKey("scoring_run.id"), nullable=False))


class CustomerInfluence(SQLModel, table=True):
    """The latest influence figures of a customer (see scoring.influence)."""

    __tablename__ = "customer_influence"

    customer_id: uuid.UUID = Field(
        sa_column=Column(ForeignKey("customer.id"), primary_key=True, nullable=False)
    )
    cutoff: datetime = Field(sa_type=UTCDateTime)
    computed_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    score: float
    percentile: float = Field(index=True)
    reach: int = Field(sa_type=BigInteger)
    review_count: int
    helpful_votes: int
    referrals_made: int
    referrals_converted: int
    referred_spend_minor: int = Field(sa_type=BigInteger)
    own_spend_minor: int = Field(sa_type=BigInteger)  # net spend over the last 365 days
    own_spend_percentile: float
    currency: str = Field(sa_type=String(3))
    run_id: uuid.UUID = Field(sa_column=Column(ForeignKey("scoring_run.id"), nullable=False))
