"""Reference implementations of the two modules tggate sits in front of (docs/contract.md)."""
