"""OCI registry access: credentials, auth, tag scanning and digests (network edge)."""
