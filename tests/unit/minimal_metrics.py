"""A metrics.json as small as the schema allows, for tests of what reads bundles (baselines, doc tables).

Built here rather than by a run so a test can set each figure; held to hil/report/metrics.schema.json
so it cannot drift from what `hil run` writes.
"""

from __future__ import annotations

import json
from typing import Any

import jsonschema

from hil.report.bundle import schema_path
from hil.report.environment import host_identity

SCHEMA = json.loads(schema_path().read_text())


def minimal_metrics(
    target: str, models: dict[str, dict[str, Any]], device: dict[str, Any], *, complete: bool = True
) -> dict[str, Any]:
    """One passed pytest test on ``target`` with these per-model records; ``device`` is its devices[] entry."""
    metrics = {
        "schema": "tinyml-hil.metrics/2",
        "run_id": f"run-{target}",
        "complete": complete,
        "finished": "2026-11-30T10:00:00+00:00",
        "environment": {"host": host_identity(), "tools": {}, "suites": {}, "targets": {}},
        "targets": [target],
        "devices": [{"target": target, **device}],
        "summary": {"tests": 1, "passed": 1, "failed": 0, "skipped": 0},
        "tests": [{"framework": "pytest", "suite": "s", "test": "t", "target": target, "status": "PASS",
                   "models": models}],
    }  # fmt: skip
    jsonschema.validate(metrics, SCHEMA)
    return metrics
