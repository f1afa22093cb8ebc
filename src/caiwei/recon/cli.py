"""``caiwei recon diff``: the cross-database table diff from the command line (plain SQLAlchemy, no Django).

``main(argv)`` takes the arguments after ``recon``; ``add_arguments(parser)`` fills an argparse parser (also Django's,
for a management command later). Exit status as diff(1): 0 identical, 1 differences, 2 error.
"""

from __future__ import annotations

import argparse
import io
import json
import sys

from sqlalchemy.exc import SQLAlchemyError

from .diff import DiffError, diff_tables


def add_arguments(parser: argparse.ArgumentParser) -> None:
    ops = parser.add_subparsers(dest="op", required=True, metavar="diff")
    add_diff_arguments(
        ops.add_parser("diff", help="比较两个库中的同一张表（校验和下推、只对不同的键区间二分）")
    )


def add_diff_arguments(diff: argparse.ArgumentParser) -> None:
    """The options of ``diff`` (also used by the ``recon`` management command beside ``run``)."""
    diff.add_argument(
        "--left", required=True, help="左侧数据库 URL（postgresql://、mysql://、sqlite:///、oracle://）"
    )
    diff.add_argument("--right", required=True, help="右侧数据库 URL")
    diff.add_argument("--table", required=True, help="表名（可写作 模式.表名）")
    diff.add_argument("--right-table", help="右侧表名（默认与左侧相同）")
    diff.add_argument("--key", help="键列，逗号分隔（默认取左侧表的主键）")
    diff.add_argument("--columns", nargs="+", help="只比较这些列（空格或逗号分隔；默认两边共有的全部列）")
    diff.add_argument(
        "--threshold", type=int, default=1000, help="一段不超过这么多行时取回逐行比较（默认 1000）"
    )
    diff.add_argument("--factor", type=int, default=8, help="一段至少切成几段（默认 8）")
    diff.add_argument("--max-buckets", type=int, default=1024, help="一段最多切成几段（默认 1024）")
    diff.add_argument("--json", action="store_true", help="以 JSON 输出")


def split_names(values: list[str] | str | None) -> list[str] | None:
    if not values:
        return None
    if isinstance(values, str):
        values = [values]
    names = [n.strip() for v in values for n in v.split(",") if n.strip()]
    return names or None


def run(options: dict, out=None, err=None) -> int:
    """Run ``recon diff`` with parsed options (argparse or Django's); returns the exit status."""
    out, err = out or sys.stdout, err or sys.stderr
    try:
        result = diff_tables(
            options["left"],
            options["right"],
            options["table"],
            right_table=options.get("right_table"),
            key=split_names(options.get("key")),
            columns=split_names(options.get("columns")),
            threshold=options.get("threshold") or 1000,
            factor=options.get("factor") or 8,
            max_buckets=options.get("max_buckets") or 1024,
        )
    except DiffError as exc:
        err.write(f"错误：{exc}\n")
        return 2
    except SQLAlchemyError as exc:
        err.write(f"数据库错误：{getattr(exc, 'orig', None) or exc}\n")
        return 2
    if options.get("json"):
        out.write(json.dumps(result.as_dict(), ensure_ascii=False, indent=2) + "\n")
    else:
        out.write(text_report(result.as_dict()))
    return 0 if result.identical else 1


def text_report(data: dict) -> str:
    """The result in Chinese, one finding a line (one string: Django's OutputWrapper ends every write with a newline)."""
    out = io.StringIO()

    def key(k):
        return "，".join(str(v) for v in k)

    def value(v):
        return "（空）" if v is None else f"“{v}”"

    s = data["stats"]
    out.write(
        f"表 {data['table']}：左侧 {data['rows']['left']} 行，右侧 {data['rows']['right']} 行；"
        f"键 {'、'.join(data['key'])}，比较 {len(data['columns'])} 列。\n"
    )
    if data["identical"]:
        out.write("两边一致。\n")
    for k in data["only_left"]:
        out.write(f"仅左侧有\t{key(k)}\n")
    for k in data["only_right"]:
        out.write(f"仅右侧有\t{key(k)}\n")
    for row in data["changed"]:
        cols = "；".join(f"{n}：{value(v['left'])} → {value(v['right'])}" for n, v in row["columns"].items())
        out.write(f"内容不同\t{key(row['key'])}\t{cols}\n")
    for side, name in (("left", "左侧"), ("right", "右侧")):
        for k in data["duplicates"][side]:
            out.write(f"{name}键重复\t{key(k)}\n")
    if data["columns_only_left"] or data["columns_only_right"]:
        out.write(
            f"未比较的列：仅左侧有 {'、'.join(data['columns_only_left']) or '无'}，"
            f"仅右侧有 {'、'.join(data['columns_only_right']) or '无'}\n"
        )
    out.write(
        f"取回 {s['fetched_left']} + {s['fetched_right']} 行逐行比较，校验和查询 {s['checksum_queries']} 次，"
        f"二分 {s['depth']} 层，用时 {s['seconds']} 秒。\n"
    )
    return out.getvalue()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="caiwei recon", description="对账：跨库表比对")
    add_arguments(parser)
    options = vars(parser.parse_args(argv))
    return run(options)


if __name__ == "__main__":
    sys.exit(main())
