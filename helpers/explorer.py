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
from .units import check_same_units, units_key

__all__ = ["METHODS", "book_models", "reference_information", "explorer_method", "sentence_weights", "palette", "colour_index", "heat_strip",
           "bar_chart", "render", "Explorer", "render_html", "STATIC_METHODS", "static_sentences", "static_data",
           "static_explorer"]

METHODS = {"IG (sketched)": {"method": "ig", "projections": 16}, "IG (exact)": {"method": "ig", "projections": None},
           "SHAP": {"method": "shap"}}


def book_models(pair: dict) -> dict:
    """The explorer's models, ``{label: (name or folder, pooling)}``: the self-trained pair
    (:func:`helpers.training.self_trained_pair`'s dict) and all-MiniLM-L6-v2, the chapter's contrastive reference."""
    return {"self-trained MLM": (str(pair["mlm"]), pair["simcse_pooling"]),
            "self-trained SimCSE": (str(pair["simcse"]), pair["simcse_pooling"]),
            "all-MiniLM-L6-v2": ("all-MiniLM-L6-v2", "mean")}


@lru_cache(maxsize=16)
def _encoder(name: str, pooling: str):
    return load_encoder(name, pooling=pooling)


_REFERENCE: dict = {}


def reference_information(dataset: str, data_dir=None, tokenizer=None) -> pd.DataFrame:
    """KL and I of every word of a reference corpus (the dataset's paper split) in ``tokenizer``'s word units
    (None: bert-base-uncased's), computed once per session and units."""
    key = (dataset, str(data_dir), units_key(tokenizer))
    if key not in _REFERENCE:
        _REFERENCE[key] = word_information(load_sentences(dataset, data_dir=data_dir), tokenizer=tokenizer)
    return _REFERENCE[key]


def explorer_method(method, n_steps: int = 20, max_evals: int = 500):
    """The method object behind the explorer's choice: a label of :data:`METHODS` (with the widget's ``n_steps``
    for IG and ``max_evals`` for SHAP), a registered method's name (its defaults), or a method object as given."""
    from .attribution import Method, make_method, methods as registered

    if isinstance(method, Method):
        return method
    if method not in METHODS and method not in registered():
        raise ValueError(f"method must be one of {list(METHODS)}, a registered method ({', '.join(registered())}) or "
                         f"a method object; got {method!r}.")
    options = dict(METHODS.get(method, {"method": method}))
    kind = options.pop("method")
    given = {"n_steps": n_steps, **options} if kind == "ig" else {"max_evals": max_evals} if kind == "shap" else {}
    return make_method(kind, given)


def sentence_weights(sentence: str, model: str, pooling: str, info, method="IG (sketched)",
            n_steps: int = 20, max_evals: int = 500, data_dir=None) -> pd.DataFrame:
    """One model's word weights for one sentence, with the word's KL and I (``seen`` False: not in the corpus).

    ``info``: a dataset name (its reference table is computed in this model's own word units) or a
    :func:`helpers.information.word_information` table, which must share the model's word units."""
    if not isinstance(sentence, str) or not sentence.strip():
        raise ValueError("Type a sentence first.")
    spec = explorer_method(method, n_steps, max_evals)
    encoder = _encoder(model, pooling)
    if isinstance(info, str):
        info = reference_information(info, data_dir, encoder.tokenizer)
    weights = word_weights(encoder, [sentence], spec, truncate=False, progress=False, gap_warning=1.0)
    check_same_units(weights, info, f"{model}'s weights", "the reference table")
    out = weights.merge(info[["word", "kl", "self_info"]], on="word", how="left")
    out["seen"] = out["kl"].notna()
    return out


def palette(n: int = 256) -> list[str]:
    """The heat strips' colours: matplotlib's ``Reds`` as ``rgb(r,g,b)`` strings (shared with the static explorer)."""
    cmap = plt.get_cmap("Reds", n)
    return [f"rgb({r * 255:.0f},{g * 255:.0f},{b * 255:.0f})" for r, g, b, _ in cmap(np.arange(n))]


def colour_index(weight: float, top: float, n: int = 256) -> int:
    """The palette entry of a weight: 0.85 of the scale at the sentence's top weight (as the JS does)."""
    return int(min(n - 1, max(0, np.floor(0.85 * weight / max(top, 1e-9) * n))))


def heat_strip(table: pd.DataFrame, title: str = "") -> str:
    """HTML: the sentence's words on a white-to-red background by weight; unseen words are dashed."""
    top = max(float(table["weight"].max()), 1e-9)
    colours = palette()
    spans = []
    has_info = {"kl", "self_info"} <= set(table.columns)  # a plain word_weights table has no KL and I
    for _, row in table.iterrows():
        style = (f"background: {colours[colour_index(row['weight'], top)]}; padding: 2px 4px; margin: 1px; "
                 "border-radius: 3px;")
        style += " color: white;" if row["weight"] / top > 0.6 else ""
        seen = bool(row["seen"]) if "seen" in row.index else has_info and pd.notna(row["kl"])
        if has_info and not seen:
            style += " border: 1px dashed #555;"
        info = (f"KL {row['kl']:.2f}, I {row['self_info']:.2f}" if seen else
                "not in the reference corpus" if has_info else "no reference corpus given")
        spans.append(f'<span style="{style}" title="weight {row["weight"]:.2f}; {info}">{html.escape(row["word"])}</span>')
    gap = table["completeness_gap"].max()
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
    tables = {label: sentence_weights(sentence, model, pooling, dataset, method, data_dir=data_dir, **kwargs)
              for label, model, pooling in models}  # each model's reference table in its own word units
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
        from .attribution import methods as registered

        choices = list(METHODS) + [m for m in registered() if m not in ("ig", "shap")]  # a new method shows up here
        self.method = w.Dropdown(options=choices, value="IG (sketched)", description="Method")
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


# --------------------------------------------------------------------------- static explorer (no kernel)
STATIC_METHODS = {"ig": "IG (sketched)", "shap": "SHAP"}


def static_sentences(pool: pd.DataFrame, weights: dict, infos: dict, reference_row: str, n_sentences: int = 50,
                     n_extremes: int = 3, always=()) -> pd.DataFrame:
    """The sentences of the static explorer: ``always`` (the Figure 3 sentences), the first ``n_sentences`` of
    ``pool``, and the ``n_extremes`` sentences of the pool where ``reference_row``'s IG weights follow KL most
    ("effect") and least ("exception"), by per-sentence Spearman correlation. Adds a ``label`` column."""
    from .regression import join_information

    if (reference_row, "ig") not in weights:
        raise ValueError(f"reference_row {reference_row!r} has no IG weights; the rows with IG weights are "
                         f"{sorted(m for m, meth in weights if meth == 'ig')}.")
    joined = join_information(weights[(reference_row, "ig")], infos[reference_row], "kl")
    rho = joined.groupby("sentence_id").apply(lambda d: d["weight"].corr(d["kl"], method="spearman")
                                              if len(d) > 2 else np.nan, include_groups=False).dropna()
    labels = {sid: "Figure 3" for sid in pool.loc[pool["text"].isin(always), "sentence_id"]}
    for sid in pool["sentence_id"].head(n_sentences):
        labels.setdefault(sid, "STS-B")
    for sid in rho.nlargest(n_extremes).index:
        labels[sid] = f"effect: {reference_row} follows KL (ρ {rho[sid]:.2f})"
    for sid in rho.nsmallest(n_extremes).index:
        labels[sid] = f"exception: {reference_row} against KL (ρ {rho[sid]:.2f})"
    chosen = pool[pool["sentence_id"].isin(labels)].copy()
    chosen["label"] = chosen["sentence_id"].map(labels)
    return chosen.reset_index(drop=True)


def static_data(sentences: pd.DataFrame, weights: dict, infos: dict, digits: int = 3) -> dict:
    """Everything the static explorer shows, as plain data: per method, model and sentence the words (in the
    model's own word units), their weights and their KL and I (None where the reference corpus never saw the
    word). ``weights``: {(model, method): word_weights table}; ``infos``: {model: word_information table}."""
    def number(x):
        return None if x is None or (isinstance(x, float) and not np.isfinite(x)) else round(float(x), digits)

    ids = set(sentences["sentence_id"])
    models = list(dict.fromkeys(m for m, _ in weights))
    methods = [k for k in STATIC_METHODS if any(meth == k for _, meth in weights)]
    cells = {}
    for (model, method), table in weights.items():
        info = infos[model].set_index("word")[["kl", "self_info"]]
        sub = table[table["sentence_id"].isin(ids)].merge(info, left_on="word", right_index=True, how="left")
        for sid, part in sub.sort_values(["sentence_id", "word_index"]).groupby("sentence_id"):
            cells.setdefault(method, {}).setdefault(model, {})[str(sid)] = {
                "w": part["word"].tolist(), "x": [number(v) for v in part["weight"]],
                "kl": [number(v) for v in part["kl"]], "i": [number(v) for v in part["self_info"]]}
    return {"sentences": [{"id": str(r.sentence_id), "text": r.text, "label": getattr(r, "label", "")}
                          for r in sentences.itertuples()],
            "models": models, "methods": {m: STATIC_METHODS[m] for m in methods}, "palette": palette(),
            "cells": cells}


_STATIC_SCRIPT = r"""
(function () {
  var root = document.getElementById("static-explorer");
  var data = JSON.parse(document.getElementById("static-explorer-data").textContent);
  function el(tag, attrs, text) {
    var e = document.createElement(tag);
    for (var k in attrs) { e.setAttribute(k, attrs[k]); }
    if (text !== undefined) { e.textContent = text; }  // textContent: every word is escaped
    return e;
  }
  function options(select, items) {
    items.forEach(function (it) { select.appendChild(el("option", {value: it[0]}, it[1])); });
  }
  var controls = el("div", {"class": "se-controls"});
  var sentence = el("select", {id: "se-sentence"}), a = el("select", {id: "se-a"}), b = el("select", {id: "se-b"});
  var method = el("select", {id: "se-method"});
  options(sentence, data.sentences.map(function (s) { return [s.id, (s.label ? "[" + s.label + "] " : "") + s.text]; }));
  var models = data.models.map(function (m) { return [m, m]; });
  options(a, models); options(b, models);
  options(method, Object.keys(data.methods).map(function (m) { return [m, data.methods[m]]; }));
  [["Sentence", sentence], ["Model A", a], ["Model B", b], ["Method", method]].forEach(function (p) {
    var label = el("label", {}, p[0] + " "); label.appendChild(p[1]); controls.appendChild(label);
  });
  var view = el("div", {"class": "se-view"});
  root.appendChild(controls); root.appendChild(view);
  function fmt(x) { return x === null ? "–" : x.toFixed(2); }
  function strip(model, key, cell) {
    var box = el("div", {"class": "se-strip", "data-model": model, "data-slot": key});
    box.appendChild(el("b", {}, key.toUpperCase() + ": " + model));
    var line = el("div", {"class": "se-words"});
    if (!cell) { line.appendChild(el("i", {}, "not computed for this model and method")); box.appendChild(line); return box; }
    var top = Math.max.apply(null, cell.x.concat([1e-9]));
    cell.w.forEach(function (word, k) {
      var idx = Math.min(data.palette.length - 1, Math.max(0, Math.floor(0.85 * cell.x[k] / top * data.palette.length)));
      var span = el("span", {"class": "se-word", "data-weight": cell.x[k], "data-kl": cell.kl[k], "data-i": cell.i[k],
                             title: "weight " + fmt(cell.x[k]) + "; " + (cell.kl[k] === null ? "not in the reference corpus" :
                                    "KL " + fmt(cell.kl[k]) + ", I " + fmt(cell.i[k]))}, word);
      span.style.background = data.palette[idx];
      if (cell.x[k] / top > 0.6) { span.style.color = "white"; }
      if (cell.kl[k] === null) { span.style.border = "1px dashed #555"; }
      line.appendChild(span);
    });
    box.appendChild(line);
    var bars = el("div", {"class": "se-bars"});
    cell.w.forEach(function (word, k) {
      var col = el("div", {"class": "se-bar"});
      var bar = el("div", {"class": "se-fill"}); bar.style.height = Math.round(60 * cell.x[k] / top) + "px";
      col.appendChild(bar); col.appendChild(el("div", {"class": "se-label"}, word)); bars.appendChild(col);
    });
    box.appendChild(bars);
    return box;
  }
  function render() {
    var m = method.value, s = sentence.value;
    view.textContent = "";
    view.setAttribute("data-sentence", s); view.setAttribute("data-method", m);
    [["a", a.value], ["b", b.value]].forEach(function (p) {
      var cell = ((data.cells[m] || {})[p[1]] || {})[s];
      view.appendChild(strip(p[1], p[0], cell));
    });
    var hash = "#sentence=" + encodeURIComponent(s) + "&a=" + encodeURIComponent(a.value) + "&b=" +
               encodeURIComponent(b.value) + "&method=" + encodeURIComponent(m);
    if (location.hash !== hash) { history.replaceState(null, "", hash); }
  }
  function fromHash() {
    var params = {};
    location.hash.replace(/^#/, "").split("&").forEach(function (kv) {
      var p = kv.split("="); if (p.length === 2) { params[p[0]] = decodeURIComponent(p[1]); }
    });
    [["sentence", sentence], ["a", a], ["b", b], ["method", method]].forEach(function (p) {
      if (params[p[0]] !== undefined && Array.prototype.some.call(p[1].options, function (o) { return o.value === params[p[0]]; })) {
        p[1].value = params[p[0]];
      }
    });
  }
  if (data.models.length > 1) { b.value = data.models[1]; }
  fromHash();
  [sentence, a, b, method].forEach(function (s) { s.addEventListener("change", render); });
  window.addEventListener("hashchange", function () { fromHash(); render(); });
  render();
})();
"""

_STATIC_STYLE = """
#static-explorer .se-controls label { display: inline-block; margin: 0 1em 0.4em 0; }
#static-explorer select { max-width: 100%; }
#static-explorer #se-sentence { width: 100%; }
#static-explorer .se-strip { margin: 0.6em 0 1em; }
#static-explorer .se-word { padding: 2px 4px; margin: 1px; border-radius: 3px; font-size: 1.1em; line-height: 2; }
#static-explorer .se-bars { display: flex; align-items: flex-end; gap: 3px; height: 90px; }
#static-explorer .se-bar { display: flex; flex-direction: column; align-items: center; justify-content: flex-end; }
#static-explorer .se-fill { width: 22px; background: #4c72b0; }
#static-explorer .se-label { font-size: 0.7em; max-width: 4.5em; overflow: hidden; white-space: nowrap; }
"""


def static_explorer(data: dict) -> str:
    """The explorer as one self-contained HTML fragment: the data as JSON, a style sheet and a small script
    (plain JavaScript, nothing loaded from a network). The selection is read from and written to the URL's hash:
    ``#sentence=<id>&a=<model>&b=<model>&method=ig|shap``."""
    import json

    payload = json.dumps(data, ensure_ascii=False).replace("</", "<\\/")
    return (f'<style>{_STATIC_STYLE}</style><div id="static-explorer"></div>'
            f'<script type="application/json" id="static-explorer-data">{payload}</script>'
            f"<script>{_STATIC_SCRIPT}</script>")
