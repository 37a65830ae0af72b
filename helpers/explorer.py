"""An interactive word-weight explorer (chapter 09): type a sentence, see what an encoder weighs.

:func:`explain` computes one model's word weights for one sentence beside KL and I from a
reference corpus; :func:`heat_strip` draws the words coloured by weight (as attribution
libraries do); :func:`render` is the static view (heat strips and a bar chart of two models
side by side); :class:`Explorer` wraps it in ipywidgets. Errors (empty input, a sentence
longer than the model accepts, an unknown model) become a message, never a traceback.
"""
from __future__ import annotations

import html
from functools import lru_cache

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

from .attribution import word_weights
from .data import load_sentences
from .encoders import load_encoder
from .information import word_information

METHODS = {"IG (sketched)": {"method": "ig", "projections": 16}, "IG (exact)": {"method": "ig", "projections": None},
           "SHAP": {"method": "shap"}}


@lru_cache(maxsize=16)
def _encoder(name: str, pooling: str):
    return load_encoder(name, pooling=pooling)


@lru_cache(maxsize=8)
def reference_information(dataset: str, data_dir=None) -> pd.DataFrame:
    """KL and I of every word of a reference corpus (the dataset's paper split), computed once per session."""
    return word_information(load_sentences(dataset, data_dir=data_dir))


def explain(sentence: str, model: str, pooling: str, info: pd.DataFrame, method: str = "IG (sketched)",
            n_steps: int = 20, max_evals: int = 500) -> pd.DataFrame:
    """One model's word weights for one sentence, with the word's KL and I (``seen`` False: not in the corpus)."""
    if not isinstance(sentence, str) or not sentence.strip():
        raise ValueError("Type a sentence first.")
    if method not in METHODS:
        raise ValueError(f"method must be one of {list(METHODS)}.")
    options = dict(METHODS[method])
    kind = options.pop("method")
    encoder = _encoder(model, pooling)
    extra = {"n_steps": n_steps, **options} if kind == "ig" else {"max_evals": max_evals}
    weights = word_weights(encoder, [sentence], method=kind, truncate=False, progress=False, gap_warning=1.0, **extra)
    out = weights.merge(info[["word", "kl", "self_info"]], on="word", how="left")
    out["seen"] = out["kl"].notna()
    return out


def heat_strip(table: pd.DataFrame, title: str = "") -> str:
    """HTML: the sentence's words on a white-to-red background by weight; unseen words are dashed."""
    top = max(float(table["weight"].max()), 1e-9)
    cmap = plt.get_cmap("Reds")
    spans = []
    for _, row in table.iterrows():
        r, g, b, _ = cmap(0.85 * row["weight"] / top)
        style = f"background: rgb({r * 255:.0f},{g * 255:.0f},{b * 255:.0f}); padding: 2px 4px; margin: 1px; border-radius: 3px;"
        style += " color: white;" if row["weight"] / top > 0.6 else ""
        if not row["seen"]:
            style += " border: 1px dashed #555;"
        info = (f"KL {row['kl']:.2f}, I {row['self_info']:.2f}" if row["seen"] else "not in the reference corpus")
        spans.append(f'<span style="{style}" title="weight {row["weight"]:.2f}; {info}">{html.escape(row["word"])}</span>')
    gap = table["completeness_gap"].iloc[0]
    return (f'<div style="margin: 6px 0;"><b>{html.escape(title)}</b> '
            f'<span style="color:#666">(completeness gap {gap:.2%})</span><br>'
            f'<span style="font-size: 1.15em; line-height: 2;">{" ".join(spans)}</span></div>')


def bar_chart(tables: dict):
    """Per model: word weights as bars, KL and I (scaled to mean 1 over the seen words) as markers."""
    fig, axes = plt.subplots(1, len(tables), figsize=(6 * len(tables), 3.4), squeeze=False, sharey=True)
    for ax, (name, t) in zip(axes[0], tables.items()):
        x = np.arange(len(t))
        ax.bar(x, t["weight"], color=sns.color_palette()[0], label="word weight")
        for q, marker, colour in (("kl", "o", "C1"), ("self_info", "s", "C2")):
            values = t[q] / t[q].mean() if t["seen"].any() else t[q]
            ax.plot(x, values, marker, color=colour, label=f"{'KL' if q == 'kl' else 'I'} (scaled)")
        labels = [w if s else f"{w}\n(unseen)" for w, s in zip(t["word"], t["seen"])]
        ax.set_xticks(x, labels, rotation=45)
        ax.set(title=name, ylabel="weight (mean 1)")
    axes[0][0].legend(fontsize="small")
    fig.tight_layout()
    return fig


def render(sentence: str, models: list[tuple[str, str, str]], dataset: str = "stsb", method: str = "IG (sketched)",
           data_dir=None, **kwargs):
    """The explorer's view: (HTML of heat strips, bar-chart figure) for (label, model, pooling) entries."""
    info = reference_information(dataset, data_dir)
    tables = {label: explain(sentence, model, pooling, info, method, **kwargs) for label, model, pooling in models}
    strips = "".join(heat_strip(t, label) for label, t in tables.items())
    return strips, bar_chart(tables), tables


class Explorer:
    """ipywidgets front end of :func:`render`: sentence, two model pickers, method and reference corpus."""

    def __init__(self, models: dict, sentence: str = "A man is playing a guitar.", data_dir=None,
                 default=None, datasets=("stsb", "sts12", "wiki", "nli")):
        import ipywidgets as w

        self.models, self.data_dir = models, data_dir
        names = list(models) + ["other (type a hub name)"]
        default = default or names[:2]
        self.text = w.Text(value=sentence, description="Sentence", layout=w.Layout(width="60%"))
        self.left = w.Dropdown(options=names, value=default[0], description="Model A")
        self.right = w.Dropdown(options=["(none)"] + names, value=default[1] if len(default) > 1 else "(none)",
                                description="Model B")
        self.custom = w.Text(placeholder="e.g. princeton-nlp/sup-simcse-bert-base-uncased", description="Hub name")
        self.method = w.Dropdown(options=list(METHODS), value="IG (sketched)", description="Method")
        self.dataset = w.Dropdown(options=list(datasets), value=datasets[0], description="KL / I from")
        self.button = w.Button(description="Explain", button_style="primary")
        self.out = w.Output()
        self.button.on_click(lambda _: self.update())
        self.widget = w.VBox([self.text, w.HBox([self.left, self.right]), self.custom,
                              w.HBox([self.method, self.dataset, self.button]), self.out])

    def _entry(self, choice):
        if choice == "(none)":
            return None
        if choice.startswith("other"):
            name = self.custom.value.strip()
            if not name:
                raise ValueError("Type a hub name (or a local folder) in the 'Hub name' box.")
            return (name, name, "mean")
        name, pooling = self.models[choice]
        return (choice, name, pooling)

    def view(self):
        """(HTML, figure or None) for the widgets' current values; an error becomes a message."""
        try:
            entries = [e for e in (self._entry(self.left.value), self._entry(self.right.value)) if e]
            strips, fig, _ = render(self.text.value, entries, self.dataset.value, self.method.value, self.data_dir)
            plt.close(fig)
            return strips, fig
        except Exception as exc:  # the widget shows a message, never a traceback
            return f'<div style="color:#a00"><b>Cannot explain this:</b> {html.escape(str(exc))}</div>', None

    def update(self):
        from IPython.display import HTML, display

        page, fig = self.view()
        self.out.clear_output()
        with self.out:
            display(HTML(page))
            if fig is not None:
                display(fig)

    def show(self):
        from IPython.display import display

        display(self.widget)
        self.update()


def render_html(sentence: str, models: list[tuple[str, str, str]], dataset: str = "stsb",
                method: str = "IG (sketched)", data_dir=None) -> str:
    """The heat strips as HTML, or the message the widget would show when the input cannot be explained."""
    try:
        strips, fig, _ = render(sentence, models, dataset, method, data_dir)
        plt.close(fig)
        return strips
    except Exception as exc:
        return f'<div style="color:#a00"><b>Cannot explain this:</b> {html.escape(str(exc))}</div>'
