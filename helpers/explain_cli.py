"""``python -m helpers explain``: the command line of :func:`helpers.explain.explain` (study layer): one text, a
pair, two models side by side (``--compare``) or many texts (``--texts-file``), printed in colour or written as
HTML, JSON or JSON lines."""
from __future__ import annotations

import sys
from pathlib import Path

from .explain import LONG, PAIR_STEPS, TEXT_STEPS, explain
from .explanation import Explanation, unwritable

__all__ = ["main"]


def _read_texts(source: str) -> list:
    """The texts of ``--texts-file``: one per line of a file, or of standard input for ``-``; blank lines skipped.
    An error names the file."""
    if source == "-":
        lines = sys.stdin.read().splitlines()
        where = "standard input"
    else:
        path = Path(source)
        if not path.is_file():
            raise FileNotFoundError(f"--texts-file {source}: no such file (give a file with one text per line, or - "
                                    "for standard input).")
        try:
            lines = path.read_text(encoding="utf-8-sig").splitlines()
        except UnicodeDecodeError as exc:
            raise ValueError(f"--texts-file {source}: not UTF-8 text ({exc}).") from None
        where = str(path)
    texts = [line.strip() for line in lines if line.strip()]
    if not texts:
        raise ValueError(f"--texts-file: {where} holds no text (one text per line).")
    if len(texts) < len(lines):
        skipped = len(lines) - len(texts)
        print(f"--texts-file: {skipped} blank line{'s' if skipped > 1 else ''} of {where} skipped, so a text's number "
              "[k] counts the texts, not the file's lines (each explanation keeps its text).", file=sys.stderr)
    return texts


def _parser():
    """The command line's options."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m helpers explain",
                                     description="Which words drive a sentence embedding, or a similarity score.")
    parser.add_argument("texts", nargs="*", metavar="TEXT", help="one text (word weights) or two (a pair)")
    parser.add_argument("--model", required=True, help="a hub name, a sentence-transformers folder")
    parser.add_argument("--compare", metavar="MODEL", help="a second model: both side by side, and the change")
    parser.add_argument("--texts-file", metavar="FILE", help="many texts, one per line (- reads standard input)")
    parser.add_argument("--method", default="ig", help="ig (default) or shap")
    parser.add_argument("--exact", action="store_true",
                        help="IG over every output dimension (no sketch; in bf16 where the hardware computes it "
                             "natively, --precision fp32 for full precision)")
    parser.add_argument("--n-steps", type=int, default=None,
                        help=f"IG quadrature points (default {TEXT_STEPS} for a text; for a pair the first of "
                             f"{', '.join(map(str, PAIR_STEPS))} whose gap is within 1%% of the score)")
    parser.add_argument("--reference", help="a dataset name (stsb, wiki, nli, sts12) for KL and I")
    parser.add_argument("--long", choices=LONG, default="refuse", help="a text longer than the model reads")
    parser.add_argument("--html", help="write a self-contained HTML page here")
    parser.add_argument("--json", help="write the explanation here (Explanation.load reads it)")
    parser.add_argument("--jsonl", help="with --texts-file: one JSON line per text here (ExplanationSet.read_jsonl)")
    parser.add_argument("--width", type=int, default=100, help="terminal width of the coloured text")
    parser.add_argument("--no-colour", action="store_true", help="plain text")
    parser.add_argument("--faithfulness", action="store_true", help="also measure the normalised AOPC (one text)")
    parser.add_argument("--show-progress-bar", action="store_true")
    parser.add_argument("--precision", choices=("fp32", "bf16", "auto"), default=None,
                        help="fp32, bf16, or auto: bf16 where the CPU or GPU computes it natively (default: fp32, "
                             "and auto with --exact)")
    return parser


def _check(parser, args) -> None:
    """Refuse, before anything is computed, a combination of options that does not apply or a file that cannot be
    written (``parser.error`` names the option)."""
    many = args.texts_file is not None
    if many and args.texts:
        parser.error("give the texts either as arguments or in --texts-file, not both")
    if not many and not args.texts:
        parser.error("give one text or two (quote each), or --texts-file FILE")
    if len(args.texts) > 2:
        parser.error(f"give one text or two, not {len(args.texts)} (quote each text; many texts: --texts-file)")
    pair, ig = len(args.texts) == 2, args.method.lower() not in ("shap", "partition", "partitionshap")
    not_applying = [option for option, given, applies in (
        ("--faithfulness", args.faithfulness, not pair and not many and not args.compare),
        ("--reference", args.reference, not pair), ("--exact", args.exact, ig and not pair),
        ("--n-steps", args.n_steps is not None, ig), ("--long windows", args.long == "windows", not pair),
        ("--jsonl", args.jsonl, many), ("--json", args.json, not many and not args.compare),
        ("--compare", args.compare, not many)) if given and not applies]
    if not_applying:
        parser.error(f"{', '.join(not_applying)} {'does' if len(not_applying) == 1 else 'do'} not apply to "
                     f"{'many texts' if many else 'a pair of texts' if pair else 'one text'}"
                     f"{' compared across two models' if args.compare else ''} explained with {args.method} (a pair "
                     "is always exact IG and has no KL, I or faithfulness; SHAP has no sketch or quadrature; --jsonl "
                     "goes with --texts-file, --json with one explanation); leave it out.")
    for option, target in (("--html", args.html), ("--json", args.json), ("--jsonl", args.jsonl)):
        problem = unwritable(target)
        if problem:  # checked before anything is computed: never minutes of work, then a traceback
            parser.error(f"{option} {target}: {problem}")


def main(argv=None) -> int:
    """``python -m helpers explain --model NAME_OR_PATH "text" ["other text"] [--html out.html] ...``; many texts:
    ``--texts-file FILE`` (or ``-`` for standard input, one text per line) with ``--jsonl out.jsonl``; two models
    side by side: ``--compare OTHER_MODEL``."""
    parser = _parser()
    args = parser.parse_args(argv)
    _check(parser, args)
    many, pair = args.texts_file is not None, len(args.texts) == 2
    try:
        texts = _read_texts(args.texts_file) if many else args.texts
        model = [args.model, args.compare] if args.compare else args.model
        e = explain(model, texts if many else texts[0], texts[1] if pair else None, method=args.method,
                    exact=args.exact, n_steps=args.n_steps, reference=args.reference, long=args.long,
                    show_progress_bar=args.show_progress_bar or many, precision=args.precision)
    except (ValueError, TypeError, FileNotFoundError, OSError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    colour = not args.no_colour and sys.stdout.isatty()
    print(e.to_text(args.width, colour=colour))
    if not many:
        print()
        print(e.table.to_string(index=False, float_format=lambda x: f"{x:.6f}"))
    if args.faithfulness and isinstance(e, Explanation) and e.kind == "text":
        f = e.faithfulness()
        print(f"\nnormalised AOPC {f['normalised']:.2f} (random orderings {f['random_normalised']:.2f}; raw "
              f"{f['aopc']:.4f}, best {f['best']:.4f}, worst {f['worst']:.4f}, k ≤ {f['k_max']})")
    if args.html:
        e.to_html(args.html)
        print(f"wrote {args.html}", file=sys.stderr)
    if args.json:
        e.save(args.json)
        print(f"wrote {args.json}", file=sys.stderr)
    if args.jsonl:
        e.to_jsonl(args.jsonl)
        print(f"wrote {args.jsonl} ({len(e)} lines)", file=sys.stderr)
    return 0
