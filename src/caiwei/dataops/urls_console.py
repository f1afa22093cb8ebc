"""Pages of the console part of 数据运维."""

urlpatterns: list = []
