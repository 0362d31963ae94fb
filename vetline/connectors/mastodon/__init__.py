"""Mastodon and Mastodon-compatible servers (Pleroma/Akkoma, GoToSocial, Takahē), on Mastodon.py."""
