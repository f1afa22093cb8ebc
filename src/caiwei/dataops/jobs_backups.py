"""Jobs of scheduled backups and DR drills (filled by the backups part)."""
