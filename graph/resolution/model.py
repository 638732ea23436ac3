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
    # A second registration whose names are mistyped or swapped still shares a home.
    "dob_address": ("dob", "address_key"),
    "surname_address": ("surname_stem", "address_key"),
    "first_address": ("first_key", "address_key"),
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


def _level(level: Any, m: float, *, fixed: bool = False) -> Any:
    """A level with a prior m probability (what EM starts from, and keeps on a small base)."""
    return level.configure(m_probability=m, fix_m_probability=fixed)


def _tf_exact(column: str) -> Any:
    """Exact match with a term-frequency adjustment (a common surname counts less than a rare
    one). The level is its own exact-match reference, so every backend reads it alike."""
    return cll.ExactMatchLevel(column, term_frequency_adjustments=True).configure(
        disable_tf_exact_match_detection=True
    )


def _comparisons() -> list[Any]:
    """Comparisons with priors for m. A given name that disagrees outright (after
    transliteration, diminutives and typos at Jaro-Winkler 0.8) is fixed as near-impossible for
    one person: it is what tells twins, spouses and siblings sharing a phone apart. The same
    surname stem in the other gender form is strong evidence of two people."""
    first = cl.CustomComparison(
        output_column_name="first_name",
        comparison_levels=[
            cll.NullLevel("first_key"),
            _level(_tf_exact("first_key"), 0.88),
            _level(
                cll.CustomLevel(
                    "jaro_winkler_similarity(first_key_l, surname_key_r) >= 0.9 "
                    "AND jaro_winkler_similarity(surname_key_l, first_key_r) >= 0.8 "
                    "AND first_key_l <> first_key_r",
                    label_for_charts="first name and surname swapped",
                ),
                0.01,
            ),
            _level(cll.JaroWinklerLevel("first_key", 0.92), 0.07),
            _level(cll.JaroWinklerLevel("first_key", 0.8), 0.04),
            _level(cll.ElseLevel(), 1e-6, fixed=True),
        ],
    )
    surname = cl.CustomComparison(
        output_column_name="last_name",
        comparison_levels=[
            cll.NullLevel("surname_key"),
            _level(_tf_exact("surname_key"), 0.85),
            _level(
                cll.CustomLevel(
                    "surname_stem_l = surname_stem_r AND surname_gender_l <> surname_gender_r",
                    label_for_charts="same stem, other gender",
                ),
                1e-4,
                fixed=True,
            ),
            _level(cll.JaroWinklerLevel("surname_key", 0.92), 0.08),
            _level(cll.JaroWinklerLevel("surname_key", 0.8), 0.04),
            _level(cll.ElseLevel(), 0.03),
        ],
    )
    dob = cl.CustomComparison(
        output_column_name="birth_date",
        comparison_levels=[
            cll.NullLevel("dob"),
            _level(cll.ExactMatchLevel("dob"), 0.85),
            _level(
                cll.CustomLevel(
                    "substr(dob_l, 1, 4) = substr(dob_r, 1, 4) "
                    "AND substr(dob_l, 6, 2) = substr(dob_r, 9, 2) "
                    "AND substr(dob_l, 9, 2) = substr(dob_r, 6, 2)",
                    label_for_charts="day and month swapped",
                ),
                0.04,
            ),
            _level(cll.DamerauLevenshteinLevel("dob", 1), 0.06),
            _level(cll.ElseLevel(), 0.05),
        ],
    )
    return [
        first,
        cl.ExactMatch("patronymic").configure(m_probabilities=[0.95, 0.05]),
        surname,
        dob,
        cl.CustomComparison(
            output_column_name="email_key",
            comparison_levels=[
                cll.NullLevel("email_key"),
                _level(cll.ExactMatchLevel("email_key"), 0.8),
                _level(
                    cll.And(
                        cll.DamerauLevenshteinLevel("email_key", 2),
                        cll.ExactMatchLevel("email_digits"),
                    ).configure(label_for_charts="e-mail within 2 typos, same digits"),
                    0.15,
                ),
                _level(cll.ElseLevel(), 0.05),
            ],
        ),
        cl.DamerauLevenshteinAtThresholds("phone_key", [1, 2]).configure(
            m_probabilities=[0.85, 0.06, 0.03, 0.06]
        ),
        cl.ExactMatch("card_key").configure(m_probabilities=[0.6, 0.4]),
        cl.JaroWinklerAtThresholds("address_key", [0.95, 0.85]).configure(
            m_probabilities=[0.7, 0.1, 0.1, 0.1]
        ),
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
    chosen: Any = model or settings()
    if hasattr(db_api, "spark"):
        from graph.resolution.spark import spark_frame, spark_settings

        table = spark_frame(db_api, records)  # Spark cannot infer a type from a column of None
        chosen = spark_settings(chosen)
    return Linker(table, chosen, db_api or memory_duckdb())


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


def _levels(linker: Linker) -> dict[str, list[tuple[float, str]]]:
    """Per comparison output column: (Bayes factor, label) of each non-null level."""
    levels: dict[str, list[tuple[float, str]]] = {}
    for comparison in linker._settings_obj.comparisons:
        levels[comparison.output_column_name] = [
            (float(level._bayes_factor), str(level.label_for_charts))
            for level in comparison.comparison_levels
            if not level.is_null_level
        ]
    return levels


def _agreement(levels: list[tuple[float, str]], factor: float) -> str:
    """The level a Bayes factor came from (Splink's predictions keep factors, not levels)."""
    if not levels:
        return "unknown"
    best = min(levels, key=lambda item: abs(math.log(max(item[0], 1e-300) / factor)))
    if factor == 1.0 and abs(math.log(max(best[0], 1e-300))) > 1e-9:
        return "missing"
    return best[1]


def scored_pairs(linker: Linker, predictions: pd.DataFrame) -> list[ScoredPair]:
    """Predictions as pairs with per-field evidence: agreement level and weight (log2 BF,
    term-frequency adjustment included)."""
    levels = _levels(linker)
    pairs: list[ScoredPair] = []
    for row in predictions.to_dict("records"):
        evidence = []
        for name, output in FIELDS.items():
            factor = row.get(f"bf_{output}")
            if factor is None or not float(factor) > 0:
                continue
            weight = math.log2(float(factor))
            tf = row.get(f"bf_tf_adj_{output}")
            if tf is not None and float(tf) > 0:
                weight += math.log2(float(tf))
            agreement = _agreement(levels.get(output, []), float(factor))
            evidence.append(Evidence(name, agreement, round(weight, 3)))
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
