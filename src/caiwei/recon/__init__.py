"""对账（reconciliation）. So far: the cross-database table diff (``diff.diff_tables``, ``caiwei recon diff``)."""
