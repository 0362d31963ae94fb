"""Importers for the networks' own data exports (X archive, Facebook and Instagram "Download
Your Information", LinkedIn CSVs, Mastodon account export, Bluesky repository CAR). Each one
streams its file and feeds the archive's single ingest path; see docs/importers.md."""
