from __future__ import annotations

from schemas.export import EXPORT_DIR, rendered


def test_exported_json_schemas_match_the_contracts() -> None:
    stale = [
        name
        for name, text in rendered().items()
        if not (EXPORT_DIR / name).exists() or (EXPORT_DIR / name).read_text() != text
    ]
    assert not stale, f"contracts changed: run `make schemas` and commit schemas/json ({stale})"
