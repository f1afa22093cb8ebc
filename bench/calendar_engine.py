"""Business-calendar engine speed: add/count business minutes vs the same number of plain timedelta adds."""

import random
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from caiwei.bizcalendar.engine import add_business_minutes, business_minutes_between, china_calendar  # noqa: E402


def main(n: int = 50000) -> None:
    tz = ZoneInfo("Asia/Shanghai")
    rng = random.Random(7)
    spec = china_calendar()
    base = datetime(2026, 1, 1, tzinfo=tz)
    starts = [base + timedelta(minutes=rng.randrange(0, 365 * 24 * 60)) for _ in range(n)]
    minutes = [rng.choice([10, 30, 120, 3 * 7 * 60, 10 * 7 * 60]) for _ in range(n)]

    started = time.perf_counter()
    plain = [s + timedelta(minutes=m) for s, m in zip(starts, minutes, strict=True)]
    bare = time.perf_counter() - started

    started = time.perf_counter()
    dues = [add_business_minutes(spec, s, m) for s, m in zip(starts, minutes, strict=True)]
    add = time.perf_counter() - started

    started = time.perf_counter()
    for s, d in zip(starts, dues, strict=True):
        business_minutes_between(spec, s, d)
    count = time.perf_counter() - started
    assert len(plain) == len(dues)
    print(f"调用次数：{n}（时限 10 分钟～10 个工作日）")
    print(
        f"add_business_minutes：{n / add:,.0f} 次/秒，单次 {add / n * 1e6:.1f} µs；"
        f"基线 datetime+timedelta {bare / n * 1e6:.2f} µs；比值 {add / bare:.0f}"
    )
    print(
        f"business_minutes_between：{n / count:,.0f} 次/秒，单次 {count / n * 1e6:.1f} µs；比值 {count / bare:.0f}"
    )


if __name__ == "__main__":
    main()
