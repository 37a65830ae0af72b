"""helpers: every computation of the book, importable and tested.

One module per concept: ``config`` (paths, seeds), ``data`` (datasets),
``information`` (KL, I, IDF, SIF), ``theory`` (appendix C's bound and toy check),
``encoders`` (loading sentence encoders), ``attribution`` (IG and SHAP word
weights), ``regression`` (OLS), ``plots`` (figure style), ``book`` (running the notebooks).
"""
__version__ = "0.1.0"
