"""What an explanation looks like: terminal text and self-contained HTML (study layer, beside the explorer).

:mod:`helpers.explain` computes explanations and holds them as data; this module only draws them, as
``shap.plots`` draws a ``shap.Explanation``. Every view is self-contained: inline styles and inline SVG, no
script, nothing loaded from a network. Numbers a reader may want to check are in the markup: each word span's
``title``, each matrix cell's ``data-value`` (``tests/test_explain_views.py`` reads them back).

The pair matrix (:func:`pair_matrix_svg`) is the picture xsbert, Retrivex and BiLRP draw for a similarity: rows the
first text's words, columns the second's, each cell a word pair's signed contribution on a diverging scale centred
at 0 (red raises the score, blue lowers it), and in the margins each word's total over the other text's words.
Matplotlib versions of the same pictures (``Explanation.plot()``) are drawn here too, in the book's style
(:func:`word_strip`, :func:`pair_matrix`, :func:`compare_strips`): the study layer may not import :mod:`helpers.plots`.
"""
from __future__ import annotations

import html
import re
import textwrap

import numpy as np
import pandas as pd

# the share of the score above which a decomposition is not printed as an equation: the book's one gap threshold
from .attribution.words import GAP_THRESHOLD, CompletenessGap

__all__ = ["GAP_THRESHOLD", "CompletenessGap", "weights_gap_note",
           "diverging", "sequential", "spans", "pair_matrix_svg", "page", "ansi_words", "wrap",
           "fit_lines", "score_line", "reference_sentence", "word_strip", "pair_matrix", "compare_strips"]

_RED, _BLUE = (178, 24, 43), (33, 102, 172)  # the ends of matplotlib's RdBu_r, as the book's figures use


def diverging(value: float, top: float) -> tuple[str, str]:
    """(background, text colour) for a signed value on a white-centred red/blue scale up to ``top``."""
    share = min(1.0, abs(value) / top) if top > 0 else 0.0
    end = _RED if value >= 0 else _BLUE
    r, g, b = (int(round(255 - (255 - c) * share)) for c in end)
    return f"rgb({r},{g},{b})", "white" if share > 0.6 else "black"


def sequential(value: float, top: float) -> tuple[str, str]:
    """(background, text colour) for a weight (0 up to ``top``): the explorer's palette."""
    from .explorer import colour_index, palette

    level = colour_index(abs(value), top) if top > 0 else 0
    return palette()[level], "white" if level > 150 else "black"


def spans(words, values, signed: bool, top: float | None = None) -> str:
    """Words as coloured spans; each span's ``title`` holds its value. ``top``: the value at full colour (default
    the largest here; pictures set side by side share one)."""
    values = np.asarray(values, dtype=float)
    top = top or max(float(np.max(np.abs(values))) if len(values) else 0.0, 1e-12)
    out = []
    for w, v in zip(words, values):
        bg, fg = diverging(v, top) if signed else sequential(v, top)
        out.append(f'<span class="w" style="background:{bg};color:{fg}" title="{v:+.4f}">{html.escape(str(w))}</span>')
    return " ".join(out)


def pair_matrix_svg(matrix: pd.DataFrame, rows_total, cols_total, title: str = "", top: float | None = None) -> str:
    """The word-pair matrix as inline SVG: a cell per (row word, column word) with its contribution in
    ``data-value`` and a tooltip; the right margin holds each row word's total, the bottom margin each column
    word's total (``data-total``). ``matrix``: rows the first text's words, columns the second's, in order.
    ``top``: the value at full colour (default: the largest absolute cell; margins use their own)."""
    values = matrix.to_numpy(dtype=float)
    rows, cols = [str(w) for w in matrix.index], [str(w) for w in matrix.columns]
    rows_total, cols_total = np.asarray(rows_total, dtype=float), np.asarray(cols_total, dtype=float)
    top = top or max(float(np.abs(values).max()) if values.size else 0.0, 1e-12)
    margin_top = max(float(np.abs(np.concatenate([rows_total, cols_total])).max()) if len(rows_total) else 0.0, 1e-12)
    cw, ch, char = 46, 24, 7.2
    left = 12 + char * max((len(w) for w in rows), default=4)
    head = 10 + 0.72 * char * max((len(w) for w in cols), default=4) + (18 if title else 0)
    width = left + cw * (len(cols) + 1) + 14
    height = head + ch * (len(rows) + 1) + 30
    out = [f'<svg class="pair-matrix" xmlns="http://www.w3.org/2000/svg" width="{width:.0f}" height="{height:.0f}" '
           f'font-family="sans-serif" font-size="12" role="img">']
    if title:
        out.append(f'<text x="4" y="14" font-weight="bold">{html.escape(title)}</text>')
    for j, w in enumerate(cols):  # column words, slanted above their column
        x, y = left + cw * j + cw / 2, head - 6
        out.append(f'<text x="{x:.1f}" y="{y:.1f}" transform="rotate(-45 {x:.1f} {y:.1f})">{html.escape(w)}</text>')
    x = left + cw * len(cols) + cw / 2
    out.append(f'<text x="{x:.1f}" y="{head - 6:.1f}" transform="rotate(-45 {x:.1f} {head - 6:.1f})" '
               'font-style="italic">total</text>')
    for i, w in enumerate(rows):
        y = head + ch * i
        out.append(f'<text x="{left - 6:.1f}" y="{y + ch * 0.68:.1f}" text-anchor="end">{html.escape(w)}</text>')
        for j, v in enumerate(values[i]):
            bg, fg = diverging(v, top)
            xx = left + cw * j
            out.append(f'<g class="cell" data-row="{i}" data-col="{j}" data-value="{v:.6g}"><rect x="{xx:.1f}" '
                       f'y="{y:.1f}" width="{cw - 1}" height="{ch - 1}" fill="{bg}"/><title>{html.escape(w)} ~ '
                       f'{html.escape(cols[j])}: {v:+.4f}</title><text x="{xx + cw / 2:.1f}" y="{y + ch * 0.68:.1f}" '
                       f'text-anchor="middle" font-size="10" fill="{fg}">{v:+.2f}</text></g>')
        bg, fg = diverging(rows_total[i], margin_top)
        xx = left + cw * len(cols) + 4
        out.append(f'<g class="total" data-side="a" data-index="{i}" data-total="{rows_total[i]:.6g}"><rect '
                   f'x="{xx:.1f}" y="{y:.1f}" width="{cw - 1}" height="{ch - 1}" fill="{bg}" stroke="#444"/><title>'
                   f'{html.escape(w)}: {rows_total[i]:+.4f} over all words of the other text</title><text '
                   f'x="{xx + cw / 2:.1f}" y="{y + ch * 0.68:.1f}" text-anchor="middle" font-size="10" '
                   f'fill="{fg}">{rows_total[i]:+.2f}</text></g>')
    y = head + ch * len(rows) + 4
    out.append(f'<text x="{left - 6:.1f}" y="{y + ch * 0.68:.1f}" text-anchor="end" font-style="italic">total</text>')
    for j, v in enumerate(cols_total):
        bg, fg = diverging(v, margin_top)
        xx = left + cw * j
        out.append(f'<g class="total" data-side="b" data-index="{j}" data-total="{v:.6g}"><rect x="{xx:.1f}" '
                   f'y="{y:.1f}" width="{cw - 1}" height="{ch - 1}" fill="{bg}" stroke="#444"/><title>'
                   f'{html.escape(cols[j])}: {v:+.4f} over all words of the other text</title><text '
                   f'x="{xx + cw / 2:.1f}" y="{y + ch * 0.68:.1f}" text-anchor="middle" font-size="10" '
                   f'fill="{fg}">{v:+.2f}</text></g>')
    out.append("</svg>")
    return "".join(out)


_STYLE = ("{s}.t{{font-size:1.2em;line-height:2}}{s}.w{{padding:2px 4px;border-radius:3px}}"
          "{s}.n{{color:#555;font-size:.9em}}{s}table{{border-collapse:collapse;font-size:.85em}}"
          "{s}td,{s}th{{padding:2px 6px;border-bottom:1px solid #ddd}}{s}.score{{font-size:1.05em}}"
          "{s}.lbl{{display:inline-block;min-width:9em;color:#333;font-size:.85em}}"
          "{s}.mats{{display:flex;flex-wrap:wrap;gap:1.5em;align-items:flex-start}}")


def page(body: str, full: bool, path=None, title: str = "Explanation") -> str:
    """A fragment (styles scoped to ``.sww-explanation``) or a whole page, written to ``path`` when given (the
    fragment too, when ``full`` is False)."""
    fragment = f'<div class="sww-explanation"><style>{_STYLE.format(s=".sww-explanation ")}</style>{body}</div>'
    doc = fragment if not full else (
        f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        "<style>body{font-family:sans-serif;max-width:72em;margin:1em auto}</style></head>"
        f"<body>{fragment}</body></html>")
    if path is not None:
        from .config import write_text_atomic

        write_text_atomic(path, doc, "HTML page")
    return doc


def score_line(numbers: dict, similarity: str) -> str:
    """The score and its decomposition: an equation only when the completeness gap is within
    :data:`GAP_THRESHOLD` of the score; otherwise the plain statement that the parts do not add up."""
    n = numbers
    if n["completeness_gap"] <= GAP_THRESHOLD:
        return (f"{similarity} similarity {n['score']:.4f} = word pairs {n['sum_of_contributions']:.4f} + reference "
                f"{n['reference']:+.4f} (gap {n['completeness_gap']:.2%} of the score, "
                f"{n['gap_of_contributions']:.2%} of the pairs' absolute sum, at {n['n_steps']} quadrature points)")
    return (f"{similarity} similarity {n['score']:.4f}. The word pairs ({n['sum_of_contributions']:.4f}) and the "
            f"reference terms ({n['reference']:+.4f}) do NOT add up to it: they miss it by "
            f"{n['completeness_gap']:.1%} of the score at {n['n_steps']} quadrature points, above the "
            f"{GAP_THRESHOLD:.0%} the book accepts, so read the pairs below as approximate")


def weights_gap_note(gap: float, method: str, n_steps) -> str | None:
    """The note a text's word weights carry when their completeness gap is above :data:`GAP_THRESHOLD` (the
    book's Eq. eq-ig-norm): what it means and the setting that closes it; None within the threshold."""
    if not gap > GAP_THRESHOLD:
        return None
    fix = {"ig": f"raise n_steps (IG's quadrature points, {n_steps} here)", "shap": "raise max_evals"}.get(
        method, "change the method's settings")
    return (f"completeness gap {gap:.1%}, above the {GAP_THRESHOLD:.0%} the book accepts: the attributions miss the "
            f"change of the embedding by that much, so read the weights as approximate; {fix}")


def reference_sentence(numbers: dict) -> str:
    """What the reference term is, in one sentence with this explanation's numbers."""
    n = numbers
    rest = n["score"] - n["reference"]
    return (f"The reference term ({n['reference']:+.4f}) is the part of the score that pairs no two real words: the "
            "similarity the baseline inputs (every word replaced by padding) already have with each other and with "
            f"the two texts. Every score of this model carries such a term, so the word pairs explain the distance "
            f"from it ({rest:+.4f} here), not the score itself.")


# ------------------------------------------------------------------------------------------ figures (matplotlib)

def word_strip(tables: dict, title: str = "", value: str = "weight"):
    """One text's word weights as bars in sentence order, one panel per model (``tables``: {label: a table with
    ``word`` and ``value``}); the dashed line is the mean word (weight 1)."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    fig, axes = plt.subplots(len(tables), 1, figsize=(max(5.0, 0.62 * max(len(t) for t in tables.values())),
                                                      2.3 * len(tables)), squeeze=False)
    for ax, (label, table) in zip(axes[:, 0], tables.items()):
        x = np.arange(len(table))
        ax.bar(x, table[value].to_numpy(float), color=sns.color_palette("rocket_r", 3)[1])
        ax.axhline(1.0, color="0.4", lw=0.8, ls="--")
        ax.set_xticks(x, table["word"].astype(str).tolist(), rotation=35, ha="right", fontsize="small")
        ax.set(ylabel=value, title=label)
        ax.title.set_fontsize("small")
    if title:
        fig.suptitle(title, fontsize="medium")
    fig.tight_layout()
    return fig


def pair_matrix(matrices: dict, title: str = ""):
    """Word-pair matrices with their margins, side by side (``matrices``: {panel title: a DataFrame whose rows are
    the first text's words and columns the second's}): each cell a pair's signed contribution on a diverging scale
    centred at 0 (red raises the score, blue lowers it), the right column each row word's total and the bottom row
    each column word's total (on their own scale)."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    n = len(matrices)
    widest = max(m.shape[1] for m in matrices.values())
    tallest = max(m.shape[0] for m in matrices.values())
    fig = plt.figure(figsize=(n * (1.6 + 0.62 * (widest + 1)), 1.4 + 0.42 * (tallest + 1)))
    grid = fig.add_gridspec(2, 2 * n, width_ratios=[x for _ in range(n) for x in (widest, 1.2)],
                            height_ratios=[tallest, 1], wspace=0.08, hspace=0.08)
    for k, (label, m) in enumerate(matrices.items()):
        values = m.to_numpy(float)
        top = float(np.abs(values).max()) or 1.0
        rows, cols = values.sum(axis=1), values.sum(axis=0)
        edge = float(np.abs(np.concatenate([rows, cols])).max()) or 1.0
        main = fig.add_subplot(grid[0, 2 * k])
        sns.heatmap(pd.DataFrame(values, index=m.index, columns=m.columns), ax=main, cmap="RdBu_r", vmin=-top,
                    vmax=top, cbar=False, annot=values.size <= 120, fmt=".2f", annot_kws={"fontsize": 7},
                    xticklabels=False, yticklabels=[str(w) for w in m.index])
        main.set_title(label, fontsize="small")
        side = fig.add_subplot(grid[0, 2 * k + 1])
        sns.heatmap(rows[:, None], ax=side, cmap="RdBu_r", vmin=-edge, vmax=edge, cbar=False, annot=True, fmt=".2f",
                    annot_kws={"fontsize": 7}, xticklabels=["total"], yticklabels=False, linewidths=0.5,
                    linecolor="0.3")
        bottom = fig.add_subplot(grid[1, 2 * k])
        sns.heatmap(cols[None, :], ax=bottom, cmap="RdBu_r", vmin=-edge, vmax=edge, cbar=False, annot=True,
                    fmt=".2f", annot_kws={"fontsize": 7}, yticklabels=["total"], linewidths=0.5, linecolor="0.3",
                    xticklabels=[str(w) for w in m.columns])
        bottom.tick_params(axis="x", rotation=40, labelsize="small")
        for ax in (main, side, bottom):
            ax.tick_params(labelsize="small")
            ax.set(xlabel="", ylabel="")
        main.tick_params(axis="y", rotation=0)
        bottom.tick_params(axis="y", rotation=0)
    if title:
        fig.suptitle(textwrap.fill(title, int(fig.get_figwidth() * 11)), fontsize="medium")
    return fig


def compare_strips(table: pd.DataFrame, labels: list, title: str = ""):
    """Two models' weights of the same words (``weight_a``, ``weight_b``) as paired bars, and below them the change
    (``change`` = b - a; red up, blue down)."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    x = np.arange(len(table))
    fig, (top, low) = plt.subplots(2, 1, figsize=(max(5.0, 0.7 * len(table)), 4.6), sharex=True,
                                   gridspec_kw={"height_ratios": [2, 1]})
    colours = sns.color_palette("colorblind", 2)
    top.bar(x - 0.2, table["weight_a"], width=0.4, label=labels[0], color=colours[0])
    top.bar(x + 0.2, table["weight_b"], width=0.4, label=labels[1], color=colours[1])
    top.axhline(1.0, color="0.4", lw=0.8, ls="--")
    top.set(ylabel="weight")
    top.legend(fontsize="small", frameon=False)
    change = table["change"].to_numpy(float)
    low.bar(x, change, color=[sns.color_palette("RdBu_r", 7)[6] if c >= 0 else sns.color_palette("RdBu_r", 7)[0]
                              for c in change])
    low.axhline(0.0, color="0.3", lw=0.8)
    low.set(ylabel="change")
    low.set_xticks(x, table["word"].astype(str).tolist(), rotation=35, ha="right", fontsize="small")
    if title:
        fig.suptitle(title, fontsize="medium")
    fig.tight_layout()
    return fig


# ------------------------------------------------------------------------------------------ terminal text
def ansi_words(words, values, colour: bool, signed: bool) -> str:
    """Words on a background by value (ANSI 256 colours): red up, blue down for signed values."""
    values = np.asarray(values, dtype=float)
    top = max(float(np.max(np.abs(values))) if len(values) else 0.0, 1e-12)
    out = []
    for w, v in zip(words, values):
        if not colour:
            out.append(f"{w}[{v:+.2f}]" if signed else f"{w}[{v:.2f}]")
            continue
        level = int(min(5, round(5 * abs(v) / top)))
        red = [231, 224, 217, 210, 203, 196][level]
        blue = [231, 195, 153, 111, 69, 27][level]
        code = blue if signed and v < 0 else red
        fg = "97" if level >= 4 else "30"
        out.append(f"\x1b[48;5;{code}m\x1b[{fg}m{w}\x1b[0m")
    return " ".join(out)


def wrap(body: str, width: int) -> list[str]:
    """Wrap words at ``width`` visible characters (ANSI codes take no width)."""
    lines, line, visible = [], [], 0
    for token in body.split(" "):
        size = len(re.sub(r"\x1b\[[0-9;]*m", "", token))
        if line and visible + 1 + size > width:
            lines.append(" ".join(line))
            line, visible = [], 0
        visible += size + (1 if line else 0)
        line.append(token)
    if line:
        lines.append(" ".join(line))
    return lines


def fit_lines(lines: list[str], width: int) -> str:
    """Every line within ``width`` (coloured lines were wrapped already)."""
    out = []
    for line in lines:
        out += [line] if "\x1b[" in line or len(line) <= width else textwrap.wrap(line, width, break_long_words=True)
    return "\n".join(out)
