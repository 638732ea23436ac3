"""Every table the migrations manage, imported in one place for Alembic and the tests."""

from api import apikeys  # noqa: F401
from core.db import metadata
from graph import models as graph_models  # noqa: F401
from graph.resolution import models as resolution_models  # noqa: F401
from loyalty import models as loyalty_models  # noqa: F401
from privacy import (
    breach_models,  # noqa: F401
    consent_models,  # noqa: F401
    erasure_models,  # noqa: F401
    export_models,  # noqa: F401
    request_models,  # noqa: F401
)
from privacy import models as privacy_models  # noqa: F401
from scoring import models as scoring_models  # noqa: F401

__all__ = ["metadata"]
