"""The Bluesky connector: publish to and capture from an AT Protocol repository through the
``atproto`` SDK. Backfill lists the repository; near-real-time capture follows the PDS's repo
firehose (``com.atproto.sync.subscribeRepos``) and falls back to polling. See
docs/connectors.md for what it can and cannot capture, and why."""
