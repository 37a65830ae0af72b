"""``python -m helpers COMMAND``: the book's command lines in one place.

* ``explain``: which words drive an embedding or a similarity score (:func:`helpers.explain_cli.main`).
"""
import sys

COMMANDS = {"explain": "helpers.explain_cli"}


def main(argv=None) -> int:
    import importlib

    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help") or argv[0] not in COMMANDS:
        print(__doc__.strip())
        print("\nusage: python -m helpers explain --model NAME_OR_PATH \"text\" [\"other text\"] [--html out.html] "
              "[--method ig|shap] [--exact]")
        return 0 if argv and argv[0] in ("-h", "--help") else 2
    return importlib.import_module(COMMANDS[argv[0]]).main(argv[1:])


if __name__ == "__main__":
    raise SystemExit(main())
