"""Pages of the changes part of 数据运维."""

urlpatterns: list = []
