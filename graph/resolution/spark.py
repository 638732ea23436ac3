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
    except ImportError:
        raise graph_error(
            GraphErrorCode.INVALID_INPUT,
            "the Spark backend needs pyspark: pip install 'loyalgraph[spark]'",
        ) from None
    session = (
        SparkSession.builder.master(master)
        .appName(app_name)
        .config("spark.ui.enabled", "false")
        .config("spark.sql.shuffle.partitions", "8")
        .getOrCreate()
    )
    return SparkAPI(spark_session=session, break_lineage_method="persist")  # type: ignore[no-untyped-call]
