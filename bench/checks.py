"""Data-check engine on PostgreSQL: the 41 shipped rules over at least 5 000 000 payment vouchers, against baselines
measured in the same run.

1. Caiwei, whole pack, counts only, against the same rules' SQL run bare (COUNT(*) over each rule's own SQL, one
   connection, one after another, plain SQLAlchemy/psycopg); the counts must agree rule by rule.
2. Caiwei, whole pack, with keys and samples (default caps), against the same bare baseline.
3. Soda Core (SodaCL) scan of the equivalent checks, generated from the rules into bench/soda_checks.yaml and run by
   bench/soda_runner.py under its own venv; Caiwei counts-only time over Soda's scan time.
4. Peak memory of each of these processes: VmHWM from /proc/self/status, read by the process itself at its end.
   (ru_maxrss is no good here: Linux carries the parent's resident size over fork+exec into the child's ru_maxrss,
   so every child would report at least this script's own size.)

Every measurement runs in its own child process (this script with --child), so each has its own peak memory and
none pays for another's imports. An untimed bare pass warms the cache first; the bare baseline runs once before and
once after the other measurements and its mean is the baseline.
"""

import argparse
import json
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

import psycopg  # noqa: E402
import sqlalchemy as sa  # noqa: E402
import sqlglot  # noqa: E402
import yaml  # noqa: E402
from sqlalchemy.pool import NullPool  # noqa: E402
from sqlglot import exp  # noqa: E402

from caiwei.checks.engine import select_rules, shipped_packs  # noqa: E402
from caiwei.checks.runner import Options, logical_columns, run_url  # noqa: E402
from caiwei.checks.sqlplan import bare_count, count_queries, plan  # noqa: E402

AS_OF = date(2026, 12, 31)
PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
SODA_VENV = Path("/work/soda-venv")
SODA_VERSION = "3.5.6"
SODA_YAML = ROOT / "bench" / "soda_checks.yaml"
TIMEOUT_S = 3600


def sa_url(db: str) -> str:
    return f"postgresql+psycopg://postgres@127.0.0.1:5432/{db}"


def dsn(db: str) -> str:
    return f"postgresql://postgres@127.0.0.1:5432/{db}"


def planned_rules() -> list:
    # Planned exactly as the runner plans them (no scope, no mapping).
    return [plan(rule, as_of=AS_OF, known=logical_columns()) for rule in select_rules("all")]


# --- data -------------------------------------------------------------------------------------------------------


def voucher_rows(db: str) -> int:
    """Rows in pay_voucher_bill, or -1 when the database or the table is missing."""
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (db,)).fetchone() is None:
            return -1
    with psycopg.connect(dsn(db), autocommit=True) as conn:
        if conn.execute("SELECT to_regclass('public.pay_voucher_bill')").fetchone()[0] is None:
            return -1
        return conn.execute("SELECT COUNT(*) FROM pay_voucher_bill").fetchone()[0]


def prepare(db: str, payments: int, reuse: bool) -> str:
    """Generate the sandbox (or reuse it); return a line describing what was done."""
    if reuse:
        rows = voucher_rows(db)
        if rows >= payments:
            return f"复用已有数据（pay_voucher_bill {rows:,} 行，未重新生成）"
        print(f"数据库 {db} 中的支付凭证不足 {payments:,} 张（现有 {max(rows, 0):,}），重新生成", flush=True)
    from caiwei.sandbox.generator import GenerateSpec, generate, parse_faults

    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{db}"')
        conn.execute(f'CREATE DATABASE "{db}"')
    print(f"正在生成 {payments:,} 张支付凭证……", flush=True)
    started = time.perf_counter()
    generate(sa_url(db), GenerateSpec(payments=payments, seed=1, faults=parse_faults("all=3")))
    gen_time = time.perf_counter() - started
    started = time.perf_counter()
    with psycopg.connect(dsn(db), autocommit=True) as conn:
        conn.execute("ANALYZE")
    return f"新生成（用时 {gen_time:.0f} 秒，ANALYZE {time.perf_counter() - started:.0f} 秒）"


# --- children: each measurement in its own process --------------------------------------------------------------


def status_mb(field: str) -> float:
    """A memory field of /proc/self/status (VmRSS: now, VmHWM: peak of this process image) in MB."""
    with open("/proc/self/status", encoding="ascii") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    return 0.0


def rss_mb() -> float:
    return status_mb("VmRSS")


# Runs bench/soda_runner.py in the Soda venv and writes that process's peak RSS (VmHWM, kB) to argv[1].
SODA_WRAPPER = """
import runpy, sys
peak_file = sys.argv[1]
sys.argv = sys.argv[2:]
try:
    runpy.run_path(sys.argv[0], run_name="__main__")
finally:
    with open("/proc/self/status") as f:
        peak = next(line.split()[1] for line in f if line.startswith("VmHWM:"))
    with open(peak_file, "w") as f:
        f.write(peak)
"""


def child_bare(db: str) -> dict:
    planned = planned_rules()
    statements = [(p.rule.id, sa.text(bare_count(p, "postgresql")), p.params) for p in planned]
    rss_before = rss_mb()
    counts, seconds = {}, {}
    started = time.perf_counter()
    engine = sa.create_engine(sa_url(db), poolclass=NullPool)
    with engine.connect() as conn:
        for rule_id, statement, params in statements:
            t0 = time.perf_counter()
            counts[rule_id] = conn.execute(statement, params).scalar_one()
            seconds[rule_id] = time.perf_counter() - t0
    engine.dispose()
    total = time.perf_counter() - started
    return {
        "seconds": total,
        "counts": counts,
        "rule_seconds": seconds,
        "errors": {},
        "rss_before_mb": rss_before,
    }


def child_caiwei(db: str, sample: bool) -> dict:
    rules = select_rules("all")
    rss_before = rss_mb()
    started = time.perf_counter()
    outcomes = run_url(sa_url(db), rules, Options(as_of=AS_OF, sample=sample, timeout_s=TIMEOUT_S))
    total = time.perf_counter() - started
    return {
        "seconds": total,
        "counts": {o.rule.id: o.count for o in outcomes},
        "rule_seconds": {o.rule.id: o.seconds for o in outcomes},
        "errors": {o.rule.id: o.error for o in outcomes if o.error},
        "keys": sum(len(o.keys) for o in outcomes),
        "samples": sum(len(o.sample) for o in outcomes),
        "rss_before_mb": rss_before,
    }


def run_child(command: list[str], out: Path) -> dict:
    """Run a child process to completion and return the JSON it wrote."""
    code = subprocess.run(command, cwd=ROOT).returncode
    if code != 0 and not out.exists():
        sys.exit(f"子进程失败（退出码 {code}）：{' '.join(command)}")
    return json.loads(out.read_text(encoding="utf-8"))


def measure(mode: str, db: str, tmp: Path) -> tuple[dict, float]:
    """One measurement in a child process: its result and its peak RSS in MB."""
    out = tmp / f"{mode}-{time.monotonic_ns()}.json"
    result = run_child(
        [sys.executable, str(Path(__file__).resolve()), "--child", mode, "--db", db, "--out", str(out)], out
    )
    return result, result["peak_mb"]


# --- Soda -------------------------------------------------------------------------------------------------------


def single_table_condition(p) -> tuple[str, str] | None:
    """(table, condition without table qualifiers) when the rule is one table filtered by its WHERE, else None."""
    tree = sqlglot.parse_one(p.listing("postgresql"), read="postgres")
    source = tree.args.get("from_")
    if (
        source is None
        or not isinstance(source.this, exp.Table)
        or tree.args.get("joins")
        or not tree.args.get("where")
        or any(
            tree.args.get(k) for k in ("group", "having", "distinct", "limit", "offset", "with", "qualify")
        )
        or tree.args["where"].find(exp.Subquery, exp.Select)
        or any(node.find(exp.AggFunc, exp.Window) for node in tree.expressions)
    ):
        return None
    condition = tree.args["where"].this.copy()
    for column in condition.find_all(exp.Column):
        column.set("table", None)
    return source.this.name, condition.sql(dialect="postgres")


class _Dumper(yaml.SafeDumper):
    pass


_Dumper.add_representer(
    str,
    lambda dumper, value: dumper.represent_scalar(
        "tag:yaml.org,2002:str", value, style="|" if "\n" in value else None
    ),
)


def soda_checks(planned: list) -> tuple[str, int, int]:
    """SodaCL for the rules: one `failed rows` check per rule (named by rule id) under the rule's main table."""
    by_table: dict[str, list] = {}
    conditions = queries = 0
    for p in planned:
        single = single_table_condition(p)
        if single:
            table, condition = single
            check = {"name": p.rule.id, "fail condition": condition}
            conditions += 1
        else:
            table = sqlglot.parse_one(p.rule.sql, read="postgres").args["from_"].this.name
            check = {"name": p.rule.id, "fail query": p.listing("postgresql") + "\n"}
            queries += 1
        by_table.setdefault(table, []).append({"failed rows": check})
    header = (
        "# Generated by bench/checks.py from the 41 shipped rules (as-of date 2026-12-31); do not edit by hand.\n"
        "# Single-table rules are `fail condition` checks (Soda counts them per table in one aggregate query);\n"
        "# the rest are `fail query` checks with the rule's SQL and its parameters written in.\n"
    )
    body = yaml.dump(
        {f"checks for {t}": checks for t, checks in by_table.items()},
        Dumper=_Dumper,
        allow_unicode=True,
        sort_keys=False,
        width=10_000,
    )
    return header + body, conditions, queries


def ensure_soda() -> Path:
    python = SODA_VENV / "bin" / "python"
    if not python.exists():
        print(f"未找到 {SODA_VENV}，正在创建并安装 soda-core-postgres=={SODA_VERSION}……", flush=True)
        subprocess.run(["python3", "-m", "venv", str(SODA_VENV)], check=True)
        subprocess.run(
            [str(SODA_VENV / "bin" / "pip"), "install", "-q", f"soda-core-postgres=={SODA_VERSION}"],
            check=True,
        )
    return python


def run_soda(db: str, tmp: Path) -> tuple[dict, float, float]:
    """Soda result JSON, peak RSS (MB) and wall-clock seconds of the whole soda_runner process."""
    python = ensure_soda()
    out, peak_file = tmp / "soda.json", tmp / "soda-peak.txt"
    started = time.perf_counter()
    result = run_child(
        [
            str(python),
            "-c",
            SODA_WRAPPER,
            str(peak_file),
            str(ROOT / "bench" / "soda_runner.py"),
            "--dsn",
            dsn(db),
            "--checks",
            str(SODA_YAML),
            "--json",
            str(out),
        ],
        out,
    )
    return result, int(peak_file.read_text()) / 1024, time.perf_counter() - started


# --- report -----------------------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--payments", type=int, default=5_000_000)
    parser.add_argument("--db", default="caiwei_bench_checks")
    parser.add_argument(
        "--reuse", action="store_true", help="不重新生成：库中 pay_voucher_bill 已有足够行数时直接用"
    )
    parser.add_argument("--skip-soda", action="store_true")
    parser.add_argument("--per-rule", action="store_true", help="另外逐条打印规则的计数与用时")
    parser.add_argument(
        "--quick", action="store_true", help="省去预热与含样本两遍（时间紧时只量仅计数、Soda 与两次裸 SQL）"
    )
    parser.add_argument("--child", choices=["bare", "count", "sample"], help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.child:
        result = (
            child_bare(args.db) if args.child == "bare" else child_caiwei(args.db, args.child == "sample")
        )
        result["peak_mb"] = status_mb("VmHWM")
        Path(args.out).write_text(json.dumps(result, ensure_ascii=False, default=str), encoding="utf-8")
        return

    data = prepare(args.db, args.payments, args.reuse)
    with psycopg.connect(dsn(args.db)) as conn:
        version = conn.execute("SHOW server_version").fetchone()[0].split()[0]
        payments = conn.execute("SELECT COUNT(*) FROM pay_voucher_bill").fetchone()[0]
    planned = planned_rules()
    ids = [p.rule.id for p in planned]
    groups = count_queries(planned, "postgresql")
    yaml_text, n_condition, n_query = soda_checks(planned)
    SODA_YAML.write_text(yaml_text, encoding="utf-8")

    print(f"数据检查引擎基准：PostgreSQL {version}，库 {args.db}，支付凭证 {payments:,} 张，{data}")
    print(
        f"规则 {len(ids)} 条（{len(shipped_packs())} 个规则包），检查日 {AS_OF}；"
        f"Caiwei 把同一数据源的规则合并后共 {len(groups)} 条计数查询"
    )
    soda_step = "" if args.skip_soda else " → Soda"
    print(
        (
            "顺序（--quick，无预热与含样本）：裸 SQL"
            if args.quick
            else "顺序：裸 SQL 预热一遍（不计时）→ 裸 SQL"
        )
        + f" → Caiwei 仅计数{soda_step}"
        + ("" if args.quick else " → Caiwei 含样本")
        + " → 裸 SQL；"
        "基线取两次裸 SQL 的平均；每项各在一个子进程中运行",
        flush=True,
    )

    with tempfile.TemporaryDirectory(prefix="caiwei-bench-checks-") as tmp:
        report(args, ids, groups, n_condition, n_query, Path(tmp))


def report(args, ids: list[str], groups: list, n_condition: int, n_query: int, tmp: Path) -> None:
    """Run the measurements (children write their results under ``tmp``) and print them."""
    if not args.quick:
        measure("bare", args.db, tmp)  # warm-up: cache, hint bits; not timed
    bare1, bare1_rss = measure("bare", args.db, tmp)
    print(f"（进度）裸 SQL 第一次 {bare1['seconds']:.1f} 秒", flush=True)
    count, count_rss = measure("count", args.db, tmp)
    print(f"（进度）Caiwei 仅计数 {count['seconds']:.1f} 秒", flush=True)
    soda = None
    if not args.skip_soda:
        soda, soda_rss, soda_wall = run_soda(args.db, tmp)
        print(f"（进度）Soda {soda['seconds']:.1f} 秒", flush=True)
    sample, sample_rss = (None, 0.0) if args.quick else measure("sample", args.db, tmp)
    bare2, bare2_rss = measure("bare", args.db, tmp)

    if bare1["counts"] != bare2["counts"]:
        sys.exit("两次裸 SQL 的计数不同，数据在运行中被改动？")
    bare_counts = bare1["counts"]
    baseline = (bare1["seconds"] + bare2["seconds"]) / 2
    bare_rule = {i: (bare1["rule_seconds"][i] + bare2["rule_seconds"][i]) / 2 for i in ids}
    failing = sum(1 for i in ids if bare_counts[i])
    print(
        f"基线（同样规则的 SQL 逐条裸跑 COUNT(*)，一个连接，顺序执行）：{bare1['seconds']:.1f} 秒、"
        f"{bare2['seconds']:.1f} 秒，平均 {baseline:.1f} 秒；{failing} 条规则有失败行"
    )
    print("测量                          用时（秒）  比值")
    ratio = count["seconds"] / baseline
    verdict = "达到" if ratio <= 1.1 else "未达到"
    print(
        f"1. Caiwei 全包，仅计数        {count['seconds']:>9.1f}  {ratio:.2f}（Caiwei/裸 SQL，目标 ≤ 1.10，{verdict}）"
    )
    if sample:
        print(
            f"2. Caiwei 全包，含主键与样本  {sample['seconds']:>9.1f}  {sample['seconds'] / baseline:.2f}（Caiwei/裸 SQL；"
            f"取回主键 {sample['keys']:,} 个、样本 {sample['samples']:,} 行）"
        )
    if soda:
        print(
            f"3. Soda Core {soda['soda_version']} 扫描        {soda['seconds']:>9.1f}  "
            f"{count['seconds'] / soda['seconds']:.2f}（Caiwei 仅计数/Soda；Soda 进程含启动共 {soda_wall:.1f} 秒）"
        )

    for label, run in (("仅计数", count), ("含样本", sample)):
        if run is None:
            continue
        differ = [i for i in ids if run["counts"][i] != bare_counts[i]]
        errors = run["errors"]
        if differ or errors:
            detail = "；".join(
                [f"{i} Caiwei {run['counts'][i]} / 裸 {bare_counts[i]}" for i in differ]
                + [f"{i} 出错：{e}" for i, e in errors.items()]
            )
            print(f"计数核对（{label}）：{len(differ)} 条与裸 SQL 不一致，{len(errors)} 条出错：{detail}")
        else:
            print(f"计数核对（{label}）：{len(ids)} 条规则的失败行数与裸 SQL 逐条一致，无错误")

    if soda:
        results = {c["name"]: c for c in soda["checks"]}
        missing = [i for i in ids if i not in results]
        outcome_differ = [
            i for i in ids if i in results and (results[i]["outcome"] == "fail") != (bare_counts[i] > 0)
        ]
        value_differ = [i for i in ids if i in results and results[i]["value"] != bare_counts[i]]
        agree = len(ids) - len(missing) - len(outcome_differ)
        print(
            f"Soda：{len(results)}/{len(ids)} 条规则可表达（{n_condition} 条 fail condition、{n_query} 条 fail query，"
            f"见 bench/soda_checks.yaml）；结果（有失败行即 fail）{agree} 条与 Caiwei 一致"
            + (f"，不一致 {'、'.join(outcome_differ)}" if outcome_differ else "")
            + (f"，缺少 {'、'.join(missing)}" if missing else "")
            + ("；失败行数逐条一致" if not value_differ else f"；失败行数不同 {'、'.join(value_differ)}")
        )
        for err in soda["errors"]:
            print(f"  Soda 报错：{err[:200]}")

    bare_rss = max(bare1_rss, bare2_rss)
    soda_part = f"，Soda 进程 {soda_rss:.0f} MB" if soda else ""
    before = [r["rss_before_mb"] for r in (bare1, count, sample) if r]
    print(
        f"峰值内存（各进程自己的 VmHWM）：裸 SQL 进程 {bare_rss:.0f} MB，Caiwei 仅计数 {count_rss:.0f} MB，"
        f"Caiwei 含样本 {sample_rss:.0f} MB{soda_part}（其中导入模块后、计时开始前约 {min(before):.0f}–"
        f"{max(before):.0f} MB）"
    )

    # Per counting query: Caiwei's time against the bare times of the rules it covers (one scan for a group).
    rows = []
    for query in groups:
        members = [p.rule.id for p in query.rules]
        mine = sum(count["rule_seconds"][i] for i in members)
        theirs = sum(bare_rule[i] for i in members)
        rows.append((mine - theirs, members, mine, theirs))
    combined = [r for r in rows if len(r[1]) > 1]
    saved = sum(r[3] - r[2] for r in combined)
    print(
        f"合并扫描：{len(combined)} 组共 {sum(len(r[1]) for r in combined)} 条规则，"
        f"比逐条裸跑共省 {saved:.1f} 秒；单独计数的 {len(rows) - len(combined)} 条共差 "
        f"{sum(r[2] - r[3] for r in rows if len(r[1]) == 1):+.1f} 秒"
    )
    slower = sorted((r for r in rows if r[0] > 0.05 and r[2] > 1.1 * r[3]), reverse=True)[:4]
    if slower:
        print("比裸 SQL 慢的计数查询（Caiwei 秒 / 同样规则裸跑秒）：")
        for _, members, mine, theirs in slower:
            print(f"  {'、'.join(members)}：{mine:.1f} / {theirs:.1f}")

    if args.per_rule:
        print("规则          裸 SQL 计数  裸 SQL 秒  Caiwei 秒（合并查询按条均摊）  含样本秒")
        for i in ids:
            print(
                f"{i:12}  {bare_counts[i]:>11,}  {bare_rule[i]:>8.2f}  {count['rule_seconds'][i]:>8.2f}"
                f"  {sample['rule_seconds'][i] if sample else float('nan'):>8.2f}"
            )


if __name__ == "__main__":
    main()
