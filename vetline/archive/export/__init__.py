"""eDiscovery and regulator export: RSMF 2.0, one EML per message, CSV, HTML transcripts, and a
signed manifest with inclusion proofs that ``standalone_verifier.py`` checks without Vetline.

Writers (``rsmf``, ``eml``, ``csvout``, ``html``) are pure: they take plain record views and
write bytes. ``package`` assembles a package from a selection; ``selection`` turns what the
user asked for into a queryset; ``actions`` starts and runs audited exports; ``tasks`` runs them
in the background with progress in the cache.
"""
