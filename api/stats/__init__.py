"""Statistics (SPEC §7): return rates, reuse, material flows and targets, rejects and
anomalies, each a module of functions reading the rollups; the endpoints under /v1/stats
(`routes`); the time limit of windows the rollups cannot answer whole (`time_limit`)."""

from api.stats.anomalies import duplicate_returns, seq_gaps
from api.stats.materials import material_rows, targets
from api.stats.rejects import rejects_by_reason
from api.stats.return_rates import Bucket, return_rate_rows, return_rates_json
from api.stats.reuse import DEFAULT_LOSS_AFTER_DAYS, reuse
from api.stats.time_limit import SlowWindow

__all__ = [
    "DEFAULT_LOSS_AFTER_DAYS",
    "Bucket",
    "SlowWindow",
    "duplicate_returns",
    "material_rows",
    "rejects_by_reason",
    "return_rate_rows",
    "return_rates_json",
    "reuse",
    "seq_gaps",
    "targets",
]
