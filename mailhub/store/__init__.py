"""The protocol-neutral mailstore (see ``api`` for the contract)."""
