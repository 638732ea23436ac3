"""Splink's Spark backend, for a base one machine cannot hold (optional: `pip install
loyalgraph[spark]`). The comparisons, blocking, training and policy are the same objects as with
DuckDB; only the SQL engine changes.

Spark keeps data in executor memory and spills to its local directories under memory pressure:
on a cluster those directories must be on encrypted volumes (see docs/identity-resolution.md).
"""

from __future__ import annotations

from typing import Any

from graph.errors import GraphErrorCode, graph_error


def spark_api(master: str, *, app_name: str = "loyalgraph-identity") -> Any:
    """A SparkAPI on the given master; a clear error when pyspark is not installed."""
    try:
        from pyspark.sql import SparkSession
        from splink import SparkAPI
        from splink.backends.spark import similarity_jar_location
    except ImportError:
        raise graph_error(
            GraphErrorCode.INVALID_INPUT,
            "the Spark backend needs pyspark: pip install 'loyalgraph[spark]'",
        ) from None
    session = (
        SparkSession.builder.master(master)
        .appName(app_name)
        .config("spark.ui.enabled", "false")
        # Decrypted records may spill or be cached on local disk: encrypt Spark's local I/O.
        .config("spark.io.encryption.enabled", "true")
        # Splink's string-similarity UDFs (Jaro-Winkler, Damerau-Levenshtein) for Spark SQL.
        .config("spark.jars", similarity_jar_location())
        .config("spark.sql.shuffle.partitions", "8")
        .getOrCreate()
    )
    return SparkAPI(spark_session=session, break_lineage_method="persist")  # type: ignore[no-untyped-call]


def spark_frame(api: Any, records: list[dict[str, Any]]) -> Any:
    """The records as a Spark DataFrame with every column a string (as DuckDB sees them)."""
    from pyspark.sql.types import StringType, StructField, StructType

    from graph.resolution.features import COLUMNS

    schema = StructType([StructField(name, StringType(), True) for name in COLUMNS])
    rows = [tuple(record.get(name) for name in COLUMNS) for record in records]
    return api.spark.createDataFrame(rows, schema)


def spark_settings(chosen: Any) -> Any:
    """The same settings, keeping the matching columns in Spark's predictions: with them
    dropped, Splink 4's Spark SQL loses the columns its comparison levels read (it reads the
    double-quoted identifiers of the levels as strings). The columns stay in Spark's memory;
    `model.scored_pairs` reads only the Bayes factors."""
    if isinstance(chosen, dict):
        return {**chosen, "retain_matching_columns": True}
    chosen.retain_matching_columns = True
    return chosen
