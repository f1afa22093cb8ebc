"""Run one Soda Core (SodaCL) scan against PostgreSQL and write the outcome as JSON.

Meant to run under a separate venv that has soda-core-postgres (verified with 3.5.6):
  /work/soda-venv/bin/python bench/soda_runner.py \
      --dsn postgresql://postgres@127.0.0.1:5432/DBNAME --checks FILE.yaml --json OUT.json

Failed-row sampling is turned off so only the checks' own queries are timed:
  - global samples limit 0: no sample queries for missing/invalid/duplicate checks;
  - sampler.disable_samples: DefaultSampler, nothing stored or sent;
  - sampler.exclude_columns '*': ['*']: skips the extra "SELECT ... WHERE <fail condition>" that
    `failed rows` + `fail condition` checks otherwise run after a failure (costs one
    information_schema lookup per table). `--keep-failed-rows-query` turns this off.
A `fail query` check is still counted by fetching every row the query returns (Soda's design).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from decimal import Decimal
from urllib.parse import parse_qs, unquote, urlsplit

DATA_SOURCE = "caiwei"


def _quiet_telemetry() -> None:
    # Soda sends anonymous OpenTelemetry spans by default; switch it off in memory before soda.scan loads.
    os.environ.setdefault("OTEL_SDK_DISABLED", "true")
    from soda.common.config_helper import ConfigHelper

    ConfigHelper.get_instance().config["send_anonymous_usage_stats"] = False


def configuration(dsn: str, keep_failed_rows_query: bool = False) -> dict:
    """Soda data source configuration for a postgresql:// DSN."""
    url = urlsplit(dsn)
    if url.scheme not in ("postgres", "postgresql"):
        raise ValueError(f"not a PostgreSQL DSN: {dsn}")
    query = {k: v[-1] for k, v in parse_qs(url.query).items()}
    source = {
        "type": "postgres",
        "host": url.hostname or "127.0.0.1",
        "port": url.port or 5432,
        "username": unquote(url.username or "postgres"),
        "password": unquote(url.password or ""),
        "database": unquote(url.path.lstrip("/")) or "postgres",
        "schema": query.get("schema", "public"),
        "sampler": {"disable_samples": True},
    }
    if "sslmode" in query:
        source["sslmode"] = query["sslmode"]
    if not keep_failed_rows_query:
        source["sampler"]["exclude_columns"] = {"*": ["*"]}
    return {f"data_source {DATA_SOURCE}": source}


def _plain(value):
    # Metric values may be Decimal; keep JSON numeric.
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    return value


def run_scan(
    dsn: str, checks_yaml: str, checks_name: str = "checks.yaml", keep_failed_rows_query: bool = False
) -> dict:
    """Run one scan; return {"soda_version", "seconds", "checks", "exit_code", "errors"}."""
    _quiet_telemetry()
    from soda.__version__ import SODA_CORE_VERSION
    from soda.scan import Scan

    scan = Scan()
    scan.set_data_source_name(DATA_SOURCE)
    scan.disable_telemetry()
    # JSON is valid YAML, so no YAML writer is needed.
    scan.add_configuration_yaml_str(json.dumps(configuration(dsn, keep_failed_rows_query)))
    # YAML `samples_limit: 0` is ignored by the config parser (falsy), so set it here.
    scan._configuration.samples_limit = 0
    scan.add_sodacl_yaml_str(checks_yaml, file_name=checks_name)

    started = time.perf_counter()
    exit_code = scan.execute()
    seconds = time.perf_counter() - started

    checks = []
    # scan._checks also holds checks left unevaluated by a query error (get_scan_results drops those).
    for check in scan._checks:
        if check.archetype is not None:  # automated monitoring, not a SodaCL check
            continue
        if check.outcome is None:
            checks.append({"name": check.name, "outcome": None, "value": None})
            continue
        d = check.get_dict()
        checks.append(
            {
                "name": d.get("name"),
                "outcome": d.get("outcome"),  # "pass" / "fail" / "warn"
                "value": _plain((d.get("diagnostics") or {}).get("value")),
            }
        )
    return {
        "soda_version": SODA_CORE_VERSION,
        "seconds": seconds,
        "checks": checks,
        "exit_code": exit_code,  # Soda: 0 ok, 1 warn, 2 fail, 3 error
        "errors": [log.message for log in scan.get_error_logs()],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dsn", required=True, help="postgresql://user[:pw]@host:port/db[?schema=..]")
    parser.add_argument("--checks", required=True, help="SodaCL checks YAML file")
    parser.add_argument("--json", required=True, help="output JSON file")
    parser.add_argument(
        "--keep-failed-rows-query",
        action="store_true",
        help="let fail-condition checks run their follow-up failed-rows SELECT",
    )
    args = parser.parse_args(argv)

    with open(args.checks, encoding="utf-8") as f:
        checks_yaml = f.read()
    out = run_scan(args.dsn, checks_yaml, args.checks, args.keep_failed_rows_query)
    with open(args.json, "w", encoding="utf-8") as f:
        json.dump(out, f, ensure_ascii=False, indent=2, default=str)
    for err in out["errors"]:
        print(f"soda error: {err}", file=sys.stderr)
    # Non-zero only when Soda itself reported errors; failing checks are a normal result.
    return 1 if out["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
