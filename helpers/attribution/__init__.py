"""Word weights from Integrated Gradients and SHAP (paper section 3.1, appendix D; measure layer).

One module per step of the measurement, and one per method:

* :mod:`.tokens` -- a text's tokens and the word each belongs to (the book's word units), the IG baselines X';
* :mod:`.method` -- :class:`Method`, the settings object every method is, and the registry of methods;
* :mod:`.ig` -- :class:`IG`, Integrated Gradients over every output (Eqs. eq-ig, eq-ig-norm, eq-sketch);
* :mod:`.shapley` -- :class:`SHAP`, PartitionSHAP over every output (Eqs. eq-shapley, eq-efficiency);
* :mod:`.displacement` -- :class:`Displacement`, each token's distance from the IG baseline;
* :mod:`.cache` -- :class:`AttributionCache`, the checked per-sentence cache;
* :mod:`.words` -- :func:`word_weights`: a method's token attributions merged into word weights (Eq. eq-normalise);
* :mod:`.pairs` -- word-pair contributions to a similarity score (Eq. eq-pair, chapter 10).

A new method is one new file in this folder (a :class:`Method` subclass): every module here is imported
below, so defining the class registers it, and ``word_weights(method="<name>")``, the roster run, the
sweep and the explorer accept it with no edit elsewhere (CONTRIBUTING.md).
"""
from __future__ import annotations

import importlib
import pkgutil

from .cache import AttributionCache, CacheError
from .displacement import Displacement
from .ig import (QUADRATURES, SKETCHES, IG, completeness_by_steps, ig_captum_token_norms, ig_token_norms,
                 ig_token_outputs, projection_matrix)
from .method import Method, make_method, method_options, methods
from .shapley import (SHAP, SHAP_MASKS, shap_masker, shap_model, shap_token_norms, shapley_by_enumeration,
                      unresolved_tokens)
from .tokens import BASELINES, added_special_ids, baseline_embeddings, check_baseline, math_attention, tokenize, truncate_text
from .words import (ENGINE_VERSION, GAP_THRESHOLD, NORMALIZATIONS, WORD_AGGS, aggregate_words, compare_weights, mean_word_weights,
                    per_sentence_spearman, sketch_error, word_weights)

__all__ = ["AttributionCache", "CacheError", "Method", "IG", "SHAP", "Displacement", "make_method", "method_options",
           "methods", "word_weights", "aggregate_words", "tokenize", "truncate_text", "baseline_embeddings",
           "added_special_ids", "check_baseline", "math_attention", "ig_token_norms", "ig_token_outputs", "ig_captum_token_norms",
           "projection_matrix", "completeness_by_steps", "shap_token_norms", "shap_masker", "shap_model",
           "shapley_by_enumeration", "unresolved_tokens", "compare_weights", "sketch_error", "per_sentence_spearman",
           "mean_word_weights", "BASELINES", "QUADRATURES", "SKETCHES", "SHAP_MASKS", "WORD_AGGS", "NORMALIZATIONS",
           "ENGINE_VERSION", "GAP_THRESHOLD"]

# Every module of this folder, so that a method in a new file is registered without an edit here.
for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")
