"""Cross-cutting pieces every layer may use: errors, logging setup, small types."""
