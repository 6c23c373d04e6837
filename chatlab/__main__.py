"""``python -m chatlab``: run the best variant for this platform; ``--list`` names them all.

The best variant is epoll where the platform has it, else select. It takes the
options every variant takes.
"""

from __future__ import annotations

import sys

from chatlab.cli import make_parser, run
from chatlab.variants import VARIANTS, best_variant, server_class, unavailable_reason


def list_variants() -> None:
    best = best_variant()
    for variant in VARIANTS:
        status = unavailable_reason(variant) or "available"
        marker = "  (what python -m chatlab runs)" if variant == best else ""
        print(f"{variant:10} python -m chatlab.{variant:10} {status}{marker}")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = make_parser("python -m chatlab", __doc__)
    parser.add_argument(
        "--list", action="store_true", help="name every variant and whether it runs here, then exit"
    )
    options = parser.parse_args(argv)
    if options.list:
        if argv != ["--list"]:
            parser.error("--list takes no other arguments")
        list_variants()
        return 0
    return run(server_class(best_variant()), options)


if __name__ == "__main__":
    sys.exit(main())
