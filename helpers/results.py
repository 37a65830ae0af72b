"""The results tables every chapter writes, each declared once: its folder, file name and columns.

A chapter writes a table with ``results.REGRESSION.table.save(df)`` and anyone reads it with
``results.REGRESSION.table.read()`` (the closing chapter's verdicts, the teachers' page, the exercises, the
tests), never by a file name typed elsewhere. ``save`` refuses a table whose columns are not the declared ones
(naming the table, the missing and the unexpected columns) and writes through a temporary file, so a crash never
leaves half a table; ``read`` of a table not yet written names the chapter to run. A new table is one entry
below; ``tests/test_results_tables.py`` fails when a chapter writes a file that is not declared here, or a module
names a results file by a literal string.

The declarations live in the base layer, not beside each chapter's study code, because the analyse layer
(``verdicts``) reads them and may not import the study layer (ARCHITECTURE.md).
"""
from __future__ import annotations

import json
import string
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace

from .config import CHAPTER_RESULTS, results_base, results_dir, write_text_atomic

__all__ = ["Table", "Chapter", "THEORY", "INFORMATION", "IG", "SHAP", "FINETUNE", "REGRESSION", "WORD_WEIGHTS", "DATASETS",
           "PAIRS", "FAITHFULNESS", "REPRODUCED", "EXPLAIN", "RUNNER", "CHAPTERS", "table", "declared_files", "Result"]


@dataclass(frozen=True)
class Table:
    """One results table: ``results/<folder>/<name>.<kind>``. ``name`` may hold ``{fields}`` (chapter 02 writes
    one table per corpus, ``{dataset}_{split}_words``). ``columns``: a CSV's columns (with ``index``, the index's
    name first) or a JSON object's keys. ``more_columns``: further columns named by the run (a model's name, a
    method's extra output) are allowed after the declared ones."""

    name: str
    columns: tuple
    about: str = ""
    index: bool = False
    more_columns: bool = False
    kind: str = "csv"
    folder: str = field(default="", compare=False)
    chapter: str = field(default="", compare=False)

    def file(self, **fields) -> str:
        named = {f for _, f, _, _ in string.Formatter().parse(self.name) if f}
        if set(fields) != named:
            raise ValueError(f"results table {self.folder}/{self.name} is named by "
                             f"{', '.join(f'{f}=' for f in sorted(named)) or 'no field'}; got {sorted(fields) or 'none'}.")
        stem = self.name.format(**fields)
        if "/" in stem or "\\" in stem or stem.startswith("."):
            raise ValueError(f"results table {self.folder}/{self.name}: {fields} would name a file outside "
                             f"results/{self.folder}/.")
        return f"{stem}.{self.kind}"

    def path(self, **fields) -> Path:
        """Where the table is (``$SENTENCE_RESULTS_DIR`` moves the results folder); nothing is created."""
        return results_base() / self.folder / self.file(**fields)

    def check(self, data) -> None:
        """Refuse ``data`` whose columns (keys) differ from the declared ones, naming both sides."""
        if self.kind == "json":
            if not isinstance(data, dict):
                raise TypeError(f"results table {self.folder}/{self.name} is a JSON object; got {type(data).__name__}.")
            found = list(data)
        else:
            found = ([n if n is not None else "" for n in data.index.names] if self.index else []) + list(data.columns)
        missing = [c for c in self.columns if c not in found]
        extra = [c for c in found if c not in self.columns and str(c) != ""]
        if missing or (extra and not self.more_columns):
            raise ValueError(
                f"results table {self.folder}/{self.name} ({self.chapter}) is declared with the columns "
                f"{list(self.columns)}; this one " + "; ".join(
                    part for part in (f"lacks {missing}" if missing else "",
                                      f"has {extra}, which are not declared" if extra and not self.more_columns else "")
                    if part) + ". Change the table or its declaration in helpers/results.py.")

    def save(self, data, **fields) -> Path:
        """Check ``data`` against the declaration and write it (through a temporary file beside it, then renamed)."""
        self.check(data)
        path = results_dir(self.folder) / self.file(**fields)  # the folder created on the first save
        return write_text_atomic(path, json.dumps(data, indent=2) if self.kind == "json"
                                 else lambda out: data.to_csv(out, index=self.index), f"results table {self}")

    def read(self, **fields):
        """The table as the chapter wrote it (a DataFrame, or a dict for JSON). Not written yet: an error naming the
        chapter to run and the tables its folder holds."""
        import pandas as pd

        path = self.path(**fields)
        if not path.is_file():
            written = sorted(p.stem for p in path.parent.glob("*.*")) if path.parent.is_dir() else []
            raise FileNotFoundError(
                f"{path} does not exist: run chapter {self.chapter} first (for example "
                f"`python -m helpers.book run --only {self.chapter[:2]}`), or point SENTENCE_RESULTS_DIR at the "
                f"results folder of a build that ran it" + (f". Tables there: {', '.join(written)}." if written else "."))
        if self.kind == "json":
            return json.loads(path.read_text())
        return pd.read_csv(path, keep_default_na=False, na_values=[""])  # an index comes back as its first column

    def read_or_none(self, **fields):
        """:meth:`read`, or None when the chapter has not written the table (the closing chapter's "not measured")."""
        try:
            return self.read(**fields)
        except FileNotFoundError:
            return None

    def __str__(self) -> str:
        return f"results/{self.folder}/{self.name}.{self.kind}"


class Chapter(SimpleNamespace):
    """One chapter's tables, as attributes (``results.REGRESSION.table``)."""

    def tables(self) -> dict:
        return {k: v for k, v in vars(self).items() if isinstance(v, Table)}


class Result:
    """What a chapter's study returns: its tables by the names its chapter declares (``study.aopc``,
    ``study["aopc"]``), each checked against its declaration when the study hands it over, and written by
    :meth:`save` (one call in the chapter, in place of one ``save`` per table). A table the chapter does not
    declare, or with other columns, is refused here, naming the chapter and the table. ``figures``: what the
    chapter's figures draw besides the tables (:attr:`figures`), not written."""

    def __init__(self, chapter: Chapter, figures: dict | None = None, **tables):
        declared = chapter.tables()
        unknown = sorted(set(tables) - set(declared))
        if unknown:
            raise ValueError(f"chapter {chapter.chapter} declares the tables {sorted(declared)}, not {unknown}: "
                             "declare a new table in helpers/results.py first.")
        for name, data in tables.items():
            declared[name].check(data)
        self.chapter, self.tables = chapter, dict(tables)
        #: what the chapter's figures and displays draw that is not a results table (a model's word-weight tables
        #: by model, a shorter list for the page); kept beside the tables, never written by :meth:`save`
        self.figures = dict(figures or {})

    def __getitem__(self, name: str):
        return self.tables[name]

    def __getattr__(self, name: str):  # only for names that are not attributes: the tables
        tables = self.__dict__.get("tables", {})  # (not self.tables: a copy calls this before __init__ ran)
        if name in tables:
            return tables[name]
        raise AttributeError(f"this result has no table {name!r}; it has {sorted(tables)}.")

    def save(self) -> dict:
        """Write every table (:meth:`Table.save`); returns {name: path}."""
        declared = self.chapter.tables()
        return {name: declared[name].save(data) for name, data in self.tables.items()}

    def __repr__(self) -> str:
        shapes = ", ".join(f"{k}: {getattr(v, 'shape', len(v))}" for k, v in self.tables.items())
        return f"<Result of {self.chapter.chapter}: {shapes}>"


def _chapter(chapter: str, folder: str, **tables: Table) -> Chapter:
    if CHAPTER_RESULTS.get(chapter) != folder:
        raise ValueError(f"{chapter} writes results/{CHAPTER_RESULTS.get(chapter)}/, not results/{folder}/.")
    return Chapter(chapter=chapter, folder=folder, **{
        key: Table(t.name, tuple(t.columns), t.about, t.index, t.more_columns, t.kind, folder, chapter)
        for key, t in tables.items()})


#: The columns of a word-weight table (``helpers.attribution.word_weights``), shared by five tables below.
WORD_TABLE = ('sentence_id', 'word_index', 'word', 'weight', 'raw_weight', 'n_subwords', 'completeness_gap')

THEORY = _chapter('01_theory', 'theory',
    summary=Table('summary', ('pairs_checked', 'violations', 'min_gap', 'median_gap', 'spearman_kl_i', 'spearman_kl_same_i',
            'vocabulary', 'models', 'corpus', 'seed', 'seeds', 'last_checkpoints', 'optimum',),
                "the bound's check, KL vs I, the seeds and the optimum (Eqs. eq-jensen, eq-oyama)", kind="json"),
    words=Table('words', ('model', 'word', 'spread', 'frequency', 'kl', 'kl_same', 'norm2', 'gnorm',),
                "each toy word's KL and squared norm in every model"),
    trajectories=Table('trajectories', ('step', 'loss', 'r2_norm2_vs_kl', 'slope_norm2_vs_kl', 'r2_gnorm_vs_kl', 'slope_gnorm_vs_kl',
            'partial_r2_kl_given_i', 'partial_r2_i_given_kl', 'model', 'seed',),
                'R² of squared norm on KL along training'),
    optimum=Table('optimum', ('smoothing', 'positive', 'bounded', 'share_zero_pairs', 'slope', 'r2', 'max_abs_pmi',),
                'the closed-form SGNS optimum under smoothing'),
)
INFORMATION = _chapter('02_information', 'information',
    words=Table('{dataset}_{split}_words', ('word', 'count', 'p', 'kl', 'self_info', 'idf', 'sif',),
                "each word's count, p, KL, I, idf and SIF weight in one corpus (Eq. eq-kl)"),
)
IG = _chapter('03_integrated_gradients', 'ig',
    stsb_sample_weights=Table('stsb_sample_weights', WORD_TABLE,
                'IG word weights of the STS-B sample'),
    figure3_exact_weights=Table('figure3_exact_weights', WORD_TABLE,
                "exact IG weights of Figure 3's sentences"),
    completeness=Table('completeness', ('quadrature', 'n_steps', 'max_gap', 'mean_gap',),
                'the worst completeness gap per quadrature and number of points'),
    sketch_error=Table('sketch_error', ('projections', 'seed', 'spearman', 'median_rel_error',),
                "the sketch's error against exact IG per size and seed"),
    baselines=Table('baselines', ('a', 'b', 'n_words', 'spearman', 'median_rel_diff',),
                'agreement of word weights between IG baselines'),
)
SHAP = _chapter('04_shap', 'shap',
    stsb_sample_weights=Table('stsb_sample_weights', WORD_TABLE,
                'SHAP word weights of the STS-B sample'),
    ig_vs_shap=Table('ig_vs_shap', ('a', 'b', 'n_words', 'spearman', 'median_rel_diff', 'level', 'sentence_id',),
                'agreement of IG and SHAP weights, overall and per sentence'),
    mask_choice=Table('mask_choice', ('a', 'b', 'n_words', 'spearman', 'median_rel_diff',),
                "agreement between SHAP's two maskings"),
    cost=Table('cost', ('shap_seconds_per_sentence', 'shap_other_mask_seconds_per_sentence', 'ig_seconds_per_sentence',
            'max_evals', 'ig_n_steps', 'ig_projections', 'worst_additivity_gap',),
                "seconds per sentence of SHAP and IG, and SHAP's worst additivity gap", kind="json"),
)
FINETUNE = _chapter('05_finetuning', 'finetune',
    designs=Table('designs', ('design', 'objective', 'steps', 'r2', 'r2_low', 'r2_high', 'beta', 'beta_low', 'beta_high',
            'stsb_spearman', 'minutes',),
                "the matched designs' R², β and STS-B"),
    contrasts=Table('contrasts', ('design', 'comparison', 'r2_before', 'r2_after', 'beta_before', 'beta_after', 'stsb_before',
            'stsb_after', 'model', 'base', 'method', 'quantity', 'baseline', 'n_sentences', 'r_model',
            'r_base', 'r_diff', 'beta_model', 'beta_base', 'beta_diff', 'r2_model', 'r2_base',
            'r_diff_low', 'r_diff_high', 'beta_diff_low', 'beta_diff_high', 'beta_model_low', 'p_r',
            'p_beta', 'verdict',),
                "the paired contrasts of the designs and of the self-trained pair (chapter 12's rule)"),
    stand_in=Table('stand_in', ('corpus_sentences', 'corpus_words', 'mlm_steps', 'mlm_hidden', 'mlm_layers', 'masked_accuracy',
            'perplexity', 'unigram_accuracy', 'unigram_perplexity', 'masked_tokens',
            'simcse_from_mlm_stsb', 'simcse_from_random_stsb', 'stsb_diff', 'stsb_diff_low',
            'stsb_diff_high', 'pretraining_helps',),
                'what the self-trained pair stands for: masked accuracy, perplexity, STS-B'),
    budget_curve=Table('budget_curve', ('mlm_steps', 'mlm_hidden', 'mlm_layers', 'precision', 'mlm_minutes', 'masked_accuracy',
            'perplexity', 'unigram_perplexity', 'simcse_from_mlm_stsb', 'simcse_from_random_stsb',
            'stsb_diff', 'stsb_diff_low', 'stsb_diff_high', 'pretraining_helps', 'cpu_units', 'threads',
            'commit', 'date', 'run', 'total_minutes',),
                'the MLM pre-training budget curve'),
    trajectory=Table('trajectory', ('run', 'objective', 'step', 'stsb_spearman', 'r2_kl', 'beta_kl', 'r2_kl_low', 'r2_kl_high',
            'beta_kl_low', 'beta_kl_high', 'r2_self_info', 'beta_self_info', 'r2_self_info_low',
            'r2_self_info_high', 'beta_self_info_low', 'beta_self_info_high', 'beta_kl_given_subwords',
            'r2_kl_added_over_subwords', 'train_loss',),
                'R², β and STS-B at every saved SimCSE checkpoint'),
    checkpoint_weights=Table('checkpoint_weights', (*WORD_TABLE, 'run', 'objective', 'step',),
                'the word weights behind the trajectory'),
    summary=Table('summary', ('run', 'objective', 'quantity', 'start_step', 'end_step', 'start', 'end', 'change',),
                "start and end of each run's trajectory"),
)
REGRESSION = _chapter('06_regression', 'regression',
    table=Table('table', ('dataset', 'model', 'pooling', 'base', 'method', 'quantity', 'r2', 'beta', 'r2_low', 'r2_high',
            'beta_low', 'beta_high', 'n_points', 'n_sentences', 'sketch_spearman', 'sketch_median_rel_err',),
                'Table 1: R² and β of weight on KL and I per model and method (Eq. eq-regression)'),
    contrasts=Table('contrasts', ('comparison', 'model', 'base', 'method', 'quantity', 'baseline', 'n_sentences', 'r_model',
            'r_base', 'r_diff', 'r_diff_low', 'r_diff_high', 'p_r', 'beta_model', 'beta_base', 'beta_diff',
            'beta_diff_low', 'beta_diff_high', 'p_beta', 'beta_model_low', 'r2_model', 'r2_base',
            'verdict',),
                'the paired contrasts of Table 1, the frequency control and the baselines'),
    frequency=Table('frequency', ('dataset', 'model', 'pooling', 'base', 'method', 'quantity', 'control', 'r2_alone',
            'r2_alone_low', 'r2_alone_high', 'r2_control', 'r2_control_low', 'r2_control_high', 'r2_both',
            'r2_both_low', 'r2_both_high', 'partial_r2', 'partial_r2_low', 'partial_r2_high',
            'partial_r2_control', 'partial_r2_control_low', 'partial_r2_control_high', 'beta_beyond',
            'beta_beyond_low', 'beta_beyond_high', 'n_points', 'n_sentences',),
                'R² and partial R² with log-frequency as a second regressor (Eq. eq-beyond-frequency)'),
    baselines=Table('baselines', ('model', 'kind', 'base', 'baseline', 'r2', 'r2_low', 'r2_high', 'beta', 'beta_low',
            'beta_high', 'n_sentences', 'displacement_beta', 'displacement_r2', 'spearman_ig_displacement',),
                'β and R² under each IG baseline, with the displacement mechanism'),
    subword_control=Table('subword_control', ('model', 'beta', 'r2', 'r2_covariates_only', 'n_points',),
                'the slope on KL with the subword count as a covariate', index=True),
    choices=Table('choices', ('model', 'word_agg', 'normalize', 'quantity', 'r2', 'beta', 'r2_low', 'r2_high', 'beta_low',
            'beta_high',),
                'R² and β under each word merge and normalisation'),
    word_weights=Table('word_weights', (*WORD_TABLE, 'model', 'method',),
                'every word weight of the roster run'),
    information=Table('information', ('word', 'count', 'p', 'kl', 'self_info', 'idf', 'sif', 'model',),
                'KL and I of the words the roster run attributed'),
)
WORD_WEIGHTS = _chapter('07_word_weights', 'word_weights',
    figure3=Table('figure3', ('word_index', 'word', 'kl', 'self_info', 'sentence_id',),
                "Figure 3's words: each model's weight (one column per model), KL and I", more_columns=True),
    word_changes=Table('word_changes', ('word', 'before', 'after', 'occurrences', 'change', 'change_low', 'change_high', 'direction',),
                "each word's mean weight before and after contrastive training", index=True),
)
DATASETS = _chapter('08_other_datasets', 'datasets',  # chapter 06's tables, one more dataset each
    table=Table('table', REGRESSION.table.columns, 'Table 1 on the other datasets'),
    contrasts=Table('contrasts', ('dataset', *REGRESSION.contrasts.columns), 'the paired contrasts on the other datasets'),
    frequency=Table('frequency', REGRESSION.frequency.columns, 'the frequency control on the other datasets'),
)
PAIRS = _chapter('10_pair_similarity', 'pairs',
    summary=Table('summary', ('model', 'n_pairs', 'share_top_kl', 'share_identical', 'median_completeness_gap',
            'median_gap_of_contributions',),
                'per model: shares of the similarity on identical and high-KL word pairs'),
    sketch_check=Table('sketch_check', ('model', 'pair_id', 'pearson', 'exact_gap', 'sketch_gap',),
                'sketched against exact pair contributions'),
    pairs=Table('pairs', ('pair_id', 'gold', 'similarity', 'completeness_gap', 'gap_of_contributions', 'share_identical',
            'share_top_kl', 'model',),
                "each explained pair's similarity and completeness"),
)
FAITHFULNESS = _chapter('11_faithfulness', 'faithfulness',
    aopc=Table('aopc', ('model', 'ranking', 'removal', 'aopc', 'aopc_low', 'aopc_high', 'insertion', 'n_sentences',),
                'AOPC of each ranking and removal'),
    recovery=Table('recovery', ('model', 'removal', 'ranking', 'recovery', 'recovery_low', 'recovery_high', 'n_sentences',),
                'how much of the similarity the top words recover'),
    curves=Table('curves', ('sentence_id', 'k', 'fraction', 'curve', 'value', 'ranking', 'removal', 'model',),
                'the deletion and insertion curves'),
)
REPRODUCED = _chapter('12_what_reproduced', 'reproduced',
    claims=Table('claims', ('tier', 'claim', 'chapter', 'evidence', 'verdict', 'why',),
                'every claim with its evidence and verdict'),
)
EXPLAIN = _chapter('13_explain_your_model', 'explain',
    words=Table('words', ('word_index', 'word', 'weight', 'raw_weight', 'n_subwords', 'completeness_gap', 'kl',
            'self_info', 'seen',),
                "one text's explanation"),
    pairs=Table('pairs', ('word_a', 'index_a', 'word_b', 'index_b', 'contribution',),
                "a pair's word-pair contributions"),
    faithfulness=Table('faithfulness', ('value',),
                'the faithfulness checks of one explanation (index: the check)', index=True),
    compare=Table('compare', ('word_index', 'word', 'weight_a', 'weight_b', 'change'),
                  "two models side by side on one text (change = b - a)"),
    batch=Table('batch', ('text_id', 'word_index', 'word', 'weight'), "many texts' explanations, one row per word",
                more_columns=True),
)

#: The runner's own record (``python -m helpers.book run``): each chapter's seconds in this build, keyed by chapter.
RUNNER = Chapter(chapter="helpers.book", folder="book", run_times=Table(
    "run_times", (), "each executed chapter's running time in seconds", more_columns=True, kind="json",
    folder="book", chapter="helpers.book"))

#: Every chapter's tables by results folder.
CHAPTERS = {c.folder: c for c in (THEORY, INFORMATION, IG, SHAP, FINETUNE, REGRESSION, WORD_WEIGHTS, DATASETS, PAIRS,
                                  FAITHFULNESS, REPRODUCED, EXPLAIN)}


def table(folder: str, name: str) -> Table:
    """The declared table ``results/<folder>/<name>`` (``name`` with or without its suffix; chapter 02's tables by
    their file name, ``stsb_validation_words``); an unknown one is an error listing what the folder holds."""
    if folder not in CHAPTERS:
        raise ValueError(f"unknown results folder {folder!r}; the chapters write {', '.join(sorted(CHAPTERS))}.")
    stem = name.rsplit(".", 1)[0] if name.endswith((".csv", ".json")) else name
    for t in CHAPTERS[folder].tables().values():
        if t.name == stem or ("{" in t.name and _matches(t.name, stem)):
            return t
    raise ValueError(f"results/{folder}/ has no table {name!r}; its tables are "
                     f"{', '.join(t.name for t in CHAPTERS[folder].tables().values())}.")


def _matches(pattern: str, stem: str) -> bool:
    import re

    regex = re.sub(r"\\\{[a-z_]+\\\}", "[^/]+", re.escape(pattern))
    return re.fullmatch(regex, stem) is not None


def declared_files() -> dict:
    """``{folder: [file names or patterns]}``: what the chapters may write."""
    return {f: [f"{t.name}.{t.kind}" for t in c.tables().values()] for f, c in CHAPTERS.items()}
