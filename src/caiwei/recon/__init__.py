"""对账（reconciliation）: bank file layouts as data (``formats``), sources into DuckDB (``sources``), the matching
engine (``engine``), runs and breaks kept by the platform (``models``, ``services``), and the cross-database table
diff (``diff``); ``caiwei recon run|diff``."""
