"""The book's figure style and its plots (one seaborn theme and palette for every chapter).

Each function draws one figure of a chapter and returns the matplotlib Figure, with
labelled axes; the notebook adds the caption in its prose.
"""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

__all__ = ["PALETTE", "set_theme", "bound_gap", "training_curves", "norm_vs_kl", "partial_r2_bars", "beyond_frequency",
           "budget_curve", "quantity_scatter", "LABELS", "quantity_grid", "information_vs_frequency", "kl_vs_size",
           "word_weight_bars", "lines", "weight_scatter", "trajectory", "figure2", "figure3", "dataset_gaps",
           "design_trajectories", "pair_heatmaps", "share_bars", "aopc_bars", "optimum_slopes", "pmi_rows_plot",
           "claims_picture", "RUN_LABELS", "run_label"]

PALETTE = "colorblind"


def set_theme() -> None:
    """One theme for the whole book."""
    sns.set_theme(context="notebook", style="whitegrid", palette=PALETTE)
    plt.rcParams.update({"figure.dpi": 100, "savefig.bbox": "tight", "axes.titlesize": "medium"})


def bound_gap(check: pd.DataFrame):
    """Histogram of log-likelihood minus its Jensen bound, by label (theory chapter)."""
    fig, ax = plt.subplots(figsize=(6, 3.5))
    data = check.assign(pair=check["y"].map({1: "positive (y=1)", 0: "negative (y=0)"}))
    sns.histplot(data, x="gap", hue="pair", bins=60, element="step", ax=ax)
    ax.axvline(0, color="black", lw=1)
    ax.set(xlabel="log p(y|s,s') - Jensen bound", ylabel="sentence pairs")
    return fig


def training_curves(trajectories: pd.DataFrame):
    """Loss and R^2 of ||w||^2 and the G-norm on each model's exact KL against the training step (theory chapter)."""
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.5))
    for ax, col, label in zip(axes, ["loss", "r2_norm2_vs_kl", "r2_gnorm_vs_kl"],
                              ["training loss", "R$^2$ of $||w||^2$ on KL", "R$^2$ of G-norm on KL"]):
        sns.lineplot(trajectories, x="step", y=col, hue="model", ax=ax, legend=ax is axes[-1])
        ax.set(xlabel="training step", ylabel=label)
    if axes[-1].get_legend():
        sns.move_legend(axes[-1], "upper left", bbox_to_anchor=(1, 1))
    return fig


def norm_vs_kl(words: pd.DataFrame, fits: dict, y: str = "norm2"):
    """Each word's squared norm (or G-norm) against the exact KL its model is measured on, one panel per model."""
    models = list(fits)
    ncols = min(3, len(models))  # at most three panels a row, so each stays readable
    nrows = -(-len(models) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(3.6 * ncols, 3.2 * nrows), squeeze=False)
    flat = axes.ravel()
    for ax, model in zip(flat, models):
        kl = fits[model]["kl_column"]
        sns.scatterplot(words[words["model"] == model], x=kl, y=y, hue="spread", palette=PALETTE, s=16, ax=ax,
                        legend=ax is flat[ncols - 1])
        ax.set(xlabel="exact KL(w)" + (" (s' = s)" if kl == "kl_same" else ""),
               ylabel="||w||$^2$" if y == "norm2" else "G-norm", title=model)
    for ax in flat[len(models):]:
        ax.set_visible(False)
    if flat[ncols - 1].get_legend():
        sns.move_legend(flat[ncols - 1], "upper left", bbox_to_anchor=(1, 1), title="spread")
    fig.tight_layout()
    return fig


def optimum_slopes(table: pd.DataFrame):
    """Slope of the optimal G-norm on KL against the corpus's smoothing, one line per positive definition, with
    Oyama's factor 2 drawn in (theory chapter; the table of ``theory.optimum_by_smoothing``)."""
    fig, ax = plt.subplots(figsize=(6, 3.5))
    data = table[table["bounded"]].assign(positive=lambda t: t["positive"].map(
        {"topic": "paraphrase positives (no self-pairs)", "same": "s' = s (self-pairs)"}).fillna(t["positive"]))
    sns.lineplot(data, x="smoothing", y="slope", hue="positive", marker="o", ax=ax)
    ax.axhline(2, color="black", lw=1, ls="--")
    ax.annotate("2 (Oyama et al.'s small-PMI limit)", xy=(0.02, 2), xytext=(0, 4), textcoords="offset points",
                xycoords=("axes fraction", "data"), fontsize="small")
    ax.set(xlabel="smoothing ε (background mass in every topic)", ylabel="slope of optimal G-norm on KL")
    sns.move_legend(ax, "lower left", title="")
    return fig


def pmi_rows_plot(rows: pd.DataFrame):
    """One line per word: its PMI with every context word, contexts sorted from the highest PMI down (theory
    chapter; the table of ``theory.pmi_rows``)."""
    fig, ax = plt.subplots(figsize=(6, 3.5))
    data = rows.assign(word=rows["word"] + " (spread " + rows["spread"].astype(str) + ", KL "
                       + rows["kl"].round(2).astype(str) + ")")
    sns.lineplot(data, x="rank", y="pmi", hue="word", ax=ax)
    ax.axhline(0, color="black", lw=1)
    ax.set(xlabel="context words c, from the highest PMI(w, c) down", ylabel="PMI(w, c)")
    sns.move_legend(ax, "upper right", title="")
    return fig


def partial_r2_bars(fits: dict):
    """Per model: what KL explains of ||w||^2 beyond frequency, and what frequency explains beyond KL (partial R^2;
    the mean over the last checkpoints, ``<key>_last``, where the fits have it)."""
    rows = [{"model": m, "which": label, "partial R$^2$": f.get(f"{key}_last", f[key])} for m, f in fits.items()
            for key, label in (("partial_r2_kl_given_i", "KL, given frequency"),
                               ("partial_r2_i_given_kl", "frequency (I), given KL"))]
    fig, ax = plt.subplots(figsize=(8, 3.2))
    sns.barplot(pd.DataFrame(rows), x="model", y="partial R$^2$", hue="which", ax=ax)
    ax.set(xlabel="", ylim=(0, 1))
    ax.tick_params(axis="x", rotation=20)
    sns.move_legend(ax, "upper right", title="")
    fig.tight_layout()
    return fig


def _spans(point, low, high):
    """Error-bar lengths below and above ``point`` for an interval [low, high] (0 where the point lies outside)."""
    point, low, high = (np.asarray(v, float) for v in (point, low, high))
    return [np.clip(point - low, 0, None), np.clip(high - point, 0, None)]


def beyond_frequency(table: pd.DataFrame, method: str = "ig"):
    """Per model (chapter 06's frequency table): what KL explains of the word weight beyond log-frequency, and
    what log-frequency explains beyond KL (partial R², with 95% bootstrap intervals) -- chapter 01's picture
    for the toy corpus's norms, drawn for the sentence encoders."""
    t = table[table["method"] == method].reset_index(drop=True)
    series = (("partial_r2", "KL, given log-frequency"), ("partial_r2_control", "log-frequency, given KL"))
    fig, ax = plt.subplots(figsize=(8, 0.45 * len(t) + 1.4))
    y = np.arange(len(t))
    for k, (key, label) in enumerate(series):
        pos = y + (k - 0.5) * 0.38
        ax.barh(pos, t[key], height=0.36, label=label, color=sns.color_palette(PALETTE)[k])
        # a percentile interval need not contain its point estimate: the bar reaches from the interval's ends
        ax.errorbar(t[key], pos, xerr=_spans(t[key], t[f"{key}_low"], t[f"{key}_high"]), fmt="none",
                    ecolor="black", elinewidth=1, capsize=2)
    ax.set_yticks(y, t["model"])
    ax.invert_yaxis()
    ax.set(xlabel="partial R² of the word weight", ylabel="", xlim=(0, max(0.05, float(
        t[["partial_r2_high", "partial_r2_control_high"]].max().max()) * 1.1)))
    ax.legend(loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=2, frameon=False)
    fig.tight_layout()
    return fig


def budget_curve(curve: pd.DataFrame):
    """SimCSE's STS-B Spearman from the MLM minus from random weights (95% paired interval) against the MLM's
    pre-training steps, one line per width (chapter 05's stand-in): above 0, pre-training helps."""
    fig, ax = plt.subplots(figsize=(6.5, 3.4))
    if not len(curve):  # the figure is referenced from the text: it says what is missing instead of vanishing
        ax.text(0.5, 0.5, "not measured on this machine:\npython benchmarks/mlm_budget.py", ha="center",
                va="center", transform=ax.transAxes)
        ax.set(xticks=[], yticks=[])
        return fig
    for k, (width, part) in enumerate(curve.sort_values("mlm_steps").groupby("mlm_hidden", sort=True)):
        colour = sns.color_palette(PALETTE)[k]
        ax.errorbar(part["mlm_steps"], part["stsb_diff"],
                    yerr=_spans(part["stsb_diff"], part["stsb_diff_low"], part["stsb_diff_high"]),
                    marker="o", capsize=3, color=colour, label=f"width {int(width)}")
    ax.axhline(0, color="black", lw=0.8)
    ax.text(0.01, 0.97, "above 0: pre-training helps", transform=ax.transAxes, va="top", fontsize=8, color="0.35")
    ax.set_xscale("log")
    steps = sorted(curve["mlm_steps"].unique())
    ax.set_xticks(steps, [f"{int(s):,}" for s in steps])  # the budgets measured, not log decades
    ax.minorticks_off()
    ax.set_ylim(top=max(0.02, float(curve["stsb_diff_high"].max()) + 0.02))
    ax.set(xlabel="MLM pre-training steps", ylabel="STS-B Spearman:\nfrom the MLM − from random")
    ax.legend(frameon=False)
    fig.tight_layout()
    return fig


def quantity_scatter(info: pd.DataFrame, x: str, y: str, hue: str | None = None, logx: bool = False,
                     ax=None, label: dict | None = None):
    """Scatter of two per-word quantities of an information table, with Pearson and Spearman in the title."""
    from scipy.stats import pearsonr, spearmanr

    label = label or {}
    if ax is None:
        _, ax = plt.subplots(figsize=(4.5, 3.5))
    xs = np.log10(info[x]) if logx else info[x]
    sns.scatterplot(x=xs, y=info[y], hue=info[hue] if hue else None, s=8, alpha=0.5, linewidth=0, ax=ax)
    ax.set(xlabel=("log10 " if logx else "") + label.get(x, x), ylabel=label.get(y, y),
           title=f"Pearson {pearsonr(info[x], info[y])[0]:.2f}, Spearman {spearmanr(info[x], info[y])[0]:.2f}")
    return ax.figure


LABELS = {"kl": "KL(w)", "self_info": "I(w)", "idf": "IDF", "sif": "SIF weight", "count": "count"}

#: Chapter 05's runs as figures and tables name them (the ids stay in parameters and ``results/finetune/``). The
#: step-0 checkpoint of "SimCSE from the MLM" is the *self-trained MLM* of chapters 06-11, its last checkpoint the
#: *self-trained SimCSE*.
RUN_LABELS = {"mlm_then_simcse": "SimCSE from the MLM", "mlm_only": "MLM trained on (control)",
              "simcse_from_random": "SimCSE from random weights (control)"}


def run_label(run: str, objective: str | None = None) -> str:
    """A run's reader-facing name (:data:`RUN_LABELS`; an unknown id is shown as it is), with its objective."""
    label = RUN_LABELS.get(run, run)
    return f"{label}, {objective}" if objective and objective != "mlm" else label


def quantity_grid(info: pd.DataFrame, xs: list[str], ys: list[str]):
    """One scatter per (x, y) pair of per-word quantities, with Pearson and Spearman (appendix B)."""
    fig, axes = plt.subplots(len(ys), len(xs), figsize=(4.2 * len(xs), 3.4 * len(ys)), squeeze=False)
    for r, y in enumerate(ys):
        for c, x in enumerate(xs):
            quantity_scatter(info, x, y, ax=axes[r][c], label=LABELS)
    fig.tight_layout()
    return fig


def information_vs_frequency(info: pd.DataFrame):
    """KL(w) and I(w) against log10 count: how strongly both track frequency."""
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.5))
    for ax, y in zip(axes, ["kl", "self_info"]):
        quantity_scatter(info, "count", y, logx=True, ax=ax, label=LABELS)
    fig.tight_layout()
    return fig


def kl_vs_size(by_size: pd.DataFrame):
    """KL against log10 count for corpora of different sizes (the small-corpus bias of rare words)."""
    fig, ax = plt.subplots(figsize=(6, 3.8))
    data = by_size.assign(log10_count=np.log10(by_size["count"]))
    sns.lineplot(data, x="log10_count", y="kl", hue="n_sentences", estimator="median", errorbar=None,
                 palette="viridis", ax=ax)
    ax.set(xlabel="log10 count of the word in the sample", ylabel="median KL(w)")
    ax.legend(title="sentences")
    return fig


def word_weight_bars(tables: dict, texts: dict, value: str = "weight", ncols: int = 3):
    """Word weights of a few sentences as bars, one panel per sentence, one colour per setting/model.

    ``tables``: name -> word-weight table; ``texts``: sentence_id -> sentence (panel titles).
    """
    data = pd.concat([t.assign(setting=name) for name, t in tables.items()], ignore_index=True)
    data = data[data["sentence_id"].isin(list(texts))]
    ncols = min(ncols, len(texts))
    nrows = -(-len(texts) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(5 * ncols, 3.3 * nrows), squeeze=False)
    for ax, (sid, text) in zip(axes.flat, texts.items()):
        d = data[data["sentence_id"] == sid]
        labels = d.drop_duplicates("word_index").sort_values("word_index")["word"].tolist()
        sns.barplot(d, x="word_index", y=value, hue="setting", ax=ax, legend=ax is axes.flat[0])
        ax.set_xticks(range(len(labels)), labels, rotation=45)
        ax.set(xlabel="", ylabel="word weight" if value == "weight" else value, title=text)
    for ax in list(axes.flat)[len(texts):]:
        ax.set_visible(False)
    fig.tight_layout()
    return fig


def lines(data: pd.DataFrame, x: str, y: str, hue: str | None = None, xlabel: str | None = None,
          ylabel: str | None = None, logy: bool = False, hline: float | None = None, logx: bool = False):
    """A line plot with markers (convergence and error curves)."""
    fig, ax = plt.subplots(figsize=(5.5, 3.5))
    sns.lineplot(data, x=x, y=y, hue=hue, marker="o", ax=ax)
    if hline is not None:
        ax.axhline(hline, color="grey", ls="--", lw=1)
    if logy:
        ax.set_yscale("log")
    if logx:
        ax.set_xscale("log", base=2)
    ax.set(xlabel=xlabel or x, ylabel=ylabel or y)
    return fig


def weight_scatter(a: pd.DataFrame, b: pd.DataFrame, label_a: str, label_b: str):
    """Word weights of two settings on the same words, with the identity line and Spearman in the title."""
    from scipy.stats import spearmanr

    merged = a.merge(b, on=["sentence_id", "word_index", "word"], suffixes=("_a", "_b"))
    fig, ax = plt.subplots(figsize=(4.8, 4.2))
    sns.scatterplot(merged, x="weight_a", y="weight_b", s=14, alpha=0.6, linewidth=0, ax=ax)
    top = float(max(merged["weight_a"].max(), merged["weight_b"].max()))
    ax.plot([0, top], [0, top], color="grey", ls="--", lw=1)
    ax.set(xlabel=f"{label_a} word weight", ylabel=f"{label_b} word weight",
           title=f"Spearman {spearmanr(merged['weight_a'], merged['weight_b'])[0]:.2f} over {len(merged)} words")
    return fig


def trajectory(traj: pd.DataFrame):
    """R^2 and beta on KL and I, and STS Spearman, against the fine-tuning step, one line per run."""
    data = traj.assign(run_objective=[run_label(r, o) for r, o in zip(traj["run"], traj["objective"])])
    panels = [("r2_kl", "R$^2$ (IG ~ KL)"), ("beta_kl", "β (IG ~ KL)"), ("r2_self_info", "R$^2$ (IG ~ I)"),
              ("beta_self_info", "β (IG ~ I)"), ("stsb_spearman", "STS-B Spearman"),
              ("r2_kl_added_over_subwords", "R$^2$ added by KL over subword count")]
    fig, axes = plt.subplots(3, 2, figsize=(11, 9))
    for ax, (col, label) in zip(axes.flat, panels):
        sns.lineplot(data, x="step", y=col, hue="run_objective", marker="o", ax=ax, legend=ax is axes.flat[1])
        ax.set(xlabel="fine-tuning step", ylabel=label)
        ax.set_xscale("symlog", linthresh=10)
    sns.move_legend(axes.flat[1], "upper left", bbox_to_anchor=(1, 1), title="run")
    fig.tight_layout()
    return fig


def figure2(fitted: dict, quantity: str = "kl", max_points: int = 4000, seed: int = 0):
    """The paper's Figure 2: every word occurrence's weight against KL (or I) with the OLS line, one panel per model.

    ``fitted``: {model: (joined occurrences, OLS fit)}, as :func:`helpers.regression.figure2_data` gives them.
    """
    fig, axes = plt.subplots(1, len(fitted), figsize=(4.6 * len(fitted), 3.8), squeeze=False, sharey=True)
    for ax, (name, (data, fit)) in zip(axes[0], fitted.items()):
        shown = data.sample(min(max_points, len(data)), random_state=seed)
        ax.scatter(shown[quantity], shown["weight"], s=5, alpha=0.25, linewidth=0)
        xs = np.linspace(data[quantity].min(), data[quantity].max(), 50)
        ax.plot(xs, fit["intercept"] + fit["beta"] * xs, color="C3", lw=2)
        ax.set(xlabel=LABELS.get(quantity, quantity), ylabel="word weight (mean 1 per sentence)",
               title=f"{name}\nR$^2$ = {fit['r2']:.2f}, β = {fit['beta']:.3f}")
    fig.tight_layout()
    return fig


def figure3(weights: dict, info: pd.DataFrame, texts: dict):
    """The paper's Figure 3: per word, the weights of several models beside KL and I (scaled to mean 1 per sentence)."""
    fig, axes = plt.subplots(len(texts), 1, figsize=(8, 2.9 * len(texts)), squeeze=False)
    lookup = info.set_index("word")
    for ax, (sid, text) in zip(axes[:, 0], texts.items()):
        frames = []
        for name, w in weights.items():
            frames.append(w[w["sentence_id"] == sid][["word_index", "word", "weight"]].assign(series=name))
        base = frames[0][["word_index", "word"]]
        for q in ("kl", "self_info"):
            values = lookup.reindex(base["word"])[q].to_numpy()
            frames.append(base.assign(weight=values / np.nanmean(values), series=f"{LABELS[q]} (scaled)"))
        data = pd.concat(frames, ignore_index=True)
        sns.pointplot(data, x="word_index", y="weight", hue="series", ax=ax, markers=["o", "s", "^", "v", "D"][: data["series"].nunique()],
                      linestyles="", dodge=0.3, legend=ax is axes[0, 0])
        ax.set_xticks(range(len(base)), base["word"].tolist())
        ax.set(xlabel="", ylabel="weight / scaled quantity", title=text)
    if axes[0, 0].get_legend():
        sns.move_legend(axes[0, 0], "upper left", bbox_to_anchor=(1, 1), title="")
    fig.tight_layout()
    return fig


def dataset_gaps(table: pd.DataFrame, stat: str = "r2"):
    """Appendix F at a glance: R^2 (or β) of every model on every dataset, one panel per method and quantity."""
    data = table.assign(panel=table["method"].str.upper() + " ~ " + table["quantity"].map(LABELS))
    g = sns.catplot(data, x="dataset", y=stat, hue="model", col="panel", kind="point", height=3.4, aspect=1.1,
                    dodge=0.3, linestyles="", sharey=False)
    g.set_axis_labels("dataset", "R$^2$" if stat == "r2" else "β")
    return g.figure


def design_trajectories(designs: pd.DataFrame):
    """β and R² of IG weight on KL against the training step, with 95% intervals, for every design and objective
    measured at more than one checkpoint (chapter 05's designs)."""
    runs = designs.groupby(["design", "objective"]).filter(lambda d: d["steps"].nunique() > 1)
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.6))
    if runs.empty:
        for ax in axes:
            ax.text(0.5, 0.5, "no design with several checkpoints", ha="center", transform=ax.transAxes)
        return fig
    for (design, objective), d in runs.groupby(["design", "objective"], sort=False):
        d = d.sort_values("steps")
        for ax, stat in zip(axes, ("beta", "r2")):
            ax.errorbar(d["steps"], d[stat], yerr=_spans(d[stat], d[f"{stat}_low"], d[f"{stat}_high"]),
                        marker="o", capsize=3, label=f"{design}: {objective}")
    axes[0].axhline(0, color="grey", lw=0.8, ls="--")
    axes[0].set(xlabel="training step", ylabel="β on KL")
    axes[1].set(xlabel="training step", ylabel="R² on KL")
    axes[1].legend(fontsize="small", bbox_to_anchor=(1.02, 1), loc="upper left")
    fig.tight_layout()
    return fig


def pair_heatmaps(tables: dict, title: str = ""):
    """Word-pair contribution matrices side by side, one per model (rows: words of a; columns: words of b), on a
    diverging scale centred at zero, each panel scaled to its own largest contribution. ``tables``: {label: pair
    table} (``helpers.attribution.pairs.pair_weights``' output; its ``attrs["score"]`` is the similarity)."""
    fig, axes = plt.subplots(1, len(tables), figsize=(4.6 * len(tables), 3.8), squeeze=False)
    for ax, (label, table) in zip(axes[0], tables.items()):
        # the same pivot as helpers.attribution.pairs.pair_matrix, written here so that drawing imports nothing that computes
        m = table.pivot_table(index=["index_a", "word_a"], columns=["index_b", "word_b"], values="contribution",
                              sort=True)
        rows, cols = [w for _, w in m.index], [w for _, w in m.columns]
        top = float(np.abs(m.to_numpy()).max()) or 1.0
        sns.heatmap(m, ax=ax, cmap="RdBu_r", vmin=-top, vmax=top, cbar=False, square=False,
                    xticklabels=cols, yticklabels=rows)
        ax.set(xlabel="", ylabel="")
        ax.set_title(f"{label}\nsimilarity {table.attrs['score']:.2f}, pairs {m.to_numpy().sum():.2f}", fontsize="small")
        ax.tick_params(labelsize="small")
    if title:
        fig.suptitle(title, fontsize="medium")
    fig.tight_layout()
    return fig


def share_bars(summary: pd.DataFrame):
    """Per model: the share of the absolute pair contribution carried by identical words and by top-KL pairs."""
    data = summary.melt(id_vars="model", value_vars=["share_identical", "share_top_kl"], var_name="pairs",
                        value_name="share")
    data["pairs"] = data["pairs"].map({"share_identical": "identical words", "share_top_kl": "both words top-KL quartile"})
    fig, ax = plt.subplots(figsize=(7, 3.4))
    sns.barplot(data, x="share", y="model", hue="pairs", ax=ax)
    ax.set(xlabel="share of the total absolute pair contribution", ylabel="")
    ax.legend(fontsize="small", title=None)
    fig.tight_layout()
    return fig


def aopc_bars(table: pd.DataFrame, removal: str = "mask"):
    """AOPC (area over the deletion curve) of every ranking, per model, with its bootstrap interval."""
    data = table[table["removal"] == removal]
    models = list(dict.fromkeys(data["model"]))
    fig, axes = plt.subplots(1, len(models), figsize=(4.2 * len(models), 3.6), sharey=True, squeeze=False)
    for ax, model in zip(axes[0], models):
        d = data[data["model"] == model].sort_values("aopc")
        ax.barh(d["ranking"], d["aopc"], xerr=[d["aopc"] - d["aopc_low"], d["aopc_high"] - d["aopc"]],
                color=[("C3" if r in ("IG", "SHAP") else "C0" if r in ("KL", "I", "IDF") else "C7")
                       for r in d["ranking"]], capsize=2)
        ax.set(title=model, xlabel=f"AOPC ({removal})")
    fig.tight_layout()
    return fig


def claims_picture(claims: pd.DataFrame, verdicts=("reproduced", "partly reproduced", "not reproduced",
                                                   "not testable offline", "not measured")):
    """The closing chapter's claims x evidence picture: one row per claim, grouped by tier (a heading above each
    group), a dot in the column of its verdict (the table of ``verdicts.claims_table``; each ``claim`` is drawn as
    given, so pass the short form, ``verdict_text.short_claim``)."""
    rows = claims.reset_index(drop=True)
    tiers = list(dict.fromkeys(rows["tier"])) if "tier" in rows else [None]
    labels, ys, headings, y = [], [], [], 0
    for tier in tiers:
        group = rows if tier is None else rows[rows["tier"] == tier]
        if tier is not None:
            headings.append((y, tier))
            y += 1
        for _, row in group.iterrows():
            text = str(row["claim"])
            labels.append(text if len(text) <= 80 else text[:77] + "...")
            ys.append((y, row["verdict"]))
            y += 1
    fig, ax = plt.subplots(figsize=(11, 0.38 * y + 1.3))
    colours = dict(zip(verdicts, sns.color_palette(PALETTE, len(verdicts))))
    for position, verdict in ys:
        ax.scatter(verdicts.index(verdict), -position, s=150, color=colours[verdict], zorder=3)
    for position, tier in headings:
        ax.text(-0.45, -position, tier[0].upper() + tier[1:], ha="left", va="center", fontweight="bold",
                fontsize="small")
        ax.axhline(-position + 0.5, color="grey", lw=0.8)
    short = {"reproduced": "reproduced", "partly reproduced": "partly", "not reproduced": "not",
             "not testable offline": "not testable\noffline", "not measured": "not\nmeasured"}
    ax.set_xticks(range(len(verdicts)), [short.get(v, v) for v in verdicts])
    ax.set_yticks([-p for p, _ in ys], labels, fontsize="small")
    ax.set_xlim(-0.5, len(verdicts) - 0.5)
    ax.set_ylim(-y + 0.5, 0.5)
    ax.xaxis.tick_top()
    ax.grid(axis="y", visible=False)
    fig.tight_layout()
    return fig
