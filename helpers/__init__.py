"""helpers: every computation of the book, importable and tested.

One module per concept, in the layers ARCHITECTURE.md draws:

* base: ``config`` (paths, seeds, the table cache), ``results`` (every chapter's results tables, declared once),
  ``data`` (datasets and the training corpora), ``units`` (word units, the one reader of sentences),
  ``information`` (KL, I, IDF, SIF), ``artifacts`` (published runs), ``live`` (glue), ``publishing`` (repository,
  launch buttons), ``chapter_files`` (the notebooks, their text twins), ``book`` (the notebook runner and its
  command line), ``parameters`` (a chapter's parameters checked), ``pages`` (the generated pages), ``builds`` (two
  builds compared, recorded times);
* measure: ``weights`` (where a model's weights come from: offline packages, tiny models, the hub), ``encoders``
  (loading a model as its library computes it), ``st_modules`` (a sentence-transformers model's modules after its
  transformer), ``sts`` (STS evaluation), ``precision`` (fp32 or bf16), ``attribution`` (IG, SHAP and the
  displacement baseline, word weights, word pairs), ``faithfulness``;
* analyse: ``regression`` (OLS, the bootstrap, frequency control), ``rules`` (the one rule for a contrast),
  ``verdicts`` (the closing chapter's claims), ``verdict_text`` (the verdicts in words);
* study: ``roster``, ``training`` (MLM, SimCSE), ``runs`` (a run's folder, checkpoints, the one training loop),
  ``finetuning`` (chapter 05's runs), ``finetune_study`` (chapter 05's study), ``standin`` (what the self-trained pair stands for), ``matched_designs`` (chapter
  05's matched designs), ``bow_encoders`` (bag-of-words encoders on real text), ``theory`` (the toy corpus and its
  exact quantities), ``theory_study`` (chapter 01's study), ``regression_study`` (chapter 06's study),
  ``word_change_study`` (chapter 07's study), ``sweep``, ``explorer``, ``similarity_study`` (chapter 10's study),
  ``faithfulness_study`` (chapter 11's study), ``explain`` (a pair: ``explain_pair``; what it returns:
  ``explanation``, ``explanation_sets``; its command line, ``explain_cli``; its pictures, ``views``);
* draw: ``plots``.
"""
__version__ = "0.2.0"
