"""``python -m chatlab``: run the best variant for this platform; ``--list`` names them all."""

from __future__ import annotations

import sys

from chatlab.cli import serve
from chatlab.variants import VARIANTS, best_variant, server_class, unavailable_reason


def list_variants() -> None:
    best = best_variant()
    for variant in VARIANTS:
        status = unavailable_reason(variant) or "available"
        marker = "  (what python -m chatlab runs)" if variant == best else ""
        print(f"{variant:10} python -m chatlab.{variant:10} {status}{marker}")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if "--list" in argv:
        list_variants()
        return 0
    return serve(server_class(best_variant()), argv)


if __name__ == "__main__":
    sys.exit(main())
