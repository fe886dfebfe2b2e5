"""Network plumbing shared by the frontends: TLS contexts, per-IP limits, PROXY headers."""
