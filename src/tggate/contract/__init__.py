"""The HTTP contracts tggate speaks, as pydantic models (docs/contract.md, docs/openapi/)."""
