"""HTTP API of the console part of 数据运维."""

from ninja import Router

router = Router(tags=["数据运维"])
