"""Jobs of data change execution and crash recovery (filled by the changes part)."""
