"""Pages of the backups part of 数据运维."""

urlpatterns: list = []
