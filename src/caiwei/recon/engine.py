"""Reconciliation engine 对账引擎: bank lines against the book's payment vouchers, and the central bank's clearing
lines against the vouchers they clear, matched and classified inside DuckDB (plain Python drives SQL; no side is ever
pulled into Python objects — only the breaks, which are few, come back).

Inputs are DuckDB tables in the normalised shape (see ``BANK_COLUMNS``, ``BOOK_COLUMNS``, ``CLEARING_COLUMNS``) and
the business days of the period. Matching, in order:
1. by business key: a bank line's 支付凭证号 (else its 银行流水号) names the voucher; several lines on one voucher are a
   split payment (一对多) and must sum to it exactly (or within the amount tolerance);
2. the lines and vouchers left: by amount + payee account + date within the window of T+n business days, only
   where the pair is unambiguous on both sides;
3. clearing: each PBOC clearing line covers the vouchers of its bank and clearing date (多对一): counts and sums agree;
4. the message link 报文链路 (table ``mq``, the journal of the messages sent and received, see ``MQ_COLUMNS``): per
   bank and direction the sequence numbers run without a hole (any number missing between the lowest and the highest
   seen is a gap) and without a repeat; each voucher sent has a receipt back (after ``receipt_minutes``), unless it went
   to the dead-letter queue, which is a break of its own.
What does not match is a break with a class a finance user understands (``BREAKS``).
"""

# ruff: noqa: S608  (the only values written into the SQL are the tolerance's ints and Decimal, and a fixed period)

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal

import duckdb

DUCKDB_MEMORY = (
    "1500MB"  # DuckDB's memory limit; beyond it, it spills to a temporary folder (peak memory bounded)
)

BANK_COLUMNS = (
    "line_id BIGINT",  # unique per loaded line
    "bank_code VARCHAR",
    "pay_cert_no VARCHAR",
    "agent_business_no VARCHAR",
    "pay_date DATE",
    "amount DECIMAL(18,2)",
    "payee_acct_no VARCHAR",
    "status VARCHAR",  # 成功 / 退票 / 失败; NULL where the layout has none (= 成功)
    "return_reason VARCHAR",
    "source VARCHAR",  # file name
    "line INTEGER",  # line in the file
)
BOOK_COLUMNS = (
    "vou_no VARCHAR",  # 支付凭证号, unique
    "bank_code VARCHAR",
    "agent_business_no VARCHAR",
    "vou_date DATE",
    "amount DECIMAL(18,2)",
    "payee_acct_no VARCHAR",
    "refunded BOOLEAN",  # a 退款 of the voucher is booked
    "lqd_date DATE",  # cleared with the central bank on
    "lqd_amount DECIMAL(18,2)",  # the amount cleared (what the bank actually paid)
)
CLEARING_COLUMNS = (
    "lqd_no VARCHAR",
    "bank_code VARCHAR",
    "lqd_date DATE",
    "vou_count INTEGER",
    "amount DECIMAL(18,2)",
)

MQ_COLUMNS = (
    "msg_id BIGINT",  # unique per loaded message
    "direction VARCHAR",  # voucher 凭证（财政→银行） / receipt 回单（银行→财政） / dead 死信（凭证进入死信队列）
    "bank_code VARCHAR",
    "seq BIGINT",  # the link's own sequence number (message header)
    "vt_code VARCHAR",
    "pay_cert_no VARCHAR",
    "sent_at TIMESTAMP",  # UTC
    "source VARCHAR",  # journal file name
    "line INTEGER",  # line in the journal
)
MQ_DIRECTIONS = {"voucher": "凭证报文", "receipt": "回单报文", "dead": "死信"}

# Break classes: code → what a finance user reads.
BREAKS = {
    "bank_only": "仅银行有：银行文件中有这笔，我方没有对应的支付凭证",
    "book_only": "仅我方有：支付凭证已超过到账窗口，银行文件中仍没有",
    "amount": "金额不符：银行金额与凭证金额不一致",
    "date": "日期超出窗口：银行交易日期不在凭证日期起 T+n 个工作日内",
    "bank_duplicate": "银行重复：同一凭证在银行文件中出现多次且每笔都是全额",
    "book_duplicate": "我方重复：两张凭证登记了同一银行流水号",
    "status": "状态不符：银行退票或失败，我方仍为已支付（未登记退款）",
    "clearing_amount": "清算金额不符：人民银行清算金额与所清算凭证合计不一致",
    "clearing_count": "清算笔数不符：人民银行清算笔数与所清算凭证张数不一致",
    "clearing_only": "仅清算有：人民银行清算了，我方没有这一天这家银行已清算的凭证",
    "clearing_missing": "清算缺失：我方凭证已清算，人民银行清算文件中没有这一天这家银行的清算",
    "mq_seq_gap": "序号缺失：报文链路的序号中间缺号，缺的报文没有收发记录",
    "mq_seq_duplicate": "序号重复：报文链路的同一序号出现多次",
    "mq_receipt_missing": "回单缺失：已发送的支付凭证超过等待时间仍没有银行回单",
    "mq_dead_letter": "进入死信：支付凭证报文被拒收，进入死信队列，没有回单",
}


@dataclass(frozen=True)
class Tolerance:
    """Tolerance rules as data: the T+n window in business days and the amount difference accepted as equal."""

    date_window: int = 1
    amount: Decimal = Decimal("0.00")
    transit_days: int = 10  # business days a voucher may be unseen at the bank before it is a break (在途)
    receipt_minutes: int = 30  # minutes a voucher message may wait for its receipt before it is a break

    @classmethod
    def from_dict(cls, data: dict | None) -> Tolerance:
        data = data or {}
        window = data.get("date_window", 1)
        amount = Decimal(str(data.get("amount", "0")))
        if not isinstance(window, int) or isinstance(window, bool) or not 0 <= window <= 30:
            raise ValueError("日期窗口（date_window）应为 0–30 个工作日")
        if amount < 0 or amount.as_tuple().exponent < -2:
            raise ValueError("金额容差（amount）应为不小于 0、至多两位小数的金额")
        transit = data.get("transit_days", 10)
        if not isinstance(transit, int) or isinstance(transit, bool) or not 0 <= transit <= 60:
            raise ValueError("在途天数（transit_days）应为 0–60 个工作日")
        wait = data.get("receipt_minutes", 30)
        if not isinstance(wait, int) or isinstance(wait, bool) or not 0 <= wait <= 10080:
            raise ValueError("回单等待时间（receipt_minutes）应为 0–10080 分钟")
        return cls(window, amount, transit, wait)


@dataclass
class Result:
    matched_by_key: int = 0
    matched_by_attributes: int = 0
    split_vouchers: int = 0  # vouchers paid in more than one bank line
    in_transit: int = 0  # vouchers not yet in a bank file but still inside their window
    cleared_lines: int = 0
    mq_receipted: int = 0  # voucher messages with their receipt
    mq_in_transit: int = 0  # voucher messages still inside the receipt wait
    breaks: list[dict] = field(default_factory=list)

    def by_class(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for b in self.breaks:
            out[b["kind"]] = out.get(b["kind"], 0) + 1
        return out


def create_inputs(con: duckdb.DuckDBPyConnection) -> None:
    """Empty input tables bank, book, clearing, mq in the normalised shape."""
    con.execute(f"CREATE OR REPLACE TABLE bank ({', '.join(BANK_COLUMNS)})")
    con.execute(f"CREATE OR REPLACE TABLE book ({', '.join(BOOK_COLUMNS)})")
    con.execute(f"CREATE OR REPLACE TABLE clearing ({', '.join(CLEARING_COLUMNS)})")
    con.execute(f"CREATE OR REPLACE TABLE mq ({', '.join(MQ_COLUMNS)})")


def load_business_days(con: duckdb.DuckDBPyConnection, days: Iterable[date]) -> None:
    """The business days of the period and a little around it, numbered in order (T+n is a difference of numbers).
    A calendar day that is not a business day takes the number of the next business day."""
    ordered = sorted(set(days))
    con.execute("CREATE OR REPLACE TABLE bizday (day DATE PRIMARY KEY, n INTEGER)")
    if ordered:
        con.executemany("INSERT INTO bizday VALUES (?, ?)", [(d, i) for i, d in enumerate(ordered)])
    # Every calendar day → the number of the first business day on or after it.
    con.execute(
        """
        CREATE OR REPLACE TABLE dayno AS
        SELECT c.day::DATE AS day, min(b.n) AS n
        FROM (SELECT unnest(generate_series((SELECT min(day) FROM bizday) - INTERVAL 40 DAY,
                                            (SELECT max(day) FROM bizday), INTERVAL 1 DAY)) AS day) c
        JOIN bizday b ON b.day >= c.day
        GROUP BY c.day
        """
    )


def reconcile(
    con: duckdb.DuckDBPyConnection,
    tolerance: Tolerance,
    as_of: date,
    clearing_period: str = "day",
    break_limit: int = 100_000,
    mq_now: datetime | None = None,
) -> Result:
    """Match bank to book and clearing to book in ``con`` (tables bank, book, clearing, bizday/dayno) and check the
    message link (table mq); the breaks come back with their lines (bank line ids), messages (mq ids) and vouchers.
    ``clearing_period`` "month": each clearing line is a month's total of a bank (its lqd_date the first of the
    month), as in the central bank's monthly file. ``mq_now`` (UTC): the time the receipt wait is counted back from;
    by default the last message of the journal."""
    tol, window = f"{Decimal(tolerance.amount):.2f}", int(tolerance.date_window)
    transit = int(tolerance.transit_days)
    period = {"day": "lqd_date", "month": "date_trunc('month', lqd_date)::DATE"}[clearing_period]
    result = Result()
    run = con.execute

    # 1. By business key, in one grouped pass like the plainest comparison: the bank side summed per 支付凭证号, full
    # join to the book. Lines whose 支付凭证号 names no voucher are then looked up by 银行流水号 (few), and their sums
    # folded into the vouchers they name.
    def kind_case(first_n: str, last_n: str) -> str:
        """The break class of a voucher with bank lines (NULL: it matches); ``first_n``/``last_n`` give the business
        day numbers of its first and last bank line."""
        return f"""
               CASE
                 WHEN vou_no IS NULL OR n_lines IS NULL THEN NULL
                 WHEN n_lines > 1 AND min_amount = book_amount AND max_amount = book_amount AND NOT coalesce(has_return, FALSE)
                   THEN 'bank_duplicate'
                 WHEN has_return AND NOT refunded THEN 'status'
                 WHEN has_return AND refunded AND n_ok = 0 THEN NULL
                 WHEN abs(ok_amount - book_amount) > {tol} THEN 'amount'
                 WHEN {first_n} < book_n OR {last_n} - book_n > {window} THEN 'date'
               END"""

    # A line is paid unless the bank says 退票 or 失败 (NULL: the layout has no status).
    aggregates = """count(*) AS n_lines, count(*) - count(*) FILTER (WHERE {returned}) AS n_ok,
                   sum(amount) - coalesce(sum(amount) FILTER (WHERE {returned}), 0) AS ok_amount,
                   sum(amount) AS bank_amount, min(amount) AS min_amount, max(amount) AS max_amount,
                   bool_or({returned}) AS has_return, min(pay_date) AS first_day, max(pay_date) AS last_day"""
    returned = "status IN ('退票', '失败')"

    def voucher_sides(book: str, bank: str, keep: str) -> str:
        """Each voucher of ``book`` beside the grouped lines of ``bank`` that name it (and each 支付凭证号 naming
        none), the rows that ``keep`` selects, with their business day numbers and break class."""
        return f"""
            SELECT *, {kind_case("first_n", "last_n")} AS kind FROM (
                SELECT j.*, dv.n AS book_n, df.n AS first_n, dl.n AS last_n FROM (
                    SELECT v.vou_no, v.vou_date, v.amount AS book_amount, v.refunded, s.* EXCLUDE (key),
                           s.key AS orphan
                    FROM {book} v
                    FULL JOIN (SELECT pay_cert_no AS key, {aggregates.format(returned=returned)}
                               FROM {bank} GROUP BY pay_cert_no) s ON s.key = v.vou_no
                ) j
                LEFT JOIN dayno dv ON dv.day = j.vou_date
                LEFT JOIN dayno df ON df.day = j.first_day LEFT JOIN dayno dl ON dl.day = j.last_day
                WHERE {keep}
            )"""

    # One pass over both sides like the plainest comparison, keeping only the vouchers that may not match: no lines,
    # lines naming no voucher, several lines, a 退票/失败 line, an amount that differs, or dates that may fall
    # outside the window (calendar days bound business days: a day number never grows faster than the calendar).
    # A voucher that matches exactly on one line is counted, not written (writing every row doubled the time).
    may_break = f"""vou_no IS NULL OR n_lines IS NULL OR n_lines > 1 OR has_return OR ok_amount <> book_amount
                    OR first_day < vou_date OR date_diff('day', vou_date, last_day) > {window}"""
    run(f"CREATE OR REPLACE TEMP TABLE keyed AS {voucher_sides('book', 'bank', may_break)}")
    run(
        """
        CREATE OR REPLACE TEMP TABLE by_serial AS
        SELECT b.line_id, min(v.vou_no) AS vou_no
        FROM bank b SEMI JOIN (SELECT orphan FROM keyed WHERE vou_no IS NULL) o ON o.orphan = b.pay_cert_no
        JOIN book v ON v.agent_business_no = b.agent_business_no
        WHERE b.agent_business_no <> ''
        GROUP BY b.line_id;
        """
    )
    run(
        f"""
        CREATE OR REPLACE TEMP TABLE side2 AS
        SELECT s.vou_no, {aggregates.format(returned="b.status IN ('退票', '失败')")}
        FROM by_serial s JOIN bank b ON b.line_id = s.line_id
        GROUP BY s.vou_no;
        """
    )
    # A voucher that matched cleanly by key but also has lines found by 银行流水号 joins the kept rows first.
    missing = "(SELECT vou_no FROM side2 ANTI JOIN keyed k ON k.vou_no = side2.vou_no)"
    run(
        "INSERT INTO keyed "
        + voucher_sides(
            f"(SELECT * FROM book WHERE vou_no IN {missing})",
            f"(SELECT * FROM bank WHERE pay_cert_no IN {missing})",
            "vou_no IS NOT NULL",
        )
    )
    run(
        f"""
        UPDATE keyed SET
            n_lines = coalesce(keyed.n_lines, 0) + x.n_lines, n_ok = coalesce(keyed.n_ok, 0) + x.n_ok,
            ok_amount = coalesce(keyed.ok_amount, 0) + x.ok_amount,
            bank_amount = coalesce(keyed.bank_amount, 0) + x.bank_amount,
            min_amount = least(keyed.min_amount, x.min_amount), max_amount = greatest(keyed.max_amount, x.max_amount),
            has_return = coalesce(keyed.has_return, FALSE) OR x.has_return,
            first_day = least(keyed.first_day, x.first_day), last_day = greatest(keyed.last_day, x.last_day)
        FROM side2 x WHERE keyed.vou_no = x.vou_no;
        UPDATE keyed SET kind = {kind_case("(SELECT n FROM dayno WHERE day = first_day)", "(SELECT n FROM dayno WHERE day = last_day)")}
        WHERE vou_no IN (SELECT vou_no FROM side2);
        """
    )
    run(
        """
        CREATE OR REPLACE TEMP TABLE link AS
        SELECT b.line_id, coalesce(k.vou_no, s.vou_no) AS vou_no
        FROM bank b
        LEFT JOIN (SELECT vou_no FROM keyed WHERE kind IS NOT NULL) k ON k.vou_no = b.pay_cert_no
        LEFT JOIN by_serial s ON s.line_id = b.line_id
        WHERE k.vou_no IS NOT NULL OR s.vou_no IS NOT NULL;
        """
    )
    # Book duplicates: two vouchers with one bank serial number.
    run(
        """
        CREATE OR REPLACE TEMP TABLE book_dup AS
        SELECT v.agent_business_no, list(v.vou_no ORDER BY v.vou_no) AS vous
        FROM book v
        SEMI JOIN (SELECT agent_business_no FROM book WHERE agent_business_no <> ''
                   GROUP BY agent_business_no HAVING count(*) > 1) d ON d.agent_business_no = v.agent_business_no
        GROUP BY v.agent_business_no
        """
    )
    run(
        """
        CREATE OR REPLACE TEMP TABLE brk (kind VARCHAR, vous VARCHAR[], lines BIGINT[],
                                          book_amount DECIMAL(18,2), bank_amount DECIMAL(18,2), note VARCHAR);
        INSERT INTO brk
        SELECT k.kind, [k.vou_no],
               (SELECT list(l.line_id ORDER BY l.line_id) FROM link l WHERE l.vou_no = k.vou_no),
               k.book_amount, k.bank_amount, NULL
        FROM keyed k WHERE k.kind IS NOT NULL;
        INSERT INTO brk
        SELECT 'book_duplicate', vous, NULL, NULL, NULL, agent_business_no FROM book_dup;
        CREATE OR REPLACE TEMP TABLE brk_vou AS SELECT DISTINCT unnest(vous) AS vou_no FROM brk;
        """
    )
    # Vouchers matched by key: every voucher of the book but those kept with no lines or with a break, and but those
    # a book-duplicate break names (whether kept or not).
    result.matched_by_key, result.split_vouchers = run(
        """
        SELECT (SELECT count(*) FROM book)
               - count(*) FILTER (WHERE n_lines IS NULL OR kind IS NOT NULL)
               - (SELECT count(*) FROM brk_vou x
                  WHERE NOT EXISTS (SELECT 1 FROM keyed k WHERE k.vou_no = x.vou_no
                                    AND (k.n_lines IS NULL OR k.kind IS NOT NULL))),
               count(*) FILTER (WHERE n_lines IS NOT NULL AND kind IS NULL AND n_ok > 1)
        FROM keyed WHERE vou_no IS NOT NULL
        """
    ).fetchone()
    # 2. By attributes: lines without a voucher and vouchers without a line, same payee account and amount (within
    # the tolerance), bank date within the window; a pair only where each side has exactly one candidate.
    run(
        f"""
        CREATE OR REPLACE TEMP TABLE loose AS
        SELECT b.* FROM bank b SEMI JOIN (SELECT orphan FROM keyed WHERE vou_no IS NULL) o ON o.orphan = b.pay_cert_no
        ANTI JOIN by_serial s ON s.line_id = b.line_id;
        CREATE OR REPLACE TEMP TABLE cand AS
        SELECT b.line_id, v.vou_no
        FROM loose b
        JOIN book v ON v.payee_acct_no = b.payee_acct_no AND abs(v.amount - b.amount) <= {tol}
        JOIN dayno db ON db.day = b.pay_date JOIN dayno dv ON dv.day = v.vou_date
        WHERE coalesce(b.status, '成功') = '成功' AND db.n - dv.n BETWEEN 0 AND {window}
          AND v.vou_no IN (SELECT vou_no FROM keyed WHERE n_lines IS NULL);
        CREATE OR REPLACE TEMP TABLE paired AS
        SELECT line_id, vou_no FROM cand
        QUALIFY count(*) OVER (PARTITION BY line_id) = 1 AND count(*) OVER (PARTITION BY vou_no) = 1;
        """
    )
    result.matched_by_attributes = run("SELECT count(*) FROM paired").fetchone()[0]
    # What is left.
    run(
        f"""
        INSERT INTO brk
        SELECT 'bank_only', [], [b.line_id], NULL, b.amount,
               CASE WHEN (SELECT count(*) FROM cand c WHERE c.line_id = b.line_id) > 1 THEN '多笔候选' END
        FROM loose b WHERE NOT EXISTS (SELECT 1 FROM paired p WHERE p.line_id = b.line_id);
        CREATE OR REPLACE TEMP TABLE unseen AS
        SELECT k.vou_no, k.book_amount AS amount, k.book_n AS n
        FROM keyed k
        WHERE k.vou_no IS NOT NULL AND k.n_lines IS NULL
          AND NOT EXISTS (SELECT 1 FROM paired p WHERE p.vou_no = k.vou_no)
          AND NOT EXISTS (SELECT 1 FROM brk_vou x WHERE x.vou_no = k.vou_no);
        INSERT INTO brk
        SELECT 'book_only', [vou_no], [], amount, NULL, NULL FROM unseen
        WHERE n + {transit} < (SELECT n FROM dayno WHERE day = ?::DATE);
        """,
        [as_of],
    )
    result.in_transit = run(
        "SELECT count(*) FROM unseen WHERE n + ? >= (SELECT n FROM dayno WHERE day = ?::DATE)",
        [transit, as_of],
    ).fetchone()[0]
    # 3. Clearing (多对一): each PBOC line against the cleared vouchers of its bank and date (or month).
    run(
        f"""
        CREATE OR REPLACE TEMP TABLE cleared AS
        SELECT bank_code, {period} AS lqd_date, count(*) AS n, sum(lqd_amount) AS amount
        FROM book WHERE lqd_date IS NOT NULL GROUP BY ALL;
        CREATE OR REPLACE TEMP TABLE clr AS
        SELECT CASE WHEN k.bank_code IS NULL THEN 'clearing_only'
                    WHEN c.bank_code IS NULL THEN 'clearing_missing'
                    WHEN c.vou_count <> k.n THEN 'clearing_count'
                    ELSE 'clearing_amount' END AS kind,
               coalesce(k.bank_code, c.bank_code) AS bank_code, coalesce(k.lqd_date, c.lqd_date) AS lqd_date,
               k.amount AS book_amount, c.amount AS bank_amount,
               coalesce(c.lqd_no, k.bank_code || ' ' || strftime(k.lqd_date, '%Y-%m-%d')) AS note
        FROM clearing c FULL JOIN cleared k ON k.bank_code = c.bank_code AND k.lqd_date = c.lqd_date
        WHERE k.bank_code IS NULL OR c.bank_code IS NULL OR c.vou_count <> k.n OR abs(c.amount - k.amount) > {tol};
        INSERT INTO brk
        SELECT clr.kind, coalesce(lv.vous, []), [], clr.book_amount, clr.bank_amount, clr.note
        FROM clr LEFT JOIN (
            SELECT v.bank_code, {period.replace("lqd_date", "v.lqd_date")} AS lqd_date,
                   list(v.vou_no ORDER BY v.vou_no) AS vous
            FROM book v SEMI JOIN clr c
              ON c.bank_code = v.bank_code AND c.lqd_date = {period.replace("lqd_date", "v.lqd_date")}
            WHERE v.lqd_date IS NOT NULL GROUP BY ALL
        ) lv USING (bank_code, lqd_date);
        """
    )
    result.cleared_lines = run(
        "SELECT count(*) FROM clearing c JOIN cleared k USING (bank_code, lqd_date) "
        f"WHERE c.vou_count = k.n AND abs(c.amount - k.amount) <= {tol}"
    ).fetchone()[0]
    _message_link(con, result, int(tolerance.receipt_minutes), mq_now)
    rows = run(
        """
        SELECT kind, vous, lines, book_amount, bank_amount, note, msgs FROM (
            SELECT *, []::BIGINT[] AS msgs FROM brk UNION ALL SELECT * FROM mq_brk)
        ORDER BY kind, vous, lines, note, msgs LIMIT ?
        """,
        [break_limit],
    ).fetchall()
    result.breaks = [
        {
            "kind": kind,
            "reason": BREAKS[kind],
            "vouchers": list(vous or []),
            "lines": list(lines or []),
            "messages": list(msgs or []),
            "book_amount": book,
            "bank_amount": bank,
            "note": note or "",
        }
        for kind, vous, lines, book, bank, note, msgs in rows
    ]
    return result


def _message_link(con: duckdb.DuckDBPyConnection, result: Result, wait: int, now: datetime | None) -> None:
    """4. The message link: gaps and repeats of each bank's and direction's sequence numbers, vouchers without a
    receipt, dead letters — into mq_brk (the note names bank, direction and numbers; msgs the messages concerned)."""
    label = "CASE m.direction WHEN 'voucher' THEN '凭证报文' ELSE '回单报文' END"
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE mq_brk (kind VARCHAR, vous VARCHAR[], lines BIGINT[],
                                             book_amount DECIMAL(18,2), bank_amount DECIMAL(18,2), note VARCHAR,
                                             msgs BIGINT[]);
        CREATE OR REPLACE TEMP TABLE mq_seq AS
        SELECT bank_code, direction, seq, count(*) AS n, min(msg_id) AS first_id, list(msg_id ORDER BY msg_id) AS ids,
               list(DISTINCT pay_cert_no ORDER BY pay_cert_no) FILTER (WHERE pay_cert_no <> '') AS certs
        FROM mq WHERE direction IN ('voucher', 'receipt') GROUP BY ALL;
        INSERT INTO mq_brk
        SELECT 'mq_seq_duplicate', coalesce(m.certs, []), [], NULL, NULL,
               m.bank_code || ' ' || {label} || ' 第 ' || m.seq || ' 号出现 ' || m.n || ' 次', m.ids
        FROM mq_seq m WHERE m.n > 1;
        INSERT INTO mq_brk
        SELECT 'mq_seq_gap', [], [], NULL, NULL,
               m.bank_code || ' ' || {label} || CASE WHEN m.next_seq - m.seq = 2
                    THEN ' 缺第 ' || (m.seq + 1) || ' 号'
                    ELSE ' 缺第 ' || (m.seq + 1) || '–' || (m.next_seq - 1) || ' 号（共 ' || (m.next_seq - m.seq - 1) || ' 个）'
               END,
               [m.first_id, m.next_id]
        FROM (SELECT *, lead(seq) OVER w AS next_seq, lead(first_id) OVER w AS next_id
              FROM mq_seq WINDOW w AS (PARTITION BY bank_code, direction ORDER BY seq)) m
        WHERE m.next_seq > m.seq + 1;
        """
    )
    # Vouchers sent and what came back for them (a receipt, or the voucher in the dead-letter queue).
    con.execute(
        """
        CREATE OR REPLACE TEMP TABLE mq_back AS
        SELECT bank_code, pay_cert_no, bool_or(direction = 'receipt') AS receipt, bool_or(direction = 'dead') AS dead
        FROM mq WHERE direction IN ('receipt', 'dead') AND pay_cert_no <> '' GROUP BY ALL;
        CREATE OR REPLACE TEMP TABLE mq_sent AS
        SELECT v.bank_code, v.pay_cert_no, min(v.seq) AS seq, min(v.sent_at) AS sent_at,
               list(v.msg_id ORDER BY v.msg_id) AS ids
        FROM mq v WHERE v.direction = 'voucher' AND v.pay_cert_no <> '' GROUP BY ALL;
        """
    )
    cutoff = con.execute(
        f"SELECT coalesce(?::TIMESTAMP, (SELECT max(sent_at) FROM mq)) - INTERVAL {int(wait)} MINUTE", [now]
    ).fetchone()[0]
    con.execute(
        """
        INSERT INTO mq_brk
        SELECT 'mq_receipt_missing', [s.pay_cert_no], [], NULL, NULL,
               s.bank_code || ' 凭证报文第 ' || s.seq || ' 号', s.ids
        FROM mq_sent s
        WHERE s.sent_at <= ?::TIMESTAMP
          AND NOT EXISTS (SELECT 1 FROM mq_back b WHERE b.bank_code = s.bank_code AND b.pay_cert_no = s.pay_cert_no)
        """,
        [cutoff],
    )
    con.execute(
        """
        INSERT INTO mq_brk
        SELECT 'mq_dead_letter', CASE WHEN d.pay_cert_no <> '' THEN [d.pay_cert_no] ELSE [] END, [], NULL, NULL,
               d.bank_code || ' 死信：凭证报文第 ' || d.seq || ' 号', list(d.msg_id ORDER BY d.msg_id)
        FROM mq d
        WHERE d.direction = 'dead'
          AND NOT EXISTS (SELECT 1 FROM mq_back b WHERE b.bank_code = d.bank_code AND b.pay_cert_no = d.pay_cert_no
                                                    AND b.receipt)
        GROUP BY d.bank_code, d.pay_cert_no, d.seq
        """
    )
    result.mq_receipted, result.mq_in_transit = con.execute(
        """
        SELECT count(*) FILTER (WHERE b.receipt),
               count(*) FILTER (WHERE b.bank_code IS NULL AND s.sent_at > ?::TIMESTAMP)
        FROM mq_sent s LEFT JOIN mq_back b USING (bank_code, pay_cert_no)
        """,
        [cutoff],
    ).fetchone()
