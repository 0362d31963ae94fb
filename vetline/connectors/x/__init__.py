"""X (formerly Twitter), API v2 through tweepy."""
