"""The Fellegi-Sunter model: blocking, comparisons, unsupervised training, scoring (Splink 4).

DuckDB runs in memory with spilling to disk switched off (`temp_directory` empty), so the
decrypted records never reach a file. The Spark backend is used when a Spark session is passed
(see `graph.resolution.spark`). Trained parameters (m and u probabilities: no personal data)
are kept as Splink's model JSON so that one registration can be scored without retraining.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Any

import duckdb
import pandas as pd
import splink.comparison_level_library as cll
import splink.comparison_library as cl
from splink import DuckDBAPI, Linker, SettingsCreator, block_on

from graph.resolution.features import COLUMNS, Record

log = logging.getLogger(__name__)

# Blocking rules, by name: a pair is scored when it agrees on every column of one rule. The same
# rules give the stored blocking keys (keyed hashes of the joined values).
BLOCKING_RULES: dict[str, tuple[str, ...]] = {
    "phone": ("phone_key",),
    "email": ("email_key",),
    "card": ("card_key",),
    "name": ("surname_stem", "first_key"),
    "first_dob": ("first_key", "dob"),
    "surname_dob": ("surname_stem", "dob"),
}
# Evidence field → the comparison's output column in Splink.
FIELDS = {
    "first_name": "first_name",
    "patronymic": "patronymic",
    "last_name": "last_name",
    "birth_date": "birth_date",
    "email": "email_key",
    "phone": "phone_key",
    "card": "card_key",
    "address": "address_key",
}


def blocking_values(record: Record) -> dict[str, str]:
    """rule → the joined values of its columns, for the rules where none is missing."""
    found: dict[str, str] = {}
    for rule, columns in BLOCKING_RULES.items():
        values = [record.get(column) for column in columns]
        if all(values):
            found[rule] = "|".join(str(value) for value in values)
    return found


def _comparisons() -> list[Any]:
    first = cl.CustomComparison(
        output_column_name="first_name",
        comparison_levels=[
            cll.NullLevel("first_key"),
            cll.ExactMatchLevel("first_key", term_frequency_adjustments=True),
            cll.JaroWinklerLevel("first_key", 0.92),
            cll.JaroWinklerLevel("first_key", 0.8),
            cll.ElseLevel(),
        ],
    )
    surname = cl.CustomComparison(
        output_column_name="last_name",
        comparison_levels=[
            cll.NullLevel("surname_key"),
            cll.ExactMatchLevel("surname_key", term_frequency_adjustments=True),
            cll.CustomLevel(
                "surname_stem_l = surname_stem_r AND surname_gender_l <> surname_gender_r",
                label_for_charts="same stem, other gender",
            ),
            cll.JaroWinklerLevel("surname_key", 0.92),
            cll.JaroWinklerLevel("surname_key", 0.8),
            cll.ElseLevel(),
        ],
    )
    dob = cl.CustomComparison(
        output_column_name="birth_date",
        comparison_levels=[
            cll.NullLevel("dob"),
            cll.ExactMatchLevel("dob"),
            cll.CustomLevel(
                "substr(dob_l, 1, 4) = substr(dob_r, 1, 4) "
                "AND substr(dob_l, 6, 2) = substr(dob_r, 9, 2) "
                "AND substr(dob_l, 9, 2) = substr(dob_r, 6, 2)",
                label_for_charts="day and month swapped",
            ),
            cll.DamerauLevenshteinLevel("dob", 1),
            cll.ElseLevel(),
        ],
    )
    return [
        first,
        cl.ExactMatch("patronymic"),
        surname,
        dob,
        cl.DamerauLevenshteinAtThresholds("email_key", [1, 2]),
        cl.DamerauLevenshteinAtThresholds("phone_key", [1, 2]),
        cl.ExactMatch("card_key"),
        cl.JaroWinklerAtThresholds("address_key", [0.95, 0.85]),
    ]


def settings() -> SettingsCreator:
    return SettingsCreator(
        link_type="dedupe_only",
        unique_id_column_name="unique_id",
        comparisons=_comparisons(),
        blocking_rules_to_generate_predictions=[
            block_on(*columns) for columns in BLOCKING_RULES.values()
        ],
        retain_matching_columns=False,
        retain_intermediate_calculation_columns=True,
        probability_two_random_records_match=1e-4,
    )


def memory_duckdb() -> DuckDBAPI:
    """DuckDB in this process's memory, forbidden to spill anything to a temporary file."""
    connection = duckdb.connect(":memory:")
    connection.execute("SET temp_directory = ''")
    connection.execute("SET enable_external_access = false")
    return DuckDBAPI(connection=connection)


def frame(records: list[Record]) -> pd.DataFrame:
    return pd.DataFrame.from_records(records, columns=list(COLUMNS)).astype(object)


def _quiet(step: Any, *args: Any, **kwargs: Any) -> None:
    """One training step; a block with too few pairs to learn from leaves the priors as they are
    (a small base trains less, it does not fail)."""
    try:
        step(*args, **kwargs)
    except Exception as exc:
        log.info("identity model: a training step was skipped (%s)", type(exc).__name__)


def train(linker: Linker, *, max_pairs: float = 1e6, seed: int = 15) -> None:
    """Unsupervised training: λ from deterministic rules, u from random pairs, m by EM."""
    _quiet(
        linker.training.estimate_probability_two_random_records_match,
        [block_on("first_key", "surname_key", "dob"), block_on("phone_key", "first_key")],
        recall=0.8,
    )
    _quiet(linker.training.estimate_u_using_random_sampling, max_pairs=max_pairs, seed=seed)
    for rule in (block_on("phone_key"), block_on("surname_stem", "first_key"), block_on("dob")):
        _quiet(linker.training.estimate_parameters_using_expectation_maximisation, rule)


def new_linker(
    records: list[Record], *, db_api: Any = None, model: dict[str, Any] | None = None
) -> Linker:
    table: Any = frame(records)
    return Linker(table, model or settings(), db_api or memory_duckdb())


@dataclass(frozen=True, slots=True)
class Evidence:
    field: str
    agreement: str
    weight: float


@dataclass(frozen=True, slots=True)
class ScoredPair:
    left: str
    right: str
    probability: float
    weight: float
    evidence: tuple[Evidence, ...]


def _labels(linker: Linker) -> dict[str, dict[int, str]]:
    labels: dict[str, dict[int, str]] = {}
    for comparison in linker._settings_obj.comparisons:
        labels[comparison.output_column_name] = {
            level.comparison_vector_value: level.label_for_charts
            for level in comparison.comparison_levels
        }
    return labels


def scored_pairs(linker: Linker, predictions: pd.DataFrame) -> list[ScoredPair]:
    """Predictions as pairs with per-field evidence: agreement label and weight (log2 BF)."""
    labels = _labels(linker)
    pairs: list[ScoredPair] = []
    for row in predictions.to_dict("records"):
        evidence = []
        for name, output in FIELDS.items():
            gamma = row.get(f"gamma_{output}")
            factor = row.get(f"bf_{output}")
            if gamma is None:
                continue
            weight = math.log2(float(factor)) if factor and float(factor) > 0 else 0.0
            for tf_col in (f"bf_tf_adj_{output}",):
                tf = row.get(tf_col)
                if tf is not None and float(tf) > 0:
                    weight += math.log2(float(tf))
            evidence.append(
                Evidence(name, labels.get(output, {}).get(int(gamma), str(gamma)), round(weight, 3))
            )
        left, right = sorted((str(row["unique_id_l"]), str(row["unique_id_r"])))
        pairs.append(
            ScoredPair(
                left=left,
                right=right,
                probability=float(row["match_probability"]),
                weight=float(row["match_weight"]),
                evidence=tuple(evidence),
            )
        )
    return pairs


def predict(linker: Linker, *, threshold: float) -> list[ScoredPair]:
    result = linker.inference.predict(threshold_match_probability=threshold)
    frame_: pd.DataFrame = result.as_pandas_dataframe()  # type: ignore[no-untyped-call]
    return scored_pairs(linker, frame_)


def model_json(linker: Linker) -> dict[str, Any]:
    """The trained parameters (no records) for scoring one registration later."""
    saved = linker.misc.save_model_to_json(overwrite=True)
    assert isinstance(saved, dict)
    return saved


def score_against(
    model: dict[str, Any], block: list[Record], new: Record, *, threshold: float
) -> list[ScoredPair]:
    """Score one new record against the records of its block with a trained model."""
    if not block:
        return []
    linker = new_linker(block, model=model)
    result = linker.inference.find_matches_to_new_records(
        frame([new]), blocking_rules=[], match_weight_threshold=-50
    ).as_pandas_dataframe()  # type: ignore[no-untyped-call]
    pairs = scored_pairs(linker, result)
    return [pair for pair in pairs if pair.probability >= threshold and pair.left != pair.right]
